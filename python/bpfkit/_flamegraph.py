"""Flame graphs: folded stacks in, an SVG out, drawn by the ``inferno`` crate (the FlameGraph
suite ported to Rust) inside bpfkit's native module, so no Perl script and no other process.

The stack tools (``profile``, ``offcputime``, ``wakeuptime``, ``stackcount``) write one with
``--flamegraph FILE.svg``; in Python or a notebook::

    >>> import bpfkit
    >>> fg = bpfkit.flamegraph({("main", "work", "spin"): 90, ("main", "idle"): 10}, title="CPU")
    >>> fg.save("cpu.svg")          # or display it: a notebook shows it inline
    >>> print(fg.folded)            # what it was drawn from, in FlameGraph's folded format
    main;idle 10
    main;work;spin 90

The SVG is FlameGraph's interactive one (search, zoom by click, details on hover); a notebook
shows it in an ``<iframe>``, where its script runs.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Union

    Stacks = Union[str, "Mapping[Any, int]", "Iterable[str]"]

#: Colour schemes inferno knows, by FlameGraph's names.
PALETTES = ("hot", "mem", "io", "wakeup", "java", "js", "perl", "python", "rust", "red", "green", "blue",
            "aqua", "yellow", "purple", "orange")


def _frame(f: Any) -> str:
    s = f.decode(errors="replace") if isinstance(f, bytes) else str(f)
    # ';' separates frames and a line ends a stack: neither may appear inside a frame.
    return s.replace(";", ":").replace("\n", " ").strip() or "[unknown]"


def folded_stacks(stacks: Stacks) -> str:
    """Stacks in FlameGraph's folded format, one ``root;...;leaf COUNT`` line per stack, sorted.

    ``stacks`` is folded text already, an iterable of folded lines, or a mapping of stack to count
    where a stack is a sequence of frames from the root (``("main", "spin")``) or a folded string
    (``"main;spin"``). Equal stacks are summed; counts of zero or less are dropped."""
    counts: dict = {}
    if isinstance(stacks, str) or not hasattr(stacks, "items"):
        lines = stacks.splitlines() if isinstance(stacks, str) else stacks
        for line in lines:
            line = line.strip()
            if not line:
                continue
            stack, _, n = line.rpartition(" ")
            if not stack or not n.lstrip("-").isdigit():
                raise ValueError(f"not a folded stack line (frames;... COUNT): {line!r}")
            counts[stack] = counts.get(stack, 0) + int(n)
    else:
        for stack, n in stacks.items():
            if isinstance(stack, (str, bytes)):
                key = ";".join(_frame(f) for f in (stack.decode(errors="replace") if isinstance(stack, bytes)
                                                   else stack).split(";"))
            else:
                key = ";".join(_frame(f) for f in stack)
            counts[key] = counts.get(key, 0) + int(n)
    return "".join(f"{k} {v}\n" for k, v in sorted(counts.items()) if v > 0 and k)


class FlameGraph:
    """A drawn flame graph: ``svg`` (the text), ``folded`` (what it was drawn from),
    :meth:`save`; shown inline by Jupyter."""

    def __init__(self, svg: str, folded_text: str) -> None:
        self.svg = svg
        self.folded = folded_text

    def save(self, path: Any) -> None:
        """Writes the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        """The SVG in an ``<iframe>``, where its script runs (search, zoom by click, details on
        hover): a notebook runs no script of an SVG it shows as an image."""
        import html
        import re

        m = re.search(r'<svg[^>]*\bheight="(\d+)', self.svg)
        height = int(m.group(1)) + 20 if m else 600
        return (f'<iframe srcdoc="{html.escape(self.svg, quote=True)}" style="width: 100%; height: {height}px; '
                'border: none" sandbox="allow-scripts"></iframe>')

    def __str__(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<FlameGraph: {self.folded.count(chr(10))} stacks, {len(self.svg)} bytes of SVG>"


def _svg(text: str, title: str = "Flame Graph", subtitle: str | None = None, count_name: str = "samples",
         colors: str = "hot", inverted: bool = False, reverse: bool = False, width: int = 1200,
         min_width: float = 0.1) -> str:
    if colors not in PALETTES:
        raise ValueError(f"colors={colors!r}: one of {', '.join(PALETTES)}")
    if width <= 0 or min_width < 0:
        raise ValueError("width must be positive and min_width not negative")
    from . import _native

    return _native.flamegraph_svg(text, title=title, subtitle=subtitle, count_name=count_name, colors=colors,
                                  inverted=inverted, reverse=reverse, width=int(width), min_width=float(min_width))


def flamegraph(stacks: Stacks, *, title: str = "Flame Graph", subtitle: str | None = None,
               count_name: str = "samples", colors: str = "hot", inverted: bool = False,
               reverse: bool = False, width: int = 1200, min_width: float = 0.1) -> FlameGraph:
    """Draws ``stacks`` (see :func:`folded_stacks`) as a flame graph.

    ``title`` and ``subtitle`` head it; ``count_name`` names the counts on hover ("samples",
    "us" for off-CPU time); ``colors`` is a palette of :data:`PALETTES`; ``inverted`` draws an
    icicle graph (roots at the top), ``reverse`` merges stacks from the leaf; ``width`` is in
    pixels; frames narrower than ``min_width`` pixels are left out. An empty profile draws a
    picture that says so rather than failing."""
    text = folded_stacks(stacks)
    return FlameGraph(_svg(text, title, subtitle, count_name, colors, inverted, reverse, width, min_width), text)


def flamegraph_diff(before: Stacks, after: Stacks, **options: Any) -> FlameGraph:
    """A differential flame graph: the stacks of ``after``, each frame coloured by how its count
    changed from ``before`` (red: grew, blue: shrank), ``before`` scaled to ``after``'s total
    first, as FlameGraph's ``difffolded.pl -n`` and ``flamegraph.pl`` draw it. Takes
    :func:`flamegraph`'s options; ``folded`` of the result has both counts on each line."""
    from . import _native

    options.setdefault("title", "Differential Flame Graph")
    merged = _native.flamegraph_diff_folded(folded_stacks(before), folded_stacks(after))
    return FlameGraph(_svg(merged, **options), merged)
