"""bpfkit: a BCC-style eBPF toolkit for Python with a Rust core.

>>> from bpfkit import BPF
>>> b = BPF(text=open("probe.bpf.c").read())   # compiled against this kernel's BTF, loaded, attached
>>> b["counts"].items()

See README.md for the tour and ``bpfkit list`` for the bundled tools.

The public names are imported when first used (PEP 562's module ``__getattr__``), so that
``import bpfkit`` and the start of every tool pay only for what they touch: a tool that needs
``BPF`` does not load the USDT reader, and ``bpfkit list`` loads neither.
"""

from __future__ import annotations

import sys as _sys

__version__ = "0.1.0"


def _started_as_the_command() -> bool:
    """Whether this import is the ``bpfkit`` command starting (``bpfkit ...`` or ``python -m
    bpfkit ...``), rather than a program using the library."""
    import os

    if _sys.argv[:1] == ["-m"]:  # Python is locating the module of `python -m X`
        orig = getattr(_sys, "orig_argv", [])
        return "-m" in orig[:-1] and orig[orig.index("-m") + 1] == "bpfkit"
    return bool(_sys.argv) and os.path.basename(_sys.argv[0]) == "bpfkit"


if _started_as_the_command():
    # A Ctrl-C that lands while Python imports the command, before bpfkit.cli can catch it, ends
    # the command quietly, as one a moment later does (bpfkit.cli restores Python's handler).
    # `_signal` is the interpreter's built-in module: `signal` would first import `enum`, which
    # takes long enough on a busy machine for a Ctrl-C to land during it, with a traceback.
    import _signal
    import os as _os

    _signal.signal(_signal.SIGINT, lambda _sig, _frame: _os._exit(0))
    # A Ctrl-C even earlier, while CPython checked whether the script's path is an import path
    # entry, is printed and then dropped by CPython itself ("Failed checking if argv[0] is an
    # import path entry"), which goes on to run the command; printing it left it in
    # sys.last_type, the one trace of it. End quietly, as for a Ctrl-C a moment later.
    if getattr(_sys, "last_type", None) is KeyboardInterrupt:
        _os._exit(0)

#: Public name -> the submodule that defines it. ``features`` is the submodule itself.
_LAZY = {
    "BPF": "._bpf",
    "DEBUG_LLVM_IR": "._bpf",
    "DEBUG_BPF": "._bpf",
    "DEBUG_PREPROCESSOR": "._bpf",
    "DEBUG_SOURCE": "._bpf",
    "DEBUG_BPF_REGISTER_STATE": "._bpf",
    "USDT": ".usdt",
    "PerfType": "._attach_kernel",
    "PerfHWConfig": "._attach_kernel",
    "PerfSWConfig": "._attach_kernel",
    "PerfEventSampleFormat": "._attach_kernel",
    "BPFAttachType": "._attach_net",
    "BPFProgType": "._attach_net",
    "SymbolCache": "._symcache",
    "BPFError": "._errors",
    "CompileError": "._errors",
    "CompilerNotFoundError": "._errors",
    "LoadError": "._errors",
    "AttachError": "._errors",
    "NotSupportedError": "._errors",
    "MapError": "._errors",
    "PrivilegeError": "._errors",
    "CacheError": "._errors",
    "ClosedError": "._errors",
    "InternalError": "._errors",
    "print_log2_hist": ".table",
    "print_linear_hist": ".table",
    "print_json_hist": ".table",
    "open_pinned": ".table",
    "flamegraph": "._flamegraph",
    "flamegraph_diff": "._flamegraph",
    "folded_stacks": "._flamegraph",
    "FlameGraph": "._flamegraph",
    "watch": "._watch",
    "LIBBPF_VERSION": "._native",
    "features": ".features",
    "_native": "._native",
}

__all__ = [
    "BPF",
    "DEBUG_BPF",
    "DEBUG_BPF_REGISTER_STATE",
    "DEBUG_LLVM_IR",
    "DEBUG_PREPROCESSOR",
    "DEBUG_SOURCE",
    "LIBBPF_VERSION",
    "USDT",
    "AttachError",
    "BPFAttachType",
    "BPFError",
    "BPFProgType",
    "CacheError",
    "ClosedError",
    "CompileError",
    "CompilerNotFoundError",
    "FlameGraph",
    "InternalError",
    "LoadError",
    "MapError",
    "NotSupportedError",
    "PerfEventSampleFormat",
    "PerfHWConfig",
    "PerfSWConfig",
    "PerfType",
    "PrivilegeError",
    "SymbolCache",
    "__version__",
    "features",
    "flamegraph",
    "flamegraph_diff",
    "folded_stacks",
    "load_ipython_extension",
    "open_pinned",
    "print_json_hist",
    "print_linear_hist",
    "print_log2_hist",
    "watch",
]

_logging_ready = False


def __getattr__(name: str) -> object:
    """Imports a public name's submodule on first use and keeps the name here, so the lookup
    runs once per name."""
    global _logging_ready
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(where, __name__)
    value = module if where == "." + name else getattr(module, name)
    globals()[name] = value
    if not _logging_ready and where != "._errors" and "logging" in _sys.modules:
        # A library's logger gets a NullHandler, so that bpfkit's records go where the application
        # configures logging and nowhere otherwise. Without `logging` imported, bpfkit._logs does
        # this when it first makes a record (logging stays off a tool's start path).
        import logging

        logging.getLogger("bpfkit").addHandler(logging.NullHandler())
        _logging_ready = True
    return value


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bpfkit`` in IPython or Jupyter: registers the ``%%bpf``, ``%bpf_tool``,
    ``%bpf_watch`` and ``%bpf_close`` magics (bpfkit._magics)."""
    from ._magics import load

    load(ipython)


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


TYPE_CHECKING = False
if TYPE_CHECKING:  # what the names are, for type checkers and IDEs (never run)
    from . import _native as _native
    from . import features
    from ._attach_kernel import PerfEventSampleFormat, PerfHWConfig, PerfSWConfig, PerfType
    from ._attach_net import BPFAttachType, BPFProgType
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
    from ._flamegraph import FlameGraph, flamegraph, flamegraph_diff, folded_stacks
    from ._symcache import SymbolCache
    from ._watch import watch
    from .table import open_pinned, print_json_hist, print_linear_hist, print_log2_hist
    from .usdt import USDT

    LIBBPF_VERSION: str
