"""drsnoop: Trace direct reclaim latency, one line per reclaim a task did itself.

BCC's flags and columns ([TIME(s)], [UID], COMM, PID, LAT(ms), PAGES, [FREE(KB)]), from the
vmscan tracepoints: global direct reclaim and the reclaim a task does when its cgroup reaches
memory.high or memory.max (``-e`` adds a column saying which).

Examples::

    bpfkit drsnoop           # trace all direct reclaim
    bpfkit drsnoop -T        # include timestamps
    bpfkit drsnoop -U        # include UID
    bpfkit drsnoop -p 181    # only trace PID 181
    bpfkit drsnoop -t 123    # only trace TID 123
    bpfkit drsnoop -u 1000   # only trace UID 1000
    bpfkit drsnoop -d 10     # trace for 10 seconds only
    bpfkit drsnoop -n main   # only print process names containing "main"
    bpfkit drsnoop -v        # also show free memory (read as each line is printed)
    bpfkit drsnoop -j        # one JSON object per reclaim
"""

from __future__ import annotations

import os
import sys

try:
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp", "print_uid", "pid", "tid", "uid", "duration")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-v", "--verbose", action="store_true", help="show system memory state (free memory)")
    p.add_argument("-e", "--extended", action="store_true", help="show whether the reclaim was for a cgroup")
    TOOL.add_groups(p, "json")
    return p.parse_args(argv)


def free_kb() -> int:
    """Free memory in KiB, from /proc/vmstat (the kernel's vm_zone_stat is not readable here)."""
    with open("/proc/vmstat", "rb") as f:
        for line in f:
            if line.startswith(b"nr_free_pages "):
                return int(line.split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    who = ("tid", "TID", "%-6d ") if args.tid else ("pid", "PID", "%-6d ")
    cols = Columns([("time", "TIME(s)", "%-14.9f", args.timestamp), ("uid", "UID", "%-6d", args.print_uid),
                    ("comm", "COMM", "%-14.14s "), who, ("lat_ms", "LAT(ms)", "%8.2f "), ("pages", "PAGES", "%5d"),
                    ("free_kb", "FREE(KB)", "%10d", args.verbose), ("memcg", "MEMCG", " %5s", args.extended)],
                   json=args.json)
    with TOOL.load(args) as b:
        event_loop(b, _printer(args, cols), duration=args.duration, ready=cols.header)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Callable[[Any], None]:
    start: list = []
    name = os.fsencode(args.name) if args.name else None

    def on_event(e: Any) -> None:  # struct dr_event, typed from the program's BTF
        if not start:
            start.append(e.ts_ns)
        if name and name not in e.comm:
            return
        memcg = bool(e.memcg) if args.json else ("yes" if e.memcg else "no")
        cols.row(time=(e.ts_ns - start[0]) / 1e9, uid=e.uid, comm=e.comm.decode(errors="replace"), pid=e.pid,
                 tid=e.tid, lat_ms=e.delta_ns / 1e6, pages=e.nr_reclaimed,
                 free_kb=free_kb() if args.verbose else 0, memcg=memcg)

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("drsnoop", main))
