// SPDX-License-Identifier: GPL-2.0
/*
 * biosnoop: one line per block I/O, with the task that submitted it, its disk, sector, size and
 * latency. Three moments of a request, each a fallback ladder of block.bpf.h (biosnoop.py's
 * LADDERS): submission (the task, and with -Q the start of the queued time), issue to the device
 * and completion; the first two, and the -d filter, are block.bpf.h's. The request is read with
 * CO-RE only, so one body serves every rung. Compiled after tool.bpf.h: tool_traced() (-c)
 * applies to the submitting task.
 */

#include <block.bpf.h>

#define DISK_NAME_LEN 32

struct bio_event {
	u64 ts_ns;
	u64 delta_ns;  /* issue to completion */
	u64 qdelta_ns; /* submission to issue (-Q) */
	u64 sector;
	u32 bytes;
	u32 pid;
	u32 major;
	u32 minor;
	u32 rwflag;
	u32 sequential; /* 1: began where the disk's previous request ended; 2: not; 0: unknown */
	char comm[TASK_COMM_LEN];
	char disk[DISK_NAME_LEN];
};

/* The sector after each disk's last completed request, for -P. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u64);
} last_sector SEC(".maps");

TOOL_EVENTS(1 << 20);

static __always_inline void on_complete(void *ctx, struct request *rq, const struct block_stamp *s)
{
	u64 now = bpf_ktime_get_ns();
	struct bio_event *e = tool_reserve(struct bio_event);

	if (!e)
		return;
	struct gendisk *disk = rq_disk(rq);
	u32 dev;

	e->ts_ns = now;
	e->delta_ns = now - s->ts_issue;
	e->qdelta_ns = s->ts_start ? s->ts_issue - s->ts_start : 0;
	e->sector = BPF_CORE_READ(rq, __sector);
	e->bytes = BPF_CORE_READ(rq, __data_len);
	e->pid = s->pid;
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	e->rwflag = rq_is_write(rq);
	disk_dev(disk, &e->major, &e->minor);
	e->disk[0] = 0;
	if (disk)
		bpf_probe_read_kernel_str(e->disk, sizeof(e->disk), &disk->disk_name);
	dev = (e->major << 20) | e->minor;
	u64 *last = bpf_map_lookup_elem(&last_sector, &dev);
	e->sequential = last ? (*last == e->sector ? 1 : 2) : 0;
	u64 next = e->sector + (e->bytes >> 9);
	bpf_map_update_elem(&last_sector, &dev, &next, BPF_ANY);
	tool_submit(ctx, e);
}

BLOCK_PROGRAMS(on_complete)
