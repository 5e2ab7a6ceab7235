"""A live view of a map: :func:`watch` redraws a histogram or a top-N table of a map in place every
interval, in Jupyter or IPython, and prints it to stdout elsewhere. ``%bpf_watch`` (see
:mod:`bpfkit._magics`) is the same from a magic.

>>> import bpfkit
>>> b = bpfkit.BPF(text=src)
>>> bpfkit.watch(b["dist"], interval=1, count=10)          # a log2 histogram, redrawn each second
>>> bpfkit.watch(b["counts"], kind="top", top=5)            # the five largest, until interrupted

Each frame is a :class:`MapView`: an object with ``_repr_html_`` (a table, or the histogram as
``<pre>`` text) and a text form (``str()``), which is what is printed outside IPython.
"""

from __future__ import annotations

import ctypes as ct
import sys
import time

from . import _hist
from ._values import plain_value, scalar

TYPE_CHECKING = False  # not typing's: typing stays off the import path
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

__all__ = ["watch", "MapView", "choose_kind", "KINDS"]

#: The forms a view takes: a power-of-two histogram (BCC's ``print_log2_hist``), a linear one
#: (``print_linear_hist``), or the largest entries, key -> value.
KINDS = ("log2", "linear", "top")

#: Words in a map's name that mark an integer-keyed map as a histogram (BCC's ``BPF_HISTOGRAM(dist)``).
_HIST_WORDS = ("hist", "dist")


def _key_fields(table: Any) -> list:
    """The names of the fields of a struct key (padding left out), or [] for a scalar key."""
    key = getattr(table, "Key", None)
    if isinstance(key, type) and issubclass(key, (ct.Structure, ct.Union)):
        return [f[0] for f in key._fields_ if not f[0].startswith("__pad")]
    return []


def _int_key(table: Any) -> bool:
    key = getattr(table, "Key", None)
    code = getattr(key, "_type_", None)
    return isinstance(code, str) and code in "bBhHiIlLqQ"


def choose_kind(table: Any) -> str:
    """The form :func:`watch` gives ``table`` when ``kind`` is not given, from the map's name and
    key type (never its contents, so the form does not change from one frame to the next):

    * ``"log2"`` when the key is a struct with a ``slot`` field (BCC's keyed histograms: one
      histogram per value of the struct's first other field), or an integer and the map's name
      contains ``hist`` or ``dist`` (``dist``, ``hist``, ``lat_hist``...);
    * ``"top"`` otherwise.

    A linear histogram is never guessed: ask for ``kind="linear"``.
    """
    if "slot" in _key_fields(table):
        return "log2"
    name = str(getattr(table, "name", "")).lower()
    if _int_key(table) and any(w in name for w in _HIST_WORDS):
        return "log2"
    return "top"


def _text(v: Any) -> Any:
    """A key's or value's field as a plain Python value: ints stay ints, ``char[]`` is text,
    other arrays are lists, a nested struct is its fields as a dict."""
    v = plain_value(v)
    if isinstance(v, (ct.Structure, ct.Union)):
        return {f[0]: _text(getattr(v, f[0])) for f in v._fields_ if not f[0].startswith("__pad")}
    if isinstance(v, list):
        return [_text(x) for x in v]
    return v


def _key_columns(k: Any) -> dict:
    if isinstance(k, (ct.Structure, ct.Union)):
        return {f[0]: _text(getattr(k, f[0])) for f in k._fields_ if not f[0].startswith("__pad")}
    return {"key": _text(scalar(k))}


def _value_columns(v: Any) -> dict:
    """A value as ``{column: number or text}``: a per-CPU value summed over the CPUs (field by
    field for a struct), a struct's fields one column each."""
    names = getattr(getattr(v, "dtype", None), "names", None)
    if names:  # a per-CPU struct value: numpy, one element per CPU
        return {n: _number(v[n].sum()) for n in names}
    if isinstance(v, (ct.Structure, ct.Union)):
        return {f[0]: _text(getattr(v, f[0])) for f in v._fields_ if not f[0].startswith("__pad")}
    return {"value": _number(scalar(v))}


