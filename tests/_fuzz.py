"""The harness of tests/test_fuzz.py: hostile values, the oracle, and a worker process that makes
the calls, so that a segfault or a hang is a reported failure (with the call that caused it)
instead of the end of the test run.

A case is ``(kind, seed, index)``; the worker draws the arguments itself from
``random.Random(f"{seed}/{kind}/{index}")``, makes the call, judges the outcome with
:func:`judge` and answers with the call's description and the problems found. The test side
(:class:`Worker`) sends cases, waits for each answer up to the call's bound, and starts the
worker again after a crash or a hang (taking the worker's Python stacks, from faulthandler,
into the report).
"""

from __future__ import annotations

import ctypes as ct
import dataclasses
import faulthandler
import gc
import json
import operator
import os
import queue
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent

# -- hostile values ----------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


class Index:
    """An int-like object (``__index__``), as numpy ints and enums are."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v

    def __repr__(self) -> str:
        return f"Index({self.v!r})"


class BytesLike:
    """An object with ``__bytes__``."""

    def __init__(self, b: bytes) -> None:
        self.b = b

    def __bytes__(self) -> bytes:
        return self.b

    def __repr__(self) -> str:
        return f"BytesLike({self.b!r})"


class NotBytes:
    """An object whose ``__bytes__`` breaks its contract."""

    def __bytes__(self) -> bytes:
        return "not bytes"  # type: ignore[return-value]

    def __repr__(self) -> str:
        return "NotBytes()"


class Opaque:
    """``object()`` with a stable repr."""

    def __repr__(self) -> str:
        return "object()"


INTS = [0, 1, -1, 2, 5, 7, 127, 128, -128, -129, 255, 256, 32767, 32768, -32769, 65535, 65536, 70000,
        2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**32 + 5, 2**63 - 1, 2**63, -2**63,
        -2**63 - 1, 2**64 - 1, 2**64, 2**64 + 3, 2**70 + 3, 2**200, -2**200]
SMALL_INTS = [0, 1, 2, 3, 5, 7, -1, -8]
FLOATS = [0.0, 0.5, -1.5, 1e300, NAN, INF, -INF]
BOOLS = [True, False]
STRS = ["", "a", "x\x00y", "\x00", "é", "\udcff", "a" * 5000, "../../../etc/passwd", "%s%n{0}", " "]
BYTES = [b"", b"\x00", b"\xff\xfe", b"a\x00b", b"\x01\x00\x00\x00", b"\x01" * 8, bytes(4096),
         bytearray(b"\x02\x00\x00\x00"), memoryview(b"\x03\x00\x00\x00\x00\x00\x00\x00")]
REGEXES = ["(", "[a-", "*", "a{2,1}", "(?P<", "\\", "x)", "+", "(?<!a+)b", "[[:alpha:]]", "\\p{L}",
           "nomatch_[0-9]+"]
WRONG = [None, [], [1], {}, {"a": 1}, (1, 2), set(), frozenset({1}), Opaque(), Ellipsis, NotBytes(),
         BytesLike(b"\x05"), Index(2**64), Index(-1), Index(5), 1j]


def _numpy() -> list:
    import numpy as np

    return [np.int64(5), np.int64(-1), np.uint64(2**64 - 1), np.float64("nan"),
            np.array([1, 2], dtype=np.uint32), np.int8(-128), np.bool_(True), np.uint32(7)]


NUMPY = _numpy()
ANY = (INTS, INTS, INTS, FLOATS, BOOLS, STRS, BYTES, WRONG, NUMPY)


def pick(r: random.Random, *pools: list) -> Any:
    """A value from one of ``pools``, the pool chosen first (so a short pool is not drowned)."""
    return r.choice(r.choice(pools))


def as_int(v: Any) -> Optional[int]:
    """``v`` as the int an integer field would hold, or None when ``v`` is no integer."""
    if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f"):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def bad_regex(v: Any) -> bool:
    """Whether ``v`` is a str that ``re`` refuses."""
    if not isinstance(v, str):
        return False
    try:
        re.compile(v)
        return False
    except re.error:
        return True


def sr(v: Any) -> str:
    """A short repr for messages."""
    s = repr(v)
    return s if len(s) <= 80 else f"{s[:40]}...<{len(s)} chars>"


def fmt_args(*args: Any, **kw: Any) -> str:
    return ", ".join([sr(a) for a in args] + [f"{k}={sr(v)}" for k, v in kw.items()])


# -- a call and its oracle ---------------------------------------------------------------------------

@dataclasses.dataclass
class Call:
    """One call to make. ``fn`` makes it; ``desc`` says it in Python."""

    desc: str
    fn: Callable[[], Any]
    #: An OverflowError must name one of these (an argument, "key", "value", the map, the global...).
    names: tuple = ()
    #: ``((exception type, names), ...)``: such an exception must name one of ``names``.
    also_named: tuple = ()
    #: After a success: the problems found reading back what was written (wrap-around).
    check: Optional[Callable[[Any], list]] = None
    #: Kind-specific judgement of an exception: returns problems.
    judge: Optional[Callable[[BaseException], list]] = None
    #: The exception the call must raise (``ClosedError`` after close()).
    expect: Optional[type] = None
    #: The call has nothing invalid in it: any exception is a failure.
    must_succeed: bool = False
    #: The call takes file paths: an OSError with an errno (FileNotFoundError...) is a fine answer.
    paths: bool = False
    #: The call makes BPF objects of its own: none of their fds may be open after it.
    creates: bool = False
    #: Seconds the call may take.
    bound: float = 5.0


@dataclasses.dataclass
class Kind:
    """A kind of call: its share of the cases, and ``gen(rng, env) -> Call``."""

    weight: float
    gen: Callable[[random.Random, Any], Call]


#: Never an answer to bad input, whatever the call.
NEVER = (SystemError, AttributeError, UnicodeError, re.error, RecursionError, MemoryError, KeyboardInterrupt,
         SystemExit)


def describe(exc: BaseException) -> str:
    """``Type: message (at file:line in function)``, with the innermost frame."""
    t = type(exc)
    name = t.__qualname__ if t.__module__ in ("builtins", "re") else f"{t.__module__}.{t.__qualname__}"
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        f = tb[-1]
        where = f" (at {os.path.basename(f.filename)}:{f.lineno} in {f.name})"
    msg = str(exc)
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{name}: {msg}{where}"


def judge(call: Call, exc: Optional[BaseException], result: Any, elapsed: float, have_compiler: bool) -> list:
    """The oracle: what is wrong with this outcome of ``call``."""
    from bpfkit import BPFError, CompilerNotFoundError

    out = []
    if elapsed > call.bound:
        out.append(f"took {elapsed:.1f} s (bound {call.bound:.0f} s)")
    if call.expect is not None:
        if exc is None:
            out.append(f"returned {sr(result)} instead of raising {call.expect.__name__}")
        elif not isinstance(exc, call.expect):
            out.append(f"raised {describe(exc)} instead of {call.expect.__name__}")
        return out
    if exc is None:
        return out
    if call.must_succeed:
        return out + [f"raised {describe(exc)}; nothing in this call is invalid"]
    allowed = (BPFError, ValueError, TypeError, OverflowError, KeyError, IndexError, NotImplementedError)
    if isinstance(exc, NEVER):
        out.append(f"raised {describe(exc)}: not a typed error")
    elif not isinstance(exc, allowed) and not (call.paths and isinstance(exc, OSError) and exc.errno):
        out.append(f"raised {describe(exc)}: not a typed error")
    if isinstance(exc, CompilerNotFoundError) and have_compiler:
        out.append(f"raised {describe(exc)} although a compiler is installed")
    for t, names in ((OverflowError, call.names),) + tuple(call.also_named):
        if names and isinstance(exc, t) and not isinstance(exc, NEVER):
            msg = str(exc).lower()
            if not any(str(n).lower() in msg for n in names):
                out.append(f"raised {describe(exc)}, which names none of {', '.join(map(str, names))}")
    if call.judge is not None:
        out += call.judge(exc)
    return out


# -- the harness's own test ----------------------------------------------------------------------

def _selftest(behaviour: str) -> Callable[[random.Random, Any], Call]:
    def gen(r: random.Random, e: Any) -> Call:
        def fn() -> Any:
            if behaviour == "segfault":
                ct.string_at(16, 8)  # what RingBuf.event(16) once did
            elif behaviour == "hang":
                time.sleep(60)
            elif behaviour == "untyped":
                raise SystemError("error return without exception set")
            elif behaviour == "unnamed_overflow":
                raise OverflowError("int too big to convert")
            return 5

        def wrapped(got: Any) -> list:
            return [f"accepted 2**32+5, reads back {got} (wrapped?)"]

        return Call(f"selftest {behaviour}", fn, names=("key",), bound=1.0,
                    check=wrapped if behaviour == "wrap" else None)
    return gen


#: Kinds that misbehave on purpose, to show the harness reports each failure (run by a worker
#: without a BPF object).
SELFTEST = {b: Kind(0, _selftest(b))
            for b in ("segfault", "hang", "untyped", "unnamed_overflow", "wrap", "fine")}


# -- the worker ------------------------------------------------------------------------------------

def bpf_fds() -> set:
    """This process's fds of BPF objects and perf events."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("anon_inode:bpf-", "anon_inode:bpf_link", "anon_inode:[perf_event]")):
            out.add((fd, target))
    return out


