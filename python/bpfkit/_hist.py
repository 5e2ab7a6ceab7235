"""Histograms in BCC's formats: power-of-two (``print_log2_hist``), linear and JSON, and the
power-of-two buckets as numpy (``log2_buckets``). A histogram is ``{section: {slot: count}}``,
with section ``None`` for a map that holds a single histogram."""

from __future__ import annotations

import ctypes as ct
import time
from typing import Any, Callable, Iterable, Optional

from ._values import plain_value, scalar

__all__ = ["print_log2_hist", "print_linear_hist", "print_json_hist", "log2_buckets", "collect"]


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
            section = plain_value(getattr(k, sec_name))
            if bucket_fn:
                section = bucket_fn(section)
            slot = int(getattr(k, slot_name))
        else:
            section, slot = None, int(scalar(k))
        h = hists.setdefault(section, {})
        h[slot] = h.get(slot, 0) + val
    return hists


def _stars(val: int, val_max: int, width: int) -> str:
    if val_max <= 0:
        return ""
    n = min(width, int(width * val / val_max)) if val <= val_max else width
    text = "*" * n
    if val > val_max:
        text = text[:-1] + "+"
    return text


def _print_one_log2(vals: dict, val_type: str, strip_leading_zero: Optional[bool]) -> None:
    if not vals:
        return
    idx_max = max((i for i, v in vals.items() if v > 0), default=-1)
    val_max = max(vals.values(), default=0)
    if idx_max <= 32:
        header, fmt, width = f"     {val_type:<19} : count     distribution", "{:>10} -> {:<10} : {:<8} |{:<40}|", 40
    else:
        header, fmt, width = f"               {val_type:<29} : count     distribution", "{:>20} -> {:<20} : {:<8} |{:<20}|", 20
    if idx_max > 0:
        print(header)
    strip = bool(strip_leading_zero)
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        v = vals.get(i, 0)
        if strip and not v:
            continue
        strip = False
        print(fmt.format(low, high, v, _stars(v, val_max, width)))


def _sections(hists: dict, bucket_sort_fn: Optional[Callable]) -> list:
    sections = list(hists)
    if bucket_sort_fn:
        return list(bucket_sort_fn(sections))
    return sorted(sections, key=lambda s: (str(type(s)), s))


def _print_one_linear(vals: dict, val_type: str, strip_leading_zero: Optional[bool] = None) -> None:
    idx_max = max((i for i, v in vals.items() if v > 0), default=-1)
    val_max = max(vals.values(), default=0)
    if idx_max >= 0:
        print(f"     {val_type:<13} : count     distribution")
    strip = bool(strip_leading_zero)
    for i in range(0, idx_max + 1):
        v = vals.get(i, 0)
        if strip and not v:
            continue
        strip = False
        print("        {:<10} : {:<8} |{:<40}|".format(i, v, _stars(v, val_max, 40)))


def print_linear_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                      section_print_fn: Optional[Callable[[Any], str]] = None,
                      bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None) -> None:
    """Prints ``{section: {value: count}}`` as linear histograms in BCC's format."""
    if list(hists) == [None]:
        _print_one_linear(hists[None], val_type, strip_leading_zero)
        return
    for s in _sections(hists, bucket_sort_fn):
        print(f"\n{section_header} = {section_print_fn(s) if section_print_fn else s}")
        _print_one_linear(hists[s], val_type, strip_leading_zero)


def _json_one(vals: dict, val_type: str, section: Optional[tuple]) -> dict:
    top = max((i for i, v in vals.items() if v), default=0)
    data = []
    for i in range(1, top + 1):
        data.append({"interval-start": (1 << i) >> 1 if i > 1 else 0, "interval-end": (1 << i) - 1,
                     "count": int(vals.get(i, 0))})
    h: dict = {"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": data}
    if section is not None:
        h[section[0]] = section[1]
    return h


def print_json_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    bucket_sort_fn: Optional[Callable] = None) -> None:
    """Prints ``{section: {slot: count}}`` as BCC's print_json_hist does: one dict per section."""
    if list(hists) == [None]:
        print(_json_one(hists[None], val_type, None))
        return
    for s in _sections(hists, bucket_sort_fn):
        print(_json_one(hists[s], val_type, (section_header, section_print_fn(s) if section_print_fn else s)))


def log2_buckets(vals: dict) -> Any:
    """``{slot: count}`` as a numpy structured array of ``(low, high, count)``, slots 1..max."""
    import numpy as np

    top = max((i for i, v in vals.items() if v), default=0)
    out = np.zeros(top, dtype=[("low", np.uint64), ("high", np.uint64), ("count", np.uint64)])
    for i in range(1, top + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        out[i - 1] = (low - 1 if low == high else low, high, vals.get(i, 0))
    return out


def print_log2_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    strip_leading_zero: Optional[bool] = None, bucket_sort_fn: Optional[Callable] = None) -> None:
    """Prints ``{section: {slot: count}}`` (section None for a single histogram) in BCC's format."""
    if list(hists) == [None]:
        _print_one_log2(hists[None], val_type, strip_leading_zero)
        return
    for s in _sections(hists, bucket_sort_fn):
        label = section_print_fn(s) if section_print_fn else s
        print(f"\n{section_header} = {label}")
        _print_one_log2(hists[s], val_type, strip_leading_zero)
