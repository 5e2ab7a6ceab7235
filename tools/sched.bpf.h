/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sched.bpf.h: what the scheduler tools share (runqlat, runqslower, cpudist).
 *
 * - `start`: the time each thread (by tid) began what the tool times: its wait on a run queue, or
 *   its time on or off a CPU;
 * - runq_enqueue() and runq_dequeue(): a task's wait on a run queue, from its wakeup (or its
 *   preemption, when it stays runnable) to its running, as runqlat and runqslower time it;
 * - task_state(): a task's state, whichever of its two names the kernel gives the field;
 * - SCHED_WAKEUP_PROGRAMS() and SCHED_SWITCH_PROGRAMS(): the programs of the tools' fallback
 *   ladders, each hook twice, best first: a BTF tracepoint (5.5+: typed arguments, the cheapest)
 *   and a raw tracepoint (4.17+); the tool's Python names each pair as a ladder. Tasks' fields are
 *   read with CO-RE only, so one body serves both rungs on every kernel with BTF.
 *
 * Included after tool.bpf.h: the -p and -t filters here are its targ_tgid and targ_tid, judged on
 * the task measured, which is not the current task (the waker, or the task switched from).
 */
#ifndef __BPFKIT_TOOLS_SCHED_BPF_H__
#define __BPFKIT_TOOLS_SCHED_BPF_H__

#include <hist.bpf.h>

#define TASK_RUNNING 0

START_MAP(start, u32, 10240);

/* task_struct.state became __state in 5.14. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* Stamps task p as it joins a run queue, unless -p or -t leaves it out (or it is an idle task). */
static __always_inline int runq_enqueue(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!tid || (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid) || (targ_tid && tid != targ_tid))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

/*
 * At a switch from prev to next: prev joins the run queue again if it was preempted (it is still
 * runnable), and next leaves it. Whether next was stamped; then its tid and its wait in ns, and
 * its stamp removed. A task preempted while it was on its way to sleep (its state already not
 * TASK_RUNNING, schedule() not yet called) stays queued too: the scheduler does not dequeue a
 * preempted task, and its schedstat run_delay counts that wait, so this does.
 */
static __always_inline bool runq_dequeue(bool preempt, struct task_struct *prev, struct task_struct *next, u32 *tid,
					 u64 *delta)
{
	u64 *tsp;

	if (preempt || task_state(prev) == TASK_RUNNING)
		runq_enqueue(prev);
	*tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, tid);
	if (!tsp)
		return false;
	*delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, tid);
	return true;
}

/* wakeup_btf, wakeup_raw, wakeup_new_btf, wakeup_new_raw: fn(p) for the task woken up. */
#define SCHED_WAKEUP_PROGRAMS(fn)                                                    \
	SEC("tp_btf/sched_wakeup")                                                   \
	int BPF_PROG(wakeup_btf, struct task_struct *p) { return fn(p); }            \
	SEC("raw_tp/sched_wakeup")                                                   \
	int BPF_PROG(wakeup_raw, struct task_struct *p) { return fn(p); }            \
	SEC("tp_btf/sched_wakeup_new")                                               \
	int BPF_PROG(wakeup_new_btf, struct task_struct *p) { return fn(p); }        \
	SEC("raw_tp/sched_wakeup_new")                                               \
	int BPF_PROG(wakeup_new_raw, struct task_struct *p) { return fn(p); }

/* switch_btf, switch_raw: fn(ctx, preempt, prev, next) as prev leaves the CPU (preempted, or not)
 * and next comes on. */
#define SCHED_SWITCH_PROGRAMS(fn)                                                                      \
	SEC("tp_btf/sched_switch")                                                                     \
	int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)     \
	{                                                                                              \
		return fn(ctx, preempt, prev, next);                                                   \
	}                                                                                              \
	SEC("raw_tp/sched_switch")                                                                     \
	int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)     \
	{                                                                                              \
		return fn(ctx, preempt, prev, next);                                                   \
	}

#endif /* __BPFKIT_TOOLS_SCHED_BPF_H__ */
