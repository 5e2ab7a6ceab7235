// SPDX-License-Identifier: GPL-2.0
/*
 * killsnoop: kill() syscalls, their signal, target and result.
 *
 * Each hook is a fallback ladder (killsnoop.py names them): a kprobe on the syscall (ksyscall:
 * libbpf finds the architecture's wrapper) where the kernel has kprobes, else the syscall
 * tracepoint. A tracepoint slows every system call of every task while it is enabled; a kprobe on
 * kill() costs only kill(). The entry stashes the arguments by thread, the exit reports them.
 * Compiled after tool.bpf.h: tool_traced() is -p's filter (the sender).
 */

const volatile bool only_failed = false;   /* -x */
const volatile bool filter_sig = false;    /* -s SIGNAL (0 is a signal number here) */
const volatile int targ_sig = 0;
const volatile int targ_tpid = 0;          /* -T TPID; 0: any */

struct args {
	int tpid;
	int sig;
};

struct kill_event {
	u64 ts_ns;
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

static __always_inline int enter(int tpid, int sig)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct args a = { .tpid = tpid, .sig = sig };

	if (!tool_traced())
		return 0;
	if (filter_sig && sig != targ_sig)
		return 0;
	if (targ_tpid && tpid != targ_tpid)
		return 0;
	bpf_map_update_elem(&pending, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args *a = bpf_map_lookup_elem(&pending, &tid);
	struct kill_event *e;

	if (!a)
		return 0;
	if (only_failed && ret >= 0)
		goto done;
	e = tool_reserve(struct kill_event);
	if (!e)
		goto done;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tpid = a->tpid;
	e->sig = a->sig;
	e->ret = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
done:
	bpf_map_delete_elem(&pending, &tid);
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
