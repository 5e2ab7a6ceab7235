"""IPython and Jupyter magics, registered by ``%load_ext bpfkit``:

* ``%%bpf NAME [--cflags FLAG ...] [--no-attach]``: the cell is BPF C (libbpf's dialect or
  BCC's), compiled, loaded and attached as ``BPF(text=cell)``, and bound to ``NAME``. Running the
  cell again first closes the object it made before, so nothing stays attached twice.
* ``%bpf_tool TOOL [ARGS ...] [--for SECONDS] [--raw]``: runs a bundled tool (``bpfkit list``)
  with its JSON output for ``SECONDS`` and returns the records as a pandas DataFrame.
* ``%bpf_watch NAME.MAP [--interval S] [--count N] [--kind K] [--top N]``: a live histogram or
  top-N table of a map, redrawn in place (:func:`bpfkit.watch`).
* ``%bpf_close [NAME]``: closes one object made by ``%%bpf``, or all of them.

An error of bpfkit's (a compile error, the verifier's refusal, a hook that does not exist) is
printed on stderr as one message, without a Python traceback: clang's diagnostics name the
cell and count its lines from the first line of C (``cell counts:3:5: error: ...``). The last
such error is kept in the namespace as ``_bpf_error`` (a ``LoadError``'s whole verifier log is
``_bpf_error.verifier_log``). A magic used wrongly raises IPython's ``UsageError``.

>>> %load_ext bpfkit
>>> %%bpf counts
... struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
...          __type(key, u32); __type(value, u64); } calls SEC(".maps");
... SEC("tracepoint/syscalls/sys_enter_getppid")
... int count(void *ctx) { ... }
>>> counts["calls"].items()
>>> %bpf_watch counts.calls --interval 0.5
>>> df = %bpf_tool opensnoop -p 1234 --for 5
>>> %bpf_close
"""

from __future__ import annotations

import keyword
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ._errors import BPFError, CompileError, LoadError
from ._watch import KINDS, watch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["BPFMagics", "load", "records_frame"]

#: How long a tool has to end after SIGINT before it is killed, in seconds.
STOP_TIMEOUT = 10.0
#: How long the number of BPF links a starting tool holds must stay the same before the tool
#: counts as attached (it attaches its programs one after the other, microseconds apart).
SETTLE = 0.1
#: Without BPF links (an old kernel attaching through perf events), how long its programs must
#: have been loaded before the tool counts as attached.
NO_LINKS_SETTLE = 0.5


def _error(message: str) -> None:
    print(message.rstrip("\n"), file=sys.stderr, flush=True)


def _describe(e: BPFError, cell: Optional[str] = None) -> str:
    """A bpfkit error as the text a magic prints: clang's diagnostics for a compile error (the
    source named ``cell NAME`` rather than ``<text>``), else the error's class and message."""
    if isinstance(e, CompileError) and e.diagnostics.strip():
        text = e.diagnostics
    else:
        text = f"{type(e).__name__}: {e}"
    if cell is not None:
        text = re.sub(r"<text>(?=:\d)", f"cell {cell}", text)
    if isinstance(e, LoadError) and e.verifier_log:
        text = text.rstrip("\n") + "\n(the whole verifier log: _bpf_error.verifier_log)"
    return text


# -- %bpf_tool -------------------------------------------------------------------------------------
def _bpf_fds(pid: int) -> tuple[int, int]:
    """``(programs, links)``: how many BPF program and BPF link fds process ``pid`` holds."""
    progs = links = 0
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return 0, 0
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target == "anon_inode:bpf-prog":
            progs += 1
        elif target == "anon_inode:bpf_link":
            links += 1
    return progs, links


