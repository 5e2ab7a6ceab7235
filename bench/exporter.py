#!/usr/bin/env python3
"""Scrape latency of the exporter holding a 100,000-entry hash map.

    sudo .venv/bin/python bench/exporter.py [--entries N] [--runs N]

The map is keyed by ``{u32 pid; u32 nr}`` (10 calls of N/10 processes) with u64 counts, filled
from user space (not timed), and exported as a counter with a ``pid`` label (``uint``) and a
``syscall`` label (``syscall``): N distinct series. It is served by bpfkit.exporter's
MetricsServer (prometheus_client's WSGI app) on 127.0.0.1, and fetched over HTTP with urllib,
in Prometheus' text format and in OpenMetrics; each figure is the median of --runs scrapes after
one warm-up. The parts are timed in-process too: the batch read of the map (``_read``), the
read and decode into a metric family (``TableMetric.read``), and prometheus_client's
formatting of the whole registry (``generate_latest``, which reads the map again). Results are
printed and written to bench/results-exporter.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

SRC = r"""
struct call_key {
    u32 pid;
    u32 nr;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, N);
    __type(key, struct call_key);
    __type(value, u64);
} calls SEC(".maps");
"""


def median_time(fn, runs: int) -> float:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    from bpfkit import BPF
    from bpfkit.exporter import Label, MetricsServer, TableMetric, _read
    from prometheus_client import CollectorRegistry, generate_latest

    n = args.entries
    with BPF(text=SRC, cflags=[f"-DN={n}"]) as b:
        t = b["calls"]
        for i in range(n):
            t.update_raw((1000 + i // 10).to_bytes(4, "little") + (i % 10).to_bytes(4, "little"),
                         (i + 1).to_bytes(8, "little"))
        assert len(t) == n
        reg = CollectorRegistry()
        metric = TableMetric(t, "calls_total", "System calls by process and call",
                             labels=[Label("pid", 4), Label("syscall", 4, ["syscall"])])
        reg.register(metric)
        family = metric.read()
        assert len(family.samples) == n, len(family.samples)
        with MetricsServer("127.0.0.1", 0, reg) as server:
            def scrape(accept: str = "") -> int:
                req = urllib.request.Request(server.url, headers={"Accept": accept} if accept else {})
                with urllib.request.urlopen(req, timeout=60) as r:
                    return len(r.read())

            size_text, size_om = scrape(), scrape("application/openmetrics-text")
            rows = [
                ("HTTP scrape, text format", median_time(scrape, args.runs), f"{size_text / 1e6:.1f} MB"),
                ("HTTP scrape, OpenMetrics", median_time(lambda: scrape("application/openmetrics-text"), args.runs),
                 f"{size_om / 1e6:.1f} MB"),
                ("in process: generate_latest(registry)", median_time(lambda: generate_latest(reg), args.runs), ""),
                ("in process: TableMetric.read() (read, decode, family)", median_time(metric.read, args.runs), ""),
                ("in process: batch read of the map", median_time(lambda: _read(t), args.runs), ""),
            ]
    lines = [(f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
              f"median of {args.runs} runs after a warm-up (`bench/exporter.py`)."), "",
             f"| a counter of {n:,} series from a {n:,}-entry hash map | seconds | body |", "|---|---:|---:|"]
    lines += [f"| {what} | {secs:.3f} | {size} |" for what, secs, size in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-exporter.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
