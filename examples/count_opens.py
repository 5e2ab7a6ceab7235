#!/usr/bin/env python3
"""Count openat() calls per process with a tracepoint and a hash map (the README's first script).

    sudo .venv/bin/python examples/count_opens.py
"""

import os

from bpfkit import BPF

with BPF(text=r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (!n && bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST))
        n = bpf_map_lookup_elem(&counts, &pid);  /* another CPU made it first: add to theirs */
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}
""") as b:
    for _ in range(1000):
        os.close(os.open("/etc/hostname", os.O_RDONLY))
    print(b["counts"][os.getpid()].value)  # 1000
    for k, v in sorted(b["counts"].items(), key=lambda kv: -kv[1].value)[:5]:
        print(k.value, v.value)
