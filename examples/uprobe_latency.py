#!/usr/bin/env python3
"""Histogram of how long libc's getaddrinfo() takes, per call, with a uprobe/uretprobe pair and
BCC's print_log2_hist. Options are const volatile globals set without recompiling.

    sudo .venv/bin/python examples/uprobe_latency.py [seconds]
"""

import socket
import sys
import time

from bpfkit import BPF

PROGRAM = r"""
const volatile u32 targ_tgid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 32);
    __type(key, u32);
    __type(value, u64);
} usecs SEC(".maps");

SEC("uprobe")
int enter(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid(), ts = bpf_ktime_get_ns();
    u32 tid = (u32)id;

    if (targ_tgid && (id >> 32) != targ_tgid)
        return 0;
    bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
    return 0;
}

SEC("uretprobe")
int leave(struct pt_regs *ctx)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *ts = bpf_map_lookup_elem(&start, &tid);

    if (!ts)
        return 0;
    u32 slot = bpfkit_log2_slot((bpf_ktime_get_ns() - *ts) / 1000, 32);
    bpf_map_delete_elem(&start, &tid);
    u64 *n = bpf_map_lookup_elem(&usecs, &slot);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}
"""

with BPF(text=PROGRAM) as b:
    b.attach_uprobe(name="c", sym="getaddrinfo", fn_name="enter")
    b.attach_uretprobe(name="c", sym="getaddrinfo", fn_name="leave")
    end = time.monotonic() + (float(sys.argv[1]) if len(sys.argv) > 1 else 2)
    while time.monotonic() < end:
        socket.getaddrinfo("localhost", 80)
    b["usecs"].print_log2_hist("usecs")
