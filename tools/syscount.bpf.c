// SPDX-License-Identifier: GPL-2.0
/*
 * syscount: system calls counted (and with -L timed) by call or, with -P, by process, from the
 * raw_syscalls tracepoints (every kernel since 3.7 has them; they see every call of every
 * architecture's table, with its number and return value). A call is counted when it returns,
 * so that -x and -e can judge its result; exit and exit_group, which do not return, are not.
 * Compiled after tool.bpf.h: tool_traced() is -p's and -t's filter.
 */

#include <hist.bpf.h>

#define MAX_ENTRIES 10240

const volatile bool by_process = false;	/* -P */
const volatile bool latency = false;	/* -L */
const volatile bool only_failed = false; /* -x */
const volatile int only_errno = 0;	/* -e: only calls failing with this error */
const volatile int only_nr = -1;	/* --syscall: only this call */
const volatile u32 targ_ppid = 0;	/* -c: only children of this process */

struct data {
	u64 count;
	u64 total_ns;
	char comm[16];	/* -P: the process's name when first seen */
};

START_MAP(start, u32, MAX_ENTRIES);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);	/* the call's number, or with -P the process id */
	__type(value, struct data);
} data SEC(".maps");

static __always_inline bool traced(long nr)
{
	if (nr < 0 || (only_nr >= 0 && nr != only_nr) || !tool_traced())
		return false;
	if (targ_ppid) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (BPF_CORE_READ(task, real_parent, tgid) != targ_ppid)
			return false;
	}
	return true;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts;

	if (!latency || !traced(ctx->id))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id, key;
	long ret = ctx->ret;
	struct data *d, zero = {};
	u64 delta = 0, *tsp;

	if (!traced(ctx->id))
		return 0;
	if (latency) {
		tsp = bpf_map_lookup_elem(&start, &tid);
		if (!tsp)	/* entered before the tool started */
			return 0;
		delta = bpf_ktime_get_ns() - *tsp;
		bpf_map_delete_elem(&start, &tid);
	}
	if ((only_failed && ret >= 0) || (only_errno && ret != -only_errno))
		return 0;
	key = by_process ? (u32)(id >> 32) : (u32)ctx->id;
	d = bpf_map_lookup_elem(&data, &key);
	if (!d) {
		if (by_process)
			bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&data, &key, &zero, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&data, &key);
		if (!d)
			return 0;
	}
	__sync_fetch_and_add(&d->count, 1);
	if (latency)
		__sync_fetch_and_add(&d->total_ns, delta);
	return 0;
}
