"""Conversion between Python values and the bytes of map keys, map values and globals.

A kernel key or value is a ctypes object built from BTF (see :mod:`bpfkit._btftypes`); plain
ints, floats, tuples, dicts, lists and bytes are accepted wherever one is expected, and
:func:`to_bytes` packs them into exactly the bytes the kernel takes.
"""

from __future__ import annotations

import ctypes as ct
from typing import Any

__all__ = ["round8", "plain_int_desc", "build", "to_bytes", "scalar", "plain_value"]


def round8(n: int) -> int:
    return (n + 7) & ~7


def plain_int_desc(size: int) -> dict:
    if size in (1, 2, 4, 8):
        return {"kind": "int", "name": f"u{size * 8}", "size": size, "signed": False, "char": False, "bool": False}
    return {"kind": "array", "len": size, "size": size,
            "elem": {"kind": "int", "name": "u8", "size": 1, "signed": False, "char": False, "bool": False}}


def build(t: Any, v: Any) -> Any:
    """A ctypes ``t`` from a Python value: ints and floats for scalars, bytes/str/lists for
    arrays, tuples (positional, padding fields skipped) or dicts for structs, recursively."""
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
        ftypes = {f[0]: f[1] for f in t._fields_}
        for name, x in items:
            if name not in ftypes:
                raise TypeError(f"{t.__name__} has no field {name!r}")
            ft = ftypes[name]
            if issubclass(ft, ct.Array) and ft._type_ is ct.c_char and isinstance(x, (bytes, str)):
                setattr(out, name, x.encode() if isinstance(x, str) else x)  # ctypes pads char arrays
            elif issubclass(ft, (ct.Structure, ct.Union, ct.Array)):
                setattr(out, name, build(ft, x))
            else:
                setattr(out, name, x)
        return out
    if issubclass(t, ct.Array):
        if isinstance(v, str):
            v = v.encode()
        if isinstance(v, (bytes, bytearray)) and ct.sizeof(t._type_) == 1:
            if len(v) > ct.sizeof(t):
                raise ValueError(f"{len(v)} bytes do not fit {ct.sizeof(t)}")
            return t.from_buffer_copy(bytes(v).ljust(ct.sizeof(t), b"\0"))
        if isinstance(v, (list, tuple)):
            return t(*[build(t._type_, x) if issubclass(t._type_, (ct.Structure, ct.Union, ct.Array)) else x for x in v])
        raise TypeError(f"an array of {t._length_} takes a list or bytes")
    if not isinstance(v, (int, float, bytes)):
        raise TypeError(f"{type(v).__name__} is not a number")
    return t(v)



def to_bytes(t: Any, v: Any, what: str, mapname: str) -> bytes:
    size = ct.sizeof(t)
    if isinstance(v, t):
        return bytes(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) != size:
            raise ValueError(f"map `{mapname}` takes {size}-byte {what}s ({t.__name__}), got {len(b)} bytes")
        return b
    if isinstance(v, ct._SimpleCData) or isinstance(v, (ct.Structure, ct.Union, ct.Array)):
        if ct.sizeof(v) != size:
            raise ValueError(
                f"map `{mapname}` takes {size}-byte {what}s ({t.__name__}), got {type(v).__name__} of {ct.sizeof(v)} bytes")
        return bytes(v)
    try:
        if isinstance(v, bool) and not issubclass(t, (ct.c_bool,)):
            raise TypeError("a bool is not a number here")
        return bytes(build(t, v))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"map `{mapname}` takes {what}s of type {t.__name__} ({size} bytes); "
            f"cannot convert {type(v).__name__} {v!r}: {e}") from None


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

