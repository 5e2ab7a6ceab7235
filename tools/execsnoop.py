"""execsnoop: Trace new processes via exec() syscalls.

BCC's flags and columns (PCOMM, PID, PPID, RET, ARGS), from the syscall tracepoints.

Examples::

    bpfkit execsnoop               # trace all exec() syscalls
    bpfkit execsnoop -x            # include failed exec()s
    bpfkit execsnoop -T            # include time (HH:MM:SS)
    bpfkit execsnoop -P 181        # only trace new processes whose parent PID is 181
    bpfkit execsnoop -U            # include UID
    bpfkit execsnoop -u 1000       # only trace UID 1000
    bpfkit execsnoop -u user       # get user UID and trace only them
    bpfkit execsnoop -t            # include timestamps
    bpfkit execsnoop -q            # add "quotemarks" around arguments
    bpfkit execsnoop -n main       # only print commands whose name contains "main"
    bpfkit execsnoop -l tpkg       # only print command where arguments contains "tpkg"
    bpfkit execsnoop -c /sys/fs/cgroup/unified/user.slice   # only tasks in this cgroup
    bpfkit execsnoop --cgroupmap /sys/fs/bpf/cgset          # only trace cgroups in this BPF map
    bpfkit execsnoop --mntnsmap /sys/fs/bpf/mntset          # only trace mount namespaces in the map
    bpfkit execsnoop --max-args 5  # print at most 5 arguments
    bpfkit execsnoop -j            # one JSON object per exec()
"""

from __future__ import annotations

import ctypes as ct
import sys
import time

try:
    from ._kit import Columns, Tool, count, event_loop, pid, regex
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, count, event_loop, pid, regex  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
ARGS_BUF = 60 * 128
MAX_ARGS = 59  # the program reads at most this many arguments (MAX_ARGS - 1 in execsnoop.bpf.c)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    TOOL.add_groups(p, "cgroupmap", "mntnsmap", "cgroup", "uid")
    p.add_argument("-q", "--quote", action="store_true", help='Add quotemarks (") around arguments.')
    p.add_argument("-n", "--name", type=regex, help="only print commands whose name (regex) matches")
    p.add_argument("-l", "--line", type=regex, help="only print commands where arg contains this line (regex)")
    TOOL.add_groups(p, "print_uid")
    p.add_argument("--max-args", type=count, default=20,
                   help=f"maximum number of arguments parsed and displayed, defaults to 20 (at most {MAX_ARGS})")
    p.add_argument("-P", "--ppid", type=pid, help="trace this parent PID only")
    TOOL.add_groups(p, "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"max_args": min(args.max_args, MAX_ARGS), "targ_ppid": args.ppid or 0, "with_failed": args.fails}
    cols = Columns([("time", "TIME", "%-9s", args.time), ("timestamp", "TIME(s)", "%-8.3f", args.timestamp),
                    ("uid", "UID", "%-6d", args.print_uid), ("pcomm", "PCOMM", "%-16s "), ("pid", "PID", "%-7d "),
                    ("ppid", "PPID", "%-7s "), ("ret", "RET", "%3d "), ("args", "ARGS", "%s")], json=args.json)
    with TOOL.load(args, consts=consts) as b:
        event_loop(b, _printer(args, cols), duration=args.duration, ready=cols.header)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Callable[[Any], None]:
    """The event callback: splits the arguments, applies -q, -n and -l, and prints."""
    start: list = []
    name_re, line_re = args.name, args.line  # compiled by parse_args

    def on_event(e: Any) -> None:  # struct exec_event, typed from the program's BTF
        # The arguments are NUL-separated strings: read the field's raw bytes, not up to the first NUL.
        raw = ct.string_at(ct.addressof(e) + type(e).args.offset, min(e.args_size, ARGS_BUF))
        argv = raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
        # The program counts one argument more than it stored when it stopped at --max-args.
        truncated = e.args_count > len(argv)
        # -n searches the command's name, -l the arguments as given (before -q quotes them), as
        # BCC's do.
        if name_re and not name_re.search(e.comm):
            return
        text = b" ".join(argv)
        if line_re and not line_re.search(text):
            return
        if args.quote:
            text = b" ".join(b'"' + a.replace(b'"', b'\\"') + b'"' for a in argv)
        if truncated:
            text += b" ..."
        if not start:
            start.append(e.ts_ns)
        ppid = e.ppid if args.json else (str(e.ppid) if e.ppid else "?")
        cols.row(time=time.strftime("%H:%M:%S"), timestamp=(e.ts_ns - start[0]) / 1e9, uid=e.uid,
                 pcomm=e.comm.decode(errors="replace"), pid=e.pid, ppid=ppid, ret=e.ret,
                 args=text.decode(errors="replace"))

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("execsnoop", main))
