// SPDX-License-Identifier: GPL-2.0
/*
 * gethostlatency: the latency of host name lookups, from uprobes and uretprobes on libc's
 * resolvers (getaddrinfo, gethostbyname, gethostbyname2), which gethostlatency.py attaches: the
 * entry's uprobe is resolver.bpf.h's lookup_enter, the return's sends the record.
 * Compiled after tool.bpf.h (tool_traced(): -p).
 */

#include <resolver.bpf.h>

#define TASK_COMM_LEN 16

struct host_event {
	u64 delta_ns;
	u32 pid;
	u32 tid;
	char comm[TASK_COMM_LEN];
	char host[HOST_LEN];
};

TOOL_EVENTS(1 << 16);

SEC("uretprobe")
int BPF_URETPROBE(lookup_return)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct lookup *l = bpf_map_lookup_elem(&lookups, &tid);
	struct host_event *e;

	if (!l)
		return 0;
	e = tool_reserve(struct host_event);
	if (e) {
		e->delta_ns = bpf_ktime_get_ns() - l->ts_ns;
		e->pid = id >> 32;
		e->tid = tid;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		__builtin_memcpy(e->host, l->host, sizeof(e->host));
		tool_submit(ctx, e);
	}
	bpf_map_delete_elem(&lookups, &tid);
	return 0;
}
