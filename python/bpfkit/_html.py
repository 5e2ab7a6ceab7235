"""Rich display in notebooks: a :class:`bpfkit.BPF` object and its maps as HTML.

Evaluating ``b`` in a Jupyter cell shows the object's programs (type, section, what each is
attached to) and maps (type, key and value types, entries); evaluating ``b["counts"]`` shows
the map's type, how full it is and its first rows. Every text is escaped; a closed object says
so instead of raising. Only numpy is used (never pandas), so showing a map stays cheap.
"""

from __future__ import annotations

import html

TYPE_CHECKING = False  # not typing's
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["bpf_html", "table_html", "type_name", "ROWS"]

#: How many rows a map's display shows (the rest are counted).
ROWS = 10

_STYLE = ("<style>.bpfkit-repr table{border-collapse:collapse;margin:0.3em 0}"
          ".bpfkit-repr th,.bpfkit-repr td{padding:0.15em 0.6em;text-align:left;font-family:monospace}"
          ".bpfkit-repr caption{text-align:left;font-weight:bold}</style>")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def type_name(desc: Optional[dict], size: int = 0) -> str:
    """A BTF type description (``key_desc()``, ``describe_type()``) as C spells the type:
    ``unsigned int``, ``struct key_t``, ``char[16]``; ``N bytes`` for a type BTF does not give."""
    if not desc or desc.get("kind") in (None, "void", "opaque"):
        return f"{size} bytes" if size else "-"
    kind = desc["kind"]
    if kind == "array":
        return f"{type_name(desc.get('elem'))}[{desc.get('len', '?')}]"
    if kind in ("struct", "union", "enum"):
        name = desc.get("name")
        if name:
            return f"{kind} {name}"
        members = ", ".join(m.get("name") or "?" for m in desc.get("members", ()))
        return f"{kind} {{ {members} }}" if members else f"anonymous {kind}"
    if kind == "ptr":
        return "pointer"
    return str(desc.get("name") or kind)


def _table(caption: str, header: list, rows: list) -> str:
    out = [f"<table><caption>{_e(caption)}</caption>" if caption else "<table>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _wrap(title: str, body: str = "") -> str:
    return f'{_STYLE}<div class="bpfkit-repr"><p>{title}</p>{body}</div>'


# -- the BPF object -------------------------------------------------------------------------------

def bpf_html(b: Any) -> str:
    """The programs and maps of ``b`` as HTML."""
    if b.closed:
        return _wrap("<b>BPF</b> object (closed: its programs are detached and its maps released)")
    obj = b._obj
    links: dict = {}
    for lk in obj.links():
        links.setdefault(lk.program, []).append(f"{lk.kind} {lk.target} (link {lk.id})")
    progs = []
    for p in obj.programs():
        attached = "; ".join(links.get(p.name, ())) or ("not loaded" if p.fd < 0 else "not attached")
        progs.append((p.name, p.prog_type_name.lower(), p.section.raw, attached))
    maps = []
    for m in obj.maps():
        if m.internal:
            continue
        key = type_name(obj.describe_type(m.key_type_id) if m.key_type_id else None, m.key_size)
        value = type_name(obj.describe_type(m.value_type_id) if m.value_type_id else None, m.value_size)
        maps.append((m.name, m.map_type_name.lower(), key, value, m.max_entries))
    title = (f"<b>BPF</b> object: {len(progs)} program{'s' if len(progs) != 1 else ''}, "
             f"{len(maps)} map{'s' if len(maps) != 1 else ''}")
    body = _table("Programs", ["name", "type", "section", "attached to"], progs)
    if maps:
        body += _table("Maps", ["name", "type", "key", "value", "max entries"], maps)
    chosen = getattr(b, "alternatives", None) or {}
    if chosen:
        body += _table("Fallback ladders", ["ladder", "chosen", "passed over"],
                       [(first, alt.program, "; ".join(f"{p}: {why}" for p, why in alt.passed_over) or "-")
                        for first, alt in chosen.items()])
    return _wrap(title, body)


# -- maps -----------------------------------------------------------------------------------------

def _cell(x: Any) -> str:
    """A value as text for a cell: numbers plainly, arrays as lists (long ones cut)."""
    import numpy as np

    if isinstance(x, np.ndarray):
        items = [_cell(y) for y in x[:8]]
        return "[" + ", ".join(items) + (f", ... ({len(x)} in all)" if len(x) > 8 else "") + "]"
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bytes):
        return repr(x)
    return str(x)


def _numeric(col: Any) -> bool:
    return col.dtype.kind in "iufb"


def _value_columns(t: Any, values: Any, ncpu: int) -> list:
    """``[(name, column)]`` of the values, a per-CPU map's numbers summed over CPUs."""
    from ._values import columns

    out = []
    for name, col in columns("value", values):
        if ncpu:
            if _numeric(col):
                col = col.sum(axis=1)
                name = f"{name} (sum of {ncpu} CPUs)"
            else:
                name = f"{name} (per CPU)"
        out.append((name, col))
    return out


def _sorted(keys: Any) -> Any:
    """The order of ``keys`` (numpy), where numpy can sort them; else the kernel's order."""
    import numpy as np

    try:
        return np.argsort(keys, kind="stable")
    except (TypeError, ValueError):
        return np.arange(len(keys))


