//! Event streams: ring buffers (`BPF_MAP_TYPE_RINGBUF`, 5.8+) and perf buffers
//! (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`, 4.3+), read in bulk.
//!
//! libbpf's callbacks run with the GIL released and only copy each record into a Rust queue
//! (8-byte aligned, so a record can be viewed in place as its C struct). The bindings then drain
//! the queue with the GIL held: either into a Python callback per record, or packed into one
//! numpy array for a whole batch.
//!
//! The queue is a list of chunks of about [`CHUNK_BYTES`]: producers append to the last chunk,
//! a consumer takes the first whole and, if it stops early (a deadline, an exception), puts the
//! rest back in front, so taking and giving back cost O(1) whatever the backlog.
//!
//! The queue is bounded in bytes (settable per stream; by default [`DEFAULT_MAX_QUEUED_BYTES`],
//! or for a perf buffer four times what its rings hold if that is more); a record costs its
//! length rounded up to 8 plus [`RECORD_OVERHEAD`]. At the bound the stream stops
//! reading the kernel buffer, so records wait there, and what the kernel cannot hold is counted
//! as lost where the kernel counts it: a perf buffer's lost samples, a ring buffer program's
//! failed reserves. A ring buffer read stops after the record that reaches the bound, so the
//! queue holds at most the bound plus one record. A perf buffer read takes whole per-CPU rings
//! (libbpf cannot stop midway), so it only starts while the queue is empty or has room for
//! twice what the rings hold (bookkeeping can double the size of the smallest samples); the
//! queue then stays within the bound whenever the bound is at least that, as the default is
//! (a smaller bound makes the pump wait for the queue to empty before each read).
//!
//! Closing a stream wakes every thread waiting on it: each wait polls the stream's wake
//! eventfd, which `close()` makes readable for good and which lives as long as the stream
//! itself, so no waiter can be left polling an fd number that was closed and reused.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::error::{Error, Result};
use crate::sys;

/// Which kind of map a stream reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `BPF_MAP_TYPE_RINGBUF`.
    Ring,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    Perf,
}

/// Bytes of bookkeeping a queued record costs besides its own bytes (rounded up to 8).
pub const RECORD_OVERHEAD: usize = std::mem::size_of::<(usize, usize, i32)>();

/// The default bound of a stream's queue, in bytes (64 MiB; for a perf buffer, at least four
/// times what its per-CPU rings hold).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 << 20;

/// Records are appended to a chunk until it holds this many bytes.
pub const CHUNK_BYTES: usize = 64 << 10;

/// What a record of `len` bytes costs in the queue.
pub fn record_cost(len: usize) -> usize {
    len.div_ceil(8) * 8 + RECORD_OVERHEAD
}

/// A block of queued records, taken and given back whole.
#[derive(Default, Clone)]
pub struct Chunk {
    /// Record bytes, each record starting 8-byte aligned; once taken, followed by zeroed guard
    /// bytes, so that a record shorter than its C struct can still be read as one.
    data: Vec<u8>,
    /// `(offset, length, cpu)` per record; cpu is -1 for ring buffers.
    spans: Vec<(usize, usize, i32)>,
    /// Index of the first record not yet handed out.
    head: usize,
    /// Taken once and given back: nothing more is appended to it.
    sealed: bool,
}

impl Chunk {
    /// The records not yet handed out, as `(offset, length, cpu)`.
    pub fn pending(&self) -> &[(usize, usize, i32)] {
        &self.spans[self.head..]
    }

    /// Number of records not yet handed out.
    pub fn len(&self) -> usize {
        self.spans.len() - self.head
    }

    /// Whether every record has been handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of the chunk (records and, once taken, the guard).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Marks the first `n` pending records as handed out.
    pub fn skip(&mut self, n: usize) {
        self.head = (self.head + n).min(self.spans.len());
    }

    fn cost(&self) -> usize {
        self.pending().iter().map(|&(_, len, _)| record_cost(len)).sum()
    }
}

/// Records waiting to be handed over, in chunks.
#[derive(Default)]
pub struct Queue {
    chunks: VecDeque<Chunk>,
    records: usize,
    bytes: usize,
}

