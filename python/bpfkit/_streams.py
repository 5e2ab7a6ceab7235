"""Event streams: ring buffers and perf buffers, read record by record through callbacks (as in
BCC) or in batches as numpy structured arrays."""

from __future__ import annotations

import ctypes as ct

from . import _btftypes

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Callable, Optional

__all__ = ["RingBuf", "RingBufTable", "PerfEventArray"]


class _EventTable:
    """Common part of ring buffers and perf buffers: decoding records from BTF, per-record
    callbacks, and batches as numpy structured arrays."""

    #: BCC's name for the per-record callback's registration; set by subclasses.
    _kind = ""

    def __init__(self, bpf: Any, native_map: Any) -> None:
        self.bpf = bpf
        self._m = native_map
        self.name: str = native_map.name
        self.map_type: int = native_map.map_type
        self.max_entries: int = native_map.max_entries
        self._stream: Any = None
        self._callback: Optional[Callable] = None
        self._ctx: Any = None
        self._record: Any = None  # (name, descriptor, ctype)
        self._page_cnt = 64
        self._wakeup_events = 1

    # -- record type -------------------------------------------------------------------------
    def set_record(self, record: Any) -> None:
        """Names the C type of a record: ``"struct event"`` (or ``"event"``), or a ctypes class."""
        if isinstance(record, type):
            self._record = (record.__name__, None, record)
            return
        name = str(record).replace("struct ", "").strip()
        tid = self.bpf._obj.find_struct(name)
        if tid is None:
            raise ValueError(f"no struct {name} in the program's BTF (is it used in the C source?)")
        desc = self.bpf._obj.describe_type(tid)
        self._record = (name, desc, _btftypes.ctype_of(desc))

    def _record_type(self) -> tuple:
        if self._record is None:
            self.set_record(self.bpf._guess_record(self.name))
        return self._record

    @property
    def Event(self) -> Any:
        """The ctypes class of a record."""
        return self._record_type()[2]

    def event(self, data: Any) -> Any:
        """Decodes one record: ``data`` is what a callback received, or the record's bytes
        (``bytes``, ``bytearray``, ``memoryview``, any buffer, or an object with ``__bytes__``).
        Fields are attributes; ``char[]`` fields read as bytes, and ``ev.str("comm")`` gives them
        as text. A record shorter than the type is zero-padded; a longer one is cut.

        An int is not a record: BCC's callbacks received an address, but nothing in bpfkit
        reads memory at an address it is given, so ``event(size)`` or ``event(0)`` raises
        ``TypeError`` instead of crashing the interpreter::

            def show(ctx, data, size):
                e = events.event(data)
                print(e.pid, e.str("comm"))
        """
        if isinstance(data, int) or hasattr(type(data), "__index__"):  # bool and numpy ints too
            raise TypeError(f"event() takes a record (what the callback received, or its bytes), not an int "
                            f"({data!r}): bpfkit never reads memory at an address")
        if hasattr(type(data), "__bytes__"):
            b = bytes(data)
        else:
            try:
                b = memoryview(data).tobytes()
            except TypeError:
                raise TypeError(f"event() takes a record (what the callback received, or its bytes), "
                                f"not {type(data).__name__}") from None
        T = self.Event
        size = ct.sizeof(T)
        return T.from_buffer_copy(b.ljust(size, b"\0")[:size])

    @property
    def dtype(self) -> Any:
        """The numpy dtype of a record (structured; ``char[]`` fields as ``S<n>``), as
        ``read()`` gives records: ``np.zeros(4, dtype=events.dtype)``."""
        _name, desc, T = self._record_type()
        if desc is None:
            import numpy as np

            return np.dtype(T)
        return _btftypes.numpy_dtype_of(desc)

    # -- the stream --------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._stream is None:
            guard = 4096
            try:
                guard = max(guard, ct.sizeof(self.Event))
            except ValueError:
                pass  # no record type known: raw use only
            self._stream = self.bpf._obj.open_stream(self.name, page_cnt=self._page_cnt,
                                                     wakeup_events=self._wakeup_events, guard=guard)
            self.bpf._streams.append(self)
        return self._stream

    def open(self, page_cnt: Optional[int] = None) -> None:
        """Starts collecting records for :meth:`read`: the pump thread starts draining the kernel
        buffer into the queue now (a perf buffer only collects from then on; ``page_cnt`` pages
        per CPU). ``read()`` does this itself when needed."""
        if page_cnt is not None:
            if page_cnt <= 0 or page_cnt & (page_cnt - 1):
                raise ValueError(f"page_cnt must be a power of two, got {page_cnt}")
            if self._stream is not None and page_cnt != self._page_cnt:
                raise ValueError(f"`{self.name}` is already open with page_cnt={self._page_cnt}")
            self._page_cnt = page_cnt
        self._open().start_pump(self.linger)

    def fileno(self) -> int:
        """An fd that is readable when records are waiting (for select/epoll/asyncio)."""
        return self._open().fileno()

    @property
    def lost(self) -> int:
        """Records the kernel dropped because the buffer was full (perf buffers; a ring buffer's
        program sees a failed reserve and counts it itself)."""
        return self._stream.lost if self._stream is not None else 0

    @property
    def received(self) -> int:
        """Records received so far."""
        return self._stream.received if self._stream is not None else 0

    #: After the first record of a batch arrives, how long ``read()`` lingers for more (seconds).
    #: A consumer that returns for every few records keeps the ring empty, so the kernel wakes
    #: it for nearly every record; on a busy producer those wake-ups cost more than the records
    #: (measured here: a tight producer ran 7x slower and lost records). Lingering 1 ms lets
    #: batches build up; set 0 for the lowest latency.
    linger = 0.001

    def read(self, max: int = 4096, timeout: int = -1) -> Any:
        """Up to ``max`` records as a numpy structured array, waiting up to ``timeout`` ms (-1:
        forever, 0: not at all) for the first.

        The first call starts a native thread that keeps draining the kernel buffer into a
        queue, without the GIL and without a Python call per record, so that nothing the Python
        side does (GC pauses, slow processing of a batch) can let the kernel buffer overflow;
        ``read()`` takes from that queue. The thread lingers :attr:`linger` seconds after a small
        batch, so that records accumulate instead of the kernel waking it for each."""
        from ._attach_base import I32, _int

        max = _int(max, "max", 1, 2**31 - 1)
        timeout = _int(timeout, "timeout", -1, I32[1])
        st = self._open()
        if not st.pumped:
            st.start_pump(self.linger)
        dt = self.dtype
        if st.queued < max:
            st.fill(0, max)  # what the kernel buffer holds right now, without waiting for the pump
        if st.queued == 0 and timeout != 0:
            st.wait(timeout)
        n, raw = st.take_packed(max, dt.itemsize)
        return raw.view(dt)[:n] if n else raw[:0].view(dt)

    def batches(self, max: int = 4096, timeout: int = 100) -> Iterator[Any]:
        """Yields non-empty batches (see :meth:`read`) until the object is closed."""
        while not self.bpf.closed:
            batch = self.read(max, timeout)
            if len(batch):
                yield batch

    async def aread(self, max: int = 4096) -> Any:
        """Awaits the next non-empty batch without blocking the event loop."""
        import asyncio

        st = self._open()
        while True:
            batch = self.read(max, 0)
            if len(batch):
                return batch
            loop = asyncio.get_running_loop()
            ready = loop.create_future()
            fd = st.fileno()
            loop.add_reader(fd, lambda ready=ready: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def __aiter__(self) -> Any:
        return self._agen()

    async def _agen(self) -> Any:
        while not self.bpf.closed:
            yield await self.aread()

    def _start_callbacks(self, callback: Callable, ctx: Any, pump: bool) -> None:
        self._callback, self._ctx = callback, ctx
        st = self._open()
        # A native thread drains the kernel buffer; the poll calls run the callbacks from the
        # queue it fills. Slow callbacks then delay delivery instead of losing records. Without
        # it (pump=False), records are read from the kernel only during the poll calls, as in BCC.
        if pump:
            st.start_pump(self.linger)

    def _dispatch(self) -> int:
        if self._callback is None or self._stream is None:
            return 0
        return self._stream.dispatch(self._callback, self._ctx)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} size={self.max_entries}>"


