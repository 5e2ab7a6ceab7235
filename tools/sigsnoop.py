"""sigsnoop: Trace standard and real-time signals.

libbpf-tools' flags and columns (TIME, PID, COMM, SIG, TPID, RESULT). By default every signal the
kernel generates (signal:signal_generate), sent by a process or by the kernel itself; RESULT is
then the kernel's verdict: 0 delivered, 1 ignored, 2 already pending, 3 queue overflow, 4 info
lost. With ``-k`` the kill(), tkill() and tgkill() syscalls (signal 0 included), and RESULT their
return value.

Examples::

    bpfkit sigsnoop             # trace signals system-wide
    bpfkit sigsnoop -k          # trace signals issued by kill syscall only
    bpfkit sigsnoop -x          # trace failed signals only
    bpfkit sigsnoop -p 1216     # only trace PID 1216 (the sender)
    bpfkit sigsnoop -s 9        # only trace signal 9
    bpfkit sigsnoop -n          # print signal names instead of numbers
    bpfkit sigsnoop -j          # one JSON object per signal
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, event_loop
    from .killsnoop import signal_number
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]
    from killsnoop import signal_number  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
KILL_SYSCALLS = ["kill", "tkill", "tgkill"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-k", "--kill", action="store_true", help="trace signals issued by kill syscall only")
    p.add_argument("-n", "--name", action="store_true", help="output signal name instead of signal number")
    TOOL.add_groups(p, "pid")
    p.add_argument("-s", "--signal", type=signal_number, help="signal to trace")
    TOOL.add_groups(p, "failed", "uid", "cgroup", "duration", "json", help={"failed": "trace failed signals only"})
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import signal

    consts = {"only_failed": args.failed, "filter_sig": args.signal is not None, "targ_sig": args.signal or 0}
    cols = Columns([("time", "TIME", "%-8s "), ("pid", "PID", "%-7d "), ("comm", "COMM", "%-16s "),
                    ("sig", "SIG", "%-9s " if args.name else "%-9d "), ("tpid", "TPID", "%-7d "),
                    ("result", "RESULT", "%-6d")], json=args.json)

    def name(sig: int) -> str:
        try:
            return signal.Signals(sig).name
        except ValueError:
            return str(sig)

    def on_event(e: Any) -> None:  # struct sig_event
        cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid, comm=e.comm.decode(errors="replace"),
                 sig=name(e.sig) if args.name else e.sig, tpid=e.tpid, result=e.ret)

    with TOOL.load(args, consts=consts, autoattach=False) as b:
        if args.kill:
            from bpfkit import BPF

            for s in KILL_SYSCALLS:
                if BPF.tracepoint_exists("syscalls", f"sys_enter_{s}"):
                    b.attach_tracepoint(tp=f"syscalls:sys_enter_{s}", fn_name=f"{s}_entry")
                    b.attach_tracepoint(tp=f"syscalls:sys_exit_{s}", fn_name=f"{s}_exit")
        else:
            b.attach_tracepoint(tp="signal:signal_generate", fn_name="sig_generate")
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("sigsnoop", main))
