"""syncsnoop: Trace sync() variety of syscalls.

BCC's columns (TIME(s), COMM, CALL) for sync, fsync, fdatasync, msync, sync_file_range and
syncfs; TIME(s) is the kernel's monotonic clock. Each hook is a fallback ladder: a kprobe on the
syscall where the kernel has kprobes, else its tracepoint.

Examples::

    bpfkit syncsnoop           # trace sync syscalls
    bpfkit syncsnoop -p 181    # only trace PID 181
    bpfkit syncsnoop -j        # one JSON object per call
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
#: The syscalls, in the order of the program's enum sync_call.
CALLS = ["sync", "fsync", "fdatasync", "msync", "sync_file_range", "syncfs"]


def ladders() -> list:
    """A ladder (kprobe, else tracepoint) for each syscall this kernel has."""
    from bpfkit import BPF

    have = [s for s in CALLS if BPF.tracepoint_exists("syscalls", f"sys_enter_{s}")]
    if not have:  # no syscall tracepoints here (CONFIG_FTRACE_SYSCALLS): look for the functions
        have = [s for s in CALLS if BPF.ksymname(BPF.get_syscall_fnname(s)) is not None]
    return [[f"{s}_k", f"{s}_tp"] for s in have or CALLS[:1]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return TOOL.parser("pid", "uid", "cgroup", "duration", "json").parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME(s)", "%-18.9f "), ("comm", "COMM", "%-16s "), ("call", "CALL", "%s")],
                   json=args.json)

    def on_event(e: Any) -> None:  # struct sync_event
        call = CALLS[e.call] if e.call < len(CALLS) else "N/A"
        cols.row(time=e.ts_ns / 1e9, comm=e.comm.decode(errors="replace"), call=call)

    with TOOL.load(args, alternatives=ladders(), autoattach=False) as b:
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("syncsnoop", main))
