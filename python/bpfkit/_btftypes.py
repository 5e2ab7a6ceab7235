"""ctypes classes built from BTF type descriptors (as ``bpfkit._native`` returns them).

The layout is BTF's, byte for byte: member offsets, padding and total size are checked against
what BTF says, and a struct ctypes would lay out differently (``__attribute__((packed))``,
``aligned``) is rebuilt packed with explicit padding.
"""

from __future__ import annotations

import ctypes as ct

from ._values import cstr

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ctype_of", "numpy_dtype_of"]

_INTS = {
    (1, True): ct.c_int8,
    (1, False): ct.c_uint8,
    (2, True): ct.c_int16,
    (2, False): ct.c_uint16,
    (4, True): ct.c_int32,
    (4, False): ct.c_uint32,
    (8, True): ct.c_int64,
    (8, False): ct.c_uint64,
}

# BCC gives scalar keys and values as the platform's named ctypes (c_uint, c_ulong...); these
# are the same classes on Linux x86-64 and arm64, so `k.value` works the same either way.


def _int_type(size: int, signed: bool) -> Any:
    t = _INTS.get((size, signed))
    if t is not None:
        return t
    return ct.c_uint8 * size  # 128-bit integers: raw bytes


def ctype_of(desc: dict, _cache: dict | None = None) -> Any:
    """The ctypes type for a descriptor."""
    kind = desc["kind"]
    if kind == "int":
        if desc.get("bool") and desc["size"] == 1:
            return ct.c_bool
        # `char` (and BTF's CHAR encoding) read as bytes, as BCC's char arrays do.
        if desc["size"] == 1 and (desc.get("char") or desc.get("name") == "char"):
            return ct.c_char
        return _int_type(desc["size"], desc["signed"])
    if kind == "enum":
        return _int_type(desc["size"], desc.get("signed", False))
    if kind == "float":
        return {4: ct.c_float, 8: ct.c_double}.get(desc["size"], ct.c_uint8 * desc["size"])
    if kind == "ptr":
        return ct.c_uint64
    if kind == "array":
        return ctype_of(desc["elem"]) * desc["len"]
    if kind in ("struct", "union"):
        return _aggregate(desc)
    if kind == "void":
        raise TypeError("a value of type void has no layout")
    return ct.c_uint8 * max(desc.get("size", 0), 0)


def _fields(desc: dict, packed: bool) -> tuple[list, list]:
    fields: list = []
    anon: list = []
    pos = 0  # bytes laid out so far (packed mode only)
    used: set = set()
    for i, m in enumerate(desc["members"]):
        name = m["name"] or f"__anon{i}"
        if name in used:
            name = f"{name}__{i}"
        used.add(name)
        if not m["name"]:
            anon.append(name)
        t = ctype_of(m["type"])
        bits = m["bitfield_size"]
        if packed and desc["kind"] == "struct":
            if bits:
                # Packed bitfields are not expressible reliably: expose their storage unit as bytes
                # from the first byte they touch (rare in map types; BTF still decodes them).
                start = m["bit_offset"] // 8
                end = (m["bit_offset"] + bits + 7) // 8
                if start < pos:
                    continue
                if start > pos:
                    fields.append((f"__pad{i}", ct.c_uint8 * (start - pos)))
                fields.append((name, ct.c_uint8 * (end - start)))
                pos = end
                continue
            off = m["bit_offset"] // 8
            if off > pos:
                fields.append((f"__pad{i}", ct.c_uint8 * (off - pos)))
            fields.append((name, t))
            pos = off + ct.sizeof(t)
        elif bits:
            fields.append((name, t, bits))
        else:
            fields.append((name, t))
    if packed and desc["kind"] == "struct" and pos < desc["size"]:
        fields.append(("__pad_end", ct.c_uint8 * (desc["size"] - pos)))
    return fields, anon


def _matches(cls: Any, desc: dict) -> bool:
    if ct.sizeof(cls) != desc["size"]:
        return False
    for i, m in enumerate(desc["members"]):
        if m["bitfield_size"]:
            continue
        name = m["name"] or f"__anon{i}"
        f = getattr(cls, name, None)
        if f is None or f.offset * 8 != m["bit_offset"]:
            return False
    return True


def _aggregate(desc: dict) -> Any:
    base = ct.Union if desc["kind"] == "union" else ct.Structure
    cname = desc.get("name") or f"anon_{desc['kind']}"
    for packed in (False, True):
        fields, anon = _fields(desc, packed)
        ns: dict = {}
        if packed:
            ns["_pack_"] = 1
        if anon:
            ns["_anonymous_"] = anon
        ns["_fields_"] = fields
        try:
            cls = type(cname, (base,), ns)
        except (TypeError, ValueError):
            continue
        if _matches(cls, desc) or (packed and ct.sizeof(cls) == desc["size"]):
            cls.__repr__ = _struct_repr
            if not any(f[0] == "str" for f in fields):
                cls.str = _str_field
            return cls
    # Could not reproduce the layout: raw bytes of the right size.
    return ct.c_uint8 * desc["size"]


def _str_field(self: Any, name: str, encoding: str = "utf-8") -> str:
    """A ``char[]`` field as text (up to its first NUL)."""
    v = getattr(self, name)
    if isinstance(v, ct.Array):
        v = bytes(v)
    if isinstance(v, bytes):
        return cstr(v, encoding)
    return str(v)


def _struct_repr(self: Any) -> str:
    parts = []
    for f in self._fields_:
        if f[0].startswith("__pad"):
            continue
        v = getattr(self, f[0])
        parts.append(f"{f[0]}={_plain(v)!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


def _plain(v: Any) -> Any:
    if isinstance(v, ct.Array):
        if v._type_ is ct.c_char:
            return v.value
        return [_plain(x) for x in v]
    return v


def numpy_dtype_of(desc: dict) -> Any:
    """A numpy dtype with the same layout as the descriptor (structured for structs)."""
    import numpy as np

    kind = desc["kind"]
    if kind == "int":
        if desc.get("bool") and desc["size"] == 1:
            return np.dtype(np.bool_)
        if desc["size"] > 8:
            return np.dtype((np.void, desc["size"]))
        return np.dtype(f"{'i' if desc['signed'] else 'u'}{desc['size']}")
    if kind == "enum":
        return np.dtype(f"{'i' if desc.get('signed') else 'u'}{desc['size']}")
    if kind == "float":
        return np.dtype(f"f{desc['size']}")
    if kind == "ptr":
        return np.dtype(np.uint64)
    if kind == "array":
        elem = desc["elem"]
        if elem["kind"] == "int" and elem["size"] == 1 and (elem.get("char") or elem.get("name") == "char"):
            return np.dtype(f"S{desc['len']}")
        return np.dtype((numpy_dtype_of(elem), (desc["len"],)))
    if kind in ("struct", "union"):
        names, formats, offsets = [], [], []
        for i, m in enumerate(desc["members"]):
            if m["bitfield_size"]:
                continue  # numpy has no bitfields; read them through the ctypes form
            names.append(m["name"] or f"__anon{i}")
            formats.append(numpy_dtype_of(m["type"]))
            offsets.append(m["bit_offset"] // 8)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": desc["size"]})
    return np.dtype((np.void, max(desc.get("size", 0), 1)))
