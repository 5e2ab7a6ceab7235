// SPDX-License-Identifier: GPL-2.0
/*
 * runqlat: run queue (scheduler) latency as a histogram: the time from a task's wakeup (or its
 * preemption, when it stays runnable) to its running on a CPU.
 *
 * The wait is timed by sched.bpf.h (its hooks, each a fallback ladder of a BTF and a raw
 * tracepoint, which runqlat.py names), and counted here in a log2 histogram. The -p filter is on
 * the task that waits (targ_tgid from tool.bpf.h), not on the current task, which is the waker.
 */

#include <hist.bpf.h>
#include <sched.bpf.h>

#define MAX_ENTRIES 10240

const volatile bool millis = false;	/* -m */
const volatile bool per_pid = false;	/* -P: a histogram per process */
const volatile bool per_tid = false;	/* -L: a histogram per thread */
const volatile bool per_pidns = false;	/* --pidnss: a histogram per PID namespace */

struct hist_key {
	u32 id;		/* the process, thread or PID namespace; 0 for one histogram */
	u32 slot;
};

COUNT_MAP(dist, struct hist_key, MAX_ENTRIES);

static __always_inline int switched(void *ctx, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct hist_key key = {};
	u64 delta;
	u32 tid;

	if (!runq_dequeue(preempt, prev, next, &tid, &delta))
		return 0;
	delta /= millis ? 1000000 : 1000;
	if (per_pid)
		key.id = BPF_CORE_READ(next, tgid);
	else if (per_tid)
		key.id = tid;
	else if (per_pidns)
		key.id = BPF_CORE_READ(next, nsproxy, pid_ns_for_children, ns.inum);
	key.slot = bpfkit_log2_slot(delta, 64);
	count_increment(&dist, &key);
	return 0;
}

SCHED_WAKEUP_PROGRAMS(runq_enqueue)
SCHED_SWITCH_PROGRAMS(switched)
