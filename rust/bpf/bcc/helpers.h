/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bcc/helpers.h: BCC's C dialect on libbpf and CO-RE, included before a program written for BCC
 * once bpfkit's translator (rust/core/bcc.rs) has rewritten what the preprocessor cannot:
 * `name.method(args)` calls become `__bcc_m_method(&name, args)`, BPF_TABLE("type", ...) names
 * its type as a token, BPF_HISTOGRAM picks an array or a hash from its key, and each
 * TRACEPOINT_PROBE's argument struct is generated from the tracepoint's format. Everything else
 * is here, written from BCC's reference guide (docs/reference_guide.md): the map macros with their
 * defaults, the map methods, the program macros, bpf_trace_printk with a format.
 *
 * A map is a libbpf map definition (`struct { __uint(type, ...); __type(key, K); ... } name
 * SEC(".maps")`), so `name.key` and `name.value` are pointers to its key and value types: the
 * methods take their types from there.
 */
#ifndef __BPFKIT_BCC_HELPERS_H__
#define __BPFKIT_BCC_HELPERS_H__

/* -- maps -------------------------------------------------------------------------------------- */

#define __BCC_MAP(_type, _key, _leaf, _name, _max, _flags)                                           \
	struct {                                                                                      \
		__uint(type, _type);                                                                  \
		__uint(max_entries, _max);                                                            \
		__type(key, _key);                                                                    \
		__type(value, _leaf);                                                                 \
		__uint(map_flags, _flags);                                                            \
	} _name SEC(".maps")

/* A map whose key and value have sizes, not types (perf event arrays, prog arrays, ...). */
#define __BCC_MAP_SIZED(_type, _name, _max)                                                          \
	struct {                                                                                      \
		__uint(type, _type);                                                                  \
		__uint(max_entries, _max);                                                            \
		__uint(key_size, sizeof(int));                                                        \
		__uint(value_size, sizeof(__u32));                                                    \
	} _name SEC(".maps")

/* A map of values only (queue, stack). */
#define __BCC_MAP_VALUES(_type, _leaf, _name, _max, _flags)                                          \
	struct {                                                                                      \
		__uint(type, _type);                                                                  \
		__uint(max_entries, _max);                                                            \
		__type(value, _leaf);                                                                 \
		__uint(map_flags, _flags);                                                            \
	} _name SEC(".maps")

/* Picks the macro for the number of arguments given (1 to 5). */
#define __BCC_SEL(_1, _2, _3, _4, _5, NAME, ...) NAME

/* BPF_TABLE("type", key, leaf, name, max_entries): the translator turns "type" into a token. */
#define BPF_TABLE(_kind, _key, _leaf, _name, _max) __BCC_TABLE_##_kind(_key, _leaf, _name, _max, 0)
#define BPF_F_TABLE(_kind, _key, _leaf, _name, _max, _flags) __BCC_TABLE_##_kind(_key, _leaf, _name, _max, _flags)
#define BPF_TABLE_PUBLIC(_kind, _key, _leaf, _name, _max) BPF_TABLE(_kind, _key, _leaf, _name, _max)
#define BPF_TABLE_SHARED(_kind, _key, _leaf, _name, _max) BPF_TABLE(_kind, _key, _leaf, _name, _max)
#define __BCC_TABLE_hash(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_HASH, k, l, n, m, f)
#define __BCC_TABLE_array(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_ARRAY, k, l, n, m, f)
#define __BCC_TABLE_histogram(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_HASH, k, l, n, m, f)
#define __BCC_TABLE_percpu_hash(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_PERCPU_HASH, k, l, n, m, f)
#define __BCC_TABLE_percpu_array(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_PERCPU_ARRAY, k, l, n, m, f)
#define __BCC_TABLE_lru_hash(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_LRU_HASH, k, l, n, m, f)
#define __BCC_TABLE_lru_percpu_hash(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_LRU_PERCPU_HASH, k, l, n, m, f)
#define __BCC_TABLE_lpm_trie(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_LPM_TRIE, k, l, n, m, (f) | BPF_F_NO_PREALLOC)
#define __BCC_TABLE_stacktrace(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_STACK_TRACE, k, l, n, m, f)
#define __BCC_TABLE_prog(k, l, n, m, f) __BCC_MAP_SIZED(BPF_MAP_TYPE_PROG_ARRAY, n, m)
#define __BCC_TABLE_perf_output(k, l, n, m, f) __BCC_MAP_SIZED(BPF_MAP_TYPE_PERF_EVENT_ARRAY, n, m)
#define __BCC_TABLE_perf_array(k, l, n, m, f) __BCC_MAP_SIZED(BPF_MAP_TYPE_PERF_EVENT_ARRAY, n, m)
#define __BCC_TABLE_cgroup_array(k, l, n, m, f) __BCC_MAP_SIZED(BPF_MAP_TYPE_CGROUP_ARRAY, n, m)
#define __BCC_TABLE_devmap(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_DEVMAP, k, l, n, m, f)
#define __BCC_TABLE_cpumap(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_CPUMAP, k, l, n, m, f)
#define __BCC_TABLE_xskmap(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_XSKMAP, k, l, n, m, f)
#define __BCC_TABLE_sockmap(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_SOCKMAP, k, l, n, m, f)
#define __BCC_TABLE_sockhash(k, l, n, m, f) __BCC_MAP(BPF_MAP_TYPE_SOCKHASH, k, l, n, m, f)
#define __BCC_TABLE_queue(k, l, n, m, f) __BCC_MAP_VALUES(BPF_MAP_TYPE_QUEUE, l, n, m, f)
#define __BCC_TABLE_stack(k, l, n, m, f) __BCC_MAP_VALUES(BPF_MAP_TYPE_STACK, l, n, m, f)

