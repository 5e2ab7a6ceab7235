// SPDX-License-Identifier: GPL-2.0
/*
 * memleak: allocations not yet freed, summed by the stack that made them. In user mode
 * (memleak.py -p/-c) uprobes on the allocator's functions (malloc, calloc, realloc, mmap,
 * posix_memalign, aligned_alloc, valloc, memalign, pvalloc; free, munmap); in kernel mode the
 * kmem tracepoints (kmalloc, kmem_cache_alloc, mm_page_alloc and their frees; --percpu: the
 * percpu ones), read with CO-RE. Compiled after tool.bpf.h (tool_traced(): the process traced).
 */

#define PAGE_SIZE 4096

const volatile u64 min_size = 0;
const volatile u64 max_size = (u64)-1;
const volatile u64 sample_rate = 1;
const volatile bool trace_all = false;      /* -t: a record per call */
const volatile bool wa_missing_free = false; /* an address allocated again counts as freed first */
const volatile bool kernel_stacks = false;

struct alloc_info {
	u64 size;
	u64 ts_ns;
	s64 stack_id;
};

struct combined_info {
	u64 total_size;
	u64 number_of_allocs;
};

/* -t: one per call. */
struct call_event {
	u64 size;
	u64 addr;
	u32 pid;
	u32 kind; /* 0: an allocation returned; 1: a free of a known allocation */
};

/* Every hash map is allocated on use (BPF_F_NO_PREALLOC): preallocated, the three small ones
 * cost 3 ms of start-up, which the big one would have multiplied. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u32);
	__type(value, u64);
} sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u32);
	__type(value, u64);
} memptrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u64);
	__type(value, struct alloc_info);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u64);
	__type(value, struct combined_info);
} combined_allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 10240);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stack_traces SEC(".maps");

TOOL_EVENTS(1 << 18);

static __always_inline void trace_call(void *ctx, u32 kind, u64 size, u64 addr)
{
	struct call_event *e;

	if (!trace_all || !(e = tool_reserve(struct call_event)))
		return;
	e->size = size;
	e->addr = addr;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	tool_submit(ctx, e);
}

static __always_inline void combined_add(s64 stack_id, u64 size)
{
	u64 key = stack_id;
	struct combined_info *c = bpf_map_lookup_elem(&combined_allocs, &key), zero = {};

	if (!c) {
		bpf_map_update_elem(&combined_allocs, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&combined_allocs, &key);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->total_size, size);
	__sync_fetch_and_add(&c->number_of_allocs, 1);
}

static __always_inline void combined_sub(s64 stack_id, u64 size)
{
	u64 key = stack_id;
	struct combined_info *c = bpf_map_lookup_elem(&combined_allocs, &key);

	if (!c)
		return;
	__sync_fetch_and_sub(&c->total_size, size < c->total_size ? size : c->total_size);
	if (c->number_of_allocs)
		__sync_fetch_and_sub(&c->number_of_allocs, 1);
}

static __always_inline int free_addr(void *ctx, u64 addr)
{
	struct alloc_info *info = bpf_map_lookup_elem(&allocs, &addr);

	if (!info)
		return 0;
	combined_sub(info->stack_id, info->size);
	trace_call(ctx, 1, info->size, addr);
	bpf_map_delete_elem(&allocs, &addr);
	return 0;
}

static __always_inline bool wanted_size(u64 size)
{
	if (size < min_size || size > max_size)
		return false;
	return sample_rate <= 1 || bpf_ktime_get_ns() % sample_rate == 0;
}

/* An allocation of `size` at `addr`, made now by the current context. */
static __always_inline int record(void *ctx, u64 addr, u64 size)
{
	struct alloc_info info = { .size = size, .ts_ns = bpf_ktime_get_ns() };

	if (!addr)
		return 0;
	if (wa_missing_free)
		free_addr(ctx, addr);
	info.stack_id = bpf_get_stackid(ctx, &stack_traces, kernel_stacks ? 0 : BPF_F_USER_STACK);
	if (bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY))
		return 0;
	if (info.stack_id >= 0)
		combined_add(info.stack_id, size);
	trace_call(ctx, 0, size, addr);
	return 0;
}

/* -- user mode ------------------------------------------------------------------------------ */

static __always_inline int alloc_enter(u64 size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (tool_traced() && wanted_size(size))
		bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	return 0;
}

static __always_inline int alloc_exit(void *ctx, u64 addr)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *size = bpf_map_lookup_elem(&sizes, &tid);

	if (!size)
		return 0;
	u64 s = *size;
	bpf_map_delete_elem(&sizes, &tid);
	return record(ctx, addr, s);
}

