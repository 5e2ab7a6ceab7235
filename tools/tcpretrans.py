"""tcpretrans: Trace TCP retransmits.

BCC's flags and columns (TIME, PID, IP, LADDR:LPORT, T>, RADDR:RPORT, STATE), or with ``-c`` the
retransmits counted per flow. Written once for every kernel: the tcp:tcp_retransmit_skb BTF
tracepoint, else the same through tracefs, else a kprobe (``-v`` says which). Tail loss probes
(``-l``) have no tracepoint: they need fentry or a kprobe on tcp_send_loss_probe, and where the
kernel allows neither, ``-l`` is refused in one line. The PID is the task on the CPU when the
segment was sent again, most often none (0): retransmits run from timers and softirqs.

Examples::

    bpfkit tcpretrans           # trace TCP retransmits
    bpfkit tcpretrans -l        # include TLP attempts
    bpfkit tcpretrans -s        # display TCP sequence numbers
    bpfkit tcpretrans -c        # count retransmits per flow, printed at Ctrl-C (or -d)
    bpfkit tcpretrans -4        # trace IPv4 family only
    bpfkit tcpretrans -6        # trace IPv6 family only
    bpfkit tcpretrans -j        # one JSON object per retransmit
"""

from __future__ import annotations

import sys

try:
    from . import _net
    from ._kit import Columns, Tool, event_loop, print_json
except ImportError:  # run as a script from tools/
    import _net  # type: ignore[no-redef]
    from _kit import Columns, Tool, event_loop, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
RETRANSMIT = ["retrans_btf", "retrans_tp", "retrans_kprobe"]
LOSS_PROBE = ["tlp_fentry", "tlp_kprobe"]
TYPES = {1: "R", 2: "L"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-s", "--sequence", action="store_true", help="display TCP sequence numbers")
    p.add_argument("-l", "--lossprobe", action="store_true", help="include tail loss probe attempts")
    p.add_argument("-c", "--count", action="store_true", help="count occurred retransmits per flow")
    _net.add_family(p)
    TOOL.add_groups(p, "duration", "json")
    p.add_argument("-v", "--verbose", action="store_true", help="say which hook is used, and why")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"targ_family": _net.family(args), "do_count": args.count}
    ladders = [RETRANSMIT] + ([LOSS_PROBE] if args.lossprobe else [])
    with _load(args, consts, ladders) as b:
        if args.verbose:
            _net.say_rungs(b)
        if not args.json:
            print("Tracing retransmits ... Hit Ctrl-C to end", flush=True)
        if args.count:
            _count(b, args)
            return 0
        if args.json:
            cols = Columns([("time", "TIME", "%s"), ("pid", "PID", "%d"), ("ip", "IP", "%d"), ("laddr", "", "%s"),
                            ("lport", "", "%d"), ("type", "T", "%s"), ("raddr", "", "%s"), ("rport", "", "%d"),
                            ("state", "STATE", "%s"), ("seq", "SEQ", "%d", args.sequence)], json=True)
        else:
            cols = Columns([("time", "TIME", "%-8s "), ("pid", "PID", "%-7d "), ("ip", "IP", "%-2d "),
                            ("local", "LADDR:LPORT", "%-20s "), ("type", "T", "%1s> "),
                            ("remote", "RADDR:RPORT", "%-20s"),
                            ("state", "STATE", " %-12s " if args.sequence else " %s"),
                            ("seq", "SEQ", "%s", args.sequence)])
        import time

        def on_event(e: Any) -> None:  # struct event, typed from the program's BTF
            fam = e.family
            laddr, raddr = _net.ntop(fam, e.saddr), _net.ntop(fam, e.daddr)
            cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid, ip=_net.ip_version(fam), laddr=laddr, lport=e.lport,
                     local=f"{laddr}:{e.lport}", type=TYPES.get(e.type, "?"), raddr=raddr, rport=e.dport,
                     remote=f"{raddr}:{e.dport}", state=_net.state_name(e.state), seq=e.seq)

        b["events"].set_record("struct event")  # the C also declares the tracepoint's record
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


def _load(args: argparse.Namespace, consts: dict, ladders: list) -> Any:
    """The program; a kernel without a hook for -l's tail loss probes is refused naming it."""
    from bpfkit import NotSupportedError

    try:
        return TOOL.load(args, consts=consts, alternatives=ladders, cflags=["-DLOSS_PROBE"] if args.lossprobe else [])
    except NotSupportedError as e:
        if getattr(e, "program", None) not in LOSS_PROBE and "tlp_" not in str(e):
            raise
        err = NotSupportedError(f"-l: tail loss probes have no tracepoint, and this kernel allows neither fentry "
                                f"nor a kprobe on tcp_send_loss_probe ({e})", e.errno)
        err.feature, err.since, err.program = "kprobe or fentry on tcp_send_loss_probe", e.since, e.program
        raise err from None


def _count(b: Any, args: argparse.Namespace) -> None:
    """-c: waits for Ctrl-C or the end of -d, then prints the retransmits per flow, fewest first (as BCC)."""
    import time

    try:
        time.sleep(args.duration or 99999999)
    except KeyboardInterrupt:
        pass
    flows = sorted(((k.family, _net.ntop(k.family, k.saddr), k.lport, _net.ntop(k.family, k.daddr), k.dport, v.value)
                    for k, v in _net.entries(b["counts"])), key=lambda f: f[5])
    if args.json:
        for fam, saddr, lport, daddr, dport, n in flows:
            print_json({"ip": _net.ip_version(fam), "laddr": saddr, "lport": lport, "raddr": daddr, "rport": dport,
                        "retransmits": n})
        return
    print("\n%-25s %-25s %-10s" % ("LADDR:LPORT", "RADDR:RPORT", "RETRANSMITS"))
    for _, saddr, lport, daddr, dport, n in flows:
        print("%-20s <-> %-20s %10d" % (f"[{saddr}]#{lport}", f"[{daddr}]#{dport}", n))
    sys.stdout.flush()


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("tcpretrans", main))
