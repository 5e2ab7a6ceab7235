// SPDX-License-Identifier: GPL-2.0
/*
 * killsnoop: kill() syscalls, their signal, target and result.
 *
 * Each hook is a fallback ladder (killsnoop.py names them): a kprobe on the syscall (ksyscall:
 * libbpf finds the architecture's wrapper) where the kernel has kprobes, else the syscall
 * tracepoint. A tracepoint slows every system call of every task while it is enabled; a kprobe on
 * kill() costs only kill(). The entry stashes the arguments by thread, the exit reports them
 * (signal.bpf.h). Compiled after tool.bpf.h: tool_traced() is -p's filter (the sender).
 */

#include <signal.bpf.h>

const volatile int targ_tpid = 0;          /* -T TPID; 0: any */

struct kill_event {
	u64 ts_ns;
	u32 pid;
	int tpid;
	int sig;
	int ret;
	char comm[16];
};

TOOL_EVENTS(1 << 18);

static __always_inline int enter(int tpid, int sig)
{
	if (targ_tpid && tpid != targ_tpid)
		return 0;
	return args_stash(tpid, sig);
}

static __always_inline int leave(void *ctx, long ret)
{
	struct args a;
	struct kill_event *e;

	if (!args_take(&a) || (only_failed && ret >= 0))
		return 0;
	e = tool_reserve(struct kill_event);
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->tpid = a.tpid;
	e->sig = a.sig;
	e->ret = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}

SEC("ksyscall/kill")
int BPF_KSYSCALL(kill_entry_k, int pid, int sig)
{
	return enter(pid, sig);
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry_tp(struct trace_event_raw_sys_enter *ctx)
{
	return enter((int)ctx->args[0], (int)ctx->args[1]);
}

SEC("kretsyscall/kill")
int BPF_KRETPROBE(kill_exit_k, long ret)
{
	return leave(ctx, ret);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}
