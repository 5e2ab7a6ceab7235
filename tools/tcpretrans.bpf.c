// SPDX-License-Identifier: GPL-2.0
/*
 * tcpretrans: TCP retransmits (and, with -l, tail loss probes), one record each or counts per
 * flow. Every hook hands over the socket, whose addresses, ports and state are read with CO-RE.
 *
 * Retransmits, best first (tcpretrans.py names the ladder): the tcp:tcp_retransmit_skb BTF
 * tracepoint (5.5+), the same tracepoint through tracefs (4.15+), a kprobe on
 * tcp_retransmit_skb. Tail loss probes have no tracepoint: fentry or a kprobe on
 * tcp_send_loss_probe, compiled in only for -l (LOSS_PROBE), so that a kernel with neither
 * refuses -l alone. Compiled after tool.bpf.h.
 */

#define AF_INET 2
#define AF_INET6 10
#define RETRANSMIT 1
#define TLP 2

const volatile u16 targ_family = 0;	/* -4/-6 */
const volatile bool do_count = false;	/* -c: count per flow instead of sending records */

struct event {
	u64 ts_us;
	u32 pid;
	u32 seq;
	int state;
	u16 type;
	u16 family;
	u16 lport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
};

struct flow {
	u8 saddr[16];
	u8 daddr[16];
	u16 family;
	u16 lport;
	u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, u64);
} counts SEC(".maps");

TOOL_EVENTS(1 << 18);

static __always_inline int retransmitted(void *ctx, const struct sock *sk, const struct sk_buff *skb, u16 type)
{
	struct event e = {};

	if (!sk)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((e.family != AF_INET && e.family != AF_INET6) || (targ_family && targ_family != e.family))
		return 0;
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e.family == AF_INET) {
		bpf_core_read(&e.saddr, 4, &sk->__sk_common.skc_rcv_saddr); /* 4 bytes, not the 16 of the field it goes to */
		bpf_core_read(&e.daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&e.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	if (do_count) {
		struct flow key = { .family = e.family, .lport = e.lport, .dport = e.dport };
		u64 one = 1, *n;

		__builtin_memcpy(key.saddr, e.saddr, sizeof(key.saddr));
		__builtin_memcpy(key.daddr, e.daddr, sizeof(key.daddr));
		n = bpf_map_lookup_elem(&counts, &key);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
		return 0;
	}
	e.ts_us = bpf_ktime_get_ns() / 1000;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.type = type;
	e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	/* The segment's first sequence number: struct tcp_skb_cb, which starts skb->cb, begins with it. */
	if (skb)
		bpf_probe_read_kernel(&e.seq, sizeof(e.seq), (void *)skb + bpf_core_field_offset(struct sk_buff, cb));
	tool_output(ctx, &e, sizeof(e));
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_btf, const struct sock *sk, const struct sk_buff *skb)
{
	return retransmitted(ctx, sk, skb, RETRANSMIT);
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retrans_tp(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	return retransmitted(ctx, ctx->skaddr, ctx->skbaddr, RETRANSMIT);
}

SEC("kprobe/tcp_retransmit_skb")
int BPF_KPROBE(retrans_kprobe, struct sock *sk, struct sk_buff *skb)
{
	return retransmitted(ctx, sk, skb, RETRANSMIT);
}

#ifdef LOSS_PROBE
SEC("fentry/tcp_send_loss_probe")
int BPF_PROG(tlp_fentry, struct sock *sk)
{
	return retransmitted(ctx, sk, NULL, TLP);
}

SEC("kprobe/tcp_send_loss_probe")
int BPF_KPROBE(tlp_kprobe, struct sock *sk)
{
	return retransmitted(ctx, sk, NULL, TLP);
}
#endif
