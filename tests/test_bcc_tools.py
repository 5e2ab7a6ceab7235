"""BCC's own tools, as Debian's bpfcc-tools installs them (``/usr/sbin/*-bpfcc``, never copied
into this repository), run unchanged through ``python -m bpfkit.bcc`` against a workload the test
makes, and what they print checked against it. On this kernel (no kprobes) their syscall kprobes
run as syscall tracepoints; their kernel struct reads are CO-RE reads of the running kernel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

PID = os.getpid()
SBIN = "/usr/sbin"


def tool(name: str) -> str:
    path = f"{SBIN}/{name}-bpfcc"
    assert os.path.exists(path), "make deps installs bpfcc-tools (APT_TEST), whose tools these are"
    return path


def waiting(p: subprocess.Popen, timeout: float = 10) -> None:
    """Waits until the tool's main thread blocks waiting for events or for its interval: BCC's
    tools open their perf buffers after printing their header, and an event sent before that is
    lost (as with BCC itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{p.pid}/wchan") as f:
            if re.search(r"epoll|nanosleep|poll_schedule|do_select|futex", f.read()):
                return
        time.sleep(0.01)
    raise AssertionError("the tool never waited for events")


def start(name: str, *args: str, header: str) -> subprocess.Popen:
    """Starts BCC's tool ``name`` through bpfkit, waits for the line matching ``header``, then
    until the tool waits for events."""
    p = subprocess.Popen([sys.executable, "-m", "bpfkit.bcc", tool(name), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise AssertionError(f"{name} ended before its header: {p.communicate(timeout=10)[1][-3000:]}")
        if re.search(header, line):
            waiting(p)
            return p
    p.kill()
    raise AssertionError(f"{name} printed no {header!r} in 30 s")


def stop(p: subprocess.Popen, settle: float = 0.3) -> str:
    """Ctrl-C after ``settle`` seconds; what the tool printed after its header."""
    time.sleep(settle)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode in (0, -signal.SIGINT), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return out


def test_killsnoop_reports_each_kill_with_its_signal_target_and_result():
    """killsnoop's syscall__kill (entry, the syscall's arguments) and its kretprobe on the same
    syscall function (the result) run as sys_enter_kill and sys_exit_kill here: a kill that
    succeeds shows 0, one at a pid that is gone shows -ESRCH."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    p = start("killsnoop", header=r"^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT")
    try:
        os.kill(child.pid, signal.SIGUSR2)
        try:
            os.kill(gone.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    finally:
        out = stop(p)
        child.kill()
        child.wait()
    rows = [line.split() for line in out.splitlines() if line.split()[1:2] == [str(PID)]]
    assert [r[3:] for r in rows] == [[str(int(signal.SIGUSR2)), str(child.pid), "0"],
                                     [str(int(signal.SIGUSR1)), str(gone.pid), "-3"]], out
