"""bpfkit's exceptions: one hierarchy rooted at :class:`BPFError`, which keeps ``errno``.

>>> from bpfkit import BPF, CompileError
>>> try:
...     BPF(text="int f(void) { return undefined_thing; }")
... except CompileError as e:
...     print(e.diagnostics)   # clang's text, lines numbered as in your source
"""

from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing stays off the start path of every tool
    from typing import Any, Optional

__all__ = [
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
    "InternalError",
]


class BPFError(OSError):
    """Base of every bpfkit error. ``errno`` holds the kernel's or libc's errno when there was one."""

    def __init__(self, message: str, errno: Optional[int] = None) -> None:
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CompileError(BPFError):
    """clang rejected the source. ``diagnostics`` is clang's output, with your source's line numbers."""

    diagnostics: str = ""


class CompilerNotFoundError(BPFError):
    """No BPF-capable compiler: set ``BPFKIT_CLANG``, install clang, or ``pip install ziglang``."""


class LoadError(BPFError):
    """The kernel refused to load a program. ``program`` names it; ``verifier_log`` is the whole log."""

    program: Optional[str] = None
    verifier_log: str = ""


class AttachError(BPFError):
    """A program could not be attached to its hook. ``program`` and ``target`` name them when known."""

    program: Optional[str] = None
    target: Optional[str] = None


class NotSupportedError(BPFError):
    """The running kernel lacks a feature. ``feature`` names it; ``since`` is its first kernel version."""

    feature: str = ""
    since: Optional[str] = None
    program: Optional[str] = None


class MapError(BPFError):
    """A map operation failed (other than a missing key, which is ``KeyError``)."""


class PrivilegeError(BPFError, PermissionError):
    """The process lacks a privilege: root, or CAP_BPF + CAP_PERFMON, is needed."""


class CacheError(BPFError):
    """The compile cache directory is unsafe (another owner, group/other-writable) or unusable."""


class ClosedError(BPFError):
    """The BPF object was closed."""


class InternalError(BPFError):
    """A bug in bpfkit (a broken invariant, a panic caught at the boundary): please report it."""


_KINDS = {
    "compile": CompileError,
    "compiler_not_found": CompilerNotFoundError,
    "load": LoadError,
    "attach": AttachError,
    "not_supported": NotSupportedError,
    "map": MapError,
    "privilege": PrivilegeError,
    "cache": CacheError,
    "closed": ClosedError,
    "os": BPFError,
    "internal": InternalError,
}


def _from_native(kind: str, errno: Optional[int], message: str, extra: dict[str, Any]) -> BPFError:
    """Builds the exception for an error raised by ``bpfkit._native`` (called from Rust)."""
    cls = _KINDS.get(kind, BPFError)
    if cls is PrivilegeError and errno is None:
        errno = _errno.EPERM
    exc = cls(message, errno)
    for key, value in extra.items():
        if key in ("program", "since", "target") and value == "":
            value = None
        setattr(exc, key, value)
    return exc