/* BPF_ARRAY_OF_MAPS(name, "inner", size), BPF_HASH_OF_MAPS(name[, key = int], "inner", size): the
 * translator unquotes the inner map's name; its definition gives the inner maps' type. */
#define BPF_ARRAY_OF_MAPS(_name, _inner, _max)                                                       \
	struct {                                                                                      \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                             \
		__uint(max_entries, _max);                                                            \
		__type(key, int);                                                                     \
		__array(values, __typeof__(_inner));                                                  \
	} _name SEC(".maps")
#define BPF_HASH_OF_MAPS(...) __BCC_SEL(__VA_ARGS__, , __BCC_HOM4, __BCC_HOM3, , )(__VA_ARGS__)
#define __BCC_HOM3(_name, _inner, _max) __BCC_HOM4(_name, int, _inner, _max)
#define __BCC_HOM4(_name, _key, _inner, _max)                                                        \
	struct {                                                                                      \
		__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);                                              \
		__uint(max_entries, _max);                                                            \
		__type(key, _key);                                                                    \
		__array(values, __typeof__(_inner));                                                  \
	} _name SEC(".maps")

/* BPF_HASH(name[, key = u64[, leaf = u64[, size = 10240]]]) */
#define BPF_HASH(...) __BCC_SEL(__VA_ARGS__, , __BCC_HASH4, __BCC_HASH3, __BCC_HASH2, __BCC_HASH1)(__VA_ARGS__)
#define __BCC_HASH1(n) __BCC_MAP(BPF_MAP_TYPE_HASH, u64, u64, n, 10240, 0)
#define __BCC_HASH2(n, k) __BCC_MAP(BPF_MAP_TYPE_HASH, k, u64, n, 10240, 0)
#define __BCC_HASH3(n, k, l) __BCC_MAP(BPF_MAP_TYPE_HASH, k, l, n, 10240, 0)
#define __BCC_HASH4(n, k, l, s) __BCC_MAP(BPF_MAP_TYPE_HASH, k, l, n, s, 0)

/* BPF_LRU_HASH, BPF_PERCPU_HASH: as BPF_HASH. */
#define BPF_LRU_HASH(...) __BCC_SEL(__VA_ARGS__, , __BCC_LRU4, __BCC_LRU3, __BCC_LRU2, __BCC_LRU1)(__VA_ARGS__)
#define __BCC_LRU1(n) __BCC_MAP(BPF_MAP_TYPE_LRU_HASH, u64, u64, n, 10240, 0)
#define __BCC_LRU2(n, k) __BCC_MAP(BPF_MAP_TYPE_LRU_HASH, k, u64, n, 10240, 0)
#define __BCC_LRU3(n, k, l) __BCC_MAP(BPF_MAP_TYPE_LRU_HASH, k, l, n, 10240, 0)
#define __BCC_LRU4(n, k, l, s) __BCC_MAP(BPF_MAP_TYPE_LRU_HASH, k, l, n, s, 0)
#define BPF_PERCPU_HASH(...) __BCC_SEL(__VA_ARGS__, , __BCC_PCH4, __BCC_PCH3, __BCC_PCH2, __BCC_PCH1)(__VA_ARGS__)
#define __BCC_PCH1(n) __BCC_MAP(BPF_MAP_TYPE_PERCPU_HASH, u64, u64, n, 10240, 0)
#define __BCC_PCH2(n, k) __BCC_MAP(BPF_MAP_TYPE_PERCPU_HASH, k, u64, n, 10240, 0)
#define __BCC_PCH3(n, k, l) __BCC_MAP(BPF_MAP_TYPE_PERCPU_HASH, k, l, n, 10240, 0)
#define __BCC_PCH4(n, k, l, s) __BCC_MAP(BPF_MAP_TYPE_PERCPU_HASH, k, l, n, s, 0)

