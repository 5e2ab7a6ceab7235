"""Attach-time benchmark: how long attaching to many hooks at once takes.

* uprobes by regex on a library of N generated functions: bpfkit with one link per function (a
  ``SEC("uprobe")`` program, as BCC does it), bpfkit with one multi-uprobe link (a
  ``SEC("uprobe.multi")`` program), and BCC's ``attach_uprobe(sym_re=)``.
* tracepoints by regex (``syscalls:sys_enter_.*``): bpfkit and BCC's ``attach_tracepoint(tp_re=)``.

Each figure is the median of several runs of attach + close in a fresh process (compiles cached,
so the time is the attaching). Results go to bench/results-attach.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import SYS_PY, bcc_env, have_bcc  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
NFUNCS = 500
TP_RE = "syscalls:sys_enter_.*"

BPFKIT_UPROBES = r"""
import sys, time
from bpfkit import BPF
src = '''
u64 n = 0;
SEC("uprobe") int one(struct pt_regs *ctx) { __sync_fetch_and_add(&n, 1); return 0; }
SEC("uprobe.multi") int multi(struct pt_regs *ctx) { __sync_fetch_and_add(&n, 1); return 0; }
'''
b = BPF(text=src)
t = time.perf_counter()
b.attach_uprobe(name=sys.argv[1], sym_re="bkf_", fn_name=sys.argv[2])
assert b.num_open_uprobes() == int(sys.argv[3]), b.num_open_uprobes()
b.close()
print(time.perf_counter() - t)
"""

BCC_UPROBES = r"""
import sys, time
from bcc import BPF
b = BPF(text='int one(void *ctx) { return 0; }')
t = time.perf_counter()
b.attach_uprobe(name=sys.argv[1], sym_re="bkf_", fn_name="one")
assert b.num_open_uprobes() == int(sys.argv[2]), b.num_open_uprobes()
b.cleanup()
print(time.perf_counter() - t)
"""

BPFKIT_TPS = r"""
import sys, time
from bpfkit import BPF
b = BPF(text='SEC("tracepoint") int t(void *ctx) { return 0; }')
t = time.perf_counter()
b.attach_tracepoint(tp_re=sys.argv[1], fn_name="t")
n = len(b.links())
b.close()
print(time.perf_counter() - t)
print(n)
"""

BCC_TPS = r"""
import sys, time
from bcc import BPF
b = BPF(text='int t(void *ctx) { return 0; }')
t = time.perf_counter()
b.attach_tracepoint(tp_re=sys.argv[1], fn_name="t")
n = len(b.tracepoint_fds)
b.cleanup()
print(time.perf_counter() - t)
print(n)
"""


def library(d: Path) -> Path:
    src = d / "many.c"
    src.write_text("".join(f"__attribute__((noinline)) int bkf_{i}(int x) {{ return x + {i}; }}\n"
                           for i in range(NFUNCS)))
    so = d / "libbkmany.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    return so


def run(py: str, code: str, *args: str, env: dict | None = None) -> list:
    r = subprocess.run([py, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return r.stdout.split()


def med(py: str, code: str, *args: str, env: dict | None = None) -> tuple:
    run(py, code, *args, env=env)  # warm the compile cache
    outs = [run(py, code, *args, env=env) for _ in range(RUNS)]
    return statistics.median(float(o[0]) for o in outs), outs[0][1:] if len(outs[0]) > 1 else []


def main() -> int:
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as d:
        so = str(library(Path(d)))
        one, _ = med(py, BPFKIT_UPROBES, so, "one", str(NFUNCS))
        multi, _ = med(py, BPFKIT_UPROBES, so, "multi", "1")
        rows.append((f"uprobes on {NFUNCS} functions (sym_re)", "bpfkit, one link each", one))
        rows.append((f"uprobes on {NFUNCS} functions (sym_re)", "bpfkit, one uprobe.multi link", multi))
        if have_bcc():
            try:
                bcc, _ = med(SYS_PY, BCC_UPROBES, so, str(NFUNCS), env=bcc_env())
                rows.append((f"uprobes on {NFUNCS} functions (sym_re)", "BCC", bcc))
            except RuntimeError as e:
                rows.append((f"uprobes on {NFUNCS} functions (sym_re)", f"BCC fails: {str(e).splitlines()[-1]}", None))
    tp, n = med(py, BPFKIT_TPS, TP_RE)
    label = f"tracepoints `{TP_RE}` ({n[0]})"
    rows.append((label, "bpfkit", tp))
    if have_bcc():
        try:
            bcc, _ = med(SYS_PY, BCC_TPS, TP_RE, env=bcc_env())
            rows.append((label, "BCC", bcc))
        except RuntimeError as e:
            rows.append((label, f"BCC fails: {str(e).splitlines()[-1]}", None))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
             f"median of {RUNS} runs of attach + close (`make bench`, bench/attach.py).", "",
             "| attaching | how | seconds |", "|---|---|---:|"]
    for what, how, secs in rows:
        lines.append(f"| {what} | {how} | {'' if secs is None else f'{secs:.3f}'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "results-attach.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