def _hash_rows(t: Any) -> tuple:
    from ._maps import _PerCpu
    from ._values import columns

    keys, values = t.to_numpy()
    ncpu = values.shape[1] if isinstance(t, _PerCpu) else 0
    order = _sorted(keys)[:ROWS]
    cols = list(columns("key", keys)) + _value_columns(t, values, ncpu)
    rows = [[_cell(col[i]) for _, col in cols] for i in order]
    return [n for n, _ in cols], rows, len(keys), f"{len(keys)} of {t.max_entries} entries", ""


def _array_rows(t: Any) -> tuple:
    """An array's elements that are not zero: every element exists, so the zero ones are
    counted, not shown."""
    import numpy as np

    from ._maps import _PerCpu

    values = t.to_numpy()
    ncpu = values.shape[1] if isinstance(t, _PerCpu) else 0
    vcols = _value_columns(t, values, ncpu)
    used = np.zeros(len(values), dtype=bool)
    for _, col in vcols:
        nz = (col != "") if col.dtype == object else (col != 0)
        used |= nz.reshape(len(values), -1).any(axis=1) if nz.ndim > 1 else nz
    idx = np.flatnonzero(used)
    rows = [[str(i)] + [_cell(col[i]) for _, col in vcols] for i in idx[:ROWS]]
    size = f"{t.max_entries} elements, {len(idx)} not zero"
    return ["key"] + [n for n, _ in vcols], rows, len(idx), size, " (zero elements are not shown)"


def _stack_rows(t: Any) -> tuple:
    from ._bpf import BPF

    items = sorted(t.items(), key=lambda kv: kv[0].value)
    rows = []
    for k, v in items[:ROWS]:
        raw = bytes(v)
        addrs = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
        addrs = addrs[:addrs.index(0)] if 0 in addrs else addrs
        # Kernel addresses are named; user addresses need the process, which the map does not keep.
        frames = [BPF.ksym(a) if a >= 0xFFFF800000000000 else f"{a:#x}" for a in addrs[:3]]
        rows.append([str(k.value), str(len(addrs)), " <- ".join(frames) + (" ..." if len(addrs) > 3 else "")])
    return (["stack id", "frames", "innermost frames"], rows, len(items),
            f"{len(items)} of {t.max_entries} stacks", "")


def _prog_array_rows(t: Any) -> tuple:
    items = sorted(((k.value, v.value) for k, v in t.items()))
    rows = [[str(k), str(v)] for k, v in items[:ROWS]]
    return ["index", "program id"], rows, len(items), f"{len(items)} of {t.max_entries} slots set", ""


def _map_in_map_rows(t: Any) -> tuple:
    items = t.items()
    rows = []
    for k, inner in items[:ROWS]:
        key = k.value if hasattr(k, "value") else k
        rows.append([str(key), f"{inner.name} ({_type_label(inner)}, {inner.max_entries} max entries)"])
    return ["key", "inner map"], rows, len(items), f"{len(items)} of {t.max_entries} entries", ""


def _type_label(t: Any) -> str:
    from ._maps import BPF_MAP_TYPE

    names = {v: k for k, v in BPF_MAP_TYPE.items()}
    return names.get(t.map_type, str(t.map_type))


def table_html(t: Any) -> str:
    """The map ``t`` (any wrapper of :mod:`bpfkit._maps`) as HTML: its class, name, type, key
    and value types, how many entries are in use where that is cheap to know, and its first
    :data:`ROWS` rows (hash keys sorted) with a count of the rest."""
    from ._errors import ClosedError
    from ._maps import ArrayTable, BloomFilter, MapInMap, ProgArray, QueueStack, StackTrace

    kdesc = getattr(t, "key_desc", None)
    key = type_name(kdesc, getattr(t._m, "key_size", 0)) if kdesc is not None else None
    value = type_name(t.leaf_desc, getattr(t._m, "value_size", 0))
    head = f"<b>{_e(type(t).__name__)}</b> <code>{_e(t.name)}</code>: {_e(_type_label(t))}"
    types = (f", key <code>{_e(key)}</code>" if key is not None else "") + f", value <code>{_e(value)}</code>"
    bpf = getattr(t, "bpf", None)
    if bpf is not None and bpf.closed:
        return _wrap(f"{head}{types}, {t.max_entries} max entries (closed: the BPF object was closed)")
    try:
        if isinstance(t, QueueStack):
            try:
                v = t.peek()
                nxt = f", next value {_cell(getattr(v, 'value', v))}"
            except KeyError:
                nxt = ", empty"
            return _wrap(f"{head}{types}, {t.max_entries} max entries{_e(nxt)}")
        if isinstance(t, BloomFilter):
            return _wrap(f"{head}{types}, {t.max_entries} max entries (a Bloom filter cannot list what it holds)")
        if isinstance(t, StackTrace):
            header, rows, used, size, note = _stack_rows(t)
        elif isinstance(t, ProgArray):
            header, rows, used, size, note = _prog_array_rows(t)
        elif isinstance(t, MapInMap):
            header, rows, used, size, note = _map_in_map_rows(t)
        elif isinstance(t, ArrayTable):
            header, rows, used, size, note = _array_rows(t)
        else:
            header, rows, used, size, note = _hash_rows(t)
    except ClosedError:
        return _wrap(f"{head}{types}, {t.max_entries} max entries (closed)")
    body = _table("", header, rows) if rows else "<p>(empty)</p>"
    if used > len(rows):
        body += f"<p>... {used - len(rows)} more{_e(note)}</p>"
    return _wrap(f"{head}{types}, {_e(size)}", body)
