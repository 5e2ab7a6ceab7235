"""vfsstat: Count VFS calls (reads, writes, fsyncs, opens, creates) per second.

BCC's output. Written once for every kernel: each counter is a fallback ladder (fentry, then
kprobe, then a syscall tracepoint) and bpfkit attaches the first rung the kernel supports; ``-v``
says which.

Examples::

    bpfkit vfsstat          # one line of rates per second until Ctrl-C
    bpfkit vfsstat 5 3      # 5-second intervals, 3 lines
    bpfkit vfsstat -p 181   # only the calls of PID 181
    bpfkit vfsstat -j 1 1   # one JSON object per interval
    bpfkit vfsstat -v 1 1   # also say which rung each counter uses
    bpfkit vfsstat --prometheus 9100   # serve bpfkit_vfsstat_calls_total{op=...}
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, clear, exporter, intervals
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, clear, exporter, intervals  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
STATS = ["READ", "WRITE", "FSYNC", "OPEN", "CREATE"]
LADDERS = [[f"{s.lower()}_fentry", f"{s.lower()}_kprobe", f"{s.lower()}_tp"] for s in STATS]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("pid", "json", "interval", "prometheus")
    p.add_argument("-v", "--verbose", action="store_true", help="say which hook each counter uses, and why")
    p.set_defaults(interval=1)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME", "%-8s: ")] + [(s.lower(), s + "/s", " %8d") for s in STATS], json=args.json)
    with TOOL.load(args, alternatives=LADDERS) as b:
        if args.verbose:
            for first, alt in b.alternatives.items():
                print(f"{first.rsplit('_', 1)[0].upper():<7} {alt.program}", file=sys.stderr)
                for prog, why in alt.passed_over:
                    print(f"        not {prog}: {why}", file=sys.stderr)
        stats = b["stats"]
        serving = exporter(args)
        if serving is None:
            cols.header()
        for _ in intervals(args, final=False):
            counts = [sum(stats[i]) for i in range(len(STATS))]
            clear(args, stats)
            if serving is not None:
                serving.counter("calls_total", "VFS calls, by operation", ("op",),
                                {(s.lower(),): c for s, c in zip(STATS, counts)})
                continue
            # BCC's rates: the counts divided by the interval asked for, truncated.
            rates = {s.lower(): int(c / args.interval) for s, c in zip(STATS, counts)}
            cols.row(time=time.strftime("%H:%M:%S"), **rates)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("vfsstat", main))
