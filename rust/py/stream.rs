//! `EventStream`: ring and perf buffer records, pumped and read in bulk.

#[allow(unused_imports)]
use super::*;

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

    /// Calls `callback(first, address, size)` for each queued record, where `first` is `ctx` for
    /// a ring buffer and the CPU for a perf buffer, and `address` points at the record (valid
    /// during the call, as BCC's `data`). If the callback raises, the records after it stay queued
    /// and the exception propagates. Returns the number handled.
    #[pyo3(signature = (callback, ctx = None))]
    fn dispatch(&self, py: Python<'_>, callback: Bound<'_, PyAny>, ctx: Option<Bound<'_, PyAny>>) -> PyResult<usize> {
        let q = guarded(|| self.inner.take()).py(py)?;
        let ring = self.inner.kind == StreamKind::Ring;
        let ctx = ctx.unwrap_or_else(|| py.None().into_bound(py));
        let base = q.data.as_ptr() as usize;
        for (i, &(off, len, cpu)) in q.pending().iter().enumerate() {
            let r = if ring { callback.call1((&ctx, base + off, len)) } else { callback.call1((cpu, base + off, len)) };
            if let Err(e) = r {
                let _ = self.inner.requeue_front(&q, i + 1);
                return Err(e);
            }
        }
        Ok(q.len())
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
