#!/usr/bin/env python3
"""clear() of hash maps of 100,000 and 1,000,000 entries (u32 -> u64), bpfkit beside BCC (Debian's
python3-bpfcc).

    sudo .venv/bin/python bench/clear.py [--runs N] [--bcc-limit SECONDS]

Each figure is the median of N runs, each clearing a freshly filled map (filling is not timed).
bpfkit's clear() reads and deletes in batches of 16384 entries (BPF_MAP_LOOKUP_AND_DELETE_BATCH,
5.6+). BCC's clear() deletes key by key while iterating: each delete makes the kernel restart the
iteration from the first remaining entry, so its time grows with the square of the size; a run
longer than --bcc-limit seconds is stopped and reported as such. BCC's items_delete_batch() is its
batch form, shown for reference. BCC needs kernel headers: bench/run.py's bcc_env() provides them.
Results are printed and written to bench/results-clear.md.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import SYS_PY, bcc_env, have_bcc  # noqa: E402

BPFKIT_SRC = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, N); __type(key, u32); __type(value, u64);
} h SEC(".maps");
"""

BCC_CHILD = r"""
import sys, time
from bcc import BPF
n, runs, how = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b = BPF(text="BPF_HASH(h, u32, u64, %d);" % n)
h = b["h"]
chunk = 100000
keys, vals = (h.Key * chunk)(), (h.Leaf * chunk)()
for _ in range(runs):
    for base in range(0, n, chunk):
        m = min(chunk, n - base)
        for i in range(m):
            keys[i] = base + i
            vals[i] = (base + i) * 3
        h.items_update_batch((h.Key * m).from_buffer(keys), (h.Leaf * m).from_buffer(vals))
    assert len(h) == n
    print("start", flush=True)
    t = time.perf_counter()
    if how == "clear":
        h.clear()
    else:
        h.items_delete_batch()
    print(time.perf_counter() - t, flush=True)
    assert len(h) == 0
"""


def bench_bpfkit(n: int, runs: int) -> float:
    from bpfkit import BPF

    times = []
    with BPF(text=BPFKIT_SRC, cflags=[f"-DN={n}"]) as b:
        h = b["h"]
        for _ in range(runs):
            for k in range(n):
                h.update_raw(k.to_bytes(4, "little"), (k * 3).to_bytes(8, "little"))
            assert len(h) == n
            t = time.perf_counter()
            h.clear()
            times.append(time.perf_counter() - t)
            assert len(h) == 0
    return statistics.median(times)


def bench_bcc(n: int, runs: int, how: str, limit: float = 3600) -> float | None:
    """The median seconds of BCC's clear() (`how` "clear") or items_delete_batch() ("batch"), or
    None when a run took longer than `limit` seconds (then it is stopped)."""
    p = subprocess.Popen([SYS_PY, "-c", BCC_CHILD, str(n), str(runs), how], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=bcc_env())
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.strip()) for x in p.stdout or ()], daemon=True).start()
    times: list = []
    try:
        while len(times) < runs:
            try:
                line = lines.get(timeout=600)  # "start": compiled and filled (neither is timed)
                if line != "start":
                    p.kill()
                    raise RuntimeError(f"BCC failed: {line} {p.stderr.read()[-2000:] if p.stderr else ''}")
                times.append(float(lines.get(timeout=limit)))
            except queue.Empty:
                return None
    finally:
        p.kill()
        p.wait()
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bcc-limit", type=float, default=30.0,
                    help="stop BCC's clear() after this many seconds")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    runs = args.runs
    sizes = (100_000, 1_000_000)
    cols = {"bpfkit clear()": [bench_bpfkit(n, runs) for n in sizes]}
    if have_bcc():
        # Key by key is quadratic: a run past the limit is stopped (and so are the rest).
        cols["BCC clear()"] = [bench_bcc(n, runs, "clear", args.bcc_limit) for n in sizes]
        cols["BCC items_delete_batch()"] = [bench_bcc(n, runs, "batch") for n in sizes]

    def cell(t: float | None) -> str:
        return f"> {args.bcc_limit:.0f} (stopped)" if t is None else f"{t:.3f}"

    lines = [(f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
              f"median of {runs} runs (`bench/clear.py`)."), "",
             "| clear() of a hash map, u32 -> u64 (seconds) | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for i, n in enumerate(sizes):
        lines.append(f"| {n:,} entries | " + " | ".join(cell(v[i]) for v in cols.values()) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-clear.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
