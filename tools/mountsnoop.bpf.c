// SPDX-License-Identifier: GPL-2.0
/*
 * mountsnoop: mount() and umount() syscalls, with their arguments and result.
 *
 * Each hook is a fallback ladder (mountsnoop.py names them): a kprobe on the syscall (ksyscall)
 * where the kernel has kprobes, else the syscall tracepoints. The entry builds the whole record
 * (the strings are the caller's, readable there) in a map by thread; the exit adds the result and
 * sends it. The mount namespace and the parent are read with CO-RE.
 * Compiled after tool.bpf.h: tool_traced() is the -p/-c filter.
 */

#define STR_LEN 256

enum { MOUNT, UMOUNT };

struct mount_event {
	u64 ts_ns;
	u64 flags;
	u32 pid;
	u32 tid;
	u32 ppid;
	u32 mnt_ns;
	u32 op;		/* MOUNT or UMOUNT */
	int ret;
	char comm[16];
	char pcomm[16];
	char source[STR_LEN];
	char target[STR_LEN];
	char type[STR_LEN];
	char data[STR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct mount_event);
} building SEC(".maps");

TOOL_EVENTS(1 << 18);

static const struct mount_event blank;

static __always_inline int enter(u32 op, const char *source, const char *target, const char *type, u64 flags,
				 const void *data)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct mount_event *e;

	if (!tool_traced())
		return 0;
	if (bpf_map_update_elem(&building, &tid, &blank, BPF_ANY))
		return 0;
	e = bpf_map_lookup_elem(&building, &tid);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->pid = id >> 32;
	e->tid = tid;
	e->op = op;
	e->flags = flags;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);
	if (source)
		bpf_probe_read_user_str(e->source, sizeof(e->source), source);
	if (target)
		bpf_probe_read_user_str(e->target, sizeof(e->target), target);
	if (type)
		bpf_probe_read_user_str(e->type, sizeof(e->type), type);
	if (data)
		bpf_probe_read_user_str(e->data, sizeof(e->data), data);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct mount_event *e = bpf_map_lookup_elem(&building, &tid);

	if (!e)
		return 0;
	e->ret = ret;
	e->ts_ns = bpf_ktime_get_ns();
	tool_output(ctx, e, sizeof(*e));
	bpf_map_delete_elem(&building, &tid);
	return 0;
}

SEC("ksyscall/mount")
int BPF_KSYSCALL(mount_entry_k, const char *source, const char *target, const char *type, unsigned long flags,
		 const void *data)
{
	return enter(MOUNT, source, target, type, flags, data);
}

SEC("tracepoint/syscalls/sys_enter_mount")
int mount_entry_tp(struct trace_event_raw_sys_enter *ctx)
{
	return enter(MOUNT, (const char *)ctx->args[0], (const char *)ctx->args[1], (const char *)ctx->args[2],
		     ctx->args[3], (const void *)ctx->args[4]);
}

SEC("kretsyscall/mount")
int BPF_KRETPROBE(mount_exit_k, long ret)
{
	return leave(ctx, ret);
}

SEC("tracepoint/syscalls/sys_exit_mount")
int mount_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

/* umount2(target, flags); the kernel calls it umount. */
SEC("ksyscall/umount")
int BPF_KSYSCALL(umount_entry_k, const char *target, int flags)
{
	return enter(UMOUNT, NULL, target, NULL, flags, NULL);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int umount_entry_tp(struct trace_event_raw_sys_enter *ctx)
{
	return enter(UMOUNT, NULL, (const char *)ctx->args[0], NULL, ctx->args[1], NULL);
}

SEC("kretsyscall/umount")
int BPF_KRETPROBE(umount_exit_k, long ret)
{
	return leave(ctx, ret);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int umount_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}
