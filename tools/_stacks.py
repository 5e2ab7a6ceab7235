"""What the stack tools share (``profile``, ``offcputime``, ``wakeuptime``), on top of the kit.

* argument types (:func:`positive`, :func:`id_list`, :func:`flamegraph_path`) and
  :func:`add_output_args` (``-f``, ``--flamegraph FILE.svg``, ``--stack-storage-size``);
* :func:`collect` — the run: until the duration or Ctrl-C, remembering meanwhile (ten times a
  second) the mappings of the processes whose user stacks were taken (:meth:`Symbols.watch_map`,
  ``BPF.remember_process``), so that a process that exits before the report is still named;
  :func:`report_task_stacks` — that run and the report of profile's and offcputime's stacks;
* :class:`Symbols` — kernel and user frames by name, cached, with the count of ``[unknown]`` ones;
* :class:`Report` — the stacks, printed as BCC prints them, folded (``-f``, FlameGraph's format),
  as JSON lines (``-j``), or drawn as a flame graph (``--flamegraph``), with the stacks that could
  not be shown and the frames left ``[unknown]`` reported on stderr, not hidden.

The BPF side is ``stack.bpf.h``: the ``stacks`` map and ``stack_ids()``.
"""

from __future__ import annotations

import errno
import os
import sys
import time

from ._kit import invalid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

#: Kernel frames of the tracing machinery itself, at the leaf of a stack taken in a tracepoint's
#: program (tp_btf and raw_tp run it from bpf_trace_run*()): not what the task was doing.
_TRACING_FRAMES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "bpf_get_stackid",
                   "__bpf_get_stackid", "bpf_get_stackid_raw_tp", "__perf_event_overflow")


def positive(text: str) -> int:
    """An integer of at least 1 (a size, a number of microseconds or events).

    >>> positive("1024")
    1024
    """
    try:
        n = int(text, 10)
    except ValueError:
        n = 0
    if n < 1:
        raise invalid(f"{text!r} is not a positive integer")
    return n


def state_mask(text: str) -> int:
    """A task state mask for ``--state``: an integer from 0 (runnable: preempted) up.

    >>> state_mask("2")
    2
    """
    try:
        n = int(text, 10)
    except ValueError:
        n = -1
    if not 0 <= n < 2**31:
        raise invalid(f"{text!r} is not a task state mask (0, or a mask such as 2 for TASK_UNINTERRUPTIBLE)")
    return n


def id_list(text: str) -> list:
    """One or more comma-separated process (or thread) ids, as BCC's profile takes them.

    >>> id_list("181,182")
    [181, 182]
    """
    from ._kit import pid

    ids = [pid(part.strip()) for part in text.split(",")]
    if len(ids) > 1024:
        raise invalid(f"{len(ids)} ids: at most 1024")
    return sorted(set(ids))


def flamegraph_path(text: str) -> str:
    """Where to write a flame graph: a file name whose directory exists. Refused, too, when this
    build of bpfkit has no flame graph renderer."""
    directory = os.path.dirname(os.path.abspath(text))
    if not text or os.path.isdir(text) or not os.path.isdir(directory):
        raise invalid(f"{text!r} is not a file name in an existing directory")
    from bpfkit import _native

    if not hasattr(_native, "flamegraph_svg"):
        raise invalid("this build of bpfkit's native module has no flame graph renderer")
    return text


def add_stack_args(p: Any) -> None:
    """``-U/--user-stacks-only`` or ``-K/--kernel-stacks-only``, and ``-d/--delimited``."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("-U", "--user-stacks-only", action="store_true", help="show stacks from user space only "
                       "(no kernel space stacks)")
    which.add_argument("-K", "--kernel-stacks-only", action="store_true", help="show stacks from kernel space "
                       "only (no user space stacks)")
    p.add_argument("-d", "--delimited", action="store_true", help="insert delimiter between kernel/user stacks")


def stack_consts(args: Any) -> dict:
    """The ``user_stacks``/``kernel_stacks`` globals of ``stack.bpf.h`` for :func:`add_stack_args`'s
    flags."""
    return {"user_stacks": not args.kernel_stacks_only, "kernel_stacks": not args.user_stacks_only}


def stack_json(s: Stack, head: dict) -> dict:
    """A stack's JSON object: ``head``, then its user and kernel frames (those it has, a missed
    stack as BCC prints it), then its count."""
    obj = dict(head)
    if s.user is not None:
        obj["user_stack"] = ["[Missed User Stack]"] if "user" in s.missed else s.user
    if s.kernel is not None:
        obj["kernel_stack"] = ["[Missed Kernel Stack]"] if "kernel" in s.missed else s.kernel
    obj["count"] = s.count
    return obj


def add_output_args(p: Any, storage_default: int) -> None:
    """``-f/--folded``, ``--flamegraph FILE.svg``, ``--stack-storage-size N`` and ``-j``."""
    p.add_argument("-f", "--folded", action="store_true", help="output folded format, one line per stack "
                   "(for flame graphs)")
    p.add_argument("--flamegraph", metavar="FILE.svg", type=flamegraph_path,
                   help="also write the stacks as an SVG flame graph to this file")
    p.add_argument("--stack-storage-size", type=positive, default=storage_default,
                   help=f"the number of unique stack traces that can be stored and displayed "
                   f"(default {storage_default})")
    p.add_argument("-j", "--json", action="store_true", help="print one JSON object per stack")


def map_sizes(args: Any) -> dict:
    """``BPF(map_sizes=)`` for ``--stack-storage-size``: the stack map's entries, set before load,
    so every size runs the same compiled object."""
    return {"stacks": args.stack_storage_size}


def duration_text(duration: float | None) -> str:
    """BCC's end of a header line: `` for 5 secs.`` or ``... Hit Ctrl-C to end.``."""
    if duration is None:
        return "... Hit Ctrl-C to end."
    return " for %s secs." % (int(duration) if duration == int(duration) else duration)


