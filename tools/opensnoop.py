"""opensnoop: trace open() syscalls, with BCC's flags and columns.

Examples::

    bpfkit opensnoop              # trace all open() syscalls
    bpfkit opensnoop -T           # include timestamps
    bpfkit opensnoop -U           # include UID
    bpfkit opensnoop -x           # only show failed opens
    bpfkit opensnoop -p 181       # only trace PID 181
    bpfkit opensnoop -t 123       # only trace TID 123
    bpfkit opensnoop -u 1000      # only trace UID 1000
    bpfkit opensnoop -d 10        # trace for 10 seconds only
    bpfkit opensnoop -n main      # only print process names containing "main"
    bpfkit opensnoop -e           # show extended fields (flags)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

try:
    from ._common import pid, poll_events, printed_source, require_privileges, seconds, tool_parser, uid
except ImportError:  # run as a script from tools/
    from _common import pid, poll_events, printed_source, require_privileges, seconds, tool_parser, uid  # type: ignore[no-redef]

#: The program's C, beside this file (a str, not a Path: pathlib costs start-up time).
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opensnoop.bpf.c")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = tool_parser("opensnoop", "Trace open() syscalls", __doc__)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("-x", "--failed", action="store_true", help="only show failed opens")
    p.add_argument("-p", "--pid", type=pid, help="trace this PID only")
    p.add_argument("-t", "--tid", type=pid, help="trace this TID only")
    p.add_argument("-u", "--uid", type=uid, help="trace this UID (or user name) only")
    p.add_argument("-d", "--duration", type=seconds, help="total duration of trace in seconds")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-e", "--extended_fields", action="store_true", help="show extended fields")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if printed_source(args, SOURCE):
        return 0
    require_privileges()
    from bpfkit import BPF

    consts = {
        "targ_tgid": args.pid or 0,
        "targ_tid": args.tid or 0,
        "targ_uid": args.uid or 0,
        "filter_uid": args.uid is not None,
        "only_failed": args.failed,
    }
    b = BPF(src_file=SOURCE, consts=consts)
    try:
        # open(2) and openat2(2) are not on every architecture and kernel: attach where present.
        for name, enter in (("open", "enter_open"), ("openat2", "enter_openat2")):
            if BPF.tracepoint_exists("syscalls", f"sys_enter_{name}"):
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{name}", fn_name=enter)
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{name}", fn_name="exit_open")
        return _run(b, args)
    finally:
        b.close()


def _run(b: object, args: argparse.Namespace) -> int:
    out = sys.stdout
    start_ns: list = []
    name = os.fsencode(args.name) if args.name else None

    events = b["events"]  # type: ignore[index]

    def on_event(_ctx: object, data: object, _size: int) -> None:  # data: a _native.Record
        e = events.event(data)  # struct open_event, typed from the program's BTF
        if name and name not in e.comm:
            return
        if not start_ns:
            start_ns.append(e.ts_ns)
        fd, err = (e.ret, 0) if e.ret >= 0 else (-1, -e.ret)
        line = ""
        if args.timestamp:
            line += "%-14.9f" % ((e.ts_ns - start_ns[0]) / 1e9)
        if args.print_uid:
            line += "%-6d" % e.uid
        line += "%-6d %-16s %4d %3d " % (e.tid if args.tid else e.pid, e.comm.decode(errors="replace"), fd, err)
        if args.extended_fields:
            line += "%08o " % e.flags
        out.write(line + e.path.decode(errors="replace") + "\n")
        out.flush()

    events.open_ring_buffer(on_event)
    header = ""
    if args.timestamp:
        header += "%-14s" % "TIME(s)"
    if args.print_uid:
        header += "%-6s" % "UID"
    header += "%-6s %-16s %4s %3s " % ("TID" if args.tid else "PID", "COMM", "FD", "ERR")
    if args.extended_fields:
        header += "%-9s" % "FLAGS"
    out.write(header + "PATH\n")
    out.flush()
    poll_events(b, args.duration)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("opensnoop", main))
