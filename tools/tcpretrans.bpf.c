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

#include <hist.bpf.h>
#include <sock.bpf.h>

#define RETRANSMIT 1
#define TLP 2

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

COUNT_MAP(counts, struct flow, 10240);

TOOL_EVENTS(1 << 18);

static __always_inline int retransmitted(void *ctx, const struct sock *sk, const struct sk_buff *skb, u16 type)
{
	struct event e = {};

	if (!sk)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!family_wanted(e.family))
		return 0;
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	SK_ADDRS(sk, e.family, &e.saddr, &e.daddr);
	if (do_count) {
		struct flow key = { .family = e.family, .lport = e.lport, .dport = e.dport };

		__builtin_memcpy(key.saddr, e.saddr, sizeof(key.saddr));
		__builtin_memcpy(key.daddr, e.daddr, sizeof(key.daddr));
		count_increment(&counts, &key);
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

/* The tracepoint's record as its format file lays it out, the same since 4.16. Not the kernel's
 * type for it: that is named after the event class, which was tcp_event_sk_skb until 6.13, so a
 * kernel's vmlinux.h has one name or the other. */
struct tcp_retransmit_skb_record {
	u64 common;		/* struct trace_entry */
	const void *skbaddr;
	const void *skaddr;
};

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retrans_tp(struct tcp_retransmit_skb_record *ctx)
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
