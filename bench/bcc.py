#!/usr/bin/env python3
"""BCC's C dialect on bpfkit, side by side with BCC's own BPF(text=) of the same text.

Run as root: `.venv/bin/python bench/bcc.py [--runs N]` (BCC through Debian's python3-bpfcc, on the
header tree bench/run.py builds, since this kernel ships no headers). Each figure is the median of
N runs, each in a fresh process; written to bench/results-bcc.md.

Two programs: `simple` (a TRACEPOINT_PROBE counting with a BPF_HASH's increment) and `reads`
(the same, also reading task->real_parent->tgid and task->group_leader->comm through the current
task: implicit kernel reads, which bpfkit finds in clang's AST and BCC in its own).

  translate + compile, empty cache   `bcc_translate()` and `compile()` into a new cache directory:
                                     the first program on a machine (kernel BTF read and parsed,
                                     headers written).
  translate + compile, new program   the same with the cache in use but this text never seen:
                                     the usual cold start (a program just edited).
  cold BPF()                         BPF(text=) from nothing cached: translate, compile, load,
                                     attach. BCC has no cache: this is every BCC start.
  warm BPF()                         BPF(text=) with the translation and object cached; beside it
                                     the libbpf-dialect program of bench/run.py, which does the
                                     same, for the "warm is identical" comparison.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BCC_PROBE, PROBE, SYS_PY, VENV_PY, bcc_env, bench_args, have_bcc, med, timed_child  # noqa: E402

HERE = Path(__file__).resolve().parent

READS = r"""
#include <linux/sched.h>
struct seen_t { u32 ppid; char leader[TASK_COMM_LEN]; };
BPF_HASH(counts, u32, u64, 10240);
BPF_HASH(seen, u32, struct seen_t, 10240);
TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct seen_t s = {};
    s.ppid = task->real_parent->tgid;
    bpf_probe_read_kernel_str(&s.leader, sizeof(s.leader), task->group_leader->comm);
    seen.update(&pid, &s);
    counts.increment(pid);
    return 0;
}
"""

PROGRAMS = {"simple": BCC_PROBE, "reads": READS}


def fresh(src: str) -> str:
    """The program with a comment no cache has seen."""
    return src + f"\n// {uuid.uuid4().hex}\n"


def translate_compile(src: str, cache: str) -> str:
    return ("import time\nfrom bpfkit import _native\n"
            f"src = {src!r}\nt = time.perf_counter()\n"
            f"c = _native.bcc_translate(src, cache_dir={cache!r})\n"
            f"_native.compile(c, cache_dir={cache!r})\nprint(time.perf_counter() - t)")


def bpf_code(module: str, src: str, close: str, extra: str = "") -> str:
    return (f"import time\nfrom {module} import BPF\nsrc = {src!r}\nt = time.perf_counter()\n"
            f"b = BPF(text=src{extra})\nprint(time.perf_counter() - t)\nb.{close}()")


def bench(runs: int) -> dict:
    res: dict = {}
    shared = tempfile.mkdtemp(prefix="bpfkit-bench-bcc-")
    try:
        # A cache in use (headers written, BTF identity known) for the "new program" rows.
        timed_child(VENV_PY, translate_compile(fresh(BCC_PROBE), shared))
        for name, src in PROGRAMS.items():
            empty, new, cold, warm, rss = [], [], [], [], []
            for _ in range(runs):
                d = tempfile.mkdtemp(prefix="bpfkit-bench-bcc-")
                try:
                    empty.append(timed_child(VENV_PY, translate_compile(fresh(src), d + "/c")))
                    new.append(timed_child(VENV_PY, translate_compile(fresh(src), shared)))
                    e = dict(os.environ, BPFKIT_CACHE_DIR=d + "/b")
                    once = fresh(src)
                    cold.append(timed_child(VENV_PY, bpf_code("bpfkit", once, "close", ", dialect='bcc'"), e))
                    warm.append(timed_child(VENV_PY, bpf_code("bpfkit", once, "close", ", dialect='bcc'"), e, rss))
                finally:
                    shutil.rmtree(d, ignore_errors=True)
            res[f"bpfkit, {name}"] = {"translate + compile, empty cache": med(empty),
                                      "translate + compile, new program": med(new),
                                      "cold BPF()": med(cold), "warm BPF()": med(warm),
                                      "peak RSS, MiB": med(rss) / 1024}
        # The libbpf-dialect program of bench/run.py, warm, for comparison.
        d = tempfile.mkdtemp(prefix="bpfkit-bench-bcc-")
        try:
            e = dict(os.environ, BPFKIT_CACHE_DIR=d)
            timed_child(VENV_PY, bpf_code("bpfkit", PROBE, "close"), e)
            warm = [timed_child(VENV_PY, bpf_code("bpfkit", PROBE, "close"), e) for _ in range(runs)]
            res["bpfkit, libbpf C"] = {"warm BPF()": med(warm)}
        finally:
            shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    if have_bcc():
        env = bcc_env()
        for name, src in PROGRAMS.items():
            times, rss = [], []
            for _ in range(runs):
                times.append(timed_child(SYS_PY, bpf_code("bcc", src, "cleanup"), env, rss))
            res[f"BCC, {name}"] = {"cold BPF()": med(times), "warm BPF()": med(times), "peak RSS, MiB": med(rss) / 1024}
    return res


def main() -> int:
    args = bench_args(__doc__)
    if args is None:
        return 1
    res = bench(args.runs)
    rows = ["translate + compile, empty cache", "translate + compile, new program", "cold BPF()", "warm BPF()",
            "peak RSS, MiB"]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
             f"median of {args.runs} runs (`.venv/bin/python bench/bcc.py`). Seconds unless marked.", "",
             "| BCC-dialect program | " + " | ".join(res) + " |", "|---|" + "---:|" * len(res)]
    for row in rows:
        cells = []
        for k in res:
            v = res[k].get(row)
            cells.append("" if v is None else ("{:.1f}" if "MiB" in row else "{:.3f}").format(v))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-bcc.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
