"""runqlen: Summarize scheduler run queue length as a histogram.

BCC's flags and output: every CPU's run queue length (the tasks waiting besides the one
running), sampled by a software CPU-clock perf event 99 times a second on each CPU; ``-j``
prints one JSON object per interval.

Examples::

    bpfkit runqlen            # summarize run queue length as a histogram
    bpfkit runqlen 1 10       # print 1 second summaries, 10 times
    bpfkit runqlen -T 1       # 1s summaries and timestamps
    bpfkit runqlen -O         # report run queue occupancy
    bpfkit runqlen -C         # show each CPU separately
    bpfkit runqlen -f 199     # sample at 199 Hz
    bpfkit runqlen -j 1 5     # a JSON object per second, 5 times
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, intervals, invalid, print_hists, print_json, read_hists
except ImportError:  # run as a script from tools/
    from _kit import Tool, intervals, invalid, print_hists, print_json, read_hists  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def frequency(text: str) -> int:
    """A sampling frequency in Hz: an integer from 1 to 100000."""
    try:
        n = int(text, 10)
    except ValueError:
        n = 0
    if not 1 <= n <= 100000:
        raise invalid(f"{text!r} is not a frequency, an integer from 1 to 100000 (Hz)")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-O", "--runqocc", action="store_true", help="report run queue occupancy")
    p.add_argument("-C", "--cpus", action="store_true", help="print output for each CPU separately")
    p.add_argument("-f", "--frequency", type=frequency, default=99, help="sample at this frequency (Hz), 99 by default")
    TOOL.add_groups(p, "json", "interval", "prometheus")
    return p.parse_args(argv)


def occupancy(hist: dict) -> float:
    """The percentage of samples that found a task waiting."""
    samples = sum(hist.values())
    return 100.0 * (samples - hist.get(0, 0)) / samples if samples else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with TOOL.load(args) as b:
        from bpfkit import PerfSWConfig, PerfType

        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="do_sample",
                            sample_freq=args.frequency)
        if not args.json:
            print("Sampling run queue length... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            hists = read_hists(args, dist, (lambda k: k.cpu) if args.cpus else None, slot="len")
            if args.runqocc and not args.prometheus:  # served: the histogram, whose le=0 gives it
                _print_occupancy(hists, args)
            else:
                print_hists(hists, args, "runqlen", section_header="cpu", linear=True, sectioned=args.cpus,
                            metric="tasks")
    return 0


def _print_occupancy(hists: dict, args: argparse.Namespace) -> None:
    if not args.cpus:
        occ = occupancy(hists.get(None, {}))
        if args.json:
            print_json({"runqocc": occ})
        else:
            print("runqocc: %0.2f%%" % occ, flush=True)
        return
    cpus = range(max(hists, default=-1) + 1)  # as BCC: every CPU up to the highest sampled
    if args.json:
        print_json({"cpus": [{"cpu": c, "runqocc": occupancy(hists.get(c, {}))} for c in cpus]})
        return
    for c in cpus:
        print("runqocc, CPU %-3d %6.2f%%" % (c, occupancy(hists.get(c, {}))))
    sys.stdout.flush()


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("runqlen", main))
