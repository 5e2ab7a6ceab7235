"""execsnoop: trace new processes via exec() syscalls, with BCC's flags and columns.

Examples::

    bpfkit execsnoop               # trace all exec() syscalls
    bpfkit execsnoop -x            # include failed exec()s
    bpfkit execsnoop -T            # include time (HH:MM:SS)
    bpfkit execsnoop -U            # include UID
    bpfkit execsnoop -u 1000       # only trace UID 1000
    bpfkit execsnoop -t            # include timestamps
    bpfkit execsnoop -q            # add "quotemarks" around arguments
    bpfkit execsnoop -n main       # only print command lines containing "main"
    bpfkit execsnoop -l tpkg       # only print command where arguments contains "tpkg"
    bpfkit execsnoop --max-args 5  # print at most 5 arguments
"""

from __future__ import annotations

import argparse
import ctypes as ct
import os
import sys
import time
from collections.abc import Sequence

try:
    from ._common import (
        count,
        poll_events,
        printed_source,
        regex,
        require_privileges,
        seconds,
        tool_parser,
        uid,
    )
except ImportError:  # run as a script from tools/
    from _common import (  # type: ignore[no-redef]
        count,
        poll_events,
        printed_source,
        regex,
        require_privileges,
        seconds,
        tool_parser,
        uid,
    )

#: The program's C, beside this file (a str, not a Path: pathlib costs start-up time).
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "execsnoop.bpf.c")
ARGS_BUF = 60 * 128
MAX_ARGS = 59  # the program reads at most this many arguments (MAX_ARGS - 1 in execsnoop.bpf.c)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = tool_parser("execsnoop", "Trace exec() syscalls", __doc__)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    p.add_argument("--cgroupmap", help=argparse.SUPPRESS)
    p.add_argument("-u", "--uid", type=uid, help="trace this UID (or user name) only")
    p.add_argument("-q", "--quote", action="store_true", help='Add quotemarks (") around arguments.')
    p.add_argument("-n", "--name", type=regex, help="only print commands matching this name (regex), any arg")
    p.add_argument("-l", "--line", type=regex, help="only print commands where arg contains this line (regex)")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("--max-args", type=count, default=20,
                   help=f"maximum number of arguments parsed and displayed, defaults to 20 (at most {MAX_ARGS})")
    p.add_argument("-d", "--duration", type=seconds, help="total duration of trace in seconds")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if printed_source(args, SOURCE):
        return 0
    require_privileges()
    from bpfkit import BPF

    consts = {
        "max_args": min(args.max_args, MAX_ARGS),
        "targ_uid": args.uid or 0,
        "filter_uid": args.uid is not None,
        # BCC's execsnoop shows successful execs only unless -x; -x adds the failures.
        "only_failed": False,
    }
    with BPF(src_file=SOURCE, consts=consts) as b:
        return _run(b, args)


def _run(b: object, args: argparse.Namespace) -> int:
    out = sys.stdout
    start: list = []
    name_re, line_re = args.name, args.line  # compiled by parse_args

    events = b["events"]  # type: ignore[index]

    def on_event(_ctx: object, data: object, _size: int) -> None:  # data: a _native.Record
        e = events.event(data)  # struct exec_event, typed from the program's BTF
        if e.ret != 0 and not args.fails:
            return
        # The arguments are NUL-separated strings: read the field's raw bytes, not up to the first NUL.
        raw = ct.string_at(ct.addressof(e) + type(e).args.offset, min(e.args_size, ARGS_BUF))
        argv = raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
        # The program counts one argument more than it stored when it stopped at --max-args.
        truncated = e.args_count > len(argv)
        if args.quote:
            argv = [b'"' + a.replace(b'"', b'\\"') + b'"' for a in argv]
        text = b" ".join(argv)
        if truncated:
            text += b" ..."
        if name_re and not name_re.search(e.comm + b" " + text):
            return
        if line_re and not line_re.search(text):
            return
        if not start:
            start.append(e.ts_ns)
        line = ""
        if args.time:
            line += "%-9s" % time.strftime("%H:%M:%S")
        if args.timestamp:
            line += "%-8.3f" % ((e.ts_ns - start[0]) / 1e9)
        if args.print_uid:
            line += "%-6d" % e.uid
        line += "%-16s %-7d %-7s %3d " % (e.comm.decode(errors="replace"), e.pid, str(e.ppid) if e.ppid else "?", e.ret)
        out.write(line + text.decode(errors="replace") + "\n")
        out.flush()

    events.open_ring_buffer(on_event)
    header = ""
    if args.time:
        header += "%-9s" % "TIME"
    if args.timestamp:
        header += "%-8s" % "TIME(s)"
    if args.print_uid:
        header += "%-6s" % "UID"
    out.write(header + "%-16s %-7s %-7s %3s %s\n" % ("PCOMM", "PID", "PPID", "RET", "ARGS"))
    out.flush()
    poll_events(b, args.duration)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("execsnoop", main))
