// SPDX-License-Identifier: GPL-2.0
/*
 * drsnoop: direct reclaim, one record per reclaim a task did itself (latency and pages), from the
 * vmscan tracepoints: mm_vmscan_direct_reclaim_begin/end (the system ran short of free memory)
 * and mm_vmscan_memcg_reclaim_begin/end (the task's cgroup reached memory.high or memory.max:
 * the same synchronous reclaim, charged to the allocating task). Both pairs share one event
 * layout, read with CO-RE. Compiled after tool.bpf.h (tool_traced(): -p -t -u).
 */

#define TASK_COMM_LEN 16

struct dr_event {
	u64 ts_ns;
	u64 delta_ns;
	u64 nr_reclaimed;
	u32 pid;
	u32 tid;
	u32 uid;
	u32 memcg; /* 1: cgroup reclaim; 0: global direct reclaim */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

TOOL_EVENTS(1 << 18);

static __always_inline int begin(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();

	if (tool_traced())
		bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int end(void *ctx, u64 nr_reclaimed, u32 memcg)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u64 *tsp = bpf_map_lookup_elem(&start, &tid);
	struct dr_event *e;

	if (!tsp)
		return 0;
	e = tool_reserve(struct dr_event);
	if (e) {
		e->ts_ns = bpf_ktime_get_ns();
		e->delta_ns = e->ts_ns - *tsp;
		e->nr_reclaimed = nr_reclaimed;
		e->pid = id >> 32;
		e->tid = tid;
		e->uid = (u32)bpf_get_current_uid_gid();
		e->memcg = memcg;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		tool_submit(ctx, e);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_begin(void *ctx) { return begin(); }

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx, BPF_CORE_READ(ctx, nr_reclaimed), 0);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_begin(void *ctx) { return begin(); }

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx, BPF_CORE_READ(ctx, nr_reclaimed), 1);
}
