"""biolatency: summarize block device I/O latency as a histogram, with BCC's flags and output.

Examples::

    bpfkit biolatency             # summarize block I/O latency as a histogram
    bpfkit biolatency 1 10        # print 1 second summaries, 10 times
    bpfkit biolatency -mT 1       # 1s summaries, milliseconds, and timestamps
    bpfkit biolatency -Q          # include OS queued time in I/O time
    bpfkit biolatency -D          # show each disk device separately
    bpfkit biolatency -F          # show I/O flags separately
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

try:
    from ._common import count, printed_source, require_privileges, seconds, tool_parser
except ImportError:  # run as a script from tools/
    from _common import count, printed_source, require_privileges, seconds, tool_parser  # type: ignore[no-redef]

#: The program's C, beside this file (a str, not a Path: pathlib costs start-up time).
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "biolatency.bpf.c")

# Request operations (the low 8 bits of cmd_flags, REQ_OP_*) and common modifier bits.
_OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 9: "WriteZeroes",
        10: "ZoneOpen", 11: "ZoneClose", 12: "ZoneFinish", 13: "ZoneAppend", 15: "ZoneReset",
        17: "ZoneResetAll", 34: "DrvIn", 35: "DrvOut"}


def flags_name(flags: int) -> str:
    """A readable name for a request's cmd_flags, e.g. ``Sync-Write``."""
    op = _OPS.get(flags & 0xFF, f"Op{flags & 0xFF}")
    # REQ_SYNC is bit 11 on kernels since 4.10 (REQ_OP_BITS = 8, then 3 failfast bits).
    return ("Sync-" if flags & (1 << 11) else "") + op


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = tool_parser("biolatency", "Summarize block device I/O latency as a histogram", __doc__)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-D", "--disks", action="store_true", help="print a histogram per disk device")
    p.add_argument("-F", "--flags", action="store_true", help="print a histogram per set of I/O flags")
    p.add_argument("interval", nargs="?", type=seconds, default=99999999, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=count, default=99999999, help="number of outputs")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if printed_source(args, SOURCE):
        return 0
    require_privileges()
    from bpfkit import BPF

    consts = {"queued": args.queued, "millis": args.milliseconds, "per_disk": args.disks, "per_flag": args.flags}
    with BPF(src_file=SOURCE, consts=consts) as b:
        print("Tracing block device I/O... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        label = "msecs" if args.milliseconds else "usecs"
        remaining = args.count
        exiting = False
        while not exiting:
            try:
                time.sleep(args.interval)
            except KeyboardInterrupt:
                exiting = True
            print()
            if args.timestamp:
                print("%-8s" % time.strftime("%H:%M:%S"))
            hists: dict = {}
            for k, v in dist.items():
                if args.disks:
                    section = k.disk.decode(errors="replace") or "?"
                elif args.flags:
                    section = flags_name(k.flags)
                else:
                    section = None
                h = hists.setdefault(section, {})
                h[k.slot] = h.get(k.slot, 0) + v.value
            dist.clear()
            from bpfkit import print_log2_hist

            header = "disk" if args.disks else "flags"
            print_log2_hist(hists or {None: {}}, label, section_header=header)
            sys.stdout.flush()
            remaining -= 1
            if remaining == 0:
                exiting = True
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("biolatency", main))
