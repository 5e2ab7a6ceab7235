#!/usr/bin/env python3
"""Drop every UDP datagram to one port on an interface with XDP, and print what was dropped and
passed every second. Ctrl-C detaches the program and exits.

    sudo .venv/bin/python examples/xdp_drop_udp.py eth0 9999
    sudo .venv/bin/python examples/xdp_drop_udp.py veth0 53 --mode skb   # generic XDP, any interface

The program is attached through a BPF link: if this script dies, even by kill -9, the kernel
detaches it.
"""

import argparse
import sys
import time

from bpfkit import BPF, BPFError

PROGRAM = r"""
#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif

const volatile u16 drop_port = 0;

/* 0: dropped, 1: passed */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp;
    u32 slot = 1;

    if ((void *)(ip + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IP) &&
        ip->protocol == IPPROTO_UDP && ip->ihl >= 5) {
        udp = (void *)ip + ip->ihl * 4;
        if ((void *)(udp + 1) <= end && udp->dest == bpf_htons(drop_port))
            slot = 0;
    }
    u64 *n = bpf_map_lookup_elem(&counts, &slot);
    if (n)
        *n += 1;  /* per-CPU: no atomic needed */
    return slot == 0 ? XDP_DROP : XDP_PASS;
}
"""

MODES = {"auto": 0, "skb": BPF.XDP_FLAGS_SKB_MODE, "drv": BPF.XDP_FLAGS_DRV_MODE, "hw": BPF.XDP_FLAGS_HW_MODE}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dev", help="network interface, e.g. eth0")
    p.add_argument("port", type=int, help="UDP destination port to drop")
    p.add_argument("--mode", choices=sorted(MODES), default="auto",
                   help="XDP mode: skb (generic), drv (native), hw (offload); auto lets the kernel pick")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between lines (default 1)")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error(f"port must be 1-65535, not {args.port}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        b = BPF(text=PROGRAM, consts={"drop_port": args.port})
        b.attach_xdp(args.dev, b.load_func("xdp_drop_udp", BPF.XDP), MODES[args.mode])
    except BPFError as e:
        print(f"xdp_drop_udp: {e}", file=sys.stderr)
        return 1
    with b:
        print(f"dropping UDP to port {args.port} on {args.dev} ({args.mode} mode); Ctrl-C to stop")
        print(f"{'TIME':8} {'DROPPED':>12} {'PASSED':>12} {'DROP/s':>10}")
        counts = b["counts"]
        last = 0
        try:
            while True:
                time.sleep(args.interval)
                dropped, passed = int(counts.sum(0)), int(counts.sum(1))
                rate = (dropped - last) / args.interval
                last = dropped
                print(f"{time.strftime('%H:%M:%S'):8} {dropped:12d} {passed:12d} {rate:10.0f}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
