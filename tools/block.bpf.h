/* SPDX-License-Identifier: GPL-2.0 */
/*
 * block.bpf.h: what biosnoop and biotop share: a block request's disk and direction, read with
 * CO-RE only; the `stamps` each request carries from its submission to its completion (the task
 * that submitted it, and when it was submitted and issued); and the programs of their three
 * fallback ladders, one for each moment of a request (the tools' Python names them in LADDERS):
 * - submission, by the task the I/O is for: the block:block_io_start tracepoint (6.5+) as tp_btf
 *   or raw_tp, else fentry or kprobe on blk_account_io_start, else (6.1-6.4, where that function
 *   is inlined) block_rq_insert as tp_btf or raw_tp: it sees the requests that go through an I/O
 *   scheduler; one issued at once is seen at its issue, by the issuing task, with no queued time;
 * - issue to the device: block_rq_issue as tp_btf, else raw_tp;
 * - completion: block_rq_complete as tp_btf, else raw_tp.
 * The submission and issue programs are the header's; a tool gives what it does at completion.
 *
 * Included after tool.bpf.h: tool_traced() (-p, -c) applies to the submitting task.
 */
#ifndef __BPFKIT_TOOLS_BLOCK_BPF_H__
#define __BPFKIT_TOOLS_BLOCK_BPF_H__

#define REQ_OP_MASK 0xff
#define REQ_OP_WRITE 1

/* struct request had rq_disk until 5.16; since then the disk is q->disk. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *rq_disk(struct request *rq)
{
	struct request___old *old = (void *)rq;

	if (bpf_core_field_exists(old->rq_disk))
		return BPF_CORE_READ(old, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

/* 1 for a write, 0 for a read (or any other operation). */
static __always_inline u32 rq_is_write(struct request *rq)
{
	return (BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK) == REQ_OP_WRITE;
}

/* The disk's device number, 0:0 without a disk. */
static __always_inline void disk_dev(struct gendisk *disk, u32 *major, u32 *minor)
{
	*major = disk ? BPF_CORE_READ(disk, major) : 0;
	*minor = disk ? BPF_CORE_READ(disk, first_minor) : 0;
}

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

const volatile bool filter_dev = false; /* -d DISK (biosnoop): only this disk */
const volatile u32 targ_major = 0;
const volatile u32 targ_minor = 0;

/* What a request carries from its submission to its completion. */
struct block_stamp {
	u64 ts_start;	/* submitted; 0: not seen at submission */
	u64 ts_issue;	/* issued to the device; 0: not yet */
	u32 pid;	/* the submitting task (else the issuing one) */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct block_stamp);
} stamps SEC(".maps");

/* Whether -d leaves the request's disk in. */
static __always_inline bool disk_wanted(struct request *rq)
{
	struct gendisk *disk;

	if (!filter_dev)
		return true;
	disk = rq_disk(rq);
	return disk && BPF_CORE_READ(disk, major) == targ_major && BPF_CORE_READ(disk, first_minor) == targ_minor;
}

static __always_inline void block_stamp(struct request *rq, u64 ts_start, u64 ts_issue)
{
	struct block_stamp s = { .ts_start = ts_start, .ts_issue = ts_issue };

	s.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&stamps, &rq, &s, BPF_ANY);
}

static __always_inline int block_start(struct request *rq)
{
	if (tool_traced() && disk_wanted(rq))
		block_stamp(rq, bpf_ktime_get_ns(), 0);
	return 0;
}

/*
 * A request not seen at submission (issued before the tool started, or one the block layer made
 * itself, such as a flush) is stamped here with the issuing task, as BCC's tools show it, and no
 * queued time; unless a task filter is set: the issuing task is not the one the I/O is for.
 */
static __always_inline int block_issue(struct request *rq)
{
	struct block_stamp *s = bpf_map_lookup_elem(&stamps, &rq);

	if (s)
		s->ts_issue = bpf_ktime_get_ns();
	else if (!(targ_tgid || targ_tid || filter_uid || filter_cg) && disk_wanted(rq))
		block_stamp(rq, 0, bpf_ktime_get_ns());
	return 0;
}

/*
 * The ladders' programs: start_{tp_btf,raw_tp,fentry,kprobe} stamp the request,
 * issue_{tp_btf,raw_tp} note its issue, and complete_{tp_btf,raw_tp} call
 * complete(ctx, rq, stamp) for a request that was stamped and issued (one completed without
 * being issued has nothing to time), then drop its stamp.
 */
#define BLOCK_PROGRAMS(complete)                                                           \
	static __always_inline int block_complete(void *ctx, struct request *rq)          \
	{                                                                                  \
		struct block_stamp *s = bpf_map_lookup_elem(&stamps, &rq);                 \
                                                                                           \
		if (!s)                                                                    \
			return 0;                                                          \
		if (s->ts_issue)                                                           \
			complete(ctx, rq, s);                                              \
		bpf_map_delete_elem(&stamps, &rq);                                         \
		return 0;                                                                  \
	}                                                                                  \
                                                                                           \
	SEC("tp_btf/block_io_start")                                                       \
	int BPF_PROG(start_tp_btf, struct request *rq) { return block_start(rq); }         \
	SEC("raw_tp/block_io_start")                                                       \
	int BPF_PROG(start_raw_tp, struct request *rq) { return block_start(rq); }         \
	SEC("fentry/blk_account_io_start")                                                 \
	int BPF_PROG(start_fentry, struct request *rq) { return block_start(rq); }         \
	SEC("kprobe/blk_account_io_start")                                                 \
	int BPF_KPROBE(start_kprobe, struct request *rq) { return block_start(rq); }       \
	SEC("tp_btf/block_rq_insert")                                                      \
	int BPF_PROG(start_insert_tp_btf, struct request *rq) { return block_start(rq); }  \
	SEC("raw_tp/block_rq_insert")                                                      \
	int BPF_PROG(start_insert_raw_tp, struct request *rq) { return block_start(rq); }  \
                                                                                           \
	SEC("tp_btf/block_rq_issue")                                                       \
	int BPF_PROG(issue_tp_btf, struct request *rq) { return block_issue(rq); }         \
	SEC("raw_tp/block_rq_issue")                                                       \
	int BPF_PROG(issue_raw_tp, struct request *rq) { return block_issue(rq); }         \
                                                                                           \
	SEC("tp_btf/block_rq_complete")                                                    \
	int BPF_PROG(complete_tp_btf, struct request *rq) { return block_complete(ctx, rq); } \
	SEC("raw_tp/block_rq_complete")                                                    \
	int BPF_PROG(complete_raw_tp, struct request *rq) { return block_complete(ctx, rq); }

#endif /* __BPFKIT_TOOLS_BLOCK_BPF_H__ */
