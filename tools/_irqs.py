"""What the interrupt tools share (``hardirqs``, ``softirqs``), on top of the kit: their command
line (BCC's ``-T -N -C -d -c`` and ``-j [interval [count]] --prometheus``) and their one loop,
which reads irq.bpf.h's ``dist`` map each interval and prints the time (or with ``-C`` the
number of events) of each handler as totals, as histograms (``-d``), as JSON (``-j``), or serves
it as Prometheus metrics.

A tool gives only what differs: the name of its handlers' column (``hardirq``, ``softirq``) and
BCC's width for it, how ``-C`` is spelled, and how a key of its map names its handler::

    def main(argv=None):
        args = parse_args(argv)
        return _irqs.main(TOOL, args, count_only=args.count_only, what="hard irq", column="hardirq",
                          width=26, read=lambda dist: [(k.name.decode(), k.slot, v.value)
                                                       for k, v in dist.items()])
"""

from __future__ import annotations

import sys

try:
    from ._kit import clear, cpu, exporter, intervals, print_hists, print_json
except ImportError:  # run as a script from tools/
    from _kit import clear, cpu, exporter, intervals, print_hists, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    from ._kit import Tool

#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint (each tool's
#: C names its entry and exit programs so).
LADDERS = [["entry_btf", "entry_raw"], ["exit_btf", "exit_raw"]]


def parse_args(tool: Tool, argv: Sequence[str] | None, *, count_only: tuple[str, str, str]) -> argparse.Namespace:
    """The tool's command line. ``count_only``: ``-C``'s long flag, destination and help, as BCC
    spells them for the tool (``--count`` in hardirqs, ``--events`` in softirqs)."""
    flag, dest, help_ = count_only
    p = tool.parser("timestamp")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", flag, action="store_true", dest=dest, help=help_)
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=cpu, help="trace this CPU only")
    tool.add_groups(p, "json", "interval", "prometheus")
    args = p.parse_args(argv)
    if getattr(args, dest) and (args.dist or args.nanoseconds):
        p.error(f"the {flag} option can't be used with time-based options")
    return args


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


def main(tool: Tool, args: argparse.Namespace, *, count_only: bool, what: str, column: str, width: int,
         read: Callable[[Any], list]) -> int:
    """Loads the tool and runs its interval loop. ``what``: the interrupts, as the first line
    says them (``hard irq``); ``column``: the handlers' column (``hardirq``: ``HARDIRQ`` in the
    text, the key in JSON, the label of the metrics); ``width``: BCC's width of that column;
    ``read(dist)``: the map's entries as ``(handler name, slot, value)``."""
    consts = {"count_only": count_only, "per_slot": args.dist, "nsecs": args.nanoseconds,
              "targ_cpu": -1 if args.cpu is None else args.cpu}
    label = "count" if count_only else "nsecs" if args.nanoseconds else "usecs"
    factor = 1 if count_only or args.nanoseconds else 1000
    row = f"%-{width}s %11"
    with tool.load(args, consts=consts, alternatives=LADDERS) as b:
        if not args.json:
            print(f"Tracing {what} {'events' if count_only else 'event time'}... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            items = read(dist)
            clear(args, dist)
            if args.dist:
                hists: dict = {}
                for name, slot, n in items:
                    hists.setdefault(name, {})[slot] = n
                print_hists(hists, args, label, section_header=column, sectioned=True)
                continue
            if exporter(args) is not None:  # counts, or time in seconds (the map's are ns)
                serve_totals(exporter(args), items, column, count_only)
                continue
            totals = sorted((n // factor, name) for name, _, n in items)
            if args.json:
                print_json({"val_type": label, "totals": [{column: name, "total": n} for n, name in totals]})
                continue
            print((row + "s") % (column.upper(), "TOTAL_" + label))
            for n, name in totals:
                print((row + "d") % (name, n))
            sys.stdout.flush()
    return 0
