// SPDX-License-Identifier: GPL-2.0
/*
 * biotop: block I/O per process and disk, summed in a map that biotop.py prints and clears
 * each interval. The same three ladders as biosnoop, block.bpf.h's (submission, issue and
 * completion): what is counted at completion is this file's. The request is read with CO-RE
 * only. Compiled after tool.bpf.h: -p applies to the submitter.
 */

#include <block.bpf.h>

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
	__type(key, struct io_key);
	__type(value, struct io_val);
} counts SEC(".maps");

static __always_inline void on_complete(void *ctx, struct request *rq, const struct block_stamp *s)
{
	struct io_key key = {};
	struct io_val *v, zero = {};

	key.pid = s->pid;
	__builtin_memcpy(key.comm, s->comm, sizeof(key.comm));
	key.rwflag = rq_is_write(rq);
	disk_dev(rq_disk(rq), &key.major, &key.minor);
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->bytes, BPF_CORE_READ(rq, __data_len));
	__sync_fetch_and_add(&v->us, (bpf_ktime_get_ns() - s->ts_issue) / 1000);
	__sync_fetch_and_add(&v->io, 1);
}

BLOCK_PROGRAMS(on_complete)
