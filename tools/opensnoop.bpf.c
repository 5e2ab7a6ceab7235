// SPDX-License-Identifier: GPL-2.0
/*
 * opensnoop: trace open() family syscalls, from the syscall tracepoints.
 * Compiled after tool.bpf.h (tool_traced(), TOOL_EVENTS(), tool_scratch()/tool_output()).
 */

#define NAME_MAX_LEN 256
#define CWD_DEPTH 16	/* names of the working directory shown with -F, at most */

/* Options, set before load by opensnoop.py; 0 means "no filter". */
const volatile bool only_failed = false;
const volatile int flag_mask = 0;	/* -f: only opens with one of these flags set... */
const volatile bool flag_rdonly = false; /* ...or, with -f O_RDONLY, opened read-only */

struct pending_open {
	const char *path;
	int flags;
};

struct open_event {
	u64 ts_ns;
	u32 pid;
	u32 tid;
	u32 uid;
	int ret;
	int flags;
	u32 cwd_depth;	/* names in cwd, innermost first */
	u32 cwd_cut;	/* the walk stopped before the root */
	char comm[16];
	char path[NAME_MAX_LEN];
	/* One name per slot: fixed offsets keep the verifier's work small. */
	char cwd[CWD_DEPTH][NAME_MAX_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct pending_open);
} pending SEC(".maps");

TOOL_EVENTS(1 << 20); /* 1 MiB: the pump drains it continuously; a bigger one costs start-up time and memory */

static __always_inline int remember(const char *path, int flags)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (!tool_traced())
		return 0;
	if (flag_mask || flag_rdonly) {
		bool rdonly_hit = flag_rdonly && (flags & 3) == 0; /* O_ACCMODE: O_RDONLY is 0 */
		if (!(flags & flag_mask) && !rdonly_hit)
			return 0;
	}
	struct pending_open p = { .path = path, .flags = flags };
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

#ifdef FULL_PATH
/*
 * -F: the names from the current task's working directory up to its root, crossing mounts.
 * Compiled only for -F (opensnoop.py passes -DFULL_PATH), unlike the other options: its CO-RE
 * reads make libbpf parse the kernel's BTF at every load, 20 ms or more of every start.
 */
static __always_inline u32 walk_cwd(struct open_event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct dentry *d = BPF_CORE_READ(fs, pwd.dentry);
	struct vfsmount *vmnt = BPF_CORE_READ(fs, pwd.mnt);
	struct dentry *root = BPF_CORE_READ(fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(fs, root.mnt);
	struct mount *mnt = container_of(vmnt, struct mount, mnt);

	e->cwd_cut = 1;
	/* One name per step and no other branch that joins later: the verifier then sees one state
	 * per step instead of one per path through the steps. */
	for (u32 i = 0; i < CWD_DEPTH; i++) {
		if (d == root && vmnt == root_mnt)
			goto top;
		if (d == BPF_CORE_READ(vmnt, mnt_root)) { /* the root of a mount: go where it is mounted */
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (up == mnt)
				goto top;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vmnt = &up->mnt;
			if (d == root && vmnt == root_mnt)
				goto top;
		}
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == parent)
			goto top;
		bpf_probe_read_kernel_str(e->cwd[i], NAME_MAX_LEN, BPF_CORE_READ(d, d_name.name));
		e->cwd_depth = i + 1;
		d = parent;
	}
	return e->cwd_depth;
top:
	e->cwd_cut = 0;
	return e->cwd_depth;
}
#endif

static __always_inline int report(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending_open *p = bpf_map_lookup_elem(&pending, &tid);
	struct open_event *e;
	u32 depth = 0;

	if (!p)
		return 0;
	if (only_failed && ret >= 0)
		goto done;
	/* Built in the scratch area and sent only as far as the cwd goes: most records are short. */
	e = tool_scratch(struct open_event);
	if (!e)
		goto done;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = p->flags;
	e->cwd_depth = 0;
	e->cwd_cut = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->path, sizeof(e->path), p->path);
#ifdef FULL_PATH
	if (e->path[0] != '/')
		depth = walk_cwd(e);
#endif
	if (depth > CWD_DEPTH)
		depth = CWD_DEPTH;
	tool_output(ctx, e, offsetof(struct open_event, cwd) + depth * NAME_MAX_LEN);
done:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return remember((const char *)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return remember((const char *)ctx->args[1], (int)ctx->args[2]);
}

SEC("tracepoint")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return remember((const char *)ctx->args[1], (int)how.flags);
}

SEC("tracepoint")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return report(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return report(ctx, ctx->ret);
}
