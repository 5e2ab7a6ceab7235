#!/usr/bin/env python3
"""Prints every firing of a USDT probe with its arguments, from one process or from every process
running a binary: BCC's USDT class, with the arguments read by libbpf's bpf_usdt_arg() in the
program and sent over a ring buffer.

    sudo .venv/bin/python examples/usdt_example.py -l -p 1234              # list a process's probes
    sudo .venv/bin/python examples/usdt_example.py -p 1234 gc__start       # one process (Python's GC)
    sudo .venv/bin/python examples/usdt_example.py -b stdc++ throw -d 10   # C++ throws, all processes
    sudo .venv/bin/python examples/usdt_example.py -b /usr/bin/python3.11 python:function__entry

The probe is "name" or "provider:name"; -b takes a path or a library's short name.
"""

import argparse
import sys
import time

from bpfkit import BPF, USDT

PROGRAM = r"""
#define MAX_ARGS 6

struct event {
    u32 pid;
    s32 nargs;
    char comm[16];
    s64 args[MAX_ARGS];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

u64 dropped = 0;

SEC("usdt")
int on_probe(struct pt_regs *ctx)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&dropped, 1);
        return 0;
    }
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->nargs = bpf_usdt_arg_cnt(ctx);
    for (int i = 0; i < MAX_ARGS; i++) {
        long v = 0;
        if (i < e->nargs)
            bpf_usdt_arg(ctx, i, &v);
        e->args[i] = v;
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}
"""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-p", "--pid", type=int, help="trace this process (its binary and loaded libraries)")
    p.add_argument("-b", "--binary", help="trace this binary or library (every process running it)")
    p.add_argument("-l", "--list", action="store_true", help="list the probes and exit")
    p.add_argument("-d", "--duration", type=float, help="stop after this many seconds")
    p.add_argument("probe", nargs="?", help='"name" or "provider:name"')
    a = p.parse_args(argv)
    if a.pid is None and a.binary is None:
        p.error("give -p PID or -b BINARY")
    if not a.list and not a.probe:
        p.error("give a probe, or -l to list them")
    return a


def main(argv=None):
    a = parse_args(argv)
    u = USDT(pid=a.pid, path=a.binary)
    if a.list:
        probes = u.enumerate_probes()
        for probe in probes:
            print(probe)
        if not probes:
            print("no USDT probes (no .note.stapsdt section)", file=sys.stderr)
        return 0
    u.enable_probe_or_bail(a.probe, "on_probe")
    with BPF(text=PROGRAM, usdt_contexts=[u]) as b:
        events = b["events"]

        def show(_ctx, data, _size):
            e = events.event(data)
            args = " ".join(str(e.args[i]) for i in range(min(e.nargs, 6)))
            print(f"{time.strftime('%H:%M:%S')} {e.pid:<7} {e.str('comm'):<16} {a.probe} {args}", flush=True)

        events.open_ring_buffer(show)
        print(f"Tracing USDT probe {a.probe}... Ctrl-C to end.", file=sys.stderr)
        print(f"{'TIME':<8} {'PID':<7} {'COMM':<16} PROBE ARGS")
        end = time.monotonic() + a.duration if a.duration else None
        try:
            while end is None or time.monotonic() < end:
                b.ring_buffer_poll(100)
        except KeyboardInterrupt:
            pass
        if b.get_global("dropped"):
            print(f"{b.get_global('dropped')} events dropped (ring buffer full)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
