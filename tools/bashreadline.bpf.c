// SPDX-License-Identifier: GPL-2.0
/*
 * bashreadline: the lines bash reads at its prompt, from a uretprobe on readline() (bashreadline.py
 * attaches it to bash, or to the libreadline given with -s). Only tasks named bash are reported,
 * as in BCC: other programs using libreadline are not shells.
 * Compiled after tool.bpf.h: tool_traced() is the -p/-u/-c filter.
 */

#define LINE_LEN 256

struct line_event {
	u32 pid;
	char str[LINE_LEN];
};

TOOL_EVENTS(1 << 16);

SEC("uretprobe")
int BPF_URETPROBE(readline_ret, const char *line)
{
	struct line_event *e;
	char comm[16];

	if (!line)
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 'b' || comm[1] != 'a' || comm[2] != 's' || comm[3] != 'h' || comm[4] != 0)
		return 0;
	if (!tool_traced() || !(e = tool_reserve(struct line_event)))
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_probe_read_user_str(e->str, sizeof(e->str), line) < 0)
		e->str[0] = 0;
	tool_submit(ctx, e);
	return 0;
}
