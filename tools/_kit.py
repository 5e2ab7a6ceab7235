"""The tool kit: what every bundled tool shares, so that a tool is its ``.bpf.c`` plus a page of
Python.

* :class:`Tool` — a tool's name, its C (``<name>.bpf.c`` beside the module) and its docstring;
  ``tool.parser(*groups)`` makes its command line from BCC-spelled argument groups
  (:data:`GROUPS`), and ``tool.load(args)`` checks the privilege, compiles the C after the shared
  header ``tool.bpf.h`` and sets the groups' filters (``-p -t -u -c --cgroupmap --mntnsmap``)
  before load;
* :func:`event_loop` — runs a tool's ``on_event(e)`` for each record of its ``events`` ring
  buffer (a perf buffer where the kernel has no ring buffers) until ``-d``, Ctrl-C or the reader
  of stdout leaves; records lost meanwhile are reported on stderr as they happen (at most once a
  second, ``WARNING: 12 events lost (ring buffer full)``), and what is left at the end, so that
  the counts add up to the total;
* :func:`intervals` — the ``[interval] [count]`` loop: sleeps, yields, ends after ``count`` or at
  Ctrl-C, printing ``-T``'s time line;
* :class:`Columns` — a column spec that prints the header and the rows, or with ``-j/--json`` one
  JSON object per row;
* :func:`print_hists` — the histograms of an interval as BCC prints them, or one JSON object with
  the buckets as numbers; :func:`read_hists` reads them from the ``dist`` map, and
  :func:`read_extension` and :func:`print_extension` give ``-e``'s summary;
* the argument types (:func:`pid`, :func:`uid`, :func:`seconds`, :func:`count`, :func:`regex`,
  :func:`cgroup_path`, :func:`pinned_map`, :func:`listen_address`) that refuse a bad value with a one-line usage error
  before anything starts;
* ``--prometheus [ADDR:]PORT`` (the ``prometheus`` group): the summary tools serve what they would
  print as Prometheus metrics instead. ``Tool.load`` opens the exporter (``_prom.py``, imported only
  then), :func:`intervals` runs one pass of the tool's loop per scrape, :func:`print_hists` turns
  the histograms into metrics, :func:`clear` leaves the maps cumulative, and a tool's totals go
  through ``exporter(args).counter(...)``. See ``_prom.py`` for the design.

On the BPF side, ``tool.bpf.h`` gives ``tool_traced()`` (the ``-p -t -u -c --cgroupmap
--mntnsmap`` filters, as ``const volatile`` globals), ``TOOL_EVENTS(size)`` (the ``events`` map) and ``tool_reserve()``,
``tool_submit()``, ``tool_output()`` to send records. A whole tool, ``getppidsnoop.py``::

    '''getppidsnoop: Trace getppid() calls.

    Examples::

        bpfkit getppidsnoop -p 181    # only PID 181
    '''
    from ._kit import Columns, Tool, event_loop

    TOOL = Tool(__file__, __doc__)

    def parse_args(argv=None):
        return TOOL.parser("pid", "uid", "cgroup", "duration", "json").parse_args(argv)

    def main(argv=None) -> int:
        args = parse_args(argv)
        cols = Columns([("pid", "PID", "%-7d "), ("comm", "COMM", "%s")], json=args.json)
        with TOOL.load(args) as b:
            event_loop(b, lambda e: cols.row(pid=e.pid, comm=e.comm.decode()), duration=args.duration,
                       ready=cols.header)
        return 0

and ``getppidsnoop.bpf.c``::

    struct event { u32 pid; char comm[16]; };
    TOOL_EVENTS(1 << 16);

    SEC("tracepoint/syscalls/sys_enter_getppid")
    int on_getppid(void *ctx)
    {
            struct event *e;

            if (!tool_traced() || !(e = tool_reserve(struct event)))
                    return 0;
            e->pid = bpf_get_current_pid_tgid() >> 32;
            bpf_get_current_comm(e->comm, sizeof(e->comm));
            tool_submit(ctx, e);
            return 0;
    }

``bpfkit list`` finds it (a module of the tools package, not starting with ``_``) and shows its
docstring's first line; ``bpfkit getppidsnoop -h`` shows the examples; ``--ebpf`` prints the C.

Only the standard library's light modules are imported here: this is on every tool's start path
(``json`` only with ``--json``, ``bpfkit`` itself only when the tool loads its program, and
``bpfkit.exporter``, ``_prom`` and prometheus_client only with ``--prometheus``).
"""

from __future__ import annotations

import errno
import math
import os
import sys
import time

from ._args import SUPPRESS, Parser

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time and no tool needs it
    import re
    from argparse import Namespace
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

__all__ = ["SUPPRESS"]  # re-exported for the tools: help=SUPPRESS hides an option

#: The kernel's PID_MAX_LIMIT on 64-bit machines: no process or thread id is larger.
PID_MAX_LIMIT = 4 * 1024 * 1024
#: The longest duration or interval accepted, in seconds (BCC's "forever" default, about 3 years).
MAX_SECONDS = 99999999.0
#: The tools' directory: each tool's module and C, and the shared BPF header.
HERE = os.path.dirname(os.path.abspath(__file__))
#: The BPF header every tool's C is compiled after (see its comment for what it defines).
HEADER = os.path.join(HERE, "tool.bpf.h")
#: ``ring`` or ``perf``: the event transport to use instead of the kernel's best (ring buffers
#: where the kernel has them); set it to try the perf buffer path on a kernel with ring buffers.
EVENTS_ENV = "BPFKIT_TOOL_EVENTS"


