// SPDX-License-Identifier: GPL-2.0
/*
 * tcplife: one line per closed TCP session, with its owner, bytes and lifespan, from the
 * sock:inet_sock_set_state tracepoint (4.16+; BCC's hook too). The byte counts are the socket's
 * own (tcp_sock.bytes_acked and bytes_received, RFC 4898's counters), read with CO-RE so they
 * are right on every kernel's layout. Compiled after tool.bpf.h (targ_tgid is -p).
 */

#include <sock.bpf.h>

const volatile u16 lports[MAX_PORTS] = {};	/* -L */
const volatile u32 n_lports = 0;
const volatile u16 rports[MAX_PORTS] = {};	/* -D */
const volatile u32 n_rports = 0;

struct ident {
	u32 pid;
	char comm[16];
};

struct event {
	u64 ts_us;
	u64 span_us;
	u64 rx_b;
	u64 tx_b;
	u32 pid;
	u16 family;
	u16 lport;
	u16 rport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[16];
};

/*
 * Each session: when it was established (or began connecting), and the socket's byte counters
 * then. The kernel's counters follow the sequence numbers, which the SYN and FIN consume too;
 * counting from the handshake's end and taking out an acknowledged FIN of ours (fin_out) and the
 * peer's FIN (the socket's SOCK_DONE flag) leaves the data bytes alone.
 */
struct session {
	u64 ts;
	u64 acked;
	u64 received;
	u32 fin_out;	/* this side sent its FIN (FIN_WAIT1 or LAST_ACK was entered) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct session);
} birth SEC(".maps");

/*
 * Who owns each session: the task that connect()ed it, else the first to close() it (the
 * ESTABLISHED -> FIN_WAIT1 or CLOSE_WAIT -> LAST_ACK change runs in close()'s context, whereas
 * the final change to CLOSE often runs in a softirq, on behalf of nobody).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct ident);
} owner SEC(".maps");

TOOL_EVENTS(1 << 18);

/* sk_flags moved into sock_common (as skc_flags) in 6.9. */
struct sock___pre_6_9 {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

static __always_inline unsigned long sock_flags(struct sock *sk)
{
	if (bpf_core_field_exists(struct sock_common, skc_flags))
		return BPF_CORE_READ(sk, __sk_common.skc_flags);
	return BPF_CORE_READ((struct sock___pre_6_9 *)sk, sk_flags);
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_change(struct trace_event_raw_inet_sock_set_state *ctx)
{
	u64 sk = (u64)ctx->skaddr;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct session *start;
	int newstate = ctx->newstate;
	u16 fam = ctx->family, lport = ctx->sport, rport = ctx->dport;
	struct ident *who, me = {};
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (newstate < TCP_FIN_WAIT1) {
		struct session s = {
			.ts = bpf_ktime_get_ns(),
			.acked = BPF_CORE_READ(tp, bytes_acked),
			.received = BPF_CORE_READ(tp, bytes_received),
		};

		bpf_map_update_elem(&birth, &sk, &s, BPF_ANY);
	}
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) {
		start = bpf_map_lookup_elem(&birth, &sk);
		if (start)
			start->fin_out = 1;
	}
	if (newstate == TCP_SYN_SENT || newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) {
		me.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(me.comm, sizeof(me.comm));
		bpf_map_update_elem(&owner, &sk, &me, newstate == TCP_SYN_SENT ? BPF_ANY : BPF_NOEXIST);
	}
	if (newstate != TCP_CLOSE)
		return 0;

	start = bpf_map_lookup_elem(&birth, &sk);
	who = bpf_map_lookup_elem(&owner, &sk);
	if (!start)	/* a listener, or a session older than the tool */
		goto done;
	if ((targ_family && fam != targ_family) || !port_in(lport, lports, n_lports) ||
	    !port_in(rport, rports, n_rports))
		goto done;
	if (targ_tgid && (!who || who->pid != targ_tgid))
		goto done;

	e = tool_reserve(struct event);
	if (!e)
		goto done;
	u64 now = bpf_ktime_get_ns();
	u64 acked = BPF_CORE_READ(tp, bytes_acked) - start->acked;
	u64 received = BPF_CORE_READ(tp, bytes_received) - start->received;
	unsigned long flags = sock_flags((struct sock *)sk);

	/* Our FIN is acknowledged when snd_una reached write_seq, which counts it. */
	if (start->fin_out && acked && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		acked--;
	/* The peer's FIN arrived: tcp_fin() set SOCK_DONE, and rcv_nxt moved over it. */
	if (received && (flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		received--;
	e->ts_us = now / 1000;
	e->span_us = (now - start->ts) / 1000;
	e->rx_b = received;
	e->tx_b = acked;
	if (who) {
		e->pid = who->pid;
		__builtin_memcpy(e->comm, who->comm, sizeof(e->comm));
	} else {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	e->family = fam;
	e->lport = lport;
	e->rport = rport;
	STATE_ADDRS(ctx, fam, &e->saddr, &e->daddr);
	tool_submit(ctx, e);
done:
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&owner, &sk);
	return 0;
}
