// SPDX-License-Identifier: GPL-2.0
/*
 * wakeuptime: the time threads spend blocked, summed per waker: its kernel stack (stack.bpf.h)
 * and name, and the name of the thread it woke. A thread leaving a CPU blocked (not runnable) is
 * stamped at the switch hook (sched.bpf.h's `start`); when a waker wakes it, the time since is
 * added, in microseconds, to the key (waker stack id, waker, target), as BCC keys it.
 *
 * The waker is seen at sched_waking, which the kernel fires in try_to_wake_up() on the waker's
 * own CPU and stack; sched_wakeup may fire later on the woken thread's CPU, from an interrupt
 * (a queued remote wakeup), where the current task is not the waker. Both hooks are ladders of a
 * BTF tracepoint, else a raw tracepoint. -p is judged on the thread blocked (targ_tgid of
 * tool.bpf.h); -u keeps user threads; -m and -M bound the time counted.
 */

#include <hist.bpf.h>
#include <sched.bpf.h>
#include <stack.bpf.h>

#define PF_KTHREAD 0x00200000	/* include/linux/sched.h */
#define TASK_DEAD 0x80

const volatile bool user_threads_only = false;	/* -u */
const volatile u64 min_block_us = 1;		/* -m */
const volatile u64 max_block_us = (u64)-1;	/* -M */

struct key_t {
	int w_k_stack_id;	/* the waker's kernel stack */
	char waker[16];
	char target[16];
};

COUNT_MAP(counts, struct key_t, 10240);

static __always_inline bool traced(struct task_struct *p)
{
	if (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid)
		return false;
	return !(user_threads_only && (BPF_CORE_READ(p, flags) & PF_KTHREAD));
}

/*
 * A thread leaving the CPU blocked is stamped: not one preempted, even on its way to sleep (its
 * state set, schedule() not yet called), which stays on its run queue; not each CPU's idle task
 * (tid 0), which never blocks.
 */
static __always_inline int switched(void *ctx, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(prev, pid);
	long state = task_state(prev);
	u64 ts;

	if (!tid || preempt || state == TASK_RUNNING || (state & TASK_DEAD) || !traced(prev))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int waking(void *ctx, struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	struct key_t key = {};
	u64 *tsp, ts, now, delta;

	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	ts = *tsp;
	bpf_map_delete_elem(&start, &tid);
	now = bpf_ktime_get_ns();
	delta = (now - ts) / 1000;
	if (now < ts || delta < min_block_us || delta > max_block_us)
		return 0;
	key.w_k_stack_id = bpf_get_stackid(ctx, &stacks, 0);
	bpf_get_current_comm(key.waker, sizeof(key.waker));
	BPF_CORE_READ_STR_INTO(&key.target, p, comm);
	count_add(&counts, &key, delta);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(waking_btf, struct task_struct *p)
{
	return waking(ctx, p);
}

SEC("raw_tp/sched_waking")
int BPF_PROG(waking_raw, struct task_struct *p)
{
	return waking(ctx, p);
}

SCHED_SWITCH_PROGRAMS(switched)