def parse_doc(doc: str | None) -> tuple[str, str, str]:
    """A tool module's docstring as ``(name, summary, examples)``: its first line is
    ``name: Summary.``, and the examples are the text after ``Examples::``, if any ("" without).

    >>> parse_doc("opensnoop: Trace open() syscalls.\n\nExamples::\n\n    bpfkit opensnoop -T\n")
    ('opensnoop', 'Trace open() syscalls', '    bpfkit opensnoop -T')
    >>> parse_doc(None)
    ('', '', '')
    """
    text = (doc or "").strip()
    first = text.split("\n", 1)[0].strip()
    name, colon, summary = first.partition(":")
    if not colon or " " in name.strip():
        name, summary = "", first
    summary = summary.strip().rstrip(".")
    summary = summary[:1].upper() + summary[1:]
    _, found, examples = text.partition("Examples::")
    return name.strip(), summary, examples.strip("\n").rstrip() if found else ""


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


class StopEvents(Exception):
    """Raised by an :func:`event_loop` callback to end the loop there (trace's ``-M``): the
    records after it are not handled."""


def event_loop(b: Any, on_event: Callable[[Any], Any], *, duration: float | None = None, table: str = "events",
               ready: Callable[[], Any] | None = None, page_cnt: int = 64) -> int:
    """Calls ``on_event(e)`` with each record of ``b[table]`` decoded (``e.pid``, ``e.comm``:
    the record type from the program's BTF), until ``duration`` seconds pass (forever if None),
    Ctrl-C, ``on_event`` raises :class:`StopEvents`, or the reader of stdout goes away
    (``BrokenPipeError``, which the command line's frame ends quietly). ``ready()`` (the
    header, say) runs once the buffer is open.

    The table is the ring buffer of ``TOOL_EVENTS()``, or its perf buffer (``page_cnt`` pages per
    CPU) where the kernel has no ring buffers. Records are handled to the last one. Records lost
    (a full ring buffer refused them: the program's ``dropped``; or the kernel dropped perf
    samples) are reported on stderr while the loop runs, at most once a second, as one line with
    the count of those new since the last report (``WARNING: 12 events lost (ring buffer
    full)``), and once more at the end for those not yet reported; the counts add up to the
    total, which is returned.

    The check costs little: ``dropped`` is read from the program's ``.bss`` where it is mapped in
    memory (a map lookup before 5.5), the perf count is the stream's own counter. A perf buffer's
    losses are known only once the kernel writes its lost record, which it does with the next
    sample that fits on that CPU."""
    events = b[table]
    decode = events.event
    perf = hasattr(events, "open_perf_buffer")
    if perf:
        events.open_perf_buffer(lambda _cpu, data, _size: on_event(decode(data)), page_cnt=page_cnt)
        poll, consume = b.perf_buffer_poll, b.perf_buffer_consume
    else:
        events.open_ring_buffer(lambda _ctx, data, _size: on_event(decode(data)))
        poll, consume = b.ring_buffer_poll, b.ring_buffer_consume
    losses = _Losses((lambda: events.lost) if perf else (lambda: b.get_global("dropped")),
                     "perf" if perf else "ring")
    serving = _exporter
    if serving is not None:  # --prometheus: a scrape reads what on_event has added up so far
        serving.serve()
    if ready is not None:
        ready()
    deadline = None if duration is None else time.monotonic() + duration
    reader_gone = _reader_watch()
    try:
        while deadline is None or time.monotonic() < deadline:
            timeout = 100 if deadline is None else max(1, min(100, int((deadline - time.monotonic()) * 1000)))
            poll(timeout)
            if reader_gone is not None and reader_gone():
                raise BrokenPipeError(errno.EPIPE, "the reader of standard output has gone")
            losses.check()
        consume()
    except StopEvents:
        pass
    except KeyboardInterrupt:
        # What the kernel had already written still counts: drain it (a second Ctrl-C stops that).
        try:
            consume()
        except (KeyboardInterrupt, StopEvents):
            pass
    finally:
        if serving is not None:
            _close_exporter(serving)
    return losses.report()