def collect(duration: float | None, watch: Callable[[], Any] | None = None, every: float = 0.1, *,
            final: bool = True) -> bool:
    """Waits ``duration`` seconds (forever if None) or until Ctrl-C, calling ``watch()`` every
    ``every`` seconds and once at the end; then ignores Ctrl-C, as BCC does while it prints what
    it gathered (a second Ctrl-C would otherwise lose it all). With ``final=False`` (an interval
    of several) Ctrl-C is ignored only once it came. Returns whether it came."""
    import _signal as signal  # the interpreter's own: `signal` imports enum, which nothing here needs

    step = every if watch is not None else 3600.0
    deadline = None if duration is None else time.monotonic() + duration
    interrupted = False
    try:
        while True:
            left = step if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(step, left))
            if watch is not None:
                watch()
    except KeyboardInterrupt:
        interrupted = True
    if final or interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if watch is not None:
        watch()
    return interrupted


def stack_kinds(args: Any) -> str:
    """The stacks taken, as a header line says them: ``user``, ``kernel`` or ``user + kernel``."""
    return "user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only else "user + kernel"


def report_task_stacks(b: Any, args: Any, report: Report, *, sym_pid: Callable[[Any], int], trim: bool = False,
                       extra: Callable[[Any], dict] | None = None) -> None:
    """profile's and offcputime's run and report, their program's ``counts`` being by a task's
    stacks (``stack.bpf.h``): :func:`collect` until ``-d`` or Ctrl-C, noting meanwhile the
    mappings of the processes in ``stack_pids`` (user frames are named at the end), a blank line
    in text, then each task's stacks added (:meth:`Report.add_task_stack`, the user frames named
    in process ``sym_pid(key)``, with ``trim`` and JSON fields ``extra(key)``) and printed."""
    symbols = report.symbols
    pids = b["stack_pids"]
    collect(args.duration, None if args.kernel_stacks_only else lambda: symbols.watch_map(pids))
    if not args.folded and not args.json:
        print()
    stack_map = b["stacks"]
    for k, v in b["counts"].items():
        report.add_task_stack(v.value, k.name.decode(errors="replace"), k.pid, sym_pid(k), k.user_stack_id,
                              k.kernel_stack_id, stack_map, user=not args.kernel_stacks_only,
                              kernel=not args.user_stacks_only, trim=trim, extra=extra(k) if extra else None)
    report.print()

