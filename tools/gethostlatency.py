"""gethostlatency: Show latency for getaddrinfo/gethostbyname[2] calls.

BCC's columns (TIME, PID, COMM, LATms, HOST) and flags (``-p``, libbpf-tools' ``-l LIBC``),
from uprobes and uretprobes on the C library's resolvers.

Examples::

    bpfkit gethostlatency              # time getaddrinfo/gethostbyname[2] calls
    bpfkit gethostlatency -p 181       # only trace PID 181
    bpfkit gethostlatency -l /usr/lib/x86_64-linux-gnu/libc.so.6   # this libc
    bpfkit gethostlatency -j           # one JSON object per lookup
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, Uprobes, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, Uprobes, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The resolvers timed: each takes the host name as its first argument.
RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname2")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("pid")
    p.add_argument("-l", "--libc", default="c", help="the C library to probe (a path; default: the system's)")
    TOOL.add_groups(p, "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME", "%-9s "), ("pid", "PID", "%-7d "), ("comm", "COMM", "%-16s "),
                    ("lat_ms", "LATms", "%10.2f "), ("host", "HOST", "%s")], json=args.json)
    uprobes = Uprobes()  # opened while the program loads
    for sym in RESOLVERS:
        uprobes.add("lookup_enter", name=args.libc, sym=sym, pid=args.pid or -1)
        uprobes.add("lookup_return", name=args.libc, sym=sym, pid=args.pid or -1, retprobe=True)
    with TOOL.load(args, uprobes=uprobes) as b:
        event_loop(b, lambda e: cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid,
                                         comm=e.comm.decode(errors="replace"), lat_ms=e.delta_ns / 1e6,
                                         host=e.host.decode(errors="replace")),
                   duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("gethostlatency", main))
