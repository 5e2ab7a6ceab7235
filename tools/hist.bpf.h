/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hist.bpf.h: the maps of the tools that time something or count it, and the updates they make.
 * A tool's Python reads these maps (and clears them each interval), so their names, key and value
 * types stay the tool's own: each macro takes the map's name and key type.
 *
 * - START_MAP(name, key_type, entries): a hash from a key (a thread id, a request) to the time in
 *   ns something began, until what is timed ends;
 * - COUNT_MAP(name, key_type, entries): a hash from a key to a u64 count; a histogram is one whose
 *   key holds a log2 slot (bpfkit_log2_slot(), from bpfkit.h) beside what the histogram is of;
 * - count_increment() and count_add(): a key's count += 1, += n;
 * - struct ext_val, EXT_MAP(name) and ext_add(): -e's total and number of values, for an average.
 */
#ifndef __BPFKIT_TOOLS_HIST_BPF_H__
#define __BPFKIT_TOOLS_HIST_BPF_H__

#define __U64_HASH(name, key_type, entries)                \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_HASH);           \
		__uint(max_entries, entries);              \
		__type(key, key_type);                     \
		__type(value, u64);                        \
	} name SEC(".maps")

#define START_MAP(name, key_type, entries) __U64_HASH(name, key_type, entries)
#define COUNT_MAP(name, key_type, entries) __U64_HASH(name, key_type, entries)

/*
 * Adds n to key's count in `map`, creating it at n; where another CPU created the key first, adds
 * to its count instead, so that no n is lost (a total of nanoseconds, say).
 */
static __always_inline void count_add(void *map, const void *key, u64 n)
{
	u64 *v = bpf_map_lookup_elem(map, key);

	if (v)
		__sync_fetch_and_add(v, n);
	else if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST) == -17 /* EEXIST: another CPU made it */) {
		v = bpf_map_lookup_elem(map, key);
		if (v)
			__sync_fetch_and_add(v, n);
	}
}

/* Adds 1 to key's count in `map`, creating it at 1 (see count_add(): none is lost). */
static __always_inline void count_increment(void *map, const void *key)
{
	count_add(map, key, 1);
}

/* -e: the total and the number of the values counted, for their average. */
struct ext_val {
	u64 total;
	u64 count;
};

/* The one struct ext_val of -e, read and cleared by the tool's Python each interval. */
#define EXT_MAP(name)                                      \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_ARRAY);          \
		__uint(max_entries, 1);                    \
		__type(key, u32);                          \
		__type(value, struct ext_val);             \
	} name SEC(".maps")

/* Adds v to the total of the EXT_MAP() `map`, and one to its number of values. */
static __always_inline void ext_add(void *map, u64 v)
{
	u32 zero = 0;
	struct ext_val *ext = bpf_map_lookup_elem(map, &zero);

	if (ext) {
		__sync_fetch_and_add(&ext->total, v);
		__sync_fetch_and_add(&ext->count, 1);
	}
}

#endif /* __BPFKIT_TOOLS_HIST_BPF_H__ */
