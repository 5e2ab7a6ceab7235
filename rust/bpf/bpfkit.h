/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bpfkit.h: helpers available to every program bpfkit compiles, without an #include.
 *
 * Included after vmlinux.h and libbpf's bpf_helpers.h, bpf_tracing.h, bpf_core_read.h and
 * bpf_endian.h, so everything here may use the kernel's types and libbpf's macros.
 */
#ifndef __BPFKIT_H__
#define __BPFKIT_H__

/*
 * bpfkit defines BPFKIT_DEFAULT_LICENSE when the source declares no "license" section itself:
 * most tracing helpers (bpf_probe_read_*, bpf_printk, ring and perf buffer output) are GPL-only,
 * and a program without a licence would be refused by the verifier for using them.
 */
#ifdef BPFKIT_DEFAULT_LICENSE
char __bpfkit_license[] SEC("license") = "GPL";
#endif

/* The calling thread's process id (the tgid) and thread id. */
#define BPFKIT_TGID() ((__u32)(bpf_get_current_pid_tgid() >> 32))
#define BPFKIT_TID() ((__u32)bpf_get_current_pid_tgid())

/* floor(log2(v)) for v > 0, and 0 for v == 0. Six halving steps, unrolled: no loop to verify. */
static __always_inline __u32 bpfkit_floor_log2(__u64 v)
{
	__u32 r = 0;
#pragma unroll
	for (int shift = 32; shift > 0; shift >>= 1) {
		if (v >= ((__u64)1 << shift)) {
			v >>= shift;
			r += shift;
		}
	}
	return r;
}

/*
 * The slot of v in a power-of-two histogram, numbered as BCC numbers them so that BCC programs
 * port unchanged and print_log2_hist() prints the same rows: slot n (n >= 1) counts values in
 * [2^(n-1), 2^n - 1], with 0 counted in slot 1 alongside 1.
 */
static __always_inline __u32 bpf_log2l(__u64 v)
{
	return bpfkit_floor_log2(v) + 1;
}

/* As bpf_log2l, for 32-bit values. */
static __always_inline __u32 bpf_log2(__u32 v)
{
	return bpfkit_floor_log2(v) + 1;
}

/* bpf_log2l(v), clamped to the last of max_slots slots so it can index a fixed-size array. */
static __always_inline __u32 bpfkit_log2_slot(__u64 v, __u32 max_slots)
{
	__u32 slot = bpf_log2l(v);

	return slot < max_slots ? slot : max_slots - 1;
}

#endif /* __BPFKIT_H__ */
