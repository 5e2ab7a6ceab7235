// SPDX-License-Identifier: GPL-2.0
/*
 * gethostlatency: the latency of host name lookups, from uprobes and uretprobes on libc's
 * resolvers (getaddrinfo, gethostbyname, gethostbyname2), which gethostlatency.py attaches.
 * Compiled after tool.bpf.h (tool_traced(): -p).
 */

#define TASK_COMM_LEN 16
#define HOST_LEN 80

struct lookup {
	u64 ts_ns;
	char host[HOST_LEN];
};

struct host_event {
	u64 delta_ns;
	u32 pid;
	u32 tid;
	char comm[TASK_COMM_LEN];
	char host[HOST_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct lookup);
} lookups SEC(".maps");

TOOL_EVENTS(1 << 16);

SEC("uprobe")
int BPF_UPROBE(lookup_enter, const char *host)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct lookup l = {};

	if (!tool_traced())
		return 0;
	if (host)
		bpf_probe_read_user_str(l.host, sizeof(l.host), host);
	l.ts_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&lookups, &tid, &l, BPF_ANY);
	return 0;
}

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
