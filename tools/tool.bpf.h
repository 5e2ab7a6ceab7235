#line 1 "tool.bpf.h"
/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tool.bpf.h: what the bundled tools share on the BPF side. The tool kit (_kit.py) compiles every
 * tool's .bpf.c after this header (BPF(hdr_file=)), so a tool's C uses it without an #include and
 * the compile cache sees the header's text: an edit here is never served a stale object.
 *
 * - tool_traced(): the -p/-t/-u/-c/--cgroupmap/--mntnsmap filters, as `const volatile` globals
 *   the kit sets before load (one object serves every combination of flags);
 * - TOOL_EVENTS(): the `events` map, a ring buffer, or a perf buffer on kernels without ring
 *   buffers (before 5.8; the kit then defines TOOL_PERF_EVENTS), with tool_reserve() and
 *   tool_submit() to send a fixed-size record either way, tool_scratch() and tool_output() to
 *   build one in a per-CPU area and send only its first bytes (a record of varying length), and
 *   `dropped`, the records a full ring buffer refused, which the kit reports at exit.
 *
 * What only some tools share is in headers beside this one, which those tools #include:
 * hist.bpf.h (start-time and count maps, histogram and -e updates), sched.bpf.h (run queue and
 * context switch hooks), irq.bpf.h (hardirqs, softirqs), block.bpf.h (block request ladders),
 * sock.bpf.h (TCP addresses, ports, -4/-6), signal.bpf.h (kill() arguments, entry to exit).
 * They are included as <x.bpf.h>: the compile passes the tool's directory with -I, and a quoted
 * include would look first in the directory bpfkit runs in (the C reaches clang on its stdin).
 */
#ifndef __BPFKIT_TOOL_BPF_H__
#define __BPFKIT_TOOL_BPF_H__

/* -p PID (a process: the kernel's tgid), -t TID (a thread); 0: any. */
const volatile u32 targ_tgid = 0;
const volatile u32 targ_tid = 0;
/* -u UID: only this user, when filter_uid. */
const volatile u32 targ_uid = 0;
const volatile bool filter_uid = false;
/* -c PATH: only tasks in this cgroup v2 directory or below it, held in cgroup_map[0]. */
const volatile bool filter_cg = false;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} cgroup_map SEC(".maps");

/*
 * --cgroupmap PATH, --mntnsmap PATH (BCC's): only tasks whose cgroup id, or whose mount
 * namespace's inode number, is a key of the BPF hash map pinned at PATH, a map the user creates
 * and fills (`bpftool map create /sys/fs/bpf/cgset type hash key 8 value 8 entries 128 name
 * cgset`); a change to it applies at once.
 *
 * The programs read the pinned map itself through the one slot of an array of maps, which
 * bpfkit.BPF fills as it loads the object (BPF._bind_pinned: the map `__bpfkit_pinned__NAME` gets
 * the map pinned at the path held in `__bpfkit_pin_path__NAME`; an empty path, a tool run without
 * the flag, leaves the slot empty). Not libbpf's pinning: it reuses a pinned map only if it has
 * the entries, value size and flags the program declares, and creates and pins a map where none
 * is, which a filter must never do. The kernel takes a map into the slot if it has the template's
 * key size, value size and flags (and before 5.10 its max_entries too): the templates below are
 * the shapes of BCC's documentation (values of 8 bytes for cgroups, 4 for mount namespaces, flags
 * 0), and for a map of another shape the kit compiles with -DTOOL_CGROUPSET_VALUE=...,
 * -DTOOL_CGROUPSET_FLAGS=... and before 5.10 -DTOOL_CGROUPSET_ENTRIES=... (MNTNSSET for the
 * other), once: the compile cache keeps it.
 * Unused, they cost two small maps at load and nothing per event.
 */
const volatile bool filter_cgroupmap = false;
const volatile bool filter_mntnsmap = false;

#ifndef TOOL_CGROUPSET_VALUE
#define TOOL_CGROUPSET_VALUE 8
#define TOOL_CGROUPSET_FLAGS 0
#define TOOL_CGROUPSET_ENTRIES 1
#endif
#ifndef TOOL_MNTNSSET_VALUE
#define TOOL_MNTNSSET_VALUE 4
#define TOOL_MNTNSSET_FLAGS 0
#define TOOL_MNTNSSET_ENTRIES 1
#endif

#define TOOL_PINNED_SET(name, value_bytes, flags, entries)         \
	const volatile char __bpfkit_pin_path__##name[4096];       \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);          \
		__uint(max_entries, 1);                            \
		__type(key, u32);                                  \
		__array(values, struct {                           \
			__uint(type, BPF_MAP_TYPE_HASH);           \
			__uint(max_entries, entries);              \
			__uint(map_flags, flags);                  \
			__uint(key_size, sizeof(u64));             \
			__uint(value_size, value_bytes);           \
		});                                                \
	} __bpfkit_pinned__##name SEC(".maps")

TOOL_PINNED_SET(cgroupset, TOOL_CGROUPSET_VALUE, TOOL_CGROUPSET_FLAGS, TOOL_CGROUPSET_ENTRIES);
TOOL_PINNED_SET(mntnsset, TOOL_MNTNSSET_VALUE, TOOL_MNTNSSET_FLAGS, TOOL_MNTNSSET_ENTRIES);