/* BPF_ARRAY(name[, leaf = u64[, size = 10240]]), BPF_PERCPU_ARRAY: int keys. */
#define BPF_ARRAY(...) __BCC_SEL(__VA_ARGS__, , , __BCC_ARR3, __BCC_ARR2, __BCC_ARR1)(__VA_ARGS__)
#define __BCC_ARR1(n) __BCC_MAP(BPF_MAP_TYPE_ARRAY, int, u64, n, 10240, 0)
#define __BCC_ARR2(n, l) __BCC_MAP(BPF_MAP_TYPE_ARRAY, int, l, n, 10240, 0)
#define __BCC_ARR3(n, l, s) __BCC_MAP(BPF_MAP_TYPE_ARRAY, int, l, n, s, 0)
#define BPF_PERCPU_ARRAY(...) __BCC_SEL(__VA_ARGS__, , , __BCC_PCA3, __BCC_PCA2, __BCC_PCA1)(__VA_ARGS__)
#define __BCC_PCA1(n) __BCC_MAP(BPF_MAP_TYPE_PERCPU_ARRAY, int, u64, n, 10240, 0)
#define __BCC_PCA2(n, l) __BCC_MAP(BPF_MAP_TYPE_PERCPU_ARRAY, int, l, n, 10240, 0)
#define __BCC_PCA3(n, l, s) __BCC_MAP(BPF_MAP_TYPE_PERCPU_ARRAY, int, l, n, s, 0)

/*
 * BPF_HISTOGRAM(name[, key = int[, size = 64]]): an array when the key is int, else a hash, as
 * in BCC; the translator writes __BCC_HIST_ARRAY or __BCC_HIST_HASH with all three arguments.
 */
#define __BCC_HIST_ARRAY(n, k, s) __BCC_MAP(BPF_MAP_TYPE_ARRAY, k, u64, n, s, 0)
#define __BCC_HIST_HASH(n, k, s) __BCC_MAP(BPF_MAP_TYPE_HASH, k, u64, n, s, 0)

/* BPF_LPM_TRIE(name[, key = u64[, leaf = u64[, size = 10240]]]) */
#define BPF_LPM_TRIE(...) __BCC_SEL(__VA_ARGS__, , __BCC_LPM4, __BCC_LPM3, __BCC_LPM2, __BCC_LPM1)(__VA_ARGS__)
#define __BCC_LPM1(n) __BCC_MAP(BPF_MAP_TYPE_LPM_TRIE, u64, u64, n, 10240, BPF_F_NO_PREALLOC)
#define __BCC_LPM2(n, k) __BCC_MAP(BPF_MAP_TYPE_LPM_TRIE, k, u64, n, 10240, BPF_F_NO_PREALLOC)
#define __BCC_LPM3(n, k, l) __BCC_MAP(BPF_MAP_TYPE_LPM_TRIE, k, l, n, 10240, BPF_F_NO_PREALLOC)
#define __BCC_LPM4(n, k, l, s) __BCC_MAP(BPF_MAP_TYPE_LPM_TRIE, k, l, n, s, BPF_F_NO_PREALLOC)

/* BPF_STACK_TRACE(name, size): stack ids to 127 return addresses (PERF_MAX_STACK_DEPTH). */
#define BPF_STACK_TRACE(n, s) __BCC_MAP(BPF_MAP_TYPE_STACK_TRACE, u32, __u64[127], n, s, 0)

/* BPF_PERF_OUTPUT(name), BPF_PERF_ARRAY(name, size): perf event arrays (max 0: one per CPU). */
#define BPF_PERF_OUTPUT(n) __BCC_MAP_SIZED(BPF_MAP_TYPE_PERF_EVENT_ARRAY, n, 0)
#define BPF_PERF_ARRAY(n, s) __BCC_MAP_SIZED(BPF_MAP_TYPE_PERF_EVENT_ARRAY, n, s)

