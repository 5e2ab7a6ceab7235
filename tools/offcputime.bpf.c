// SPDX-License-Identifier: GPL-2.0
/*
 * offcputime: the time threads spend off a CPU (blocked, or preempted), summed per stack. At the
 * scheduler's switch hook (sched.bpf.h: a BTF tracepoint, else a raw tracepoint), the task
 * leaving the CPU is still the current task: its user and kernel stacks (stack.bpf.h) are taken
 * there and kept with the time it left; when it comes back on a CPU, the time it was away is
 * added, in microseconds, to its key: (thread, process, stack ids, name), as BCC keys it.
 *
 * -p and -t are tool.bpf.h's targ_tgid and targ_tid, judged on the task leaving; -u and -k keep
 * user or kernel threads only; --state keeps tasks leaving in these states (0: preempted, still
 * runnable; else a mask of them, 2: TASK_UNINTERRUPTIBLE); -m and -M bound the time counted.
 */

#include <hist.bpf.h>
#include <sched.bpf.h>
#include <stack.bpf.h>

#define PF_KTHREAD 0x00200000	/* include/linux/sched.h */
#define TASK_DEAD 0x80

const volatile bool user_threads_only = false;		/* -u */
const volatile bool kernel_threads_only = false;	/* -k */
const volatile bool filter_state = false;		/* --state */
const volatile long state_mask = 0;
const volatile u64 min_block_us = 1;			/* -m */
const volatile u64 max_block_us = (u64)-1;		/* -M */

struct key_t {
	u32 pid;		/* the thread */
	u32 tgid;		/* its process */
	int user_stack_id;
	int kernel_stack_id;
	char name[16];
};

/* The stacks of each thread off a CPU, by tid, beside its time in sched.bpf.h's `start`. */
struct off_stacks {
	int user_stack_id;
	int kernel_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct off_stacks);
} off_stacks SEC(".maps");

COUNT_MAP(counts, struct key_t, 10240);

static __always_inline bool leaving_traced(struct task_struct *prev, u32 tid, long state)
{
	bool kthread = BPF_CORE_READ(prev, flags) & PF_KTHREAD;

	/* Each CPU's idle task is tid 0 (it never blocks: its time away is the CPU's busy time). */
	if (!tid || (state & TASK_DEAD))
		return false;
	if ((targ_tgid && BPF_CORE_READ(prev, tgid) != targ_tgid) || (targ_tid && tid != targ_tid))
		return false;
	if ((user_threads_only && kthread) || (kernel_threads_only && !kthread))
		return false;
	if (filter_state && (state_mask ? !(state & state_mask) : state != TASK_RUNNING))
		return false;
	return true;
}

static __always_inline int switched(void *ctx, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(prev, pid);
	/* A task preempted on its way to sleep (its state set, schedule() not yet called) is runnable. */
	long state = preempt ? TASK_RUNNING : task_state(prev);
	struct off_stacks *off, s;
	struct key_t key = {};
	u64 ts, *tsp, now, delta;

	if (leaving_traced(prev, tid, state)) {
		/* prev is the current task here: the stacks are its own. */
		stack_ids(ctx, &s.user_stack_id, &s.kernel_stack_id);
		ts = bpf_ktime_get_ns();
		if (!bpf_map_update_elem(&off_stacks, &tid, &s, BPF_ANY))
			bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	}

	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	now = bpf_ktime_get_ns();
	delta = (now - *tsp) / 1000;
	off = bpf_map_lookup_elem(&off_stacks, &tid);
	/* A stamp from a CPU whose clock ran ahead would make a huge delta: left out. */
	if (off && now >= *tsp && delta >= min_block_us && delta <= max_block_us) {
		key.pid = tid;
		key.tgid = BPF_CORE_READ(next, tgid);
		key.user_stack_id = off->user_stack_id;
		key.kernel_stack_id = off->kernel_stack_id;
		BPF_CORE_READ_STR_INTO(&key.name, next, comm);
		count_add(&counts, &key, delta);
	}
	bpf_map_delete_elem(&start, &tid);
	bpf_map_delete_elem(&off_stacks, &tid);
	return 0;
}

SCHED_SWITCH_PROGRAMS(switched)
