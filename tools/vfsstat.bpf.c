// SPDX-License-Identifier: GPL-2.0
/*
 * vfsstat: counts of VFS reads, writes, fsyncs, opens and creates.
 *
 * Each counter is written three ways, best first: an fentry program on the VFS function (cheapest,
 * 5.5+), a kprobe on it (any kernel with CONFIG_KPROBES), and a syscall tracepoint (every kernel;
 * it counts the system calls that lead to the VFS call, so in-kernel callers are missed). vfsstat.py
 * names each triple as a fallback ladder and bpfkit loads the first rung the kernel supports.
 * Compiled after tool.bpf.h: tool_traced() is -p's filter.
 */

enum vfs_stat { S_READ, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline int bump(u32 key)
{
	u64 *v;

	if (!tool_traced())
		return 0;
	v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		*v += 1;
	return 0;
}

#define LADDER(name, func, tp, key)                                                      \
	SEC("fentry/" #func) int BPF_PROG(name##_fentry) { return bump(key); }            \
	SEC("kprobe/" #func) int BPF_KPROBE(name##_kprobe) { return bump(key); }          \
	SEC("tracepoint/syscalls/" #tp) int name##_tp(void *ctx) { return bump(key); }

LADDER(read, vfs_read, sys_enter_read, S_READ)
LADDER(write, vfs_write, sys_enter_write, S_WRITE)
LADDER(fsync, vfs_fsync_range, sys_enter_fsync, S_FSYNC)
LADDER(open, vfs_open, sys_enter_openat, S_OPEN)

/* Creation: vfs_create, or (tracepoint rung) an openat asking for O_CREAT. */
SEC("fentry/vfs_create") int BPF_PROG(create_fentry) { return bump(S_CREATE); }
SEC("kprobe/vfs_create") int BPF_KPROBE(create_kprobe) { return bump(S_CREATE); }
SEC("tracepoint/syscalls/sys_enter_openat")
int create_tp(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] & 0100 /* O_CREAT */)
		bump(S_CREATE);
	return 0;
}
