// SPDX-License-Identifier: GPL-2.0
/*
 * runqslower: each time a task waited on a run queue longer than min_us, from its wakeup (or its
 * preemption) to its running: the task, the latency and the task it took the CPU from.
 *
 * The wait is timed by sched.bpf.h (its hooks, each a fallback ladder of a BTF and a raw
 * tracepoint, which runqslower.py names). The -p/-t filters are on the task that waits
 * (targ_tgid, targ_tid from tool.bpf.h).
 */

#include <sched.bpf.h>

const volatile u64 min_us = 10000;	/* report waits longer than this */

struct event {
	char task[16];
	char prev_task[16];
	u64 delta_us;
	u32 pid;	/* the thread that waited */
	u32 prev_pid;	/* the thread it took the CPU from */
};

TOOL_EVENTS(1 << 18);

static __always_inline int switched(void *ctx, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct event *e;
	u64 delta, delta_us;
	u32 tid;

	if (!runq_dequeue(preempt, prev, next, &tid, &delta))
		return 0;
	delta_us = delta / 1000;
	if (min_us && delta_us <= min_us)
		return 0;
	e = tool_reserve(struct event);
	if (!e)
		return 0;
	e->pid = tid;
	e->prev_pid = BPF_CORE_READ(prev, pid);
	e->delta_us = delta_us;
	BPF_CORE_READ_STR_INTO(&e->task, next, comm);
	BPF_CORE_READ_STR_INTO(&e->prev_task, prev, comm);
	tool_submit(ctx, e);
	return 0;
}

SCHED_WAKEUP_PROGRAMS(runq_enqueue)
SCHED_SWITCH_PROGRAMS(switched)
