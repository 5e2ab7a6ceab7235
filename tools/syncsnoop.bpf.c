// SPDX-License-Identifier: GPL-2.0
/*
 * syncsnoop: sync() family syscalls (sync, fsync, fdatasync, msync, sync_file_range, syncfs).
 *
 * Each syscall's hook is a fallback ladder (syncsnoop.py names them): a kprobe on the syscall
 * (ksyscall: libbpf finds the architecture's wrapper) where the kernel has kprobes, else its
 * entry tracepoint. Compiled after tool.bpf.h: tool_traced() is the -p/-c filter.
 */

/* CALL_-prefixed: a kernel's vmlinux.h may have an enumerator SYNC (the whole header is used when
 * the minimal one is not enough), and C has one namespace for enumerators. */
enum sync_call { CALL_SYNC, CALL_FSYNC, CALL_FDATASYNC, CALL_MSYNC, CALL_SYNC_FILE_RANGE, CALL_SYNCFS };

struct sync_event {
	u64 ts_ns;
	u32 pid;
	u32 call;	/* enum sync_call */
	char comm[16];
};

TOOL_EVENTS(1 << 16);

static __always_inline int report(void *ctx, enum sync_call call)
{
	struct sync_event *e;

	if (!tool_traced() || !(e = tool_reserve(struct sync_event)))
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->call = call;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}

#define SYNC_SYSCALL(sys, call)                                                       \
	SEC("ksyscall/" #sys) int BPF_KSYSCALL(sys##_k) { return report(ctx, CALL_##call); } \
	SEC("tracepoint/syscalls/sys_enter_" #sys) int sys##_tp(void *ctx) { return report(ctx, CALL_##call); }

SYNC_SYSCALL(sync, SYNC)
SYNC_SYSCALL(fsync, FSYNC)
SYNC_SYSCALL(fdatasync, FDATASYNC)
SYNC_SYSCALL(msync, MSYNC)
SYNC_SYSCALL(sync_file_range, SYNC_FILE_RANGE)
SYNC_SYSCALL(syncfs, SYNCFS)
