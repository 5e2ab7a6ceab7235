// SPDX-License-Identifier: GPL-2.0
/*
 * biolatency: block device I/O latency as a histogram, from the block BTF tracepoints.
 * Compiled after tool.bpf.h (nothing of it used: the latency of I/O belongs to no task).
 */

#include <hist.bpf.h>

#define MAX_SLOTS 27
#define DISK_NAME_LEN 32

const volatile bool queued = false;   /* -Q: from insertion into the OS queue */
const volatile bool millis = false;   /* -m: milliseconds instead of microseconds */
const volatile bool per_disk = false; /* -D */
const volatile bool per_flag = false; /* -F */
const volatile bool filter_dev = false; /* -d DISK: only this disk, by device number */
const volatile u32 targ_major = 0;
const volatile u32 targ_minor = 0;

struct hist_key {
	char disk[DISK_NAME_LEN];
	u64 flags;
	u64 slot;
};

START_MAP(start, struct request *, 10240);
COUNT_MAP(dist, struct hist_key, 4096);
EXT_MAP(extension);

static __always_inline bool wanted(struct request *rq)
{
	if (!filter_dev)
		return true;
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	return disk && BPF_CORE_READ(disk, major) == targ_major && BPF_CORE_READ(disk, first_minor) == targ_minor;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(rq_insert, struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	if (queued && wanted(rq))
		bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(rq_issue, struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	if (!wanted(rq))
		return 0;
	if (queued) {
		/* Requests that skipped the queue are stamped at issue. */
		bpf_map_update_elem(&start, &rq, &ts, BPF_NOEXIST);
		return 0;
	}
	bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	u64 *tsp = bpf_map_lookup_elem(&start, &rq);
	struct hist_key key = {};

	if (!tsp)
		return 0;
	u64 delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &rq);
	delta /= millis ? 1000000 : 1000;
	ext_add(&extension, delta);

	if (per_disk) {
		struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
		if (disk)
			bpf_probe_read_kernel_str(key.disk, sizeof(key.disk), disk->disk_name);
	}
	if (per_flag)
		key.flags = BPF_CORE_READ(rq, cmd_flags);
	key.slot = bpfkit_log2_slot(delta, MAX_SLOTS);
	count_increment(&dist, &key);
	return 0;
}
