"""bitesize: Summarize block device I/O size as a histogram per process name.

BCC's output (a Kbytes histogram per "Process Name") and libbpf-tools' flags, from the
block:block_rq_issue tracepoint; ``-j`` prints one JSON object per interval.

Examples::

    bpfkit bitesize              # summarize block I/O sizes until Ctrl-C
    bpfkit bitesize 1 10         # print 1 second summaries, 10 times
    bpfkit bitesize -T 1         # 1s summaries with timestamps
    bpfkit bitesize -c fio       # trace fio only
    bpfkit bitesize -d sda       # trace sda only
    bpfkit bitesize -j 5 1       # one JSON object after 5 seconds
"""

from __future__ import annotations

import sys

try:
    from ._kit import Tool, clear, intervals, invalid, print_hists
except ImportError:  # run as a script from tools/
    from _kit import Tool, clear, intervals, invalid, print_hists  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
COMM_LEN = 16
#: The program's last log2 slot (MAX_SLOTS - 1 in the C), which also counts every larger size.
TOP_SLOT = 19


def comm(text: str) -> bytes:
    """A process name as the kernel keeps it: at most 15 bytes."""
    raw = text.encode()
    if not raw or len(raw) >= COMM_LEN:
        raise invalid(f"{text!r} is not a process name (1 to {COMM_LEN - 1} bytes)")
    return raw


def disk(text: str) -> tuple[str, int, int]:
    """A disk by its name under /dev: ``(name, major, minor)`` (biolatency's ``-d``)."""
    try:
        from .biolatency import disk as _disk
    except ImportError:
        from biolatency import disk as _disk  # type: ignore[no-redef]
    return _disk(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("timestamp")
    p.add_argument("-c", "--comm", type=comm, help="trace this comm only")
    p.add_argument("-d", "--disk", type=disk, help="trace this disk only")
    TOOL.add_groups(p, "json", "interval", "prometheus")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _, major, minor = args.disk or ("", 0, 0)
    consts = {"filter_comm": args.comm is not None, "targ_comm": (args.comm or b"").ljust(COMM_LEN, b"\0"),
              "filter_dev": args.disk is not None, "targ_dev": (major << 20) | minor}
    with TOOL.load(args, consts=consts) as b:
        if not args.json:
            print("Tracing block I/O... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]
        for _ in intervals(args, gap=True):
            hists: dict = {}
            # keys() and lookups rather than items(): items() reads through numpy, whose import
            # costs a small map's reader 100 ms and 12 MiB.
            for k, v in [(k, v) for k in dist.keys() if (v := dist.get(k)) is not None]:
                h = hists.setdefault(k.comm.decode(errors="replace"), {})
                h[k.slot] = h.get(k.slot, 0) + v.value
            clear(args, dist)
            print_hists(hists, args, "Kbytes", section_header="Process Name", sectioned=True, top_slot=TOP_SLOT)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("bitesize", main))
