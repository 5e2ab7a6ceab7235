"""stackcount: Count events and their stack traces.

BCC's flags and output: every stack, user and kernel (``-U``/``-K``: one of them only), seen at
the functions, tracepoints or USDT probes a pattern matches, with how many times it was seen,
least first; every interval (``-i``) or once at the end (``-D`` seconds, or Ctrl-C). Kernel
functions (kprobes, or fentry with ``f:``; on a kernel without kprobes a system call's function
at its ``syscalls`` tracepoint), tracepoints, user functions (uprobes), USDT probes, with ``*``
wildcards or (``-r``) regular expressions. ``-P`` keeps each process's stacks apart (``-p``
does too); stacks are otherwise summed across processes by their frames' names. ``-f`` prints
folded stacks (FlameGraph's format), ``--flamegraph FILE.svg`` draws them, ``-j`` prints one JSON
object per stack. User frames of a process that exits during the run are still named. The BPF
C is generated (``--debug`` prints it before starting, ``--ebpf`` instead of starting).

Examples::

    bpfkit stackcount submit_bio         # count kernel stack traces for submit_bio
    bpfkit stackcount -d ip_output       # include a user/kernel stack delimiter
    bpfkit stackcount -s ip_output       # show symbol offsets
    bpfkit stackcount -sv ip_output      # show offsets and raw addresses (verbose)
    bpfkit stackcount 'tcp_send*'        # count stacks for funcs matching tcp_send*
    bpfkit stackcount -r '^tcp_send.*'   # same as above, using regular expressions
    bpfkit stackcount -Ti 5 ip_output    # output every 5 seconds, with timestamps
    bpfkit stackcount -p 185 ip_output   # count ip_output stacks for PID 185 only
    bpfkit stackcount -c 1 put_prev_entity   # count put_prev_entity stacks for CPU 1 only
    bpfkit stackcount -p 185 c:malloc    # count stacks for malloc in PID 185
    bpfkit stackcount t:sched:sched_fork # count stacks for sched_fork tracepoint
    bpfkit stackcount -p 185 u:node:*    # count stacks for all USDT probes in node
    bpfkit stackcount -K t:sched:sched_switch   # kernel stacks only
    bpfkit stackcount -U t:sched:sched_switch   # user stacks only
    bpfkit stackcount -f -D 10 -p 185 c:malloc > malloc.folded   # folded, for flame graphs
    bpfkit stackcount --flamegraph malloc.svg -D 10 -p 185 c:malloc   # drawn as a flame graph
"""

from __future__ import annotations

import sys
import time

try:
    from . import _stacks
    from ._kit import MAX_SECONDS, Tool, cpu, pid, seconds
except ImportError:  # run as a script from tools/
    import _stacks  # type: ignore[no-redef]
    from _kit import MAX_SECONDS, Tool, cpu, pid, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__, generated=True)
#: Entries of the stack map (BCC's stackcount keeps 1024).
STORAGE = 1024




def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from ._probes import ProbeError, parse

    p = TOOL.parser()
    p.add_argument("-p", "--pid", type=pid, help="trace this PID only")
    TOOL.groups.append("pid")  # the kit sets its filter
    p.add_argument("-c", "--cpu", type=cpu, help="trace this CPU only")
    p.add_argument("-i", "--interval", type=seconds, help="summary interval, seconds")
    p.add_argument("-D", "--duration", type=seconds, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-r", "--regexp", action="store_true",
                   help='use regular expressions. Default is "*" wildcards only.')
    p.add_argument("-s", "--offset", action="store_true", help="show address offsets")
    p.add_argument("-P", "--perpid", action="store_true", help="display stacks separately for each process")
    _stacks.add_stack_args(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show raw addresses")
    p.add_argument("-f", "--folded", action="store_true", help="output folded format")
    p.add_argument("--flamegraph", metavar="FILE.svg", type=_stacks.flamegraph_path,
                   help="also write the stacks as an SVG flame graph to this file (the last interval's)")
    p.add_argument("-j", "--json", action="store_true", help="print one JSON object per stack")
    p.add_argument("--debug", action="store_true", help="print BPF program before starting (for debugging purposes)")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    p.add_argument("pattern", help="search expression for events")
    args = p.parse_args(argv)
    try:
        args.probe = parse(args.pattern, regex=args.regexp, pid=args.pid)
    except ProbeError as e:
        p.error(str(e))
    if args.duration and not args.interval:
        args.interval = args.duration
    args.interval = args.interval or MAX_SECONDS
    args.per_pid = args.perpid or args.pid is not None  # as BCC: -p keeps the process apart
    args.user = not args.kernel_stacks_only
    args.kernel = not args.user_stacks_only
    # BCC's delimiter goes between the two stacks, so only when both are shown.
    args.delimit = args.delimited and args.user and args.kernel
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import before_load, stack_counter
    from ._probes import resolve

    args = parse_args(argv)
    targets = resolve([args.probe])
    prog = stack_counter(targets, storage=STORAGE)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.debug):
        return 0
    consts = {"targ_cpu": -1 if args.cpu is None else args.cpu, "user_stacks": args.user,
              "kernel_stacks": args.kernel}
    quiet = args.folded or args.json
    with prog.load(TOOL, args, consts=consts) as b:
        if not quiet:
            print(f'Tracing {len(targets)} functions for "{args.pattern}"... Hit Ctrl-C to end.', flush=True)
        counts, stack_map, pids = b["counts"], b["stacks"], b["stack_pids"]
        symbols = _stacks.Symbols()
        watch = (lambda: symbols.watch_map(pids)) if args.user else None
        started = time.monotonic()
        while True:
            left = None if args.duration is None else args.duration - (time.monotonic() - started)
            wait = args.interval if left is None else max(0.0, min(args.interval, left))
            interrupted = _stacks.collect(wait, watch, final=False)
            done = interrupted or (args.duration is not None and time.monotonic() - started >= args.duration - 0.05)
            if not quiet:
                print()
            if args.timestamp and not args.json:
                print("%-8s" % time.strftime("%H:%M:%S"))
            report = _stacks.Report(args, symbols, unit="samples", title="Stack Count Flame Graph", colors="hot")
            _gather(report, symbols, counts, stack_map, args)
            counts.clear()
            printer = Printer(args)
            report.print(folded_frames=printer.folded, text=printer.text, to_json=printer.json)
            if done:
                break
        if not quiet:
            print("Detaching...", flush=True)
    return 0


