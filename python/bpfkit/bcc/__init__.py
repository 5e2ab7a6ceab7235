"""BCC's Python package, laid out as BCC's, on bpfkit.

A program written for BCC imports ``bcc``: run it with ``python -m bpfkit.bcc SCRIPT [ARGS]``
(or ``bpfkit bcc SCRIPT [ARGS]``) and, inside it, ``import bcc``, ``from bcc import BPF``,
``from bcc.utils import printb`` resolve to this package, whose names are bpfkit's. Nothing named
``bcc`` is installed, so a real BCC on the same machine is never shadowed. Its C, in BCC's
dialect, is translated to libbpf C on CO-RE (see ``BPF``).

>>> from bpfkit.bcc import BPF   # what `from bcc import BPF` gives inside `python -m bpfkit.bcc`
"""

from __future__ import annotations

#: The package's version, as BCC's programs may print it: bpfkit's.
from bpfkit import (
    BPF,
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
    __version__,  # noqa: E402
)

from . import containers, syscall, table, usdt, utils
from .table import PerfEventArray, RingBuf, Table
from .utils import ArgString, get_online_cpus, printb

__all__ = ["BPF", "USDT", "ArgString", "printb", "get_online_cpus", "Table", "PerfEventArray", "RingBuf",
           "__version__", "PerfType", "PerfHWConfig", "PerfSWConfig", "PerfEventSampleFormat", "BPFAttachType",
           "BPFProgType", "SymbolCache", "DEBUG_LLVM_IR", "DEBUG_BPF", "DEBUG_PREPROCESSOR", "DEBUG_SOURCE",
           "DEBUG_BPF_REGISTER_STATE", "table", "usdt", "utils", "syscall", "containers"]

#: The submodules a BCC program may import, as ``bcc.<name>``.
SUBMODULES = ("table", "usdt", "utils", "syscall", "containers")