impl Queue {
    fn push(&mut self, cpu: i32, rec: &[u8]) {
        let full = self.chunks.back().is_none_or(|c| c.sealed || c.data.len() >= CHUNK_BYTES);
        if full {
            self.chunks.push_back(Chunk { data: Vec::with_capacity(CHUNK_BYTES), ..Chunk::default() });
        }
        if let Some(c) = self.chunks.back_mut() {
            let at = c.data.len().div_ceil(8) * 8;
            c.data.resize(at, 0);
            c.data.extend_from_slice(rec);
            c.spans.push((at, rec.len(), cpu));
            self.records += 1;
            self.bytes += record_cost(rec.len());
        }
    }

    /// Number of records waiting.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes the waiting records cost (see [`record_cost`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn pop_front(&mut self) -> Option<Chunk> {
        let c = self.chunks.pop_front()?;
        self.records -= c.len();
        self.bytes -= c.cost();
        Some(c)
    }

    fn push_front(&mut self, mut c: Chunk) {
        if c.is_empty() {
            return;
        }
        c.sealed = true;
        self.records += c.len();
        self.bytes += c.cost();
        self.chunks.push_front(c);
    }

    fn clear(&mut self) {
        *self = Queue::default();
    }

    /// Up to `max` records, each copied into a slot of `rec_size` bytes (cut or zero-padded).
    fn take_packed(&mut self, max: usize, rec_size: usize) -> (usize, Vec<u8>) {
        let n = self.records.min(max);
        let mut out = vec![0u8; n * rec_size];
        let mut i = 0;
        while i < n {
            let Some(mut c) = self.pop_front() else { break };
            let k = c.len().min(n - i);
            for &(off, len, _) in &c.pending()[..k] {
                let m = len.min(rec_size);
                out[i * rec_size..i * rec_size + m].copy_from_slice(&c.data[off..off + m]);
                i += 1;
            }
            c.skip(k);
            self.push_front(c);
        }
        (i, out)
    }
}

enum Reader {
    Ring(sys::RingBuffer),
    Perf(sys::PerfBuffer),
}

// Lock order: `pump`, then `reader`, then `queue` (libbpf's callbacks take `queue` while `fill`
// holds `reader`). Nothing may take `reader` while holding `queue`.

/// Sentinel a ring callback returns to stop reading once the queue reaches its limit.
const STOP: i32 = -libc::ENOSPC;

/// What libbpf's callbacks share with the stream.
struct Shared {
    queue: Mutex<Queue>,
    /// Records a read may queue at most (set per read).
    limit: AtomicUsize,
    /// The queue's bound in bytes.
    max_bytes: AtomicUsize,
    lost: AtomicU64,
    received: AtomicU64,
}

/// One map's event stream.
pub struct EventStream {
    /// The map's name.
    pub map: String,
    /// Ring or perf.
    pub kind: StreamKind,
    reader: Mutex<Option<Reader>>,
    shared: Arc<Shared>,
    guard: usize,
    /// Bytes the kernel's per-CPU rings of a perf buffer hold (0 for a ring buffer).
    kernel_bytes: usize,
    pump: Mutex<Option<Pump>>,
    arrived: Condvar,
    /// An eventfd the pump signals when records arrive (readable while the queue is not empty),
    /// for select/epoll/asyncio users of a pumped stream.
    /// Closed (taken) by `close()`; readers hold the lock only for a syscall.
    notify_fd: RwLock<Option<OwnedFd>>,
    /// An eventfd that `close()` makes readable for good; every wait polls it too. Kept until
    /// the stream is dropped, so a waiter never polls a closed (and maybe reused) fd number.
    wake_fd: OwnedFd,
    /// Set by close(). Checked instead of the reader lock by waiters, who hold the queue lock:
    /// the pump takes the reader lock first and the queue lock inside it (in the callbacks), so
    /// taking them in the other order would deadlock.
    closed: AtomicBool,
    /// Where a dispatch of records to callbacks stops: `CLOCK_MONOTONIC` seconds, as Python's
    /// `time.monotonic()`. None: no deadline.
    deadline: Mutex<Option<f64>>,
}

/// A native thread that keeps draining the kernel buffer into the queue, so that nothing the
/// Python side does (a GC pause, slow processing) can let the kernel buffer fill up.
struct Pump {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::poisoned("event stream"))
}

fn failure(f: sys::Failure) -> Error {
    Error::map(f)
}

