"""BCC's Python package, laid out as BCC's, on bpfkit.

A program written for BCC imports ``bcc``: run it with ``python -m bpfkit.bcc SCRIPT [ARGS]``
(or ``bpfkit bcc SCRIPT [ARGS]``) and, inside it, ``import bcc``, ``from bcc import BPF``,
``from bcc.utils import printb`` resolve to this package, whose names are bpfkit's. Nothing named
``bcc`` is installed, so a real BCC on the same machine is never shadowed. Its C, in BCC's
dialect, is translated to libbpf C on CO-RE (see ``BPF``).

>>> from bpfkit.bcc import BPF   # what `from bcc import BPF` gives inside `python -m bpfkit.bcc`
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Optional

from bpfkit import BPF as _BPF
from bpfkit import (
    DEBUG_BPF,
    DEBUG_BPF_REGISTER_STATE,
    DEBUG_LLVM_IR,
    DEBUG_PREPROCESSOR,
    DEBUG_SOURCE,
    USDT,
    BPFAttachType,
    BPFProgType,
    PerfEventSampleFormat,
    PerfHWConfig,
    PerfSWConfig,
    PerfType,
    SymbolCache,
    __version__,  # the package's version, as BCC's programs may print it: bpfkit's
    _native,
)

from . import containers, syscall, table, tcp, usdt, utils
from .table import PerfEventArray, RingBuf, Table
from .utils import ArgString, StrcmpRewrite, get_online_cpus, printb


class BPF(_BPF):
    """:class:`bpfkit.BPF`, reading C as BCC's dialect unless ``dialect=`` says otherwise: a
    program written for BCC may use none of the dialect's marks (``int hello(void *ctx) {
    bpf_trace_printk("Hello\\n"); }``) and still mean BCC's C."""

    def __init__(self, *args: Any, dialect: str = "bcc", **kwargs: Any) -> None:
        super().__init__(*args, dialect=dialect, **kwargs)

    # BCC's Python 3 API gives bytes where bpfkit's gives str: its programs format them into
    # bytes (`printb(b"%s" % msg)`) and add them to bytes.

    def trace_readline(self, nonblocking: bool = False, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next trace_pipe line, as bytes (BCC's)."""
        line = _BPF.trace_readline(self, nonblocking, timeout)
        return None if line is None else line.encode(errors="surrogateescape")

    def trace_fields(self, nonblocking: bool = False, timeout: Optional[float] = None) -> Optional[tuple]:
        """``(task, pid, cpu, flags, ts, msg)`` of the next trace_pipe line, task, flags and msg
        as bytes (BCC's)."""
        f = _BPF.trace_fields(self, nonblocking, timeout)
        if f is None:
            return None
        task, pid, cpu, flags, ts, msg = f
        return (task.encode(errors="surrogateescape"), pid, cpu, flags.encode(), ts,
                msg.encode(errors="surrogateescape"))

    @classmethod
    def get_syscall_fnname(cls, name: Any) -> bytes:  # type: ignore[override]
        """The kernel function of syscall ``name``, as bytes (BCC's)."""
        return _BPF.get_syscall_prefix().encode() + (name if isinstance(name, bytes) else str(name).encode())

    @staticmethod
    def get_syscall_prefix() -> bytes:  # type: ignore[override]
        """The prefix of this kernel's syscall functions, as bytes (BCC's)."""
        return _BPF.get_syscall_prefix().encode()

    @staticmethod
    def ksym(addr: int, show_module: bool = False, show_offset: bool = False) -> bytes:  # type: ignore[override]
        """The kernel symbol containing ``addr``, as bytes (BCC's)."""
        return _BPF.ksym(addr, show_module, show_offset).encode()

    @staticmethod
    def sym(addr: int, pid: int, show_module: bool = False, show_offset: bool = False,  # type: ignore[override]
            demangle: bool = True) -> bytes:
        """The symbol containing ``addr`` in process ``pid``, as bytes (BCC's)."""
        return _BPF.sym(addr, pid, show_module, show_offset, demangle).encode()


    # -- what BCC's generic tools (trace, argdist, funccount, ...) call ------------------------
    @staticmethod
    def monotonic_time() -> int:
        """CLOCK_MONOTONIC in nanoseconds, the clock of ``bpf_ktime_get_ns()``."""
        return time.monotonic_ns()

    @staticmethod
    def find_library(libname: Any) -> Optional[bytes]:
        """The path of shared library ``libname`` (``"c"``, ``b"libssl"``, ``"libc.so.6"``), from
        the dynamic linker's cache and the library directories, as bytes; None when there is none."""
        name = os.fsdecode(libname)
        try:
            path = _native.resolve_binary(name)
        except OSError:
            return None
        if "/" not in name and ".so" not in os.path.basename(path):
            return None  # a program found on PATH, not a library
        return os.fsencode(path)

    @staticmethod
    def find_exe(bin_path: Any) -> Any:
        """``bin_path`` if it names an executable file, else the executable of that name on PATH,
        of the type given (str or bytes); None when there is none."""
        as_bytes = isinstance(bin_path, bytes)
        name = os.fsdecode(bin_path)
        if os.path.dirname(name):
            found = name if os.path.isfile(name) and os.access(name, os.X_OK) else None
        else:
            found = shutil.which(name, mode=os.X_OK)
        return None if found is None else (os.fsencode(found) if as_bytes else found)

    @staticmethod
    def get_tracepoints(tp_re: Any = ".*") -> list:  # type: ignore[override]
        """Every tracepoint whose ``"category:event"`` matches ``tp_re``, as bytes when the pattern
        is bytes (BCC's funccount formats them with ``.decode()``)."""
        names = _BPF.get_tracepoints(os.fsdecode(tp_re))
        return [os.fsencode(n) for n in names] if isinstance(tp_re, bytes) else names

    @staticmethod
    def generate_auto_includes(program_words: Any) -> str:
        """The ``#include`` lines BCC adds for the kernel types a probe names: none, as every
        kernel type is in the program's vmlinux.h, from the running kernel's BTF."""
        return ""

    @staticmethod
    def get_probe_limit() -> int:
        """How many probes a tool may attach at once: ``BCC_PROBE_LIMIT`` or 1000, as BCC."""
        return int(os.environ.get("BCC_PROBE_LIMIT", "1000"))

    def add_module(self, modname: Any) -> bool:
        """BCC loads a module's symbols ahead of use with this; bpfkit reads symbols when it
        resolves an address (blazesym), so this only says whether the file is there."""
        return os.path.isfile(os.fsdecode(modname))

    @property
    def kprobe_fds(self) -> dict:
        """``{function: link}`` of the attached kprobes and kretprobes, as BCC's dict is keyed."""
        return {link.target.encode(): link for link in self.links() if link.kind in ("kprobe", "kretprobe")}

    @property
    def uprobe_fds(self) -> dict:
        """``{target: link}`` of the attached uprobes and uretprobes."""
        return {link.target.encode(): link for link in self.links() if link.kind in ("uprobe", "uretprobe")}



__all__ = ["BPF", "USDT", "ArgString", "StrcmpRewrite", "printb", "get_online_cpus", "Table", "PerfEventArray",
           "RingBuf",
           "__version__", "PerfType", "PerfHWConfig", "PerfSWConfig", "PerfEventSampleFormat", "BPFAttachType",
           "BPFProgType", "SymbolCache", "DEBUG_LLVM_IR", "DEBUG_BPF", "DEBUG_PREPROCESSOR", "DEBUG_SOURCE",
           "DEBUG_BPF_REGISTER_STATE", "table", "usdt", "utils", "syscall", "containers", "tcp"]

#: The submodules a BCC program may import, as ``bcc.<name>``.
SUBMODULES = ("table", "usdt", "utils", "syscall", "containers", "tcp")
