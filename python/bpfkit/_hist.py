"""Histograms in BCC's formats: power-of-two (``print_log2_hist``), linear and JSON, each to a
``file=`` of the caller's choice, the data of a JSON line (``hist_json``), and the power-of-two
buckets as numpy (``log2_buckets``). A histogram is ``{section: {slot: count}}``,
with section ``None`` for a map that holds a single histogram."""

from __future__ import annotations

import ctypes as ct
import time

from ._values import plain_value, scalar

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Optional

__all__ = ["print_log2_hist", "print_linear_hist", "print_json_hist", "hist_json", "log2_buckets", "collect",
           "log2_bounds", "hist_rows"]


def collect(items: Iterable, bucket_fn: Optional[Callable[[Any], Any]] = None) -> dict:
    """``{section: {slot: count}}`` from a map's ``(key, value)`` pairs. Keys are slots, or
    structs whose ``slot`` field (else the last) is the slot and whose first other field is the
    section; ``bucket_fn`` maps a section to the one it is counted under."""
    hists: dict = {}
    for k, v in items:
        val = scalar(v)
        if isinstance(k, (ct.Structure, ct.Union)):
            names = [f[0] for f in k._fields_ if not f[0].startswith("__pad")]
            slot_name = "slot" if "slot" in names else names[-1]
            sec_name = next(n for n in names if n != slot_name)
            # A char[] section stays bytes, as BCC hands it to bucket_fn and section_print_fn
            # (BCC's tools pass bytes.decode); it prints decoded.
            raw = getattr(k, sec_name)
            section = raw.rstrip(b"\0") if isinstance(raw, bytes) else plain_value(raw)
            if bucket_fn:
                section = bucket_fn(section)
            slot = int(getattr(k, slot_name))
        else:
            section, slot = None, int(scalar(k))
        h = hists.setdefault(section, {})
        h[slot] = h.get(slot, 0) + val
    return hists


def _label(section: Any, section_print_fn: Optional[Callable[[Any], str]]) -> Any:
    if section_print_fn:
        return section_print_fn(section)
    return section.decode(errors="replace") if isinstance(section, bytes) else section


def _stars(val: int, val_max: int, width: int) -> str:
    if val_max <= 0:
        return ""
    n = min(width, int(width * val / val_max)) if val <= val_max else width
    text = "*" * n
    if val > val_max:
        text = text[:-1] + "+"
    return text


#: A power-of-two histogram has slots 0..64: slot n counts values in [2^(n-1), 2^n - 1] (slot 0
#: and 1 both hold 0 and 1 in BCC's numbering), so slot 64 ends at 2^64 - 1.
LOG2_SLOTS = 65

#: How many rows :func:`print_linear_hist` prints at most, by default.
LINEAR_MAX_ROWS = 1000


def log2_bounds(slot: int) -> tuple[int, int]:
    """The values power-of-two slot ``slot`` counts, ``(low, high)``, as BCC labels them: slot 1
    is ``0 -> 1``, slot 2 ``2 -> 3``, slot 3 ``4 -> 7``, slot n ``2^(n-1) -> 2^n - 1``.

    >>> [log2_bounds(i) for i in (1, 2, 3, 10)]
    [(0, 1), (2, 3), (4, 7), (512, 1023)]
    """
    low, high = (1 << slot) >> 1, (1 << slot) - 1
    return (low - 1 if low == high else low), high


def _split(vals: dict, lo: int, hi: Optional[int]) -> tuple[dict, dict]:
    """``vals`` as (slots in ``lo..hi``, non-empty slots outside it)."""
    inside, outside = {}, {}
    for i, v in vals.items():
        if i >= lo and (hi is None or i <= hi):
            inside[i] = v
        elif v:
            outside[i] = v
    return inside, outside


def _left_out(outside: dict, what: str) -> str:
    slots = sorted(outside)
    shown = ", ".join(str(i) for i in slots[:5]) + (", ..." if len(slots) > 5 else "")
    n = len(slots)
    return f"({sum(outside.values())} left out: {n} slot{'s' if n != 1 else ''} {what}: {shown})"


