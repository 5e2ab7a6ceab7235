"""memleak: Trace outstanding memory allocations that weren't freed.

BCC's flags and report ("[HH:MM:SS] Top N stacks with outstanding allocations:", then bytes and
allocations per stack): in a process (``-p PID`` or ``-c COMMAND``) from uprobes on its
allocator's functions, else in the kernel from the kmem tracepoints. ``-j`` prints one JSON
object per interval.

Examples::

    bpfkit memleak -p 181            # outstanding allocations of PID 181, every 5 seconds
    bpfkit memleak -p 181 -t         # print each allocator call
    bpfkit memleak -ap 181 10        # also each allocation's address and size, every 10 s
    bpfkit memleak -c "./allocs"     # run the command and trace its allocations
    bpfkit memleak                   # kernel allocations
    bpfkit memleak -o 60000          # kernel allocations at least a minute old
    bpfkit memleak -s 5              # trace roughly every 5th allocation
    bpfkit memleak -p 181 -j 1 1     # one JSON object after a second
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, count, event_loop, intervals, invalid, pid, print_json
except ImportError:  # run as a script from tools/
    from _kit import Tool, count, event_loop, intervals, invalid, pid, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: (symbol, entry program, return program, may be missing) probed in the allocator's library.
ALLOCATORS = [("malloc", "malloc_enter", "alloc_return", False), ("calloc", "calloc_enter", "alloc_return", False),
              ("realloc", "realloc_enter", "alloc_return", False), ("mmap", "mmap_enter", "mmap_return", False),
              ("posix_memalign", "posix_memalign_enter", "posix_memalign_return", False),
              ("valloc", "valloc_enter", "alloc_return", True), ("memalign", "aligned_enter", "alloc_return", False),
              ("pvalloc", "pvalloc_enter", "alloc_return", True),
              ("aligned_alloc", "aligned_enter", "alloc_return", True)]
FREES = ["free", "munmap"]
#: (tracepoint, program) of kernel mode; the _node ones exist on kernels before 6.0 only.
KERNEL_TPS = [("kmem:kmalloc", "kmalloc_tp"), ("kmem:kmalloc_node", "kmalloc_tp"),
              ("kmem:kmem_cache_alloc", "kmem_cache_alloc_tp"), ("kmem:kmem_cache_alloc_node", "kmem_cache_alloc_tp"),
              ("kmem:kfree", "kfree_tp"), ("kmem:kmem_cache_free", "kmem_cache_free_tp"),
              ("kmem:mm_page_alloc", "page_alloc_tp"), ("kmem:mm_page_free", "page_free_tp")]
PERCPU_TPS = [("percpu:percpu_alloc_percpu", "percpu_alloc_tp"), ("percpu:percpu_free_percpu", "percpu_free_tp")]


def size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise invalid(f"{text!r} is not a size in bytes (an integer of at least 0)")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-p", "--pid", type=pid, help="the PID to trace; if not specified, trace kernel allocs")
    p.add_argument("-t", "--trace", action="store_true", help="print trace messages for each alloc/free call")
    TOOL.add_groups(p, "interval", help={"interval": "interval in seconds to print outstanding allocations"})
    p.set_defaults(interval=5)
    p.add_argument("-a", "--show-allocs", action="store_true",
                   help="show allocation addresses and sizes as well as call stacks")
    p.add_argument("-o", "--older", type=size, default=500,
                   help="prune allocations younger than this age in milliseconds")
    p.add_argument("-c", "--command", help="execute and trace the specified command")
    p.add_argument("--combined-only", action="store_true", help="show combined allocation statistics only")
    p.add_argument("--wa-missing-free", action="store_true",
                   help="Workaround to alleviate misjudgments when free is missing")
    p.add_argument("-s", "--sample-rate", type=count, default=1,
                   help="sample every N-th allocation to decrease the overhead")
    p.add_argument("-T", "--top", type=count, default=10, help="display only this many top allocating stacks (by size)")
    p.add_argument("-z", "--min-size", type=size, help="capture only allocations larger than this size")
    p.add_argument("-Z", "--max-size", type=size, help="capture only allocations smaller than this size")
    p.add_argument("-O", "--obj", default="c", help="attach to allocator functions in the specified object")
    p.add_argument("--percpu", action="store_true", help="trace percpu allocations")
    TOOL.add_groups(p, "json")
    args = p.parse_args(argv)
    if args.min_size is not None and args.max_size is not None and args.min_size > args.max_size:
        p.error("min_size (-z) can't be greater than max_size (-Z)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    child = None
    if args.command:
        import shlex
        import subprocess

        if not args.json:
            print("Executing '%s' and tracing the resulting process." % args.command, flush=True)
        child = subprocess.Popen(shlex.split(args.command))
        args.pid = child.pid
    kernel = args.pid is None
    consts = {"min_size": args.min_size or 0, "max_size": args.max_size if args.max_size is not None else 2**64 - 1,
              "sample_rate": args.sample_rate, "trace_all": args.trace, "wa_missing_free": args.wa_missing_free,
              "kernel_stacks": kernel, "targ_tgid": args.pid or 0}
    try:
        with TOOL.load(args, consts=consts) as b:
            _attach(b, args, kernel)
            if not args.json:
                print("Attaching to kernel allocators, Ctrl+C to quit." if kernel else
                      "Attaching to pid %d, Ctrl+C to quit." % args.pid, flush=True)
            if args.trace:
                event_loop(b, lambda e: print(("alloc exited, size = %d, result = %x" if e.kind == 0 else
                                               "free entered, address = %x, size = %d") %
                                              ((e.size, e.addr) if e.kind == 0 else (e.addr, e.size)), flush=True))
                return 0
            for _ in intervals(args):
                report(b, args, -1 if kernel else args.pid)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    return 0


def _attach(b: Any, args: argparse.Namespace, kernel: bool) -> None:
    if kernel:
        for tp, fn in KERNEL_TPS + (PERCPU_TPS if args.percpu else []):
            if b.tracepoint_exists(*tp.split(":")):
                b.attach_tracepoint(tp=tp, fn_name=fn)
        return
    from bpfkit import AttachError

    for sym, enter, ret, optional in ALLOCATORS:
        try:
            b.attach_uprobe(name=args.obj, sym=sym, fn_name=enter, pid=args.pid)
            b.attach_uretprobe(name=args.obj, sym=sym, fn_name=ret, pid=args.pid)
        except AttachError:
            if not optional:
                raise
    for sym in FREES:
        b.attach_uprobe(name=args.obj, sym=sym, fn_name="free_enter", pid=args.pid)


def _stack(b: Any, stacks: Any, stack_id: int, pid: int, with_addr: bool) -> list:
    try:
        addrs = list(stacks.walk(stack_id))
    except KeyError:
        return ["stack information lost"]
    return [("0x%016x\t" % a if with_addr else "") + b.sym(a, pid, show_module=True, show_offset=True)
            for a in addrs]


def _items(table: Any) -> list:
    """A map's entries by keys() and lookups: items() reads through numpy, whose import costs
    100 ms and 12 MiB (an entry freed between the two is left out)."""
    return [(k, v) for k in table.keys() if (v := table.get(k)) is not None]


def report(b: Any, args: argparse.Namespace, pid: int) -> None:
    """Prints the outstanding allocations by stack: BCC's report, or one JSON object."""
    stacks = b["stack_traces"]
    shown: list = []  # (size, count, stack)
    allocs: list = []
    if args.combined_only:
        for k, v in sorted(_items(b["combined_allocs"]), key=lambda kv: -kv[1].total_size)[:args.top]:
            if v.number_of_allocs:
                shown.append((v.total_size, v.number_of_allocs, _stack(b, stacks, k.value, pid, False)))
    else:
        now = time.monotonic_ns()
        min_age = args.older * 1_000_000
        by_stack: dict = {}
        for k, v in sorted(_items(b["allocs"]), key=lambda kv: kv[1].size):
            if now - min_age < v.ts_ns or v.stack_id < 0:
                continue
            s = by_stack.setdefault(v.stack_id, [0, 0])
            s[0] += v.size
            s[1] += 1
            if args.show_allocs:
                allocs.append((k.value, v.size))
        top = sorted(by_stack.items(), key=lambda kv: kv[1][0], reverse=True)[:args.top]
        shown = [(sz, n, _stack(b, stacks, sid, pid, True)) for sid, (sz, n) in top]
    now_s = time.strftime("%H:%M:%S")
    if args.json:
        print_json({"time": now_s, "stacks": [{"size": sz, "count": n, "stack": st} for sz, n, st in shown],
                    **({"allocs": [{"addr": a, "size": sz} for a, sz in allocs]} if args.show_allocs else {})})
        return
    out = ["[%s] Top %d stacks with outstanding allocations:" % (now_s, args.top)]
    out += ["\taddr = %x size = %s" % a for a in allocs]
    out += ["\t%d bytes in %d allocations from stack\n\t\t%s" % (sz, n, "\n\t\t".join(st))
            for sz, n, st in reversed(shown)]
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("memleak", main))
