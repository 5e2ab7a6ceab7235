"""tcpstates: Trace TCP session state changes and durations.

BCC's flags and columns (SKADDR, C-PID, C-COMM, LADDR, LPORT, RADDR, RPORT, OLDSTATE -> NEWSTATE,
MS: the milliseconds spent in the old state), from the sock:inet_sock_set_state tracepoint.
C-PID and C-COMM are the task on the CPU at the change, which is not always the socket's owner
(a change in a softirq shows whatever ran there).

``-Y`` also logs each change to the systemd journal, with BCC's fields (``SYSLOG_IDENTIFIER=tcpstates``,
``OBJECT_PID``, ``OBJECT_IPV4_SOURCE_ADDRESS`` or ``OBJECT_IPV6_...``, ``OBJECT_TCP_SOURCE_PORT``,
``OBJECT_TCP_OLD_STATE``, ``OBJECT_TCP_SPAN_TIME`` in microseconds, ...): written to journald's
native socket directly, so python-systemd is not needed; ``$BPFKIT_JOURNAL_SOCKET`` names
another socket. Read them back with ``journalctl SYSLOG_IDENTIFIER=tcpstates``.

Examples::

    bpfkit tcpstates           # trace all TCP state changes
    bpfkit tcpstates -t        # include timestamp column
    bpfkit tcpstates -T        # include time column (HH:MM:SS)
    bpfkit tcpstates -w        # wider columns (fit IPv6)
    bpfkit tcpstates -stT      # csv output, with times & timestamps
    bpfkit tcpstates -Y        # log events to the systemd journal
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
    from ._journal import Journal
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _journal import Journal  # type: ignore[no-redef]
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
    p.add_argument("-Y", "--journal", action="store_true", help="log session state changes to the systemd journal")
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
    journal = Journal() if args.journal else None  # before loading: no journal is said at once
    try:
        with TOOL.load(args, consts=consts) as b:
            event_loop(b, _printer(args, cols, journal), duration=args.duration, ready=cols.header)
    finally:
        if journal is not None:
            journal.close()
    return 0


def _printer(args: argparse.Namespace, cols: Columns, journal: Journal | None) -> Any:
    stamp = _net.Stamp(args)

    def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
        fam = e.family
        comm, laddr, raddr = e.comm.decode(errors="replace"), _net.ntop(fam, e.saddr), _net.ntop(fam, e.daddr)
        old, new = _net.state_name(e.oldstate), _net.state_name(e.newstate)
        cols.row(**stamp(e.ts_us), skaddr=e.skaddr, pid=e.pid, comm=comm, ip=_net.ip_version(fam), laddr=laddr,
                 lport=e.lport, raddr=raddr, rport=e.rport, oldstate=old, newstate=new, ms=e.delta_us / 1000)
        if journal is not None:
            journal.send(**journal_fields(e.pid, comm, fam, laddr, e.lport, raddr, e.rport, old, new, e.delta_us))

    return on_event


def journal_fields(pid: int, comm: str, fam: int, laddr: str, lport: int, raddr: str, rport: int, old: str,
                   new: str, span_us: int) -> dict:
    """-Y: one state change as BCC's tcpstates logs it to the journal, with its field names
    (the standard ones of systemd.journal-fields(7), and OBJECT_TCP_* of BCC's own).

    >>> journal_fields(181, "curl", 2, "10.0.0.1", 40000, "10.0.0.2", 80, "CLOSE", "SYN_SENT", 3)["MESSAGE"]
    'curl 10.0.0.1 40000 → 10.0.0.2 80 CLOSE → SYN_SENT'
    """
    import os
    import time

    ip = "IPV6" if fam == _net.AF_INET6 else "IPV4"
    fields = {"SYSLOG_IDENTIFIER": "tcpstates", "PRIORITY": 5,
              "_SOURCE_REALTIME_TIMESTAMP": int(time.time() * 1e6), "OBJECT_PID": pid, "OBJECT_COMM": comm,
              f"OBJECT_{ip}_SOURCE_ADDRESS": laddr, "OBJECT_TCP_SOURCE_PORT": lport,
              f"OBJECT_{ip}_DESTINATION_ADDRESS": raddr, "OBJECT_TCP_DESTINATION_PORT": rport,
              "OBJECT_TCP_OLD_STATE": old, "OBJECT_TCP_NEW_STATE": new, "OBJECT_TCP_SPAN_TIME": span_us,
              "MESSAGE": f"{comm} {laddr} {lport} → {raddr} {rport} {old} → {new}"}
    if os.getuid() == 0:
        del fields["OBJECT_COMM"]  # journald adds the OBJECT_* of OBJECT_PID's process for root
    return fields


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcpstates", main))
