"""tcplife: Trace the lifespan of TCP sessions and summarize.

BCC's flags and columns (PID, COMM, LADDR, LPORT, RADDR, RPORT, TX_KB, RX_KB, MS), one line per
session as it closes, from the sock:inet_sock_set_state tracepoint. The bytes are the socket's
own counts of data acknowledged by the peer (TX) and received (RX); ``-j`` gives them exactly
(``tx_bytes``, ``rx_bytes``) beside BCC's kilobytes. PID and COMM are the task that connected
the session, else the one that closed it.

Examples::

    bpfkit tcplife           # trace all TCP sessions
    bpfkit tcplife -T        # include time column (HH:MM:SS)
    bpfkit tcplife -w        # wider columns (fit IPv6)
    bpfkit tcplife -stT      # csv output, with times & timestamps
    bpfkit tcplife -p 181    # only trace PID 181
    bpfkit tcplife -L 80     # only trace local port 80
    bpfkit tcplife -L 80,81  # only trace local ports 80 and 81
    bpfkit tcplife -D 80     # only trace remote port 80
    bpfkit tcplife -4        # only trace IPv4 family
    bpfkit tcplife -6        # only trace IPv6 family
    bpfkit tcplife -j        # one JSON object per session, exact byte counts
    bpfkit tcplife --prometheus 9100   # serve sessions, bytes and lifespans by command
"""

from __future__ import annotations

import sys

try:
    from . import _net
    from ._kit import Columns, Tool, event_loop, exporter
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _kit import Columns, Tool, event_loop, exporter  # type: ignore[no-redef]

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
    TOOL.add_groups(p, "pid")
    p.add_argument("-L", "--localport", type=_net.ports, help="comma-separated list of local ports to trace.")
    p.add_argument("-D", "--remoteport", type=_net.ports, help="comma-separated list of remote ports to trace.")
    _net.add_family(p)
    TOOL.add_groups(p, "duration", "json", "prometheus")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {**_net.port_consts("lports", args.localport), **_net.port_consts("rports", args.remoteport),
              "targ_family": _net.family(args)}
    w = args.wide
    cols = Columns(_net.layout(args, _net.time_columns(args) + [
        ("pid", "PID", "%-5d ", "%d"), ("comm", "COMM", "%-16.16s " if w else "%-10.10s ", "%s"),
        ("ip", "IP", "%-2d ", "%d", w or args.csv or args.json),
        ("laddr", "LADDR", "%-26s " if w else "%-15s ", "%s"), ("lport", "LPORT", "%-5d ", "%d"),
        ("raddr", "RADDR", "%-26s " if w else "%-15s ", "%s"), ("rport", "RPORT", "%-5d ", "%d"),
        ("tx_kb", "TX_KB", "%6d " if w else "%5d ", "%d"), ("rx_kb", "RX_KB", "%6d " if w else "%5d ", "%d"),
        ("tx_bytes", "TX_B", "%d ", "%d", args.json), ("rx_bytes", "RX_B", "%d ", "%d", args.json),
        ("ms", "MS", "%.2f", "%.2f")]), json=args.json)
    with TOOL.load(args, consts=consts) as b:
        b["events"].set_record("struct event")  # the C also defines a CO-RE flavour of struct sock
        serving = exporter(args)
        event_loop(b, _printer(args, cols) if serving is None else _totals(serving), duration=args.duration,
                   ready=cols.header if serving is None else None)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Any:
    stamp = _net.Stamp(args)

    def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
        fam = e.family
        cols.row(**stamp(e.ts_us), pid=e.pid, comm=e.comm.decode(errors="replace"), ip=_net.ip_version(fam),
                 laddr=_net.ntop(fam, e.saddr), lport=e.lport, raddr=_net.ntop(fam, e.daddr), rport=e.rport,
                 tx_kb=e.tx_b // 1024, rx_kb=e.rx_b // 1024, tx_bytes=e.tx_b, rx_bytes=e.rx_b,
                 ms=e.span_us / 1000)

    return on_event


def _totals(serving: Any) -> Any:
    """``--prometheus``: each session closed added to counters and a lifespan histogram, by
    command (a label per address or port would make a series of every session)."""
    labels = ("comm",)

    def on_event(e: Any) -> None:
        comm = e.comm.decode(errors="replace")
        key = {(comm,): 1}
        serving.counter("sessions_total", "TCP sessions closed", labels, key, add=True)
        serving.counter("sent_bytes_total", "TCP bytes sent and acknowledged, of the sessions closed", labels,
                        {(comm,): e.tx_b}, add=True)
        serving.counter("received_bytes_total", "TCP bytes received, of the sessions closed", labels,
                        {(comm,): e.rx_b}, add=True)
        # The log2 slot as the programs number them (bpf_log2l: 0 and 1 in slot 1); every
        # span is known, so the sum is exact.
        serving.histogram("duration_seconds", {comm: {max(1, int(e.span_us).bit_length()): 1}}, "usecs",
                          section="comm", sums={comm: e.span_us}, help="Lifespan of the TCP sessions closed",
                          add=True)

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcplife", main))
