// SPDX-License-Identifier: GPL-2.0
/*
 * cpudist: on-CPU time (from a task's switch in to its switch out) or, with -O, off-CPU time
 * (from its switch out to its next switch in) per scheduling, as a histogram.
 *
 * The context switch hook is sched.bpf.h's, a fallback ladder of a BTF and a raw tracepoint
 * (cpudist.py names it), and `start` is its map. Tasks' fields are read with CO-RE. The -p filter
 * is on the task measured (targ_tgid from tool.bpf.h).
 */

#include <hist.bpf.h>
#include <sched.bpf.h>

#define MAX_ENTRIES 10240
/* Every CPU's idle task is tid 0: -I keys their times by CPU, above every real tid. */
#define IDLE_KEY_BASE 0xff000000u

const volatile bool offcpu = false;	/* -O */
const volatile bool millis = false;	/* -m */
const volatile bool per_pid = false;	/* -P: a histogram per process */
const volatile bool per_tid = false;	/* -L: a histogram per thread */
const volatile bool include_idle = false; /* -I */

struct hist_key {
	u32 id;		/* the process or thread; 0 for one histogram */
	u32 slot;
};

COUNT_MAP(dist, struct hist_key, MAX_ENTRIES);
EXT_MAP(extension);

/* The task's key in `start`, or false when it is not measured. */
static __always_inline bool task_key(struct task_struct *t, u32 *key)
{
	u32 tid = BPF_CORE_READ(t, pid);

	if (!tid) {
		if (!include_idle || targ_tgid)
			return false;
		*key = IDLE_KEY_BASE + bpf_get_smp_processor_id();
		return true;
	}
	if (targ_tgid && BPF_CORE_READ(t, tgid) != targ_tgid)
		return false;
	*key = tid;
	return true;
}

static __always_inline void stamp(struct task_struct *t, u64 now)
{
	u32 key;

	if (task_key(t, &key))
		bpf_map_update_elem(&start, &key, &now, BPF_ANY);
}

static __always_inline void account(struct task_struct *t, u64 now)
{
	struct hist_key hkey = {};
	u64 *tsp, delta;
	u32 key;

	if (!task_key(t, &key))
		return;
	tsp = bpf_map_lookup_elem(&start, &key);
	if (!tsp)
		return;
	delta = now - *tsp;
	bpf_map_delete_elem(&start, &key);
	delta /= millis ? 1000000 : 1000;
	ext_add(&extension, delta);
	if (per_pid)
		hkey.id = BPF_CORE_READ(t, tgid);
	else if (per_tid)
		hkey.id = BPF_CORE_READ(t, pid);
	hkey.slot = bpfkit_log2_slot(delta, 64);
	count_increment(&dist, &hkey);
}

static __always_inline int switched(void *ctx, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns();

	if (offcpu) {	/* prev leaves the CPU, next comes back to one */
		stamp(prev, now);
		account(next, now);
	} else {	/* prev's time on the CPU ends, next's begins */
		account(prev, now);
		stamp(next, now);
	}
	return 0;
}

SCHED_SWITCH_PROGRAMS(switched)
