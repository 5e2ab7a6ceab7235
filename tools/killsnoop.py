"""killsnoop: Trace signals issued by the kill() syscall.

BCC's flags and columns (TIME, PID, COMM, SIG, TPID, RESULT). Each hook is a fallback ladder: a
kprobe on the syscall where the kernel has kprobes, else the syscall tracepoints.

Examples::

    bpfkit killsnoop           # trace all kill() signals
    bpfkit killsnoop -x        # only show failed kills
    bpfkit killsnoop -p 181    # only trace PID 181 (the sender)
    bpfkit killsnoop -T 189    # only trace target PID 189 (the receiver)
    bpfkit killsnoop -s 9      # only trace signal 9
    bpfkit killsnoop -j        # one JSON object per kill()
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, event_loop, invalid, pid
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop, invalid, pid  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Entry and exit, each a kprobe on the syscall, else its tracepoint.
LADDERS = [["kill_entry_k", "kill_entry_tp"], ["kill_exit_k", "kill_exit_tp"]]


def signal_number(text: str) -> int:
    """A signal by number (``9``, ``0``) or name (``SIGKILL``, ``KILL``), as ``-s`` takes it."""
    import signal

    if text.isdigit() and int(text) < 65:
        return int(text)
    name = text.upper()
    sig = getattr(signal, name if name.startswith("SIG") else "SIG" + name, None)
    if isinstance(sig, signal.Signals):
        return int(sig)
    raise invalid(f"{text!r} is not a signal: a number from 0 to 64, or a name such as SIGKILL")


def pid_width() -> int:
    """The width of the PID columns: the digits of the largest pid (kernel.pid_max), as BCC."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return max(len(f.read().strip()), 6)
    except OSError:
        return 7


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("failed", "pid", help={"failed": "only show failed kill syscalls",
                                           "pid": "trace this PID only which is the sender of signal"})
    p.add_argument("-T", "--tpid", type=pid, help="trace this target PID only which is the receiver of signal")
    p.add_argument("-s", "--signal", type=signal_number, help="trace this signal only")
    TOOL.add_groups(p, "uid", "cgroup", "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"only_failed": args.failed, "filter_sig": args.signal is not None, "targ_sig": args.signal or 0,
              "targ_tpid": args.tpid or 0}
    w = pid_width()
    cols = Columns([("time", "TIME", "%-9s "), ("pid", "PID", f"%-{w}d "), ("comm", "COMM", "%-16s "),
                    ("sig", "SIG", "%-4d "), ("tpid", "TPID", f"%-{w}d "), ("result", "RESULT", "%d")],
                   json=args.json)

    def on_event(e: Any) -> None:  # struct kill_event
        cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid, comm=e.comm.decode(errors="replace"), sig=e.sig,
                 tpid=e.tpid, result=e.ret)

    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("killsnoop", main))
