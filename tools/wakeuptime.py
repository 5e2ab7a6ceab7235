"""wakeuptime: Summarize sleep to wakeup time by waker kernel stack.

BCC's flags and output: the time each thread spends blocked, from its leaving a CPU (the
scheduler's switch hook) to its wakeup (the waker's ``sched_waking``, in the waker's context),
summed in microseconds per waker kernel stack, waker name and target name; least first. ``-f``
prints folded stacks (``waker;frames;target``, as BCC), ``--flamegraph FILE.svg`` draws them,
``-j`` prints one JSON object per stack. Each hook is a BTF tracepoint, else a raw tracepoint.

Examples::

    bpfkit wakeuptime             # trace blocked time with waker stacks
    bpfkit wakeuptime 5           # trace for 5 seconds only
    bpfkit wakeuptime -f 5        # 5 seconds, and output in folded format
    bpfkit wakeuptime --flamegraph wakeup.svg 5   # 5 seconds, drawn as a flame graph
    bpfkit wakeuptime -u          # don't include kernel threads (user only)
    bpfkit wakeuptime -p 185      # trace for PID 185 only
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
#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = [["waking_btf", "waking_raw"], ["switch_btf", "switch_raw"]]
#: The stack map's entries without --stack-storage-size.
STORAGE_DEFAULT = 1024
U64_MAX = 2**64 - 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-u", "--useronly", action="store_true", help="user threads only (no kernel threads)")
    p.add_argument("-p", "--pid", type=pid, help="trace this PID only")
    p.add_argument("-v", "--verbose", action="store_true", help="show raw addresses (as BCC's, always shown)")
    _stacks.add_output_args(p, STORAGE_DEFAULT)
    p.add_argument("-m", "--min-block-time", type=_stacks.positive, default=1,
                   help="the amount of time in microseconds over which we store traces (default 1)")
    p.add_argument("-M", "--max-block-time", type=_stacks.positive, default=U64_MAX,
                   help="the amount of time in microseconds under which we store traces (default U64_MAX)")
    p.add_argument("duration", nargs="?", type=seconds, help="duration of trace, in seconds")
    return p.parse_args(argv)


class Waker:
    """One stack of the report: the waker's kernel frames (innermost first, with addresses)."""

    __slots__ = ("count", "waker", "target", "frames", "missed")

    def __init__(self, count: int, waker: str, target: str, frames: list, missed: bool) -> None:
        self.count = count
        self.waker = waker
        self.target = target
        self.frames = frames  # [(address, name)], innermost first
        self.missed = missed


def folded_frames(w: Waker) -> tuple:
    """BCC's folded wakeup stack: the waker, its frames from the innermost, the target; read
    upwards in a flame graph: the target, then the waker's path down to its call into the kernel."""
    middle = ["[Missed Kernel Stack]"] if w.missed else [name for _, name in w.frames]
    return (w.waker, *middle, w.target)


def text(w: Waker) -> str:
    lines = ["    %-16s %s\n" % ("target:", w.target)]
    if w.missed:
        lines.append("    [Missed Kernel Stack]\n")
    lines += ["    %-16x %s\n" % (addr, name) for addr, name in reversed(w.frames)]
    lines.append("    %-16s %s\n        %d\n" % ("waker:", w.waker, w.count))
    return "".join(lines)


def to_json(w: Waker) -> dict:
    return {"target": w.target, "waker": w.waker,
            "waker_stack": ["[Missed Kernel Stack]"] if w.missed else [name for _, name in w.frames],
            "count": w.count}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.delimited = False
    consts = {"targ_tgid": args.pid or 0, "user_threads_only": args.useronly,
              "min_block_us": args.min_block_time, "max_block_us": min(args.max_block_time, U64_MAX)}
    with TOOL.load(args, consts=consts, alternatives=LADDERS,
                   map_sizes=_stacks.map_sizes(args)) as b:
        if not args.folded and not args.json:
            print(f"Tracing blocked time (us) by kernel stack{_stacks.duration_text(args.duration)}", flush=True)
        _stacks.collect(args.duration)
        if not args.folded and not args.json:
            print()
        symbols = _stacks.Symbols()
        report = _stacks.Report(args, symbols, unit="us", title="Wakeup Time Flame Graph", colors="wakeup")
        stack_map = b["stacks"]
        for k, v in b["counts"].items():
            sid = k.w_k_stack_id
            missed = report.missed(sid)
            addrs = [] if sid < 0 else _walk(stack_map, sid)
            names = _stacks.trim_tracing([symbols.kernel(a) for a in addrs])
            frames = list(zip(addrs[len(addrs) - len(names):], names))
            if not frames and not missed:
                report.no_frames(v.value)
            report.stacks.append(Waker(v.value, k.waker.decode(errors="replace"), k.target.decode(errors="replace"),
                                       frames, missed))
        report.print(folded_frames, text, to_json)
    return 0


def _walk(stack_map: object, sid: int) -> list:
    try:
        return list(stack_map.walk(sid))  # type: ignore[attr-defined]
    except KeyError:
        return []


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("wakeuptime", main))