def _number(x: Any) -> Any:
    """numpy scalars as Python's, for printing and sorting."""
    item = getattr(x, "item", None)
    return item() if callable(item) else x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class MapView:
    """One frame of a live view of a map: a histogram (``kind`` ``"log2"`` or ``"linear"``; the
    counts in ``hists``, ``{section: {slot: count}}`` as :mod:`bpfkit.table` takes them) or the
    largest entries (``"top"``: ``columns`` and ``rows``, largest first, of ``entries`` non-zero ones).
    ``str(view)`` is the text form; Jupyter shows ``_repr_html_``.

    >>> view = MapView.of(b["counts"], "top", top=3)
    >>> print(view)
    """

    def __init__(self, name: str, kind: str, *, hists: Optional[dict] = None, columns: Optional[list] = None,
                 rows: Optional[list] = None, entries: int = 0, val_type: str = "value",
                 section_header: str = "Bucket ptr", note: str = "") -> None:
        self.name = name
        self.kind = kind
        self.hists = hists or {}
        self.columns = columns or []
        self.rows = rows or []
        self.entries = entries
        self.val_type = val_type
        self.section_header = section_header
        #: What the title says after the map's name and form (the time, which update).
        self.note = note

    @classmethod
    def of(cls, table: Any, kind: Optional[str] = None, *, top: int = 10, sort_by: Optional[str] = None,
           val_type: str = "value", section_header: Optional[str] = None, note: str = "") -> MapView:
        """The view of ``table`` now (one batch read of the map); ``kind`` as :func:`watch` takes it."""
        kind = kind or choose_kind(table)
        name = str(getattr(table, "name", "map"))
        items = table.items()
        if kind != "top":
            fields = _key_fields(table)
            if section_header is None:
                slot = "slot" if "slot" in fields else (fields[-1] if fields else None)
                section_header = next((f for f in fields if f != slot), "Bucket ptr")
            return cls(name, kind, hists=_hist.collect(items), entries=len(items), val_type=val_type,
                       section_header=section_header, note=note)
        rows = []
        columns: list = []
        for k, v in items:
            row = _key_columns(k)
            nkey = len(row)
            for c, x in _value_columns(v).items():
                row[f"value.{c}" if c in row else c] = x  # a key field and a value field of one name
            if not columns:
                columns = list(row)
                values = columns[nkey:]
                numeric = [c for c in values if _is_number(row[c])]
                if sort_by is None:
                    sort_by = numeric[0] if numeric else values[0]
                elif sort_by not in columns:
                    raise ValueError(f"sort_by={sort_by!r}: map `{name}` has the columns {', '.join(columns)}")
            rows.append(row)
        # Zero rows are left out: an array map has every index, used or not.
        rows = [r for r in rows if r.get(sort_by)]
        rows.sort(key=lambda r: r[sort_by] if _is_number(r[sort_by]) else 0, reverse=True)
        return cls(name, "top", columns=columns, rows=[[r[c] for c in columns] for r in rows[:top]],
                   entries=len(rows), note=note)

    # -- text ------------------------------------------------------------------------------------
    def title(self) -> str:
        what = {"log2": "log2 histogram", "linear": "linear histogram"}.get(self.kind)
        if what is None:
            shown = len(self.rows)
            what = f"top {shown} of {self.entries} entr{'y' if self.entries == 1 else 'ies'}"
        return f"{self.name}: {what}" + (f" ({self.note})" if self.note else "")

    def body(self) -> str:
        """The view without its title: BCC's histogram text, or the table's aligned columns."""
        import io

        if self.kind in ("log2", "linear"):
            out = io.StringIO()
            if not any(any(h.values()) for h in self.hists.values()):
                return "(no counts yet)"
            if self.kind == "log2":
                _hist.print_log2_hist(self.hists, self.val_type, self.section_header, file=out)
            else:
                _hist.print_linear_hist(self.hists, self.val_type, self.section_header, file=out)
            return out.getvalue().strip("\n")
        if not self.rows:
            return "(no entries)"
        cells = [[str(c).upper() for c in self.columns]] + [[str(x) for x in r] for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        nums = [all(_is_number(r[i]) for r in self.rows) for i in range(len(self.columns))]
        return "\n".join("  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, nums)).rstrip()
                         for r in cells)

    def __str__(self) -> str:
        return f"{self.title()}\n{self.body()}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    # -- HTML ------------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        import html

        head = f"<div style='font-weight: bold'>{html.escape(self.title())}</div>"
        if self.kind != "top" or not self.rows:
            return f"{head}<pre style='font-family: monospace; line-height: 1.25'>{html.escape(self.body())}</pre>"
        th = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in self.rows)
        return f"{head}<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _sink(file: Any) -> Callable[[MapView], None]:
    """Where frames go: an IPython display, updated in place, when IPython runs this code and no
    ``file`` is given; otherwise the text form printed to ``file`` (stdout)."""
    if file is None and "IPython" in sys.modules:  # IPython not imported: no shell can be running
        from IPython.core.interactiveshell import InteractiveShell

        if InteractiveShell.initialized():
            from IPython.display import display

            handle: list = []

            def show(view: MapView) -> None:
                if handle:
                    handle[0].update(view)
                else:
                    handle.append(display(view, display_id=True))

            return show

    def show_text(view: MapView) -> None:
        out = file if file is not None else sys.stdout
        print(f"{view}\n", file=out, flush=True)

    return show_text