class Symbols:
    """Names of stack frames: kernel addresses through ``BPF.ksym`` (``/proc/kallsyms``), user
    ones through ``BPF.sym`` (blazesym), each cached. User frames are named at the end of a run,
    when some processes have exited: :meth:`watch` has ``BPF.remember_process`` note the mappings
    of each process seen while it lives, through which ``BPF.sym`` names its addresses after.
    ``frames`` and ``unknown`` count the frames named and those left ``[unknown]``."""

    def __init__(self, *, annotate_kernel: bool = False) -> None:
        from bpfkit import BPF

        self._bpf = BPF
        self._suffix = "_[k]" if annotate_kernel else ""
        self._kernel: dict = {}
        self._user: dict = {}
        self._seen: set = set()
        self.frames = 0
        self.unknown = 0

    def watch(self, pids: Iterable[int]) -> None:
        """Remembers the executable mappings of each of ``pids`` not seen yet, while it lives."""
        for pid in pids:
            if pid > 0 and pid not in self._seen:
                self._seen.add(pid)
                self._bpf.remember_process(pid)

    def watch_map(self, table: Any) -> None:
        """:meth:`watch` of the processes in ``table`` (``stack.bpf.h``'s ``stack_pids``), taken
        out of it: the map holds only the processes new since the last look."""
        pids = [int(k.value) for k in table.keys()]
        for pid in pids:
            try:
                del table[pid]
            except KeyError:
                pass
        self.watch(pids)

    def kernel(self, addr: int) -> str:
        name = self._kernel.get(addr)
        if name is None:
            name = self._kernel[addr] = self._bpf.ksym(addr) + self._suffix
        return self._count(name)

    def user(self, addr: int, pid: int) -> str:
        key = (pid, addr)
        name = self._user.get(key)
        if name is None:
            try:
                name = self._bpf.sym(addr, pid)
            except (ValueError, OSError):  # a zombie (no mappings left), a file blazesym cannot read
                name = "[unknown]"
            self._user[key] = name
        return self._count(name)

    def _count(self, name: str) -> str:
        self.frames += 1
        if name.startswith("[unknown]"):
            self.unknown += 1
        return name


def stack_error(stack_id: int) -> bool:
    """Whether a stack id is an error to report: -EFAULT only says there is no stack of that kind
    (a kernel thread's user stack, a sample taken in user mode's kernel stack); -EEXIST (a hash
    collision) and -ENOMEM (a full map) lose a stack that was there."""
    return stack_id < 0 and stack_id != -errno.EFAULT


def trim_tracing(frames: list) -> list:
    """A kernel stack (innermost first) without the tracing machinery's frames at its leaf."""
    i = 0
    while i < len(frames) and frames[i].startswith(_TRACING_FRAMES):
        i += 1
    return frames[i:]


class Stack:
    """One stack of the report: ``count`` (samples, or microseconds), the task's ``comm`` and
    ``pid`` (what the text shows), ``user`` and ``kernel`` frames innermost first (None: not asked
    for; ``missed`` names a side the kernel lost), and ``extra`` JSON fields."""

    __slots__ = ("count", "comm", "pid", "user", "kernel", "missed", "extra")

    def __init__(self, count: int, comm: str, pid: int, user: list | None, kernel: list | None,
                 missed: tuple = (), extra: dict | None = None) -> None:
        self.count = count
        self.comm = comm
        self.pid = pid
        self.user = user
        self.kernel = kernel
        self.missed = missed
        self.extra = extra or {}


