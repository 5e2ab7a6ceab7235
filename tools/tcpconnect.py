"""tcpconnect: Trace TCP connects.

BCC's flags and columns (PID, COMM, IP, SADDR, [LPORT,] DADDR, DPORT), or with ``-c`` the
connects counted per flow. Written once for every kernel: fexit on tcp_v4_connect/tcp_v6_connect
where the kernel allows it, else the sock:inet_sock_set_state tracepoint (see the C for how);
``-v`` says which.

``-d`` adds BCC's QUERY column: the host name the destination address was looked up by. BCC reads
the DNS answers the host receives (a kprobe on udp_recvmsg); here uprobes on the C library's
getaddrinfo() read the addresses each lookup returned, so the names resolved by /etc/hosts show
too, while programs that resolve without the C library (Go's resolver, c-ares) show none. As in
BCC, a connect to an address no lookup returned shows ``No DNS Query`` (``localhost`` for
127.0.0.1 and ::1), and a lookup more than 100 ms before the connect shows that time after the
name. With ``-j`` the field ``query`` is the name, or null. ``--libc PATH`` probes another C library.

Examples::

    bpfkit tcpconnect           # trace all TCP connect()s
    bpfkit tcpconnect -t        # include timestamps
    bpfkit tcpconnect -d        # include DNS queries associated with connects
    bpfkit tcpconnect -p 181    # only trace PID 181
    bpfkit tcpconnect -P 80     # only trace port 80
    bpfkit tcpconnect -P 80,81  # only trace port 80 and 81
    bpfkit tcpconnect -4        # only trace IPv4 family
    bpfkit tcpconnect -6        # only trace IPv6 family
    bpfkit tcpconnect -U        # include UID
    bpfkit tcpconnect -u 1000   # only trace UID 1000
    bpfkit tcpconnect -c        # count connects per src ip and dest ip/port
    bpfkit tcpconnect -L        # include LPORT while printing outputs
    bpfkit tcpconnect --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit tcpconnect --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
    bpfkit tcpconnect -j        # one JSON object per connect
"""

from __future__ import annotations

import sys

try:
    from . import _net
    from ._kit import Columns, Tool, Uprobes, event_loop, print_json
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _kit import Columns, Tool, Uprobes, event_loop, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Per address family, the hooks best first: fexit on the connect function, else the tracepoint.
LADDERS = [["v4_fexit", "v4_tp"], ["v6_fexit", "v6_tp"]]
#: -d: a lookup this long before the connect has its age printed after the name, as BCC does.
DELAY_DNS_MS = 100


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    TOOL.add_groups(p, "pid")
    p.add_argument("-P", "--port", type=_net.ports, help="comma-separated list of destination ports to trace.")
    _net.add_family(p)
    p.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    TOOL.add_groups(p, "print_uid", "uid", help={"print_uid": "include UID on output"})
    p.add_argument("-c", "--count", action="store_true", help="count connects per src ip and dest ip/port")
    TOOL.add_groups(p, "cgroupmap", "mntnsmap")
    p.add_argument("-d", "--dns", action="store_true", help="include likely DNS query associated with each connect")
    p.add_argument("--libc", default="c", help="-d: the C library to probe (a path; default: the system's)")
    TOOL.add_groups(p, "json")
    p.add_argument("-v", "--verbose", action="store_true", help="say which hook each family uses, and why")
    args = p.parse_args(argv)
    if args.count and args.dns:
        p.error("you may not specify -d/--dns with -c/--count")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {**_net.port_consts("dports", args.port), "targ_family": _net.family(args),
              "with_lport": args.lport, "do_count": args.count}
    uprobes = None
    if args.dns:  # opened while the program loads
        uprobes = Uprobes()
        uprobes.add("lookup_enter", name=args.libc, sym="getaddrinfo", pid=args.pid or -1)
        uprobes.add("dns_return", name=args.libc, sym="getaddrinfo", pid=args.pid or -1, retprobe=True)
    with TOOL.load(args, consts=consts, uprobes=uprobes, alternatives=LADDERS,
                   cflags=["-DTOOL_DNS"] if args.dns else []) as b:
        if args.verbose:
            _net.say_rungs(b)
        if not args.json:
            print("Tracing connect ... Hit Ctrl-C to end", flush=True)
        if args.count:
            _count(b, args)
            return 0
        cols = Columns([("timestamp", "TIME(s)", "%-9.3f", args.timestamp), ("uid", "UID", "%-6d", args.print_uid),
                        ("pid", "PID", "%-7d "), ("comm", "COMM", "%-12.12s "), ("ip", "IP", "%-2d "),
                        ("saddr", "SADDR", "%-16s "), ("lport", "LPORT", "%-6d ", args.lport),
                        ("daddr", "DADDR", "%-16s "), ("dport", "DPORT", "%-6d"),
                        ("query", "QUERY", " %s", args.dns)], json=args.json)
        first: list = []

        def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
            if not first:
                first.append(e.ts_us)
            fam = e.family
            daddr = _net.ntop(fam, e.daddr)
            cols.row(timestamp=(e.ts_us - first[0]) / 1e6, uid=e.uid, pid=e.pid,
                     comm=e.comm.decode(errors="replace"), ip=_net.ip_version(fam), saddr=_net.ntop(fam, e.saddr),
                     lport=e.lport, daddr=daddr, dport=e.dport, query=_query(e, daddr, args.json))

        b["events"].set_record("struct event")  # struct event is also the value of a map
        event_loop(b, on_event, ready=cols.header)
    return 0


def _query(e: Any, daddr: str, json: bool) -> str | None:
    """-d: the name the connect's destination was looked up by (None for JSON when no lookup
    returned it), or as BCC prints it: ``No DNS Query`` (``localhost`` for 127.0.0.1 and ::1), and
    after the name the lookup's age when it is more than ``DELAY_DNS_MS``."""
    if not e.query_ts_us:
        return None if json else "localhost" if daddr in ("127.0.0.1", "::1") else "No DNS Query"
    name = e.query.decode(errors="replace")
    age_ms = (e.ts_us - e.query_ts_us) / 1000
    return name if json or age_ms <= DELAY_DNS_MS else "%s (%.3fms)" % (name, age_ms)


def _count(b: Any, args: argparse.Namespace) -> None:
    """-c: waits for Ctrl-C, then prints the connects per flow, most first."""
    import time

    try:
        while True:
            time.sleep(99999999)
    except KeyboardInterrupt:
        pass
    flows = sorted(((k.family, _net.ntop(k.family, k.saddr), _net.ntop(k.family, k.daddr), k.dport, v.value)
                    for k, v in _net.entries(b["counts"])), key=lambda f: -f[4])
    if args.json:
        for fam, saddr, daddr, dport, n in flows:
            print_json({"ip": _net.ip_version(fam), "laddr": saddr, "raddr": daddr, "rport": dport, "connects": n})
        return
    print("\n%-25s %-25s %-20s %-10s" % ("LADDR", "RADDR", "RPORT", "CONNECTS"))
    for _, saddr, daddr, dport, n in flows:
        print("%-25s %-25s %-20s %-10d" % (saddr, daddr, dport, n))
    sys.stdout.flush()


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcpconnect", main))
