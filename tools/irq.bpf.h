/* SPDX-License-Identifier: GPL-2.0 */
/*
 * irq.bpf.h: what hardirqs and softirqs share: their options, the time each handler runs on its
 * CPU, and its count in `dist`, as a total (in ns), or with -d in a log2 histogram, or with -C as
 * a number of calls.
 *
 * The tool defines `struct irq_key` before including this: what the time is counted by (the
 * handler's name, the softirq's vector) and `slot`, -d's log2 slot (0 without -d), zeroed by the
 * tool. Its hooks call handler_entered() and handler_exited(), and count_add() with -C.
 */
#ifndef __BPFKIT_TOOLS_IRQ_BPF_H__
#define __BPFKIT_TOOLS_IRQ_BPF_H__

#include <hist.bpf.h>

const volatile bool count_only = false;	/* -C */
const volatile bool per_slot = false;	/* -d: histograms */
const volatile bool nsecs = false;	/* -N: nanoseconds (histograms; totals are kept in ns) */
const volatile int targ_cpu = -1;	/* -c CPU */

/* When the handler running on this CPU began; 0: its entry was not seen. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

COUNT_MAP(dist, struct irq_key, 4096);

static __always_inline bool wanted_cpu(void)
{
	return targ_cpu < 0 || bpf_get_smp_processor_id() == (u32)targ_cpu;
}

/*
 * At a handler's entry. With -C, whether to count this call (its CPU is the one -c wants): the
 * caller then adds 1 to its key's count. Otherwise the handler's start is kept; false.
 */
static __always_inline bool handler_entered(void)
{
	u32 zero = 0;
	u64 *ts;

	if (!wanted_cpu())
		return false;
	if (count_only)
		return true;
	ts = bpf_map_lookup_elem(&start, &zero);
	if (ts)
		*ts = bpf_ktime_get_ns();
	return false;
}

/*
 * At a handler's exit: whether its time is to be counted (not -C, the CPU -c wants, its entry
 * seen), then the time in ns; its start is cleared.
 */
static __always_inline bool handler_exited(u64 *delta)
{
	u32 zero = 0;
	u64 *ts;

	if (count_only || !wanted_cpu())
		return false;
	ts = bpf_map_lookup_elem(&start, &zero);
	if (!ts || !*ts)
		return false;
	*delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	return true;
}

/* Counts a handler's time of `delta` ns under key: in its log2 slot with -d, else in its total. */
static __always_inline void handler_account(struct irq_key *key, u64 delta)
{
	if (per_slot) {
		key->slot = bpfkit_log2_slot(nsecs ? delta : delta / 1000, 64);
		count_add(&dist, key, 1);
	} else {
		count_add(&dist, key, delta);
	}
}

#endif /* __BPFKIT_TOOLS_IRQ_BPF_H__ */
