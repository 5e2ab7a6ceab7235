"""exitsnoop: Trace all process termination (exit, fatal signal).

BCC's flags and columns (PCOMM, PID, PPID, TID, AGE(s), EXIT_CODE), from the
sched:sched_process_exit tracepoint. EXIT_CODE is ``0``, ``code N`` for exit(N), or ``signal N
(NAME)`` for a process a signal ended, with ``, core dumped`` when it left a core.

Examples::

    bpfkit exitsnoop                # trace all process termination
    bpfkit exitsnoop -x             # trace only fails, exclude exit(0)
    bpfkit exitsnoop -t             # include timestamps (local time)
    bpfkit exitsnoop --utc          # include timestamps (UTC)
    bpfkit exitsnoop -p 181         # only trace PID 181
    bpfkit exitsnoop --label=exit   # label each output line with 'exit'
    bpfkit exitsnoop --per-thread   # trace per thread termination
    bpfkit exitsnoop -j             # one JSON object per termination
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp (local time default)")
    p.add_argument("--utc", action="store_true", help="include timestamp in UTC (-t implied)")
    TOOL.add_groups(p, "pid")
    p.add_argument("--label", help="label each line")
    TOOL.add_groups(p, "failed", help={"failed": "trace only fails, exclude exit(0)"})
    p.add_argument("--per-thread", action="store_true", help="trace per thread termination")
    TOOL.add_groups(p, "cgroup", "duration", "json")
    return p.parse_args(argv)


def signame(sig: int) -> str:
    """A signal's name (``SIGKILL``), or ``SIG<n>`` for one without a name here."""
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def exit_text(code: int, sig_info: int) -> str:
    """EXIT_CODE as BCC prints it: ``0``, ``code 3``, ``signal 9 (SIGKILL)``, ``, core dumped``."""
    if sig_info == 0:
        return "0" if code == 0 else f"code {code}"
    sig = sig_info & 0x7F
    text = f"signal {sig} ({signame(sig)})" if sig else ""
    return text + (", core dumped " if sig_info & 0x80 else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = args.timestamp or args.utc
    if args.json:
        spec = [("time", "", "", stamp), ("label", "", "", args.label is not None), ("pcomm", "", ""),
                ("pid", "", ""), ("ppid", "", ""), ("tid", "", ""), ("age", "", ""), ("exit_code", "", ""),
                ("sig", "", ""), ("core_dumped", "", "")]
    else:
        zone = "UTC" if args.utc else time.strftime("%Z")
        spec = [("time", "TIME-" + zone, "%-13s", stamp), ("label", "LABEL", "%-6s", args.label is not None),
                ("pcomm", "PCOMM", "%-16s "), ("pid", "PID", "%-7d "), ("ppid", "PPID", "%-7d "),
                ("tid", "TID", "%-7d "), ("age", "AGE(s)", "%-7.2f "), ("exit", "EXIT_CODE", "%s")]
    cols = Columns(spec, json=args.json)
    with TOOL.load(args, consts={"only_failed": args.failed, "per_thread": args.per_thread}) as b:
        event_loop(b, _printer(args, cols), duration=args.duration, ready=cols.header)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Callable[[Any], None]:
    clock = time.gmtime if args.utc else time.localtime
    label = (args.label or "exit") if args.label is not None else ""

    def on_event(e: Any) -> None:  # struct exit_event
        now = time.time()
        stamp = time.strftime("%H:%M:%S", clock(now)) + ".%03d" % (now % 1 * 1000)
        sig = e.sig_info & 0x7F
        cols.row(time=stamp, label=label, pcomm=e.comm.decode(errors="replace"), pid=e.pid, ppid=e.ppid,
                 tid=e.tid, age=(e.exit_ns - e.start_ns) / 1e9, exit=exit_text(e.exit_code, e.sig_info),
                 exit_code=e.exit_code, sig=sig, core_dumped=bool(e.sig_info & 0x80))

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("exitsnoop", main))
