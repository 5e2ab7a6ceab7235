"""What the tools share: the command line's frame (BCC's ``--ebpf``, the examples as the help's
epilog), the poll loop with a duration, and the report of records the program could not submit."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional


def poll_events(b: Any, duration: Optional[float]) -> None:
    """Runs the ring buffer callbacks until ``duration`` seconds pass (forever if None) or
    Ctrl-C, then handles what is left and reports the program's ``dropped`` counter."""
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            timeout = 100 if deadline is None else max(1, min(100, int((deadline - time.monotonic()) * 1000)))
            b.ring_buffer_poll(timeout)
        b.ring_buffer_consume()
    except KeyboardInterrupt:
        pass
    dropped = b.get_global("dropped")
    if dropped:
        print(f"WARNING: {dropped} events lost (ring buffer full)", file=sys.stderr)


def tool_parser(tool: str, description: str, doc: str) -> argparse.ArgumentParser:
    """The argument parser of ``bpfkit <tool>``: the module docstring's examples (after
    ``Examples::``) as the epilog, and BCC's hidden ``--ebpf`` (print the BPF C and exit)."""
    p = argparse.ArgumentParser(prog=f"bpfkit {tool}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("Examples::", 1)[1])
    p.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    return p


def printed_source(args: argparse.Namespace, source: Path) -> bool:
    """With ``--ebpf``, prints the tool's BPF C and returns True (the tool then exits)."""
    if args.ebpf:
        print(source.read_text())
    return bool(args.ebpf)
