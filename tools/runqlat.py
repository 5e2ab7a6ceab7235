"""runqlat: Summarize run queue (scheduler) latency as a histogram.

BCC's flags and output: the time each task waited on a run queue, from its wakeup (or its
preemption) to its running, from the scheduler's BTF tracepoints (raw tracepoints where the
kernel has no BTF tracepoints); ``-j`` prints one JSON object per interval.

Examples::

    bpfkit runqlat            # summarize run queue latency as a histogram
    bpfkit runqlat 1 10       # print 1 second summaries, 10 times
    bpfkit runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
    bpfkit runqlat -P         # show each PID separately
    bpfkit runqlat -L         # show each TID separately
    bpfkit runqlat --pidnss   # show each PID namespace separately
    bpfkit runqlat -p 185     # trace PID 185 only
    bpfkit runqlat -j 1 5     # a JSON object per second, 5 times
    bpfkit runqlat --prometheus 127.0.0.1:9100   # serve bpfkit_runqlat_seconds on this machine only
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, intervals, print_hists, read_hists
except ImportError:  # run as a script from tools/
    from _kit import Tool, intervals, print_hists, read_hists  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [[f"{hook}_btf", f"{hook}_raw"] for hook in ("wakeup", "wakeup_new", "switch")]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    sections = p.add_mutually_exclusive_group()
    sections.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    sections.add_argument("--pidnss", action="store_true", help="print a histogram per PID namespace")
    sections.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    TOOL.add_groups(p, "pid", "json", "interval", "prometheus")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"millis": args.milliseconds, "per_pid": args.pids, "per_tid": args.tids, "per_pidns": args.pidnss}
    section = "pid" if args.pids else "tid" if args.tids else "pidns" if args.pidnss else None
    label = "msecs" if args.milliseconds else "usecs"
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        if not args.json:
            print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            hists = read_hists(args, dist, (lambda k: k.id) if section else None)
            print_hists(hists, args, label, section_header=section or "", sectioned=section is not None)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("runqlat", main))
