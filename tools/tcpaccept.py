"""tcpaccept: Trace TCP accepts.

BCC's flags and columns (PID, COMM, IP, RADDR, RPORT, LADDR, LPORT). Written once for every
kernel: fexit on inet_csk_accept where the kernel allows it, else the exits of accept4() and
accept(), whose new descriptor leads to the socket; ``-v`` says which.

Examples::

    bpfkit tcpaccept           # trace all TCP accept()s
    bpfkit tcpaccept -t        # include timestamps
    bpfkit tcpaccept -T        # include time column (HH:MM:SS)
    bpfkit tcpaccept -P 80,81  # only trace port 80 and 81
    bpfkit tcpaccept -p 181    # only trace PID 181
    bpfkit tcpaccept -4        # trace IPv4 family
    bpfkit tcpaccept -6        # trace IPv6 family
    bpfkit tcpaccept --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit tcpaccept --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
    bpfkit tcpaccept -j        # one JSON object per accept
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
#: The hooks, best first: fexit on inet_csk_accept, else accept4()'s exit (and accept()'s).
LADDERS = [["accept_fexit", "accept4_tp"]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    TOOL.add_groups(p, "pid")
    p.add_argument("-P", "--port", type=_net.ports, help="comma-separated list of local ports to trace")
    _net.add_family(p)
    TOOL.add_groups(p, "cgroupmap", "mntnsmap", "duration", "json")
    p.add_argument("-v", "--verbose", action="store_true", help="say which hook is used, and why")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {**_net.port_consts("lports", args.port), "targ_family": _net.family(args)}
    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        if b.alternatives["accept_fexit"].program == "accept4_tp":
            from bpfkit import BPF

            if BPF.tracepoint_exists("syscalls", "sys_exit_accept"):  # not on every architecture
                b.attach_tracepoint(tp="syscalls:sys_exit_accept", fn_name="accept_tp")
        if args.verbose:
            _net.say_rungs(b)
        cols = Columns([("time", "TIME", "%-9s", args.time), ("timestamp", "TIME(s)", "%-9.3f", args.timestamp),
                        ("pid", "PID", "%-7d "), ("comm", "COMM", "%-12.12s "), ("ip", "IP", "%-2d "),
                        ("raddr", "RADDR", "%-16s "), ("rport", "RPORT", "%-5d "),
                        ("laddr", "LADDR", "%-16s "), ("lport", "LPORT", "%-5d")], json=args.json)
        stamp = _net.Stamp(args)

        def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
            fam = e.family
            cols.row(**stamp(e.ts_us), pid=e.pid, comm=e.comm.decode(errors="replace"), ip=_net.ip_version(fam),
                     raddr=_net.ntop(fam, e.raddr), rport=e.rport, laddr=_net.ntop(fam, e.laddr), lport=e.lport)

        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcpaccept", main))
