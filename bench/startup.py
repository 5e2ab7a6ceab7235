#!/usr/bin/env python3
"""Warm start: how soon a tool can receive its first event, beside libbpf-tools and bpftrace.

Run as root: `.venv/bin/python bench/startup.py [--runs N]` (part of `make bench`). Each figure is
the median of N runs (at least 7), each a fresh process, after one untimed run that warms the page
cache and bpfkit's compile cache. "Ready" is measured as in bench/run.py: from exec to the first
output line naming a file that a workload opens every millisecond, so it includes interpreter
start-up, imports, load and attach, and at most a millisecond of waiting for the workload.

  python -c pass            the interpreter's own start-up: the floor under any Python tool
  python -c "import bpfkit" what importing the package adds (wall time of the whole process)
  bpfkit opensnoop          `bpfkit opensnoop` with its object in the compile cache
  libbpf-tools opensnoop    /usr/sbin/opensnoop (apt-get install libbpf-tools), if installed
  bpftrace one-liner        a tracepoint one-liner printing each openat(), if bpftrace is installed

Results are printed as a Markdown table and written to bench/results-startup.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import VENV_PY, first_event, med, wall  # noqa: E402 (after the path it needs)

BPFTRACE = 'tracepoint:syscalls:sys_enter_openat { printf("%d %s\\n", pid, str(args->filename)); }'


def _ready(cmd: list, runs: int) -> tuple:
    """Median exec-to-first-event seconds of ``cmd`` after an untimed warm-up run."""
    first_event(cmd, 1)
    t, _rss = first_event(cmd, runs)
    return t


def _wall(cmd: list, runs: int) -> float:
    wall(cmd)
    return med([wall(cmd) for _ in range(runs)])


def measure(runs: int) -> dict:
    """Row name -> (median seconds, or a string saying why it could not run; what was run)."""
    rows: dict[str, tuple] = {}
    bpfkit = shutil.which("bpfkit", path=os.path.dirname(VENV_PY))
    cases: list[tuple[str, list, Callable[[list, int], object]]] = [
        ("python -c pass", [VENV_PY, "-c", "pass"], _wall),
        ('python -c "import bpfkit"', [VENV_PY, "-c", "import bpfkit"], _wall),
        ("bpfkit opensnoop (warm)", [bpfkit or VENV_PY, *([] if bpfkit else ["-m", "bpfkit"]), "opensnoop"], _ready),
    ]
    if os.path.exists("/usr/sbin/opensnoop"):
        cases.append(("libbpf-tools opensnoop", ["stdbuf", "-oL", "/usr/sbin/opensnoop"], _ready))
    if shutil.which("bpftrace"):
        cases.append(("bpftrace one-liner", ["bpftrace", "-e", BPFTRACE], _ready))
    for name, cmd, how in cases:
        rows[name] = (how(cmd, runs), " ".join(cmd))
    return rows


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="runs per figure (at least 7)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    runs = max(7, args.runs)
    rows = measure(runs)
    when = (f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}; median of {runs} runs (`bench/startup.py`).")
    lines = [when, "", "| warm start | exec to ready (s) |", "|---|---:|"]
    for name, (t, _cmd) in rows.items():
        lines.append(f"| {name} | {t if isinstance(t, str) else f'{t:.3f}'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-startup.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
