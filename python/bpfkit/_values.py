"""Conversion between Python values and the bytes of map keys, map values and globals.

A kernel key or value is a ctypes object built from BTF (see :mod:`bpfkit._btftypes`); plain
ints, floats, tuples, dicts, lists and bytes are accepted wherever one is expected, and
:func:`to_bytes` packs them into exactly the bytes the kernel takes.
"""

from __future__ import annotations

import ctypes as ct
import operator

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Optional

__all__ = [
    "round8",
    "plain_int_desc",
    "int_range",
    "checked_int",
    "build",
    "to_bytes",
    "cstr",
    "columns",
    "scalar",
    "plain_value",
]


def round8(n: int) -> int:
    return (n + 7) & ~7


def plain_int_desc(size: int) -> dict:
    if size in (1, 2, 4, 8):
        return {"kind": "int", "name": f"u{size * 8}", "size": size, "signed": False, "char": False, "bool": False}
    return {"kind": "array", "len": size, "size": size,
            "elem": {"kind": "int", "name": "u8", "size": 1, "signed": False, "char": False, "bool": False}}


#: ctypes type codes of the integer types (lower case: signed).
_INT_CODES = "bBhHiIlLqQ"


def int_range(t: Any, bits: int = 0) -> Optional[tuple[int, int, str]]:
    """``(lowest, highest, description)`` of the ctypes integer type ``t`` (of a ``bits``-wide
    bitfield of it, when given), or None when ``t`` is not an integer type."""
    code = getattr(t, "_type_", None)
    if not isinstance(code, str) or code not in _INT_CODES:
        return None
    signed = code.islower()
    bits = bits or ct.sizeof(t) * 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lo, hi, f"{'a signed' if signed else 'an unsigned'} {bits}-bit integer ({lo}..{hi})"


def checked_int(t: Any, v: Any, place: str, bits: int = 0) -> Any:
    """``v`` as an int that fits the integer type ``t`` (``bits`` wide for a bitfield), or
    ``v`` unchanged when ``t`` is not an integer type or ``v`` not an integer. ctypes stores
    the low bits of an int that does not fit; this refuses it instead, with ``OverflowError``
    naming ``place``. ``True``/``False`` are 1 and 0."""
    r = int_range(t, bits)
    if r is None or isinstance(v, float):
        return v
    try:
        i = operator.index(v)
    except TypeError:
        return v  # not an integer: ctypes says what it takes
    lo, hi, desc = r
    if not lo <= i <= hi:
        raise OverflowError(f"{i} does not fit {place}, {desc}")
    return i


def _field_place(path: str, place: str) -> str:
    if not path:
        return place
    return f"element {path} of {place}" if path.startswith("[") else f"field `{path}` of {place}"


def build(t: Any, v: Any, place: str = "the value", path: str = "") -> Any:
    """A ctypes ``t`` from a Python value: ints and floats for scalars, bytes/str/lists for
    arrays, tuples (positional, padding fields skipped) or dicts for structs, recursively.
    An int that does not fit its field raises ``OverflowError`` naming the field (``path``,
    within ``place``)."""
    if isinstance(v, t):
        return v
    if issubclass(t, (ct.Structure, ct.Union)):
        names = [f[0] for f in t._fields_ if not f[0].startswith("__pad")]
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, (tuple, list)):
            if len(v) > len(names):
                raise TypeError(f"{t.__name__} has {len(names)} fields, got {len(v)} values")
            items = zip(names, v)
        else:
            raise TypeError(f"{t.__name__} takes a tuple or dict")
        out = t()
        fields = {f[0]: f for f in t._fields_}
        for name, x in items:
            if name not in fields:
                raise TypeError(f"{t.__name__} has no field {name!r}")
            ft = fields[name][1]
            sub = f"{path}.{name}" if path else name
            if issubclass(ft, ct.Array) and ft._type_ is ct.c_char and isinstance(x, (bytes, str)):
                setattr(out, name, x.encode() if isinstance(x, str) else x)  # ctypes pads char arrays
            elif issubclass(ft, (ct.Structure, ct.Union, ct.Array)):
                setattr(out, name, build(ft, x, place, sub))
            else:
                bits = fields[name][2] if len(fields[name]) > 2 else 0
                setattr(out, name, checked_int(ft, x, _field_place(sub, place), bits))
        return out
    if issubclass(t, ct.Array):
        if isinstance(v, str):
            v = v.encode()
        if isinstance(v, (bytes, bytearray)) and ct.sizeof(t._type_) == 1:
            if len(v) > ct.sizeof(t):
                raise ValueError(f"{len(v)} bytes do not fit {ct.sizeof(t)}")
            return t.from_buffer_copy(bytes(v).ljust(ct.sizeof(t), b"\0"))
        if isinstance(v, (list, tuple)):
            if len(v) > t._length_:
                raise ValueError(f"{len(v)} values do not fit an array of {t._length_}")
            et = t._type_
            if issubclass(et, (ct.Structure, ct.Union, ct.Array)):
                return t(*[build(et, x, place, f"{path}[{i}]") for i, x in enumerate(v)])
            return t(*[checked_int(et, x, _field_place(f"{path}[{i}]", place)) for i, x in enumerate(v)])
        raise TypeError(f"an array of {t._length_} takes a list or bytes")
    if not isinstance(v, (int, float, bytes)) and not hasattr(v, "__index__"):
        raise TypeError(f"{type(v).__name__} is not a number")
    return t(checked_int(t, v, _field_place(path, place)))


