// SPDX-License-Identifier: GPL-2.0
/*
 * tcpaccept: passive TCP connections, as accept() hands them to a task.
 *
 * Two rungs, best first (tcpaccept.py names them as a fallback ladder):
 * - fexit on inet_csk_accept (5.5+, where fentry is allowed): its return value is the new socket
 *   (read with bpf_get_func_ret(), 5.17+, since the function's arguments changed in 6.10);
 * - the exit tracepoints of accept4() and accept(): the new descriptor's socket, found through
 *   the task's file table (CO-RE reads), which covers every accept made by a system call.
 * Compiled after tool.bpf.h: tool_traced() is -p.
 */

#include <sock.bpf.h>

const volatile u16 lports[MAX_PORTS] = {};	/* -P: only these local ports */
const volatile u32 n_lports = 0;

struct event {
	u64 ts_us;
	u32 pid;
	u16 family;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char comm[16];
};

TOOL_EVENTS(1 << 18);

static __always_inline int accepted(void *ctx, struct sock *sk)
{
	struct event e = {};

	if (!sk || !tool_traced())
		return 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!family_wanted(e.family))
		return 0;
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port_in(e.lport, lports, n_lports))
		return 0;
	e.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	SK_ADDRS(sk, e.family, &e.laddr, &e.raddr);
	e.ts_us = bpf_ktime_get_ns() / 1000;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tool_output(ctx, &e, sizeof(e));
	return 0;
}

/* -- rung 1: fexit ---------------------------------------------------------------------------- */

SEC("fexit/inet_csk_accept")
int accept_fexit(u64 *ctx)
{
	u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return accepted(ctx, (struct sock *)ret);
}

/* -- rung 2: the system calls' exits ---------------------------------------------------------- */

/* The socket behind descriptor `fd` of the current task, or NULL. */
static __always_inline struct sock *fd_sock(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int accept4_tp(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : accepted(ctx, fd_sock(ctx->ret));
}

/* Attached by tcpaccept.py beside accept4_tp, when that rung is the one taken. */
SEC("tracepoint")
int accept_tp(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : accepted(ctx, fd_sock(ctx->ret));
}
