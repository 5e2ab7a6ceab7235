"""``--prometheus [ADDR:]PORT``: a summary tool serves what it would print as Prometheus metrics.

Imported only when the flag is given (``Tool.load``), and it alone imports ``prometheus_client``
(the ``exporter`` extra): without it the tool says so in one line and ends with status 1.

How a tool serves, without a second copy of its logic:

* **Scrape-driven passes.** ``intervals(args)`` does not sleep: each scrape of ``/metrics`` asks
  the tool's main thread for one pass of its own interval loop and is answered when the pass is
  done (:meth:`Exporter.passes`). The maps are read by the code that reads them for printing, at
  scrape time, as exporters do; the map objects are used by one thread only.
* **Cumulative maps.** In this mode the tools do not clear their maps each interval (the kit's
  ``clear(args, ...)``): a pass reads the counts since the start, and its snapshot *replaces* the
  served state. So a counter or histogram never goes down, and nothing is lost between a read and
  a clear. Two tools whose keys carry process ids and ports (biotop, tcptop) would fill their
  maps if never cleared: they clear as before and *add* each pass's counts (``add=True``),
  summed by bounded labels; tcplife, which prints events, adds each session as it closes. (The
  per-process sections some tools offer, ``-P``/``-L``, grow with the processes seen: over a
  long run such a map can reach its ``max_entries``, and the program then drops new keys.)
* **One server, one address syntax for the project.** The endpoint is
  :class:`bpfkit.exporter.MetricsServer` (``bpfkit exporter``'s) and ``[ADDR:]PORT`` reads as
  its ``--listen`` does (a port alone: every interface).
* **What a pass prints becomes metrics.** ``print_hists`` gives its ``{section: {slot: count}}``
  here (:meth:`Exporter.histogram`), so a histogram tool needs no code of its own; a tool's
  totals are one :meth:`Exporter.counter` call in place of its table. A generic adapter of the
  ``-j`` objects was the other route; it was not taken because those objects are already cut for
  reading (syscount's top 10, vfsstat's whole rates per second, hardirqs' truncated microseconds)
  and carry no metric names or units.

Names are ``bpfkit_<tool>_<what>`` with a base unit: ``bpfkit_biolatency_seconds`` (a histogram
whose ``le`` bounds are the log2 slots converted from the tool's usecs, msecs or nsecs),
``bpfkit_bitesize_bytes`` (from Kbytes), counters ending in ``_total``
(``bpfkit_syscount_calls_total{syscall="read"}``). A section of a histogram is a label named
after the section (``disk``, ``pid``, ``comm``...).

Buckets: slot ``s`` of a log2 histogram counts whole-unit values up to ``2**s - 1`` (values below
``2**s`` units before truncation), so its bound is ``le = 2**s`` units; the slot a program clamps
larger values into (``top_slot``) is counted in ``+Inf`` only. The bounds served run from slot 1
to the highest slot used so far, the same for every section, and never shrink. ``_sum`` is exact
where the tool measures it (a total kept beside the histogram; every value of a linear
histogram); otherwise it is estimated, each value counted at the middle of its bucket, and the
metric's help says so.
"""

from __future__ import annotations

import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from typing import Any

#: The base unit a histogram's values are converted to, by the tool's ``val_type``:
#: ``(name, multiplier, divisor)`` (exact for whole values: 1024 / 1e6 is rounded once).
UNITS = {"nsecs": ("seconds", 1, 1e9), "usecs": ("seconds", 1, 1e6), "msecs": ("seconds", 1, 1e3),
         "secs": ("seconds", 1, 1), "bytes": ("bytes", 1, 1), "Kbytes": ("bytes", 1024, 1)}
#: Labels for BCC's section headers that are not names.
LABELS = {"process name": "comm", "bucket ptr": "bucket"}
#: How long a scrape waits for the tool's pass before it is answered with the last state.
PASS_TIMEOUT = 10.0
#: The one line said when prometheus_client is missing.
MISSING = "bpfkit {tool}: --prometheus needs prometheus_client: pip install bpfkit[exporter]"


