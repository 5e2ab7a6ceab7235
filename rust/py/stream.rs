//! `EventStream`: ring and perf buffer records, pumped and read in bulk; `Record`, the
//! record a per-record callback receives.

#[allow(unused_imports)]
use super::*;

use std::sync::Mutex;

use crate::core::events::Chunk;

const RELEASED: &str = "this record was only valid during the callback that received it: copy it \
                        there, with bytes(record) or table.event(record)";

/// Where a record lies while it is valid: its chunk (kept alive by the `Arc`), offset, length.
#[derive(Default)]
struct Slot {
    chunk: Option<Arc<Chunk>>,
    off: usize,
    len: usize,
}

/// One record of a ring or perf buffer, as a per-record callback receives it (BCC's `data`):
/// valid only during that call. `bytes(record)` copies it, `len(record)` is its size, and ctypes
/// takes it as a pointer (`ctypes.cast(record, ctypes.POINTER(T)).contents`) through
/// `_as_parameter_`; `table.event(record)` decodes it. Once the callback has returned, each of
/// these raises ValueError: keep `bytes(record)` or the decoded event, not the record.
#[pyclass(module = "bpfkit._native", name = "Record", frozen)]
#[derive(Default)]
pub(crate) struct PyRecord {
    slot: Mutex<Slot>,
}

impl PyRecord {
    fn hold(&self, chunk: &Arc<Chunk>, off: usize, len: usize) {
        if let Ok(mut s) = self.slot.lock() {
            if !s.chunk.as_ref().is_some_and(|c| Arc::ptr_eq(c, chunk)) {
                s.chunk = Some(chunk.clone());
            }
            (s.off, s.len) = (off, len);
        }
    }

    fn release(&self) {
        if let Ok(mut s) = self.slot.lock() {
            s.chunk = None;
        }
    }

    fn with<T>(&self, f: impl FnOnce(&[u8], usize) -> T) -> PyResult<T> {
        let s = self.slot.lock().map_err(|_| PyValueError::new_err("record lock poisoned"))?;
        let c = s.chunk.as_ref().ok_or_else(|| PyValueError::new_err(RELEASED))?;
        let bytes = c.data().get(s.off..s.off + s.len).ok_or_else(|| PyValueError::new_err("record out of its chunk"))?;
        Ok(f(bytes, bytes.as_ptr() as usize))
    }
}

#[pymethods]
impl PyRecord {
    /// A copy of the record's bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|b, _| PyBytes::new(py, b))
    }

    /// The record's size in bytes.
    fn __len__(&self) -> usize {
        self.slot.lock().map(|s| s.len).unwrap_or(0)
    }

    /// The record's address, for ctypes (`ctypes.cast(record, ctypes.POINTER(T))`), while the
    /// record is valid.
    #[getter]
    fn _as_parameter_(&self) -> PyResult<usize> {
        self.with(|_, addr| addr)
    }

    /// Whether the record can still be read (only during the callback that received it).
    #[getter]
    fn valid(&self) -> bool {
        self.slot.lock().map(|s| s.chunk.is_some()).unwrap_or(false)
    }

    fn __repr__(&self) -> String {
        let (len, valid) = self.slot.lock().map(|s| (s.len, s.chunk.is_some())).unwrap_or((0, false));
        format!("<bpfkit Record of {len} bytes{}>", if valid { "" } else { ", released" })
    }
}

/// A dispatch's deadline, read from the clock after the first record and then every record
/// while callbacks are slow (over 10 us each), every 16 while they are fast, so the clock costs
/// a fast callback little and a slow one overshoots by one call.
struct Deadline {
    at: Option<f64>,
    next: usize,
    since: (usize, f64),
}

impl Deadline {
    fn new(at: Option<f64>) -> Deadline {
        Deadline { at, next: 1, since: (0, at.map(|_| events::monotonic()).unwrap_or_default()) }
    }

    /// Whether the deadline has passed, `handled` records in.
    fn passed(&mut self, handled: usize) -> bool {
        let Some(at) = self.at else { return false };
        if handled < self.next {
            return false;
        }
        let now = events::monotonic();
        let per = (now - self.since.1) / (handled - self.since.0).max(1) as f64;
        self.next = handled + if per > 1e-5 { 1 } else { 16 };
        self.since = (handled, now);
        now >= at
    }
}

/// A ring buffer's or perf buffer's records, read in bulk (see `bpfkit.table`).
#[pyclass(module = "bpfkit._native", name = "EventStream", frozen)]
pub(crate) struct PyEventStream {
    pub(crate) inner: Arc<EventStream>,
}

