// SPDX-License-Identifier: GPL-2.0
/*
 * filelife: files created and deleted again, with their age. BCC hooks vfs_create and vfs_unlink
 * with kprobes; a kernel without kprobes or fentry has no hook on them, so this tool works from
 * the syscall tracepoints on every kernel: a file counts as created by an open (open, openat,
 * openat2, creat) whose file the kernel marks FMODE_CREATED, and as deleted by a successful
 * unlink or unlinkat. Both ends name the file by the directory the path is resolved from (the
 * dentry of the root, the working directory or dfd, read with CO-RE) and the path as given, so a
 * file deleted under another spelling of its path (through a symlink, "..", another dfd) is not
 * matched. Compiled after tool.bpf.h (tool_traced(): -p, applied to the deleting task).
 */

#define TASK_COMM_LEN 16
#define PATH_LEN 128
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_CREAT 0100
/* include/linux/fs.h: "file was created" in struct file's f_mode (0x100000 from 4.19 to 6.18 at least). */
#define FMODE_CREATED 0x100000

struct file_key {
	u64 dir;
	char path[PATH_LEN];
};

struct birth {
	u64 ts_ns;
};

struct life_event {
	u64 delta_ns;
	u32 pid;
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
};

/* Between a syscall's entry and exit: the key of the path it was given. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct file_key);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct file_key);
	__type(value, struct birth);
} births SEC(".maps");

TOOL_EVENTS(1 << 16);

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || (u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The key of `path` resolved from `dfd`, kept for the syscall's exit. */
static __always_inline int remember(int dfd, const char *path)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file_key key = {};

	if (bpf_probe_read_user_str(key.path, sizeof(key.path), path) <= 0)
		return 0;
	if (key.path[0] == '/')
		key.dir = (u64)BPF_CORE_READ(task, fs, root.dentry);
	else if (dfd == AT_FDCWD)
		key.dir = (u64)BPF_CORE_READ(task, fs, pwd.dentry);
	else {
		struct file *f = fd_file(task, dfd);
		if (!f)
			return 0;
		key.dir = (u64)BPF_CORE_READ(f, f_path.dentry);
	}
	bpf_map_update_elem(&pending, &tid, &key, BPF_ANY);
	return 0;
}

static __always_inline int opened(long fd)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct file_key *key = bpf_map_lookup_elem(&pending, &tid);

	if (!key)
		return 0;
	if (fd >= 0) {
		struct file *f = fd_file((struct task_struct *)bpf_get_current_task(), fd);
		if (f && (BPF_CORE_READ(f, f_mode) & FMODE_CREATED)) {
			struct birth b = { .ts_ns = bpf_ktime_get_ns() };
			bpf_map_update_elem(&births, key, &b, BPF_ANY);
		}
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

static __always_inline int unlinked(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct file_key *key = bpf_map_lookup_elem(&pending, &tid);
	struct birth *b;
	struct life_event *e;

	if (!key)
		return 0;
	if (ret == 0 && (b = bpf_map_lookup_elem(&births, key))) {
		if (tool_traced() && (e = tool_reserve(struct life_event))) {
			e->delta_ns = bpf_ktime_get_ns() - b->ts_ns;
			e->pid = id >> 32;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			__builtin_memcpy(e->path, key->path, sizeof(e->path));
			tool_submit(ctx, e);
		}
		bpf_map_delete_elem(&births, key);
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return (ctx->args[1] & O_CREAT) ? remember(AT_FDCWD, (const char *)ctx->args[0]) : 0;
}

SEC("tracepoint")
int enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return remember(AT_FDCWD, (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return (ctx->args[2] & O_CREAT) ? remember((int)ctx->args[0], (const char *)ctx->args[1]) : 0;
}

SEC("tracepoint")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return (how.flags & O_CREAT) ? remember((int)ctx->args[0], (const char *)ctx->args[1]) : 0;
}

SEC("tracepoint")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return opened(ctx->ret);
}

SEC("tracepoint")
int enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return remember(AT_FDCWD, (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return (ctx->args[2] & AT_REMOVEDIR) ? 0 : remember((int)ctx->args[0], (const char *)ctx->args[1]);
}

SEC("tracepoint")
int exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	return unlinked(ctx, ctx->ret);
}
