// SPDX-License-Identifier: GPL-2.0
/*
 * tcpconnect: active TCP connections (connect()), one record each or counts per flow.
 *
 * Two rungs per address family, best first (tcpconnect.py names them as fallback ladders):
 * - fexit on tcp_v4_connect/tcp_v6_connect (5.5+, where fentry is allowed): runs when the SYN
 *   is on its way, with the local port chosen;
 * - the sock:inet_sock_set_state tracepoint (4.16+): the change CLOSE -> SYN_SENT happens inside
 *   tcp_v{4,6}_connect, in the caller's context, just before the local port is picked. Without
 *   -L the record is sent there; with -L it is sent at the socket's next change (ESTABLISHED,
 *   or CLOSE when the connect fails), when the port is known.
 *
 * -d: the host name a connect's destination was looked up by, from uprobes on the C library's
 * getaddrinfo() (tcpconnect.py attaches them): resolver.bpf.h's lookup_enter keeps the name and
 * the result pointer, dns_return walks the struct addrinfo list getaddrinfo() made and records
 * each IPv4 and IPv6 address in `names`, and a connect's record gets the name of its destination
 * address. (BCC reads the DNS answers udp_recvmsg() receives, with kprobes; where there are none,
 * the resolver's own answer serves, and it also names what /etc/hosts resolved.)
 * Compiled after tool.bpf.h: tool_traced() is -p and -u.
 */

#include <hist.bpf.h>
#include <sock.bpf.h>
#ifdef TOOL_DNS
#include <resolver.bpf.h>
#else
#define HOST_LEN 80	/* resolver.bpf.h's: the record is the same with and without -d */
#endif

const volatile u16 dports[MAX_PORTS] = {};	/* -P: only these destination ports */
const volatile u32 n_dports = 0;
const volatile bool with_lport = false;		/* -L */
const volatile bool do_count = false;		/* -c: count per flow instead of sending records */

struct event {
	u64 ts_us;
	u32 pid;
	u32 uid;
	u16 family;
	u16 lport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[16];
	u64 query_ts_us;	/* -d: when the lookup that named daddr returned; 0: none seen */
	char query[HOST_LEN];
};

struct flow {
	u8 saddr[16];
	u8 daddr[16];
	u16 family;
	u16 dport;
};

COUNT_MAP(counts, struct flow, 10240);

/* -L on the tracepoint rung: the connecting task's record, sent when the local port is known. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct event);
} connecting SEC(".maps");

TOOL_EVENTS(1 << 18);

/* -- -d: the addresses getaddrinfo() returned, and the name each was looked up by ------------- */
/* Compiled only for -d (TOOL_DNS): without it, its uprobes and its LRU map would cost every start
 * a verifier pass and the map's preallocation, for nothing. */
#ifdef TOOL_DNS

#define MAX_ADDRINFOS 16	/* a name's entries read: each address comes once per socket type */

struct addr_key {
	u32 family;
	u8 addr[16];		/* IPv4 in the first 4 bytes, as the records hold it */
};

struct name {
	u64 ts_us;
	char host[HOST_LEN];
};

/* BCC's DNS cache holds 10240 answers too; the least recently used go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct addr_key);
	__type(value, struct name);
} names SEC(".maps");

/* struct addrinfo of a 64-bit process, glibc's and musl's alike (POSIX's order of fields). */
struct user_addrinfo {
	int ai_flags;
	int ai_family;
	int ai_socktype;
	int ai_protocol;
	u32 ai_addrlen;
	u64 ai_addr;		/* struct sockaddr_in: the address at byte 4; sockaddr_in6: at byte 8 */
	u64 ai_canonname;
	u64 ai_next;
};

/* Whether `host` is an address written out ("10.0.0.1", "::1"): its lookup asked no name server. */
static __always_inline bool numeric_host(const char *host)
{
	for (int i = 0; i < HOST_LEN; i++) {
		char c = host[i];

		if (!c)
			return i > 0;
		if (c == ':')
			return true;	/* no host name has one */
		if (c != '.' && (c < '0' || c > '9'))
			return false;
	}
	return false;
}

