"""oomkill: Trace the out-of-memory (OOM) killer.

BCC's line per kill: ``HH:MM:SS Triggered by PID 181 ("python3"), OOM kill of PID 181
("python3"), 8192 pages, loadavg: ...``. One fallback ladder: fentry on oom_kill_process(), else a
kprobe on it, else the oom:mark_victim tracepoint; the tracepoint does not know the pages the OOM
was judged against, which then show as ``?`` (null in JSON).

Examples::

    bpfkit oomkill             # trace OOM kills
    bpfkit oomkill -j          # one JSON object per kill
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, event_loop, print_json
except ImportError:  # run as a script from tools/
    from _kit import Tool, event_loop, print_json  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
LADDERS = [["oom_fentry", "oom_kprobe", "oom_tp"]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return TOOL.parser("duration", "json").parse_args(argv)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().rstrip()
    except OSError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def on_event(e: Any) -> None:  # struct oom_event
        fcomm, tcomm = e.fcomm.decode(errors="replace"), e.tcomm.decode(errors="replace")
        pages = e.pages if e.has_pages else None
        now, avg = time.strftime("%H:%M:%S"), loadavg()
        if args.json:
            print_json({"time": now, "fpid": e.fpid, "fcomm": fcomm, "tpid": e.tpid, "tcomm": tcomm, "pages": pages,
                        "loadavg": avg})
        else:
            print('%s Triggered by PID %d ("%s"), OOM kill of PID %d ("%s"), %s pages, loadavg: %s'
                  % (now, e.fpid, fcomm, e.tpid, tcomm, "?" if pages is None else pages, avg), flush=True)

    def header() -> None:
        if not args.json:
            print("Tracing OOM kills... Ctrl-C to stop.", flush=True)

    with TOOL.load(args, alternatives=LADDERS) as b:
        event_loop(b, on_event, duration=args.duration, ready=header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("oomkill", main))
