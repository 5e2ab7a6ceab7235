"""Maps for notebooks: pandas DataFrames of a map (with decoders for pids, kernel addresses,
errnos and syscall numbers) and of its histogram buckets, and histograms drawn with matplotlib.

pandas and matplotlib are optional: this module imports them only inside the functions that
need them, and nothing imports this module until a map's ``to_pandas()``, ``hist_frame()`` or
``plot()`` is called, so that ``import bpfkit`` and the tools never load them::

    df = b["counts"].to_pandas(decode={"key": "comm"})      # pid -> command
    b["dist"].hist_frame()                                   # low, high, count
    b["dist"].plot(val_type="usecs")                         # a matplotlib Figure
"""

from __future__ import annotations

from . import _hist

TYPE_CHECKING = False  # not typing's
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, Optional, Union

__all__ = ["DECODERS", "need", "decoder", "decode_columns", "hist_frame", "hist_figure"]

#: The decoders ``to_pandas(decode=)`` knows by name.
DECODERS = ("comm", "ksym", "errno", "syscall")


def need(module: str, what: str) -> Any:
    """``module`` imported, or ``ImportError`` saying that ``what`` needs it and how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs {module.partition('.')[0]}: pip install bpfkit[jupyter]") from e


# -- decoders -------------------------------------------------------------------------------------

def _as_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"decoder {name!r} takes integers, got {type(v).__name__} {v!r}")
    return int(v)


def _comm() -> Callable[[Any], str]:
    cache: dict = {}

    def comm(v: Any) -> str:
        pid = _as_int("comm", v)
        name = cache.get(pid)
        if name is None:
            if pid == 0:
                name = "swapper"  # the idle task: it has no /proc entry
            else:
                try:
                    with open(f"/proc/{pid}/comm", "rb") as f:
                        name = f.read().rstrip(b"\n").decode(errors="replace")
                except (OSError, ValueError):
                    name = "[exited]"
            cache[pid] = name
        return name

    return comm


def _ksym() -> Callable[[Any], str]:
    from ._bpf import BPF

    cache: dict = {}

    def ksym(v: Any) -> str:
        addr = _as_int("ksym", v)
        name = cache.get(addr)
        if name is None:
            name = cache[addr] = BPF.ksym(addr) if 0 <= addr < 1 << 64 else "[unknown]"
        return name

    return ksym


def _errno() -> Callable[[Any], str]:
    import errno

    def errno_name(v: Any) -> str:
        n = _as_int("errno", v)
        return errno.errorcode.get(abs(n), str(n)) if n else "0"

    return errno_name


def _syscall() -> Callable[[Any], str]:
    from .tools import _syscalls

    names = _syscalls.names()

    def syscall(v: Any) -> str:
        n = _as_int("syscall", v)
        return names[n] if 0 <= n < len(names) and names[n] else f"[unknown: {n}]"

    return syscall


_MAKERS = {"comm": _comm, "ksym": _ksym, "errno": _errno, "syscall": _syscall}


def decoder(how: Union[str, Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """The per-value function of a decoder: a name of :data:`DECODERS` (each call makes a new
    one, with its own cache), or ``how`` itself when it is callable.

    * ``"comm"``: a pid (or tid) as its process's command, from ``/proc/PID/comm``;
      ``"[exited]"`` once the process is gone, ``"swapper"`` for 0 (the idle task).
    * ``"ksym"``: a kernel address as the symbol that holds it (:meth:`bpfkit.BPF.ksym`), or
      ``"[unknown]"``.
    * ``"errno"``: an error number, positive or negative, as its name (``-2`` and ``2`` are
      ``"ENOENT"``); ``"0"`` for 0, and the number as text for one that is not an errno.
    * ``"syscall"``: a system call number of this machine's architecture as the call's name, or
      ``"[unknown: N]"``.

    >>> decoder("errno")(-13)
    'EACCES'
    """
    if callable(how):
        return how
    if not isinstance(how, str) or how not in _MAKERS:
        raise ValueError(f"unknown decoder {how!r}: decoders are {', '.join(map(repr, DECODERS))} or a callable")
    return _MAKERS[how]()


def _resolve(columns: list, name: str, index_name: Optional[str]) -> list:
    """The columns ``name`` designates: itself; the per-CPU columns ``name_cpuN``; or, for a bare
    field name, the one column (with its per-CPU columns) whose last part is that name."""
    import re

    if name in columns:
        return [name]
    if index_name is not None and name == index_name:
        return [None]  # the index
    cpu = re.compile(r"(.*)_cpu\d+")

    def base(c: str) -> str:
        m = cpu.fullmatch(c)
        return m.group(1) if m else c

    family = [c for c in columns if base(c) == name]
    if family:
        return family
    bases = list(dict.fromkeys(base(c) for c in columns if base(c).rpartition(".")[2] == name))
    if len(bases) > 1:
        raise ValueError(f"decode={{{name!r}: ...}} could be any of the columns {', '.join(bases)}: name one")
    if not bases:
        known = list(dict.fromkeys(base(c) for c in columns)) + ([index_name] if index_name else [])
        raise ValueError(f"decode={{{name!r}: ...}} names no column: the columns are {', '.join(known)}")
    return [c for c in columns if base(c) == bases[0]]


def _apply(fn: Callable[[Any], Any], values: Any) -> list:
    import numpy as np

    def one(x: Any) -> Any:
        if isinstance(x, np.ndarray):  # an array field: each element
            return [fn(y.item() if hasattr(y, "item") else y) for y in x]
        return fn(x.item() if isinstance(x, np.generic) else x)

    return [one(x) for x in values]


def decode_columns(df: Any, decode: Mapping[str, Union[str, Callable[[Any], Any]]], *,
                   index_name: Optional[str] = None) -> Any:
    """``df`` with the columns ``decode`` names replaced, in place and under the same name, by
    their decoded values (see :func:`decoder`). A key of ``decode`` is a column name
    (``"key.pid"``, ``"value"``), a per-CPU column's name without its ``_cpuN`` (all of them
    are decoded), a bare field name that ends exactly one column's name (``"pid"``), or
    ``index_name`` for the index (an array's key)."""
    if not hasattr(decode, "items"):
        raise TypeError(f"decode= takes a mapping of column names to decoders, not {type(decode).__name__}")
    cols = [str(c) for c in df.columns]
    plan: dict = {}
    for name, how in decode.items():
        fn = decoder(how)
        for c in _resolve(cols, str(name), index_name):
            if c in plan:
                raise ValueError(f"column {c or index_name!r} is decoded twice (by decode={{{name!r}: ...}})")
            plan[c] = fn
    for c, fn in plan.items():
        if c is None:
            df.index = _apply(fn, df.index)
        else:
            df[c] = _apply(fn, df[c])
    return df


# -- histograms -----------------------------------------------------------------------------------

def hist_frame(hists: dict, *, linear: bool = False, section_print_fn: Optional[Callable[[Any], str]] = None,
               bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None) -> Any:
    """``{section: {slot: count}}`` (see :func:`bpfkit._hist.collect`) as a DataFrame with one
    row per bucket: ``low``, ``high``, ``count`` for a log2 histogram, ``value``, ``count`` for a
    linear one, after a ``section`` column when the map has sections. The rows are those of
    :func:`bpfkit._hist.hist_rows` (the same in every section); a count that is not in a
    bucket raises ``ValueError``."""
    pd = need("pandas", "hist_frame()")
    sections = _hist.hist_rows(hists, linear=linear, section_print_fn=section_print_fn,
                               bucket_sort_fn=bucket_sort_fn, strip_leading_zero=strip_leading_zero, strict=True)
    sectioned = sections[0][0] is not None or len(sections) > 1
    data: dict = {"section": []} if sectioned else {}
    names = ("value", "count") if linear else ("low", "high", "count")
    for n in names:
        data[n] = []
    for label, rows, _left_out in sections:
        for lo, hi, count in rows:
            if sectioned:
                data["section"].append(label)
            if linear:
                data["value"].append(lo)
            else:
                data["low"].append(lo)
                data["high"].append(hi)
            data["count"].append(count)
    out = pd.DataFrame(data)
    for n in names:  # an empty histogram's columns are still integers
        if out[n].dtype == object and not len(out):
            out[n] = out[n].astype("int64")
    return out


_FIGURE_CLASS: Any = None


def _figure_class() -> Any:
    """matplotlib's ``Figure`` with a PNG representation of its own, so that a notebook shows it
    even where matplotlib's inline backend was never started (it registers its own formatter,
    which takes precedence, when it is)."""
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        figure: Any = need("matplotlib.figure", "plot()")

        class HistogramFigure(figure.Figure):
            """A histogram drawn by ``table.plot()``: a ``matplotlib.figure.Figure``."""

            def _repr_png_(self) -> bytes:
                import io

                buf = io.BytesIO()
                self.savefig(buf, format="png")
                return buf.getvalue()

        HistogramFigure.__module__, HistogramFigure.__qualname__ = __name__, "HistogramFigure"
        _FIGURE_CLASS = HistogramFigure
    return _FIGURE_CLASS


#: At most this many bucket labels are written under a panel; past it, every k-th.
MAX_TICK_LABELS = 40


def hist_figure(hists: dict, *, linear: bool = False, val_type: str = "value", section_header: str = "Bucket ptr",
                section_print_fn: Optional[Callable[[Any], str]] = None, bucket_sort_fn: Optional[Callable] = None,
                strip_leading_zero: Optional[bool] = None, title: Optional[str] = None,
                figsize: Optional[tuple] = None, color: Optional[str] = None) -> Any:
    """``{section: {slot: count}}`` drawn as bars, one panel (an ``Axes``) per section, titled
    ``section_header = section``, with the buckets of :func:`bpfkit._hist.hist_rows` (the same
    in every panel, so panels compare): log2 buckets labelled ``low -> high``, linear ones by
    value. Counts that are not in a bucket are said in a note on their panel. Built with
    matplotlib's object API (no pyplot state), so any backend, or none, can show or save it."""
    fig_cls = _figure_class()
    from matplotlib.ticker import MaxNLocator
    sections = _hist.hist_rows(hists, linear=linear, section_print_fn=section_print_fn,
                               bucket_sort_fn=bucket_sort_fn, strip_leading_zero=strip_leading_zero)
    nbars = max(len(rows) for _, rows, _ in sections)
    if figsize is None:
        figsize = (min(20.0, max(6.4, 1.5 + 0.45 * nbars)), 0.8 + 2.6 * len(sections))
    fig = fig_cls(figsize=figsize, layout="constrained")
    axes = fig.subplots(len(sections), 1, squeeze=False)[:, 0]
    for ax, (label, rows, left_out) in zip(axes, sections):
        labels = [str(lo) if linear else f"{lo} -> {hi}" for lo, hi, _ in rows]
        xs = list(range(len(rows)))
        ax.bar(xs, [c for _, _, c in rows], width=0.8, color=color or "#4878a8")
        step = -(-len(rows) // MAX_TICK_LABELS) if rows else 1
        ax.set_xticks(xs[::step])
        long = any(len(t) > 6 for t in labels)
        ax.set_xticklabels(labels[::step], rotation=45 if long else 0, ha="right" if long else "center",
                           fontsize="small")
        ax.set_xlabel(val_type)
        ax.set_ylabel("count")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.margins(x=0.01)
        if label is not None:
            ax.set_title(f"{section_header} = {label}", loc="left", fontsize="medium")
        notes = []
        if not rows:
            notes.append("no counts")
        if left_out:
            where = "below 0" if linear else f"outside a log2 histogram's 0..{_hist.LOG2_SLOTS - 1}"
            notes.append(_hist._left_out(left_out, where))
        if notes:
            ax.text(0.99, 0.95, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