/* BPF_RINGBUF_OUTPUT(name, page_cnt) */
#define BPF_RINGBUF_OUTPUT(n, pages)                                                                  \
	struct {                                                                                      \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                   \
		__uint(max_entries, (pages) * 4096);                                                  \
	} n SEC(".maps")

#define BPF_PROG_ARRAY(n, s) __BCC_MAP_SIZED(BPF_MAP_TYPE_PROG_ARRAY, n, s)
#define BPF_CGROUP_ARRAY(n, s) __BCC_MAP_SIZED(BPF_MAP_TYPE_CGROUP_ARRAY, n, s)
#define BPF_QUEUE(n, l, s) __BCC_MAP_VALUES(BPF_MAP_TYPE_QUEUE, l, n, s, 0)
#define BPF_STACK(n, l, s) __BCC_MAP_VALUES(BPF_MAP_TYPE_STACK, l, n, s, 0)
#define BPF_DEVMAP(n, s) __BCC_MAP(BPF_MAP_TYPE_DEVMAP, int, struct bpf_devmap_val, n, s, 0)
#define BPF_CPUMAP(n, s) __BCC_MAP(BPF_MAP_TYPE_CPUMAP, u32, struct bpf_cpumap_val, n, s, 0)
#define BPF_XSKMAP(n, s) __BCC_MAP(BPF_MAP_TYPE_XSKMAP, int, int, n, s, 0)
#define BPF_SOCKMAP(n, s) __BCC_MAP(BPF_MAP_TYPE_SOCKMAP, int, int, n, s, 0)
#define BPF_SOCKHASH(...) __BCC_SEL(__VA_ARGS__, , , __BCC_SKH3, __BCC_SKH2, __BCC_SKH1)(__VA_ARGS__)
#define __BCC_SKH1(n) __BCC_MAP(BPF_MAP_TYPE_SOCKHASH, u32, int, n, 10240, 0)
#define __BCC_SKH2(n, k) __BCC_MAP(BPF_MAP_TYPE_SOCKHASH, k, int, n, 10240, 0)
#define __BCC_SKH3(n, k, s) __BCC_MAP(BPF_MAP_TYPE_SOCKHASH, k, int, n, s, 0)
#define BPF_SK_STORAGE(n, l) __BCC_MAP(BPF_MAP_TYPE_SK_STORAGE, int, l, n, 0, BPF_F_NO_PREALLOC)
#define BPF_TASK_STORAGE(n, l) __BCC_MAP(BPF_MAP_TYPE_TASK_STORAGE, int, l, n, 0, BPF_F_NO_PREALLOC)
#define BPF_INODE_STORAGE(n, l) __BCC_MAP(BPF_MAP_TYPE_INODE_STORAGE, int, l, n, 0, BPF_F_NO_PREALLOC)

/* -- map methods: name.method(args) is written __bcc_m_method(&name, args) ------------------- */

#define __bcc_m_lookup(m, k) bpf_map_lookup_elem(m, k)
#define __bcc_m_update(m, k, v) bpf_map_update_elem(m, k, v, BPF_ANY)
#define __bcc_m_insert(m, k, v) bpf_map_update_elem(m, k, v, BPF_NOEXIST)
#define __bcc_m_delete(m, k) bpf_map_delete_elem(m, k)
/* The value of key *k, made from *z first if there is none (NULL if that fails). */
#define __bcc_m_lookup_or_try_init(m, k, z)                                                           \
	({                                                                                            \
		__typeof__((m)->value) __bcc_v = bpf_map_lookup_elem(m, k);                           \
		if (!__bcc_v) {                                                                       \
			bpf_map_update_elem(m, k, z, BPF_NOEXIST);                                    \
			__bcc_v = bpf_map_lookup_elem(m, k);                                          \
		}                                                                                     \
		__bcc_v;                                                                              \
	})
#define __bcc_m_lookup_or_init(m, k, z) __bcc_m_lookup_or_try_init(m, k, z)
/* increment(key[, n = 1]): the key by value, as BCC takes it. A key not yet there is inserted
 * with the count; if another CPU inserted it meanwhile (EEXIST), the count is added to theirs. */