def _gather(report: _stacks.Report, symbols: _stacks.Symbols, counts: Any, stack_map: Any, args: Any) -> None:
    """The interval's stacks into ``report``: one per process (``args.per_pid``), else summed
    across processes by their frames' names (a binary's user frames are at other addresses in
    each process)."""
    merged: dict = {}
    for k, v in counts.items():
        n = int(v.value)
        tgid = int(k.tgid)
        comm = k.name.decode(errors="replace") if isinstance(k.name, bytes) else str(k.name)
        missed = tuple(side for asked, sid, side in ((args.kernel, k.kernel_stack_id, "kernel"),
                                                      (args.user, k.user_stack_id, "user"))
                       if asked and report.missed(sid))
        kaddrs = _walk(stack_map, k.kernel_stack_id) if args.kernel else []
        uaddrs = _walk(stack_map, k.user_stack_id) if args.user else []
        kframes = [symbols.kernel(a) for a in kaddrs] if args.kernel else None
        uframes = [symbols.user(a, tgid) for a in uaddrs] if args.user else None
        key = (tgid, k.user_stack_id, k.kernel_stack_id, comm) if args.per_pid else \
            (tuple(uframes or ()), tuple(kframes or ()), missed)
        s = merged.get(key)
        if s is None:
            merged[key] = _stacks.Stack(n, comm, tgid, uframes, kframes, missed,
                                        extra={"kaddrs": kaddrs, "uaddrs": uaddrs})
        else:
            s.count += n
    for s in merged.values():
        if not s.kernel and not s.user and not s.missed:
            report.no_frames(s.count)
        report.stacks.append(s)


def _walk(stack_map: Any, stack_id: int) -> list:
    if stack_id < 0:
        return []
    try:
        return list(stack_map.walk(stack_id))
    except KeyError:
        return []


class Printer:
    """BCC's stackcount formats of a :class:`_stacks.Stack`: text (each frame on a line, kernel
    first, ``-s`` offsets, ``-v`` addresses, the process with ``-P``, the count), folded, JSON."""

    def __init__(self, args: Any) -> None:
        self.args = args
        from bpfkit import BPF

        self.bpf = BPF

    def folded(self, s: _stacks.Stack) -> tuple:
        line = [s.comm] if self.args.per_pid else []
        if s.user is not None:
            line += ["[Missed User Stack]"] if "user" in s.missed else s.user[::-1]
        if self.args.delimit:
            line.append("-")
        if s.kernel is not None:
            line += ["[Missed Kernel Stack]"] if "kernel" in s.missed else s.kernel[::-1]
        return tuple(line)

    def _frame(self, addr: int, name: str, pid: int | None) -> str:
        if self.args.offset:
            name = self.bpf.ksym(addr, show_offset=True) if pid is None else \
                self.bpf.sym(addr, pid, show_offset=True)
        return "  " + ("%-16x " % addr if self.args.verbose else "") + name

    def text(self, s: _stacks.Stack) -> str:
        lines = []
        if s.kernel is not None:
            lines += ["  [Missed Kernel Stack]"] if "kernel" in s.missed else \
                [self._frame(a, n, None) for a, n in zip(s.extra["kaddrs"], s.kernel)]
        if self.args.delimit:
            lines.append("    --")
        if s.user is not None:
            lines += ["  [Missed User Stack]"] if "user" in s.missed else \
                [self._frame(a, n, s.pid) for a, n in zip(s.extra["uaddrs"], s.user)]
        if self.args.per_pid and self.args.pid is None:
            lines.append("    %s [%d]" % (s.comm, s.pid))
        lines.append("    %d" % s.count)
        return "\n".join(lines) + "\n"

    def json(self, s: _stacks.Stack) -> dict:
        return _stacks.stack_json(s, {"comm": s.comm, "pid": s.pid} if self.args.per_pid else {})


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("stackcount", main))
