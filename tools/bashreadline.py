"""bashreadline: Print entered bash commands from all running shells.

BCC's flags and columns (TIME, PID, COMMAND), from a uretprobe on readline() in bash (or in the
libreadline given with -s, for a bash linked with it).

Examples::

    bpfkit bashreadline                             # commands typed in any bash
    bpfkit bashreadline -s /lib/libreadline.so.8    # bash built with a shared libreadline
    bpfkit bashreadline -j                          # one JSON object per command
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Columns, Tool, Uprobes, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, Uprobes, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
BASH = "/bin/bash"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-s", "--shared", metavar="SHARED",
                   help=f"the location of the libreadline.so library (default: readline in {BASH})")
    TOOL.add_groups(p, "pid", "uid", "cgroup", "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME", "%-9s "), ("pid", "PID", "%-7d "), ("command", "COMMAND", "%s")], json=args.json)

    def on_event(e: Any) -> None:  # struct line_event
        cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid, command=e.str.decode(errors="replace"))

    uprobes = Uprobes()  # opened while the program loads
    uprobes.add("readline_ret", name=args.shared or BASH, sym="readline", retprobe=True)
    with TOOL.load(args, uprobes=uprobes) as b:
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("bashreadline", main))
