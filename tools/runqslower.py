"""runqslower: Trace high run queue latency.

BCC's flags and columns (TIME, COMM, TID, LAT(us), and with ``-P`` PREV COMM, PREV TID): each
time a task waited on a run queue longer than ``min_us``, from the scheduler's BTF tracepoints
(raw tracepoints where the kernel has no BTF tracepoints); ``-j`` prints one JSON object each.

Examples::

    bpfkit runqslower         # trace run queue latency higher than 10000 us (default)
    bpfkit runqslower 1000    # trace run queue latency higher than 1000 us
    bpfkit runqslower -p 123  # trace pid 123
    bpfkit runqslower -t 123  # trace tid 123 (use for threads only)
    bpfkit runqslower -P      # also show previous task comm and TID
    bpfkit runqslower -j 0    # every wait, one JSON object each
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, event_loop, invalid, pid
    from .runqlat import LADDERS  # sched.bpf.h's wakeup and switch ladders, the same in both tools
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop, invalid, pid  # type: ignore[no-redef]
    from runqlat import LADDERS  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def microseconds(text: str) -> int:
    """A latency threshold in microseconds: an integer of at least 0 (0 reports every wait)."""
    try:
        n = int(text, 10)
    except ValueError:
        n = -1
    if not 0 <= n < 2**63:
        raise invalid(f"{text!r} is not a number of microseconds, an integer of at least 0")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("min_us", nargs="?", type=microseconds, default=10000,
                   help="minimum run queue latency to trace, in us (default 10000)")
    p.add_argument("-P", "--previous", action="store_true", help="also show previous task name and TID")
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=pid, dest="pid", help="trace this PID only")
    who.add_argument("-t", "--tid", type=pid, dest="tid", help="trace this TID only")
    TOOL.groups += ["pid", "tid"]  # the kit sets their filters: added by hand to share one exclusive group
    TOOL.add_groups(p, "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME", "%-8s "), ("comm", "COMM", "%-16s "), ("tid", "TID", "%-6s "),
                    ("lat_us", "LAT(us)", "%14s"), ("prev_comm", "PREV COMM", " %-16s", args.previous),
                    ("prev_tid", "PREV TID", " %-6s", args.previous)], json=args.json)
    with TOOL.load(args, consts={"min_us": args.min_us}, alternatives=LADDERS) as b:
        if not args.json:
            print(f"Tracing run queue latency higher than {args.min_us} us", flush=True)

        def on_event(e: object) -> None:
            cols.row(time=time.strftime("%H:%M:%S"), comm=e.task.decode(errors="replace"),  # type: ignore[attr-defined]
                     tid=e.pid, lat_us=e.delta_us, prev_comm=e.prev_task.decode(errors="replace"),  # type: ignore
                     prev_tid=e.prev_pid)  # type: ignore[attr-defined]

        b["events"].set_record("struct event")  # not the CO-RE flavor of task_struct
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("runqslower", main))
