#!/usr/bin/env python3
"""Soak checks: what held under issue 8's fault campaign, and must keep holding. Not run by
``make test`` (it takes minutes at its defaults and hours as a campaign).

    sudo .venv/bin/python bench/soak.py                   all three, small (about 1-2 minutes)
    sudo .venv/bin/python bench/soak.py cycles 10000      the campaign's create/attach/close run
    sudo .venv/bin/python bench/soak.py kill9 50          50 SIGKILLed owners
    sudo .venv/bin/python bench/soak.py events 300        a 5-minute flat-out event soak
    sudo .venv/bin/python bench/soak.py events 300 --consumer read

  cycles N   N times: BPF() of a small object, a tracepoint attached on load, a uprobe on libc's
             getpid() (this process only), XDP (native and generic mode, alternately) and a tcx
             link on the near end of a veth pair whose far end is in a fresh network namespace
             (the setup of tests/test_net.py); each attachment is seen to fire or to be listed,
             then close(). Afterwards this process's bpf and perf fds, and the kernel's program,
             map and link ids, must be back where they started (tests/conftest.py's snapshot).
  kill9 N    N times: a child attaches a tracepoint, a uprobe on libc's getpid() in every process,
             XDP and tcx on the veth, and is SIGKILLed at a random moment (while loading,
             attaching, or attached). Nothing it made may remain: no program, map or link id, no
             XDP on the interface, no kprobe/uprobe event. (A tc filter in a clsact qdisc, which
             tcx replaces on 6.6+, would stay: it is documented, and not made here.)
  events S   for S seconds a C producer calls getppid() flat out on one CPU; a tracepoint program
             reserves a ring buffer record for each (counting what it produced, and the reserve
             failures and the sum of their sequence numbers), and this process consumes them on
             the other CPU with ``ring_buffer_poll(100)`` callbacks (or ``read()`` batches). At the
             end, produced == received + dropped exactly, and the sequence numbers received plus
             those dropped sum to 0 + 1 + ... + (produced - 1): nothing lost, nothing twice. Every
             poll must also return within about its timeout (at most 2 x 100 ms + 0.5 s).

Each check prints one line, PASS or FAIL with the figures; the exit status is non-zero if any
failed. The id comparisons are machine-wide: run on a machine where nothing else loads BPF at the
same time (next to the test suite: ``flock /tmp/bpfkit-test.lock python bench/soak.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bpfkit import BPF, features  # noqa: E402

from tests.conftest import leaked, snapshot  # noqa: E402
from tests.test_net import VethPair, _run  # noqa: E402

SRC = r"""
struct rec { u64 seq; u64 ts; };
const volatile u32 targ = 0;
u64 produced = 0, dropped = 0, dropped_sum = 0, uprobe_calls = 0;

#ifndef RB_SIZE
#define RB_SIZE (1 << 22)
#endif
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int soak_tp(void *ctx)
{
    struct rec *r;
    u64 seq;

    if ((bpf_get_current_pid_tgid() >> 32) != targ)
        return 0;
    seq = __sync_fetch_and_add(&produced, 1);
    r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
    if (!r) {
        __sync_fetch_and_add(&dropped, 1);
        __sync_fetch_and_add(&dropped_sum, seq);
        return 0;
    }
    r->seq = seq;
    r->ts = bpf_ktime_get_ns();
    bpf_ringbuf_submit(r, 0);
    return 0;
}

SEC("uprobe")
int soak_uprobe(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) == targ)
        __sync_fetch_and_add(&uprobe_calls, 1);
    return 0;
}

SEC("xdp")
int soak_xdp(struct xdp_md *ctx)
{
    return XDP_PASS;
}

