"""funccount: Count functions, tracepoints, and USDT probes.

BCC's flags and output (FUNC and COUNT, every interval or once at the end), for every probe
kind: kernel functions (kprobes, or fentry with ``f:``; on a kernel without kprobes a system
call's function is counted at its ``syscalls`` tracepoint), tracepoints, user functions
(uprobes) and USDT probes, with ``*`` wildcards or (``-r``) regular expressions. The BPF C is
generated for the probes matched (``-D`` prints it before starting, ``--ebpf`` instead of
starting); ``-j`` prints one JSON object per interval.

Examples::

    bpfkit funccount 'vfs_*'                      # count kernel fns starting with "vfs"
    bpfkit funccount -r '^vfs.*'                  # same as above, using regular expressions
    bpfkit funccount -Ti 5 'vfs_*'                # output every 5 seconds, with timestamps
    bpfkit funccount -d 10 'vfs_*'                # trace for 10 seconds only
    bpfkit funccount -p 185 'vfs_*'               # count vfs calls for PID 185 only
    bpfkit funccount t:sched:sched_fork           # count calls to the sched_fork tracepoint
    bpfkit funccount 't:syscalls:sys_enter_*open*'  # count the open syscalls' tracepoints
    bpfkit funccount -p 185 u:node:gc*            # count all GC USDT probes in node, PID 185
    bpfkit funccount c:malloc                     # count all malloc() calls in libc
    bpfkit funccount ./test:read*                 # count "read*" calls in the ./test binary
    bpfkit funccount -c 1 'vfs_*'                 # count vfs calls on CPU 1 only
    bpfkit funccount -D t:sched:sched_fork        # print the generated BPF C, then count
    bpfkit funccount -j -i 1 c:malloc             # a JSON object per second
    bpfkit funccount --prometheus 9100 'vfs_*'    # serve bpfkit_funccount_calls_total{function=...}
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, clear, cpu, exporter, interval_options, intervals, print_json, seconds
except ImportError:  # run as a script from tools/
    from _kit import Tool, clear, cpu, exporter, interval_options, intervals, print_json, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__, generated=True)




def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from ._probes import ProbeError, parse

    p = TOOL.parser("pid")
    p.add_argument("-i", "--interval", type=seconds, help="summary interval, seconds")
    TOOL.add_groups(p, "duration", "timestamp")
    p.add_argument("-r", "--regexp", action="store_true",
                   help='use regular expressions. Default is "*" wildcards only.')
    p.add_argument("-D", "--debug", action="store_true",
                   help="print BPF program before starting (for debugging purposes)")
    p.add_argument("-c", "--cpu", type=cpu, help="trace this CPU only")
    TOOL.add_groups(p, "json", "prometheus")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    p.add_argument("pattern", help="search expression for events")
    args = p.parse_args(argv)
    try:
        args.probe = parse(args.pattern, regex=args.regexp, pid=args.pid)
    except ProbeError as e:
        p.error(str(e))
    return interval_options(args)


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import before_load, counter
    from ._probes import resolve

    args = parse_args(argv)
    targets = resolve([args.probe])
    prog = counter(targets)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.debug):
        return 0
    consts = {"targ_cpu": -1 if args.cpu is None else args.cpu}
    with prog.load(TOOL, args, consts=consts) as b:
        if not args.json:
            print(f'Tracing {len(targets)} functions for "{args.pattern}"... Hit Ctrl-C to end.', flush=True)
        counts = b["counts"]
        for _ in intervals(args, gap=True):
            values = [v.value for v in counts.values()]
            clear(args, counts)
            if exporter(args) is not None:  # every function matched, from 0
                exporter(args).counter("calls_total", "Calls (events) of each function or probe matched",
                                       ("function",), {(t.name,): n for t, n in zip(targets, values)})
                continue
            rows = sorted(((targets[i].name, n) for i, n in enumerate(values) if n and i < len(targets)),
                          key=lambda r: r[1])
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "functions": [{"func": f, "count": n} for f, n in rows]})
                continue
            print("%-36s %8s" % ("FUNC", "COUNT"))
            for name, n in rows:
                print("%-36s %8d" % (name, n))
            sys.stdout.flush()
        if not args.json:
            print("Detaching...", flush=True)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("funccount", main))
