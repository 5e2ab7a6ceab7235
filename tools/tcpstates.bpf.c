// SPDX-License-Identifier: GPL-2.0
/*
 * tcpstates: TCP state changes with the time spent in the old state, from the
 * sock:inet_sock_set_state tracepoint (4.16+; the one hook BCC uses too). Its fields come from the
 * tracepoint's own record (trace_event_raw_inet_sock_set_state, relocated by CO-RE).
 * Compiled after tool.bpf.h.
 */

#include <sock.bpf.h>

const volatile u16 lports[MAX_PORTS] = {};	/* -L: only these local ports... */
const volatile u32 n_lports = 0;
const volatile u16 rports[MAX_PORTS] = {};	/* -D: ...and these remote ports */
const volatile u32 n_rports = 0;

struct event {
	u64 skaddr;
	u64 ts_us;
	u64 delta_us;	/* time in the old state; 0 when this socket was not seen before */
	u32 pid;
	int oldstate;
	int newstate;
	u16 family;
	u16 lport;
	u16 rport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[16];
};

/* When each socket entered its current state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, u64);
} since SEC(".maps");

TOOL_EVENTS(1 << 18);

SEC("tracepoint/sock/inet_sock_set_state")
int state_change(struct trace_event_raw_inet_sock_set_state *ctx)
{
	u64 sk = (u64)ctx->skaddr, now = bpf_ktime_get_ns(), *then, delta = 0;
	u16 fam = ctx->family, lport = ctx->sport, rport = ctx->dport;
	int newstate = ctx->newstate;
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if ((targ_family && fam != targ_family) || !port_in(lport, lports, n_lports) ||
	    !port_in(rport, rports, n_rports))
		return 0;
	then = bpf_map_lookup_elem(&since, &sk);
	if (then)
		delta = now - *then;
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&since, &sk);
	else
		bpf_map_update_elem(&since, &sk, &now, BPF_ANY);

	e = tool_reserve(struct event);
	if (!e)
		return 0;
	e->skaddr = sk;
	e->ts_us = now / 1000;
	e->delta_us = delta / 1000;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->oldstate = ctx->oldstate;
	e->newstate = newstate;
	e->family = fam;
	e->lport = lport;
	e->rport = rport;
	STATE_ADDRS(ctx, fam, &e->saddr, &e->daddr);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}