fn eventfd() -> Result<OwnedFd> {
    sys::os::eventfd().map_err(|e| Error::io("creating an eventfd", &e))
}

/// `CLOCK_MONOTONIC` in seconds: the clock of Python's `time.monotonic()`.
pub fn monotonic() -> f64 {
    sys::os::monotonic()
}

impl EventStream {
    /// Opens a stream on ring buffer map `fd`. `guard` zero bytes follow the queued records, so a
    /// record shorter than its C struct can still be read as one.
    pub fn ring(map: &str, fd: i32, guard: usize) -> Result<EventStream> {
        let shared = Self::shared();
        let sh = shared.clone();
        let cb: sys::SampleFn = Box::new(move |rec: &[u8]| {
            let Ok(mut q) = sh.queue.lock() else { return -libc::EFAULT };
            q.push(-1, rec);
            sh.received.fetch_add(1, Ordering::Relaxed);
            if q.len() >= sh.limit.load(Ordering::Relaxed) || q.bytes() >= sh.max_bytes.load(Ordering::Relaxed) {
                STOP
            } else {
                0
            }
        });
        let rb = sys::RingBuffer::new(fd, cb).map_err(failure)?;
        Self::build(map, StreamKind::Ring, Reader::Ring(rb), shared, guard, 0)
    }