def _print_one_log2(vals: dict, val_type: str, strip_leading_zero: Optional[bool], file: Any = None) -> None:
    if not vals:
        return
    vals, outside = _split(vals, 0, LOG2_SLOTS - 1)
    idx_max = max((i for i, v in vals.items() if v > 0), default=-1)
    val_max = max(vals.values(), default=0)
    if idx_max <= 32:
        header, fmt, width = f"     {val_type:<19} : count     distribution", "{:>10} -> {:<10} : {:<8} |{:<40}|", 40
    else:
        header = f"               {val_type:<29} : count     distribution"
        fmt, width = "{:>20} -> {:<20} : {:<8} |{:<20}|", 20
    if idx_max > 0:
        print(header, file=file)
    strip = bool(strip_leading_zero)
    for i in range(1, idx_max + 1):
        low, high = log2_bounds(i)
        v = vals.get(i, 0)
        if strip and not v:
            continue
        strip = False
        print(fmt.format(low, high, v, _stars(v, val_max, width)), file=file)
    if outside:
        print(_left_out(outside, f"outside a log2 histogram's 0..{LOG2_SLOTS - 1}"), file=file)


def _sections(hists: dict, bucket_sort_fn: Optional[Callable]) -> list:
    sections = list(hists)
    if bucket_sort_fn:
        return list(bucket_sort_fn(sections))
    return sorted(sections, key=lambda s: (str(type(s)), s))


def _print_one_linear(vals: dict, val_type: str, strip_leading_zero: Optional[bool] = None,
                      max_rows: int = LINEAR_MAX_ROWS, file: Any = None) -> None:
    vals, negative = _split(vals, 0, None)
    used = sorted(i for i, v in vals.items() if v > 0)
    idx_max = used[-1] if used else -1
    val_max = max(vals.values(), default=0)
    if idx_max >= 0:
        print(f"     {val_type:<13} : count     distribution", file=file)
    row = "        {:<10} : {:<8} |{:<40}|"
    start = used[0] if used and strip_leading_zero else 0
    if idx_max - start < max_rows:  # BCC's rows: every value from 0 (or the first used) to the last
        for i in range(start, idx_max + 1):
            v = vals.get(i, 0)
            print(row.format(i, v, _stars(v, val_max, 40)), file=file)
    else:  # too many rows: the used ones only, at most max_rows of them
        for i in used[:max_rows]:
            print(row.format(i, vals[i], _stars(vals[i], val_max, 40)), file=file)
        cut = used[max_rows:]
        note = f"({idx_max - start + 1 - len(used)} empty rows in {start}..{idx_max} not shown"
        if cut:
            note += (f"; {len(cut)} used rows in {cut[0]}..{cut[-1]} (count {sum(vals[i] for i in cut)}) "
                     f"cut at max_rows={max_rows}")
        print(note + ")", file=file)
    if negative:
        print(_left_out(negative, "below 0"), file=file)


