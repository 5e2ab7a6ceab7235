/* SPDX-License-Identifier: GPL-2.0 */
/*
 * signal.bpf.h: what killsnoop and sigsnoop share to report kill(), tkill() and tgkill(): a
 * syscall's target and signal are known at its entry, its result only at its exit, so the entry
 * keeps them by thread in `pending` (args_stash()) and the exit takes them back (args_take()).
 * With -s and -x, the options both tools have.
 *
 * Included after tool.bpf.h: args_stash() applies tool_traced() (-p, the sender).
 */
#ifndef __BPFKIT_TOOLS_SIGNAL_BPF_H__
#define __BPFKIT_TOOLS_SIGNAL_BPF_H__

const volatile bool only_failed = false;   /* -x */
const volatile bool filter_sig = false;    /* -s SIGNAL (0 is a signal number here) */
const volatile int targ_sig = 0;

struct args {
	int tpid;
	int sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct args);
} pending SEC(".maps");

/*
 * At the syscall's entry: keeps its target and signal for its exit, unless -p or -s leaves it out.
 * Returns 0, for the program to return.
 */
static __always_inline int args_stash(int tpid, int sig)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct args a = { .tpid = tpid, .sig = sig };

	if (!tool_traced() || (filter_sig && sig != targ_sig))
		return 0;
	bpf_map_update_elem(&pending, &tid, &a, BPF_ANY);
	return 0;
}

/* At the syscall's exit: whether its entry kept its arguments; then them, in *a, taken out. */
static __always_inline bool args_take(struct args *a)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct args *kept = bpf_map_lookup_elem(&pending, &tid);

	if (!kept)
		return false;
	*a = *kept;
	bpf_map_delete_elem(&pending, &tid);
	return true;
}

#endif /* __BPFKIT_TOOLS_SIGNAL_BPF_H__ */