    /// Opens a stream on perf event array map `fd` with `page_cnt` pages per CPU, the kernel
    /// waking the reader every `wakeup_events` samples per CPU.
    pub fn perf(map: &str, fd: i32, page_cnt: usize, wakeup_events: u32, guard: usize) -> Result<EventStream> {
        if page_cnt == 0 || !page_cnt.is_power_of_two() {
            return Err(Error::Value(format!("page_cnt must be a power of two, got {page_cnt}")));
        }
        let shared = Self::shared();
        let (sh, sl) = (shared.clone(), shared.clone());
        let sample: sys::CpuSampleFn = Box::new(move |cpu, rec: &[u8]| {
            if let Ok(mut q) = sh.queue.lock() {
                q.push(cpu, rec);
                sh.received.fetch_add(1, Ordering::Relaxed);
            }
        });
        let lost_cb: sys::LostFn = Box::new(move |_cpu, n| {
            sl.lost.fetch_add(n, Ordering::Relaxed);
        });
        let pb = sys::PerfBuffer::new(fd, page_cnt, wakeup_events, sample, lost_cb).map_err(failure)?;
        let page = sys::os::page_size();
        let cpus = sys::num_possible_cpus().unwrap_or(1);
        let kernel_bytes = page_cnt * page * cpus;
        shared.max_bytes.store(DEFAULT_MAX_QUEUED_BYTES.max(4 * kernel_bytes), Ordering::Relaxed);
        Self::build(map, StreamKind::Perf, Reader::Perf(pb), shared, guard, kernel_bytes)
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            limit: AtomicUsize::new(usize::MAX),
            max_bytes: AtomicUsize::new(DEFAULT_MAX_QUEUED_BYTES),
            lost: AtomicU64::new(0),
            received: AtomicU64::new(0),
        })
    }

    fn build(map: &str, kind: StreamKind, reader: Reader, shared: Arc<Shared>, guard: usize, kernel_bytes: usize) -> Result<EventStream> {
        let notify = eventfd()?;
        Ok(EventStream {
            map: map.to_string(),
            kind,
            reader: Mutex::new(Some(reader)),
            shared,
            guard,
            kernel_bytes,
            pump: Mutex::new(None),
            arrived: Condvar::new(),
            notify_fd: RwLock::new(Some(notify)),
            wake_fd: eventfd()?,
            closed: AtomicBool::new(false),
            deadline: Mutex::new(None),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether `close()` has run.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The epoll fd that is readable when records are waiting in the kernel.
    pub fn epoll_fd(&self) -> Result<i32> {
        match lock(&self.reader)?.as_ref() {
            Some(Reader::Ring(r)) => Ok(r.epoll_fd()),
            Some(Reader::Perf(p)) => Ok(p.epoll_fd()),
            None => Err(Error::Closed),
        }
    }

    /// Samples the kernel dropped because a perf ring was full (ring buffers cannot tell: the
    /// program sees the failed reserve and should count it).
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// Records received since the stream opened.
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Bytes the records waiting in the queue cost (see [`record_cost`]).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue.lock().map(|q| q.bytes()).unwrap_or(0)
    }

    /// The queue's bound in bytes.
    pub fn max_queued_bytes(&self) -> usize {
        self.shared.max_bytes.load(Ordering::Relaxed)
    }

    /// Sets the queue's bound in bytes (at least one page).
    pub fn set_max_queued_bytes(&self, n: usize) {
        self.shared.max_bytes.store(n.max(4096), Ordering::Relaxed);
    }

    /// Where a dispatch stops (`CLOCK_MONOTONIC` seconds), if anywhere.
    pub fn deadline(&self) -> Option<f64> {
        self.deadline.lock().map(|d| *d).unwrap_or(None)
    }

    /// Sets where a dispatch stops (`CLOCK_MONOTONIC` seconds); None: nowhere.
    pub fn set_deadline(&self, d: Option<f64>) {
        if let Ok(mut g) = self.deadline.lock() {
            *g = d;
        }
    }

    /// Whether a read may take more from the kernel without the queue passing its bound.
    fn has_room(&self) -> bool {
        let max = self.max_queued_bytes();
        let bytes = self.queued_bytes();
        match self.kind {
            StreamKind::Ring => bytes < max,
            StreamKind::Perf => bytes == 0 || bytes.saturating_add(2 * self.kernel_bytes) <= max,
        }
    }

    /// Reads from the kernel into the queue: waits up to `timeout_ms` (0: no wait, -1: forever)
    /// unless records are available, stopping a ring buffer at `limit` queued records. Does not
    /// read while the queue is at its bound. Returns the number queued, `Err(Closed)` once the
    /// stream is closed (a waiting `fill` returns at once), or `Err(EINTR)` when a signal
    /// interrupted the wait.
    pub fn fill(&self, timeout_ms: i32, limit: usize) -> Result<usize> {
        self.check_open()?;
        if !self.has_room() {
            return Ok(self.queued());
        }
        if timeout_ms != 0 {
            let efd = self.epoll_fd()?;
            let ready = wait_any(&[efd, self.wake_fd.as_raw_fd()], timeout_ms)?;
            self.check_open()?;
            if ready.is_empty() {
                return Ok(self.queued());
            }
        }
        let mut r = lock(&self.reader)?;
        self.shared.limit.store(limit.max(1), Ordering::Relaxed);
        let res = match r.as_mut() {
            Some(Reader::Ring(rb)) => rb.consume(),
            Some(Reader::Perf(pb)) => pb.consume(),
            None => return Err(Error::Closed),
        };
        drop(r);
        match res {
            Ok(_) => {}
            Err(f) if f.errno == -STOP => {}
            Err(f) if f.errno == libc::EINTR => return Err(Error::Os { errno: libc::EINTR, message: "interrupted".into() }),
            Err(f) => return Err(failure(f)),
        }
        Ok(self.queued())
    }

    /// Takes the first chunk of records out of the queue, the guard region appended; None when
    /// nothing is queued. `Err(Closed)` once the stream is closed.
    pub fn take_chunk(&self) -> Result<Option<Chunk>> {
        self.check_open()?;
        let mut q = lock(&self.shared.queue)?;
        let c = q.pop_front();
        if q.is_empty() {
            self.unsignal();
        }
        drop(q);
        Ok(c.map(|mut c| {
            let end = c.data.len();
            c.data.resize(end + self.guard, 0);
            c
        }))
    }

    /// Puts the records of `chunk` not yet handed out back in front of the queue (dropped if
    /// the stream was closed meanwhile).
    pub fn give_back(&self, chunk: Chunk) -> Result<()> {
        if chunk.is_empty() || self.is_closed() {
            return Ok(());
        }
        let mut q = lock(&self.shared.queue)?;
        q.push_front(chunk);
        self.signal();
        Ok(())
    }

    /// Takes up to `max` queued records, each copied into a slot of `rec_size` bytes (cut or
    /// zero-padded): `(count, bytes)`. Later records stay queued.
    pub fn take_packed(&self, max: usize, rec_size: usize) -> Result<(usize, Vec<u8>)> {
        let mut q = lock(&self.shared.queue)?;
        let out = q.take_packed(max, rec_size);
        if q.is_empty() {
            self.unsignal();
        }
        Ok(out)
    }

    /// Starts a native thread that drains the kernel buffer continuously, lingering `linger`
    /// after a small batch so that records accumulate (a consumer that is always caught up
    /// makes the kernel wake it for nearly every record). Idempotent.
    pub fn start_pump(self: &Arc<Self>, linger: Duration) -> Result<()> {
        self.check_open()?;
        let mut p = lock(&self.pump)?;
        if p.is_some() {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (me, st) = (Arc::downgrade(self), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("bpfkit-pump-{}", self.map))
            .spawn(move || {
                while !st.load(Ordering::Acquire) {
                    let Some(s) = me.upgrade() else { break };
                    if !s.has_room() {
                        // The queue is at its bound: records wait in the kernel buffer until
                        // the consumer catches up.
                        drop(s);
                        std::thread::sleep(linger.max(Duration::from_millis(2)));
                        continue;
                    }
                    let before = s.queued();
                    match s.fill(100, usize::MAX) {
                        Ok(n) if n > before => {
                            s.arrived.notify_all();
                            s.signal();
                            let small = n - before < 4096;
                            drop(s);
                            if small && !linger.is_zero() {
                                std::thread::sleep(linger);
                            }
                        }
                        Ok(_) => {
                            // Nothing woke us: read anyway, for perf samples below the
                            // wake-up threshold (wakeup_events > 1), so none waits long.
                            if s.kind == StreamKind::Perf && s.fill(0, usize::MAX).unwrap_or(0) > before {
                                s.arrived.notify_all();
                                s.signal();
                            }
                        }
                        Err(Error::Os { errno, .. }) if errno == libc::EINTR => {}
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| Error::io("starting the event pump thread", &e))?;
        *p = Some(Pump { stop, handle: Some(handle) });
        Ok(())
    }

    fn signal(&self) {
        if let Ok(g) = self.notify_fd.read() {
            if let Some(fd) = g.as_ref() {
                sys::os::eventfd_signal(fd.as_fd());
            }
        }
    }

    /// Resets the eventfd; called with the queue lock held, after the queue was emptied.
    fn unsignal(&self) {
        if let Ok(g) = self.notify_fd.read() {
            if let Some(fd) = g.as_ref() {
                sys::os::eventfd_drain(fd.as_fd());
            }
        }
    }

    /// Clears a stale eventfd signal when nothing is queued (the pump signals after its fill,
    /// so a consumer may already have taken the records the signal announces).
    pub fn rearm(&self) -> Result<usize> {
        let q = lock(&self.shared.queue)?;
        if q.is_empty() {
            self.unsignal();
        }
        Ok(q.len())
    }

    /// The fd to wait on: the eventfd when a pump runs (readable while records are queued),
    /// else the kernel buffer's epoll fd.
    pub fn wait_fd(&self) -> Result<i32> {
        self.check_open()?;
        if self.pumped() {
            if let Some(fd) = self.notify_fd.read().ok().and_then(|g| g.as_ref().map(|fd| fd.as_raw_fd())) {
                return Ok(fd);
            }
        }
        self.epoll_fd()
    }

    /// Whether a pump thread is draining this stream.
    pub fn pumped(&self) -> bool {
        self.pump.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    /// With a pump running: waits up to `timeout_ms` (-1: forever) until a record is queued.
    /// Returns the number queued; `Err(Closed)` once the stream is closed.
    pub fn wait_queued(&self, timeout_ms: i32) -> Result<usize> {
        let deadline = (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let mut q = lock(&self.shared.queue)?;
        while q.is_empty() {
            self.check_open()?;
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => w.min(Duration::from_millis(50)),
                    _ => break,
                },
                None => Duration::from_millis(50),
            };
            q = self.arrived.wait_timeout(q, wait).map_err(|_| Error::poisoned("event stream"))?.0;
            if deadline.is_none() {
                // Return periodically so the caller can check for signals.
                break;
            }
        }
        Ok(q.len())
    }

    /// Wakes every waiter (they return `Err(Closed)`), stops the pump (if any), then stops
    /// reading and frees the kernel-side resources (mmaps, perf fds) and the queue. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        sys::os::eventfd_signal(self.wake_fd.as_fd());
        if let Ok(q) = self.shared.queue.lock() {
            // Under the queue lock, so a waiter between its check and its wait cannot miss it.
            self.arrived.notify_all();
            drop(q);
        }
        let pump = self.pump.lock().ok().and_then(|mut p| p.take());
        if let Some(mut p) = pump {
            p.stop.store(true, Ordering::Release);
            if let Some(h) = p.handle.take() {
                let _ = h.join();
            }
        }
        if let Ok(mut r) = self.reader.lock() {
            r.take();
        }
        if let Ok(mut q) = self.shared.queue.lock() {
            q.clear();
            // Under the queue lock: signal() and unsignal() run under it too.
            if let Ok(mut g) = self.notify_fd.write() {
                g.take(); // closes it
            }
        }
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: forever). Returns the
/// indexes of the ready ones; `Err(EINTR)` on a signal.
pub fn wait_any(fds: &[i32], timeout_ms: i32) -> Result<Vec<usize>> {
    sys::os::poll_readable(fds, timeout_ms).map_err(|e| Error::io("waiting for events", &e))
}

/// Waits until one of `streams` has records (queued by its pump, or in its kernel buffer) or
/// `timeout_ms` passes (-1: forever). Returns the indexes of the ready ones; `Err(Closed)` as
/// soon as one of them is closed (`close()` from another thread wakes this wait), `Err(EINTR)`
/// on a signal.
pub fn wait_streams(streams: &[Arc<EventStream>], timeout_ms: i32) -> Result<Vec<usize>> {
    let mut fds = Vec::with_capacity(streams.len() * 2);
    for s in streams {
        fds.push(s.wait_fd()?);
    }
    fds.extend(streams.iter().map(|s| s.wake_fd.as_raw_fd()));
    let ready = wait_any(&fds, timeout_ms)?;
    for s in streams {
        s.check_open()?;
    }
    Ok(ready.into_iter().filter(|&i| i < streams.len()).collect())
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_aligns_records_and_counts_their_cost() {
        let mut q = Queue::default();
        q.push(-1, b"abc");
        q.push(2, b"defghijkl");
        assert_eq!((q.len(), q.bytes()), (2, 8 + 16 + 2 * RECORD_OVERHEAD));
        let c = q.pop_front().expect("a chunk");
        assert_eq!(c.spans, vec![(0, 3, -1), (8, 9, 2)]);
        assert_eq!(&c.data[8..17], b"defghijkl");
        assert!(q.is_empty() && q.bytes() == 0);
    }

    #[test]
    fn records_fill_chunks_and_a_chunk_given_back_comes_first() {
        let mut q = Queue::default();
        let rec = [7u8; 1000];
        for _ in 0..200 {
            q.push(-1, &rec);
        }
        assert!(q.chunks.len() >= 3, "200 KB of records span several 64 KiB chunks");
        let total = q.bytes();
        let mut c = q.pop_front().expect("a chunk");
        let n = c.len();
        assert_eq!(q.len(), 200 - n);
        c.skip(2);
        q.push_front(c);
        assert_eq!(q.len(), 198);
        assert_eq!(q.bytes(), total - 2 * record_cost(1000));
        // A chunk given back is sealed: new records go to a later chunk, after it.
        q.push(-1, b"new");
        let first = q.pop_front().expect("a chunk");
        assert_eq!(first.len(), n - 2);
        assert!(first.sealed);
    }

    #[test]
    fn packed_takes_cross_chunks_and_keep_the_rest() {
        let mut q = Queue::default();
        for i in 0..300u32 {
            q.push(-1, &[i as u8; 500]);
        }
        let (n, out) = q.take_packed(250, 4);
        assert_eq!(n, 250);
        assert!(out.chunks(4).enumerate().all(|(i, s)| s == [i as u8; 4]));
        assert_eq!(q.len(), 50);
        let (n, out) = q.take_packed(1000, 600);
        assert_eq!(n, 50);
        assert_eq!(&out[..501], &[[250u8; 500].as_slice(), &[0]].concat()[..]);
        assert!(q.is_empty() && q.bytes() == 0);
    }

    #[test]
    fn record_cost_rounds_to_eight() {
        assert_eq!(record_cost(0), RECORD_OVERHEAD);
        assert_eq!(record_cost(1), 8 + RECORD_OVERHEAD);
        assert_eq!(record_cost(64), 64 + RECORD_OVERHEAD);
    }
}
