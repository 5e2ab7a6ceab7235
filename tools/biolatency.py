"""biolatency: Summarize block device I/O latency as a histogram.

BCC's flags and output, from the block layer's BTF tracepoints; ``-j`` prints one JSON object
per interval, the buckets as numbers.

Examples::

    bpfkit biolatency             # summarize block I/O latency as a histogram
    bpfkit biolatency 1 10        # print 1 second summaries, 10 times
    bpfkit biolatency -mT 1       # 1s summaries, milliseconds, and timestamps
    bpfkit biolatency -Q          # include OS queued time in I/O time
    bpfkit biolatency -D          # show each disk device separately
    bpfkit biolatency -F          # show I/O flags separately
    bpfkit biolatency -j          # print a JSON object per interval
    bpfkit biolatency -e          # show extension summary (total, average)
    bpfkit biolatency -d sdc      # trace sdc only
    bpfkit biolatency -D --prometheus 9100   # serve bpfkit_biolatency_seconds{disk=...}
"""

from __future__ import annotations

import os
import sys

try:
    from ._kit import Tool, intervals, invalid, print_extension, print_hists, read_extension, read_hists
except ImportError:  # run as a script from tools/
    from _kit import Tool, intervals, invalid, print_extension, print_hists, read_extension, read_hists  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The program's last log2 slot (MAX_SLOTS - 1 in the C), which also counts every longer latency.
TOP_SLOT = 26

# Request operations (the low 8 bits of cmd_flags, REQ_OP_*) and common modifier bits.
_OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 9: "WriteZeroes",
        10: "ZoneOpen", 11: "ZoneClose", 12: "ZoneFinish", 13: "ZoneAppend", 15: "ZoneReset",
        17: "ZoneResetAll", 34: "DrvIn", 35: "DrvOut"}


# Modifier bits of cmd_flags (enum req_flag_bits: REQ_OP_BITS = 8, then 3 failfast bits, so REQ_SYNC
# is bit 11 on kernels since 4.10) named in a section's title, as BCC's -F names them: innermost
# (next to the operation) first. Bits left out (failfast, integrity, preflush, ...) go unnamed.
_MODIFIERS = ((11, "Sync"), (12, "Metadata"), (17, "ForcedUnitAccess"), (13, "Priority"), (14, "NoMerge"),
              (15, "Idle"), (19, "ReadAhead"), (20, "Background"), (21, "NoWait"))


def flags_name(flags: int) -> str:
    """A readable name for a request's cmd_flags, its modifiers before its operation, as BCC's
    ``-F`` sections are titled.

    >>> flags_name(1 | 1 << 11), flags_name(0), flags_name(1 << 19), flags_name(1 | 1 << 11 | 1 << 17)
    ('Sync-Write', 'Read', 'ReadAhead-Read', 'ForcedUnitAccess-Sync-Write')
    """
    name = _OPS.get(flags & 0xFF, f"Op{flags & 0xFF}")
    for bit, modifier in _MODIFIERS:
        if flags & (1 << bit):
            name = f"{modifier}-{name}"
    return name


def disk(text: str) -> tuple[str, int, int]:
    """A disk by its name under /dev (``sda``, ``nvme0n1``): ``(name, major, minor)``."""
    import stat

    try:
        st = os.stat(os.path.join("/dev", text))
    except (OSError, ValueError):
        st = None
    if st is None or not stat.S_ISBLK(st.st_mode):
        raise invalid(f"no such disk {text!r} (a block device under /dev)")
    return text, os.major(st.st_rdev), os.minor(st.st_rdev)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    sections = p.add_mutually_exclusive_group()
    sections.add_argument("-D", "--disks", action="store_true", help="print a histogram per disk device")
    sections.add_argument("-F", "--flags", action="store_true", help="print a histogram per set of I/O flags")
    p.add_argument("-e", "--extension", action="store_true", help="summarize average/total value")
    TOOL.add_groups(p, "json")
    p.add_argument("-d", "--disk", type=disk, help="Trace this disk only")
    TOOL.add_groups(p, "interval", "prometheus")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _, major, minor = args.disk or ("", 0, 0)
    consts = {"queued": args.queued, "millis": args.milliseconds, "per_disk": args.disks, "per_flag": args.flags,
              "filter_dev": args.disk is not None, "targ_major": major, "targ_minor": minor}
    with TOOL.load(args, consts=consts) as b:
        if not args.json:
            print("Tracing block device I/O... Hit Ctrl-C to end.", flush=True)
        dist, extension = b["dist"], b["extension"]
        label = "msecs" if args.milliseconds else "usecs"
        header = "disk" if args.disks else "flags"
        section = (lambda k: k.disk.decode(errors="replace") or "?") if args.disks else \
            (lambda k: flags_name(k.flags)) if args.flags else None
        for _ in intervals(args, gap=True):
            hists = read_hists(args, dist, section)
            total, summary = read_extension(args, extension)
            print_hists(hists, args, label, section_header=header, sectioned=args.disks or args.flags,
                        extra={"extension": summary} if summary else None, top_slot=TOP_SLOT, total=total)
            print_extension(args, summary, label)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("biolatency", main))