fn interrupted(py: Python<'_>, e: &Error) -> Option<PyResult<usize>> {
    match e {
        Error::Os { errno, .. } if *errno == libc::EINTR => Some(py.check_signals().map(|_| 0)),
        _ => None,
    }
}

#[pymethods]
impl PyEventStream {
    /// The map's name.
    #[getter]
    fn map(&self) -> String {
        self.inner.map.clone()
    }
    /// "ring" or "perf".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            StreamKind::Ring => "ring",
            StreamKind::Perf => "perf",
        }
    }
    /// Samples the kernel dropped (perf buffers).
    #[getter]
    fn lost(&self) -> u64 {
        self.inner.lost()
    }
    /// Records received so far.
    #[getter]
    fn received(&self) -> u64 {
        self.inner.received()
    }
    /// Records waiting to be handed over.
    #[getter]
    fn queued(&self) -> usize {
        self.inner.queued()
    }
    /// An fd that is readable when records are waiting: the kernel buffer's epoll fd, or, once
    /// a pump drains it, an eventfd readable while records are queued.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        guarded(|| self.inner.wait_fd()).py(py)
    }

    /// Reads records from the kernel into the queue, waiting up to `timeout` ms (0: none, -1:
    /// forever) with the GIL released; a ring buffer stops at `limit` queued. Ctrl-C raises
    /// KeyboardInterrupt at once. Returns the number queued.
    #[pyo3(signature = (timeout = 0, limit = usize::MAX))]
    fn fill(&self, py: Python<'_>, timeout: i32, limit: usize) -> PyResult<usize> {
        let inner = self.inner.clone();
        match py.detach(move || guarded(|| inner.fill(timeout, limit))) {
            Ok(n) => Ok(n),
            Err(e) => match interrupted(py, &e) {
                Some(r) => r,
                None => Err(to_pyerr(py, e)),
            },
        }
    }

    /// Calls `callback(first, record, size)` for each queued record, where `first` is `ctx`
    /// for a ring buffer and the CPU for a perf buffer, and `record` is a `Record` valid
    /// during the call (`bytes(record)` copies it; ctypes takes it as a pointer, as BCC's
    /// `data`). Stops once `deadline` passes (after at least one record; see `Deadline`) or
    /// the stream is closed, leaving the rest queued. If the callback raises, the records after
    /// it stay queued and the exception propagates. Returns the number handled.
    #[pyo3(signature = (callback, ctx = None))]
    fn dispatch(&self, py: Python<'_>, callback: Bound<'_, PyAny>, ctx: Option<Bound<'_, PyAny>>) -> PyResult<usize> {
        let inner = &self.inner;
        let ring = inner.kind == StreamKind::Ring;
        let ctx = ctx.unwrap_or_else(|| py.None().into_bound(py));
        let mut clock = Deadline::new(inner.deadline());
        // Only what is queued now: a producer faster than the callback cannot keep us here.
        let budget = inner.queued();
        let mut handled = 0usize;
        let mut rec = Py::new(py, PyRecord::default())?;
        while handled < budget {
            let chunk = match inner.take_chunk() {
                Ok(Some(c)) => Arc::new(c),
                Ok(None) | Err(Error::Closed) => break,
                Err(e) => return Err(to_pyerr(py, e)),
            };
            let mut outcome: PyResult<()> = Ok(());
            let mut next = chunk.len();
            for (i, &(off, len, cpu)) in chunk.pending().iter().enumerate() {
                if handled >= budget || inner.is_closed() || clock.passed(handled) {
                    next = i;
                    break;
                }
                // SAFETY: rec is a live object this function holds a reference to.
                if unsafe { pyo3::ffi::Py_REFCNT(rec.as_ptr()) } > 1 {
                    // The callback kept the record: it stays released, the next one is new.
                    rec.get().release();
                    rec = Py::new(py, PyRecord::default())?;
                }
                rec.get().hold(&chunk, off, len);
                let r = if ring { callback.call1((&ctx, rec.bind(py), len)) } else { callback.call1((cpu, rec.bind(py), len)) };
                handled += 1;
                if let Err(e) = r {
                    outcome = Err(e);
                    next = i + 1;
                    break;
                }
            }
            rec.get().release();
            if next < chunk.len() {
                let mut c = Arc::try_unwrap(chunk).unwrap_or_else(|a| (*a).clone());
                c.skip(next);
                guarded(|| inner.give_back(c)).py(py)?;
                outcome?;
                break;
            }
            outcome?;
        }
        rec.get().release();
        Ok(handled)
    }

    /// Where `dispatch()` stops: a `time.monotonic()` value, or None (the poll calls set it).
    #[getter]
    fn deadline(&self) -> Option<f64> {
        self.inner.deadline()
    }
    #[setter]
    fn set_deadline(&self, d: Option<f64>) {
        self.inner.set_deadline(d);
    }

    /// Bytes the queued records cost: each record's length rounded up to 8, plus
    /// `RECORD_OVERHEAD` bytes of bookkeeping.
    #[getter]
    fn queued_bytes(&self) -> usize {
        self.inner.queued_bytes()
    }

    /// The queue's bound in bytes (unless set: 64 MiB, or four times what a perf buffer's rings
    /// hold if that is more): at it, the stream stops reading the kernel buffer, so records wait
    /// there and what the kernel cannot hold is lost and counted (perf: `lost`; ring: the
    /// program's failed reserves). A ring buffer's queue holds at most the bound plus one record;
    /// a perf buffer's, the bound, as long as it is at least twice what the rings hold.
    #[getter]
    fn max_queued_bytes(&self) -> usize {
        self.inner.max_queued_bytes()
    }
    #[setter]
    fn set_max_queued_bytes(&self, n: usize) {
        self.inner.set_max_queued_bytes(n);
    }

    /// Whether the stream is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Takes up to `max` queued records as one uint8 array of `max`×`rec_size` bytes (each record
    /// cut or zero-padded to `rec_size`): `(count, array)`.
    fn take_packed<'py>(&self, py: Python<'py>, max: usize, rec_size: usize) -> PyResult<(usize, Bound<'py, PyAny>)> {
        let inner = self.inner.clone();
        let (n, v) = py.detach(move || guarded(|| inner.take_packed(max, rec_size))).py(py)?;
        Ok((n, v.into_pyarray(py).into_any()))
    }

    /// Clears a stale readiness of `fileno()` when nothing is queued; returns the number queued.
    fn rearm(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(|| self.inner.rearm()).py(py)
    }

    /// Starts a native thread that drains the kernel buffer continuously (see `read()`),
    /// lingering `linger` seconds after a small batch.
    #[pyo3(signature = (linger = 0.001))]
    fn start_pump(&self, py: Python<'_>, linger: f64) -> PyResult<()> {
        let d = std::time::Duration::from_secs_f64(linger.clamp(0.0, 1.0));
        guarded(|| self.inner.start_pump(d)).py(py)
    }

    /// Whether a pump thread is running.
    #[getter]
    fn pumped(&self) -> bool {
        self.inner.pumped()
    }

    /// With a pump: waits up to `timeout` ms (-1: forever) for a queued record, GIL released.
    /// Ctrl-C raises KeyboardInterrupt at once. Returns the number queued.
    #[pyo3(signature = (timeout = -1))]
    fn wait(&self, py: Python<'_>, timeout: i32) -> PyResult<usize> {
        loop {
            let inner = self.inner.clone();
            let n = py.detach(move || guarded(|| inner.wait_queued(timeout))).py(py)?;
            py.check_signals()?;
            if n > 0 || timeout >= 0 {
                return Ok(n);
            }
        }
    }

    /// Stops reading and releases the kernel-side buffers.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(move || inner.close());
    }
}

