"""``bcc.utils``: the helpers BCC's programs and tools import from it."""

from __future__ import annotations

import sys
import traceback
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _cpu_list(path: str) -> list:
    """The CPUs of a kernel CPU list file (``0-3,8``)."""
    with open(path) as f:
        text = f.read().strip()
    cpus: list = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def get_online_cpus() -> list:
    """The online CPUs' numbers."""
    return _cpu_list("/sys/devices/system/cpu/online")


def get_possible_cpus() -> list:
    """The possible CPUs' numbers (what per-CPU maps are sized by)."""
    return _cpu_list("/sys/devices/system/cpu/possible")


def printb(s: bytes, file: Any = None, nl: int = 1) -> None:
    """Writes bytes ``s`` (and a newline unless ``nl=0``) to ``file``'s buffer (stdout)."""
    out = file or sys.stdout
    buf = getattr(out, "buffer", None)
    if buf is None:
        out.write(s.decode(errors="replace") + ("\n" if nl else ""))
    else:
        out.flush()
        buf.write(s + (b"\n" if nl else b""))
        buf.flush()


class ArgString:
    """An argument kept as bytes (as BCC's tools take paths and names), from a str."""

    def __init__(self, s: str) -> None:
        self.s = s

    def __bytes__(self) -> bytes:
        return self.s.encode(errors="surrogateescape")

    def __str__(self) -> str:
        return self.s


def warn_with_traceback(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                        line: Any = None) -> None:
    """A ``warnings.showwarning`` that prints the stack too."""
    log = file if hasattr(file, "write") else sys.stderr
    traceback.print_stack(file=log)
    log.write(warnings.formatwarning(message, category, filename, lineno, line))


def disable_compiler_warnings() -> None:
    """BCC silences its compiler's warnings with this; bpfkit shows clang's warnings only at
    debug level already (the ``bpfkit`` logger), so there is nothing to do."""
