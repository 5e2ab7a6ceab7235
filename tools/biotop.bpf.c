// SPDX-License-Identifier: GPL-2.0
/*
 * biotop: block I/O per process and disk, summed in a map that biotop.py prints and clears
 * each interval. The same three ladders as biosnoop, block.bpf.h's (submission, issue and
 * completion); the request is read with CO-RE only. Compiled after tool.bpf.h: -p applies to the
 * submitter.
 */

#include <block.bpf.h>

#define TASK_COMM_LEN 16

struct io_start {
	u64 ts_issue;
	u32 pid;
	char comm[TASK_COMM_LEN];
};

struct io_key {
	u32 pid;
	u32 rwflag;
	u32 major;
	u32 minor;
	char comm[TASK_COMM_LEN];
};

struct io_val {
	u64 bytes;
	u64 us;
	u64 io;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct io_start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct io_key);
	__type(value, struct io_val);
} counts SEC(".maps");

static __always_inline int on_start(struct request *rq)
{
	struct io_start s = {};

	if (!tool_traced())
		return 0;
	s.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&starts, &rq, &s, BPF_ANY);
	return 0;
}

static __always_inline int on_issue(struct request *rq)
{
	struct io_start *s = bpf_map_lookup_elem(&starts, &rq);

	if (s) {
		s->ts_issue = bpf_ktime_get_ns();
		return 0;
	}
	/* Not seen at submission: with -p, not ours; else counted for the issuing task. */
	if (targ_tgid)
		return 0;
	struct io_start n = { .ts_issue = bpf_ktime_get_ns() };
	n.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	bpf_map_update_elem(&starts, &rq, &n, BPF_ANY);
	return 0;
}

static __always_inline int on_complete(void *ctx, struct request *rq)
{
	struct io_start *s = bpf_map_lookup_elem(&starts, &rq);
	struct io_key key = {};
	struct io_val *v, zero = {};

	if (!s)
		return 0;
	if (!s->ts_issue)
		goto done;
	struct gendisk *disk = rq_disk(rq);
	key.pid = s->pid;
	__builtin_memcpy(key.comm, s->comm, sizeof(key.comm));
	key.rwflag = rq_is_write(rq);
	disk_dev(disk, &key.major, &key.minor);
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v)
			goto done;
	}
	__sync_fetch_and_add(&v->bytes, BPF_CORE_READ(rq, __data_len));
	__sync_fetch_and_add(&v->us, (bpf_ktime_get_ns() - s->ts_issue) / 1000);
	__sync_fetch_and_add(&v->io, 1);
done:
	bpf_map_delete_elem(&starts, &rq);
	return 0;
}

BLOCK_PROGRAMS(on_start, on_issue, on_complete)
