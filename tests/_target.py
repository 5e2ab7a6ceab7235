"""Target processes driven over stdin, for the uprobe and USDT tests: each prints a header line
(its pid first), then answers every command line with one line ("ok", or a value), so the calls
under test happen exactly when, and as often as, a test says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator


def build(source: Path, out: Path, *flags: str) -> Path:
    """``out``, a program compiled from ``source`` with the system's C compiler (``make deps``
    installs gcc) and ``flags``."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler builds the test targets (make deps installs gcc)"
    subprocess.run([cc, *flags, "-o", str(out), str(source)], check=True, capture_output=True)
    return out


class Target:
    """A running target. ``header`` is its first line, split; ``pid`` its first field."""

    def __init__(self, *argv: object) -> None:
        self.p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout is not None
        self.header = self.p.stdout.readline().split()
        assert self.header, f"{argv[0]} did not start"
        self.pid = int(self.header[0])

    def ask(self, line: str) -> str:
        """Sends one command; returns the target's one-line answer."""
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def cmd(self, line: str) -> None:
        """Sends one command that answers "ok"."""
        assert self.ask(line) == "ok"

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                f.close()


def spawner() -> Iterator[Callable[..., Target]]:
    """For a fixture: yields ``start(*argv) -> Target``, and stops every target started."""
    procs: list[Target] = []

    def start(*argv: object) -> Target:
        t = Target(*argv)
        procs.append(t)
        return t

    yield start
    for t in procs:
        t.stop()


def perf_event_fds() -> int:
    """How many perf event fds this process holds (opened uprobes, before or after attaching)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]"
        except OSError:
            pass
    return n
