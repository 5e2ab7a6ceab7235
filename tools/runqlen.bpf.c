// SPDX-License-Identifier: GPL-2.0
/*
 * runqlen: run queue length, sampled: runqlen.py attaches do_sample to a software CPU-clock
 * perf event on every CPU (99 times a second by default), and each sample counts how many tasks
 * were waiting on that CPU, besides the one running (0: idle or only the running task).
 *
 * The length is read with CO-RE from the current task's CFS run queue: its CPU's whole run queue
 * (rq.nr_running: every scheduling class) where cfs_rq links to it (CONFIG_FAIR_GROUP_SCHED),
 * else the CFS queue's own count, named nr_queued since 6.14 and nr_running before.
 */

#include <hist.bpf.h>

#define MAX_LEN 1023	/* longer queues are counted in this slot */

struct hist_key {
	u32 cpu;
	u32 len;
};

COUNT_MAP(dist, struct hist_key, 16384);

struct cfs_rq___pre614 {
	unsigned int nr_running;
} __attribute__((preserve_access_index));

static __always_inline u32 runnable(struct task_struct *task)
{
	struct cfs_rq *cfs = BPF_CORE_READ(task, se.cfs_rq);

	if (!cfs)
		return 0;
	if (bpf_core_field_exists(cfs->rq))
		return BPF_CORE_READ(cfs, rq, nr_running);
	if (bpf_core_field_exists(cfs->nr_queued))
		return BPF_CORE_READ(cfs, nr_queued);
	return BPF_CORE_READ((struct cfs_rq___pre614 *)cfs, nr_running);
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct hist_key key = { .cpu = bpf_get_smp_processor_id() };
	u32 len = runnable(task);

	/* The running task is not waiting (the idle task is not counted in nr_running at all). */
	if (len > 0 && BPF_CORE_READ(task, pid))
		len--;
	key.len = len < MAX_LEN ? len : MAX_LEN;
	count_increment(&dist, &key);
	return 0;
}
