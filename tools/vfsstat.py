"""vfsstat: count VFS calls (reads, writes, fsyncs, opens, creates) per second, with BCC's output.

Written once for every kernel: each counter is a fallback ladder (fentry, then kprobe, then a
syscall tracepoint) and bpfkit attaches the first rung the kernel supports; ``-v`` says which.

Examples::

    bpfkit vfsstat          # one line of rates per second until Ctrl-C
    bpfkit vfsstat 5 3      # 5-second intervals, 3 lines
    bpfkit vfsstat -v 1 1   # also say which rung each counter uses
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

try:
    from ._common import count, printed_source, require_privileges, seconds, tool_parser
except ImportError:  # run as a script from tools/
    from _common import count, printed_source, require_privileges, seconds, tool_parser  # type: ignore[no-redef]

#: The program's C, beside this file (a str, not a Path: pathlib costs start-up time).
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vfsstat.bpf.c")
STATS = ["READ", "WRITE", "FSYNC", "OPEN", "CREATE"]
LADDERS = [[f"{s.lower()}_fentry", f"{s.lower()}_kprobe", f"{s.lower()}_tp"] for s in STATS]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = tool_parser("vfsstat", "Count VFS calls per second", __doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="say which hook each counter uses, and why")
    p.add_argument("interval", nargs="?", type=seconds, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=count, default=99999999, help="number of outputs")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if printed_source(args, SOURCE):
        return 0
    require_privileges()
    from bpfkit import BPF

    with BPF(src_file=SOURCE, alternatives=LADDERS) as b:
        if args.verbose:
            for first, alt in b.alternatives.items():
                print(f"{first.rsplit('_', 1)[0].upper():<7} {alt.program}", file=sys.stderr)
                for prog, why in alt.passed_over:
                    print(f"        not {prog}: {why}", file=sys.stderr)
        stats = b["stats"]
        print("%-8s: " % "TIME" + "".join(" %8s" % (s + "/s") for s in STATS), flush=True)
        remaining = args.count
        while remaining > 0:
            try:
                time.sleep(args.interval)
            except KeyboardInterrupt:
                break
            counts = [sum(stats[i]) for i in range(len(STATS))]
            stats.clear()
            print("%-8s: " % time.strftime("%H:%M:%S")
                  + "".join(" %8d" % (c / args.interval) for c in counts), flush=True)
            remaining -= 1
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("vfsstat", main))
