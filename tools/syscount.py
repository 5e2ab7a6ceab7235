"""syscount: Summarize syscall counts and latencies.

BCC's flags and output (SYSCALL or PID COMM, COUNT, and with ``-L`` TIME (us)), from the
raw_syscalls tracepoints; ``-j`` prints one JSON object per interval.

Examples::

    bpfkit syscount                 # count syscalls until Ctrl-C, then print the top 10
    bpfkit syscount -i 1            # print the top 10 every second
    bpfkit syscount -p 181 -d 5     # only PID 181, for 5 seconds
    bpfkit syscount -L              # measure and sort output by latency
    bpfkit syscount -P              # group statistics by pid, not by syscall
    bpfkit syscount -x -i 5         # count only failed syscalls
    bpfkit syscount -e ENOENT -i 5  # count only syscalls failed with a given errno
    bpfkit syscount --syscall read  # count only read()s
    bpfkit syscount -c 181          # only the children of PID 181
    bpfkit syscount -l              # list the syscalls it knows by name
    bpfkit syscount -j -i 1         # a JSON object per second
    bpfkit syscount -L --prometheus 9100   # serve bpfkit_syscount_calls_total{syscall=...}
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import MAX_SECONDS, Tool, clear, count, exporter, intervals, invalid, pid, print_json, seconds
    from ._syscalls import names
except ImportError:  # run as a script from tools/
    from _kit import MAX_SECONDS, Tool, clear, count, exporter, intervals, invalid, pid, print_json, seconds  # type: ignore[no-redef]
    from _syscalls import names  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source


def error_number(text: str) -> int:
    """An errno by number (``2``) or name (``ENOENT``)."""
    import errno

    name = text.upper()
    n = int(text, 10) if text.isdigit() else getattr(errno, name, None) if name.startswith("E") else None
    if not isinstance(n, int) or not 0 < n < 4096:
        raise invalid(f"{text!r} is not an error number (2) or name (ENOENT)")
    return n


def syscall_name(nr: int, table: list) -> str:
    return table[nr] if 0 <= nr < len(table) and table[nr] else f"[unknown: {nr}]"


def serve(serving: Any, rows: list, args: argparse.Namespace, table: list) -> None:
    """The counts since the start as counters, every call (or process) of them (no top N)."""
    labels = ("pid", "comm") if args.process else ("syscall",)
    keys = [(key, comm) if args.process else (syscall_name(key, table),) for key, _, _, comm in rows]
    what = "failed system calls" if args.failures or args.errno else "system calls"
    serving.counter("calls_total", f"{what.capitalize()}, counted as they return", labels,
                    {k: n for k, (_, n, _, _) in zip(keys, rows)})
    if args.latency:
        serving.counter("seconds_total", f"Time spent in {what}", labels,
                        {k: ns / 1e9 for k, (_, _, ns, _) in zip(keys, rows)})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-p", "--pid", type=pid, dest="pid", help="trace only this pid")
    p.add_argument("-t", "--tid", type=pid, dest="tid", help="trace only this tid")
    TOOL.groups += ["pid", "tid"]  # the kit sets their filters (BCC's help words)
    p.add_argument("-c", "--ppid", type=pid, help="trace only child of this pid")
    p.add_argument("-i", "--interval", type=seconds, help="print summary at this interval (seconds)")
    TOOL.add_groups(p, "duration")
    p.add_argument("-T", "--top", type=count, default=10, help="print only the top syscalls by count or latency")
    p.add_argument("-x", "--failures", action="store_true", help="trace only failed syscalls (return < 0)")
    p.add_argument("-e", "--errno", type=error_number,
                   help="trace only syscalls that return this error (numeric or EPERM, etc.)")
    p.add_argument("-L", "--latency", action="store_true", help="collect syscall latency")
    p.add_argument("-m", "--milliseconds", action="store_true",
                   help="display latency in milliseconds (default: microseconds)")
    p.add_argument("-P", "--process", action="store_true", help="count by process and not by syscall")
    p.add_argument("-l", "--list", action="store_true", help="print list of recognized syscalls and exit")
    p.add_argument("--syscall", help="trace this syscall only (use option -l to get all recognized syscalls)")
    TOOL.add_groups(p, "json", "prometheus")
    args = p.parse_args(argv)
    args.nr = -1
    if args.syscall is not None:
        table = names()
        if args.syscall not in table or not args.syscall:
            p.error(f"syscall {args.syscall!r} not found (-l lists them)")
        args.nr = table.index(args.syscall)
    # BCC's loop: -d alone prints once at its end; -i alone prints until Ctrl-C.
    if args.interval is None:
        args.interval = args.duration or MAX_SECONDS
    args.count = 99999999 if args.duration is None else max(1, -int(-args.duration // args.interval))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    table = names()
    if args.list:
        known = sorted(n for n in table if n)
        for i in range(0, len(known), 4):
            print("   ".join("%-22s" % n for n in known[i:i + 4]))
        return 0
    consts = {"by_process": args.process, "latency": args.latency, "only_failed": args.failures,
              "only_errno": args.errno or 0, "only_nr": args.nr, "targ_ppid": args.ppid or 0}
    unit, scale = ("ms", 1e6) if args.milliseconds else ("us", 1e3)
    with TOOL.load(args, consts=consts) as b:
        if not args.json:
            failed = "failed " if args.failures else ""
            if args.syscall is not None:
                print(f"Tracing {failed}syscall '{args.syscall}'... Ctrl+C to quit.", flush=True)
            else:
                print(f"Tracing {failed}syscalls, printing top {args.top}... Ctrl+C to quit.", flush=True)
        data = b["data"]
        for _ in intervals(args):
            rows = [(k.value, v.count, v.total_ns, v.comm.decode(errors="replace")) for k, v in data.items()]
            clear(args, data)
            if exporter(args) is not None:
                serve(exporter(args), rows, args, table)
                continue
            rows.sort(key=lambda r: -(r[2] if args.latency else r[1]))
            rows = rows[:args.top]
            now = time.strftime("%H:%M:%S")
            if args.json:
                def one(key: int, n: int, ns: int, comm: str) -> dict:
                    row: dict = {"pid": key, "comm": comm} if args.process else {"syscall": syscall_name(key, table)}
                    row["count"] = n
                    if args.latency:
                        row[f"time_{unit}"] = ns / scale
                    return row

                print_json({"time": now, "processes" if args.process else "syscalls": [one(*r) for r in rows]})
                continue
            agg = "PID    COMM" if args.process else "SYSCALL"
            print(f"[{now}]")
            if args.latency:
                print("%-22s %8s %16s" % (agg, "COUNT", f"TIME ({unit})"))
            else:
                print("%-22s %8s" % (agg, "COUNT"))
            for key, n, ns, comm in rows:
                name = "%-6d %-15s" % (key, comm) if args.process else syscall_name(key, table)
                if args.latency:
                    print(("%-22s %8d " + ("%16.6f" if args.milliseconds else "%16.3f")) % (name, n, ns / scale))
                else:
                    print("%-22s %8d" % (name, n))
            print("", flush=True)
        if not args.json:
            print("Detaching...", flush=True)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("syscount", main))
