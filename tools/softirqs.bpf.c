// SPDX-License-Identifier: GPL-2.0
/*
 * softirqs: time spent in (or with -C the number of runs of) each soft interrupt, by its vector,
 * as totals or with -d as histograms.
 *
 * Each hook is written twice, best first: a BTF tracepoint (5.5+) and a raw tracepoint (4.17+)
 * on softirq_entry/exit; softirqs.py names each pair as a fallback ladder. The timing and
 * counting are irq.bpf.h's.
 */

struct irq_key {
	u32 vec;
	u32 slot;	/* -d: the log2 slot; else 0 */
};

#include <irq.bpf.h>

static __always_inline int entry(unsigned int vec)
{
	struct irq_key key = { .vec = vec };

	if (handler_entered())	/* -C */
		count_add(&dist, &key, 1);
	return 0;
}

static __always_inline int exit(unsigned int vec)
{
	struct irq_key key = { .vec = vec };
	u64 delta;

	if (handler_exited(&delta))
		handler_account(&key, delta);
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(entry_btf, unsigned int vec) { return entry(vec); }
SEC("raw_tp/softirq_entry")
int BPF_PROG(entry_raw, unsigned int vec) { return entry(vec); }

SEC("tp_btf/softirq_exit")
int BPF_PROG(exit_btf, unsigned int vec) { return exit(vec); }
SEC("raw_tp/softirq_exit")
int BPF_PROG(exit_raw, unsigned int vec) { return exit(vec); }
