#!/usr/bin/env python3
"""Every bundled tool's start-up: exec to ready, and peak RSS, warm and cold, beside libbpf-tools
and bpftrace where they have a tool of the same name.

Run as root: `.venv/bin/python bench/tools.py [--runs N] [TOOL ...]` (part of `make bench`).

"Ready" is the tool's first line of output: every tool prints its header (or BCC's "Tracing...")
after its programs are attached, so that line is the moment it starts seeing events. Peak RSS is
the VmHWM of the tool's process at that moment. "warm" has the tool's object in the compile cache
(one untimed run first); "cold" starts each run with an empty cache, so it includes clang. Each
figure is the median of N runs (at least 5), each a fresh process; the warm runs, bpfkit's and
libbpf-tools', go in rounds across all the tools, so that the machine's drift (a VM's neighbours
come and go) falls on every tool alike instead of on the few measured while it lasts. libbpf-tools' binaries
(/usr/sbin/<tool>, apt-get install libbpf-tools) run under `stdbuf -oL`, and bpftrace's tools
(/usr/sbin/<tool>.bt) as installed; a tool that cannot run on this kernel (no kprobes, no fentry)
is shown with the first line of its error. A bpfkit tool that refuses here (no hook on this kernel)
is shown as refusing.

Results are printed as a Markdown table and written to bench/results-tools.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bpfkit() -> list:
    exe = shutil.which("bpfkit", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "bpfkit"]


def _hwm(pid: int) -> int:
    """The largest VmHWM (KiB) in the process tree of ``pid`` (bpftrace's tools are scripts)."""
    best = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                best = max([best] + [int(line.split()[1]) for line in f if line.startswith("VmHWM:")])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return best


def ready_once(cmd: list, env: dict | None = None, limit: float = 30.0) -> tuple:
    """(seconds from exec to the first output line, peak RSS KiB) or (None, why it failed)."""
    errf = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env)
    assert p.stdout is not None
    line = ""
    try:
        # A tool that ends at once (a refusal) closes stdout: readline returns "".
        import select

        if select.select([p.stdout], [], [], limit)[0]:
            line = p.stdout.readline()
        t1 = time.perf_counter()
        hwm = _hwm(p.pid)
    finally:
        p.kill()
        p.wait()
    if line.strip():
        return t1 - t0, hwm
    errf.seek(0)
    err = [ln.strip() for ln in errf.read().splitlines() if ln.strip()]
    return None, (err[0] if err else f"no output in {limit:.0f} s")[:100]


def median_ready(cmd: list, runs: int, cold: bool = False, env: dict | None = None) -> str:
    """``"0.045 s, 21.3 MiB"`` (each run a fresh process; ``cold``: each with an empty compile
    cache), or why it could not run."""
    samples = []
    for _ in range(runs):
        cache = tempfile.mkdtemp(prefix="bpfkit-bench-") if cold else None
        run_env = dict(env or os.environ, BPFKIT_CACHE_DIR=cache) if cache else env
        try:
            samples.append(ready_once(cmd, run_env))
        finally:
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
        if samples[-1][0] is None:
            break
    return summary(samples)


def summary(samples: list) -> str:
    """The median time and RSS of ``ready_once`` results, or the first failure's reason."""
    for t, why in samples:
        if t is None:
            return f"fails: {why}"
    return (f"{statistics.median(t for t, _ in samples):.3f} s, "
            f"{statistics.median(h for _, h in samples) / 1024:.1f} MiB")


def interleaved(cmds: dict, runs: int) -> dict:
    """``{key: summary}`` of ``runs`` runs of each command, taken in rounds (each command once
    per round): the machine's drift (a VM's neighbours) falls on every tool alike, not on the few
    measured while it lasts. A command that fails is dropped after its first failure."""
    samples: dict = {k: [] for k in cmds}
    for _ in range(runs):
        for k, cmd in cmds.items():
            if samples[k] and samples[k][-1][0] is None:
                continue
            samples[k].append(ready_once(cmd))
    return {k: summary(v) for k, v in samples.items()}


def tools() -> list:
    from bpfkit.tools import names

    return names()


def probe_args(name: str) -> list:
    """What a generic tool (funccount, trace, ...) needs to run: the probe the tests give it, a
    syscall's tracepoint or function (tests/test_tools.py); nothing for the others."""
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    from tests.test_tools import REQUIRED_ARGS

    return REQUIRED_ARGS.get(name, [])


#: Tools whose first line of output comes at the end of an interval, not once attached: their
#: "ready" cannot be seen from outside.
SILENT_UNTIL_INTERVAL = {"argdist": "n/a: prints nothing before its first interval, as BCC's"}


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (at least 5)")
    ap.add_argument("tool", nargs="*", help="tools to measure (default: all)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    runs = max(5, args.runs)
    names = args.tool or tools()
    rows = []
    warm_cmds: dict = {}
    for name in names:
        if name in SILENT_UNTIL_INTERVAL:
            continue
        warm_cmds[("bpfkit", name)] = [*_bpfkit(), name, *probe_args(name)]
        ready_once(warm_cmds[("bpfkit", name)])  # warms the cache (and the page cache)
        libbpf = f"/usr/sbin/{name}"
        if os.path.exists(libbpf):  # the same probe for libbpf-tools' generic tool (funclatency FUNCTION)
            warm_cmds[("libbpf", name)] = ["stdbuf", "-oL", libbpf, *probe_args(name)]
    # The warm figures (bpfkit's and libbpf-tools') in rounds across all tools; the cold ones
    # and bpftrace's (0.1-0.4 s each) tool by tool after.
    warm = interleaved(warm_cmds, runs)
    for name in names:
        if name in SILENT_UNTIL_INTERVAL:
            rows.append((name, SILENT_UNTIL_INTERVAL[name], "", "", ""))
            continue
        ours = warm[("bpfkit", name)]
        cold = median_ready(warm_cmds[("bpfkit", name)], max(3, runs // 2), cold=True) if not ours.startswith("fails") else ""
        lt = warm.get(("libbpf", name), "")
        bt = f"/usr/sbin/{name}.bt"
        bpft = median_ready([bt], max(3, runs // 2)) if os.path.exists(bt) and shutil.which("bpftrace") else ""
        rows.append((name, ours, cold, lt, bpft))
        print(f"{name}: warm {ours}; cold {cold}; libbpf-tools {lt}; bpftrace {bpft}", file=sys.stderr)
    when = (f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}; median of {runs} runs (cold: {max(3, runs // 2)}; the warm "
            "ones, bpfkit's and libbpf-tools', in rounds across all tools), "
            "exec to the first line of output, and peak RSS then (`bench/tools.py`; the generic tools "
            "with the probe the tests give them, a syscall's tracepoint or function).")
    lines = [when, "", "| tool | bpfkit warm | bpfkit cold (compiles) | libbpf-tools | bpftrace |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.tool:
        (HERE / "results-tools.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
