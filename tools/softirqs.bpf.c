// SPDX-License-Identifier: GPL-2.0
/*
 * softirqs: time spent in (or with -C the number of runs of) each soft interrupt, by its vector,
 * as totals or with -d as histograms.
 *
 * Each hook is written twice, best first: a BTF tracepoint (5.5+) and a raw tracepoint (4.17+)
 * on softirq_entry/exit; softirqs.py names each pair as a fallback ladder.
 */

const volatile bool count_only = false;	/* -C */
const volatile bool per_slot = false;	/* -d: histograms */
const volatile bool nsecs = false;	/* -N: nanoseconds (histograms; totals are kept in ns) */
const volatile int targ_cpu = -1;	/* -c CPU */

struct irq_key {
	u32 vec;
	u32 slot;	/* -d: the log2 slot; else 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct irq_key);
	__type(value, u64);
} dist SEC(".maps");

static __always_inline bool wanted_cpu(void)
{
	return targ_cpu < 0 || bpf_get_smp_processor_id() == (u32)targ_cpu;
}

static __always_inline void add(struct irq_key *key, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&dist, key);

	if (v)
		__sync_fetch_and_add(v, n);
	else if (bpf_map_update_elem(&dist, key, &n, BPF_NOEXIST) == -17 /* EEXIST: another CPU made it */) {
		v = bpf_map_lookup_elem(&dist, key);
		if (v)
			__sync_fetch_and_add(v, n);
	}
}

static __always_inline int entry(unsigned int vec)
{
	u32 zero = 0;
	u64 *ts;

	if (!wanted_cpu())
		return 0;
	if (count_only) {
		struct irq_key key = { .vec = vec };

		add(&key, 1);
		return 0;
	}
	ts = bpf_map_lookup_elem(&start, &zero);
	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int exit(unsigned int vec)
{
	struct irq_key key = { .vec = vec };
	u32 zero = 0;
	u64 *ts, delta;

	if (count_only || !wanted_cpu())
		return 0;
	ts = bpf_map_lookup_elem(&start, &zero);
	if (!ts || !*ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	if (per_slot) {
		key.slot = bpfkit_log2_slot(nsecs ? delta : delta / 1000, 64);
		add(&key, 1);
	} else {
		add(&key, delta);
	}
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