class _Attached:
    """Whether a starting tool has attached its programs, judged from the fds it holds: its BPF
    links, once their number has stayed the same for :data:`SETTLE` seconds (or, on a kernel
    that attaches without links, its programs, loaded for :data:`NO_LINKS_SETTLE` seconds)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: tuple[int, int] = (0, 0)
        self.since = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        seen = _bpf_fds(self.pid)
        if seen != self.last:
            self.last, self.since = seen, now
            return False
        progs, links = seen
        if links:
            return now - self.since >= SETTLE
        return bool(progs) and now - self.since >= NO_LINKS_SETTLE


def _child_pythonpath() -> Optional[str]:
    """``PYTHONPATH`` for the tool's process, so that it runs this same bpfkit: the directory
    holding this package put first, unless it is a site directory, which the child finds
    anyway (and which must not come before the standard library)."""
    import site

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    old = os.environ.get("PYTHONPATH")
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if here in sites or here in (old or "").split(os.pathsep):
        return old
    return os.pathsep.join(p for p in (here, old) if p)


def _reader(stream: Any, into: list) -> threading.Thread:
    def run() -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
        stream.close()

    t = threading.Thread(target=run, daemon=True, name="bpf_tool reader")
    t.start()
    return t


def _kill(proc: subprocess.Popen) -> None:
    """Kills the tool and what it started (a clang compiling its C): its session's process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # already gone
        pass
    proc.wait()


class ToolRun:
    """A bundled tool run as ``python -m bpfkit TOOL -j ARGS`` in its own process (and session,
    so that a terminal's Ctrl-C reaches only this one, which then stops the tool): ``records``
    (the JSON lines, as dicts), ``text`` (other lines of its stdout), ``stderr``, ``status``."""

    def __init__(self, tool: str, args: list, seconds: Optional[float] = None) -> None:
        self.tool = tool
        self.args = list(args)
        self.seconds = seconds
        self.records: list = []
        self.text: list = []
        self.stderr: list = []
        self.status: Optional[int] = None
        self.stopped = False  # ended by our SIGINT (the window passed, or an interrupt)
        self.killed = False
        self.attached = False

    def argv(self) -> list:
        json = [] if any(a in ("-j", "--json") for a in self.args) else ["-j"]
        return [sys.executable, "-m", "bpfkit", self.tool, *json, *self.args]

    def run(self) -> ToolRun:
        """Starts the tool and waits until ``seconds`` have passed since it attached its programs
        (or until it ends, or the user interrupts), then stops it with SIGINT. The stderr lines
        it writes once attached are shown as they come; earlier ones when it ends (only the
        error line, for a usage error)."""
        import json

        env = dict(os.environ)
        path = _child_pythonpath()
        if path:
            env["PYTHONPATH"] = path
        proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                                start_new_session=True)
        out: list = []
        readers = [_reader(proc.stdout, out), _reader(proc.stderr, self.stderr)]
        attached = _Attached(proc.pid)
        shown = 0
        try:
            try:
                deadline = None
                while proc.poll() is None:
                    now = time.monotonic()
                    if not self.attached and attached():
                        self.attached = True
                        if self.seconds is not None:
                            deadline = now + self.seconds
                    if self.attached:
                        shown = self._show(shown)
                    if deadline is not None and now >= deadline:
                        break
                    wait = 0.02 if not self.attached else 0.1
                    if deadline is not None:
                        wait = max(0.0, min(wait, deadline - now))
                    time.sleep(wait)
            except KeyboardInterrupt:
                pass
            self._stop(proc)
        except BaseException:
            _kill(proc)
            raise
        for t in readers:
            t.join(STOP_TIMEOUT)  # a process the tool started may hold the pipes a while
        self.status = proc.returncode
        for line in out:
            try:
                rec = json.loads(line) if line.startswith("{") else None
            except ValueError:
                rec = None
            if isinstance(rec, dict):
                self.records.append(rec)
            else:
                self.text.append(line)
        if self.failed and self.status == 2:  # a usage error: its error line, not the whole usage
            errors = [ln for ln in self.stderr[shown:] if ": error:" in ln]
            if errors:
                self.stderr[shown:] = errors
        self._show(shown)
        if self.killed:
            _error(f"%bpf_tool: {self.tool} did not end within {STOP_TIMEOUT:g} s of SIGINT and was killed")
        elif self.failed and not self.stderr:
            _error(f"%bpf_tool: {self.tool} ended with status {self.status}")
        return self

    def _show(self, shown: int) -> int:
        """Prints the stderr lines after the first ``shown``; returns how many are shown now."""
        lines = self.stderr[shown:]
        for line in lines:
            _error(line)
        return shown + len(lines)

    def _stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        self.stopped = True
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            self.killed = True
            _kill(proc)

    @property
    def failed(self) -> bool:
        """Whether the tool ended with an error before it was stopped (once stopped, its end is
        ours: a tool killed after not ending still gives what it printed)."""
        return bool(self.status) and not self.stopped