def label_name(header: str) -> str:
    """A section header as a label name: ``"Process Name"`` -> ``comm``, ``"disk"`` -> ``disk``.

    >>> label_name("Process Name"), label_name("hardirq"), label_name("CPU #")
    ('comm', 'hardirq', 'cpu')
    """
    low = header.strip().lower()
    if low in LABELS:
        return LABELS[low]
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in low).strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name if name and not name[0].isdigit() else f"section_{name}"


def label_value(value: Any) -> str:
    """A section (``bytes`` of a ``char[]``, a number, a string) as a label's text."""
    if isinstance(value, bytes):
        return value.rstrip(b"\0").decode(errors="replace")
    return str(value)


class _Hist:
    """One histogram metric's state: counts by labels and slot, exact sums where known."""

    def __init__(self, help: str, labels: tuple, unit: tuple, linear: bool, top_slot: int | None) -> None:
        self.help, self.labels, self.linear, self.top_slot = help, labels, linear, top_slot
        self.mult, self.div = unit[1], unit[2]
        self.counts: dict = {}  # label values -> {slot: count}
        self.sums: dict = {}  # label values -> exact sum, in the tool's units
        self.bounds: set = set()  # the slots (values, for linear) served as bounds so far

    def to_base(self, v: float) -> float:
        return v * self.mult / self.div


