#!/usr/bin/env python3
"""Event and map throughput, bpfkit beside BCC (Debian's python3-bpfcc) in one run.

    sudo .venv/bin/python bench/events.py          (also run by `make bench`)

  callbacks   a burst of K events (a 32-byte record per getppid() of this process) is put in a
              perf buffer big enough to lose nothing; then the time to hand every record to a
              Python callback that counts it is measured. Rate = K / drain time, zero loss checked.
  batches     a C program calls getppid() in a tight loop on CPU 0; a tracepoint submits a 32-byte
              record per call into a 4 MiB ring buffer; this process reads batches with read() on
              CPU 1 at the same time. Reports the producer's rate and what was lost.
  hash->numpy a 1,000,000-entry hash map read whole: bpfkit's to_numpy() (batch lookups) against
              BCC's items() loop.
  mmap        to_numpy() of BPF_F_MMAPABLE arrays of growing size (a view: constant time).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import SYS_PY, bcc_env, have_bcc  # noqa: E402

K = 200_000

BPFKIT_PERF = r"""
struct rec { u64 seq, ts, a, b; };
const volatile u32 targ = 0;
u64 n = 0;
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } pb SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int emit(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != targ)
        return 0;
    struct rec r = { .seq = __sync_fetch_and_add(&n, 1), .ts = bpf_ktime_get_ns() };
    bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &r, sizeof(r));
    return 0;
}
"""

BPFKIT_RING = r"""
struct rec { u64 seq, ts, a, b; };
const volatile u32 targ = 0;
u64 n = 0, dropped = 0;
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int emit(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != targ)
        return 0;
    struct rec r = { .seq = __sync_fetch_and_add(&n, 1), .ts = bpf_ktime_get_ns() };
    if (bpf_ringbuf_output(&rb, &r, sizeof(r), 0))
        __sync_fetch_and_add(&dropped, 1);
    return 0;
}
"""

BCC_PERF = r"""
struct rec { u64 seq, ts, a, b; };
BPF_PERF_OUTPUT(pb);
BPF_ARRAY(cnt, u64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct rec r = {};
    int z = 0;
    u64 *c = cnt.lookup(&z);
    if (c) r.seq = __sync_fetch_and_add(c, 1);
    r.ts = bpf_ktime_get_ns();
    pb.perf_submit(args, &r, sizeof(r));
    return 0;
}
"""

CALLBACK_CHILD_BPFKIT = r"""
import os, sys, time
os.sched_setaffinity(0, {0})
from bpfkit import BPF
K = int(sys.argv[1]); kind = sys.argv[2]
src = sys.argv[3]
b = BPF(text=src, consts={"targ": os.getpid()}, cflags=["-DRB_SIZE=%d" % (1 << 25)])
got = [0]
def cb(a, data, size):
    got[0] += 1
if kind == "perf":
    b["pb"].open_perf_buffer(cb, page_cnt=4096)
    poll = b.perf_buffer_poll
else:
    b["rb"].open_ring_buffer(cb)
    poll = b.ring_buffer_poll
for _ in range(K):
    os.getppid()
t = time.perf_counter()
while got[0] < K:
    if not poll(1000):
        break
dt = time.perf_counter() - t
lost = b["pb"].lost if kind == "perf" else b.get_global("dropped")
print(got[0], lost, dt)
"""

CALLBACK_CHILD_BCC = r"""
import os, sys, time
os.sched_setaffinity(0, {0})
from bcc import BPF
K = int(sys.argv[1]); src = sys.argv[2].replace("TARGET", str(os.getpid()))
b = BPF(text=src)
got = [0]
lost = [0]
def cb(cpu, data, size):
    got[0] += 1
def lcb(n):
    lost[0] += n
b["pb"].open_perf_buffer(cb, page_cnt=4096, lost_cb=lcb)
for _ in range(K):
    os.getppid()
t = time.perf_counter()
while got[0] < K:
    before = got[0]
    b.perf_buffer_poll(timeout=1000)
    if got[0] == before:
        break