def _flat(obj: dict, prefix: str = "", into: Optional[dict] = None) -> dict:
    """Nested objects as ``a.b`` keys; lists stay values."""
    out: dict = {} if into is None else into
    for k, v in obj.items():
        if isinstance(v, dict):
            _flat(v, f"{prefix}{k}.", out)
        else:
            out[f"{prefix}{k}"] = v
    return out


def _plan(objs: list) -> Optional[tuple]:
    """Which key of ``objs`` to unnest into rows: the one key whose value is, wherever present,
    a list of objects (not empty in some object); None when there is no such key, or several
    (a cross product would mean nothing). Nested likewise: ``(key, plan of its elements)``."""
    keys: dict = {}
    for o in objs:
        for k in o:
            keys.setdefault(k, None)
    found = []
    for k in keys:
        vals = [o[k] for o in objs if k in o]
        if all(isinstance(v, list) and all(isinstance(x, dict) for x in v) for v in vals) and any(vals):
            found.append(k)
    if len(found) != 1:
        return None
    k = found[0]
    return k, _plan([x for o in objs for x in o.get(k) or ()])


def _rows(obj: dict, plan: Optional[tuple]) -> list:
    if plan is None:
        return [_flat(obj)]
    key, sub = plan
    base = _flat({k: v for k, v in obj.items() if k != key})
    out = []
    for x in obj.get(key) or ():
        for r in _rows(x, sub):
            out.append({**base, **{(f"{key}.{n}" if n in base else n): v for n, v in r.items()}})
    return out


def records_frame(records: list, *, raw: bool = False) -> Any:
    """The JSON records of a tool as a pandas DataFrame.

    Nested objects become ``a.b`` columns. A list of objects in each record (syscount's
    ``syscalls``, a histogram's ``data`` buckets, a sectioned histogram's ``histograms`` and
    their ``data``) is unnested: one row per element, with its record's other fields repeated,
    so a histogram tool gives one row per bucket and interval (``interval-start``,
    ``interval-end``, ``count``, and the interval's ``ts``), ready for ``pivot`` or ``groupby``.
    An element's field named as a field of its record is prefixed with the list's name
    (funclatency: ``count`` is the interval's calls, ``data.count`` the bucket's). A record
    with an empty list gives no rows. ``raw=True``: one row per record, lists left as they are
    (``pandas.json_normalize``)."""
    import pandas as pd

    if raw:
        return pd.json_normalize(records) if records else pd.DataFrame()
    plan = _plan(records)
    return pd.DataFrame([r for rec in records for r in _rows(rec, plan)])


# -- the magics ------------------------------------------------------------------------------------
def _split(line: str) -> list:
    try:
        return shlex.split(line)
    except ValueError as e:
        raise UsageError(f"cannot split the arguments: {e}") from None


_BPF_OPTIONS = ("--cflags", "--no-attach", "--help", "-h")


