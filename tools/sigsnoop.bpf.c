// SPDX-License-Identifier: GPL-2.0
/*
 * sigsnoop: signals, as the kernel generates them (signal:signal_generate: every signal, sent by a
 * process or by the kernel), or with -k as the kill(), tkill() and tgkill() syscalls ask for them
 * (their tracepoints: the syscalls' results, and signal 0, which generates nothing).
 * sigsnoop.py attaches one set or the other. Compiled after tool.bpf.h: tool_traced() is -p.
 */

const volatile bool only_failed = false; /* -x */
const volatile bool filter_sig = false;  /* -s SIGNAL */
const volatile int targ_sig = 0;

struct args {
	int tpid;
	int sig;
};

struct sig_event {
	u32 pid;
	int tpid;
	int sig;
	int ret;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct args);
} pending SEC(".maps");

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

static __always_inline int enter(int tpid, int sig)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct args a = { .tpid = tpid, .sig = sig };

	if (!tool_traced() || (filter_sig && sig != targ_sig))
		return 0;
	bpf_map_update_elem(&pending, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct args *a = bpf_map_lookup_elem(&pending, &tid);

	if (!a)
		return 0;
	if (!only_failed || ret < 0)
		report(ctx, a->tpid, a->sig, ret);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter((int)ctx->args[0], (int)ctx->args[1]);
}

/* tkill(tid, sig) and tgkill(tgid, tid, sig): the target is the thread. */
SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter((int)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return enter((int)ctx->args[1], (int)ctx->args[2]);
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