dt = time.perf_counter() - t
print(got[0], lost[0], dt)
"""


def run_child(py: str, code: str, *args: str, env: dict | None = None) -> list:
    r = subprocess.run([py, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return r.stdout.split()


def bench_callbacks(runs: int) -> list:
    rows = []
    for label, py, code, args, env in [
        ("bpfkit perf buffer", sys.executable, CALLBACK_CHILD_BPFKIT, (str(K), "perf", BPFKIT_PERF), None),
        ("bpfkit ring buffer", sys.executable, CALLBACK_CHILD_BPFKIT, (str(K), "ring", BPFKIT_RING.replace("RB_SIZE", "(1 << 25)")), None),
    ] + ([("BCC perf buffer", SYS_PY, CALLBACK_CHILD_BCC, (str(K), BCC_PERF), bcc_env())] if have_bcc() else []):
        rates, lost_total = [], 0
        for _ in range(runs):
            got, lost, dt = run_child(py, code, *args, env=env)
            if int(got) != K or int(float(lost)) != 0:
                raise RuntimeError(f"{label}: got {got} of {K}, lost {lost}")
            rates.append(K / float(dt))
            lost_total += int(float(lost))
        rows.append((label, statistics.median(rates), lost_total))
    return rows


CONSUMER_BPFKIT = r"""
import os, sys, time
os.sched_setaffinity(0, {1})
from bpfkit import BPF
pid, n = int(sys.argv[1]), int(sys.argv[2])
b = BPF(text=sys.argv[3], consts={"targ": pid})
got = [0]
lost = [0]
def cb(cpu, data, size):
    got[0] += 1
b["pb"].open_perf_buffer(cb, page_cnt=64, lost_cb=lambda k: lost.__setitem__(0, lost[0] + k))
print("ready", flush=True)
idle = None
while got[0] + lost[0] < n:
    if b.perf_buffer_poll(timeout=100) == 0:
        idle = idle or time.monotonic()
        if time.monotonic() - idle > 2:
            break
    else:
        idle = None
print(got[0], lost[0], flush=True)
"""

CONSUMER_BCC = r"""
import os, sys, time
os.sched_setaffinity(0, {1})
from bcc import BPF
pid, n = int(sys.argv[1]), int(sys.argv[2])
b = BPF(text=sys.argv[3].replace("TARGET", str(pid)))
got = [0]
lost = [0]
def cb(cpu, data, size):
    got[0] += 1
b["pb"].open_perf_buffer(cb, page_cnt=64, lost_cb=lambda k: lost.__setitem__(0, lost[0] + k))
print("ready", flush=True)
idle = None
while got[0] + lost[0] < n:
    before = got[0] + lost[0]
    b.perf_buffer_poll(timeout=100)
    if got[0] + lost[0] == before:
        idle = idle or time.monotonic()
        if time.monotonic() - idle > 2:
            break
    else:
        idle = None
print(got[0], lost[0], flush=True)
"""


CONSUMER_BPFKIT_RING = CONSUMER_BPFKIT.replace(
    'b["pb"].open_perf_buffer(cb, page_cnt=64, lost_cb=lambda k: lost.__setitem__(0, lost[0] + k))',
    'b["rb"].open_ring_buffer(cb)').replace("b.perf_buffer_poll(", "b.ring_buffer_poll(").replace(
    'print(got[0], lost[0], flush=True)', 'print(got[0], b.get_global("dropped"), flush=True)').replace(
    'consts={"targ": pid})', 'consts={"targ": pid}, cflags=["-DRB_SIZE=%d" % (4 << 20)])').replace(
    "while got[0] + lost[0] < n:", "while got[0] + b.get_global('dropped') < n:")

BCC_RING = r"""
struct rec { u64 seq, ts, a, b; };
BPF_RINGBUF_OUTPUT(rb, 1 << 10);   /* pages: 4 MiB */
BPF_ARRAY(cnt, u64, 2);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct rec r = {};
    int z = 0, d = 1;
    u64 *c = cnt.lookup(&z);
    if (c) r.seq = __sync_fetch_and_add(c, 1);
    r.ts = bpf_ktime_get_ns();
    if (rb.ringbuf_output(&r, sizeof(r), 0)) {
        u64 *x = cnt.lookup(&d);
        if (x) __sync_fetch_and_add(x, 1);
    }
    return 0;
}
"""

CONSUMER_BCC_RING = r"""
import os, sys, time, ctypes as ct
os.sched_setaffinity(0, {1})
from bcc import BPF
pid, n = int(sys.argv[1]), int(sys.argv[2])
b = BPF(text=sys.argv[3].replace("TARGET", str(pid)))
got = [0]
def cb(ctx, data, size):
    got[0] += 1
