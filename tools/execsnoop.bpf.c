// SPDX-License-Identifier: GPL-2.0
/*
 * execsnoop: trace exec() syscalls, from the syscall tracepoints.
 * Compiled after tool.bpf.h (tool_traced(), TOOL_EVENTS(), tool_output()).
 */

#define ARG_LEN 128
#define MAX_ARGS 60
#define ARGS_BUF (MAX_ARGS * ARG_LEN)
#define LAST_ARG_AT (ARGS_BUF - ARG_LEN)

const volatile u32 max_args = 20;
const volatile u32 targ_ppid = 0; /* -P: only children of this process; 0: any */
const volatile bool with_failed = false; /* -x: failed execs too */

struct exec_event {
	u64 ts_ns;
	u32 pid;
	u32 ppid;
	u32 uid;
	int ret;
	u32 args_count;
	u32 args_size;
	char comm[16];
	char args[ARGS_BUF];
};

/* The event being built for each thread between entry and exit of execve. Allocated at each
 * exec (BPF_F_NO_PREALLOC): preallocating 10240 values of 7.7 KiB is 79 MiB of kernel memory,
 * and 20 ms of every start spent zeroing it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct exec_event);
} building SEC(".maps");

TOOL_EVENTS(1 << 20); /* 1 MiB: the pump drains it continuously; a bigger one costs start-up time and memory */

static const struct exec_event blank;

static __always_inline int on_enter(const char *filename, const char *const *argv)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u32 uid = (u32)bpf_get_current_uid_gid();
	struct exec_event *e;

	if (!tool_traced())
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (targ_ppid && ppid != targ_ppid)
		return 0;
	if (bpf_map_update_elem(&building, &tid, &blank, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&building, &tid);
	if (!e)
		return 0;

	e->pid = id >> 32;
	e->ppid = ppid;
	e->uid = uid;

	long n = bpf_probe_read_user_str(e->args, ARG_LEN, filename);
	if (n <= 0)
		return 0;
	e->args_size = n;
	e->args_count = 1;

	/* argv[0] is usually the filename again: start at argv[1]. */
	for (u32 i = 1; i < MAX_ARGS; i++) {
		const char *arg = NULL;

		if (i >= max_args) {
			e->args_count++; /* one more than shown: the tool prints "..." */
			break;
		}
		bpf_probe_read_user(&arg, sizeof(arg), &argv[i]);
		if (!arg)
			break;
		u32 at = e->args_size;
		if (at > LAST_ARG_AT)
			break;
		n = bpf_probe_read_user_str(&e->args[at], ARG_LEN, arg);
		if (n <= 0)
			break;
		e->args_size += n;
		e->args_count++;
	}
	return 0;
}

static __always_inline int on_exit(void *ctx, long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct exec_event *e = bpf_map_lookup_elem(&building, &tid);

	if (!e)
		return 0;
	if (ret != 0 && !with_failed)
		goto done;
	e->ret = ret;
	e->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_output(ctx, e, sizeof(*e));
done:
	bpf_map_delete_elem(&building, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}