def print_linear_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                      section_print_fn: Optional[Callable[[Any], str]] = None,
                      bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None,
                      *, max_rows: int = LINEAR_MAX_ROWS, file: Any = None) -> None:
    """Prints ``{section: {value: count}}`` as linear histograms in BCC's format: one row per
    value from 0 (from the first used one with ``strip_leading_zero``) to the last used one,
    to ``file`` (default ``sys.stdout``).

    A histogram that would take more than ``max_rows`` rows (a stray key such as 2**32-1) is
    printed as its used rows only, at most ``max_rows`` of them, followed by a line saying how
    many empty rows were not shown and which used rows were cut. Counts at negative values
    (signed keys) are not rows: a last line gives their total."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if list(hists) == [None]:
        _print_one_linear(hists[None], val_type, strip_leading_zero, max_rows, file)
        return
    for s in _sections(hists, bucket_sort_fn):
        print(f"\n{section_header} = {_label(s, section_print_fn)}", file=file)
        _print_one_linear(hists[s], val_type, strip_leading_zero, max_rows, file)


def _json_one(vals: dict, val_type: str, section: Optional[tuple]) -> dict:
    vals, outside = _split(vals, 0, LOG2_SLOTS - 1)
    top = max((i for i, v in vals.items() if v), default=0)
    data = []
    for i in range(1, top + 1):
        low, high = log2_bounds(i)
        data.append({"interval-start": low, "interval-end": high, "count": int(vals.get(i, 0))})
    h: dict = {"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": data}
    if section is not None:
        h[section[0]] = section[1]
    if outside:
        h["left_out"] = {"count": int(sum(outside.values())), "slots": sorted(outside)[:10]}
    return h


def print_json_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    bucket_sort_fn: Optional[Callable] = None, *, file: Any = None) -> None:
    """Prints ``{section: {slot: count}}`` as BCC's print_json_hist does: one dict per section
    (Python's repr of it, as BCC prints; :func:`hist_json` gives real JSON's data).
    Counts at slots beyond 64 (not log2 slots) are not in ``data``: a ``left_out`` entry gives
    their total and the first ten such slots."""
    if list(hists) == [None]:
        print(_json_one(hists[None], val_type, None), file=file)
        return
    for s in _sections(hists, bucket_sort_fn):
        print(_json_one(hists[s], val_type, (section_header, _label(s, section_print_fn))),
              file=file)


def _linear_data(vals: dict) -> list:
    vals, _negative = _split(vals, 0, None)
    return [{"value": int(i), "count": int(v)} for i, v in sorted(vals.items()) if v]


def hist_json(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
              section_print_fn: Optional[Callable[[Any], str]] = None,
              bucket_sort_fn: Optional[Callable] = None, *, linear: bool = False,
              sectioned: Optional[bool] = None) -> dict:
    """``{section: {slot: count}}`` as one JSON-ready dict, the buckets as numbers: for a single
    histogram BCC's ``{"ts", "val_type", "data": [{"interval-start", "interval-end", "count"}]}``
    (``linear=True``: ``data`` is ``[{"value", "count"}]`` for the used values); for sections,
    ``{"ts", "val_type", "section": section_header, "histograms": [{section_header: name,
    "data": [...]}, ...]}``, also when empty with ``sectioned=True`` (default: sections when
    ``hists`` has any besides None). A tool prints it with ``json.dumps``, one line per interval.

    >>> hist_json({None: {1: 2, 3: 1}}, "usecs")["data"][2]
    {'interval-start': 4, 'interval-end': 7, 'count': 1}
    """
    def one(vals: dict, section: Optional[tuple]) -> dict:
        h: dict = {} if section is None else {section[0]: section[1]}
        if linear:
            h["data"] = _linear_data(vals)
            return h
        for k, v in _json_one(vals, val_type, None).items():
            if k not in ("ts", "val_type"):
                h[k] = v
        return h

    out: dict = {"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type}
    single = list(hists) in ([], [None]) if sectioned is None else not sectioned
    if single:
        out.update(one(hists.get(None, {}), None))
        return out
    out["section"] = section_header
    out["histograms"] = [one(hists[s], (section_header, _label(s, section_print_fn)))
                         for s in _sections(hists, bucket_sort_fn)]
    return out


def _not_log2(outside: dict) -> ValueError:
    first = min(outside, key=lambda i: (i > 0, abs(i)))
    more = f" ({len(outside)} such slots)" if len(outside) > 1 else ""
    return ValueError(f"slot {first} (count {outside[first]}) is not a log2 slot: "
                      f"a log2 histogram has slots 0..{LOG2_SLOTS - 1}{more}")


def log2_buckets(vals: dict) -> Any:
    """``{slot: count}`` as a numpy structured array of ``(low, high, count)``, slots 1..max.

    Raises ``ValueError`` naming the slot when a slot outside 0..64 has a count: such a key is
    not a power-of-two slot (``print_log2_hist`` prints the rest and says what it left out)."""
    import numpy as np

    vals, outside = _split(vals, 0, LOG2_SLOTS - 1)
    if outside:
        raise _not_log2(outside)
    top = max((i for i, v in vals.items() if v), default=0)
    out = np.zeros(top, dtype=[("low", np.uint64), ("high", np.uint64), ("count", np.uint64)])
    for i in range(1, top + 1):
        out[i - 1] = (*log2_bounds(i), vals.get(i, 0))
    return out


def hist_rows(hists: dict, *, linear: bool = False, section_print_fn: Optional[Callable[[Any], str]] = None,
              bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None,
              strict: bool = False) -> list:
    """``{section: {slot: count}}`` as rows to tabulate or draw: a list, in the order
    :func:`print_log2_hist` prints the sections, of ``(section, rows, left_out)`` where
    ``section`` is the label (``section_print_fn``'s, a ``char[]`` decoded; None for a single
    histogram), ``rows`` are ``(low, high, count)`` (``low == high``, the value, for a linear
    histogram) and ``left_out`` is ``{slot: count}`` of what is not a row (slots outside
    0..64 of a log2 histogram, negative values of a linear one), or ``ValueError`` with
    ``strict``.

    Every section has the same rows, so that sections line up: log2 slots 1 (the first used
    one, with ``strip_leading_zero``) to the highest used in any section, as BCC prints them;
    linear values likewise from 0, or, when that span is longer than :data:`LINEAR_MAX_ROWS`,
    the values used in any section only.

    >>> hist_rows({None: {1: 2, 3: 1}})
    [(None, [(0, 1, 2), (2, 3, 0), (4, 7, 1)], {})]
    """
    if list(hists) in ([], [None]):
        order: list = [None]
    else:
        order = _sections(hists, bucket_sort_fn)
    split = [_split(hists.get(s, {}), 0, None if linear else LOG2_SLOTS - 1) for s in order]
    if strict:
        for _inside, outside in split:
            if outside and not linear:
                raise _not_log2(outside)
            if outside:
                first = min(outside)
                raise ValueError(f"value {first} (count {outside[first]}) is below 0: a linear histogram's "
                                 f"rows start at 0 ({len(outside)} such values)")
    used = sorted({i for inside, _ in split for i, v in inside.items() if v})
    if linear:
        start = used[0] if used and strip_leading_zero else 0
        dense = bool(used) and used[-1] - start < LINEAR_MAX_ROWS
        slots = list(range(start, used[-1] + 1)) if dense else used
        bounds = [(i, i) for i in slots]
    else:
        start = used[0] if used and strip_leading_zero else 1
        slots = list(range(start, used[-1] + 1)) if used else []
        bounds = [log2_bounds(i) for i in slots]
    out = []
    for s, (inside, outside) in zip(order, split):
        rows = [(lo, hi, inside.get(i, 0)) for i, (lo, hi) in zip(slots, bounds)]
        out.append((None if s is None else _label(s, section_print_fn), rows, outside))
    return out


def print_log2_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    strip_leading_zero: Optional[bool] = None, bucket_sort_fn: Optional[Callable] = None,
                    *, file: Any = None) -> None:
    """Prints ``{section: {slot: count}}`` (section None for a single histogram) in BCC's format,
    to ``file`` (default ``sys.stdout``).

    A log2 histogram has slots 0..64 (:data:`LOG2_SLOTS`); counts at other slots (a key that is
    not a slot) are not printed as rows: a last line gives their total and the first slots."""
    if list(hists) == [None]:
        _print_one_log2(hists[None], val_type, strip_leading_zero, file)
        return
    for s in _sections(hists, bucket_sort_fn):
        label = _label(s, section_print_fn)
        print(f"\n{section_header} = {label}", file=file)
        _print_one_log2(hists[s], val_type, strip_leading_zero, file)
