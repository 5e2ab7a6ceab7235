// SPDX-License-Identifier: GPL-2.0
/*
 * biosnoop: one line per block I/O, with the task that submitted it, its disk, sector, size and
 * latency. Three moments of a request, each a fallback ladder of block.bpf.h (biosnoop.py's
 * LADDERS): submission (the task, and with -Q the start of the queued time), issue to the device
 * and completion. The request is read with CO-RE only, so one body serves every rung.
 * Compiled after tool.bpf.h: tool_traced() (-c) applies to the submitting task.
 */

#include <block.bpf.h>

#define DISK_NAME_LEN 32
#define TASK_COMM_LEN 16

const volatile bool filter_dev = false; /* -d DISK */
const volatile u32 targ_major = 0;
const volatile u32 targ_minor = 0;

struct stamp {
	u64 ts_start;
	u64 ts_issue;
	u32 pid;
	char comm[TASK_COMM_LEN];
};

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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct stamp);
} stamps SEC(".maps");

/* The sector after each disk's last completed request, for -P. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u64);
} last_sector SEC(".maps");

TOOL_EVENTS(1 << 20);

static __always_inline bool wanted(struct gendisk *disk)
{
	if (!filter_dev)
		return true;
	return disk && BPF_CORE_READ(disk, major) == targ_major && BPF_CORE_READ(disk, first_minor) == targ_minor;
}

static __always_inline int on_start(struct request *rq)
{
	struct stamp s = {};

	if (!tool_traced() || !wanted(rq_disk(rq)))
		return 0;
	s.ts_start = bpf_ktime_get_ns();
	s.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&stamps, &rq, &s, BPF_ANY);
	return 0;
}

static __always_inline int on_issue(struct request *rq)
{
	struct stamp *s = bpf_map_lookup_elem(&stamps, &rq);

	if (s) {
		s->ts_issue = bpf_ktime_get_ns();
		return 0;
	}
	/* Not seen at submission (issued before the tool started, or a request the block layer made
	 * itself, such as a flush): BCC's biosnoop shows these with the issuing task, and so does
	 * this, with no queued time. */
	if ((targ_tgid || targ_tid || filter_uid || filter_cg) || !wanted(rq_disk(rq)))
		return 0;
	struct stamp n = {};
	n.ts_issue = bpf_ktime_get_ns();
	n.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	bpf_map_update_elem(&stamps, &rq, &n, BPF_ANY);
	return 0;
}

static __always_inline int on_complete(void *ctx, struct request *rq)
{
	struct stamp *s = bpf_map_lookup_elem(&stamps, &rq);
	struct bio_event *e;
	u64 now = bpf_ktime_get_ns();

	if (!s)
		return 0;
	if (!s->ts_issue)
		goto done; /* completed without being issued: nothing to time */
	e = tool_reserve(struct bio_event);
	if (!e)
		goto done;
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
done:
	bpf_map_delete_elem(&stamps, &rq);
	return 0;
}

BLOCK_PROGRAMS(on_start, on_issue, on_complete)
