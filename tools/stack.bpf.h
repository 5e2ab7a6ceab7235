/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stack.bpf.h: what the stack tools share (profile, offcputime, wakeuptime).
 *
 * - `stacks`: the BPF_MAP_TYPE_STACK_TRACE map (4.6+) the tools' keys point into, by stack id;
 *   STACK_STORAGE_DEFAULT entries in the object; --stack-storage-size N sets N before load
 *   (BPF(map_sizes=)), so no size means another compile;
 * - user_stacks, kernel_stacks: -U and -K, as `const volatile` globals the Python sets;
 * - stack_ids(): the current task's user and kernel stack ids, or -1 for a kind not asked for.
 *   A negative id the kernel gives is kept as it is (-EFAULT: no stack of that kind here, as a
 *   kernel thread's user stack; -EEXIST: a hash collision; -ENOMEM: the map is full), for the
 *   Python to report;
 * - `stack_pids`: the processes whose user stacks were taken since the Python last looked. User
 *   addresses are named at the end of a run, from the process's mappings: the Python notes the
 *   mappings of each process here while it lives (it takes the keys out as it does), so that a
 *   process that exits before the end is still named.
 */
#ifndef __BPFKIT_TOOLS_STACK_BPF_H__
#define __BPFKIT_TOOLS_STACK_BPF_H__

#ifndef STACK_STORAGE_DEFAULT
#define STACK_STORAGE_DEFAULT 1024
#endif
#define STACK_MAX_DEPTH 127	/* the kernel's default perf_event_max_stack */

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, STACK_STORAGE_DEFAULT);
	__uint(key_size, sizeof(u32));
	__uint(value_size, STACK_MAX_DEPTH * sizeof(u64));
} stacks SEC(".maps");

const volatile bool user_stacks = true;		/* false with -K */
const volatile bool kernel_stacks = true;	/* false with -U */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} stack_pids SEC(".maps");

/* The current task's stacks, as ids in `stacks` (see above for the negative ones). */
static __always_inline void stack_ids(void *ctx, int *user_id, int *kernel_id)
{
	*user_id = user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	*kernel_id = kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	if (*user_id >= 0) {
		u32 tgid = bpf_get_current_pid_tgid() >> 32;
		u8 one = 1;

		bpf_map_update_elem(&stack_pids, &tgid, &one, BPF_NOEXIST);
	}
}

#endif /* __BPFKIT_TOOLS_STACK_BPF_H__ */