/* Whether `key` is in the map in the slot of `outer` (no map there: no). */
static __always_inline bool tool_in_pinned_set(void *outer, u64 key)
{
	u32 zero = 0;
	void *set = bpf_map_lookup_elem(outer, &zero);

	return set && bpf_map_lookup_elem(set, &key);
}

/* The members --mntnsmap reads, as CO-RE flavours of the kernel's structs (the suffix is
 * ignored when they are matched): clang then needs nothing of vmlinux.h's mnt_namespace, whose
 * definitions would make every tool's minimal header, and its cold compile, 0.18 s slower. */
struct ns_common___tool {
	unsigned int inum;
} __attribute__((preserve_access_index));
struct mnt_namespace___tool {
	struct ns_common___tool ns;
} __attribute__((preserve_access_index));
struct nsproxy___tool {
	struct mnt_namespace___tool *mnt_ns;
} __attribute__((preserve_access_index));
struct task_struct___tool {
	struct nsproxy___tool *nsproxy;
} __attribute__((preserve_access_index));

/* Whether the current task passes --cgroupmap and --mntnsmap. */
static __always_inline bool tool_container_ok(void)
{
	if (filter_cgroupmap && !tool_in_pinned_set(&__bpfkit_pinned__cgroupset, bpf_get_current_cgroup_id()))
		return false;
	if (filter_mntnsmap) {
		struct task_struct___tool *task = (void *)bpf_get_current_task();

		if (!tool_in_pinned_set(&__bpfkit_pinned__mntnsset, BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum)))
			return false;
	}
	return true;
}

/* Whether the current task passes the tool's -p/-t/-u/-c/--cgroupmap/--mntnsmap filters. */
static __always_inline bool tool_traced(void)
{
	if (targ_tgid || targ_tid) {
		u64 id = bpf_get_current_pid_tgid();

		if (targ_tgid && targ_tgid != (u32)(id >> 32))
			return false;
		if (targ_tid && targ_tid != (u32)id)
			return false;
	}
	if (filter_uid && targ_uid != (u32)bpf_get_current_uid_gid())
		return false;
	/* 1: under the cgroup; 0: not; negative: no cgroup set (yet), which traces nothing. */
	if (filter_cg && bpf_current_task_under_cgroup(&cgroup_map, 0) != 1)
		return false;
	return tool_container_ok();
}

#ifndef TOOL_SCRATCH_SIZE
#define TOOL_SCRATCH_SIZE 16384 /* the largest record tool_reserve() builds for a perf buffer */
#endif

/*
 * Records the program could not send because the ring buffer was full; and a per-CPU scratch
 * area for records too large for the stack (a program runs on one CPU at a time).
 */
#define TOOL_COMMON                                                \
	u64 dropped = 0;                                           \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);           \
		__uint(max_entries, 1);                            \
		__type(key, u32);                                  \
		__type(value, char[TOOL_SCRATCH_SIZE]);            \
	} tool_scratch_map SEC(".maps")

/* The scratch area as a `type *` (never NULL in practice; check it for the verifier). */
#define tool_scratch(type)                                                         \
	({                                                                         \
		_Static_assert(sizeof(type) <= TOOL_SCRATCH_SIZE, "record too large"); \
		u32 __zero = 0;                                                    \
		(type *)bpf_map_lookup_elem(&tool_scratch_map, &__zero);           \
	})

#ifndef TOOL_PERF_EVENTS

/* The `events` ring buffer, of `size` bytes (a power of two, at least a page). */
#define TOOL_EVENTS(size)                                          \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                \
		__uint(max_entries, size);                         \
	} events SEC(".maps");                                     \
	TOOL_COMMON

/* A record of `type` to fill in and tool_submit(), or NULL (counted in `dropped`) when full. */
#define tool_reserve(type)                                                         \
	({                                                                         \
		type *__r = bpf_ringbuf_reserve(&events, sizeof(type), 0);         \
		if (!__r)                                                          \
			__sync_fetch_and_add(&dropped, 1);                         \
		__r;                                                               \
	})
#define tool_submit(ctx, rec) bpf_ringbuf_submit(rec, 0)
/* Sends a copy of `size` bytes at `data`. */
#define tool_output(ctx, data, size)                                         \
	({                                                                   \
		long __e = bpf_ringbuf_output(&events, data, size, 0);       \
		if (__e)                                                     \
			__sync_fetch_and_add(&dropped, 1);                   \
		__e;                                                         \
	})

#else /* TOOL_PERF_EVENTS: a perf buffer, one ring per CPU; the kernel counts its own losses */

#define TOOL_EVENTS(size)                                          \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);       \
		__uint(key_size, sizeof(u32));                     \
		__uint(value_size, sizeof(u32));                   \
	} events SEC(".maps");                                     \
	TOOL_COMMON

/* A perf sample is copied out of the program: the record is built in the scratch area. */
#define tool_reserve(type) tool_scratch(type)
#define tool_submit(ctx, rec) bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, sizeof(*(rec)))
#define tool_output(ctx, data, size) bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, data, size)

#endif /* TOOL_PERF_EVENTS */

#endif /* __BPFKIT_TOOL_BPF_H__ */
/* The tool's own source follows: its lines are numbered from 1, under its own name. */
#line 0 "<stdin>"