class RingBuf(_EventTable):
    """``BPF_MAP_TYPE_RINGBUF`` (kernel 5.8+). ``open_ring_buffer(cb)`` then
    ``b.ring_buffer_poll()``: ``cb(ctx, data, size)`` as in BCC, ``table.event(data)`` decodes
    ``data`` with the record type from the program's BTF. Or ``read()`` batches as numpy."""

    _kind = "ring"

    def open_ring_buffer(self, callback: Callable[[Any, Any, int], Any], ctx: Any = None,
                         record: Any = None, pump: bool = True) -> None:
        """Calls ``callback(ctx, data, size)`` for each record from ``b.ring_buffer_poll()``;
        ``data`` is the record (``event(data)`` decodes it, ``bytes(data)`` is its bytes).
        ``pump=False`` reads the kernel buffer only inside the poll calls (BCC's behaviour)."""
        if record is not None:
            self.set_record(record)
        self._start_callbacks(callback, ctx, pump)


RingBufTable = RingBuf


class PerfEventArray(_EventTable):
    """``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` (kernel 4.3+) read as a perf buffer (one ring per CPU).
    ``open_perf_buffer(cb, page_cnt=, lost_cb=)`` then ``b.perf_buffer_poll()``; ``cb(cpu, data,
    size)`` as in BCC. Dropped samples reach ``lost_cb(count)`` and the running total ``lost``."""

    _kind = "perf"

    def __init__(self, bpf: Any, native_map: Any) -> None:
        super().__init__(bpf, native_map)
        self._lost_cb: Optional[Callable[[int], Any]] = None
        self._lost_seen = 0
        self._page_cnt = 8

    def open_perf_buffer(self, callback: Callable[[int, Any, int], Any], page_cnt: int = 8,
                         lost_cb: Optional[Callable[[int], Any]] = None, wakeup_events: int = 1,
                         record: Any = None, pump: bool = True) -> None:
        """Calls ``callback(cpu, data, size)`` per sample from ``b.perf_buffer_poll()``; ``data``
        is the sample (``event(data)`` decodes it, ``bytes(data)`` is its bytes).
        ``wakeup_events``: the kernel wakes the reader every that many samples per CPU (fewer
        wake-ups cost the producing CPU less; the pump still reads at least every 100 ms).
        ``pump=False`` reads the kernel buffers only inside the poll calls (BCC's behaviour)."""
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise ValueError(f"page_cnt must be a power of two, got {page_cnt}")
        if record is not None:
            self.set_record(record)
        self._page_cnt = page_cnt
        self._wakeup_events = max(1, int(wakeup_events))
        self._lost_cb = lost_cb
        self._start_callbacks(callback, None, pump)

    def _dispatch(self) -> int:
        n = super()._dispatch()
        if self._stream is not None and self._lost_cb is not None:
            lost = self._stream.lost
            if lost > self._lost_seen:
                delta, self._lost_seen = lost - self._lost_seen, lost
                self._lost_cb(delta)
        return n
