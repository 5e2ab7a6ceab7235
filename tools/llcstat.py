"""llcstat: Summarize cache references and misses by PID.

BCC's flags and columns (PID, NAME, CPU, REFERENCE, MISS, HIT%), sampled from the CPU's
hardware cache counters; where the machine has no hardware PMU (most virtual machines) it
refuses in one line. ``-j`` prints one JSON object at the end.

Examples::

    bpfkit llcstat              # summarize cache references and misses for 10 seconds
    bpfkit llcstat 20           # for 20 seconds
    bpfkit llcstat -c 1000 5    # sample one in 1000 events, for 5 seconds
    bpfkit llcstat -t           # by thread as well as by process
    bpfkit llcstat -j 5         # one JSON object
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, count, print_json, seconds
except ImportError:  # run as a script from tools/
    from _kit import Tool, count, print_json, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: perf's hardware event numbers: PERF_COUNT_HW_CACHE_REFERENCES, PERF_COUNT_HW_CACHE_MISSES.
CACHE_REFERENCES, CACHE_MISSES = 2, 3


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-c", "--sample_period", type=count, default=100,
                   help="Sample one in this many number of cache reference / miss events")
    p.add_argument("duration", nargs="?", type=seconds, default=10, help="Duration, in seconds, to run")
    p.add_argument("-t", "--tid", action="store_true", help="Summarize cache references and misses by PID/TID")
    TOOL.add_groups(p, "json")
    return p.parse_args(argv)


def attach_counters(b: object, period: int) -> None:
    """Attaches the two programs to the hardware cache events on every CPU, or raises a
    NotSupportedError naming what is missing."""
    from bpfkit import NotSupportedError, PerfType

    try:
        for config, fn in ((CACHE_MISSES, "on_cache_miss"), (CACHE_REFERENCES, "on_cache_ref")):
            b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=config,  # type: ignore[attr-defined]
                                fn_name=fn, sample_period=period)
    except NotSupportedError as e:
        err = NotSupportedError("no hardware PMU: llcstat needs the CPU's cache-reference and cache-miss "
                                "counters (perf hardware events), which this machine does not provide "
                                "(a virtual machine often has none)", e.errno)
        err.feature = "hardware PMU (perf hardware cache events)"
        raise err from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with TOOL.load(args, consts={"per_tid": args.tid}) as b:
        attach_counters(b, args.sample_period)
        if not args.json:
            print(f"Running for {args.duration:g} seconds or hit Ctrl-C to end.", flush=True)
        try:
            time.sleep(args.duration)
        except KeyboardInterrupt:
            pass
        keyf = (lambda k: (k.pid, k.tid, k.cpu, k.name)) if args.tid else (lambda k: (k.pid, k.cpu, k.name))
        misses = {keyf(k): v.value for k, v in b["miss_count"].items()}
        rows = []
        for k, v in b["ref_count"].items():
            ref, miss = v.value, misses.get(keyf(k), 0)
            hit = ref - miss if ref >= miss else 0  # sampling can see more misses than references
            rows.append({"pid": k.pid, "tid": k.tid, "name": k.name.decode(errors="replace"), "cpu": k.cpu,
                         "reference": ref, "miss": miss, "hit_pct": 100.0 * hit / ref if ref else 0.0})
    tot_ref = sum(r["reference"] for r in rows)
    tot_miss = sum(r["miss"] for r in rows)
    rate = 100.0 * (tot_ref - tot_miss) / tot_ref if tot_ref else 0.0
    if args.json:
        if not args.tid:
            for r in rows:
                del r["tid"]
        print_json({"rows": rows, "total_references": tot_ref, "total_misses": tot_miss, "hit_rate": rate})
        return 0
    print("PID      " + ("TID      " if args.tid else "") + "NAME             CPU     REFERENCE         MISS    HIT%")
    for r in rows:
        tid = "%-8d " % r["tid"] if args.tid else ""
        print("%-8d %s%-16s %-4d %12d %12d %6.2f%%" % (r["pid"], tid, r["name"], r["cpu"], r["reference"],
                                                       r["miss"], r["hit_pct"]))
    print(f"Total References: {tot_ref} Total Misses: {tot_miss} Hit Rate: {rate:.2f}%")
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("llcstat", main))