SEC("uprobe")
int BPF_UPROBE(malloc_enter, size_t size) { return alloc_enter(size); }
SEC("uprobe")
int BPF_UPROBE(calloc_enter, size_t n, size_t size) { return alloc_enter(n * size); }
SEC("uprobe")
int BPF_UPROBE(realloc_enter, void *ptr, size_t size)
{
	if (tool_traced())
		free_addr(ctx, (u64)ptr);
	return alloc_enter(size);
}
SEC("uprobe")
int BPF_UPROBE(mmap_enter, void *addr, size_t len) { return alloc_enter(len); }
SEC("uprobe")
int BPF_UPROBE(aligned_enter, size_t align, size_t size) { return alloc_enter(size); } /* memalign, aligned_alloc */
SEC("uprobe")
int BPF_UPROBE(valloc_enter, size_t size) { return alloc_enter(size); }
SEC("uprobe")
int BPF_UPROBE(pvalloc_enter, size_t size) { return alloc_enter((size + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1)); }

SEC("uprobe")
int BPF_UPROBE(posix_memalign_enter, void **memptr, size_t align, size_t size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 p = (u64)memptr;

	if (!tool_traced() || !wanted_size(size))
		return 0;
	bpf_map_update_elem(&memptrs, &tid, &p, BPF_ANY);
	bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(alloc_return, void *addr) { return alloc_exit(ctx, (u64)addr); }

SEC("uretprobe")
int BPF_URETPROBE(mmap_return, void *addr) { return alloc_exit(ctx, (long)addr == -1 ? 0 : (u64)addr); }

SEC("uretprobe")
int BPF_URETPROBE(posix_memalign_return, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *memptr = bpf_map_lookup_elem(&memptrs, &tid);
	u64 addr = 0;

	if (!memptr)
		return 0;
	if (ret == 0)
		bpf_probe_read_user(&addr, sizeof(addr), (void *)*memptr);
	bpf_map_delete_elem(&memptrs, &tid);
	return alloc_exit(ctx, addr);
}

SEC("uprobe")
int BPF_UPROBE(free_enter, void *addr) { return tool_traced() ? free_addr(ctx, (u64)addr) : 0; }

/* -- kernel mode: the kmem tracepoints, attached by memleak.py when no process is given ------ */

/* An allocation seen whole at its tracepoint (its address and size at once): recorded unless the
 * filters leave it out. */
static __always_inline int kernel_alloc(void *ctx, u64 addr, u64 size)
{
	if (!tool_traced() || !wanted_size(size))
		return 0;
	return record(ctx, addr, size);
}

SEC("tracepoint")
int kmalloc_tp(struct trace_event_raw_kmalloc *ctx)
{
	return kernel_alloc(ctx, (u64)BPF_CORE_READ(ctx, ptr), BPF_CORE_READ(ctx, bytes_alloc));
}

SEC("tracepoint")
int kmem_cache_alloc_tp(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	return kernel_alloc(ctx, (u64)BPF_CORE_READ(ctx, ptr), BPF_CORE_READ(ctx, bytes_alloc));
}

SEC("tracepoint")
int kfree_tp(struct trace_event_raw_kfree *ctx) { return free_addr(ctx, (u64)BPF_CORE_READ(ctx, ptr)); }

SEC("tracepoint")
int kmem_cache_free_tp(struct trace_event_raw_kmem_cache_free *ctx)
{
	return free_addr(ctx, (u64)BPF_CORE_READ(ctx, ptr));
}

SEC("tracepoint")
int page_alloc_tp(struct trace_event_raw_mm_page_alloc *ctx)
{
	return kernel_alloc(ctx, BPF_CORE_READ(ctx, pfn), (u64)PAGE_SIZE << BPF_CORE_READ(ctx, order));
}

SEC("tracepoint")
int page_free_tp(struct trace_event_raw_mm_page_free *ctx) { return free_addr(ctx, BPF_CORE_READ(ctx, pfn)); }

SEC("tracepoint")
int percpu_alloc_tp(struct trace_event_raw_percpu_alloc_percpu *ctx)
{
	return kernel_alloc(ctx, (u64)BPF_CORE_READ(ctx, ptr), BPF_CORE_READ(ctx, bytes_alloc));
}

SEC("tracepoint")
int percpu_free_tp(struct trace_event_raw_percpu_free_percpu *ctx)
{
	return free_addr(ctx, (u64)BPF_CORE_READ(ctx, ptr));
}