def _cflags_joined(tokens: list) -> list:
    """``--cflags -DX -DY`` as ``--cflags=-DX --cflags=-DY``: every word after ``--cflags`` up to
    the magic's next option is a compiler flag, though it starts with ``-``."""
    out: list = []
    taking = None  # the words taken since the last --cflags; None: not after --cflags
    for tok in tokens:
        if tok in _BPF_OPTIONS or tok.startswith("--cflags="):
            if taking == 0:
                out.append("--cflags")  # nothing after it: argparse says what is missing
            taking = 0 if tok == "--cflags" else None
            if taking is None:
                out.append(tok)
        elif taking is not None:
            out.append(f"--cflags={tok}")
            taking += 1
        else:
            out.append(tok)
    if taking == 0:
        out.append("--cflags")
    return out


@magics_class
class BPFMagics(Magics):
    """``%%bpf``, ``%bpf_tool``, ``%bpf_watch`` and ``%bpf_close`` (see :mod:`bpfkit._magics`).
    ``objects`` holds what ``%%bpf`` made, by name: what a re-run closes, and ``%bpf_close``."""

    def __init__(self, shell: Any = None, objects: Optional[dict] = None) -> None:
        super().__init__(shell)
        self.objects: dict = {} if objects is None else objects

    def _failed(self, e: BPFError, cell: Optional[str] = None) -> None:
        self.shell.user_ns["_bpf_error"] = e
        _error(_describe(e, cell))

    def _forget(self, name: str) -> None:
        """Closes the object ``%%bpf`` made under ``name``, and unbinds the name if it still
        refers to that object."""
        obj = self.objects.pop(name, None)
        if obj is None:
            return
        obj.close()
        if self.shell.user_ns.get(name) is obj:
            del self.shell.user_ns[name]

    @magic_arguments()
    @argument("name", help="the name to bind the BPF object to (a Python identifier)")
    @argument("--cflags", action="append", default=[], metavar="FLAG",
              help="compiler flags (-DMAX=64 -I/path ...): every word up to the next option")
    @argument("--no-attach", action="store_true", help="load only: do not attach the programs")
    @cell_magic
    def bpf(self, line: str, cell: str) -> None:
        """Compiles the cell's BPF C, loads it and attaches its programs: ``BPF(text=cell)``,
        bound to NAME. A re-run closes the object it made before first. Errors are printed
        (clang's lines counted from the cell's first line of C), without a traceback."""
        args = self.bpf.parser.parse_args(_cflags_joined(_split(line)))
        name = args.name
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"%%bpf NAME: {name!r} is not a Python name")
        self._forget(name)
        from ._bpf import BPF

        try:
            obj = BPF(text=cell, cflags=args.cflags, autoattach=not args.no_attach, name=name)
        except BPFError as e:
            self._failed(e, name)
            return
        self.objects[name] = obj
        self.shell.user_ns[name] = obj

    @line_magic
    def bpf_tool(self, line: str) -> Any:
        """``%bpf_tool TOOL [ARGS ...] [--for SECONDS] [--raw]``: runs bundled tool TOOL
        (``python -m bpfkit TOOL -j ARGS``) for SECONDS after it has attached its programs (or
        until it ends by itself, or the cell is interrupted), stops it with SIGINT and returns
        its JSON records as a pandas DataFrame (see :func:`records_frame`; ``--raw``: one row
        per record). The tool's notes and errors are shown as it writes them. Without a TOOL,
        lists the tools.

            df = %bpf_tool opensnoop -p 1234 --for 5
            df = %bpf_tool biolatency -D --for 10      # one row per disk and bucket
        """
        tokens = _split(line)
        seconds: Optional[float] = None
        raw = False
        rest = []
        it = iter(tokens)
        for tok in it:
            if tok == "--raw":
                raw = True
            elif tok == "--for" or tok.startswith("--for="):
                value = tok[len("--for="):] if "=" in tok else next(it, None)
                try:
                    seconds = float(value) if value is not None else None
                except ValueError:
                    seconds = None
                if seconds is None or not 0 < seconds < float("inf"):
                    raise UsageError(f"%bpf_tool --for takes a positive number of seconds, not {value!r}")
            else:
                rest.append(tok)
        from . import tools

        if not rest:
            names = tools.names()
            width = max(map(len, names), default=0)
            print("\n".join(f"{n:<{width}}  {tools.summary(n)}" for n in names))
            return None
        tool, args = rest[0], rest[1:]
        if not tools.is_tool(tool):
            import difflib

            close = difflib.get_close_matches(tool, tools.names(), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; %bpf_tool alone lists them"
            _error(f"%bpf_tool: there is no tool {tool!r}{hint}")
            return None
        run = ToolRun(tool, args, seconds).run()
        if run.text:
            print("\n".join(run.text))
        if run.failed or (run.text and not run.records):
            return None
        try:
            return records_frame(run.records, raw=raw)
        except ImportError:
            _error("%bpf_tool: a DataFrame needs pandas (pip install pandas): here are the records as a list")
            return run.records

    @magic_arguments()
    @argument("target", help="NAME.MAP: map MAP of the BPF object NAME (or NAME: a map itself)")
    @argument("-i", "--interval", type=float, default=1.0, help="seconds between updates (default 1)")
    @argument("-c", "--count", type=int, default=None, help="how many updates (default: until interrupted)")
    @argument("-k", "--kind", choices=KINDS, default=None,
              help="log2 or linear histogram, or top entries (default: chosen from the map)")
    @argument("-n", "--top", type=int, default=10, help="entries a top view shows (default 10)")
    @argument("--val-type", default="value", help="the histogram's value column heading (usecs...)")
    @line_magic
    def bpf_watch(self, line: str) -> None:
        """A live view of a map, redrawn in place each interval: a histogram or the largest
        entries (see :func:`bpfkit.watch`). Ends after COUNT updates, or when interrupted."""
        args = self.bpf_watch.parser.parse_args(_split(line))
        name, _, map_name = args.target.partition(".")
        ns = self.shell.user_ns
        if name not in ns:
            raise UsageError(f"%bpf_watch: no {name!r} in the namespace (NAME.MAP: a BPF object and its map)")
        obj = ns[name]
        try:
            if map_name:
                if not hasattr(obj, "get_table"):
                    raise UsageError(f"%bpf_watch: {name} is a {type(obj).__name__}, not a BPF object")
                try:
                    table = obj[map_name]
                except KeyError:
                    raise UsageError(f"%bpf_watch: {name} has no map {map_name!r}; its maps: "
                                     f"{', '.join(obj) or 'none'}") from None
            else:
                table = obj
            watch(table, interval=args.interval, count=args.count, kind=args.kind, top=args.top,
                  val_type=args.val_type)
        except (TypeError, ValueError) as e:
            raise UsageError(f"%bpf_watch: {e}") from None
        except BPFError as e:
            self._failed(e)

    @magic_arguments()
    @argument("name", nargs="?", help="the object to close (default: every object %%%%bpf made)")
    @line_magic
    def bpf_close(self, line: str) -> None:
        """Closes the object ``%%bpf`` made under NAME (detaching its programs, freeing its
        maps) and removes NAME from the namespace; without NAME, every one it made."""
        args = self.bpf_close.parser.parse_args(_split(line))
        if args.name is None:
            for name in list(self.objects):
                self._forget(name)
            return
        if args.name not in self.objects:
            made = ", ".join(sorted(self.objects)) or "none"
            _error(f"%bpf_close: %%bpf made no object named {args.name!r} (open now: {made})")
            return
        self._forget(args.name)


def load(ipython: Any) -> None:
    """Registers the magics with ``ipython`` (what ``%load_ext bpfkit`` calls). Registering
    again (``%reload_ext``) keeps the objects the earlier registration made, so a re-run still
    closes them."""
    old = ipython.magics_manager.registry.get("BPFMagics")
    ipython.register_magics(BPFMagics(ipython, objects=getattr(old, "objects", None)))