SEC("uretprobe")
int BPF_URETPROBE(dns_return, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct lookup *l = bpf_map_lookup_elem(&lookups, &tid);
	struct name n = {};
	u64 ai = 0;

	if (!l)
		return 0;
	if (ret || !l->res || numeric_host(l->host) || bpf_probe_read_user(&ai, sizeof(ai), (void *)l->res))
		goto out;
	n.ts_us = bpf_ktime_get_ns() / 1000;
	__builtin_memcpy(n.host, l->host, sizeof(n.host));
	for (int i = 0; i < MAX_ADDRINFOS && ai; i++) {
		struct user_addrinfo a;
		struct addr_key key = {};

		if (bpf_probe_read_user(&a, sizeof(a), (void *)ai))
			break;
		ai = a.ai_next;
		key.family = a.ai_family;
		if (a.ai_family == AF_INET && !bpf_probe_read_user(key.addr, 4, (void *)(a.ai_addr + 4)))
			bpf_map_update_elem(&names, &key, &n, BPF_ANY);
		else if (a.ai_family == AF_INET6 && !bpf_probe_read_user(key.addr, 16, (void *)(a.ai_addr + 8)))
			bpf_map_update_elem(&names, &key, &n, BPF_ANY);
	}
out:
	bpf_map_delete_elem(&lookups, &tid);
	return 0;
}
#endif /* TOOL_DNS */

/* Counts or sends a connect whose addresses and ports `e` holds (-d: with its name, if known). */
static __always_inline void report(void *ctx, struct event *e)
{
	if (do_count) {
		struct flow key = { .family = e->family, .dport = e->dport };

		__builtin_memcpy(key.saddr, e->saddr, sizeof(key.saddr));
		__builtin_memcpy(key.daddr, e->daddr, sizeof(key.daddr));
		count_increment(&counts, &key);
		return;
	}
#ifdef TOOL_DNS	/* -d */
	struct addr_key key = { .family = e->family };
	struct name *n;

	__builtin_memcpy(key.addr, e->daddr, sizeof(key.addr));
	n = bpf_map_lookup_elem(&names, &key);
	if (n) {
		e->query_ts_us = n->ts_us;
		__builtin_memcpy(e->query, n->host, sizeof(e->query));
	}
#endif
	tool_output(ctx, e, sizeof(*e));
}

static __always_inline void identify(struct event *e, u16 family)
{
	e->ts_us = bpf_ktime_get_ns() / 1000;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->family = family;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* -- rung 1: fexit, with everything read from the socket ----------------------------------- */

static __always_inline int connected(void *ctx, struct sock *sk, int ret, u16 family)
{
	struct event e = {};

	if (ret || !tool_traced() || (targ_family && targ_family != family))
		return 0;
	e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!port_in(e.dport, dports, n_dports))
		return 0;
	identify(&e, family);
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	SK_ADDRS(sk, family, &e.saddr, &e.daddr);
	report(ctx, &e);
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(v4_fexit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return connected(ctx, sk, ret, AF_INET);
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(v6_fexit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return connected(ctx, sk, ret, AF_INET6);
}

/* -- rung 2: the state tracepoint, with the tracepoint's own fields ------------------------- */

static __always_inline int state_change(struct trace_event_raw_inet_sock_set_state *ctx, u16 family)
{
	u64 sk = (u64)ctx->skaddr;
	struct event e = {}, *pending;

	if (ctx->protocol != IPPROTO_TCP || ctx->family != family || (targ_family && targ_family != family))
		return 0;
	if (ctx->oldstate == TCP_SYN_SENT && with_lport) {
		/* The local port is chosen by now, whether the connect succeeded or not. */
		pending = bpf_map_lookup_elem(&connecting, &sk);
		if (!pending)
			return 0;
		pending->lport = ctx->sport;
		report(ctx, pending);
		bpf_map_delete_elem(&connecting, &sk);
		return 0;
	}
	if (ctx->oldstate != TCP_CLOSE || ctx->newstate != TCP_SYN_SENT)
		return 0;
	if (!tool_traced() || !port_in(ctx->dport, dports, n_dports))
		return 0;
	identify(&e, family);
	e.dport = ctx->dport;
	STATE_ADDRS(ctx, family, &e.saddr, &e.daddr);
	if (with_lport)
		bpf_map_update_elem(&connecting, &sk, &e, BPF_ANY);
	else
		report(ctx, &e);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int v4_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return state_change(ctx, AF_INET);
}

SEC("tracepoint/sock/inet_sock_set_state")
int v6_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return state_change(ctx, AF_INET6);
}
