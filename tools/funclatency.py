"""funclatency: Time functions and print latency as a histogram.

BCC's flags and output: the time from each call's entry to its return, of kernel functions
(kprobes, or fentry with ``f:``), user functions (``c:read``, ``/path:fn``, ``u:lib:fn``) or, on
a kernel without kprobes, system calls (``sys_read``: from its ``sys_enter`` to its ``sys_exit``
tracepoint), as a log2 histogram; then the average, total and count. Nested or recursive calls
of one thread are timed innermost only, as in BCC. The BPF C is generated for the functions
matched (``-v`` prints it before starting, ``--ebpf`` instead of starting); ``-j`` prints one
JSON object per interval.

Examples::

    bpfkit funclatency do_sys_openat2     # time the do_sys_openat2() kernel function
    bpfkit funclatency c:read             # time the read() C library function
    bpfkit funclatency -u vfs_read        # time vfs_read(), in microseconds
    bpfkit funclatency -m do_nanosleep    # time do_nanosleep(), in milliseconds
    bpfkit funclatency -i 2 -d 10 c:open  # output every 2 seconds, for duration 10s
    bpfkit funclatency -mTi 5 vfs_read    # output every 5 seconds, with timestamps
    bpfkit funclatency -p 181 vfs_read    # time process 181 only
    bpfkit funclatency 'vfs_fstat*'       # time both vfs_fstat() and vfs_fstatat()
    bpfkit funclatency 'c:*printf'        # time the *printf family of functions
    bpfkit funclatency -F 'vfs_r*'        # show one histogram per matched function
    bpfkit funclatency -m sys_nanosleep   # a syscall: its tracepoints where there are no kprobes
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, clear, interval_options, intervals, print_hists, read_hists, seconds
except ImportError:  # run as a script from tools/
    from _kit import Tool, clear, interval_options, intervals, print_hists, read_hists, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__, generated=True)
#: ns per unit, by the histogram's label.
UNITS = {"nsecs": 1, "usecs": 1000, "msecs": 1000000}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from ._probes import ENTRY_KINDS, ProbeError, parse

    p = TOOL.parser("pid")
    p.add_argument("-i", "--interval", type=seconds, help="summary interval, in seconds")
    TOOL.add_groups(p, "duration", "timestamp")
    p.add_argument("-u", "--microseconds", action="store_true", help="microsecond histogram")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-F", "--function", action="store_true", help="show a separate histogram per function")
    p.add_argument("-r", "--regexp", action="store_true",
                   help='use regular expressions. Default is "*" wildcards only.')
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program (for debugging purposes)")
    TOOL.add_groups(p, "json", "prometheus")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    p.add_argument("pattern", help="search expression for functions")
    args = p.parse_args(argv)
    try:
        args.probe = parse(args.pattern, regex=args.regexp, pid=args.pid, kinds=ENTRY_KINDS)
    except ProbeError as e:
        p.error(str(e))
    args.label = "msecs" if args.milliseconds else "usecs" if args.microseconds else "nsecs"  # -m wins, as BCC
    return interval_options(args)


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import before_load, latency
    from ._probes import resolve

    args = parse_args(argv)
    targets = resolve([args.probe])
    prog = latency(targets)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.verbose):
        return 0
    user = not args.probe.is_kernel
    # As BCC: a histogram per function with -F; for user functions, per function and process
    # unless -p (BCC keys them by address and process).
    sectioned = args.function or (user and not args.pid)
    consts = {"unit": UNITS[args.label], "per_function": sectioned, "per_pid": user and sectioned}

    def section_name(key: tuple) -> str:
        index, pid = key
        return f"{targets[index].name} [{pid}]" if user else targets[index].name

    with prog.load(TOOL, args, consts=consts) as b:
        if not args.json:
            print(f'Tracing {len(targets)} functions for "{args.pattern}"... Hit Ctrl-C to end.', flush=True)
        dist, totals = b["dist"], b["totals"]
        for _ in intervals(args, gap=True):
            hists = read_hists(args, dist, (lambda k: (k.index, k.pid)) if sectioned else None)
            total = totals[0]
            ns, calls = total.ns, total.count
            clear(args, totals)
            scale = UNITS[args.label]
            summary = {"avg": int(ns / scale / calls) if calls else 0, "total": int(ns / scale), "count": calls}
            print_hists(hists, args, args.label, section_header="Function", sectioned=sectioned,
                        section_print_fn=section_name, extra=summary, total=ns / scale)
            if not args.json and calls:
                print(f"\navg = {summary['avg']} {args.label}, total: {summary['total']} {args.label}, "
                      f"count: {calls}\n", flush=True)
        if not args.json:
            print("Detaching...", flush=True)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("funclatency", main))
