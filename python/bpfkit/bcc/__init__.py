"""BCC's Python package, laid out as BCC's, on bpfkit.

A program written for BCC imports ``bcc``: run it with ``python -m bpfkit.bcc SCRIPT [ARGS]``
(or ``bpfkit bcc SCRIPT [ARGS]``) and, inside it, ``import bcc``, ``from bcc import BPF``,
``from bcc.utils import printb`` resolve to this package, whose names are bpfkit's. Nothing named
``bcc`` is installed, so a real BCC on the same machine is never shadowed. Its C, in BCC's
dialect, is translated to libbpf C on CO-RE (see ``BPF``).

>>> from bpfkit.bcc import BPF   # what `from bcc import BPF` gives inside `python -m bpfkit.bcc`
"""

from __future__ import annotations

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
)

from . import containers, syscall, table, tcp, usdt, utils
from .table import PerfEventArray, RingBuf, Table
from .utils import ArgString, get_online_cpus, printb


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



__all__ = ["BPF", "USDT", "ArgString", "printb", "get_online_cpus", "Table", "PerfEventArray", "RingBuf",
           "__version__", "PerfType", "PerfHWConfig", "PerfSWConfig", "PerfEventSampleFormat", "BPFAttachType",
           "BPFProgType", "SymbolCache", "DEBUG_LLVM_IR", "DEBUG_BPF", "DEBUG_PREPROCESSOR", "DEBUG_SOURCE",
           "DEBUG_BPF_REGISTER_STATE", "table", "usdt", "utils", "syscall", "containers", "tcp"]

#: The submodules a BCC program may import, as ``bcc.<name>``.
SUBMODULES = ("table", "usdt", "utils", "syscall", "containers", "tcp")
