/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sock.bpf.h: what the TCP tools share (tcpaccept, tcpconnect, tcplife, tcpretrans, tcpstates,
 * tcptop): their -4/-6 option, their port lists, and a connection's addresses, read from its
 * struct sock (SK_ADDRS()) or from the sock:inet_sock_set_state tracepoint's record (STATE_ADDRS()).
 *
 * Addresses go to u8[16] fields, as the tools' records hold them: an IPv4 address in the first 4
 * bytes (the rest left as they were: zero in a record the tool zeroed), an IPv6 address in all 16.
 */
#ifndef __BPFKIT_TOOLS_SOCK_BPF_H__
#define __BPFKIT_TOOLS_SOCK_BPF_H__

#define AF_INET 2
#define AF_INET6 10
#define MAX_PORTS 16	/* the longest port list of an option (-P, -L, -D) */

const volatile u16 targ_family = 0;	/* -4/-6: AF_INET or AF_INET6; 0: both */

/* Whether `family` is IPv4 or IPv6, and the one -4/-6 asks for. */
static __always_inline bool family_wanted(u16 family)
{
	return (family == AF_INET || family == AF_INET6) && !(targ_family && targ_family != family);
}

/* Whether `port` is one of the first n of `list` (a port list option); any port when n is 0. */
static __always_inline bool port_in(u16 port, const volatile u16 *list, u32 n)
{
	if (!n)
		return true;
#pragma unroll
	for (int i = 0; i < MAX_PORTS; i++) {
		if (i < n && list[i] == port)
			return true;
	}
	return false;
}

/*
 * The addresses are read by macros, not functions: a function is compiled in every tool that
 * includes this header, and needs the kernel type it reads complete in the tool's minimal
 * vmlinux.h (a compile more, or a larger header, for a tool that never reads it); a macro costs
 * only the tools that use it.
 */

/* The local and remote addresses of socket sk of `family`, with CO-RE, into u8[16] *l and *r. */
#define SK_ADDRS(sk, family, l, r)                                                            \
	do {                                                                                  \
		if ((family) == AF_INET) {                                                    \
			/* 4 bytes, not the 16 of the field they go to */                     \
			bpf_core_read((l), 4, &(sk)->__sk_common.skc_rcv_saddr);              \
			bpf_core_read((r), 4, &(sk)->__sk_common.skc_daddr);                  \
		} else {                                                                      \
			BPF_CORE_READ_INTO((l), (sk), __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8); \
			BPF_CORE_READ_INTO((r), (sk), __sk_common.skc_v6_daddr.in6_u.u6_addr8);     \
		}                                                                             \
	} while (0)

/*
 * The source (local) and destination addresses of a sock:inet_sock_set_state record `ctx` of
 * `family`, into u8[16] *s and *d.
 */
#define STATE_ADDRS(ctx, family, s, d)                                        \
	do {                                                                  \
		if ((family) == AF_INET) {                                    \
			bpf_probe_read_kernel(*(s), 4, (ctx)->saddr);         \
			bpf_probe_read_kernel(*(d), 4, (ctx)->daddr);         \
		} else {                                                      \
			bpf_probe_read_kernel(*(s), 16, (ctx)->saddr_v6);     \
			bpf_probe_read_kernel(*(d), 16, (ctx)->daddr_v6);     \
		}                                                             \
	} while (0)

#endif /* __BPFKIT_TOOLS_SOCK_BPF_H__ */
