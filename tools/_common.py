"""What the event-printing tools share: the poll loop with a duration, and the report of
records the program could not submit."""

from __future__ import annotations

import sys
import time
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
