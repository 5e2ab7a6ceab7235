// SPDX-License-Identifier: GPL-2.0
/*
 * exitsnoop: process (or, with --per-thread, thread) terminations, from sched:sched_process_exit.
 *
 * The tracepoint fires in the exiting task after do_exit() stored its exit code, so the task's own
 * fields are read (with CO-RE): the code, the start time for the age, the parent. BCC's tool uses
 * this tracepoint too: every kernel since 4.7 has it, so there is no ladder.
 * Compiled after tool.bpf.h: tool_traced() is the -p/-c filter.
 */

const volatile bool only_failed = false; /* -x: not exit(0) */
const volatile bool per_thread = false;  /* --per-thread */

struct exit_event {
	u64 start_ns;	/* task->start_time: CLOCK_MONOTONIC ns, as bpf_ktime_get_ns() */
	u64 exit_ns;
	u32 pid;
	u32 tid;
	u32 ppid;
	int exit_code;	/* the status exit() was given */
	u32 sig_info;	/* the signal that killed it (low 7 bits), 0x80 for a core dump */
	char comm[16];
};

TOOL_EVENTS(1 << 18);

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	struct exit_event *e;
	int code;

	/* A process ends when its last thread does, which need not be the leader: the leader
	 * reports the process, as in BCC. */
	if (!per_thread && pid != tid)
		return 0;
	if (!tool_traced())
		return 0;
	code = BPF_CORE_READ(task, exit_code);
	if (only_failed && code == 0)
		return 0;
	e = tool_reserve(struct exit_event);
	if (!e)
		return 0;
	e->start_ns = BPF_CORE_READ(task, start_time);
	e->exit_ns = bpf_ktime_get_ns();
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = (code >> 8) & 0xff;
	e->sig_info = code & 0xff;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	tool_submit(ctx, e);
	return 0;
}
