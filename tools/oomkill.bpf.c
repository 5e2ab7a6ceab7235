// SPDX-License-Identifier: GPL-2.0
/*
 * oomkill: the kernel's out-of-memory killer, each kill with the task that triggered it.
 *
 * One fallback ladder (oomkill.py names it), best first: fentry on oom_kill_process() (5.5+),
 * a kprobe on it, or the oom:mark_victim tracepoint, which fires as the victim is chosen, in the
 * task that ran out of memory. The first two read the oom_control (the victim, and the pages the
 * OOM was judged against); the tracepoint gives the victim's pid and name but not those pages.
 * Compiled after tool.bpf.h (no filter: an OOM kill matters whoever triggers it).
 */

struct oom_event {
	u32 fpid;	/* the task that triggered the OOM */
	u32 tpid;	/* the victim */
	u64 pages;	/* oc->totalpages */
	u32 has_pages;	/* 0: this hook does not know them */
	char fcomm[16];
	char tcomm[16];
};

TOOL_EVENTS(1 << 16);

static __always_inline int from_control(void *ctx, struct oom_control *oc)
{
	struct oom_event *e = tool_reserve(struct oom_event);

	if (!e)
		return 0;
	e->fpid = bpf_get_current_pid_tgid() >> 32;
	e->tpid = BPF_CORE_READ(oc, chosen, tgid);
	e->pages = BPF_CORE_READ(oc, totalpages);
	e->has_pages = 1;
	bpf_get_current_comm(e->fcomm, sizeof(e->fcomm));
	BPF_CORE_READ_STR_INTO(&e->tcomm, oc, chosen, comm);
	tool_submit(ctx, e);
	return 0;
}

SEC("fentry/oom_kill_process")
int BPF_PROG(oom_fentry, struct oom_control *oc, const char *message)
{
	return from_control(ctx, oc);
}

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(oom_kprobe, struct oom_control *oc, const char *message)
{
	return from_control(ctx, oc);
}

SEC("tracepoint/oom/mark_victim")
int oom_tp(struct trace_event_raw_mark_victim *ctx)
{
	struct oom_event *e = tool_reserve(struct oom_event);

	if (!e)
		return 0;
	e->fpid = bpf_get_current_pid_tgid() >> 32;
	e->tpid = ctx->pid;
	e->pages = 0;
	e->has_pages = 0;
	bpf_get_current_comm(e->fcomm, sizeof(e->fcomm));
	/* The victim's name came with the tracepoint's other fields in 6.8 (a __data_loc string). */
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		u32 loc = BPF_CORE_READ(ctx, __data_loc_comm);

		bpf_probe_read_kernel_str(e->tcomm, sizeof(e->tcomm), (void *)ctx + (loc & 0xffff));
	}
	tool_submit(ctx, e);
	return 0;
}
