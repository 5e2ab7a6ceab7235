"""Keys and values as text in BCC's table notation, and back (``key_sprintf``, ``leaf_scanf``...).

The notation, as BCC's tables print it: an integer in hex (``0x2``; a negative one as its
two's complement of the field's width, ``0xffffffff`` for an ``int`` of -1), a ``char[]`` in
double quotes (up to its first NUL), a struct as ``{ a b c }``, an array as ``[ a b c ]``,
nested as the type is. So ``struct { u32 a[3]; u32 b; }`` holding ``{1, 2, 3}, 4`` is
``b"{ [ 0x1 0x2 0x3 ] 0x4 }"``. bpfkit writes it from the map's BTF-built ctypes type; the
text goes both ways, so ``leaf_scanf(leaf_sprintf(v))`` is ``v``.

One liberty over BCC: a ``"`` or ``\\`` inside a string is written with a backslash before
it, so that any string reads back (BCC writes them bare, and cannot read such a string back).
A union is written as its first member (in braces), and read back into that member.
"""

from __future__ import annotations

import ctypes as ct

from ._values import build

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["sprintf", "scanf"]


def _fields(t: Any) -> list:
    """``[(name, type, bits)]`` of a struct's fields, padding left out; a union's first member."""
    out = [(f[0], f[1], f[2] if len(f) > 2 else 0) for f in t._fields_ if not f[0].startswith("__pad")]
    return out[:1] if issubclass(t, ct.Union) else out


def _is_char_array(t: Any) -> bool:
    return issubclass(t, ct.Array) and t._type_ is ct.c_char


def _width(t: Any, bits: int) -> int:
    return bits or 8 * ct.sizeof(t)


def _put(t: Any, v: Any, bits: int, out: list) -> None:
    if issubclass(t, (ct.Structure, ct.Union)):
        out.append("{")
        for name, ft, fbits in _fields(t):
            _put(ft, getattr(v, name), fbits, out)
        out.append("}")
    elif _is_char_array(t):
        raw = v if isinstance(v, bytes) else bytes(v)
        raw = raw.split(b"\0", 1)[0]
        text = raw.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{text}"')
    elif issubclass(t, ct.Array):
        out.append("[")
        for i in range(t._length_):
            _put(t._type_, v[i], 0, out)
        out.append("]")
    else:
        if isinstance(v, ct._SimpleCData):
            v = v.value
        if isinstance(v, float):
            out.append(repr(v))
            return
        if isinstance(v, bytes):  # a lone `char`
            v = v[0] if v else 0
        out.append(hex(int(v) & ((1 << _width(t, bits)) - 1)))


def sprintf(t: Any, v: Any) -> bytes:
    """``v`` (a ``t``, or anything ``t`` can be built from) as text in BCC's notation, as bytes.

    >>> sprintf(ct.c_int, -1)
    b'0xffffffff'
    """
    if not isinstance(v, t):
        v = build(t, v)
    out: list = []
    _put(t, v, 0, out)
    return " ".join(out).encode("latin-1")


def _tokens(text: str) -> list:
    toks = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "{}[]":
            toks.append(c)
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ValueError(f"unterminated string at offset {i}: {text!r}")
            toks.append(("str", "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '{}[]"':
                j += 1
            toks.append(text[i:j])
            i = j
    return toks


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0

    def next(self, what: str) -> Any:
        if self.pos >= len(self.toks):
            raise ValueError(f"the text ends where {what} was expected")
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.next(repr(tok))
        if got != tok:
            raise ValueError(f"expected {tok!r}, found {got!r} (token {self.pos})")

    def value(self, t: Any, bits: int) -> Any:
        if issubclass(t, (ct.Structure, ct.Union)):
            self.expect("{")
            vals = tuple(self.value(ft, fbits) for _name, ft, fbits in _fields(t))
            self.expect("}")
            return vals
        if _is_char_array(t):
            tok = self.next("a quoted string")
            if not isinstance(tok, tuple):
                raise ValueError(f"expected a quoted string for {t.__name__}, found {tok!r}")
            return tok[1].encode("latin-1")
        if issubclass(t, ct.Array):
            self.expect("[")
            vals = [self.value(t._type_, 0) for _ in range(t._length_)]
            self.expect("]")
            return vals
        tok = self.next(f"a number for {t.__name__}")
        if not isinstance(tok, str) or tok in "{}[]":
            raise ValueError(f"expected a number for {t.__name__}, found {tok!r}")
        if t in (ct.c_float, ct.c_double, ct.c_longdouble):
            return float(tok)
        try:
            i = int(tok, 0)
        except ValueError:
            raise ValueError(f"{tok!r} is not a number (for {t.__name__})") from None
        width = _width(t, bits)
        if i < 0 or i >= 1 << width:
            raise OverflowError(f"{tok} does not fit {width} bits ({t.__name__})")
        signed = t in (ct.c_byte, ct.c_short, ct.c_int, ct.c_long, ct.c_longlong, ct.c_int8, ct.c_int16,
                       ct.c_int32, ct.c_int64)
        if signed and i >= 1 << (width - 1):
            i -= 1 << width
        if t is ct.c_char:
            return bytes([i])
        return i


def scanf(t: Any, text: Any) -> Any:
    """The ``t`` that ``text`` (bytes or str in BCC's notation) describes; ``ValueError``
    saying where it differs from ``t``'s shape.

    >>> scanf(ct.c_int, b"0xffffffff").value
    -1
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    r = _Reader(text)
    v = r.value(t, 0)
    if r.pos != len(r.toks):
        raise ValueError(f"text left over after the {t.__name__}: {r.toks[r.pos:]!r}")
    if isinstance(v, (int, float)) and not issubclass(t, (ct.Structure, ct.Union, ct.Array)):
        return t(v)
    if isinstance(v, bytes) and t is ct.c_char:
        return t(v)
    return build(t, v)
