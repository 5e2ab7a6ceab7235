// SPDX-License-Identifier: GPL-2.0
/* opensnoop: trace open() family syscalls, from the syscall tracepoints. */

#define NAME_MAX_LEN 256

/* Options, set before load by opensnoop.py (consts=); 0 means "no filter". */
const volatile u32 targ_tgid = 0;
const volatile u32 targ_tid = 0;
const volatile u32 targ_uid = 0;
const volatile bool filter_uid = false;
const volatile bool only_failed = false;

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
	char comm[16];
	char path[NAME_MAX_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct pending_open);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Records lost because the ring buffer was full, reported by the tool at exit. */
u64 dropped = 0;

static __always_inline int remember(const char *path, int flags)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;

	if (targ_tgid && targ_tgid != tgid)
		return 0;
	if (targ_tid && targ_tid != tid)
		return 0;
	if (filter_uid && targ_uid != (u32)bpf_get_current_uid_gid())
		return 0;

	struct pending_open p = { .path = path, .flags = flags };
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int report(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending_open *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return 0;
	if (only_failed && ret >= 0)
		goto done;

	struct open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		goto done;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = p->flags;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->path, sizeof(e->path), p->path);
	bpf_ringbuf_submit(e, 0);
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
	return report(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return report(ctx->ret);
}
