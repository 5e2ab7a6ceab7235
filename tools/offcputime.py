"""offcputime: Summarize off-CPU time by stack trace.

BCC's flags and output: the time each thread spends off a CPU (blocked, or preempted), from the
scheduler's switch hook (a BTF tracepoint, else a raw tracepoint), summed in microseconds per
thread and stack: the user and kernel stacks it left the CPU with, printed with the total, least
first. ``-f`` prints folded stacks (FlameGraph's format), ``--flamegraph FILE.svg`` draws them,
``-j`` prints one JSON object per stack.

Examples::

    bpfkit offcputime             # trace off-CPU stack time until Ctrl-C
    bpfkit offcputime 5           # trace for 5 seconds only
    bpfkit offcputime -f 5        # 5 seconds, and output in folded format
    bpfkit offcputime --flamegraph off.svg 5   # 5 seconds, drawn as a flame graph
    bpfkit offcputime -m 1000     # trace only events that last more than 1000 usec
    bpfkit offcputime -M 10000    # trace only events that last less than 10000 usec
    bpfkit offcputime -p 185      # only trace threads for PID 185
    bpfkit offcputime -t 188      # only trace thread 188
    bpfkit offcputime -u          # only trace user threads (no kernel)
    bpfkit offcputime -k          # only trace kernel threads (no user)
    bpfkit offcputime -U          # only show user space stacks (no kernel)
    bpfkit offcputime -K          # only show kernel space stacks (no user)
    bpfkit offcputime --state 2   # only count blocks in TASK_UNINTERRUPTIBLE
"""

from __future__ import annotations

import sys

try:
    from . import _stacks
    from ._kit import Tool, pid, seconds
except ImportError:  # run as a script from tools/
    import _stacks  # type: ignore[no-redef]
    from _kit import Tool, pid, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The context switch hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [["switch_btf", "switch_raw"]]
#: The stack map's entries without --stack-storage-size.
STORAGE_DEFAULT = 1024
U64_MAX = 2**64 - 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=pid, help="trace this PID only")
    who.add_argument("-t", "--tid", type=pid, help="trace this TID only")
    who.add_argument("-u", "--user-threads-only", action="store_true", help="user threads only (no kernel threads)")
    who.add_argument("-k", "--kernel-threads-only", action="store_true",
                     help="kernel threads only (no user threads)")
    _stacks.add_stack_args(p)
    _stacks.add_output_args(p, STORAGE_DEFAULT)
    p.add_argument("-m", "--min-block-time", type=_stacks.positive, default=1,
                   help="the amount of time in microseconds over which we store traces (default 1)")
    p.add_argument("-M", "--max-block-time", type=_stacks.positive, default=U64_MAX,
                   help="the amount of time in microseconds under which we store traces (default U64_MAX)")
    p.add_argument("--state", type=_stacks.state_mask, help="filter on this thread state bitmask (eg, 2 == "
                   "TASK_UNINTERRUPTIBLE) see include/linux/sched.h")
    p.add_argument("duration", nargs="?", type=seconds, help="duration of trace, in seconds")
    args = p.parse_args(argv)
    if args.kernel_threads_only and args.user_stacks_only:
        p.error("displaying user stacks for kernel threads doesn't make sense (-k with -U)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"targ_tgid": args.pid or 0, "targ_tid": args.tid or 0,
              "user_threads_only": args.user_threads_only, "kernel_threads_only": args.kernel_threads_only,
              "filter_state": args.state is not None, "state_mask": args.state or 0,
              "min_block_us": args.min_block_time, "max_block_us": min(args.max_block_time, U64_MAX),
              **_stacks.stack_consts(args)}
    who = (f"PID {args.pid}" if args.pid else f"TID {args.tid}" if args.tid else
           "user threads" if args.user_threads_only else "kernel threads" if args.kernel_threads_only else
           "all threads")
    stack = _stacks.stack_kinds(args)
    with TOOL.load(args, consts=consts, alternatives=LADDERS,
                   map_sizes=_stacks.map_sizes(args)) as b:
        if not args.folded and not args.json:
            print(f"Tracing off-CPU time (us) of {who} by {stack} stack{_stacks.duration_text(args.duration)}",
                  flush=True)
        report = _stacks.Report(args, _stacks.Symbols(), unit="us", title="Off-CPU Time Flame Graph", colors="io")
        # The text shows the thread, as BCC's; user frames are named in its process.
        _stacks.report_task_stacks(b, args, report, sym_pid=lambda k: k.tgid, trim=True,
                                   extra=lambda k: {"pid": k.tgid, "tid": k.pid})
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("offcputime", main))
