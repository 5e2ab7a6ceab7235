"""What the attach-point mixins of :class:`bpfkit.BPF` share: BCC's str-or-bytes arguments, and
the loaded object's programs by name."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    import re
    from typing import Any, Optional, Union

#: A name as BCC takes it: str or bytes (an alias for type checkers only).
if TYPE_CHECKING:
    Str = Union[str, bytes]
else:
    Str = object


def _s(v: Any) -> str:
    """``v`` as str: bytes decoded, paths through ``os.fspath``. Anything else is a
    ``TypeError``, and bytes that are not UTF-8 a ``ValueError`` (names, paths and regexes are
    text)."""
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode()
        except UnicodeDecodeError as e:
            raise ValueError(f"{bytes(v)!r} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    raise TypeError(f"expected str or bytes, not {type(v).__name__}")


def _regex(pattern: Any, what: str) -> re.Pattern:
    """``pattern`` compiled; a bad one is a ``ValueError`` naming the argument, not ``re.error``."""
    import re  # here: re (with enum) costs a tool's start ~10 ms, and few calls need it

    try:
        return re.compile(_s(pattern))
    except re.error as e:
        raise ValueError(f"{what}={_s(pattern)!r} is not a valid regular expression: {e}") from None


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    """``value`` as an int within ``[lo, hi]``: ``TypeError`` for a non-integer, and an
    ``OverflowError`` naming the argument (and the range) for one that does not fit."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = value.__index__()
        except (AttributeError, TypeError):
            raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not lo <= value <= hi:
        raise OverflowError(f"{what}={value} is out of range ({lo}..{hi})")
    return value


#: Ranges of the kernel's argument types.
U32, U64, I32 = (0, 2**32 - 1), (0, 2**64 - 1), (-(2**31), 2**31 - 1)


class AttachBase:
    """Base of the attach mixins; :class:`bpfkit.BPF` provides ``_obj`` and ``_detach``."""

    _obj: Any

    def _detach(self, kind: str, target: str, fn_name: Optional[str]) -> None:  # provided by BPF
        raise NotImplementedError

    def _section(self, fn_name: str) -> Any:
        """The parsed section of program ``fn_name``: a ``bpfkit._native.Section`` (``.kind``,
        ``.target``, ``.feature``, ``.is_multi``...), from the core's one section parser."""
        return self._obj.section(fn_name)

    def _typed(self, fn: str, kind: str) -> str:
        """The program to attach as ``kind`` ("perf_event", "tracepoint") for function ``fn``:
        ``fn``, or, for a BCC-dialect function that names no context type (``int f()``), its
        copy of that kind, ``fn__bcc_<kind>`` (BCC loads a function as its attach call asks;
        bpfkit loads them all at once, so the translator made one of each)."""
        try:
            if self._section(fn).kind == kind:
                return fn
        except ValueError:
            return fn
        copy = f"{fn}__bcc_{kind}"
        return copy if any(p.name == copy for p in self._obj.programs()) else fn

    def _detach_links(self, links: list, what: str) -> None:
        """Detaches ``links`` (typed ``Link`` values) by id; ValueError naming ``what`` if none."""
        if not links or self._obj.detach_ids([lk.id for lk in links]) == 0:
            raise ValueError(f"no {what} is attached")


def _once(fn: Any) -> Any:
    """``fn()`` (no arguments) computed at its first call and remembered: what
    ``functools.lru_cache(maxsize=1)`` does here, without importing functools (and collections
    with it) on a tool's start path."""
    memo: list = []

    def once() -> Any:
        if not memo:
            memo.append(fn())
        return memo[0]

    _wraps(once, fn)
    once.cache_clear = memo.clear  # type: ignore[attr-defined]
    return once


def _wraps(wrapper: Any, wrapped: Any) -> Any:
    """``functools.update_wrapper(wrapper, wrapped)``, without importing functools."""
    for name in ("__module__", "__name__", "__qualname__", "__annotations__", "__doc__"):
        try:
            setattr(wrapper, name, getattr(wrapped, name))
        except AttributeError:
            pass
    wrapper.__dict__.update(getattr(wrapped, "__dict__", {}))
    wrapper.__wrapped__ = wrapped
    return wrapper
