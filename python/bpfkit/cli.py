"""The ``bpfkit`` command: ``bpfkit list`` names the tools, ``bpfkit <tool> [args]`` runs one.

Every command runs in one frame (:func:`run`) that makes the command line behave like a Unix
tool: an error is one line on stderr and status 1 (a usage error: status 2), a closed pipe
(``bpfkit opensnoop | head``) and Ctrl-C end quietly with status 0, and no traceback is printed
for anything the user can cause.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing stays off the start path of every tool
    from collections.abc import Sequence
    from typing import Any, Callable

USAGE = """usage: bpfkit <tool> [args...]   run a bundled tool (bpfkit <tool> -h for its options)
       bpfkit list                 list the tools
       bpfkit bcc SCRIPT [args...] run a program written for BCC (import bcc) on bpfkit
       bpfkit exporter --config FILE.yaml [--listen [ADDR:]PORT]
                                   serve BPF maps as Prometheus metrics
       bpfkit features             what this kernel supports, and why not
       bpfkit version              print versions"""


def _error(prog: str, message: object) -> None:
    """Prints ``prog: error: message`` as one line on stderr (a multi-line message's first line)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()] or ["unknown error"]
    more = f" [{len(lines) - 1} more lines not shown]" if len(lines) > 1 else ""
    if sys.stderr is not None:
        print(f"{prog}: error: {lines[0]}{more}", file=sys.stderr, flush=True)


def _stdout_to_devnull() -> None:
    """Points fd 1 at /dev/null, so that the interpreter's last flush of ``sys.stdout`` at exit
    cannot fail again on the closed pipe (the idiom of Python's documentation on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def _interrupt_handled() -> None:
    """Tells the interpreter that the KeyboardInterrupt was handled. CPython (3.11 here) marks
    the process to kill itself with SIGINT at exit when a KeyboardInterrupt leaves code run by
    ``eval()`` or ``exec()`` of a string, even when a caller catches it later; and imports do
    that (``namedtuple`` and ``dataclass`` build their methods with ``exec``), so Ctrl-C during
    start-up would end with status -SIGINT after all. Evaluating a string clears the mark."""
    eval("None")  # a constant: evaluated for its side effect on the interpreter


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the causes of ``e``."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _keep_interrupts(hook: Callable[[Any], object], active: list) -> Callable[[Any], object]:
    """An ``unraisablehook`` that does not let CPython drop a Ctrl-C. Python runs a signal handler
    wherever the main thread is, and when that is a weakref callback or a ``__del__`` (importlib
    runs one each time a module lock is freed, so often during a tool's imports), the
    KeyboardInterrupt it raises cannot propagate: CPython prints "Exception ignored" and goes on,
    and the tool would keep running. This sends SIGINT to the main thread again instead, from a
    new thread (from here it would be handled, and dropped, at once, still inside this hook); a
    real signal also interrupts a blocking wait, which only marking it pending would not. Nothing
    is sent once ``active`` is emptied (the command's frame has returned). Anything else goes to
    ``hook``."""
    import _thread

    main = _thread.get_ident()

    def resend() -> None:
        import _signal

        if active:
            _signal.pthread_kill(main, _signal.SIGINT)

    def keep(args: Any) -> object:
        if isinstance(args.exc_value, KeyboardInterrupt) or args.exc_type is KeyboardInterrupt:
            try:
                _thread.start_new_thread(resend, ())
            except RuntimeError:  # no new threads at interpreter shutdown: nothing left to stop
                pass
            return None
        return hook(args)

    return keep


def run(prog: str, body: Callable[[], int | None]) -> int:
    """Runs ``body`` (a command's work) as a command line program and returns its exit status.

    * a reader that closed the pipe (``BrokenPipeError``): quiet, status 0;
    * Ctrl-C (``KeyboardInterrupt``), at any point including start-up: quiet, status 0;
    * a bpfkit error (``BPFError``) or an operating system error (``OSError``): one line on
      stderr, ``prog: error: ...``, status 1;
    * ``SystemExit`` (argparse's usage errors, status 2, and ``-h``): passed through.

    ``sys.stdout`` is flushed before returning, so a pipe closed after the last write is caught
    here too, rather than at interpreter exit.

    >>> from bpfkit.cli import run
    >>> run("mytool", lambda: print("hello"))     # 0; `mytool | true` would end quietly too
    hello
    0
    """
    import _signal as signal  # the interpreter's own module: `signal` adds enum wrappers, unused here

    # The package set a quiet exit for a Ctrl-C during the command's imports; from here on a
    # Ctrl-C is a KeyboardInterrupt, handled below (after whatever `finally` blocks it runs).
    if signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, signal.SIG_IGN):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_hook = sys.unraisablehook
    active = [True]
    ours = sys.unraisablehook = _keep_interrupts(previous_hook, active)
    try:
        try:
            status = int(body() or 0)
            if sys.stdout is not None:
                sys.stdout.flush()
            return status
        except BrokenPipeError:
            _stdout_to_devnull()
            return 0
        except KeyboardInterrupt:
            _interrupt_handled()
            try:
                if sys.stdout is not None:
                    sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                _stdout_to_devnull()
            return 0
        except RuntimeError as e:
            # A Ctrl-C that lands while Python builds a class during an import surfaces, on 3.11,
            # as "RuntimeError: Error calling __set_name__ ..." caused by the KeyboardInterrupt.
            if not _caused_by_interrupt(e):
                raise
            _interrupt_handled()
            return 0
        except OSError as e:  # BPFError is an OSError
            from ._errors import BPFError

            if isinstance(e, BPFError):
                _error(prog, e)
            else:
                # e.g. "[Errno 2] No such file or directory: 'x'": the errno text and the path.
                _error(prog, e.strerror and e.filename and f"{e.strerror}: {e.filename!r}" or e)
            return 1
    except KeyboardInterrupt:  # a second Ctrl-C while handling the first, or an error
        _interrupt_handled()
        return 0
    finally:
        active.clear()
        if sys.unraisablehook is ours:  # one someone installed meanwhile stays
            sys.unraisablehook = previous_hook


def run_tool(name: str, main: Callable[[Sequence[str] | None], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Runs a tool's ``main(argv)`` in the command line's frame (:func:`run`); the tools'
    ``if __name__ == "__main__"`` blocks call it, so ``python tools/opensnoop.py`` behaves as
    ``bpfkit opensnoop`` does."""
    return run(f"bpfkit {name}", lambda: main(argv))


def _features() -> int:
    from . import _native

    # Before anything else: without the privilege, the probes would fail one after the other.
    _native.check_privileges()
    from . import features

    print(f"kernel {os.uname().release}")
    for st in features.check_all():
        print(st)
    return 0


def compiler_description() -> str:
    """The BPF compiler that ``BPF()`` would use, as ``bpfkit version`` reports it: its path and
    how it was found (``BPFKIT_CLANG``, ``PATH``, or the ``ziglang`` package), else ``none`` and
    why."""
    from . import _native
    from ._bpf import _zig_path
    from ._errors import BPFError

    try:
        path, how = _native.find_compiler(zig=_zig_path())
    except BPFError as e:
        return f"none ({e})"
    return f"{path} (from {how})"


def _version() -> int:
    from . import __version__, _native

    print(f"bpfkit {__version__}, libbpf {_native.LIBBPF_VERSION}, compiler: {compiler_description()}")
    return 0


def _list() -> int:
    from . import tools

    names = tools.names()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}}  {tools.summary(name)}")
    return 0


def _tool(cmd: str, rest: list) -> int:
    from .tools import is_tool

    if not is_tool(cmd):
        _error("bpfkit", f"unknown tool {cmd!r}; `bpfkit list` names them")
        return 2
    # __import__ rather than importlib.import_module: the importlib package imports `warnings`,
    # which costs a tool's start some milliseconds for nothing.
    __import__(f"bpfkit.tools.{cmd}")
    return int(sys.modules[f"bpfkit.tools.{cmd}"].main(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``bpfkit <command> [args...]``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None:  # started with stdout closed (`bpfkit list >&-`): nowhere to write
        _error("bpfkit", "standard output is closed")
        return 1
    if not args:
        _error("bpfkit", "no command: bpfkit <tool> [args...] | list | exporter | features | version (-h for help)")
        return 2
    if args[0] in ("-h", "--help", "help"):
        return run("bpfkit", lambda: print(USAGE))
    cmd, rest = args[0], args[1:]
    commands = {"list": _list, "features": _features, "version": _version}
    if cmd in commands:
        return run(f"bpfkit {cmd}", commands[cmd])
    if cmd == "bcc":
        from .bcc.__main__ import main as run_bcc

        return run("bpfkit bcc", lambda: run_bcc(rest))
    if cmd == "exporter":
        from .exporter import main as run_exporter

        return run("bpfkit exporter", lambda: run_exporter(rest))
    return run(f"bpfkit {cmd}", lambda: _tool(cmd, rest))


if __name__ == "__main__":
    sys.exit(main())