SEC("tcx/ingress")
int soak_tcx(struct __sk_buff *skb)
{
    return 0;   /* TCX_PASS */
}
"""

U64 = 2**64


def report(name: str, ok: bool, text: str) -> bool:
    print(f"{name:<7} {'PASS' if ok else 'FAIL'}  {text}", flush=True)
    return ok


def _describe_leak(extra: dict) -> str:
    return "; ".join(f"{k}: {sorted(v)[:8] if isinstance(v, set) else v!r}" for k, v in extra.items())


@contextlib.contextmanager
def veth() -> Iterator[VethPair]:
    """A veth pair: the near end here, the far end in a fresh network namespace (no addresses:
    the soak attaches, it sends nothing)."""
    tag = os.urandom(3).hex()
    ns, host, peer = f"bpfkit-soak-{tag}", f"bs{tag}h", f"bs{tag}p"
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", ns)
        _run("ip", "link", "set", host, "up")
        _run("ip", "-n", ns, "link", "set", peer, "up")
        yield VethPair(ns, host, peer, "", "")
    finally:
        _run("ip", "netns", "del", ns, check=False)
        if os.path.exists(f"/sys/class/net/{host}"):
            _run("ip", "link", "del", host, check=False)


def _trace_events() -> set:
    out = set()
    for f in ("kprobe_events", "uprobe_events"):
        try:
            with open(f"/sys/kernel/tracing/{f}") as fh:
                out |= {line.strip() for line in fh if line.strip()}
        except OSError:
            pass
    return out


# -- cycles --------------------------------------------------------------------------------------

def cycles(n: int) -> bool:
    tcx = features.supported("tcx")
    with veth() as pair:
        small = ["-DRB_SIZE=4096"]  # a ring per cycle: a small one
        BPF(text=SRC, cflags=small, autoattach=False).close()  # compiled (and cached) before the baseline
        before = snapshot()
        misfires = []
        t0 = time.monotonic()
        me = os.getpid()
        for i in range(n):
            with BPF(text=SRC, cflags=small, consts={"targ": me}) as b:  # soak_tp attaches on load
                b.attach_uprobe(name="c", sym="getpid", fn_name="soak_uprobe", pid=me)
                mode = BPF.XDP_FLAGS_DRV_MODE if i % 2 else BPF.XDP_FLAGS_SKB_MODE
                b.attach_xdp(pair.host, "soak_xdp", mode)
                if tcx:
                    b.attach_tc(pair.host, "soak_tcx", direction="ingress", mode="tcx")
                os.getppid()
                os.getpid()
                kinds = sorted(lk.kind for lk in b.links())
                fired = (b.get_global("produced"), b.get_global("uprobe_calls"))
                want = sorted(["tracepoint", "uprobe", "xdp"] + (["tc"] if tcx else []))
                if fired[0] != 1 or fired[1] < 1 or kinds != want:
                    misfires.append(f"cycle {i}: produced {fired[0]}, uprobe calls {fired[1]}, links {kinds}")
            if (i + 1) % 1000 == 0:
                print(f"        {i + 1} cycles, {time.monotonic() - t0:.0f} s", flush=True)
        took = time.monotonic() - t0
        extra = leaked(before, timeout=10)
        xdp_left = " xdp" in pair.link_line()
    what = "tracepoint, uprobe, XDP" + (", tcx" if tcx else " (no tcx: kernel before 6.6)")
    ok = not extra and not misfires and not xdp_left
    text = (f"{n} create/attach/close cycles ({what}) in {took:.1f} s ({n / took:.1f}/s); "
            f"after: {'nothing left' if not extra else 'LEFT ' + _describe_leak(extra)}"
            + (f"; XDP still on {pair.host}" if xdp_left else "")
            + (f"; {len(misfires)} cycles where an attachment did not fire: {misfires[:3]}"
               if misfires else ""))
    return report("cycles", ok, text)


# -- kill -9 -------------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import os, sys, time
    from bpfkit import BPF, features
    src, dev = sys.stdin.read(), sys.argv[1]
    b = BPF(text=src, consts={"targ": os.getpid()})
    print("loaded", flush=True)
    b.attach_uprobe(name="c", sym="getpid", fn_name="soak_uprobe")
    b.attach_xdp(dev, "soak_xdp", BPF.XDP_FLAGS_DRV_MODE)
    if features.supported("tcx"):
        b.attach_tc(dev, "soak_tcx", direction="ingress", mode="tcx")
    print("attached", len(b.links()), flush=True)
    time.sleep(60)
""")


