"""bpfkit's log records, without putting ``logging`` on every tool's start path.

``logging`` costs a command line tool about 10-20 ms to import. A record is only worth making
when someone can see it: when the application has imported ``logging`` (it may have configured
handlers), or for a warning, which Python shows even unconfigured. Everything else is skipped
without importing anything. The ``bpfkit`` logger gets a ``NullHandler``, as a library's should,
the first time a record is made. libbpf's own messages follow the same rule (``rust/py/mod.rs``).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Any

_WARNING = 30


def log(level: int, msg: str, *args: Any, name: str = "bpfkit") -> None:
    """Logs ``msg % args`` at ``level`` to logger ``name`` when anyone can see it."""
    if level < _WARNING and "logging" not in sys.modules:
        return
    import logging

    root = logging.getLogger("bpfkit")
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    logging.getLogger(name).log(level, msg, *args)


def debug(msg: str, *args: Any) -> None:
    log(10, msg, *args)


def info(msg: str, *args: Any) -> None:
    log(20, msg, *args)


def warning(msg: str, *args: Any) -> None:
    log(_WARNING, msg, *args)
