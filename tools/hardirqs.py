"""hardirqs: Summarize hard irq event time as histograms.

BCC's flags and output (HARDIRQ, TOTAL_usecs; ``-C`` counts, ``-d`` histograms), from the
irq_handler_entry/exit BTF tracepoints (raw tracepoints where the kernel has no BTF tracepoints);
``-j`` prints one JSON object per interval.

Examples::

    bpfkit hardirqs            # sum hard irq event time
    bpfkit hardirqs -d         # show hard irq event time as histograms
    bpfkit hardirqs -C         # show hard irq event counts
    bpfkit hardirqs 1 10       # print 1 second summaries, 10 times
    bpfkit hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit hardirqs -c 1       # sum hard irq event time on CPU 1 only
    bpfkit hardirqs -j 1 5     # a JSON object per second, 5 times
    bpfkit hardirqs --prometheus 9100   # serve bpfkit_hardirqs_seconds_total{hardirq=...}
"""

from __future__ import annotations

import sys

try:
    from . import _irqs
    from ._kit import Tool
except ImportError:  # run as a script from tools/
    import _irqs  # type: ignore[no-redef]
    from _kit import Tool  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: Each hook's fallback ladder, best first: a BTF tracepoint, then a raw tracepoint.
LADDERS = _irqs.LADDERS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return _irqs.parse_args(TOOL, argv, count_only=("--count", "count_only", "show event counts instead of timing"))


def read(dist: Any) -> list:
    """The map's entries as ``(handler name, slot, value)``: a handler by its irqaction's name."""
    return [(k.name.decode(errors="replace"), k.slot, v.value) for k, v in dist.items()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return _irqs.main(TOOL, args, count_only=args.count_only, what="hard irq", column="hardirq", width=26,
                      read=read)


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("hardirqs", main))