/// Waits until one of `streams` has records or `timeout` ms pass (-1: forever), GIL released;
/// returns the indexes of the ready ones. Raises ClosedError as soon as one of them is closed,
/// including by `close()` from another thread while waiting. Ctrl-C raises KeyboardInterrupt
/// at once.
#[pyfunction]
pub(crate) fn wait_streams(py: Python<'_>, streams: Vec<PyRef<'_, PyEventStream>>, timeout: i32) -> PyResult<Vec<usize>> {
    let arcs: Vec<Arc<EventStream>> = streams.iter().map(|s| s.inner.clone()).collect();
    drop(streams);
    match py.detach(move || guarded(|| events::wait_streams(&arcs, timeout))) {
        Ok(v) => Ok(v),
        Err(Error::Os { errno, .. }) if errno == libc::EINTR => {
            py.check_signals()?;
            Ok(Vec::new())
        }
        Err(e) => Err(to_pyerr(py, e)),
    }
}

/// Waits until one of `fds` is readable or `timeout` ms pass, GIL released; returns the ready
/// indexes. Ctrl-C raises KeyboardInterrupt at once.
#[pyfunction]
pub(crate) fn wait_any(py: Python<'_>, fds: Vec<i32>, timeout: i32) -> PyResult<Vec<usize>> {
    match py.detach(move || guarded(|| events::wait_any(&fds, timeout))) {
        Ok(v) => Ok(v),
        Err(Error::Os { errno, .. }) if errno == libc::EINTR => {
            py.check_signals()?;
            Ok(Vec::new())
        }
        Err(e) => Err(to_pyerr(py, e)),
    }
}
