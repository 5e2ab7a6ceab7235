"""funcslower: Trace slow kernel or user function calls.

BCC's flags and output (COMM, PID, LAT, RVAL, FUNC and with ``-a`` ARGS): each call of the
functions given that took at least the threshold (1 ms unless ``-m``/``-u`` say otherwise),
from its entry to its return: kernel functions (kprobes, or fentry with ``f:``; on a kernel
without kprobes, system calls at their tracepoints), user functions (``c:open``, ``/path:fn``),
with ``*`` wildcards. ``-U``/``-K`` print the call's user and kernel stacks (``-f``: folded, one
line a call). Nested calls of one thread are timed innermost only, as in BCC. The BPF C is
generated (``-v`` prints it before starting, ``--ebpf`` instead of starting); ``-j`` prints one
JSON object per call.

Examples::

    bpfkit funcslower vfs_write          # trace vfs_write calls slower than 1ms
    bpfkit funcslower -m 10 vfs_write    # same, but slower than 10ms
    bpfkit funcslower -u 10 c:open       # trace open calls slower than 10us
    bpfkit funcslower -p 135 c:open      # trace pid 135 only
    bpfkit funcslower c:malloc c:free    # trace both malloc and free slower than 1ms
    bpfkit funcslower -a 2 c:open        # show first two arguments to open
    bpfkit funcslower -UK -m 10 c:open   # show user and kernel stack frame of open calls slower than 10ms
    bpfkit funcslower -f -UK c:open      # output in folded format for flame graphs
    bpfkit funcslower -m 5 sys_nanosleep # a syscall: its tracepoints where there are no kprobes
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, event_loop, invalid, pid
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop, invalid, pid  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__, generated=True)


def threshold(text: str) -> float:
    """A minimum duration: a number of at least 0."""
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v >= 0 or v == float("inf"):
        raise invalid(f"{text!r} is not a duration, a number of at least 0")
    return v


def arguments(text: str) -> int:
    """How many arguments to print: 0 to 6."""
    if not text.isdigit() or not 0 <= int(text) <= 6:
        raise invalid(f"{text!r} is not a number of arguments from 0 to 6")
    return int(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from ._probes import ENTRY_KINDS, ProbeError, parse

    p = TOOL.parser()
    p.add_argument("-p", "--pid", type=pid, metavar="PID", help="trace this PID only")
    TOOL.groups.append("pid")  # the kit sets its filter
    p.add_argument("-m", "--min-ms", type=threshold, dest="min_ms", help="minimum duration to trace (ms)")
    p.add_argument("-u", "--min-us", type=threshold, dest="min_us", help="minimum duration to trace (us)")
    p.add_argument("-a", "--arguments", type=arguments, default=0, help="print this many entry arguments, as hex")
    p.add_argument("-T", "--time", action="store_true", help="show HH:MM:SS timestamp")
    p.add_argument("-t", "--timestamp", action="store_true", help="show timestamp in seconds at us resolution")
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program for debugging purposes")
    p.add_argument("-f", "--folded", action="store_true",
                   help="output folded format, one line per stack (for flame graphs)")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    TOOL.add_groups(p, "duration", "json")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    p.add_argument("functions", metavar="function", nargs="+", help="function(s) to trace")
    args = p.parse_args(argv)
    try:
        args.probes = [parse(f, pid=args.pid, kinds=ENTRY_KINDS) for f in args.functions]
    except ProbeError as e:
        p.error(str(e))
    # BCC: -m wins over -u; fractions are rounded to an integer nanosecond; 1 ms by default.
    if args.min_ms:
        args.min_ns, args.unit, args.shown = int(args.min_ms * 1000000), "ms", args.min_ms
    elif args.min_us:
        args.min_ns, args.unit, args.shown = int(args.min_us * 1000), "us", args.min_us
    else:
        args.min_ns, args.unit, args.shown = 1000000, "ms", 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import before_load, slow_calls
    from ._probes import resolve

    args = parse_args(argv)
    targets = resolve(args.probes)
    prog = slow_calls(targets)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.verbose):
        return 0
    consts = {"min_ns": args.min_ns, "user_stacks": args.user_stack, "kernel_stacks": args.kernel_stack}
    per_unit = 1000 if args.unit == "us" else 1000000
    stacks = args.user_stack or args.kernel_stack
    cols = Columns([("time", "TIME", "%-10s ", args.time), ("ts", "TIME", "%-10.6f ", args.timestamp and not args.time),
                    ("comm", "COMM", "%-14.14s "), ("pid", "PID", "%-6s "), ("lat", f"LAT({args.unit})", "%7.2f "),
                    ("rval", "RVAL", "%16x "), ("func", "FUNC", "%s"), ("args", "ARGS", " %s", bool(args.arguments))],
                   json=args.json)
    first = [0]

    def on_event(e: Any) -> None:
        if not first[0]:
            first[0] = e.start_ns
        comm = e.comm.decode(errors="replace")
        values = [int(a) for a in e.args[:args.arguments]] if args.arguments else []
        if args.json:
            cols.row(time=time.strftime("%H:%M:%S"), ts=(e.start_ns - first[0]) / 1e9, comm=comm, pid=e.tgid_pid >> 32,
                     lat=e.duration_ns / per_unit, rval=e.retval, func=targets[e.index].label, args=values)
        elif not args.folded:
            cols.row(time=time.strftime("%H:%M:%S"), ts=(e.start_ns - first[0]) / 1e9, comm=comm,
                     pid=e.tgid_pid >> 32, lat=e.duration_ns / per_unit, rval=e.retval,
                     func=targets[e.index].label, args=" ".join("0x%x" % a for a in values))
        if stacks and not args.json:
            print_stacks(b, e, comm, folded=args.folded, user=args.user_stack, kernel=args.kernel_stack)

    with prog.load(TOOL, args, consts=consts) as b:
        b["events"].set_record("event")

        def ready() -> None:
            if not args.folded and not args.json:
                print(f"Tracing function calls slower than {args.shown:g} {args.unit}... Ctrl+C to quit.")
                cols.header()

        event_loop(b, on_event, duration=args.duration, ready=ready)
    return 0


def print_stacks(b: Any, e: Any, comm: str, *, folded: bool, user: bool, kernel: bool) -> None:
    """The call's stacks at its entry: each frame on a line (kernel first, innermost first), or
    with ``folded`` one line, ``comm;user frames;-;kernel frames 1``, outermost first."""
    table = b["stacks"]
    tgid = e.tgid_pid >> 32
    ustack = list(table.walk(e.user_stack)) if user and e.user_stack >= 0 else []
    kstack = list(table.walk(e.kernel_stack)) if kernel and e.kernel_stack >= 0 else []
    if folded:
        frames = [comm] + [b.sym(a, tgid) for a in reversed(ustack)] + (["-"] if ustack and kstack else []) + \
            [b.ksym(a) for a in reversed(kstack)]
        print(";".join(frames) + " 1")
    else:
        for a in kstack:
            print(f"    {b.ksym(a)}")
        for a in ustack:
            print(f"    {b.sym(a, tgid)}")
    sys.stdout.flush()


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("funcslower", main))