def to_bytes(t: Any, v: Any, what: str, owner: str) -> bytes:
    """The bytes of ``v`` as a ``t``: ``what`` ("key", "value") of ``owner`` ("map `counts`",
    "global `g`") names it in errors. Bytes and ctypes objects must have ``t``'s size
    (``ValueError``); other values are converted with :func:`build` (``TypeError`` when they
    cannot be, ``OverflowError`` when an int does not fit its field)."""
    size = ct.sizeof(t)
    if isinstance(v, t):
        return bytes(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) != size:
            raise ValueError(f"{owner} takes {size}-byte {what}s ({t.__name__}), got {len(b)} bytes")
        return b
    if isinstance(v, (ct._SimpleCData, ct.Structure, ct.Union, ct.Array)):
        if ct.sizeof(v) != size:
            raise ValueError(f"{owner} takes {size}-byte {what}s ({t.__name__}), "
                             f"got {type(v).__name__} of {ct.sizeof(v)} bytes")
        return bytes(v)
    try:
        if isinstance(v, bool) and not issubclass(t, (ct.c_bool,)):
            raise TypeError("a bool is not a number here")
        return bytes(build(t, v, f"the {what} of {owner}"))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{owner} takes {what}s of type {t.__name__} ({size} bytes); "
            f"cannot convert {type(v).__name__} {v!r}: {e}") from None


def cstr(b: bytes, encoding: str = "utf-8") -> str:
    """A C string's text: the bytes up to the first NUL, decoded with replacement characters
    for what is not valid ``encoding``."""
    return b.split(b"\0", 1)[0].decode(encoding, errors="replace")


def columns(prefix: str, arr: Any) -> Iterator[tuple[str, Any]]:
    """``(name, column)`` for each leaf field of the numpy array ``arr`` (structured or not):
    ``prefix`` for a scalar, ``prefix.field`` (``prefix.field.sub``...) for struct fields.
    A column keeps the array's leading dimensions; ``char[]`` fields (``S<n>``) become ``str``
    objects (see :func:`cstr`)."""
    if arr.dtype.names:
        for name in arr.dtype.names:
            yield from columns(f"{prefix}.{name}", arr[name])
    elif arr.dtype.kind == "S":
        import numpy as np

        yield prefix, np.frompyfunc(cstr, 1, 1)(arr) if arr.size else arr.astype(object)
    else:
        yield prefix, arr


def scalar(v: Any) -> Any:
    if hasattr(v, "sum") and not isinstance(v, ct._SimpleCData):
        return int(v.sum())
    return getattr(v, "value", v)


def plain_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.rstrip(b"\0").decode(errors="replace")
    if isinstance(v, ct.Array):
        return bytes(v).rstrip(b"\0").decode(errors="replace") if v._type_ is ct.c_char else list(v)
    return v