b["rb"].open_ring_buffer(cb)
dropped = lambda: b["cnt"][ct.c_int(1)].value
print("ready", flush=True)
idle = None
while got[0] + dropped() < n:
    before = got[0]
    b.ring_buffer_poll(timeout=100)
    if got[0] == before:
        idle = idle or time.monotonic()
        if time.monotonic() - idle > 2:
            break
    else:
        idle = None
print(got[0], dropped(), flush=True)
"""


def _producer_exe() -> Path:
    exe = Path(tempfile.gettempdir()) / "bpfkit-bench-producer"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "producer.c")], check=True)
    return exe


def concurrent_run(py: str, code: str, src: str, n: int, rate: float, env: dict | None = None) -> tuple:
    """Producer on CPU 0 at `rate` (0: flat out), consumer with callbacks on CPU 1. Returns
    (achieved producer rate, received, lost)."""
    exe = _producer_exe()
    prod = subprocess.Popen(["taskset", "-c", "0", str(exe), str(n), str(rate)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    cons = subprocess.Popen([py, "-c", code, str(prod.pid), str(n), src], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert cons.stdout is not None and prod.stdin is not None
        line = cons.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"consumer failed: {line} {cons.stderr.read() if cons.stderr else ''}")
        prod.stdin.write("go\n")
        prod.stdin.flush()
        achieved = float(prod.stdout.readline().strip())  # type: ignore[union-attr]
        prod.stdin.close()
        prod.wait(timeout=600)
        out, err = cons.communicate(timeout=600)
        got, lost = (int(x) for x in out.split())
    finally:
        for p in (prod, cons):
            if p.poll() is None:
                p.kill()
    return achieved, got, lost


def bench_zero_loss() -> list:
    """The highest producer rate each consumer keeps up with, losing nothing."""
    we32 = ("page_cnt=64,", "page_cnt=64, wakeup_events=32,")
    impls = [("bpfkit perf buffer callbacks", sys.executable, CONSUMER_BPFKIT, BPFKIT_PERF, None),
             ("bpfkit perf buffer callbacks, wakeup_events=32", sys.executable, CONSUMER_BPFKIT.replace(*we32),
              BPFKIT_PERF, None),
             ("bpfkit ring buffer callbacks", sys.executable, CONSUMER_BPFKIT_RING,
              BPFKIT_RING.replace("RB_SIZE", str(4 << 20)), None)]
    if have_bcc():
        impls.append(("BCC perf buffer callbacks", SYS_PY, CONSUMER_BCC, BCC_PERF, bcc_env()))
        impls.append(("BCC perf buffer callbacks, wakeup_events=32", SYS_PY, CONSUMER_BCC.replace(*we32), BCC_PERF,
                      bcc_env()))
        impls.append(("BCC ring buffer callbacks", SYS_PY, CONSUMER_BCC_RING, BCC_RING, bcc_env()))
    rows = []
    for label, py, code, src, env in impls:
        best, trace = 0.0, []
        for rate in (100_000, 400_000, 1_600_000, 0):
            n = 2_000_000
            achieved, got, lost = concurrent_run(py, code, src, n, rate, env)
            ok = lost == 0 and got == n
            trace.append(f"{achieved / 1e6:.2f}M/s: {'ok' if ok else f'lost {lost:,}'}")
            if ok:
                best = max(best, achieved)
        rows.append((label, best, "; ".join(trace)))
    return rows


def bench_batches(n: int = 5_000_000) -> dict:
    from bpfkit import BPF

    exe = _producer_exe()
    p = subprocess.Popen(["taskset", "-c", "0", str(exe), str(n)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    os.sched_setaffinity(0, {1})
    try:
        with BPF(text=BPFKIT_RING, consts={"targ": p.pid}, cflags=[f"-DRB_SIZE={4 << 20}"]) as b:
            t = b["rb"]
            t.open()
            received = 0
            last_seq = -1
            in_order = True
            t0 = time.perf_counter()
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.close()
            while True:
                batch = t.read(max=1 << 16, timeout=10)
                if len(batch):
                    received += len(batch)
                    in_order &= bool(batch["seq"][0] > last_seq)
                    last_seq = int(batch["seq"][-1])
                elif p.poll() is not None and t.read(max=1 << 16, timeout=0).size == 0:
                    break
            t_prod = time.perf_counter() - t0
            produced, dropped = b.get_global("n"), b.get_global("dropped")
    finally:
        p.wait()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return {"produced": produced, "received": received, "dropped": dropped,
            "rate": produced / t_prod, "in_order": in_order}


HASH_BPFKIT = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1000000); __type(key, u32); __type(value, u64); } h SEC(".maps");
"""
HASH_BCC = "BPF_HASH(h, u32, u64, 1000000);"

