// SPDX-License-Identifier: GPL-2.0
/*
 * statsnoop: stat() family syscalls, their path and result.
 *
 * Each syscall's entry and exit is a fallback ladder (statsnoop.py names them): a kprobe on the
 * syscall (ksyscall: libbpf finds the architecture's wrapper) where the kernel has kprobes, else
 * its tracepoint. The entry stashes the path pointer by thread; the exit reads the path (the
 * kernel has faulted it in by then) and reports. Compiled after tool.bpf.h: tool_traced() is -p.
 */

#define NAME_MAX_LEN 256

const volatile bool only_failed = false; /* -x */

struct stat_event {
	u64 ts_ns;
	u32 pid;
	int ret;
	char comm[16];
	char path[NAME_MAX_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, const char *);
} pending SEC(".maps");

TOOL_EVENTS(1 << 20);

static __always_inline int enter(const char *path)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (tool_traced())
		bpf_map_update_elem(&pending, &tid, &path, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	const char **path = bpf_map_lookup_elem(&pending, &tid);
	struct stat_event *e;

	if (!path)
		return 0;
	if (only_failed && ret >= 0)
		goto done;
	e = tool_reserve(struct stat_event);
	if (!e)
		goto done;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->ret = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), *path) < 0)
		e->path[0] = 0;
	tool_submit(ctx, e);
done:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* The four programs of syscall `sys`, whose path is argument `n` (from 0). */
#define STAT_SYSCALL(sys, n, ...)                                                            \
	SEC("ksyscall/" #sys) int BPF_KSYSCALL(sys##_entry_k, __VA_ARGS__) { return enter(path); } \
	SEC("tracepoint/syscalls/sys_enter_" #sys)                                           \
	int sys##_entry_tp(struct trace_event_raw_sys_enter *ctx)                            \
	{                                                                                    \
		return enter((const char *)ctx->args[n]);                                    \
	}                                                                                    \
	SEC("kretsyscall/" #sys) int BPF_KRETPROBE(sys##_exit_k, long ret) { return leave(ctx, ret); } \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                                            \
	int sys##_exit_tp(struct trace_event_raw_sys_exit *ctx) { return leave(ctx, ctx->ret); }

STAT_SYSCALL(statfs, 0, const char *path)
STAT_SYSCALL(newstat, 0, const char *path)
STAT_SYSCALL(newlstat, 0, const char *path)
STAT_SYSCALL(newfstatat, 1, int dfd, const char *path)
STAT_SYSCALL(statx, 1, int dfd, const char *path)
