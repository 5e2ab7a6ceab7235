"""tcpstates: Trace TCP session state changes and durations.

BCC's flags and columns (SKADDR, C-PID, C-COMM, LADDR, LPORT, RADDR, RPORT, OLDSTATE -> NEWSTATE,
MS: the milliseconds spent in the old state), from the sock:inet_sock_set_state tracepoint.
C-PID and C-COMM are the task on the CPU at the change, which is not always the socket's owner
(a change in a softirq shows whatever ran there).

Examples::

    bpfkit tcpstates           # trace all TCP state changes
    bpfkit tcpstates -t        # include timestamp column
    bpfkit tcpstates -T        # include time column (HH:MM:SS)
    bpfkit tcpstates -w        # wider columns (fit IPv6)
    bpfkit tcpstates -stT      # csv output, with times & timestamps
    bpfkit tcpstates -L 80     # only trace local port 80
    bpfkit tcpstates -L 80,81  # only trace local ports 80 and 81
    bpfkit tcpstates -D 80     # only trace remote port 80
    bpfkit tcpstates -4        # trace IPv4 family only
    bpfkit tcpstates -6        # trace IPv6 family only
    bpfkit tcpstates -j        # one JSON object per state change
"""

from __future__ import annotations

import sys

try:
    from . import _net
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    _net.add_time_flags(p)
    p.add_argument("-L", "--localport", type=_net.ports, help="comma-separated list of local ports to trace.")
    p.add_argument("-D", "--remoteport", type=_net.ports, help="comma-separated list of remote ports to trace.")
    _net.add_family(p)
    TOOL.add_groups(p, "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {**_net.port_consts("lports", args.localport), **_net.port_consts("rports", args.remoteport),
              "targ_family": _net.family(args)}
    cols = Columns(_net.layout(args, _net.time_columns(args) + [
        ("skaddr", "SKADDR", "%-16x ", "%x"), ("pid", "C-PID", "%-5d ", "%d"),
        ("comm", "C-COMM", "%-16.16s " if args.wide else "%-10.10s ", "%s"),
        ("ip", "IP", "%-2d ", "%d", args.wide or args.csv or args.json),
        ("laddr", "LADDR", "%-26s " if args.wide else "%-15s ", "%s"), ("lport", "LPORT", "%-5d ", "%d"),
        ("raddr", "RADDR", "%-26s " if args.wide else "%-15s ", "%s"), ("rport", "RPORT", "%-5d ", "%d"),
        ("oldstate", "OLDSTATE", "%-11s -> ", "%s"), ("newstate", "NEWSTATE", "%-11s ", "%s"),
        ("ms", "MS", "%.3f", "%.3f")]), json=args.json)
    with TOOL.load(args, consts=consts) as b:
        event_loop(b, _printer(args, cols), duration=args.duration, ready=cols.header)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Any:
    stamp = _net.Stamp(args)

    def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
        fam = e.family
        cols.row(**stamp(e.ts_us), skaddr=e.skaddr, pid=e.pid, comm=e.comm.decode(errors="replace"),
                 ip=_net.ip_version(fam), laddr=_net.ntop(fam, e.saddr), lport=e.lport,
                 raddr=_net.ntop(fam, e.daddr), rport=e.rport, oldstate=_net.state_name(e.oldstate),
                 newstate=_net.state_name(e.newstate), ms=e.delta_us / 1000)

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcpstates", main))