class _Losses:
    """The losses :func:`event_loop` reports: ``read()`` gives the running total (the ring
    buffer program's ``dropped``, the perf buffer's lost samples); :meth:`check` reports what is
    new at most once a second, :meth:`report` at once, and returns the total."""

    __slots__ = ("read", "kind", "clock", "reported", "next_check")

    #: Seconds between two reads of the total while the loop runs.
    PERIOD = 1.0

    def __init__(self, read: Callable[[], int], kind: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.read, self.kind, self.clock = read, kind, clock
        self.reported = 0
        self.next_check = clock() + self.PERIOD

    def check(self) -> None:
        now = self.clock()
        if now >= self.next_check:
            self.next_check = now + self.PERIOD
            self.report()

    def report(self) -> int:
        total = int(self.read())
        if total > self.reported:
            print(f"WARNING: {total - self.reported} events lost ({self.kind} buffer full)", file=sys.stderr)
            self.reported = total
        return total


def intervals(args: Namespace, *, final: bool = True, gap: bool = False,
              file: Any = None) -> Iterator[float]:
    """The ``[interval] [count]`` loop: sleeps ``args.interval`` seconds and yields the seconds
    actually slept, ``args.count`` times. At Ctrl-C it yields once more (``final=False``: ends
    at once), as BCC's summary tools print what they gathered. Before each yield, in text mode:
    a blank line with ``gap``, then with ``-T`` (``args.timestamp``) the time as ``HH:MM:SS``.

    >>> for _ in intervals(args):
    ...     print_hists(read_hists(args, b["dist"]), args, "usecs")

    With ``--prometheus`` it does not sleep: each scrape of the metrics runs one pass (the tool's
    loop body reads its maps then, so what is served is current), until Ctrl-C, SIGTERM or the
    time the tool would have printed for (``interval * count``) has passed; nothing is printed.
    """
    serving = exporter(args)
    if serving is not None:
        yield from _serve_passes(serving, args.interval * args.count)
        return
    out = file or sys.stdout
    text = not getattr(args, "json", False)
    stamp = text and getattr(args, "timestamp", False)
    left = args.count
    while left > 0:
        left -= 1
        start = time.monotonic()
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            if not final:
                return
            left = 0
        if gap and text:
            out.write("\n")
        if stamp:
            out.write("%-8s\n" % time.strftime("%H:%M:%S"))
        yield time.monotonic() - start


def interval_options(args: Namespace) -> Namespace:
    """BCC's ``-i INTERVAL -d DURATION`` pair as :func:`intervals` takes them (``args.interval``,
    ``args.count``): ``-d`` alone prints once, at its end; ``-i`` alone prints every interval
    until Ctrl-C; both print every interval until the duration has passed (as BCC's loop:
    ``-i 2 -d 5`` prints three times, the last after 6 s)."""
    if args.interval is None:
        args.interval = args.duration or MAX_SECONDS
    args.count = 99999999 if args.duration is None else max(1, -int(-args.duration // args.interval))
    return args


def _title_format(fmt: str) -> str:
    """A column's header format from its row format: the same width and side, as text
    (``%-14.9f`` -> ``%-14s``, ``%4d `` -> ``%4s ``; zero-padded numbers' titles go left).
    Only the first conversion changes (read by hand: ``re`` stays off a tool's start path).

    >>> _title_format("%-14.9f "), _title_format("%04x|%d"), _title_format("100%% %5.1f")
    ('%-14s ', '%-4s|%d', '100%% %5s')
    """
    start = fmt.find("%")
    while start >= 0:
        i = start + 1
        while i < len(fmt) and fmt[i] in "-#0 +":
            i += 1
        j = i
        while j < len(fmt) and fmt[j].isdigit():
            j += 1
        k = j
        if k < len(fmt) and fmt[k] == ".":
            k += 1
            while k < len(fmt) and fmt[k].isdigit():
                k += 1
            if k == j + 1:
                k = j  # a "." without digits is not part of the conversion
        if k < len(fmt) and fmt[k].isascii() and fmt[k].isalpha():
            left = "-" in fmt[start + 1:i] or "0" in fmt[start + 1:i]
            return f"{fmt[:start]}%{'-' if left else ''}{fmt[i:j]}s{fmt[k + 1:]}"
        start = fmt.find("%", start + 1)
    return fmt


class Columns:
    """A tool's output columns: ``(key, title, fmt)`` each, in order; an entry may have a fourth
    element, false to leave the column out (``("uid", "UID", "%-6d", args.print_uid)``).
    :meth:`header` prints the titles (each formatted as wide as its ``fmt``), :meth:`row` one
    row; with ``json=True`` the header is nothing and a row is one JSON object of the columns'
    keys and values (numbers stay numbers), one per line.

    >>> cols = Columns([("pid", "PID", "%-6d "), ("comm", "COMM", "%-16s "), ("path", "PATH", "%s")])
    >>> cols.header(); cols.row(pid=181, comm="cat", path="/etc/hostname")
    PID    COMM             PATH
    181    cat              /etc/hostname
    """

    def __init__(self, spec: Iterable[tuple], *, json: bool = False, file: Any = None) -> None:
        shown = [c for c in spec if len(c) < 4 or c[3]]
        self.keys = [c[0] for c in shown]
        self.titles = [c[1] for c in shown]
        self.json = json
        self.file = file
        self._fmt = "".join(c[2] for c in shown) + "\n"
        self._title_fmt = "".join(_title_format(c[2]) for c in shown) + "\n"
        if json:
            import json as _json

            self._dumps = _json.dumps

    def header(self) -> None:
        """Prints the header line (nothing with ``json``)."""
        if not self.json:
            out = self.file or sys.stdout
            out.write(self._title_fmt % tuple(self.titles))
            out.flush()

    def row(self, **values: Any) -> None:
        """Prints one row from the values by key (keys of columns left out are ignored)."""
        out = self.file or sys.stdout
        if self.json:
            out.write(self._dumps({k: values[k] for k in self.keys}) + "\n")
        else:
            out.write(self._fmt % tuple([values[k] for k in self.keys]))
        out.flush()


def print_json(obj: Any, file: Any = None) -> None:
    """Prints ``obj`` as one line of JSON (``json`` is imported only here, when asked for)."""
    import json

    out = file or sys.stdout
    out.write(json.dumps(obj) + "\n")
    out.flush()


def print_hists(hists: dict, args: Namespace, val_type: str, *, section_header: str = "Bucket ptr",
                section_print_fn: Callable[[Any], str] | None = None, linear: bool = False,
                sectioned: bool | None = None, extra: dict | None = None, file: Any = None,
                metric: str | None = None, top_slot: int | None = None, total: float | None = None) -> None:
    """Prints ``{section: {slot: count}}`` (section None for one histogram) as BCC's
    ``print_log2_hist`` (``print_linear_hist`` with ``linear``) does, or with ``--json`` as one
    line of JSON (:func:`bpfkit.table.hist_json`, with ``extra``'s keys added; ``sectioned``: the
    JSON has sections even when there is no histogram).

    With ``--prometheus`` nothing is printed: the histograms become the metric
    ``bpfkit_<tool>_<metric>`` (``metric``: by default the base unit of ``val_type``, ``seconds``
    for ``usecs``; a section is a label named after ``section_header``), its buckets converted to
    the base unit. ``top_slot``: the slot the program clamps larger values into (counted in
    ``+Inf`` only); ``total``: the exact sum of the values in ``val_type`` units, when the tool
    measures it (a histogram without sections then has an exact ``_sum``; see ``_prom.py``)."""
    serving = exporter(args)
    if serving is not None:
        serving.histogram(metric, hists, val_type, section=section_header, labeller=section_print_fn,
                          linear=linear, top_slot=top_slot, sums=None if total is None else {None: total})
        return
    from bpfkit import _hist

    if getattr(args, "json", False):
        obj = _hist.hist_json(hists, val_type, section_header, section_print_fn, linear=linear, sectioned=sectioned)
        obj.update(extra or {})
        print_json(obj, file)
        return
    if linear:
        _hist.print_linear_hist(hists or {None: {}}, val_type, section_header, section_print_fn, file=file)
    else:
        _hist.print_log2_hist(hists or {None: {}}, val_type, section_header, section_print_fn, file=file)
    (file or sys.stdout).flush()



def read_hists(args: Namespace, dist: Any, section: Callable[[Any], Any] | None = None, *,
               slot: str = "slot") -> dict:
    """An interval's histograms from a map keyed by a section and a slot (``hist.bpf.h``'s
    ``dist``), as :func:`print_hists` takes them: ``{section(key): {slot: count}}`` (``section``
    None: one histogram, under None), the counts of keys alike but for other fields added up;
    ``slot``: the key's field that holds the slot. The map is then cleared (:func:`clear`).

    >>> for _ in intervals(args, gap=True):
    ...     print_hists(read_hists(args, b["dist"], lambda k: k.id if args.pids else None), args, "usecs")
    """
    hists: dict = {}
    for k, v in dist.items():
        h = hists.setdefault(None if section is None else section(k), {})
        i = getattr(k, slot)
        h[i] = h.get(i, 0) + v.value
    clear(args, dist)
    return hists


def read_extension(args: Namespace, table: Any) -> tuple[int, dict | None]:
    """An interval's total, in the histogram's unit, from ``hist.bpf.h``'s one-entry ``EXT_MAP``
    (which is then cleared: :func:`clear`), and with ``-e`` (``args.extension``) BCC's summary
    of it, ``{"avg", "total", "count"}``, for :func:`print_hists`' JSON and
    :func:`print_extension` (None without ``-e``)."""
    ext = table[0]
    total, n = ext.total, ext.count
    clear(args, table)
    return total, {"avg": total / n if n else 0, "total": total, "count": n} if args.extension else None


def print_extension(args: Namespace, summary: dict | None, val_type: str) -> None:
    """BCC's ``-e`` line under a histogram (``avg = 12 usecs, total: 1234 usecs, count: 100``):
    for an interval that counted something, and not with ``--json``, whose object has it."""
    if summary and summary["count"] and not getattr(args, "json", False):
        print("\navg = %ld %s, total: %ld %s, count: %ld\n" % (summary["avg"], val_type, summary["total"], val_type,
                                                              summary["count"]), flush=True)

# -- --prometheus: the kit's side (the exporter itself is _prom.py, imported only when asked for) ----

#: The exporter of the running tool (``Tool.load`` opens it when ``args.prometheus`` is set).
_exporter: Any = None


def exporter(args: Namespace) -> Any:
    """The tool's :class:`_prom.Exporter` when it serves metrics (``--prometheus``), else None: a
    tool's totals go to it (``exporter(args).counter(...)``) instead of being printed.

    >>> serving = exporter(args)
    >>> if serving is not None:
    ...     serving.counter("calls_total", "System calls", ("syscall",), {("read",): 181})
    """
    return _exporter if getattr(args, "prometheus", None) and _exporter is not None else None


def clear(args: Namespace, *maps: Any) -> None:
    """Clears the maps after an interval's read (BCC's per-interval counts), except with
    ``--prometheus``, where they stay cumulative: each scrape reads them whole, so a counter never
    goes down and nothing that happens between a read and a clear is lost."""
    if exporter(args) is None:
        for m in maps:
            m.clear()


def _serve_passes(serving: Any, seconds: float) -> Iterator[float]:
    try:
        yield from serving.passes(None if seconds >= MAX_SECONDS else seconds)
    finally:
        _close_exporter(serving)


def _close_exporter(serving: Any) -> None:
    global _exporter
    serving.close()
    if _exporter is serving:
        _exporter = None


def _open_exporter(tool: Tool, address: tuple[str, int]) -> None:
    global _exporter
    try:
        from . import _prom
    except ImportError:  # run as a script from tools/
        import _prom  # type: ignore[no-redef]

    _exporter = _prom.Exporter(tool.name, tool.summary, address)


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


def tool_parser(tool: str, description: str, doc: str | None, sources: Sequence[str] | None = ()) -> Any:
    """The argparse parser of ``bpfkit <tool>``: the module docstring's examples (after
    ``Examples::``, when it has them) as the epilog, BCC's hidden ``--ebpf`` (print the BPF C of
    ``sources`` and exit; None: the tool generates its C and declares ``--ebpf`` itself), and a
    usage error printed as one line. :meth:`Tool.parser` records a tool's arguments and builds
    this only when the command line needs argparse (``_args``).

    >>> p = tool_parser("opensnoop", "Trace open() syscalls", __doc__)
    """
    from ._argparse import tool_parser as make

    return make(tool, description, doc, sources)


def _positional_interval(p: Any, help: str | None) -> None:
    p.add_argument("interval", nargs="?", type=seconds, default=MAX_SECONDS,
                   help=help or "output interval, in seconds")
    p.add_argument("count", nargs="?", type=count, default=99999999, help="number of outputs")


class Tool:
    """A bundled tool: its ``name`` (the module's), its C (``source``, ``<name>.bpf.c`` beside the
    module), and its docstring's ``summary`` and examples. Made once at the top of the module:
    ``TOOL = Tool(__file__, __doc__)``.

    A tool whose C is generated from its command line (``funccount``: see ``_gen.py``) is made
    with ``generated=True``: it has no ``source``, declares ``--ebpf`` as an ordinary flag (the C
    to print exists only once the arguments are parsed) and gives :meth:`load` its ``text``."""

    def __init__(self, file: str, doc: str | None, *, generated: bool = False) -> None:
        base = os.path.abspath(file)
        base = base[:-3] if base.endswith(".py") else base
        self.name = os.path.basename(base)
        self.source: str | None = None if generated else base + ".bpf.c"
        self.doc = doc
        self.summary = parse_doc(doc)[1]
        self.groups: list = []

    def parser(self, *groups: str, help: dict | None = None) -> Parser:
        """The tool's argument parser with the named standard groups (:data:`GROUPS`) in the order
        given; ``help`` replaces a group's help text (``{"failed": "only show failed opens"}``).
        The tool then adds its own flags (and more groups with :meth:`add_groups`, to keep BCC's
        order in ``-h``) and calls ``parse_args(argv)``. It is argparse's parser as recorded by
        ``_args.Parser``: argparse itself is imported only when the command line needs it."""
        if self.source is None:
            p = Parser(lambda: tool_parser(self.name, self.summary, self.doc, None))
        else:
            sources = (HEADER, self.source)
            p = Parser(lambda: tool_parser(self.name, self.summary, self.doc, sources),
                       special=("--ebpf",), initial={"ebpf": False})
        self.groups = []
        self.add_groups(p, *groups, help=help)
        return p

    def add_groups(self, p: Any, *groups: str, help: dict | None = None) -> None:
        """Adds the named standard groups to ``p`` (see :meth:`parser`)."""
        helps = help or {}
        for g in groups:
            if g not in GROUPS:
                raise ValueError(f"no argument group {g!r}: the groups are {', '.join(GROUPS)}")
            if g == "interval":
                _positional_interval(p, helps.get(g))
            else:
                flags, kwargs = GROUPS[g]
                p.add_argument(*flags, **dict(kwargs, dest=g, **({"help": helps[g]} if g in helps else {})))
            self.groups.append(g)

    def filters(self, args: Namespace) -> dict:
        """The ``const volatile`` values of ``tool.bpf.h`` for the groups the parser has."""
        from bpfkit._bpf import PIN_PATH_PREFIX

        consts: dict = {}
        if "pid" in self.groups:
            consts["targ_tgid"] = args.pid or 0
        if "tid" in self.groups:
            consts["targ_tid"] = args.tid or 0
        if "uid" in self.groups:
            consts["targ_uid"] = args.uid or 0
            consts["filter_uid"] = args.uid is not None
        if "cgroup" in self.groups:
            consts["filter_cg"] = args.cgroup is not None
        for group, (name, _shape) in PINNED_SETS.items():
            if group in self.groups:
                path = getattr(args, group)
                consts[f"filter_{group}"] = path is not None
                # bpfkit.BPF puts the map pinned there in the set's slot (see tool.bpf.h).
                consts[PIN_PATH_PREFIX + name] = os.fsencode(path or "")
        return consts

    def load(self, args: Namespace, *, consts: dict | None = None, uprobes: Uprobes | None = None,
             text: str | None = None, buffer_pages: int | None = None, **kwargs: Any) -> Any:
        """The tool's program, compiled after ``tool.bpf.h`` (from the compile cache after the
        first run), loaded with the groups' filters and ``consts`` set, its ``SEC()``-named hooks
        attached, and ``-c``'s cgroup in place; ``uprobes`` (:class:`Uprobes`) opened while the
        object loads and attached after; ``text``: the C of a generated tool, compiled instead of
        its source file; ``buffer_pages``: the size of the ``events`` ring buffer in pages (a
        power of two; BCC's ``-b``: a perf buffer is sized by :func:`event_loop`'s ``page_cnt``
        instead); ``kwargs`` go to ``BPF()`` (``alternatives=``, ``autoattach=``,
        ``usdt_contexts=``, ``map_sizes=``). Checks the privilege first. Use it as a context manager.

        With ``--prometheus`` it opens the exporter before anything else (prometheus_client
        imported, the port bound, SIGTERM made a Ctrl-C): a missing module or a port in use is
        said at once, and the endpoint answers only once the tool's loop runs, attached."""
        if getattr(args, "prometheus", None):
            _open_exporter(self, args.prometheus)
        try:
            return self._load(args, consts=consts, uprobes=uprobes, text=text, buffer_pages=buffer_pages, **kwargs)
        except BaseException:
            if _exporter is not None:
                _close_exporter(_exporter)
            raise

    def _load(self, args: Namespace, *, consts: dict | None, uprobes: Uprobes | None, text: str | None,
              buffer_pages: int | None, **kwargs: Any) -> Any:
        # The uprobes first: their first registration waits for an RCU grace period, which
        # passes while everything else is done (a refusal below closes them).
        opening = _meanwhile(uprobes.open) if uprobes is not None and uprobes.wanted else None
        imported = None
        try:
            try:
                require_privileges()
                from bpfkit import BPF

                transport = os.environ.get(EVENTS_ENV) or ("ring" if _has_ringbuf() else "perf")
                if transport not in ("ring", "perf"):
                    raise ValueError(f"${EVENTS_ENV} is {transport!r}: it can be ring or perf")
                cflags = list(kwargs.pop("cflags", ())) + (["-DTOOL_PERF_EVENTS"] if transport == "perf" else [])
                cflags += _pinned_set_shapes(self, args)
                if buffer_pages is not None and transport == "ring":  # a ring buffer's size is its max_entries
                    kwargs["map_sizes"] = {**kwargs.get("map_sizes", {}),
                                           "events": buffer_pages * os.sysconf("SC_PAGE_SIZE")}
                if "bpfkit.table" not in sys.modules:
                    imported = _meanwhile(lambda: __import__("bpfkit.table"))
                if text is not None:
                    where: dict = {"text": text, "dialect": "libbpf"}
                elif self.source is not None:
                    where = {"src_file": self.source}
                else:
                    raise ValueError(f"{self.name} generates its C: give load() its text=")
                b = BPF(**where, hdr_file=HEADER, cflags=cflags,
                        consts={**self.filters(args), **(consts or {})}, **kwargs)
            finally:
                if imported is not None:
                    try:
                        imported()
                    except Exception:  # noqa: BLE001, S110 - raised again where the module is imported for use
                        pass
        except BaseException:
            if opening is not None:
                try:
                    _close_opened(opening())
                except Exception:  # noqa: BLE001, S110 - the load's error is the one to report
                    pass
            raise
        try:
            if opening is not None:
                for fn, evs in opening():
                    b.attach_opened_uprobes(fn, evs)
            if "cgroup" in self.groups and args.cgroup is not None:
                _set_cgroup(b, args.cgroup)
        except BaseException:
            b.close()
            raise
        return b


def _meanwhile(job: Callable[[], Any]) -> Callable[[], Any]:
    """Starts ``job()`` in another thread and returns the function that waits for it and gives
    its result (or raises its error). What a tool does while its object loads (mostly kernel and
    libbpf work, done with the GIL released, so on two CPUs the two overlap): import the map
    classes, open its uprobes. The interpreter switches threads every 0.2 ms meanwhile (not 5),
    so that each thread gets the GIL back at once between its native steps. ``_thread``, not
    ``threading``: that one imports functools and collections."""
    import _thread

    done = _thread.allocate_lock()
    done.acquire()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    out: list = [None, None]

    def run() -> None:
        try:
            out[0] = job()
        except BaseException as e:  # noqa: BLE001 - raised again by wait()
            out[1] = e
        finally:
            done.release()

    _thread.start_new_thread(run, ())

    def wait() -> Any:
        with done:
            sys.setswitchinterval(interval)
        if out[1] is not None:
            raise out[1]
        return out[0]

    return wait


class Uprobes:
    """The uprobes a tool attaches, opened while its object loads (``Tool.load(args,
    uprobes=u)``): the kernel registers a uprobe when it is opened, and the first registration
    waits for an RCU grace period (15-18 ms on a small VM), which then passes during the load.
    Each :meth:`add` is one ``attach_uprobe()`` (``attach_uretprobe()`` with ``retprobe``); an
    ``optional`` one that cannot be opened (no such library or symbol) is left out and its error
    kept in :attr:`failed`; any other error ends the load.

    >>> u = Uprobes()
    >>> u.add("lookup_enter", name="c", sym="getaddrinfo")
    >>> with TOOL.load(args, uprobes=u) as b: ...
    """

    def __init__(self) -> None:
        self.wanted: list = []  # (fn_name, attach_uprobe's keywords, optional)
        #: ``(keywords, error)`` of each optional uprobe left out.
        self.failed: list = []

    def add(self, fn_name: str, *, name: str, sym: str = "", sym_re: str = "", addr: int | None = None,
            retprobe: bool = False, pid: int = -1, optional: bool = False) -> None:
        """One uprobe (``attach_uprobe()``'s arguments): ``addr`` is a virtual address as ``nm``
        shows it, as there."""
        kw = dict(name=name, sym=sym, sym_re=sym_re, retprobe=retprobe, pid=pid)
        if addr is not None:
            kw["addr"] = addr
        self.wanted.append((fn_name, kw, optional))

    def open(self) -> list:
        """``[(fn_name, opened uprobes)]``, in the order added (run in another thread while the
        object loads). The first uprobe is opened as soon as its place is known, in a thread of
        its own: its registration waits for the RCU grace period, and the other places are read
        from their binaries meanwhile; after it the rest register at once."""
        from bpfkit._attach_user import open_places, uprobe_places

        self.failed = []
        found: list = []  # (fn_name, keywords, optional, path, pid, places, wait for the first or None)
        first: Callable[[], Any] | None = None  # waits for the first uprobe, opened meanwhile
        out: list = []
        try:
            for fn, kw, optional in self.wanted:
                try:
                    path, pid, places = uprobe_places(**kw)
                except (OSError, ValueError) as e:  # AttachError, NotSupportedError are OSErrors
                    if not optional:
                        raise
                    self.failed.append((kw, e))
                    continue
                if first is None and places:
                    first = _meanwhile(lambda a=(path, pid, places[:1], kw["retprobe"]): open_places(*a))
                    found.append((fn, kw, optional, path, pid, places, first))
                else:
                    found.append((fn, kw, optional, path, pid, places, None))
            for fn, kw, optional, path, pid, places, primed in found:
                try:
                    if primed is None:
                        evs = open_places(path, pid, places, kw["retprobe"])
                    else:
                        first = None  # waited for here, and closed by out on an error after
                        evs = primed()
                        try:
                            evs += open_places(path, pid, places[1:], kw["retprobe"])
                        except BaseException:
                            _close_opened([(fn, evs)])
                            raise
                except (OSError, ValueError) as e:
                    if not optional:
                        raise
                    self.failed.append((kw, e))
                    continue
                out.append((fn, evs))
        except BaseException:
            if first is not None:
                try:
                    _close_opened([("", first())])
                except Exception:  # noqa: BLE001, S110 - the first error is the one to report
                    pass
            _close_opened(out)
            raise
        return out


def _close_opened(opened: list) -> None:
    for _fn, evs in opened:
        for ev in evs:
            ev.close()


def _has_ringbuf() -> bool:
    from bpfkit import _native

    return bool(_native.probe_feature("ringbuf", remembered=True)[0])


#: ``--cgroupmap`` and ``--mntnsmap``: the name of each set in ``tool.bpf.h`` and the value size
#: its template there is compiled with by default (BCC's documented shapes).
PINNED_SETS = {"cgroupmap": ("cgroupset", 8), "mntnsmap": ("mntnsset", 4)}


def _pinned_set_shapes(tool: Tool, args: Namespace) -> list:
    """The cflags that shape ``tool.bpf.h``'s templates after the maps ``--cgroupmap`` and
    ``--mntnsmap`` name, where they differ from the defaults (the kernel takes a map into a slot
    only with the template's value size and flags, and before 5.10 its max_entries). Refuses,
    with a one-line ``MapError``, a path where no BPF map is pinned, or a map that is not a hash
    map with 8-byte keys. Reads the pins only: nothing is created."""
    wanted = [(group, name, value_size, getattr(args, group)) for group, (name, value_size) in PINNED_SETS.items()
              if group in tool.groups and getattr(args, group) is not None]
    if not wanted:
        return []
    from bpfkit import MapError, _native
    from bpfkit.features import kernel_version

    kinds = {num: kind.lower() for num, kind, _since in _native.map_types()}
    old = kernel_version() < (5, 10)
    out: list = []
    for group, name, value_size, path in wanted:
        try:
            m = _native.open_pinned_map(path)
        except MapError as e:
            raise MapError(f"--{group} {path}: no BPF map pinned there ({os.strerror(e.errno or errno.EINVAL)})",
                           e.errno) from None
        if kinds.get(m.map_type) != "hash" or m.key_size != 8:
            raise MapError(f"--{group} {path}: a {kinds.get(m.map_type, m.map_type)} map with {m.key_size}-byte "
                           "keys, not a hash map with 8-byte keys (bpftool map create PATH type hash key 8 value 8 "
                           "entries 128 name NAME)", errno.EINVAL)
        if m.value_size != value_size or m.flags or old:
            macro = f"-DTOOL_{name.upper()}"
            out += [f"{macro}_VALUE={m.value_size}", f"{macro}_FLAGS={m.flags}",
                    f"{macro}_ENTRIES={m.max_entries if old else 1}"]
    return out


def _set_cgroup(b: Any, path: str) -> None:
    """Puts the cgroup directory ``path`` in ``cgroup_map[0]`` for ``tool_traced()``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        b["cgroup_map"][0] = fd
    except OSError as e:
        raise OSError(e.errno, f"-c {path}: not a cgroup v2 directory ({os.strerror(e.errno or errno.EINVAL)})") \
            from None
    finally:
        os.close(fd)


def require_privileges() -> None:
    """Raises ``PrivilegeError`` (root, or CAP_BPF + CAP_PERFMON, is needed) before a tool
    touches the compile cache, so that the missing privilege is the error a user sees rather
    than the cache's (``creating /root/.cache: Permission denied`` under ``sudo -u``)."""
    from bpfkit import _native

    _native.check_privileges()


# -- argument types: each refuses a bad value with argparse's one-line usage error ---------------

def invalid(message: str) -> Exception:
    """The error an argument type raises for a value it refuses: argparse's
    ``ArgumentTypeError``, which it prints as the usage error (argparse is imported only then:
    the fast path hands a refused value to argparse, which asks the type again)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def _int(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise invalid(f"{text!r} is not {what}") from None


def pid(text: str) -> int:
    """A process or thread id: an integer from 1 to the kernel's PID_MAX_LIMIT.

    >>> pid("181")
    181
    """
    what = f"a process id, an integer from 1 to {PID_MAX_LIMIT}"
    n = _int(text, what)
    if not 1 <= n <= PID_MAX_LIMIT:
        raise invalid(f"{text!r} is not {what}")
    return n


def cpu(text: str) -> int:
    """A CPU number of this machine (one ``/sys/devices/system/cpu`` lists).

    >>> cpu("0")
    0
    """
    import os

    n = int(text, 10) if text.isascii() and text.isdigit() else -1
    if n < 0 or not os.path.isdir(f"/sys/devices/system/cpu/cpu{n}"):
        raise invalid(f"{text!r} is not a CPU number of this machine (0 to {(os.cpu_count() or 1) - 1})")
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
            raise invalid(f"{text!r} is not a user id, an integer from 0 to {2**32 - 2}")
        return n
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):
        raise invalid(f"{text!r} is neither a user id nor a known user name") from None


def seconds(text: str) -> float:
    """A duration or interval in seconds: a finite number above 0 and at most ``MAX_SECONDS``.

    >>> seconds("0.5")
    0.5
    """
    what = f"a number of seconds above 0 and at most {MAX_SECONDS:.0f}"
    try:
        s = float(text)
    except ValueError:
        raise invalid(f"{text!r} is not {what}") from None
    if not (math.isfinite(s) and 0 < s <= MAX_SECONDS):
        raise invalid(f"{text!r} is not {what}")
    return s


def count(text: str) -> int:
    """A number of outputs or items: an integer of at least 1.

    >>> count("3")
    3
    """
    n = _int(text, "a count, an integer of at least 1")
    if n < 1:
        raise invalid(f"{text!r} is not a count, an integer of at least 1")
    return n


def cgroup_path(text: str) -> str:
    """A cgroup directory (cgroup v2, as under ``/sys/fs/cgroup``): a directory holding
    ``cgroup.procs``.

    >>> cgroup_path("/sys/fs/cgroup")
    '/sys/fs/cgroup'
    """
    if not os.path.isfile(os.path.join(text, "cgroup.procs")):
        why = "does not exist" if not os.path.exists(text) else "is not a cgroup directory (no cgroup.procs)"
        raise invalid(f"{text!r} {why}")
    return text


def pinned_map(text: str) -> str:
    """The path of a pinned BPF map (``--cgroupmap``, ``--mntnsmap``), which must exist; what is
    pinned there is checked at load, when the tool holds the privilege to open it.

    >>> pinned_map("/sys/fs/bpf/cgset")
    '/sys/fs/bpf/cgset'
    """
    if not os.path.exists(text):
        raise invalid(f"{text!r} does not exist (create the map with bpftool map create {text} type hash "
                      "key 8 value 8 entries 128 name NAME)")
    return text


def listen_address(text: str) -> tuple[str, int]:
    """Where ``--prometheus`` listens, ``[ADDR:]PORT``, as ``(host, port)``, read as ``bpfkit exporter
    --listen`` reads it (:func:`bpfkit.exporter.parse_listen`): a port alone (or ``:PORT``)
    listens on every interface, as exporters do; ``127.0.0.1:PORT`` on this machine only;
    ``[ADDR]:PORT`` on an IPv6 address; port 0 on a free port (the tool prints its URL). ADDR is
    checked here too: an IP address, or a host name's letters, digits, hyphens and dots.

    >>> listen_address("9100"), listen_address("127.0.0.1:9100"), listen_address("[::1]:9100")
    (('', 9100), ('127.0.0.1', 9100), ('::1', 9100))
    """
    import _socket

    from bpfkit.exporter import parse_listen

    try:
        host, port = parse_listen(text)
    except ValueError as e:
        raise invalid(str(e)) from None
    v6 = text.strip().startswith("[")
    if v6 or host.replace(".", "").isdigit():  # an address: the kernel's own parser says
        try:
            _socket.inet_pton(_socket.AF_INET6 if v6 else _socket.AF_INET, host)
        except OSError:
            raise invalid(f"{text!r} is not [ADDR:]PORT: {host!r} is not an IPv{6 if v6 else 4} address") from None
    elif host and not all(part and part.isascii() and part.replace("-", "").isalnum() for part in host.split(".")):
        raise invalid(f"{text!r} is not [ADDR:]PORT: {host!r} is neither an IP address nor a host name")
    return host, port


def regex(text: str) -> re.Pattern[bytes]:
    """A regular expression, compiled to match bytes (the kernel's strings are bytes; a name that
    is not UTF-8 comes back as the bytes it was given).

    >>> regex("ma.n").search(b"domain") is not None
    True
    """
    import re

    try:
        return re.compile(os.fsencode(text))
    except (re.error, OverflowError, RecursionError) as e:  # the last two for huge counts and nesting
        raise invalid(f"{text!r} is not a regular expression: {e}") from None


#: The standard argument groups, by name: BCC's spelling, destination and default help of each.
#: ``interval`` is the positional pair ``[interval] [count]`` (forever by default:
#: ``parser.set_defaults(interval=1)`` for a tool that prints every second).
GROUPS: dict = {
    "pid": (("-p", "--pid"), dict(type=pid, help="trace this PID only")),
    "tid": (("-t", "--tid"), dict(type=pid, help="trace this TID only")),
    "uid": (("-u", "--uid"), dict(type=uid, help="trace this UID (or user name) only")),
    "cgroup": (("-c", "--cgroup"), dict(type=cgroup_path, metavar="PATH",
                                        help="trace tasks in this cgroup (v2 directory) and below it only")),
    "cgroupmap": (("--cgroupmap",), dict(type=pinned_map, metavar="MAPPATH",
                                         help="trace cgroups in this BPF map only")),
    "mntnsmap": (("--mntnsmap",), dict(type=pinned_map, metavar="MAPPATH",
                                       help="trace mount namespaces in this BPF map only")),
    "timestamp": (("-T", "--timestamp"), dict(action="store_true", help="include timestamp on output")),
    "print_uid": (("-U", "--print-uid"), dict(action="store_true", help="print UID column")),
    "failed": (("-x", "--failed"), dict(action="store_true", help="only show failed calls")),
    "duration": (("-d", "--duration"), dict(type=seconds, help="total duration of trace in seconds")),
    "json": (("-j", "--json"), dict(action="store_true", help="print JSON lines instead of text")),
    "interval": None,
    "prometheus": (("--prometheus",), dict(type=listen_address, metavar="[ADDR:]PORT",
                                           help="serve the summaries as Prometheus metrics on "
                                                "http://ADDR:PORT/metrics instead of printing them (every "
                                                "interface unless ADDR is given: 127.0.0.1:PORT for this "
                                                "machine only)")),
}
