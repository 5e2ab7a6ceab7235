"""opensnoop: Trace open() syscalls.

BCC's flags and columns (PID, COMM, FD, ERR, PATH), from the syscall tracepoints.

Examples::

    bpfkit opensnoop              # trace all open() syscalls
    bpfkit opensnoop -T           # include timestamps
    bpfkit opensnoop -U           # include UID
    bpfkit opensnoop -x           # only show failed opens
    bpfkit opensnoop -p 181       # only trace PID 181
    bpfkit opensnoop -t 123       # only trace TID 123
    bpfkit opensnoop -u 1000      # only trace UID 1000
    bpfkit opensnoop -c /sys/fs/cgroup/system.slice   # only tasks in this cgroup
    bpfkit opensnoop --cgroupmap /sys/fs/bpf/cgset    # only trace cgroups in this BPF map
    bpfkit opensnoop --mntnsmap /sys/fs/bpf/mntset    # only trace mount namespaces in the map
    bpfkit opensnoop -d 10        # trace for 10 seconds only
    bpfkit opensnoop -n main      # only print process names containing "main"
    bpfkit opensnoop -e           # show extended fields (flags)
    bpfkit opensnoop -f O_WRONLY -f O_RDWR   # only print calls for writing
    bpfkit opensnoop -F           # show the full path of a relative one
    bpfkit opensnoop -b 256       # a buffer of 256 pages (ring buffer: 1 MiB; perf buffer: per CPU)
    bpfkit opensnoop -j           # one JSON object per open
"""

from __future__ import annotations

import os
import sys

try:
    from ._kit import Columns, Tool, event_loop, invalid
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop, invalid

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def open_flag(text: str) -> int:
    """An open(2) flag by name (``O_WRONLY``), as ``-f`` takes it: its value (O_RDONLY is 0)."""
    if text.startswith("O_") and isinstance(getattr(os, text, None), int):
        return getattr(os, text)
    raise invalid(f"{text!r} is not an open() flag such as O_WRONLY or O_CREAT")


def buffer_pages(text: str) -> int:
    """A buffer size in pages, as ``-b`` takes it: a power of two (BCC's rule for its perf buffer)."""
    n = int(text, 10) if text.isascii() and text.isdigit() else 0
    if n < 1 or n & (n - 1):
        raise invalid(f"{text!r} is not a power of two number of pages")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp", "print_uid", "failed", "pid", "tid", "cgroupmap", "mntnsmap", "cgroup", "uid",
                    "duration", "json",
                    help={"failed": "only show failed opens"})
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-e", "--extended_fields", action="store_true", help="show extended fields")
    p.add_argument("-f", "--flag_filter", action="append", type=open_flag, metavar="FLAG",
                   help="filter on flags argument (e.g., O_WRONLY); may be given more than once")
    p.add_argument("-F", "--full-path", action="store_true",
                   help="show full path for an open file with relative path")
    p.add_argument("-b", "--buffer-pages", type=buffer_pages,
                   help="size of the event buffer, a power of two number of pages (the ring buffer: 256 by "
                        "default, 1 MiB; or the perf buffer on kernels before 5.8: 64 per CPU by default)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    flags = args.flag_filter or []
    consts = {"only_failed": args.failed, "flag_mask": sum(set(flags)), "flag_rdonly": os.O_RDONLY in flags}
    # -F is compiled in rather than a const: see walk_cwd() in the C for why.
    with TOOL.load(args, consts=consts, cflags=["-DFULL_PATH"] if args.full_path else [],
                   buffer_pages=args.buffer_pages) as b:
        from bpfkit import BPF

        # open(2) and openat2(2) are not on every architecture and kernel: attach where present.
        for name, enter in (("open", "enter_open"), ("openat2", "enter_openat2")):
            if BPF.tracepoint_exists("syscalls", f"sys_enter_{name}"):
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{name}", fn_name=enter)
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{name}", fn_name="exit_open")
        cols = Columns([("time", "TIME(s)", "%-14.9f", args.timestamp),
                        ("uid", "UID", "%-6d", args.print_uid),
                        ("tid" if args.tid else "pid", "TID" if args.tid else "PID", "%-6d "),
                        ("comm", "COMM", "%-16s "), ("fd", "FD", "%4d "), ("err", "ERR", "%3d "),
                        ("flags", "FLAGS", "%08o ", args.extended_fields), ("path", "PATH", "%s")],
                       json=args.json)
        event_loop(b, _printer(args, cols), duration=args.duration, ready=cols.header,
                   page_cnt=args.buffer_pages or 64)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Callable[[Any], None]:
    """The event callback: filters on -n, splits the return value into FD and ERR, and prints."""
    start_ns: list = []
    name = os.fsencode(args.name) if args.name else None

    def on_event(e: Any) -> None:  # struct open_event, typed from the program's BTF
        if name and name not in e.comm:
            return
        if not start_ns:
            start_ns.append(e.ts_ns)
        ret = e.ret
        path = e.path
        if args.full_path and e.cwd_depth and not path.startswith(b"/"):
            path = _cwd(e) + b"/" + path
        cols.row(time=(e.ts_ns - start_ns[0]) / 1e9, uid=e.uid, pid=e.pid, tid=e.tid,
                 comm=e.comm.decode(errors="replace"), fd=ret if ret >= 0 else -1,
                 err=0 if ret >= 0 else -ret, flags=e.flags,
                 path=path.decode(errors="replace"))

    return on_event


def _cwd(e: Any) -> bytes:
    """The working directory the program walked (its names innermost first), with ``...`` in
    front when the walk stopped before the root."""
    names = [bytes(e.cwd[i]).split(b"\0", 1)[0] for i in range(e.cwd_depth)]
    return (b"..." if e.cwd_cut else b"") + b"".join(b"/" + n for n in reversed(names))


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("opensnoop", main))