def watch(table: Any, interval: float = 1.0, count: Optional[int] = None, *, kind: Optional[str] = None,
          top: int = 10, sort_by: Optional[str] = None, val_type: str = "value",
          section_header: Optional[str] = None, file: Any = None) -> None:
    """Shows ``table`` (a map, ``b["dist"]``) live: drawn at once, then again after each
    ``interval`` seconds, ``count`` times (forever when None), until interrupted (Ctrl-C, or
    Jupyter's interrupt), which ends the view quietly with a last frame marked "stopped".
    Returns None.

    In IPython or Jupyter the frame is one display output, updated in place; elsewhere (or with
    ``file=``) each frame's text is printed to ``file`` (default stdout).

    ``kind`` is the form: ``"log2"``, a power-of-two histogram as BCC's ``print_log2_hist``
    prints it (keys are slots; struct keys with a ``slot`` field give one histogram per section,
    headed ``section_header``, by default the section field's name); ``"linear"``, one row per
    key value, as ``print_linear_hist``; ``"top"``, the ``top`` entries with the largest value,
    key -> value, largest first (per-CPU values summed over the CPUs; for a struct value, the
    ``sort_by`` field, by default the first numeric one; zero values left out). Without
    ``kind``, :func:`choose_kind` picks ``"log2"`` for a map keyed by a struct with a ``slot``
    field or by an integer under a name containing ``hist`` or ``dist``, and ``"top"``
    otherwise. ``val_type`` heads a histogram's value column (``"usecs"``).

    >>> bpfkit.watch(b["dist"], interval=0.5, count=20, val_type="usecs")
    >>> bpfkit.watch(b["counts"], kind="top", top=5)
    """
    if not callable(getattr(table, "items", None)) or not hasattr(table, "max_entries"):
        raise TypeError(f"watch() takes a map with keys and values, such as b['counts'], not {type(table).__name__}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(map(repr, KINDS))} (or None: chosen from the map), not {kind!r}")
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    if count is not None and count < 0:
        raise ValueError(f"count must be 0 or more, or None (forever), not {count!r}")
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top!r}")
    kind = kind or choose_kind(table)
    show = _sink(file)
    opts = dict(top=top, sort_by=sort_by, val_type=val_type, section_header=section_header)
    every = f"every {interval:g} s"

    def frame(n: int, state: str = "") -> MapView:
        when = time.strftime("%H:%M:%S")
        which = f"update {n}" + (f" of {count}" if count is not None else "") if n else "start"
        return MapView.of(table, kind, note=f"{when}, {state or which}, {every}", **opts)

    n = 0
    try:
        show(frame(0))
        start = time.monotonic()
        while count is None or n < count:
            # Drawn on a fixed schedule (start + n intervals), so slow reads do not add up.
            delay = start + (n + 1) * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n += 1
            show(frame(n))
    except KeyboardInterrupt:
        try:
            show(frame(n, f"stopped after {n} update{'s' if n != 1 else ''}"))
        except KeyboardInterrupt:
            pass
    return None