#define __bcc_m_increment(m, ...) __BCC_SEL(__VA_ARGS__, , , , __bcc_inc_n, __bcc_inc_1)(m, __VA_ARGS__)
#define __bcc_m_atomic_increment(m, ...) __bcc_m_increment(m, __VA_ARGS__)
#define __bcc_inc_1(m, _k) __bcc_inc_n(m, _k, 1)
#define __bcc_inc_n(m, _k, _n)                                                                        \
	({                                                                                            \
		__typeof__(*(m)->key) __bcc_k = (_k);                                                 \
		__typeof__(*(m)->value) __bcc_n = (_n);                                               \
		__typeof__((m)->value) __bcc_v = bpf_map_lookup_elem(m, &__bcc_k);                    \
		if (!__bcc_v && bpf_map_update_elem(m, &__bcc_k, &__bcc_n, BPF_NOEXIST))              \
			__bcc_v = bpf_map_lookup_elem(m, &__bcc_k);                                   \
		if (__bcc_v)                                                                          \
			__sync_fetch_and_add(__bcc_v, __bcc_n);                                       \
	})
#define __bcc_m_perf_submit(m, ctx, data, size) bpf_perf_event_output(ctx, m, BPF_F_CURRENT_CPU, data, size)
#define __bcc_m_perf_submit_skb(m, ctx, skb_len, data, size)                                           \
	bpf_perf_event_output(ctx, m, ((__u64)(skb_len) << 32) | BPF_F_CURRENT_CPU, data, size)
#define __bcc_m_ringbuf_output(m, data, size, flags) bpf_ringbuf_output(m, data, size, flags)
#define __bcc_m_ringbuf_reserve(m, size) bpf_ringbuf_reserve(m, size, 0)
#define __bcc_m_ringbuf_submit(m, data, flags) bpf_ringbuf_submit(data, flags)
#define __bcc_m_ringbuf_discard(m, data, flags) bpf_ringbuf_discard(data, flags)
#define __bcc_m_get_stackid(m, ctx, flags) bpf_get_stackid(ctx, m, flags)
#define __bcc_m_push(m, v, flags) bpf_map_push_elem(m, v, flags)
#define __bcc_m_pop(m, v) bpf_map_pop_elem(m, v)
#define __bcc_m_peek(m, v) bpf_map_peek_elem(m, v)
#define __bcc_m_call(m, ctx, idx) bpf_tail_call(ctx, m, idx)
#define __bcc_m_redirect_map(m, idx, flags) bpf_redirect_map(m, idx, flags)
#define __bcc_m_perf_read(m, idx) bpf_perf_event_read(m, idx)
#define __bcc_m_perf_counter_value(m, idx, buf, size) bpf_perf_event_read_value(m, idx, buf, size)
#define __bcc_m_check_current_task(m, idx) bpf_current_task_under_cgroup(m, idx)
#define __bcc_m_sock_map_update(m, ctx, key, flags) bpf_sock_map_update(ctx, m, key, flags)
#define __bcc_m_sock_hash_update(m, ctx, key, flags) bpf_sock_hash_update(ctx, m, key, flags)
#define __bcc_m_msg_redirect_map(m, msg, key, flags) bpf_msg_redirect_map(msg, m, key, flags)
#define __bcc_m_msg_redirect_hash(m, msg, key, flags) bpf_msg_redirect_hash(msg, m, key, flags)
#define __bcc_m_sk_redirect_map(m, skb, key, flags) bpf_sk_redirect_map(skb, m, key, flags)
#define __bcc_m_sk_redirect_hash(m, skb, key, flags) bpf_sk_redirect_hash(skb, m, key, flags)
#define __bcc_m_sk_storage_get(m, sk, v, flags) bpf_sk_storage_get(m, sk, v, flags)
#define __bcc_m_sk_storage_delete(m, sk) bpf_sk_storage_delete(m, sk)
#define __bcc_m_task_storage_get(m, task, v, flags) bpf_task_storage_get(m, task, v, flags)
#define __bcc_m_task_storage_delete(m, task) bpf_task_storage_delete(m, task)
#define __bcc_m_inode_storage_get(m, inode, v, flags) bpf_inode_storage_get(m, inode, v, flags)
#define __bcc_m_inode_storage_delete(m, inode) bpf_inode_storage_delete(m, inode)

/* -- kernel memory ----------------------------------------------------------------------------- */

/* BCC reads kernel memory implicitly (`task->real_parent->tgid`); the translator wraps each such
 * load in __bcc_rd (a copy through bpf_probe_read_kernel from the CO-RE-relocated address) or,
 * for a bitfield member, __bcc_rdbf (libbpf's BPF_CORE_READ_BITFIELD_PROBED). */
