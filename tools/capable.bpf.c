// SPDX-License-Identifier: GPL-2.0
/*
 * capable: security capability checks (cap_capable()).
 *
 * One fallback ladder (capable.py names it), best first: fentry on cap_capable() (5.5+), a kprobe
 * on it, or the capability:cap_capable BTF tracepoint (6.13+). The first two see the caller's
 * options, so whether the check is audited (CAP_OPT_NOAUDIT) and whether it comes from setid
 * (CAP_OPT_INSETID); the tracepoint does not, and reports both as unknown (-1), but it gives the
 * verdict. Compiled after tool.bpf.h: tool_traced() is the -p/-c filter.
 */

#define CAP_OPT_NOAUDIT (1 << 1)
#define CAP_OPT_INSETID (1 << 2)

const volatile bool verbose = false;	  /* -v: non-audit checks too */
const volatile bool kernel_stack = false; /* -K */
const volatile bool user_stack = false;	  /* -U */

struct cap_event {
	u32 pid;
	u32 tid;
	u32 uid;
	int cap;
	int audit;	/* 1, 0, or -1: not known from this hook */
	int insetid;	/* 1, 0, or -1 */
	int ret;	/* the verdict (0: allowed, -EPERM), or 1: not known from this hook */
	int kernel_stack_id;
	int user_stack_id;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stacks SEC(".maps");

TOOL_EVENTS(1 << 18);

static __always_inline int report(void *ctx, int cap, int audit, int insetid, int ret)
{
	struct cap_event *e;
	u64 id = bpf_get_current_pid_tgid();

	if (audit == 0 && !verbose)
		return 0;
	if (!tool_traced() || !(e = tool_reserve(struct cap_event)))
		return 0;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->cap = cap;
	e->audit = audit;
	e->insetid = insetid;
	e->ret = ret;
	e->kernel_stack_id = kernel_stack ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	e->user_stack_id = user_stack ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}

SEC("fentry/cap_capable")
int BPF_PROG(cap_fentry, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	return report(ctx, cap, !(opts & CAP_OPT_NOAUDIT), !!(opts & CAP_OPT_INSETID), 1);
}

SEC("kprobe/cap_capable")
int BPF_KPROBE(cap_kprobe, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	return report(ctx, cap, !(opts & CAP_OPT_NOAUDIT), !!(opts & CAP_OPT_INSETID), 1);
}

SEC("tp_btf/cap_capable")
int BPF_PROG(cap_tp, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	return report(ctx, cap, -1, -1, ret);
}
