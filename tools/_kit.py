"""What the tools share: the command line's frame (BCC's ``--ebpf``, the examples as the help's
epilog, usage errors in one line), the argument types that refuse bad values before anything
starts, the privilege check, the poll loop with a duration, and the report of records the
program could not submit.

Only the standard library's light modules are imported here: this is on every tool's start path.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re  # argparse imports it anyway
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time and no tool needs it
    from collections.abc import Callable
    from typing import Any, NoReturn

#: The kernel's PID_MAX_LIMIT on 64-bit machines: no process or thread id is larger.
PID_MAX_LIMIT = 4 * 1024 * 1024
#: The longest duration or interval accepted, in seconds (BCC's "forever" default, about 3 years).
MAX_SECONDS = 99999999.0


def _reader_watch() -> Callable[[], bool] | None:
    """When stdout is a pipe or a socket, a check that its reader has gone (``| head -3`` has
    read its lines): the kernel flags the writing end with POLLERR/POLLHUP at once, while a
    write would fail only with the next event, which a quiet system may not produce for long."""
    import stat

    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return None
    import select

    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: POLLERR and POLLHUP are always reported
    return lambda: bool(poller.poll(0))


def poll_events(b: Any, duration: float | None) -> None:
    """Runs the ring buffer callbacks until ``duration`` seconds pass (forever if None), Ctrl-C,
    or the reader of stdout goes away (``BrokenPipeError``, which the command line's frame ends
    quietly), then handles what is left and reports the program's ``dropped`` counter."""
    deadline = None if duration is None else time.monotonic() + duration
    reader_gone = _reader_watch()
    try:
        while deadline is None or time.monotonic() < deadline:
            timeout = 100 if deadline is None else max(1, min(100, int((deadline - time.monotonic()) * 1000)))
            b.ring_buffer_poll(timeout)
            if reader_gone is not None and reader_gone():
                raise BrokenPipeError(errno.EPIPE, "the reader of standard output has gone")
        b.ring_buffer_consume()
    except KeyboardInterrupt:
        pass
    dropped = b.get_global("dropped")
    if dropped:
        print(f"WARNING: {dropped} events lost (ring buffer full)", file=sys.stderr)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` gives it ($COLUMNS, else the
    terminal of stdout, else 80), without importing shutil (and its compression modules)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter for text with its own line breaks; argparse makes one for every
    ``add_argument``, and its own asks shutil for the width: this one asks the OS directly."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        if kwargs.get("width") is None:
            kwargs["width"] = max(_columns() - 2, 20)
        super().__init__(prog, **kwargs)


class ToolArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (``bpfkit opensnoop: error: ...``) and
    status 2, instead of the usage text followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (-h for help)\n")


def tool_parser(tool: str, description: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of ``bpfkit <tool>``: the module docstring's examples (after
    ``Examples::``, when it has them) as the epilog, and BCC's hidden ``--ebpf`` (print the BPF C
    and exit).

    >>> p = tool_parser("opensnoop", "Trace open() syscalls", __doc__)
    """
    _, found, examples = (doc or "").partition("Examples::")
    p = ToolArgumentParser(prog=f"bpfkit {tool}", description=description,
                           formatter_class=_HelpFormatter,
                           epilog=("examples:" + examples.rstrip()) if found and examples.strip() else None)
    p.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    return p


def printed_source(args: argparse.Namespace, source: str | os.PathLike[str]) -> bool:
    """With ``--ebpf``, prints the tool's BPF C and returns True (the tool then exits)."""
    if args.ebpf:
        with open(source) as f:
            print(f.read())
    return bool(args.ebpf)


def require_privileges() -> None:
    """Raises ``PrivilegeError`` (root, or CAP_BPF + CAP_PERFMON, is needed) before a tool
    touches the compile cache, so that the missing privilege is the error a user sees rather
    than the cache's (``creating /root/.cache: Permission denied`` under ``sudo -u``)."""
    from bpfkit import _native

    _native.check_privileges()


# -- argument types: each refuses a bad value with argparse's one-line usage error ---------------

def _int(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def pid(text: str) -> int:
    """A process or thread id: an integer from 1 to the kernel's PID_MAX_LIMIT.

    >>> pid("181")
    181
    """
    what = f"a process id, an integer from 1 to {PID_MAX_LIMIT}"
    n = _int(text, what)
    if not 1 <= n <= PID_MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return n


def uid(text: str) -> int:
    """A user id (an integer from 0 to 2**32 - 2) or the name of a user in the password database.

    >>> uid("0"), uid("root")
    (0, 0)
    """
    if text.lstrip("+-").isdigit():
        n = _int(text, "a user id")
        # (uid_t)-1 is the kernel's "no uid", not a user.
        if not 0 <= n < 2**32 - 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a user id, an integer from 0 to {2**32 - 2}")
        return n
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a user id nor a known user name") from None


def seconds(text: str) -> float:
    """A duration or interval in seconds: a finite number above 0 and at most ``MAX_SECONDS``.

    >>> seconds("0.5")
    0.5
    """
    what = f"a number of seconds above 0 and at most {MAX_SECONDS:.0f}"
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not (math.isfinite(s) and 0 < s <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return s


def count(text: str) -> int:
    """A number of outputs or items: an integer of at least 1.

    >>> count("3")
    3
    """
    n = _int(text, "a count, an integer of at least 1")
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count, an integer of at least 1")
    return n


def regex(text: str) -> re.Pattern[bytes]:
    """A regular expression, compiled to match bytes (the kernel's strings are bytes; a name that
    is not UTF-8 comes back as the bytes it was given).

    >>> regex("ma.n").search(b"domain") is not None
    True
    """
    try:
        return re.compile(os.fsencode(text))
    except (re.error, OverflowError, RecursionError) as e:  # the last two for huge counts and nesting
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {e}") from None
