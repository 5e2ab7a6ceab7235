/* SPDX-License-Identifier: GPL-2.0 */
/*
 * resolver.bpf.h: what the tools that watch the C library's host name lookups share
 * (gethostlatency, tcpconnect -d): lookup_enter, a uprobe for the entry of getaddrinfo(),
 * gethostbyname() or gethostbyname2() (the Python side attaches it with _kit.Uprobes), which
 * keeps the host name asked for, the time, and getaddrinfo()'s result pointer per thread in
 * `lookups`, for the tool's uretprobe to read on return and delete.
 *
 * Compiled after tool.bpf.h: tool_traced() is the tool's -p (and -u) filter.
 */
#ifndef __BPFKIT_TOOLS_RESOLVER_BPF_H__
#define __BPFKIT_TOOLS_RESOLVER_BPF_H__

#define HOST_LEN 80

struct lookup {
	u64 ts_ns;
	u64 res;		/* getaddrinfo()'s struct addrinfo **res; not an argument of the others */
	char host[HOST_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);	/* the thread's id: a lookup starts and ends on one thread */
	__type(value, struct lookup);
} lookups SEC(".maps");

SEC("uprobe")
int BPF_UPROBE(lookup_enter, const char *host, const char *service, const void *hints, void *res)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct lookup l = {};

	if (!tool_traced())
		return 0;
	if (host)
		bpf_probe_read_user_str(l.host, sizeof(l.host), host);
	l.res = (u64)res;
	l.ts_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&lookups, &tid, &l, BPF_ANY);
	return 0;
}

#endif /* __BPFKIT_TOOLS_RESOLVER_BPF_H__ */
