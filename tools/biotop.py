"""biotop: Block device (disk) I/O by process, top-style.

BCC's flags and columns (PID, COMM, D, MAJ, MIN, DISK, I/O, Kbytes, AVGms) under a loadavg line,
sorted by bytes; the block hooks are biosnoop's fallback ladders. ``-j`` prints one JSON object
per interval.

Examples::

    bpfkit biotop            # block device I/O top, 1 second refresh
    bpfkit biotop -C         # don't clear the screen
    bpfkit biotop -p 181     # only trace PID 181
    bpfkit biotop 5          # 5 second summaries
    bpfkit biotop 5 10       # 5 second summaries, 10 times only
    bpfkit biotop -r 5       # only the 5 busiest rows
    bpfkit biotop -j 1 3     # three JSON objects, one a second
    bpfkit biotop --prometheus 9100   # serve bpfkit_biotop_*_total{comm=,disk=,op=}
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, count, exporter, intervals, print_json
    from .biosnoop import LADDERS  # block.bpf.h's ladders, the same in both tools
except ImportError:  # run as a script from tools/
    from _kit import Tool, count, exporter, intervals, print_json  # type: ignore[no-redef]
    from biosnoop import LADDERS  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
HEADER = "%-7s %-16s %1s %-3s %-3s %-8s %5s %7s %6s" % ("PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes",
                                                       "AVGms")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=count, default=20, help="maximum rows to print, default 20")
    TOOL.add_groups(p, "pid", "json", "interval", "prometheus")
    p.set_defaults(interval=1)
    return p.parse_args(argv)


def disk_names() -> dict:
    """``{(major, minor): name}`` of the disks and partitions in /proc/diskstats."""
    names = {}
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                a = line.split()
                if len(a) > 2:
                    names[(int(a[0]), int(a[1]))] = a[2]
    except OSError:
        pass
    return names


def serve(serving: Any, snap: list, disks: dict) -> None:
    """A pass's counts added to the served counters, by command, disk and direction (a label per
    process id would make a series of every short-lived process)."""
    ios: dict = {}
    nbytes: dict = {}
    secs: dict = {}
    for k, v in snap:
        if (k.major, k.minor) not in disks:
            disks.update(disk_names())  # a disk that appeared since
        key = (k.comm.decode(errors="replace"), disks.get((k.major, k.minor), f"{k.major}:{k.minor}"),
               "write" if k.rwflag else "read")
        ios[key] = ios.get(key, 0) + v.io
        nbytes[key] = nbytes.get(key, 0) + v.bytes
        secs[key] = secs.get(key, 0) + v.us / 1e6
    labels = ("comm", "disk", "op")
    serving.counter("requests_total", "Block I/O requests completed", labels, ios, add=True)
    serving.counter("bytes_total", "Bytes of block I/O completed", labels, nbytes, add=True)
    serving.counter("seconds_total", "Time of block I/O requests, issue to completion", labels, secs, add=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clear = not args.noclear and not args.json and sys.stdout.isatty()
    with TOOL.load(args, alternatives=LADDERS) as b:
        if not args.json:
            print("Tracing... Output every %g secs. Hit Ctrl-C to end" % args.interval, flush=True)
        counts = b["counts"]
        disks = disk_names()
        for _ in intervals(args):
            # keys() and lookups rather than items(): items() reads through numpy (100 ms, 12 MiB).
            snap = [(k, v) for k in counts.keys() if (v := counts.get(k)) is not None]
            rows = sorted(snap, key=lambda kv: kv[1].bytes, reverse=True)[:args.maxrows]
            counts.clear()  # also when serving: its keys hold process ids, which would fill it
            if exporter(args) is not None:
                serve(exporter(args), snap, disks)
                continue
            out = []
            for k, v in rows:
                name = disks.get((k.major, k.minor))
                if name is None:
                    disks = disk_names()  # a disk that appeared since
                    name = disks.get((k.major, k.minor), "?")
                out.append({"pid": k.pid, "comm": k.comm.decode(errors="replace"), "d": "W" if k.rwflag else "R",
                            "maj": k.major, "min": k.minor, "disk": name, "io": v.io, "kbytes": v.bytes // 1024,
                            "avg_ms": v.us / 1000 / v.io if v.io else 0.0})
            with open("/proc/loadavg") as f:
                loadavg = f.read().strip()
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "loadavg": loadavg, "rows": out})
                continue
            sys.stdout.write("\033[H\033[2J" if clear else "\n")
            lines = ["%-8s loadavg: %s\n" % (time.strftime("%H:%M:%S"), loadavg), HEADER]
            lines += ["%-7d %-16s %1s %-3d %-3d %-8s %5d %7d %6.2f" % tuple(r.values()) for r in out]
            print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("biotop", main))
