"""tcptop: Summarize TCP send/recv throughput by host.

BCC's flags and output: every interval, the load average and one line per task and connection
(PID, COMM, LADDR, RADDR, RX_KB, TX_KB), busiest first, IPv4 then IPv6. Written once for every
kernel: fentry or a kprobe on tcp_sendmsg/tcp_cleanup_rbuf where the kernel allows them, else
the sock:sock_send_length/sock_recv_length tracepoints (``-v`` says which). ``-j`` prints one
JSON object per interval, with the exact bytes beside the kilobytes.

Examples::

    bpfkit tcptop           # trace TCP send/recv by host
    bpfkit tcptop -C        # don't clear the screen
    bpfkit tcptop -p 181    # only trace PID 181
    bpfkit tcptop -4        # trace IPv4 family only
    bpfkit tcptop -6        # trace IPv6 family only
    bpfkit tcptop --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit tcptop --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
    bpfkit tcptop -j 5 3    # three 5-second summaries as JSON
    bpfkit tcptop --prometheus 9100   # serve bpfkit_tcptop_{sent,received}_bytes_total{comm=...}
"""

from __future__ import annotations

import sys
import time

try:
    from . import _net
    from ._kit import Tool, exporter, intervals, print_json
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _kit import Tool, exporter, intervals, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
LADDERS = [["send_fentry", "send_kprobe", "send_tp"], ["recv_fentry", "recv_kprobe", "recv_tp"]]
#: What the terminal's `clear` writes (ANSI: home, erase the screen), without running it.
CLEAR = "\033[H\033[2J"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-S", "--nosummary", action="store_true", help="skip system summary line")
    TOOL.add_groups(p, "pid", "cgroupmap", "mntnsmap")
    _net.add_family(p)
    TOOL.add_groups(p, "json", "interval", "prometheus", help={"interval": "output interval, in seconds (default 1)"})
    p.add_argument("-v", "--verbose", action="store_true", help="say which hooks are used, and why")
    p.set_defaults(interval=1)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with TOOL.load(args, consts={"targ_family": _net.family(args)}, alternatives=LADDERS) as b:
        if args.verbose:
            _net.say_rungs(b)
        flows = b["flows"]
        out = sys.stdout
        if not args.json:
            out.write("Tracing... Output every %g secs. Hit Ctrl-C to end\n" % (args.interval or 1))
            out.flush()
        for _ in intervals(args):
            rows = []
            for k, v in _net.entries(flows):
                fam = k.family
                rows.append({"pid": k.pid, "comm": k.comm.decode(errors="replace"), "ip": _net.ip_version(fam),
                             "laddr": _net.ntop(fam, k.saddr), "lport": k.lport, "raddr": _net.ntop(fam, k.daddr),
                             "rport": k.dport, "rx_kb": v.received // 1024, "tx_kb": v.sent // 1024,
                             "rx_bytes": v.received, "tx_bytes": v.sent})
            flows.clear()  # also when serving: its keys hold ports and process ids, which would fill it
            if exporter(args) is not None:  # added up by command (a series per connection would not end)
                sent: dict = {}
                received: dict = {}
                for r in rows:
                    sent[(r["comm"],)] = sent.get((r["comm"],), 0) + r["tx_bytes"]
                    received[(r["comm"],)] = received.get((r["comm"],), 0) + r["rx_bytes"]
                exporter(args).counter("sent_bytes_total", "TCP bytes sent", ("comm",), sent, add=True)
                exporter(args).counter("received_bytes_total", "TCP bytes received", ("comm",), received, add=True)
                continue
            rows.sort(key=lambda r: r["rx_bytes"] + r["tx_bytes"], reverse=True)
            now = time.strftime("%H:%M:%S")
            with open("/proc/loadavg") as f:
                loadavg = f.read()
            if args.json:
                print_json({"time": now, "loadavg": loadavg.strip(), "sessions": rows})
                continue
            out.write("\n" if args.noclear else CLEAR)
            if not args.nosummary:
                out.write("%-8s loadavg: %s\n" % (now, loadavg))
            for ip, width, gap in ((4, 21, ""), (6, 32, "\n")):
                shown = [r for r in rows if r["ip"] == ip]
                if not shown:
                    continue
                six = "6" if ip == 6 else ""
                out.write(gap + "%-7s %-12s %-*s %-*s %6s %6s\n" % ("PID", "COMM", width, "LADDR" + six, width,
                                                                     "RADDR" + six, "RX_KB", "TX_KB"))
                for r in shown:
                    out.write("%-7d %-12.12s %-*s %-*s %6d %6d\n" % (
                        r["pid"], r["comm"], width, f"{r['laddr']}:{r['lport']}", width,
                        f"{r['raddr']}:{r['rport']}", r["rx_kb"], r["tx_kb"]))
            out.flush()
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcptop", main))
