"""filelife: Trace the lifespan of short-lived files: created, then deleted.

BCC's columns (TIME, PID, COMM, AGE(s), FILE) and ``-p``, from the syscall tracepoints on every
kernel (BCC's vfs_create/vfs_unlink kprobes have no hook where kprobes and fentry are missing):
creations by open, openat, openat2 and creat, deletions by unlink and unlinkat, matched by the
directory and path given. FILE is the path as the deleting call gave it.

Examples::

    bpfkit filelife           # trace lifecycle of file (create->remove)
    bpfkit filelife -p 181    # only trace PID 181 (the deleting process)
    bpfkit filelife -d 10     # trace for 10 seconds only
    bpfkit filelife -j        # one JSON object per file
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
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: (syscall, entry program, exit program) attached where the syscall exists on this kernel
#: (openat and unlinkat are named in the C's SEC() and attached on load).
OPTIONAL = [("open", "enter_open", "exit_open"), ("creat", "enter_creat", "exit_open"),
            ("openat2", "enter_openat2", "exit_open"), ("unlink", "enter_unlink", "exit_unlink")]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("pid", "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("time", "TIME", "%-8s "), ("pid", "PID", "%-7d "), ("comm", "COMM", "%-16s "),
                    ("age_s", "AGE(s)", "%-7.2f "), ("file", "FILE", "%s")], json=args.json)
    with TOOL.load(args) as b:
        from bpfkit import BPF

        for name, enter, leave in OPTIONAL:
            if BPF.tracepoint_exists("syscalls", f"sys_enter_{name}"):
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{name}", fn_name=enter)
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{name}", fn_name=leave)
        b.attach_tracepoint(tp="syscalls:sys_exit_openat", fn_name="exit_open")
        b.attach_tracepoint(tp="syscalls:sys_exit_unlinkat", fn_name="exit_unlink")
        event_loop(b, lambda e: cols.row(time=time.strftime("%H:%M:%S"), pid=e.pid,
                                         comm=e.comm.decode(errors="replace"), age_s=e.delta_ns / 1e9,
                                         file=e.path.decode(errors="replace")),
                   duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("filelife", main))