#define __bcc_rd(x)                                                                                   \
	({                                                                                            \
		__typeof__(x) __bcc_rd_v;                                                             \
		bpf_probe_read_kernel((void *)&__bcc_rd_v, sizeof(__bcc_rd_v), &(x));                 \
		__bcc_rd_v;                                                                           \
	})
#define __bcc_rdbf(s, field) BPF_CORE_READ_BITFIELD_PROBED(s, field)

/* -- programs ---------------------------------------------------------------------------------- */

/* TRACEPOINT_PROBE(category, event) { ... args->field ... }: the struct is generated. */
#define TRACEPOINT_PROBE(cat, ev)                                                                     \
	SEC("tracepoint/" #cat "/" #ev)                                                               \
	int tracepoint__##cat##__##ev(struct tracepoint__##cat##__##ev *args)
/* RAW_TRACEPOINT_PROBE(event) { ... ctx->args[i] ... } */
#define RAW_TRACEPOINT_PROBE(ev)                                                                      \
	SEC("raw_tp/" #ev)                                                                            \
	int raw_tracepoint__##ev(struct bpf_raw_tracepoint_args *ctx)
/* KFUNC_PROBE(function, args...), KRETFUNC_PROBE(function, args..., ret), LSM_PROBE(hook, args...) */
#define KFUNC_PROBE(fn, args...) SEC("fentry/" #fn) int BPF_PROG(kfunc__##fn, ##args)
#define KRETFUNC_PROBE(fn, args...) SEC("fexit/" #fn) int BPF_PROG(kretfunc__##fn, ##args)
#define LSM_PROBE(hook, args...) SEC("lsm/" #hook) int BPF_PROG(lsm__##hook, ##args)

/* -- helpers ----------------------------------------------------------------------------------- */

/* bpf_trace_printk("format", args...): BCC's form, the format's size counted here. */
#define bpf_trace_printk(fmt, ...)                                                                    \
	({                                                                                            \
		static const char ____bcc_fmt[] = fmt;                                                \
		bpf_trace_printk(____bcc_fmt, sizeof(____bcc_fmt), ##__VA_ARGS__);                    \
	})

/* BCC's names for things libbpf or the kernel spell otherwise. */
#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif
#ifndef DNAME_INLINE_LEN
#define DNAME_INLINE_LEN 32
#endif
#ifndef PF_KTHREAD
#define PF_KTHREAD 0x00200000
#endif
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef PERF_MAX_STACK_DEPTH
#define PERF_MAX_STACK_DEPTH 127
#endif
#ifndef BPF_F_REUSE_STACKID
#define BPF_F_REUSE_STACKID (1ULL << 10)
#endif
#ifndef BPF_F_USER_STACK
#define BPF_F_USER_STACK (1ULL << 8)
#endif
#ifndef MAX_ERRNO
#define MAX_ERRNO 4095
#endif

/* Kernel constants that are macros, so BTF does not carry them (the values are the kernel's;
 * where an architecture differs, x86-64's and arm64's, which agree). */
#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#ifndef DISK_NAME_LEN
#define DISK_NAME_LEN 32
#endif
#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif
#ifndef TASK_RUNNING
#define TASK_RUNNING 0x00000000
#define TASK_INTERRUPTIBLE 0x00000001
#define TASK_UNINTERRUPTIBLE 0x00000002
#define __TASK_STOPPED 0x00000004
#define __TASK_TRACED 0x00000008
#define EXIT_DEAD 0x00000010
#define EXIT_ZOMBIE 0x00000020
#define TASK_PARKED 0x00000040
#define TASK_DEAD 0x00000080
#define TASK_WAKEKILL 0x00000100
#define TASK_WAKING 0x00000200
#define TASK_NOLOAD 0x00000400
#define TASK_NEW 0x00000800
#define TASK_KILLABLE (TASK_WAKEKILL | TASK_UNINTERRUPTIBLE)
#define TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD)
#define TASK_REPORT_MAX 0x00000100
#endif
#ifndef PF_EXITING
#define PF_IDLE 0x00000002
#define PF_EXITING 0x00000004
#define PF_WQ_WORKER 0x00000020
#define PF_FORKNOEXEC 0x00000040
#define PF_SUPERPRIV 0x00000100
#define PF_DUMPCORE 0x00000200
#define PF_SIGNALED 0x00000400
#define PF_MEMALLOC 0x00000800
#endif
#ifndef CLONE_VM
#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_VFORK 0x00004000
#define CLONE_PARENT 0x00008000
#define CLONE_THREAD 0x00010000
#endif
#ifndef ETH_P_IP
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_IPV6 0x86DD
#endif
#ifndef O_RDONLY
#define O_ACCMODE 00000003
#define O_RDONLY 00000000
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_NOCTTY 00000400
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_NONBLOCK 00004000
#define O_DSYNC 00010000
#define O_DIRECT 00040000
#define O_LARGEFILE 00100000
#define O_DIRECTORY 00200000
#define O_NOFOLLOW 00400000
#define O_CLOEXEC 02000000
#define O_SYNC (__O_SYNC | O_DSYNC)
#define __O_SYNC 04000000
#endif
#ifndef S_IFMT
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISCHR(m) (((m) & S_IFMT) == S_IFCHR)
#define S_ISBLK(m) (((m) & S_IFMT) == S_IFBLK)
#define S_ISFIFO(m) (((m) & S_IFMT) == S_IFIFO)
#define S_ISSOCK(m) (((m) & S_IFMT) == S_IFSOCK)
#endif
#ifndef MINORBITS
#define MINORBITS 20
#define MINORMASK ((1U << MINORBITS) - 1)
#define MAJOR(dev) ((unsigned int)((dev) >> MINORBITS))
#define MINOR(dev) ((unsigned int)((dev) & MINORMASK))
#define MKDEV(ma, mi) (((ma) << MINORBITS) | (mi))
#endif
#ifndef FMODE_READ
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_EXEC 0x20
#define FMODE_CREATED 0x100000
#endif
#ifndef REQ_OP_BITS
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
#endif
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#endif
#ifndef NSEC_PER_SEC
#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL
#define MSEC_PER_SEC 1000ULL
#endif
#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#endif
#ifndef SCM_RIGHTS
#define SCM_RIGHTS 0x01
#define SCM_CREDENTIALS 0x02
#endif
#ifndef SIGKILL
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGKILL 9
#define SIGUSR1 10
#define SIGSEGV 11
#define SIGUSR2 12
#define SIGPIPE 13
#define SIGALRM 14
#define SIGTERM 15
#define SIGCHLD 17
#define SIGCONT 18
#define SIGSTOP 19
#endif
#define lock_xadd(ptr, val) ((void)__sync_fetch_and_add(ptr, val))

/* Members the kernel's socket headers name through macros (include/net/sock.h, inet_sock.h):
 * struct sock's view of its struct sock_common, struct inet_sock's of its struct sock. */
#define sk_node __sk_common.skc_node
#define sk_nulls_node __sk_common.skc_nulls_node
#define sk_refcnt __sk_common.skc_refcnt
#define sk_tx_queue_mapping __sk_common.skc_tx_queue_mapping
#define sk_dontcopy_begin __sk_common.skc_dontcopy_begin
#define sk_dontcopy_end __sk_common.skc_dontcopy_end
#define sk_hash __sk_common.skc_hash
#define sk_portpair __sk_common.skc_portpair
#define sk_num __sk_common.skc_num
#define sk_dport __sk_common.skc_dport
#define sk_addrpair __sk_common.skc_addrpair
#define sk_daddr __sk_common.skc_daddr
#define sk_rcv_saddr __sk_common.skc_rcv_saddr
#define sk_family __sk_common.skc_family
#define sk_state __sk_common.skc_state
#define sk_reuse __sk_common.skc_reuse
#define sk_reuseport __sk_common.skc_reuseport
#define sk_ipv6only __sk_common.skc_ipv6only
#define sk_net_refcnt __sk_common.skc_net_refcnt
#define sk_bound_dev_if __sk_common.skc_bound_dev_if
#define sk_bind_node __sk_common.skc_bind_node
#define sk_prot __sk_common.skc_prot
#define sk_net __sk_common.skc_net
#define sk_v6_daddr __sk_common.skc_v6_daddr
#define sk_v6_rcv_saddr __sk_common.skc_v6_rcv_saddr
#define sk_cookie __sk_common.skc_cookie
#define sk_incoming_cpu __sk_common.skc_incoming_cpu
#define sk_flags __sk_common.skc_flags
#define sk_rxhash __sk_common.skc_rxhash
#define inet_daddr sk.__sk_common.skc_daddr
#define inet_rcv_saddr sk.__sk_common.skc_rcv_saddr
#define inet_dport sk.__sk_common.skc_dport
#define inet_num sk.__sk_common.skc_num

/* The kernel's inline helpers BCC's programs call (include/linux/tcp.h, skbuff.h, ...), written
 * with CO-RE reads, since the kernel memory they read is not the program's. */
#define tcp_sk(sk) ((struct tcp_sock *)(sk))
#define inet_sk(sk) ((struct inet_sock *)(sk))
#define inet_csk(sk) ((struct inet_connection_sock *)(sk))
#define inet6_sk(sk) (BPF_CORE_READ((struct inet_sock *)(sk), pinet6))
#define skb_network_header(skb) ((unsigned char *)BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header))
#define skb_transport_header(skb) ((unsigned char *)BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, transport_header))
#define skb_mac_header(skb) ((unsigned char *)BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, mac_header))
#define ip_hdr(skb) ((struct iphdr *)skb_network_header(skb))
#define ipv6_hdr(skb) ((struct ipv6hdr *)skb_network_header(skb))
#define tcp_hdr(skb) ((struct tcphdr *)skb_transport_header(skb))
#define udp_hdr(skb) ((struct udphdr *)skb_transport_header(skb))
#define sg_is_last(sg) (BPF_CORE_READ(sg, page_link) & 0x02UL)
#define sg_is_chain(sg) (BPF_CORE_READ(sg, page_link) & 0x01UL)
#define sg_chain_ptr(sg) ((struct scatterlist *)(BPF_CORE_READ(sg, page_link) & ~0x03UL))

/* Where the kernel's direct map starts (asm/page_64_types.h, asm/memory.h), as BCC's profile
 * tests a sampled address against it. With KASLR the map starts above this base, and kernel
 * text is above both. */
#if defined(__TARGET_ARCH_x86)
#ifndef __PAGE_OFFSET_BASE_L4
#define __PAGE_OFFSET_BASE_L4 0xffff888000000000UL
#define __PAGE_OFFSET_BASE_L5 0xff11000000000000UL
#endif
#ifndef PAGE_OFFSET
#define PAGE_OFFSET __PAGE_OFFSET_BASE_L4
#endif
#elif defined(__TARGET_ARCH_arm64) && defined(CONFIG_ARM64_VA_BITS)
#ifndef PAGE_OFFSET
#define PAGE_OFFSET (~0UL << CONFIG_ARM64_VA_BITS)
#endif
#endif

/* Kernel annotations that mean nothing to a BPF program. */
#ifndef __user
#define __user
#endif
#ifndef __kernel
#define __kernel
#endif
#ifndef __iomem
#define __iomem
#endif
#ifndef __percpu
#define __percpu
#endif
#ifndef __rcu
#define __rcu
#endif
#ifndef __force
#define __force
#endif

/* TRACEPOINT_PROBE's variable-length fields (`__data_loc`): the low 16 bits of `data_loc_NAME`
 * are the data's offset in the record, the high 16 its length. */
#define TP_DATA_LOC_READ_CONST(dst, field, length)                                                    \
	do {                                                                                          \
		unsigned short __bcc_off = args->data_loc_##field & 0xFFFF;                           \
		bpf_probe_read_kernel((void *)(dst), (length), (char *)args + __bcc_off);             \
	} while (0)
#define TP_DATA_LOC_READ(dst, field)                                                                  \
	do {                                                                                          \
		unsigned short __bcc_off = args->data_loc_##field & 0xFFFF;                           \
		unsigned short __bcc_len = args->data_loc_##field >> 16;                              \
		bpf_probe_read_kernel((void *)(dst), __bcc_len, (char *)args + __bcc_off);            \
	} while (0)
#define TP_DATA_LOC_READ_STR(dst, field, length)                                                      \
	do {                                                                                          \
		unsigned short __bcc_off = args->data_loc_##field & 0xFFFF;                           \
		bpf_probe_read_kernel_str((void *)(dst), (length), (char *)args + __bcc_off);         \
	} while (0)

/* The kernel's min() and max(), as BCC's programs use them. */
#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Byte order, as BCC's programs spell it (libbpf's bpf_endian.h does the work). */
#ifndef ntohs
#define ntohs(x) bpf_ntohs(x)
#define htons(x) bpf_htons(x)
#define ntohl(x) bpf_ntohl(x)
#define htonl(x) bpf_htonl(x)
#endif
#define be16_to_cpu(x) bpf_ntohs(x)
#define be32_to_cpu(x) bpf_ntohl(x)
#define be64_to_cpu(x) bpf_be64_to_cpu(x)
#define cpu_to_be16(x) bpf_htons(x)
#define cpu_to_be32(x) bpf_htonl(x)
#define cpu_to_be64(x) bpf_cpu_to_be64(x)

#endif /* __BPFKIT_BCC_HELPERS_H__ */
