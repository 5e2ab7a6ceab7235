// SPDX-License-Identifier: GPL-2.0
/*
 * llcstat: last-level cache references and misses by process (and with -t by thread) and CPU,
 * sampled from the CPU's hardware cache counters: llcstat.py attaches on_cache_ref and
 * on_cache_miss to the PERF_COUNT_HW_CACHE_REFERENCES / CACHE_MISSES events on every CPU, each
 * firing once every sample_period events. Without a hardware PMU (most VMs) there is no such
 * event, and llcstat.py refuses.
 */

const volatile bool per_tid = false;	/* -t */

struct llc_key {
	u32 cpu;
	u32 pid;
	u32 tid;
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct llc_key);
	__type(value, u64);
} ref_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct llc_key);
	__type(value, u64);
} miss_count SEC(".maps");

static __always_inline int count(struct bpf_perf_event_data *ctx, void *map)
{
	u64 id = bpf_get_current_pid_tgid(), period = ctx->sample_period, *v;
	struct llc_key key = { .cpu = bpf_get_smp_processor_id(), .pid = id >> 32 };

	if (per_tid)
		key.tid = (u32)id;
	bpf_get_current_comm(key.name, sizeof(key.name));
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, period);
	else
		bpf_map_update_elem(map, &key, &period, BPF_NOEXIST);
	return 0;
}

SEC("perf_event")
int on_cache_miss(struct bpf_perf_event_data *ctx) { return count(ctx, &miss_count); }

SEC("perf_event")
int on_cache_ref(struct bpf_perf_event_data *ctx) { return count(ctx, &ref_count); }
