"""Shared fixtures. Every test runs under a leak check: it fails if it leaves a BPF program, map
or link, a bpf fd, a pin under /sys/fs/bpf, or an XDP attachment behind."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bpfkit import _native

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernels: also run inside Debian kernels under qemu (tests/kernels/run)")
    if os.geteuid() != 0:
        raise pytest.UsageError("bpfkit's tests load BPF programs into the running kernel: run them as root")


def _bpf_fds() -> set:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("anon_inode:bpf") or target.startswith("anon_inode:[perf_event]"):
            out.add((fd, target))
    return out


def _pins() -> set:
    if not os.path.ismount("/sys/fs/bpf"):
        return set()
    # The kernel's own preloaded iterators (CONFIG_BPF_PRELOAD) appear with every bpffs mount.
    preload = {"/sys/fs/bpf/", "/sys/fs/bpf/maps.debug", "/sys/fs/bpf/progs.debug"}
    return set(glob.glob("/sys/fs/bpf/**", recursive=True)) - preload


def _xdp_links() -> str:
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return ""
    return "\n".join(line for line in out.splitlines() if " xdp" in line)


def _trace_events() -> set:
    """bpfkit's kprobe events in tracefs (made for kretprobes with maxactive)."""
    try:
        with open("/sys/kernel/tracing/kprobe_events") as f:
            return {line.strip() for line in f if "bpfkit/" in line}
    except OSError:
        return set()


def snapshot() -> dict:
    return {
        "prog": set(_native.kernel_object_ids("prog")),
        "map": set(_native.kernel_object_ids("map")),
        "link": set(_native.kernel_object_ids("link")),
        "fd": _bpf_fds(),
        "pin": _pins(),
        "xdp": _xdp_links(),
        "kprobe_events": _trace_events(),
    }


def leaked(before: dict, timeout: float = 3.0) -> dict:
    """What is in the kernel now that was not before, waiting for RCU-deferred frees."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot()
        extra = {k: (now[k] - before[k] if isinstance(now[k], set) else (now[k] if now[k] != before[k] else ""))
                 for k in now}
        extra = {k: v for k, v in extra.items() if v}
        # Other processes on the machine may load programs meanwhile; only count our own fds and
        # objects whose owner is gone would be noise, so programs/maps are checked by id but the
        # caller runs tests serially, with nothing else loading BPF.
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest):
    """Fails the test if it left any kernel BPF object, bpf fd, pin, XDP attachment or kprobe
    event behind."""
    import gc

    before = snapshot()
    yield
    gc.collect()
    extra = leaked(before)
    assert not extra, f"test left BPF objects behind: {extra}"


@pytest.fixture
def pinned_set():
    """``make(value_type, key_type="u64")``: a hash map pinned under /sys/fs/bpf, by default
    shaped as BCC's tools want it (``bpftool map create ... type hash key 8 value V entries
    128``), as ``(path, table)``; removed after the test."""
    from bpfkit import BPF, open_pinned

    made = []

    def make(value_type: str, key_type: str = "u64") -> tuple:
        path = f"/sys/fs/bpf/bpfkit-test-{os.urandom(6).hex()}"
        with BPF(text=f"BPF_HASH(set, {key_type}, {value_type}, 128);\n"
                      "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }\n") as b:
            b["set"].pin(path)
        made.append(path)
        return path, open_pinned(path)

    yield make
    for p in made:
        os.unlink(p)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private, empty compile cache for one test."""
    d = tmp_path / "cache"
    return d


def run_py(code: str, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Runs Python code in a child interpreter with this venv."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, **kw)
