// SPDX-License-Identifier: GPL-2.0
/*
 * runqlat: run queue (scheduler) latency as a histogram: the time from a task's wakeup (or its
 * preemption, when it stays runnable) to its running on a CPU.
 *
 * Each hook is written twice, best first: a BTF tracepoint (5.5+: typed arguments, the cheapest)
 * and a raw tracepoint (4.17+); runqlat.py names each pair as a fallback ladder. Tasks' fields
 * are read with CO-RE, so the same object is right on every kernel with BTF. The -p filter is on
 * the task that waits (targ_tgid from tool.bpf.h), not on the current task, which is the waker.
 */

#define MAX_ENTRIES 10240
#define TASK_RUNNING 0

const volatile bool millis = false;	/* -m */
const volatile bool per_pid = false;	/* -P: a histogram per process */
const volatile bool per_tid = false;	/* -L: a histogram per thread */
const volatile bool per_pidns = false;	/* --pidnss: a histogram per PID namespace */

struct hist_key {
	u32 id;		/* the process, thread or PID namespace; 0 for one histogram */
	u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct hist_key);
	__type(value, u64);
} dist SEC(".maps");

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

static __always_inline int enqueue(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!tid || (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
	struct hist_key key = {};
	u64 *tsp, delta, one = 1, *count;
	u32 tid;

	if (task_state(prev) == TASK_RUNNING)	/* preempted: back on the run queue */
		enqueue(prev);
	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &tid);
	delta /= millis ? 1000000 : 1000;
	if (per_pid)
		key.id = BPF_CORE_READ(next, tgid);
	else if (per_tid)
		key.id = tid;
	else if (per_pidns)
		key.id = BPF_CORE_READ(next, nsproxy, pid_ns_for_children, ns.inum);
	key.slot = bpfkit_log2_slot(delta, 64);
	count = bpf_map_lookup_elem(&dist, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&dist, &key, &one, BPF_NOEXIST);
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
	return switched(prev, next);
}
SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}
