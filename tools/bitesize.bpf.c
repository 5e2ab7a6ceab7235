// SPDX-License-Identifier: GPL-2.0
/*
 * bitesize: block I/O sizes per process name, as log2 histograms in Kbytes.
 * From the block:block_rq_issue tracepoint (every kernel since 4.7 has it, with the request's
 * size and the issuing task's name), read through its trace_event_raw_ struct with CO-RE.
 * Compiled after tool.bpf.h (nothing of it used: -c and -d are this tool's own filters).
 */

#include <hist.bpf.h>

#define MAX_SLOTS 20
#define TASK_COMM_LEN 16

const volatile bool filter_comm = false; /* -c COMM */
const volatile char targ_comm[TASK_COMM_LEN] = {};
const volatile bool filter_dev = false; /* -d DISK: its dev_t as the tracepoint encodes it */
const volatile u32 targ_dev = 0;

struct hist_key {
	char comm[TASK_COMM_LEN];
	u64 slot;
};

COUNT_MAP(dist, struct hist_key, 4096);

static __always_inline bool comm_wanted(const char *comm)
{
	if (!filter_comm)
		return true;
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (!comm[i])
			break;
	}
	return true;
}

SEC("tracepoint/block/block_rq_issue")
int rq_issue(struct trace_event_raw_block_rq *ctx)
{
	struct hist_key key = {};

	if (filter_dev && BPF_CORE_READ(ctx, dev) != targ_dev)
		return 0;
	bpf_core_read(key.comm, sizeof(key.comm), &ctx->comm);
	if (!comm_wanted(key.comm))
		return 0;
	key.slot = bpfkit_log2_slot(BPF_CORE_READ(ctx, bytes) / 1024, MAX_SLOTS);
	count_increment(&dist, &key);
	return 0;
}
