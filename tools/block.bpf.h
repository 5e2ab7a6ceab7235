/* SPDX-License-Identifier: GPL-2.0 */
/*
 * block.bpf.h: what biosnoop and biotop share: a block request's disk and direction, read with
 * CO-RE only, and the programs of their three fallback ladders, one for each moment of a request
 * (the tools' Python names them in LADDERS):
 * - submission, by the task the I/O is for: the block:block_io_start tracepoint (6.5+) as tp_btf
 *   or raw_tp, else fentry or kprobe on blk_account_io_start;
 * - issue to the device: block_rq_issue as tp_btf, else raw_tp;
 * - completion: block_rq_complete as tp_btf, else raw_tp.
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

/*
 * The ladders' programs: start_{tp_btf,raw_tp,fentry,kprobe} call start(rq),
 * issue_{tp_btf,raw_tp} issue(rq), complete_{tp_btf,raw_tp} complete(ctx, rq).
 */
#define BLOCK_PROGRAMS(start, issue, complete)                                             \
	SEC("tp_btf/block_io_start")                                                       \
	int BPF_PROG(start_tp_btf, struct request *rq) { return start(rq); }               \
	SEC("raw_tp/block_io_start")                                                       \
	int BPF_PROG(start_raw_tp, struct request *rq) { return start(rq); }               \
	SEC("fentry/blk_account_io_start")                                                 \
	int BPF_PROG(start_fentry, struct request *rq) { return start(rq); }               \
	SEC("kprobe/blk_account_io_start")                                                 \
	int BPF_KPROBE(start_kprobe, struct request *rq) { return start(rq); }             \
                                                                                           \
	SEC("tp_btf/block_rq_issue")                                                       \
	int BPF_PROG(issue_tp_btf, struct request *rq) { return issue(rq); }               \
	SEC("raw_tp/block_rq_issue")                                                       \
	int BPF_PROG(issue_raw_tp, struct request *rq) { return issue(rq); }               \
                                                                                           \
	SEC("tp_btf/block_rq_complete")                                                    \
	int BPF_PROG(complete_tp_btf, struct request *rq) { return complete(ctx, rq); }    \
	SEC("raw_tp/block_rq_complete")                                                    \
	int BPF_PROG(complete_raw_tp, struct request *rq) { return complete(ctx, rq); }

#endif /* __BPFKIT_TOOLS_BLOCK_BPF_H__ */
