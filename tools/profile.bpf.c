// SPDX-License-Identifier: GPL-2.0
/*
 * profile: CPU stacks sampled by a timer. profile.py attaches do_perf_event to a software
 * CPU-clock perf event on each CPU (-C: one), at -F Hz or every -c events, and each sample counts
 * the running task's user and kernel stacks (stack.bpf.h) under its process and name.
 *
 * The idle task (tid 0: each CPU's) is left out unless -I. -p and -L take lists: the ids are the
 * keys of `targets`, which the Python fills before it attaches the perf events.
 */

#define STACK_STORAGE_DEFAULT 16384

#include <hist.bpf.h>
#include <stack.bpf.h>

const volatile bool include_idle = false;	/* -I */
const volatile bool filter_tgid = false;	/* -p: `targets` holds processes */
const volatile bool filter_tid = false;		/* -L: `targets` holds threads */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} targets SEC(".maps");

struct key_t {
	u32 pid;		/* the process (tgid) */
	int user_stack_id;
	int kernel_stack_id;
	char name[16];
};

COUNT_MAP(counts, struct key_t, 10240);

SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	struct key_t key = {};

	if (!tid && !include_idle)
		return 0;
	if (filter_tgid && !bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	if (filter_tid && !bpf_map_lookup_elem(&targets, &tid))
		return 0;
	if (!tool_traced())	/* --cgroupmap, --mntnsmap (tool.bpf.h) */
		return 0;
	key.pid = tgid;
	stack_ids(ctx, &key.user_stack_id, &key.kernel_stack_id);
	bpf_get_current_comm(key.name, sizeof(key.name));
	count_add(&counts, &key, 1);	/* no sample lost to a race on a new key */
	return 0;
}
