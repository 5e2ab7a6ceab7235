#!/usr/bin/env python3
"""bpfkit's benchmarks, side by side with BCC, libbpf-tools and bpftrace where installed.

Run as root: `make bench` (or `.venv/bin/python bench/run.py [--runs N]`). Each figure is the median
of N runs, each in a fresh process. Results are printed as a Markdown table and written to
bench/results.md.

  cold compile   bpfkit: `_native.compile()` of a small probe into an empty cache (fresh process,
                 so the kernel BTF is read and parsed too). BCC: `BPF(text=...)` of the same probe
                 (BCC has no cache: every start is a cold compile).
  warm start     bpfkit: `BPF(text=...)` with the object already cached (load + attach included).
  whole process  wall time of `python -c 'import ...; BPF(text=...)'`, interpreter start included.
  first event    opensnoop from exec to the first output line showing a file a workload opens
                 every millisecond.
  peak RSS       VmHWM of the opensnoop process once it has printed its first event.
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
VENV_PY = sys.executable
SYS_PY = "/usr/bin/python3"

PROBE = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""

BCC_PROBE = r"""
BPF_HASH(counts, u32, u64, 10240);
TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""


def bcc_env() -> dict:
    """BCC compiles against kernel headers, and this kernel ships none (no linux-headers package, no
    CONFIG_IKHEADERS): BCC cannot run here as installed. To time it anyway, point it at Debian's
    linux-headers-amd64 (another kernel version; fine for these probes, which only need the
    headers to parse), merged into the source-tree layout BCC expects."""
    env = dict(os.environ)
    if os.path.exists(f"/lib/modules/{os.uname().release}/build"):
        return env
    tree = Path("/var/tmp/bpfkit-bench-bcc-ksrc")
    if not (tree / "include/linux/kconfig.h").exists():
        common = sorted(Path("/usr/src").glob("linux-headers-*-common"))
        arch = sorted(Path("/usr/src").glob("linux-headers-*-amd64"))
        if not common or not arch:
            return env
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        subprocess.run(["cp", "-rs", f"{common[-1]}/.", str(tree)], check=True)
        subprocess.run(["cp", "-rsf", f"{arch[-1]}/.", str(tree)], check=True)
    env["BCC_KERNEL_SOURCE"] = str(tree)
    return env


def have_bcc() -> bool:
    return os.path.exists(SYS_PY) and subprocess.run([SYS_PY, "-c", "import bcc"], capture_output=True).returncode == 0


HWM = ("\nprint([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])")


