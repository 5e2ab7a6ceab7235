#!/usr/bin/env python3
"""The generic tools' start-up: exec to ready of `trace` and `funccount` one-liners, cold and
warm, beside BCC's own tools (trace-bpfcc, funccount-bpfcc) and bpftrace one-liners doing the
same, in one run.

Run as root: `.venv/bin/python bench/generic.py [--runs N]` (part of `make bench`).

"Ready" is the first line of output, which each of them prints once its probes are attached (the
header, BCC's "Tracing ...", bpftrace's "Attaching N probes..."). Peak RSS is the process tree's
largest VmHWM then. "warm" has the generated program in bpfkit's compile cache (one untimed run
first); "cold" starts each run with an empty cache, so it includes clang. BCC compiles on every
start (against the header tree bench/run.py builds, as this kernel ships none), and bpftrace has
no cache: theirs are the same cold or warm. Each figure is the median of N runs, each a fresh
process. Results go to bench/results-generic.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import bcc_env  # noqa: E402

from tools import _bpfkit, median_ready, ready_once  # noqa: E402

TP = "t:syscalls:sys_enter_openat"
#: (name, bpfkit arguments, BCC tool and arguments, bpftrace program)
ONE_LINERS = [
    ("funccount", ["funccount", "t:syscalls:sys_enter_getpp*"],
     ["funccount-bpfcc", "t:syscalls:sys_enter_getpp*"],
     "tracepoint:syscalls:sys_enter_getpp* { @[probe] = count(); }"),
    ("trace", ["trace", f'{TP} "%s", args->filename'],
     ["trace-bpfcc", f'{TP} "%s", args->filename'],
     'tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\\n", pid, comm, str(args->filename)); }'),
]


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="runs per figure (at least 5)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    runs = max(5, args.runs)
    rows = []
    for name, ours, theirs, bt in ONE_LINERS:
        cmd = [*_bpfkit(), *ours]
        ready_once(cmd)  # warms the compile cache and the page cache
        warm = median_ready(cmd, runs)
        cold = median_ready(cmd, runs, cold=True)
        bcc = median_ready([f"/usr/sbin/{theirs[0]}", *theirs[1:]], max(3, runs // 2), env=bcc_env()) \
            if os.path.exists(f"/usr/sbin/{theirs[0]}") else "not installed"
        bpft = median_ready(["bpftrace", "-e", bt], max(3, runs // 2)) if shutil.which("bpftrace") else "not installed"
        rows.append((f"`{' '.join(ours[:1])} '{' '.join(ours[1:])}'`", warm, cold, bcc, bpft))
        print(f"{name}: warm {warm}; cold {cold}; BCC {bcc}; bpftrace {bpft}", file=sys.stderr)
    when = (f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}; median of {runs} runs (BCC, bpftrace: {max(3, runs // 2)}), "
            "exec to the first line of output, and peak RSS then (`bench/generic.py`).")
    lines = [when, "", "| one-liner | bpfkit warm | bpfkit cold (compiles) | BCC's tool | bpftrace |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-generic.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
