// SPDX-License-Identifier: GPL-2.0
/*
 * sigsnoop: signals, as the kernel generates them (signal:signal_generate: every signal, sent by a
 * process or by the kernel), or with -k as the kill(), tkill() and tgkill() syscalls ask for them
 * (their tracepoints: the syscalls' results, and signal 0, which generates nothing).
 * sigsnoop.py attaches one set or the other; the syscalls' arguments wait for their results in
 * signal.bpf.h's `pending`. Compiled after tool.bpf.h: tool_traced() is -p.
 */

#include <signal.bpf.h>

struct sig_event {
	u32 pid;
	int tpid;
	int sig;
	int ret;
	char comm[16];
};

TOOL_EVENTS(1 << 18);

static __always_inline int report(void *ctx, int tpid, int sig, int ret)
{
	struct sig_event *e = tool_reserve(struct sig_event);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->tpid = tpid;
	e->sig = sig;
	e->ret = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}

/* RESULT: TRACE_SIGNAL_DELIVERED (0), IGNORED, ALREADY_PENDING, OVERFLOW_FAIL, LOSE_INFO. */
SEC("tracepoint/signal/signal_generate")
int sig_generate(struct trace_event_raw_signal_generate *ctx)
{
	int sig = ctx->sig, ret = ctx->result;

	if (!tool_traced() || (filter_sig && sig != targ_sig) || (only_failed && ret == 0))
		return 0;
	return report(ctx, ctx->pid, sig, ret);
}

static __always_inline int leave(void *ctx, long ret)
{
	struct args a;

	if (args_take(&a) && (!only_failed || ret < 0))
		report(ctx, a.tpid, a.sig, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return args_stash((int)ctx->args[0], (int)ctx->args[1]);
}

/* tkill(tid, sig) and tgkill(tgid, tid, sig): the target is the thread. */
SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return args_stash((int)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return args_stash((int)ctx->args[1], (int)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}