def timed_child(py: str, code: str, env: dict | None = None, rss: list | None = None) -> float:
    """Runs code that prints seconds (then, appended here, its peak RSS in KiB); returns the seconds."""
    r = subprocess.run([py, "-c", code + HWM], capture_output=True, text=True, env=env, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    out = r.stdout.strip().splitlines()
    if rss is not None:
        rss.append(int(out[-1]))
    return float(out[-2])


def wall(cmd: list, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=120)
    return time.perf_counter() - t


def med(xs: list) -> float:
    return statistics.median(xs)


def bench_compile(runs: int) -> dict:
    res: dict = {}
    cold, cold_bpf, warm, proc_warm, rss = [], [], [], [], []
    for i in range(runs):
        d = tempfile.mkdtemp(prefix="bpfkit-bench-")
        try:
            cold.append(timed_child(VENV_PY, (
                "import time, sys\nfrom bpfkit import _native\n"
                f"src = {PROBE!r}\nt = time.perf_counter()\n"
                f"_native.compile(src + '// run {i}\\n', cache_dir={d + '/c'!r})\nprint(time.perf_counter() - t)")))
            e = dict(os.environ, BPFKIT_CACHE_DIR=d + "/b")
            code = (f"import time\nfrom bpfkit import BPF\nsrc = {PROBE!r}\nt = time.perf_counter()\n"
                    "b = BPF(text=src)\nprint(time.perf_counter() - t)\nb.close()")
            cold_bpf.append(timed_child(VENV_PY, code, e))
            warm.append(timed_child(VENV_PY, code, e, rss))
            proc_warm.append(wall([VENV_PY, "-c", f"from bpfkit import BPF\nBPF(text={PROBE!r}).close()"], e))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    res["bpfkit"] = {"cold compile": med(cold), "cold BPF()": med(cold_bpf), "warm BPF()": med(warm),
                     "whole process (warm)": med(proc_warm), "peak RSS, MiB": med(rss) / 1024}
    if have_bcc():
        bcc, bcc_proc, bcc_rss = [], [], []
        code = (f"import time\nfrom bcc import BPF\nsrc = {BCC_PROBE!r}\nt = time.perf_counter()\n"
                "b = BPF(text=src)\nprint(time.perf_counter() - t)\nb.cleanup()")
        env = bcc_env()
        for _ in range(runs):
            bcc.append(timed_child(SYS_PY, code, env, bcc_rss))
            bcc_proc.append(wall([SYS_PY, "-c", f"from bcc import BPF\nBPF(text={BCC_PROBE!r}).cleanup()"], env))
        res["BCC"] = {"cold compile": med(bcc), "cold BPF()": med(bcc), "warm BPF()": med(bcc),
                      "whole process (warm)": med(bcc_proc), "peak RSS, MiB": med(bcc_rss) / 1024}
    return res


def first_event(cmd: list, runs: int, env: dict | None = None, fresh_cache: bool = False) -> tuple:
    """Median seconds from exec to the first output line naming the marker, and peak RSS (KiB)."""
    times, rss = [], []
    failure = ""
    for _ in range(runs):
        marker = tempfile.NamedTemporaryFile(prefix="bpfkit-bench-marker-", delete=False)
        marker.close()
        opener = subprocess.Popen([sys.executable, "-c",
                                   f"import time\nwhile True:\n    open({marker.name!r}).close()\n    time.sleep(0.001)"])
        try:
            t0 = time.perf_counter()
            errf = tempfile.TemporaryFile(mode="w+")
            if fresh_cache:
                env = dict(env or os.environ, BPFKIT_CACHE_DIR=tempfile.mkdtemp(prefix="bpfkit-bench-cache-"))
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env)
            assert p.stdout is not None
            found = False
            deadline = t0 + 60
            while time.perf_counter() < deadline:
                line = p.stdout.readline()
                if not line:
                    break
                if os.path.basename(marker.name) in line:
                    found = True
                    break
            t1 = time.perf_counter()
            hwm = 0
            try:
                # The process tree's largest member (BCC's tools run under a python interpreter).
                for pid in [p.pid] + _children(p.pid):
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                hwm = max(hwm, int(line.split()[1]))
            except OSError:
                pass
            p.kill()
            p.wait()
            if fresh_cache and env:
                shutil.rmtree(env["BPFKIT_CACHE_DIR"], ignore_errors=True)
            if found:
                times.append(t1 - t0)
                rss.append(hwm)
            else:
                errf.seek(0)
                err = [ln.strip() for ln in errf.read().splitlines() if ln.strip()]
                failure = err[-1] if err else "no event seen"
        finally:
            opener.kill()
            opener.wait()
            os.unlink(marker.name)
    if not times:
        return ("fails here: " + failure[:120], None)
    return med(times), med(rss)


def _children(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def bench_opensnoop(runs: int) -> dict:
    res = {}
    bpfkit = shutil.which("bpfkit", path=os.path.dirname(VENV_PY)) or "bpfkit"
    res["bpfkit opensnoop (empty cache)"] = first_event([bpfkit, "opensnoop"], runs, fresh_cache=True)
    res["bpfkit opensnoop (cached)"] = first_event([bpfkit, "opensnoop"], runs)
    if os.path.exists("/usr/sbin/opensnoop-bpfcc"):
        res["BCC opensnoop-bpfcc"] = first_event(["/usr/sbin/opensnoop-bpfcc"], runs, dict(bcc_env(), PYTHONUNBUFFERED="1"))
    if os.path.exists("/usr/sbin/opensnoop"):
        res["libbpf-tools opensnoop"] = first_event(["stdbuf", "-oL", "/usr/sbin/opensnoop"], runs)
    if shutil.which("bpftrace"):
        res["bpftrace one-liner"] = first_event(
            ["bpftrace", "-e", 'tracepoint:syscalls:sys_enter_openat { printf("%d %s\\n", pid, str(args->filename)); }'],
            runs)
    return res


def bench_args(doc: str | None) -> argparse.Namespace | None:
    """A benchmark's command line (``--runs N``, default 7); None, having said why, when not
    run as root."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return None
    return args


def main() -> int:
    args = bench_args(__doc__)
    if args is None:
        return 1
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
             f"median of {args.runs} runs (`make bench`).", ""]
    comp = bench_compile(args.runs)
    lines += ["| start-up (seconds) | " + " | ".join(comp) + " |", "|---|" + "---:|" * len(comp)]
    for row in next(iter(comp.values())):
        fmt = "{:.1f}" if "MiB" in row else "{:.3f}"
        lines.append(f"| {row} | " + " | ".join(fmt.format(comp[k][row]) for k in comp) + " |")
    lines.append("")
    osn = bench_opensnoop(max(3, args.runs // 2))
    lines += ["| opensnoop | exec to first event (s) | peak RSS (MiB) |", "|---|---:|---:|"]
    for k, (t, rss) in osn.items():
        if rss is None:
            lines.append(f"| {k} | {t} | |")
        else:
            lines.append(f"| {k} | {t:.3f} | {rss / 1024:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