class Report:
    """The stacks a tool gathered, and how to print them (``args``: ``folded``, ``json``,
    ``delimited``, ``flamegraph``). ``unit`` names the counts ("samples", "us")."""

    def __init__(self, args: Any, symbols: Symbols, *, unit: str, title: str, colors: str) -> None:
        self.args = args
        self.symbols = symbols
        self.unit = unit
        self.title = title
        self.colors = colors
        self.stacks: list = []
        #: stacks the kernel lost (-EEXIST, -ENOMEM), and whether a collision or a full map did it
        self.lost = 0
        self.lost_by_errno: dict = {}
        self.full = False
        #: stacks with no frames at all to show, and their total count
        self.empty = 0
        self.empty_count = 0

    def add_task_stack(self, count: int, comm: str, pid: int, sym_pid: int, user_id: int, kernel_id: int,
                       stack_map: Any, *, user: bool, kernel: bool, trim: bool = False,
                       extra: dict | None = None) -> None:
        """Adds a stack of profile's or offcputime's kind: a task's user and kernel stacks by id
        (``user``, ``kernel``: whether each was asked for), its user frames named in process
        ``sym_pid``; ``trim`` drops the tracing machinery's frames (a stack taken in a tracepoint)."""
        missed = [side for asked, sid, side in ((kernel, kernel_id, "kernel"), (user, user_id, "user"))
                  if asked and self.missed(sid)]
        kframes = self._walk(stack_map, kernel_id, self.symbols.kernel) if kernel else None
        if kframes and trim:
            kframes = trim_tracing(kframes)
        uframes = self._walk(stack_map, user_id, lambda a: self.symbols.user(a, sym_pid)) if user else None
        if not kframes and not uframes and not missed:
            self.no_frames(count)
        self.stacks.append(Stack(count, comm, pid, uframes, kframes, tuple(missed), extra))

    def missed(self, stack_id: int) -> bool:
        """Whether ``stack_id`` is a stack the kernel lost (:func:`stack_error`), counted if so."""
        if not stack_error(stack_id):
            return False
        self.lost += 1
        self.lost_by_errno[-stack_id] = self.lost_by_errno.get(-stack_id, 0) + 1
        self.full = self.full or stack_id in (-errno.ENOMEM, -errno.EEXIST)
        return True

    def no_frames(self, count: int) -> None:
        """Counts a stack shown without frames: the kernel read none of those asked for."""
        self.empty += 1
        self.empty_count += count

    @staticmethod
    def _walk(stack_map: Any, stack_id: int, name: Callable[[int], str]) -> list:
        if stack_id < 0:
            return []
        try:
            return [name(a) for a in stack_map.walk(stack_id)]
        except KeyError:  # the id was reused after a stack was dropped: nothing to show
            return []

    # -- the task stacks' formats, as BCC's profile and offcputime print them --------------------
    def task_folded_frames(self, s: Stack) -> tuple:
        """comm, user frames from the root, ``-`` with ``-d`` when both, kernel frames from the root."""
        line = [s.comm]
        if s.user is not None:
            line += ["[Missed User Stack]"] if "user" in s.missed else s.user[::-1]
        if s.kernel is not None:
            if self.args.delimited and s.user and s.kernel:
                line.append("-")
            line += ["[Missed Kernel Stack]"] if "kernel" in s.missed else s.kernel[::-1]
        return tuple(line)

    def task_text(self, s: Stack) -> str:
        lines = []
        if s.kernel is not None:
            lines += ["[Missed Kernel Stack]"] if "kernel" in s.missed else s.kernel
        if s.user is not None:
            if self.args.delimited and s.user and s.kernel:
                lines.append("--")
            lines += ["[Missed User Stack]"] if "user" in s.missed else s.user
        out = "".join(f"    {f}\n" for f in lines)
        return out + "    %-16s %s (%d)\n        %d\n" % ("-", s.comm, s.pid, s.count)

    def task_json(self, s: Stack) -> dict:
        return stack_json(s, {"comm": s.comm, "pid": s.pid, **s.extra})

    # -- output ---------------------------------------------------------------------------------
    def print(self, folded_frames: Callable[[Stack], tuple] | None = None,
              text: Callable[[Stack], str] | None = None, to_json: Callable[[Stack], dict] | None = None) -> None:
        """Prints the stacks, least counted first as BCC does (text, ``-f`` or ``-j``), writes
        ``--flamegraph``'s SVG, then reports on stderr what could not be shown."""
        folded_frames = folded_frames or self.task_folded_frames
        stacks = sorted(self.stacks, key=lambda s: s.count)
        out = sys.stdout
        if self.args.json:
            from ._kit import print_json

            for s in stacks:
                print_json((to_json or self.task_json)(s))
        elif self.args.folded:
            out.write(self.folded_text(folded_frames, stacks))
        else:
            text = text or self.task_text
            for s in stacks:
                out.write(text(s) + "\n")
        out.flush()
        if self.args.flamegraph:
            from bpfkit import flamegraph

            counts: dict = {}
            for s in stacks:
                frames = folded_frames(s)
                counts[frames] = counts.get(frames, 0) + s.count
            flamegraph(counts, title=self.title, count_name=self.unit, colors=self.colors).save(self.args.flamegraph)
        self.warn()

    @staticmethod
    def folded_text(folded_frames: Callable[[Stack], tuple], stacks: list) -> str:
        """FlameGraph's folded lines (``bpfkit.folded_stacks``: equal stacks summed, ``;`` in
        a name replaced), in BCC's order: least counted first."""
        from bpfkit import folded_stacks as folded

        counts: dict = {}
        for s in stacks:
            frames = folded_frames(s)
            counts[frames] = counts.get(frames, 0) + s.count
        lines = folded(counts).splitlines(keepends=True)
        lines.sort(key=lambda line: int(line.rpartition(" ")[2]))
        return "".join(lines)

    def warn(self) -> None:
        err = sys.stderr
        if self.lost:
            hint = " Consider increasing --stack-storage-size." if self.full else ""
            why = ", ".join(f"-{errno.errorcode.get(e, e)}: {n}" for e, n in sorted(self.lost_by_errno.items()))
            err.write(f"WARNING: {self.lost} stack traces could not be displayed ({why}).{hint}\n")
        if self.empty:
            what = "1 stack has" if self.empty == 1 else f"{self.empty} stacks have"
            err.write(f"WARNING: {what} no frames ({self.empty_count} {self.unit}): the kernel could read none "
                      f"of the stacks asked for (-EFAULT)\n")
        if self.symbols.unknown:
            err.write(f"NOTE: {self.symbols.unknown} of {self.symbols.frames} frames are [unknown] (no symbol "
                      f"covers them, or their process exited before its mappings were seen)\n")
        err.flush()
