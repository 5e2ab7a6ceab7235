// SPDX-License-Identifier: GPL-2.0
/*
 * runqlat for `bpfkit exporter` (runqlat.yaml): run queue latency in log2 slots of microseconds,
 * the slot after the last one holding the total, as ebpf_exporter reads a histogram's sum.
 *
 * A task is stamped when it is woken up, or when it is switched out still runnable (preempted);
 * the wait ends when it is switched in.
 */

#define MAX_SLOT 26	/* 2^26 us, 67 s: longer waits count in the last slot */
#define TASK_RUNNING 0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);	/* thread id */
	__type(value, u64);	/* when it began to wait, ns */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOT + 2);
	__type(key, u32);	/* slot; MAX_SLOT + 1: the total */
	__type(value, u64);
} runq_latency SEC(".maps");

/* task_struct.state became __state in 5.14. */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long state_of(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___old *)t, state);
}

static __always_inline int stamp(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 ts = bpf_ktime_get_ns();

	if (tid)	/* not an idle task */
		bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline void add(u32 slot, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&runq_latency, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup, struct task_struct *p)
{
	return stamp(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new, struct task_struct *p)
{
	return stamp(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_in, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(next, pid), slot;
	u64 *tsp, us;

	if (preempt || state_of(prev) == TASK_RUNNING)
		stamp(prev);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &tid);
	slot = bpf_log2l(us);
	add(slot < MAX_SLOT ? slot : MAX_SLOT, 1);
	add(MAX_SLOT + 1, us);
	return 0;
}
