"""cpudist: Summarize on- and off-CPU time per task as a histogram.

BCC's flags and output: the time a task runs each time it is scheduled (or with ``-O`` the time
it waits off the CPU), from the scheduler's BTF tracepoint (a raw tracepoint where the kernel has
no BTF tracepoints); ``-j`` prints one JSON object per interval.

Examples::

    bpfkit cpudist              # summarize on-CPU time as a histogram
    bpfkit cpudist -O           # summarize off-CPU time as a histogram
    bpfkit cpudist 1 10         # print 1 second summaries, 10 times
    bpfkit cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
    bpfkit cpudist -P           # show each PID separately
    bpfkit cpudist -p 185       # trace PID 185 only
    bpfkit cpudist -I           # include CPU idle time
    bpfkit cpudist -e           # show extension summary (average/total/count)
    bpfkit cpudist -j 1 5       # a JSON object per second, 5 times
    bpfkit cpudist -O --prometheus 9100   # serve bpfkit_cpudist_offcpu_seconds
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, intervals, print_extension, print_hists, read_extension, read_hists
except ImportError:  # run as a script from tools/
    from _kit import Tool, intervals, print_extension, print_hists, read_extension, read_hists  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The context switch hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [["switch_btf", "switch_raw"]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
    TOOL.add_groups(p, "timestamp")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    sections = p.add_mutually_exclusive_group()
    sections.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    sections.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    TOOL.add_groups(p, "pid")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle time")
    p.add_argument("-e", "--extension", action="store_true", help="show extension summary (average/total/count)")
    TOOL.add_groups(p, "json", "interval", "prometheus")
    return p.parse_args(argv)


def pid_to_comm(pid: int) -> str:
    """``"<pid> <comm>"`` while the task lives, else the pid alone (as BCC labels a section)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"{pid} {f.read().strip()}"
    except OSError:
        return str(pid)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"offcpu": args.offcpu, "millis": args.milliseconds, "per_pid": args.pids, "per_tid": args.tids,
              "include_idle": args.include_idle}
    section = "pid" if args.pids else "tid" if args.tids else None
    label = "msecs" if args.milliseconds else "usecs"
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        if not args.json:
            print(f"Tracing {'off' if args.offcpu else 'on'}-CPU time... Hit Ctrl-C to end.", flush=True)
        dist, extension = b["dist"], b["extension"]
        for _ in intervals(args, gap=True):
            hists = read_hists(args, dist, (lambda k: k.id) if section else None)
            total, summary = read_extension(args, extension)
            print_hists(hists, args, label, section_header=section or "", sectioned=section is not None,
                        section_print_fn=pid_to_comm if section and not args.json and not args.prometheus else None,
                        extra={"extension": summary} if summary else None, total=total,
                        metric="offcpu_seconds" if args.offcpu else "oncpu_seconds")
            print_extension(args, summary, label)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("cpudist", main))