HASH_CHILD_BCC = r"""
import sys, time, ctypes as ct
from bcc import BPF
b = BPF(text=sys.argv[1])
h = b["h"]
keys = (h.Key * 100000)(); vals = (h.Leaf * 100000)()
for base in range(0, 1000000, 100000):
    for i in range(100000):
        keys[i] = base + i; vals[i] = (base + i) * 3
    h.items_update_batch(keys, vals)
t = time.perf_counter()
items = [(k.value, v.value) for k, v in h.items()]
dt = time.perf_counter() - t
assert len(items) == 1000000
print(dt)
"""


def bench_hash() -> dict:
    import numpy as np
    from bpfkit import BPF

    res = {}
    with BPF(text=HASH_BPFKIT) as b:
        h = b["h"]
        # Fill through the raw interface in chunks of packed bytes (the fill is not what is timed).
        for base in range(0, 1_000_000, 100_000):
            ks = np.arange(base, base + 100_000, dtype=np.uint32)
            for k in ks.tolist():
                h.update_raw(k.to_bytes(4, "little"), (k * 3).to_bytes(8, "little"))
        times = []
        for _ in range(3):
            t = time.perf_counter()
            keys, vals = h.to_numpy()
            times.append(time.perf_counter() - t)
        assert len(keys) == 1_000_000 and (vals == keys.astype(np.uint64) * 3).all()
        res["bpfkit to_numpy()"] = statistics.median(times)
        t = time.perf_counter()
        items = h.items()
        res["bpfkit items()"] = time.perf_counter() - t
        assert len(items) == 1_000_000
    if have_bcc():
        res["BCC items()"] = float(run_child(SYS_PY, HASH_CHILD_BCC, HASH_BCC, env=bcc_env())[-1])
    return res


MMAP_SRC = r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, N); __uint(map_flags, BPF_F_MMAPABLE);
         __type(key, u32); __type(value, u64); } a SEC(".maps");
"""


def bench_mmap() -> dict:
    from bpfkit import BPF

    res = {}
    for n in (4096, 1 << 20, 1 << 24):
        with BPF(text=MMAP_SRC, cflags=[f"-DN={n}"]) as b:
            t = time.perf_counter()
            v = b["a"].to_numpy()
            first = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(100):
                v2 = b["a"].to_numpy()
            again = (time.perf_counter() - t) / 100
            assert v.shape == (n,) and v2 is v
            res[n] = (first, again)
    return res


def main() -> int:
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    out = ["| per-event Python callbacks, producer and consumer concurrent | highest rate with zero loss (events/s) | runs (producer rate: outcome) |",
           "|---|---:|---|"]
    for label, best, trace in bench_zero_loss():
        out.append(f"| {label} | {best:,.0f} | {trace} |")
    out += ["", "| draining a burst already in the buffer into Python callbacks | events/s | lost |", "|---|---:|---:|"]
    for label, rate, lost in bench_callbacks(3):
        out.append(f"| {label} | {rate:,.0f} | {lost} |")
    bt = bench_batches()
    out += ["", "| batches: ring buffer 4 MiB, 32-byte records, producer on its own core | |", "|---|---:|",
            f"| producer rate (events/s) | {bt['rate']:,.0f} |", f"| produced | {bt['produced']:,} |",
            f"| received by read() | {bt['received']:,} |", f"| lost | {bt['dropped']:,} |"]
    hs = bench_hash()
    out += ["", "| 1,000,000-entry hash map, read whole | seconds |", "|---|---:|"]
    out += [f"| {k} | {v:.3f} |" for k, v in hs.items()]
    mm = bench_mmap()
    out += ["", "| BPF_F_MMAPABLE array to_numpy() | first call (s) | later calls (s) |", "|---|---:|---:|"]
    out += [f"| {n:,} entries | {a:.6f} | {b:.7f} |" for n, (a, b) in mm.items()]
    text = "\n".join(out) + "\n"
    print(text)
    (HERE / "results-events.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
