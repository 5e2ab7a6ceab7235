"""bpfkit: a BCC-style eBPF toolkit for Python with a Rust core.

>>> from bpfkit import BPF
>>> b = BPF(text=open("probe.bpf.c").read())   # compiled against this kernel's BTF, loaded, attached
>>> b["counts"].items()

See README.md for the tour and ``bpfkit list`` for the bundled tools.
"""

import logging as _logging

from . import _native, features
from ._attach_kernel import PerfHWConfig, PerfSWConfig, PerfType
from ._bpf import (
    BPF,
    DEBUG_BPF,
    DEBUG_BPF_REGISTER_STATE,
    DEBUG_LLVM_IR,
    DEBUG_PREPROCESSOR,
    DEBUG_SOURCE,
)
from ._errors import (
    AttachError,
    BPFError,
    CacheError,
    ClosedError,
    CompileError,
    CompilerNotFoundError,
    LoadError,
    MapError,
    NotSupportedError,
    PrivilegeError,
)
from .table import open_pinned, print_json_hist, print_linear_hist, print_log2_hist
from .usdt import USDT

__version__ = "0.1.0"
LIBBPF_VERSION: str = _native.LIBBPF_VERSION

_logging.getLogger("bpfkit").addHandler(_logging.NullHandler())

__all__ = [
    "BPF",
    "USDT",
    "PerfType",
    "PerfHWConfig",
    "PerfSWConfig",
    "features",
    "BPFError",
    "CompileError",
    "CompilerNotFoundError",
    "LoadError",
    "AttachError",
    "NotSupportedError",
    "MapError",
    "PrivilegeError",
    "CacheError",
    "ClosedError",
    "DEBUG_LLVM_IR",
    "DEBUG_BPF",
    "DEBUG_PREPROCESSOR",
    "DEBUG_SOURCE",
    "DEBUG_BPF_REGISTER_STATE",
    "print_log2_hist",
    "print_linear_hist",
    "print_json_hist",
    "open_pinned",
    "LIBBPF_VERSION",
    "__version__",
]