def kill9(rounds: int) -> bool:
    rng = random.Random(9)
    with veth() as pair:
        BPF(text=SRC, autoattach=False).close()
        events = _trace_events()
        failures = []
        stages: dict = {}
        for i in range(rounds):
            before = snapshot()
            p = subprocess.Popen([sys.executable, "-c", CHILD, pair.host], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write(SRC)
            p.stdin.close()
            # Every other round: wait for full attachment; else kill at a random moment of start-up.
            if i % 2 == 0:
                line = p.stdout.readline()
                while line and not line.startswith("attached"):
                    line = p.stdout.readline()
                stage = "attached" if line else "died"
            else:
                time.sleep(rng.uniform(0.0, 1.5))
                stage = "during start-up"
            p.send_signal(signal.SIGKILL)
            p.wait()
            err = p.stderr.read() if p.stderr else ""
            p.stdout.close()
            if p.stderr:
                p.stderr.close()
            if stage == "died":
                failures.append(f"round {i}: the child failed before attaching: {err.strip()[-300:]}")
                continue
            stages[stage] = stages.get(stage, 0) + 1
            extra = leaked(before, timeout=10)
            if " xdp" in pair.link_line():
                extra["xdp"] = pair.host
            if _trace_events() != events:
                extra["trace events"] = _trace_events() - events
            if extra:
                failures.append(f"round {i} (killed {stage}): LEFT {_describe_leak(extra)}")
    counts = ", ".join(f"{v} {k}" for k, v in stages.items())
    text = f"{rounds} owners SIGKILLed ({counts}): "
    text += "nothing left" if not failures else "; ".join(failures[:3])
    return report("kill9", not failures, text)


# -- events --------------------------------------------------------------------------------------

def _producer() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit("events needs a C compiler (gcc) for the producer")
    exe = os.path.join(tempfile.gettempdir(), "bpfkit-soak-producer")
    subprocess.run([cc, "-O2", "-o", exe, str(HERE / "producer.c")], check=True)
    return exe


def events(seconds: float, consumer: str) -> bool:
    exe = _producer()
    ncpu = len(os.sched_getaffinity(0))
    if ncpu >= 2:
        os.sched_setaffinity(0, {1})
    pin = ["taskset", "-c", "0"] if ncpu >= 2 and shutil.which("taskset") else []
    prod = subprocess.Popen([*pin, exe, str(10**15), "0"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    assert prod.stdin is not None
    received = 0
    seqsum = 0

    def count(_ctx: Any, data: Any, _size: int) -> None:
        nonlocal received, seqsum
        received += 1
        seqsum += int.from_bytes(bytes(data)[:8], "little")

    polls: list = []
    try:
        with BPF(text=SRC, consts={"targ": prod.pid}) as b:
            rb = b["rb"]
            if consumer == "callbacks":
                rb.open_ring_buffer(count)
            else:
                rb.open()

            def consume(timeout_ms: int) -> None:
                nonlocal received, seqsum
                t = time.monotonic()
                if consumer == "callbacks":
                    b.ring_buffer_poll(timeout_ms)
                else:
                    batch = rb.read(65536, timeout_ms)
                    received += len(batch)
                    seqsum += int(batch["seq"].sum(dtype="uint64")) if len(batch) else 0
                polls.append(time.monotonic() - t)

            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            prod.stdin.write("go\n")
            prod.stdin.flush()
            t0 = time.monotonic()
            deadline = t0 + seconds
            while time.monotonic() < deadline:
                consume(100)
            prod.kill()
            prod.wait()
            ran = time.monotonic() - t0
            produced, dropped = b.get_global("produced"), b.get_global("dropped")
            last, quiet = -1, time.monotonic()
            while received + dropped < produced and time.monotonic() - quiet < 5:
                consume(100)
                if received != last:
                    last, quiet = received, time.monotonic()
            dropped_sum = b.get_global("dropped_sum")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        if prod.poll() is None:
            prod.kill()
            prod.wait()
    want_sum = (produced * (produced - 1) // 2) % U64
    sums_ok = (seqsum + dropped_sum) % U64 == want_sum
    slow = max(polls, default=0.0)
    counts_ok = produced == received + dropped
    ok = counts_ok and sums_ok and slow <= 0.7 and produced > 0
    text = (f"{ran:.0f} s flat out ({consumer}): produced {produced:,} ({produced / ran:,.0f}/s) "
            f"{'==' if counts_ok else '!='} received {received:,} + dropped {dropped:,}"
            + ("" if counts_ok else f" (difference {produced - received - dropped:+,})")
            + f"; sequence sums {'match' if sums_ok else 'DIFFER'}"
            + f"; slowest {'ring_buffer_poll(100)' if consumer == 'callbacks' else 'read(timeout=100)'} "
            + f"{slow * 1000:.0f} ms over {len(polls):,} calls"
            + f"; peak RSS {rss0 // 1024} -> {rss // 1024} MiB")
    return report("events", ok, text)


def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="check")
    c = sub.add_parser("cycles", help="create/attach/close cycles leave nothing behind")
    c.add_argument("n", type=int, nargs="?", default=200)
    k = sub.add_parser("kill9", help="a SIGKILLed owner leaves nothing behind")
    k.add_argument("rounds", type=int, nargs="?", default=10)
    e = sub.add_parser("events", help="produced == received + dropped under a flat-out producer")
    e.add_argument("seconds", type=float, nargs="?", default=20)
    e.add_argument("--consumer", choices=("callbacks", "read"), default="callbacks")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("soak.py loads BPF programs: run it as root", file=sys.stderr)
        return 1
    if args.check == "cycles":
        results = [cycles(args.n)]
    elif args.check == "kill9":
        results = [kill9(args.rounds)]
    elif args.check == "events":
        results = [events(args.seconds, args.consumer)]
    else:
        results = [cycles(200), kill9(10), events(20, "callbacks")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
