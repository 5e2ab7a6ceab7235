"""softirqs: Summarize soft irq event time as histograms.

BCC's flags and output (SOFTIRQ, TOTAL_usecs; ``-C`` counts, ``-d`` histograms), from the
softirq_entry/exit BTF tracepoints (raw tracepoints where the kernel has no BTF tracepoints);
``-j`` prints one JSON object per interval.

Examples::

    bpfkit softirqs            # sum soft irq event time
    bpfkit softirqs -C         # show the number of soft irq events
    bpfkit softirqs -d         # show soft irq event time as histograms
    bpfkit softirqs 1 10       # print 1 second summaries, 10 times
    bpfkit softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit softirqs -c 1       # sum soft irq event time on CPU 1 only
    bpfkit softirqs -j 1 5     # a JSON object per second, 5 times
    bpfkit softirqs -C --prometheus 9100   # serve bpfkit_softirqs_total{softirq=...}
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, clear, exporter, intervals, print_hists, print_json
    from .hardirqs import cpu, serve_totals
except ImportError:  # run as a script from tools/
    from _kit import Tool, clear, exporter, intervals, print_hists, print_json  # type: ignore[no-redef]
    from hardirqs import cpu, serve_totals  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [["entry_btf", "entry_raw"], ["exit_btf", "exit_raw"]]
#: The soft irq vectors' names, by number (the kernel's softirq_to_name, in lower case as BCC).
VECTORS = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu"]


def vec_name(vec: int) -> str:
    return VECTORS[vec] if 0 <= vec < len(VECTORS) else f"[unknown:{vec}]"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--events", action="store_true", help="show the number of soft irq events")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=cpu, help="trace this CPU only")
    TOOL.add_groups(p, "json", "interval", "prometheus")
    args = p.parse_args(argv)
    if args.events and (args.dist or args.nanoseconds):
        p.error("the --events option can't be used with time-based options")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"count_only": args.events, "per_slot": args.dist, "nsecs": args.nanoseconds,
              "targ_cpu": -1 if args.cpu is None else args.cpu}
    label = "count" if args.events else "nsecs" if args.nanoseconds else "usecs"
    factor = 1 if args.events or args.nanoseconds else 1000
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        if not args.json:
            print(f"Tracing soft irq {'events' if args.events else 'event time'}... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            items = [(k.vec, k.slot, v.value) for k, v in dist.items()]
            clear(args, dist)
            if args.dist:
                hists: dict = {}
                for vec, slot, n in sorted(items):
                    hists.setdefault(vec_name(vec), {})[slot] = n
                print_hists(hists, args, label, section_header="softirq", sectioned=True)
                continue
            if exporter(args) is not None:  # counts, or time in seconds (the map's are ns)
                serve_totals(exporter(args), [(vec_name(v), s, n) for v, s, n in items], "softirq", args.events)
                continue
            totals = sorted((n // factor, vec_name(vec)) for vec, _, n in items)
            if args.json:
                print_json({"val_type": label, "totals": [{"softirq": name, "total": n} for n, name in totals]})
                continue
            print("%-16s %11s" % ("SOFTIRQ", "TOTAL_" + label))
            for n, name in totals:
                print("%-16s %11d" % (name, n))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("softirqs", main))
