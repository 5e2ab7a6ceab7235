"""statsnoop: Trace stat() syscalls.

BCC's flags and columns (PID, COMM, FD, ERR, PATH) for statfs, stat, lstat, fstatat and statx.
Each hook is a fallback ladder: a kprobe on the syscall where the kernel has kprobes, else the
syscall tracepoints.

Examples::

    bpfkit statsnoop           # trace all stat() syscalls
    bpfkit statsnoop -t        # include timestamps
    bpfkit statsnoop -x        # only show failed stats
    bpfkit statsnoop -p 181    # only trace PID 181
    bpfkit statsnoop -j        # one JSON object per stat()
"""

from __future__ import annotations

import sys

try:
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The syscalls traced, by their kernel names (stat is newstat, fstatat is newfstatat on x86-64).
SYSCALLS = ["statfs", "newstat", "newlstat", "newfstatat", "statx"]


def ladders() -> list:
    """The entry and exit ladders of each syscall this kernel has (an architecture may lack
    some: arm64 has no newstat): its tracepoint exists, or without syscall tracepoints, its
    function."""
    from bpfkit import BPF

    have = [s for s in SYSCALLS if BPF.tracepoint_exists("syscalls", f"sys_enter_{s}")]
    if not have:  # no syscall tracepoints here (CONFIG_FTRACE_SYSCALLS): look for the functions
        have = [s for s in SYSCALLS if BPF.ksymname(BPF.get_syscall_fnname(s)) is not None]
    return [r for s in have for r in ([f"{s}_entry_k", f"{s}_entry_tp"], [f"{s}_exit_k", f"{s}_exit_tp"])] \
        or [["statx_entry_k", "statx_entry_tp"]]  # none: let the ladder say why


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    TOOL.add_groups(p, "failed", "pid", "uid", "cgroup", "duration", "json", help={"failed": "only show failed stats"})
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME(s)", "%-14.9f", args.timestamp), ("pid", "PID", "%-7d "),
                    ("comm", "COMM", "%-16s "), ("fd", "FD", "%4d "), ("err", "ERR", "%3d "), ("path", "PATH", "%s")],
                   json=args.json)
    start: list = []

    def on_event(e: Any) -> None:  # struct stat_event
        if not start:
            start.append(e.ts_ns)
        ret = e.ret
        cols.row(time=(e.ts_ns - start[0]) / 1e9, pid=e.pid, comm=e.comm.decode(errors="replace"),
                 fd=ret if ret >= 0 else -1, err=0 if ret >= 0 else -ret, path=e.path.decode(errors="replace"))

    with TOOL.load(args, consts={"only_failed": args.failed}, alternatives=ladders(), autoattach=False) as b:
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("statsnoop", main))
