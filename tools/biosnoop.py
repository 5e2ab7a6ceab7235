"""biosnoop: Trace block I/O, one line per request with its task, disk and latency.

BCC's flags and columns (TIME(s), COMM, PID, DISK, T, SECTOR, BYTES, [P], [QUE(ms)], LAT(ms)),
and libbpf-tools' cgroup filter and duration. Each hook is a fallback ladder: the block
tracepoints as tp_btf or raw_tp, blk_account_io_start by fentry or kprobe where the kernel has
no block_io_start tracepoint.

Examples::

    bpfkit biosnoop              # trace all block I/O
    bpfkit biosnoop -Q           # include OS queued time
    bpfkit biosnoop -d sdc       # trace sdc only
    bpfkit biosnoop -P           # display block I/O pattern (sequential or random)
    bpfkit biosnoop -c /sys/fs/cgroup/system.slice   # I/O submitted by tasks in this cgroup
    bpfkit biosnoop 10           # trace for 10 seconds only
    bpfkit biosnoop -j           # one JSON object per I/O
"""

from __future__ import annotations

import sys

try:
    from ._kit import Columns, Tool, event_loop, seconds
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Submission, issue and completion: each a fallback ladder, best first.
LADDERS = [["start_tp_btf", "start_raw_tp", "start_fentry", "start_kprobe", "start_insert_tp_btf",
            "start_insert_raw_tp"],
           ["issue_tp_btf", "issue_raw_tp"], ["complete_tp_btf", "complete_raw_tp"]]
PATTERN = {0: "?", 1: "S", 2: "R"}


def disk(text: str) -> tuple[str, int, int]:
    """A disk by its name under /dev: ``(name, major, minor)`` (biolatency's ``-d``)."""
    try:
        from .biolatency import disk as _disk
    except ImportError:
        from biolatency import disk as _disk  # type: ignore[no-redef]
    return _disk(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-Q", "--queue", action="store_true", help="include OS queued time")
    p.add_argument("-d", "--disk", type=disk, help="trace this disk only")
    p.add_argument("-P", "--pattern", action="store_true", help="display block I/O pattern (sequential or random)")
    TOOL.add_groups(p, "cgroup", "json", help={"cgroup": "trace I/O submitted by tasks in this cgroup only"})
    p.add_argument("duration", nargs="?", type=seconds, help="total duration of trace in seconds")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _, major, minor = args.disk or ("", 0, 0)
    consts = {"filter_dev": args.disk is not None, "targ_major": major, "targ_minor": minor}
    cols = Columns([("time", "TIME(s)", "%-11.6f "), ("comm", "COMM", "%-14.14s "), ("pid", "PID", "%-7d "),
                    ("disk", "DISK", "%-9s "), ("t", "T", "%-1s "), ("sector", "SECTOR", "%-10d "),
                    ("bytes", "BYTES", "%-7d "), ("pattern", "P", "%-1s ", args.pattern),
                    ("que_ms", "QUE(ms)", "%7.2f ", args.queue), ("lat_ms", "LAT(ms)", "%7.2f")], json=args.json)
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        b["events"].set_record("struct bio_event")  # the C also defines a CO-RE flavour of struct request
        event_loop(b, _printer(cols), duration=args.duration, ready=cols.header)
    return 0


def _printer(cols: Columns) -> Callable[[Any], None]:
    start: list = []

    def on_event(e: Any) -> None:  # struct bio_event, typed from the program's BTF
        if not start:
            start.append(e.ts_ns)
        cols.row(time=(e.ts_ns - start[0]) / 1e9, comm=e.comm.decode(errors="replace"), pid=e.pid,
                 disk=e.disk.decode(errors="replace") or "<unknown>", t="W" if e.rwflag else "R",
                 sector=e.sector, bytes=e.bytes, pattern=PATTERN.get(e.sequential, "?"),
                 que_ms=e.qdelta_ns / 1e6, lat_ms=e.delta_ns / 1e6)

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("biosnoop", main))