class Metrics:
    """The served state: metric families by name, each replaced (or added to) by a tool's pass, and
    turned into prometheus_client's metric families at each scrape (:meth:`families`). Not
    thread-safe by itself: :class:`Exporter` holds a lock around both sides."""

    def __init__(self, prefix: str, summary: str = "") -> None:
        self.prefix = prefix
        self.summary = summary
        self._counters: dict = {}  # name -> (help, labels, {label values: value})
        self._hists: dict = {}  # name -> _Hist

    def name(self, what: str) -> str:
        name = self.prefix + what
        if not all(c.isascii() and (c.isalnum() or c in "_:") for c in name) or name[0].isdigit():
            raise ValueError(f"{name!r} is not a metric name")
        return name

    def counter(self, what: str, help: str, labels: Sequence[str], values: Mapping[tuple, float], *,
                add: bool = False) -> None:
        """Counter ``<prefix><what>`` (``what`` ends in ``_total``): ``values`` by label values
        (tuples in the order of ``labels``), cumulative since the start (``add``: counts since the
        last call, added)."""
        name = self.name(what)
        old = self._counters.get(name)
        current = dict(old[2]) if add and old is not None else {}
        for key, v in values.items():
            key = tuple(label_value(x) for x in key)
            current[key] = current.get(key, 0) + v if add else v
        if old is not None and not add:
            # A key the maps no longer hold (a full map never drops one; a tool's own filter may)
            # keeps its last value: a counter must not vanish and come back lower.
            for key, v in old[2].items():
                current.setdefault(key, v)
        self._counters[name] = (help, tuple(labels), current)

    def histogram(self, what: str | None, hists: Mapping[Any, Mapping[int, int]], val_type: str, *,
                  section: str = "", labeller: Callable[[Any], str] | None = None, linear: bool = False,
                  top_slot: int | None = None, sums: Mapping[Any, float] | None = None, help: str = "",
                  add: bool = False) -> None:
        """Histogram ``<prefix><what>`` from ``{section: {slot: count}}`` (section None: one
        histogram without labels), the values in ``val_type`` units (:data:`UNITS` converts them;
        another ``val_type`` is served as it is, and then ``what`` is needed). Sections become
        the label :func:`label_name` of ``section``, their values ``labeller(section)`` or the
        section itself. ``sums``: the exact sum of each section's values, in ``val_type`` units,
        where known. Cumulative counts replace the state; with ``add`` they are added to it."""
        unit = UNITS.get(val_type, (val_type, 1, 1))
        name = self.name(what or unit[0])
        sectioned = any(s is not None for s in hists)
        labels = (label_name(section),) if sectioned else ()
        h = self._hists.get(name)
        if h is None or h.labels != labels:
            if not help:
                help = f"{self.summary} ({unit[0]})" if self.summary else name
            h = self._hists[name] = _Hist(help, labels, unit, linear, top_slot)
        counts: dict = {}
        exact: dict = {}
        for s, slots in hists.items():
            key = () if s is None else ((labeller(s) if labeller is not None else label_value(s)),)
            into = counts.setdefault(key, {})
            for slot, n in slots.items():
                into[int(slot)] = into.get(int(slot), 0) + int(n)
            if sums is not None and s in sums:
                exact[key] = exact.get(key, 0) + sums[s]
        for key, slots in counts.items():
            if add:
                had = key in h.counts
                into = h.counts.setdefault(key, {})
                for slot, n in slots.items():
                    into[slot] = into.get(slot, 0) + n
                before = h.sums.get(key) if had else 0
                h.sums[key] = before + exact[key] if before is not None and key in exact else None
            else:
                h.counts[key] = slots
                h.sums[key] = exact.get(key)
        h.bounds.update(slot for slots in counts.values() for slot, n in slots.items()
                        if n and (h.top_slot is None or slot < h.top_slot) and (linear or slot >= 1))

    def families(self) -> list:
        """The state as prometheus_client metric families, for a collector's ``collect()``."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        out: list = []
        for name, (help, labels, values) in sorted(self._counters.items()):
            fam = CounterMetricFamily(name, help, labels=labels)
            for key, v in sorted(values.items()):
                fam.add_metric(key, v)
            out.append(fam)
        for name, h in sorted(self._hists.items()):
            estimated = not h.linear and any(h.sums.get(key) is None for key in h.counts)
            help = h.help + ("; _sum estimated: each value at the middle of its bucket" if estimated else "")
            fam = HistogramMetricFamily(name, help, labels=h.labels)
            for key, slots in sorted(h.counts.items()):
                buckets, total = self._buckets(h, slots)
                fam.add_metric(list(key), buckets, total if h.sums.get(key) is None else h.to_base(h.sums[key]))
            out.append(fam)
        return out

    @staticmethod
    def _buckets(h: _Hist, slots: Mapping[int, int]) -> tuple[list, float]:
        """``([(le, cumulative count), ..., ("+Inf", count)], estimated sum)`` of one histogram."""
        from prometheus_client.utils import floatToGoString

        # The clamped slot holds everything from its lower bound up: counted in +Inf only.
        kept = {s: n for s, n in slots.items() if h.top_slot is None or s < h.top_slot}
        if h.linear:
            bounds = sorted(h.bounds)
            upper = {v: float(v) for v in bounds}
            middle = {v: float(v) for v in slots}  # a linear slot is the value itself: exact
        else:
            bounds = list(range(1, max(h.bounds, default=0) + 1))
            upper = {s: 2.0 ** s for s in bounds}
            # Slot s holds whole values in [2^(s-1), 2^s) (slot 1: 0 and 1), a clamped slot its
            # lower bound and up (where the estimate takes its lower bound).
            middle = {s: (1.0 if s <= 1 else 0.75 * 2.0 ** s) if s in kept else 2.0 ** (s - 1) for s in slots}
        buckets = [(floatToGoString(h.to_base(upper[b])), sum(n for s, n in kept.items() if s <= b)) for b in bounds]
        buckets.append(("+Inf", sum(slots.values())))
        return buckets, h.to_base(sum(middle[s] * n for s, n in slots.items()))


class Exporter:
    """A tool's metrics endpoint: ``http://ADDR:PORT/metrics`` (any path answers), served by
    :class:`bpfkit.exporter.MetricsServer` (prometheus_client's WSGI app: text, or OpenMetrics
    when the scraper asks for it) from a fresh registry whose one collector is this object. Made
    by ``Tool.load`` before the program loads, so that a port in use is said at once; a scrape
    that comes while the tool still loads is answered once its loop runs (or after
    :data:`PASS_TIMEOUT`). SIGTERM becomes a Ctrl-C meanwhile (a quiet end, status 0, the
    program detached by the tool's ``with``)."""

    def __init__(self, tool: str, summary: str, address: tuple[str, int]) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            print(MISSING.format(tool=tool), file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        from bpfkit.exporter import MetricsServer

        self.tool = tool
        self.metrics = Metrics(f"bpfkit_{tool}_", f"{tool}: {summary}" if summary else tool)
        self._lock = threading.Lock()  # the state, between the tool's thread and the scrapes'
        self._cond = threading.Condition()  # passes asked for and done
        self._asked = self._done = 0
        self._ready = threading.Event()  # the tool's loop runs: scrapes are answered
        self._driven = False  # scrapes wait for a pass of the tool's loop (else: state kept live)
        self._closed = False
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        host, port = address
        try:
            self._server = MetricsServer(host, port, registry)
        except OSError as e:  # in use, not this machine's address, a name the resolver does not know
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise _os_error(e.errno, f"--prometheus {where}: {e.strerror or e}") from None
        self._sigterm: Any = None
        if threading.current_thread() is threading.main_thread():
            import signal

            self._sigterm = signal.signal(signal.SIGTERM, _terminate)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``, the port the kernel gave where 0 was asked for."""
        return str(self._server.url)

    # -- the tool's side ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Answers scrapes from now on (the tool is attached); says where, on stdout."""
        if not self._ready.is_set():
            self._ready.set()
            print(f"Serving Prometheus metrics on {self.url}", flush=True)

    def passes(self, seconds: float | None = None) -> Iterator[float]:
        """The interval loop of a tool serving metrics: yields once per scrape (one pass for the
        scrapes waiting together), and the scrape is answered when the tool's loop asks for the
        next pass. Ends after ``seconds`` (None: never) or at Ctrl-C (or SIGTERM), quietly."""
        last = time.monotonic()
        deadline = None if seconds is None else last + seconds
        self._driven = True
        self.serve()
        try:
            while True:
                with self._cond:
                    while self._asked == self._done:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return
                        self._cond.wait(0.5 if left is None else min(left, 0.5))
                    target = self._asked
                now = time.monotonic()
                yield now - last
                last = now
                with self._cond:
                    self._done = target
                    self._cond.notify_all()
        except KeyboardInterrupt:
            return

    def counter(self, what: str, help: str, labels: Sequence[str], values: Mapping[tuple, float], *,
                add: bool = False) -> None:
        """See :meth:`Metrics.counter`."""
        with self._lock:
            self.metrics.counter(what, help, labels, values, add=add)

    def histogram(self, what: str | None, hists: Mapping[Any, Mapping[int, int]], val_type: str,
                  **kwargs: Any) -> None:
        """See :meth:`Metrics.histogram`."""
        with self._lock:
            self.metrics.histogram(what, hists, val_type, **kwargs)

    def close(self) -> None:
        """Stops serving, closes the socket and gives SIGTERM its handler back (idempotent; the
        handler only from the main thread, where signal handlers are set)."""
        if not self._closed:
            self._closed = True
            self._ready.set()
            with self._cond:
                self._cond.notify_all()
            self._server.close()
        if self._sigterm is not None and threading.current_thread() is threading.main_thread():
            import signal

            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    # -- the scrapes' side (prometheus_client's collector interface) --------------------------------

    def describe(self) -> Iterable:
        return ()  # no names up front: the registry then never calls collect() on its own

    def collect(self) -> Iterable:
        self._ready.wait(PASS_TIMEOUT)
        if self._driven and not self._closed:
            with self._cond:
                self._asked += 1
                want = self._asked
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._done >= want or self._closed, timeout=PASS_TIMEOUT)
        with self._lock:
            return self.metrics.families()


def _os_error(number: int | None, message: str) -> OSError:
    """An OSError that prints as ``message`` alone (no ``[Errno N]``) and keeps ``errno``."""
    e = OSError(message)
    e.errno = number
    return e


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM, while serving: ends the tool as Ctrl-C does (quietly, status 0, detached)."""
    raise KeyboardInterrupt
