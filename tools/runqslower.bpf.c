// SPDX-License-Identifier: GPL-2.0
/*
 * runqslower: each time a task waited on a run queue longer than min_us, from its wakeup (or its
 * preemption) to its running: the task, the latency and the task it took the CPU from.
 *
 * Each hook is written twice, best first: a BTF tracepoint (5.5+) and a raw tracepoint (4.17+);
 * runqslower.py names each pair as a fallback ladder. Tasks' fields are read with CO-RE. The
 * -p/-t filters are on the task that waits (targ_tgid, targ_tid from tool.bpf.h).
 */

#define MAX_ENTRIES 10240
#define TASK_RUNNING 0

const volatile u64 min_us = 10000;	/* report waits longer than this */

struct event {
	char task[16];
	char prev_task[16];
	u64 delta_us;
	u32 pid;	/* the thread that waited */
	u32 prev_pid;	/* the thread it took the CPU from */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

TOOL_EVENTS(1 << 18);

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

static __always_inline int enqueue(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!tid || (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid) || (targ_tid && tid != targ_tid))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int switched(void *ctx, struct task_struct *prev, struct task_struct *next)
{
	struct event *e;
	u64 *tsp, delta_us;
	u32 tid;

	if (task_state(prev) == TASK_RUNNING)	/* preempted: back on the run queue */
		enqueue(prev);
	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &tid);
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

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf, struct task_struct *p) { return enqueue(p); }
SEC("raw_tp/sched_wakeup")
int BPF_PROG(wakeup_raw, struct task_struct *p) { return enqueue(p); }

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf, struct task_struct *p) { return enqueue(p); }
SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(wakeup_new_raw, struct task_struct *p) { return enqueue(p); }

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(ctx, prev, next);
}
SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(ctx, prev, next);
}
