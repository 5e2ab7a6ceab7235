"""hardirqs: Summarize hard irq event time as histograms.

BCC's flags and output (HARDIRQ, TOTAL_usecs; ``-C`` counts, ``-d`` histograms), from the
irq_handler_entry/exit BTF tracepoints (raw tracepoints where the kernel has no BTF tracepoints);
``-j`` prints one JSON object per interval.

Examples::

    bpfkit hardirqs            # sum hard irq event time
    bpfkit hardirqs -d         # show hard irq event time as histograms
    bpfkit hardirqs -C         # show hard irq event counts
    bpfkit hardirqs 1 10       # print 1 second summaries, 10 times
    bpfkit hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit hardirqs -c 1       # sum hard irq event time on CPU 1 only
    bpfkit hardirqs -j 1 5     # a JSON object per second, 5 times
    bpfkit hardirqs --prometheus 9100   # serve bpfkit_hardirqs_seconds_total{hardirq=...}
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, clear, cpu, exporter, intervals, print_hists, print_json
except ImportError:  # run as a script from tools/
    from _kit import Tool, clear, cpu, exporter, intervals, print_hists, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [["entry_btf", "entry_raw"], ["exit_btf", "exit_raw"]]




def serve_totals(serving: Any, items: list, label: str, count_only: bool) -> None:
    """``(name, slot, n)`` totals as ``bpfkit_<tool>_total`` (events) or ``_seconds_total``."""
    totals: dict = {}
    for name, _, n in items:
        totals[(name,)] = totals.get((name,), 0) + n
    if count_only:
        serving.counter("total", f"{label.capitalize()} events, by {label}", (label,), totals)
    else:
        serving.counter("seconds_total", f"Time spent in {label} handlers", (label,),
                        {k: ns / 1e9 for k, ns in totals.items()})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--count", action="store_true", dest="count_only", help="show event counts instead of timing")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=cpu, help="trace this CPU only")
    TOOL.add_groups(p, "json", "interval", "prometheus")
    args = p.parse_args(argv)
    if args.count_only and (args.dist or args.nanoseconds):
        p.error("the --count option can't be used with time-based options")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"count_only": args.count_only, "per_slot": args.dist, "nsecs": args.nanoseconds,
              "targ_cpu": -1 if args.cpu is None else args.cpu}
    label = "count" if args.count_only else "nsecs" if args.nanoseconds else "usecs"
    factor = 1 if args.count_only or args.nanoseconds else 1000
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        if not args.json:
            print(f"Tracing hard irq {'events' if args.count_only else 'event time'}... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            items = [(k.name.decode(errors="replace"), k.slot, v.value) for k, v in dist.items()]
            clear(args, dist)
            if args.dist:
                hists: dict = {}
                for name, slot, n in items:
                    hists.setdefault(name, {})[slot] = n
                print_hists(hists, args, label, section_header="hardirq", sectioned=True)
                continue
            if exporter(args) is not None:  # counts, or time in seconds (the map's are ns)
                serve_totals(exporter(args), items, "hardirq", args.count_only)
                continue
            totals = sorted(((n // factor, name) for name, _, n in items))
            if args.json:
                print_json({"val_type": label, "totals": [{"hardirq": name, "total": n} for n, name in totals]})
                continue
            print("%-26s %11s" % ("HARDIRQ", "TOTAL_" + label))
            for n, name in totals:
                print("%-26s %11d" % (name, n))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("hardirqs", main))
