"""softirqs: Summarize soft irq event time as histograms.

BCC's flags and output (SOFTIRQ, TOTAL_usecs; ``-C`` counts, ``-d`` histograms), from the
softirq_entry/exit BTF tracepoints (raw tracepoints where the kernel has no BTF tracepoints);
``-j`` prints one JSON object per interval.

Examples::

    bpfkit softirqs            # sum soft irq event time
    bpfkit softirqs -C         # show the number of soft irq events
    bpfkit softirqs -d         # show soft irq event time as histograms
    bpfkit softirqs 1 10       # print 1 second summaries, 10 times
    bpfkit softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit softirqs -c 1       # sum soft irq event time on CPU 1 only
    bpfkit softirqs -j 1 5     # a JSON object per second, 5 times
    bpfkit softirqs -C --prometheus 9100   # serve bpfkit_softirqs_total{softirq=...}
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
#: The soft irq vectors' names, by number (the kernel's softirq_to_name, in lower case as BCC).
VECTORS = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu"]


def vec_name(vec: int) -> str:
    return VECTORS[vec] if 0 <= vec < len(VECTORS) else f"[unknown:{vec}]"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return _irqs.parse_args(TOOL, argv, count_only=("--events", "events", "show the number of soft irq events"))


def read(dist: Any) -> list:
    """The map's entries as ``(vector name, slot, value)``, in the vectors' order."""
    return [(vec_name(vec), slot, n) for vec, slot, n in sorted((k.vec, k.slot, v.value) for k, v in dist.items())]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return _irqs.main(TOOL, args, count_only=args.events, what="soft irq", column="softirq", width=16, read=read)


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("softirqs", main))
