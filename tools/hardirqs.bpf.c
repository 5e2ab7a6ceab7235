// SPDX-License-Identifier: GPL-2.0
/*
 * hardirqs: time spent in (or with -C the number of calls of) each hard interrupt handler, by
 * the handler's name, as totals or with -d as histograms.
 *
 * Each hook is written twice, best first: a BTF tracepoint (5.5+) and a raw tracepoint (4.17+)
 * on irq_handler_entry/exit; hardirqs.py names each pair as a fallback ladder. The handler's
 * name is read from its struct irqaction with CO-RE; the timing and counting are irq.bpf.h's.
 */

#define NAME_LEN 32

struct irq_key {
	char name[NAME_LEN];
	u64 slot;	/* -d: the log2 slot; else 0 */
};

#include <irq.bpf.h>

static __always_inline int entry(struct irqaction *action)
{
	struct irq_key key = {};

	if (handler_entered()) {	/* -C */
		bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(action, name));
		count_add(&dist, &key, 1);
	}
	return 0;
}

static __always_inline int exit(struct irqaction *action)
{
	struct irq_key key = {};
	u64 delta;

	if (!handler_exited(&delta))
		return 0;
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(action, name));
	handler_account(&key, delta);
	return 0;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(entry_btf, int irq, struct irqaction *action) { return entry(action); }
SEC("raw_tp/irq_handler_entry")
int BPF_PROG(entry_raw, int irq, struct irqaction *action) { return entry(action); }

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(exit_btf, int irq, struct irqaction *action) { return exit(action); }
SEC("raw_tp/irq_handler_exit")
int BPF_PROG(exit_raw, int irq, struct irqaction *action) { return exit(action); }
