"""Flame graphs drawn in-process by inferno (FlameGraph's SVG), from folded stacks in each of the
forms the stack tools and notebooks have: folded text, frame tuples, folded keys."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from bpfkit import FlameGraph, flamegraph
from bpfkit import flamegraph_diff as diff
from bpfkit import folded_stacks as folded

SVG = "{http://www.w3.org/2000/svg}"


def titles(svg: str) -> list:
    """Every frame's hover title in the SVG, parsed as XML."""
    root = ET.fromstring(svg.encode())
    return [t.text or "" for t in root.iter(f"{SVG}title")]


def test_folded_accepts_text_frame_tuples_and_folded_keys_and_sums_equal_stacks():
    want = "main;idle 10\nmain;work;spin 90\n"
    assert folded("main;work;spin 60\nmain;idle 10\n\nmain;work;spin 30\n") == want
    assert folded({("main", "work", "spin"): 90, ("main", "idle"): 10, ("main", "gone"): 0}) == want
    assert folded({"main;work;spin": 90, b"main;idle": 10}) == want
    assert folded(["main;work;spin 90", "main;idle 10"]) == want
    # A frame cannot carry the separators: ';' in a C++ name or a newline would split stacks.
    assert folded({("a;b", "c\nd", ""): 1}) == "a:b;c d;[unknown] 1\n"
    with pytest.raises(ValueError, match="not a folded stack line"):
        folded("main;spin lots\n")


def test_flamegraph_draws_every_frame_with_its_share():
    fg = flamegraph({("main", "work", "spin"): 90, ("main", "idle"): 10}, title="CPU on bpfkit", count_name="samples")
    assert isinstance(fg, FlameGraph) and fg.svg == fg._repr_svg_()
    t = titles(fg.svg)
    assert "spin (90 samples, 90.00%)" in t, t
    assert "idle (10 samples, 10.00%)" in t
    assert "main (100 samples, 100.00%)" in t
    assert "CPU on bpfkit" in fg.svg
    # Same stacks, same picture: the colours come from the names.
    assert flamegraph(fg.folded, title="CPU on bpfkit").svg == fg.svg


def test_flamegraph_options_and_errors(tmp_path):
    fg = flamegraph("a;b 3\n", count_name="us", colors="wakeup", inverted=True, width=600)
    assert "b (3 us, 100.00%)" in titles(fg.svg)
    assert 'width="600"' in fg.svg
    out = tmp_path / "fg.svg"
    fg.save(out)
    assert out.read_text() == fg.svg
    empty = flamegraph({})
    ET.fromstring(empty.svg.encode())  # still a valid SVG, saying there was nothing
    assert "No valid input" in empty.svg
    with pytest.raises(ValueError, match="colors='plaid'"):
        flamegraph("a 1\n", colors="plaid")
    with pytest.raises(ValueError, match="width"):
        flamegraph("a 1\n", width=0)


def test_differential_flame_graph_has_both_counts_and_colours_by_change():
    before = {("main", "read"): 50, ("main", "write"): 50}
    after = {("main", "read"): 90, ("main", "write"): 10}
    fg = diff(before, after)
    lines = dict(line.rsplit(" ", 2)[0:1] + [line.rsplit(" ", 2)[1:]] for line in fg.folded.splitlines())
    assert lines == {"main;read": ["50", "90"], "main;write": ["50", "10"]}
    t = titles(fg.svg)
    # FlameGraph's differential titles give the change in percentage points.
    assert any(s.startswith("read (90 samples, 90.00%; +40.00%)") for s in t), t
    assert any(s.startswith("write (10 samples, 10.00%; -40.00%)") for s in t), t
