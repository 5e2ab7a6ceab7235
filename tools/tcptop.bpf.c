// SPDX-License-Identifier: GPL-2.0
/*
 * tcptop: TCP bytes sent and received per task and connection, summed in a map that tcptop.py
 * reads and clears every interval.
 *
 * Two ladders, best first (tcptop.py names them):
 * - sends: fentry or a kprobe on tcp_sendmsg (the bytes asked for), else the sock:sock_send_length
 *   tracepoint (6.3+; the bytes sendmsg() accepted, any socket: TCP is picked out here);
 * - receives: fentry or a kprobe on tcp_cleanup_rbuf (the bytes copied to the reader), else
 *   sock:sock_recv_length (what recvmsg() returned, less MSG_PEEK reads, which consume nothing).
 * All run in the sending or receiving task's context. Compiled after tool.bpf.h: tool_traced()
 * is -p.
 */

#include <sock.bpf.h>

#define MSG_PEEK 2

struct flow {
	u32 pid;
	u16 family;
	u16 lport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[16];
};

struct traffic {
	u64 sent;
	u64 received;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, struct traffic);
} flows SEC(".maps");

static __always_inline int count(struct sock *sk, long sent, long received)
{
	struct flow key = {};
	struct traffic *t, zero = {};

	if (!sk || !tool_traced())
		return 0;
	key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!family_wanted(key.family))
		return 0;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	key.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	SK_ADDRS(sk, key.family, &key.saddr, &key.daddr);
	t = bpf_map_lookup_elem(&flows, &key);
	if (!t) {
		bpf_map_update_elem(&flows, &key, &zero, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&flows, &key);
		if (!t)
			return 0;
	}
	if (sent > 0)
		__sync_fetch_and_add(&t->sent, sent);
	if (received > 0)
		__sync_fetch_and_add(&t->received, received);
	return 0;
}

/* -- sends ----------------------------------------------------------------------------------- */

SEC("fentry/tcp_sendmsg")
int BPF_PROG(send_fentry, struct sock *sk, struct msghdr *msg, size_t size)
{
	return count(sk, size, 0);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(send_kprobe, struct sock *sk, struct msghdr *msg, size_t size)
{
	return count(sk, size, 0);
}

/* The record of sock_send_length and sock_recv_length as their format files lay it out (since
 * 6.3, where they arrived): kernels before them have no such type for vmlinux.h to hold. */
struct sock_msg_length_record {
	u64 common;		/* struct trace_entry */
	void *sk;
	u16 family;
	u16 protocol;
	int ret;
	int flags;
};

SEC("tracepoint/sock/sock_send_length")
int send_tp(struct sock_msg_length_record *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || ctx->ret <= 0)
		return 0;
	return count(ctx->sk, ctx->ret, 0);
}

/* -- receives -------------------------------------------------------------------------------- */

SEC("fentry/tcp_cleanup_rbuf")
int BPF_PROG(recv_fentry, struct sock *sk, int copied)
{
	return count(sk, 0, copied);
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(recv_kprobe, struct sock *sk, int copied)
{
	return count(sk, 0, copied);
}

SEC("tracepoint/sock/sock_recv_length")
int recv_tp(struct sock_msg_length_record *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || ctx->ret <= 0 || (ctx->flags & MSG_PEEK))
		return 0;
	return count(ctx->sk, 0, ctx->ret);
}