def worker_main(kinds: dict, make_env: Callable[[dict], Any]) -> None:
    """The worker's loop: ``["case", kind, seed, index]`` or ``["release"]`` lines in, JSON lines
    out. The environment (the worker's BPF object) is made at a test's first case and released at
    its end, so that it is no part of what the test leaves behind."""
    cfg = json.loads(sys.argv[1])
    cmds = os.fdopen(cfg["cmd_fd"], "r")
    res = os.fdopen(cfg["res_fd"], "w", buffering=1)
    sys.stdout = open(os.devnull, "w")  # histogram printers print; the protocol has its own pipe
    faulthandler.enable(all_threads=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash is reported; no core file for it
    table = SELFTEST if cfg["selftest"] else kinds

    def send(**msg: Any) -> None:
        res.write(json.dumps(msg) + "\n")

    env: Any = None
    have_compiler = True
    send(ready=os.getpid())
    for line in cmds:
        cmd = json.loads(line)
        if cmd[0] == "release":
            if env is not None and hasattr(env, "close"):
                env.close()
            env = None
            gc.collect()
            send(released=sorted(t for _, t in bpf_fds()))
            continue
        _, kind, seed, i = cmd
        if env is None and not cfg["selftest"]:
            try:
                env = make_env(cfg)
                have_compiler = env.have_compiler
            except BaseException:
                send(start=f"<setting up for case {i} of {kind}>", bound=5)
                send(done=[f"the test's environment failed: {traceback.format_exc()}"], elapsed=0)
                continue
        try:
            call = table[kind].gen(random.Random(f"{seed}/{kind}/{i}"), env)
        except BaseException:
            send(start=f"<generating case {i} of {kind}>", bound=5)
            send(done=[f"the test's generator failed: {traceback.format_exc()}"], elapsed=0)
            continue
        send(start=call.desc, bound=call.bound)
        fds = bpf_fds() if call.creates else set()
        t0 = time.monotonic()
        exc: Optional[BaseException] = None
        result = None
        try:
            result = call.fn()
        except BaseException as ex:  # noqa: BLE001 - judged
            exc = ex
        elapsed = time.monotonic() - t0
        outcome = "returned" if exc is None else type(exc).__name__
        detail = sr(result) if exc is None else describe(exc)
        problems = judge(call, exc, result, elapsed, have_compiler)
        if exc is None and call.check is not None and call.expect is None:
            try:
                problems += call.check(result)
            except Exception as ex:  # noqa: BLE001 - reported
                problems.append(f"reading back what was accepted raised {describe(ex)}")
        exc = result = None
        if env is not None and hasattr(env, "reset"):
            try:
                env.reset()
            except Exception as ex:  # noqa: BLE001 - reported
                problems.append(f"the harness could not reset the object after the call: {describe(ex)}")
        gc.collect()
        if call.creates:
            left = bpf_fds() - fds
            if left:
                problems.append(f"left {len(left)} BPF fds open: {sorted(t for _, t in left)[:6]}")
        send(done=problems, elapsed=elapsed, outcome=outcome, detail=detail)


# -- the test side -------------------------------------------------------------------------------

class WorkerError(RuntimeError):
    """The worker could not be started."""


class Worker:
    """A worker process, in a network namespace of its own (``unshare --net``: XDP and tc calls
    there touch nothing of the host), started again after a crash or hang. ``entry`` is the
    Python statement that runs :func:`worker_main`."""

    def __init__(self, entry: str, cfg: dict, errlog: Path) -> None:
        self.entry, self.cfg, self.errlog = entry, cfg, errlog
        self.proc: Optional[subprocess.Popen] = None
        self.err: Any = None
        self.outcomes: dict = {}

    def start(self) -> None:
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        cfg = dict(self.cfg, cmd_fd=cmd_r, res_fd=res_w)
        if self.err is not None:
            self.err.close()
        self.err = open(self.errlog, "a+")
        argv = [sys.executable, "-c", self.entry, json.dumps(cfg)]
        self.proc = subprocess.Popen(["unshare", "--net", "--", *argv], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err, pass_fds=(cmd_r, res_w))
        os.close(cmd_r)
        os.close(res_w)
        self.cmd = os.fdopen(cmd_w, "w", buffering=1)
        self.lines: queue.Queue = queue.Queue()
        res = os.fdopen(res_r, "r")

        def reader() -> None:
            for line in res:
                self.lines.put(json.loads(line))
            self.lines.put({"eof": True})

        threading.Thread(target=reader, daemon=True).start()
        msg = self._next(120)
        if msg is None or "ready" not in msg:
            why = self._stderr_tail()
            self.stop()
            raise WorkerError(f"the fuzz worker did not start:\n{why}")

    def _next(self, timeout: float) -> Optional[dict]:
        """The worker's next message; ``{"eof": True}`` when it is gone, None after ``timeout``."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def _send(self, cmd: list) -> bool:
        try:
            self.cmd.write(json.dumps(cmd) + "\n")
            return True
        except BrokenPipeError:
            return False

    def _stderr_tail(self, since: int = 0, n: int = 25) -> str:
        self.err.flush()
        with open(self.errlog, errors="replace") as f:
            f.seek(since)
            lines = f.read().splitlines()
        return "\n".join("      | " + ln for ln in lines[-n:])

    def run(self, kind: str, seed: int, i: int) -> tuple:
        """``(description, problems)`` of case ``i`` of ``kind``; :attr:`outcomes` counts how the
        calls ended (returned, or the exception's type)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None
        mark = os.path.getsize(self.errlog)
        if not self._send(["case", kind, seed, i]):
            return f"case {i}", [self._dead("before the case was sent", mark)]
        start = self._next(60)
        if start is None or "eof" in start:
            return f"case {i}", [self._dead("before it began the call", mark)]
        wait = start["bound"] + 3
        done = self._next(wait)
        if done is not None and "eof" not in done:
            self.outcomes[done["outcome"]] = self.outcomes.get(done["outcome"], 0) + 1
            if os.environ.get("BPFKIT_FUZZ_VERBOSE"):
                print(f"  case {i}: {start['start']}\n      {done['detail']} ({done['elapsed']:.3f} s)")
            return start["start"], done["done"]
        self.outcomes["crash or hang"] = self.outcomes.get("crash or hang", 0) + 1
        if done is None:
            # Hung: faulthandler prints every thread's stack on SIGABRT; then make sure it is gone.
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return start["start"], [f"HANG: no answer within {wait:.0f} s; the worker's stacks:\n"
                                    + self._stderr_tail(mark, 40)]
        return start["start"], [self._dead("during the call", mark)]

    def release(self) -> list:
        """Has the worker drop its environment (and its BPF object); returns the BPF fds it
        still has open, which should be none."""
        if self.proc is None or self.proc.poll() is not None or not self._send(["release"]):
            return []
        msg = self._next(30)
        return msg["released"] if msg and "released" in msg else ["<no answer to release>"]

    def _dead(self, when: str, mark: int) -> str:
        assert self.proc is not None
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:  # its pipe closed, yet it lives on: make sure it is gone
            self.proc.kill()
            rc = self.proc.wait()
        how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
        return f"CRASH: the worker died {when} ({how}); its last words:\n{self._stderr_tail(mark)}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.cmd.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.err is not None:
            self.err.close()
            self.err = None
