//! Event streams: ring buffers (`BPF_MAP_TYPE_RINGBUF`, 5.8+) and perf buffers
//! (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`, 4.3+), read in bulk.
//!
//! libbpf's callbacks run with the GIL released and only copy each record into a Rust queue
//! (8-byte aligned, so a record can be viewed in place as its C struct). The bindings then drain
//! the queue with the GIL held once per poll, not once per record: either into a Python callback
//! per record, or packed into one numpy array for a whole batch. A queue has a limit; a ring
//! buffer stops being read at the limit (the rest stays in the kernel's ring), while a perf
//! buffer, which libbpf reads in full, keeps the excess for the next read.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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

/// Records waiting to be handed over: packed bytes and `(offset, len, cpu)` per record.
/// Records before `head` have been taken; taking is O(records taken), never O(queue), so a
/// consumer working through a backlog does not hold the lock the pump needs for long.
#[derive(Default)]
pub struct Queue {
    /// Record bytes, each record starting 8-byte aligned, followed by a zeroed guard region.
    pub data: Vec<u8>,
    /// `(offset, length, cpu)` per record; cpu is -1 for ring buffers.
    pub spans: Vec<(usize, usize, i32)>,
    /// Index of the first record not yet taken.
    pub head: usize,
}

impl Queue {
    fn push(&mut self, cpu: i32, rec: &[u8]) {
        let at = (self.data.len() + 7) & !7;
        self.data.resize(at, 0);
        self.data.extend_from_slice(rec);
        self.spans.push((at, rec.len(), cpu));
    }

    /// Number of records not yet taken.
    pub fn len(&self) -> usize {
        self.spans.len() - self.head
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records not yet taken.
    pub fn pending(&self) -> &[(usize, usize, i32)] {
        &self.spans[self.head..]
    }

    /// Drops taken records: all at once when none is left, else (rarely) by compacting.
    fn advance(&mut self, n: usize) {
        self.head += n;
        if self.head == self.spans.len() {
            self.data.clear();
            self.spans.clear();
            self.head = 0;
        } else if self.head >= 1 << 16 && self.head * 2 >= self.spans.len() {
            let mut nq = Queue::default();
            for &(off, len, cpu) in self.pending() {
                nq.push(cpu, &self.data[off..off + len]);
            }
            *self = nq;
        }
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

/// One map's event stream.
pub struct EventStream {
    /// The map's name.
    pub map: String,
    /// Ring or perf.
    pub kind: StreamKind,
    reader: Mutex<Option<Reader>>,
    queue: Arc<Mutex<Queue>>,
    limit: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    guard: usize,
    pump: Mutex<Option<Pump>>,
    arrived: Condvar,
    /// An eventfd the pump signals when records arrive (readable while the queue is not empty),
    /// for select/epoll/asyncio users of a pumped stream.
    notify_fd: std::sync::atomic::AtomicI32,
    /// Set by close(). Checked instead of the reader lock by waiters, who hold the queue lock:
    /// the pump takes the reader lock first and the queue lock inside it (in the callbacks), so
    /// taking them in the other order would deadlock.
    closed: AtomicBool,
}

/// A native thread that keeps draining the kernel buffer into the queue, so that nothing the
/// Python side does (a GC pause, slow processing) can let the kernel buffer fill up.
struct Pump {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Records the pump keeps at most before it stops draining (the kernel then drops, and says so).
pub const PUMP_MAX_QUEUED: usize = 1 << 22;

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::Value("event stream lock poisoned".into()))
}

fn failure(f: sys::Failure) -> Error {
    Error::Map { errno: f.errno, message: f.message() }
}

impl EventStream {
    /// Opens a stream on ring buffer map `fd`. `guard` zero bytes follow the queued records, so a
    /// record shorter than its C struct can still be read as one.
    pub fn ring(map: &str, fd: i32, guard: usize) -> Result<EventStream> {
        let (queue, limit, received) = Self::shared();
        let (q, lim, rcv) = (queue.clone(), limit.clone(), received.clone());
        let cb: sys::SampleFn = Box::new(move |rec: &[u8]| {
            let Ok(mut q) = q.lock() else { return -libc::EFAULT };
            q.push(-1, rec);
            rcv.fetch_add(1, Ordering::Relaxed);
            if q.len() >= lim.load(Ordering::Relaxed) {
                STOP
            } else {
                0
            }
        });
        let rb = sys::RingBuffer::new(fd, cb).map_err(failure)?;
        Ok(Self::build(map, StreamKind::Ring, Reader::Ring(rb), queue, limit, Arc::new(AtomicU64::new(0)), received, guard))
    }

    /// Opens a stream on perf event array map `fd` with `page_cnt` pages per CPU, the kernel
    /// waking the reader every `wakeup_events` samples per CPU.
    pub fn perf(map: &str, fd: i32, page_cnt: usize, wakeup_events: u32, guard: usize) -> Result<EventStream> {
        if page_cnt == 0 || !page_cnt.is_power_of_two() {
            return Err(Error::Value(format!("page_cnt must be a power of two, got {page_cnt}")));
        }
        let (queue, limit, received) = Self::shared();
        let lost = Arc::new(AtomicU64::new(0));
        let (q, rcv, l) = (queue.clone(), received.clone(), lost.clone());
        let sample: sys::CpuSampleFn = Box::new(move |cpu, rec: &[u8]| {
            if let Ok(mut q) = q.lock() {
                q.push(cpu, rec);
                rcv.fetch_add(1, Ordering::Relaxed);
            }
        });
        let lost_cb: sys::LostFn = Box::new(move |_cpu, n| {
            l.fetch_add(n, Ordering::Relaxed);
        });
        let pb = sys::PerfBuffer::new(fd, page_cnt, wakeup_events, sample, lost_cb).map_err(failure)?;
        Ok(Self::build(map, StreamKind::Perf, Reader::Perf(pb), queue, limit, lost, received, guard))
    }

    #[allow(clippy::type_complexity)]
    fn shared() -> (Arc<Mutex<Queue>>, Arc<AtomicUsize>, Arc<AtomicU64>) {
        (Arc::new(Mutex::new(Queue::default())), Arc::new(AtomicUsize::new(usize::MAX)), Arc::new(AtomicU64::new(0)))
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        map: &str,
        kind: StreamKind,
        reader: Reader,
        queue: Arc<Mutex<Queue>>,
        limit: Arc<AtomicUsize>,
        lost: Arc<AtomicU64>,
        received: Arc<AtomicU64>,
        guard: usize,
    ) -> EventStream {
        EventStream {
            map: map.to_string(),
            kind,
            reader: Mutex::new(Some(reader)),
            queue,
            limit,
            lost,
            received,
            guard,
            pump: Mutex::new(None),
            arrived: Condvar::new(),
            // SAFETY: eventfd has no pointer arguments; -1 on failure is handled by users.
            notify_fd: std::sync::atomic::AtomicI32::new(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) }),
            closed: AtomicBool::new(false),
        }
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
        self.lost.load(Ordering::Relaxed)
    }

    /// Records received since the stream opened.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Reads from the kernel into the queue: waits up to `timeout_ms` (0: no wait, -1: forever)
    /// unless records are available, stopping a ring buffer at `limit` queued records. Returns
    /// the number queued, or `Err(EINTR)` when a signal interrupted the wait.
    pub fn fill(&self, timeout_ms: i32, limit: usize) -> Result<usize> {
        self.limit.store(limit.max(1), Ordering::Relaxed);
        let mut r = lock(&self.reader)?;
        let res = match r.as_mut() {
            Some(Reader::Ring(rb)) => {
                if timeout_ms == 0 {
                    rb.consume()
                } else {
                    rb.poll(timeout_ms)
                }
            }
            Some(Reader::Perf(pb)) => {
                if timeout_ms == 0 {
                    pb.consume()
                } else {
                    pb.poll(timeout_ms)
                }
            }
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

    /// Takes every queued record out (the guard region appended).
    pub fn take(&self) -> Result<Queue> {
        let mut q = lock(&self.queue)?;
        let mut out = std::mem::take(&mut *q);
        self.unsignal();
        drop(q);
        if out.head > 0 {
            let mut nq = Queue::default();
            for &(off, len, cpu) in out.pending() {
                nq.push(cpu, &out.data[off..off + len]);
            }
            out = nq;
        }
        let end = out.data.len();
        out.data.resize(end + self.guard, 0);
        Ok(out)
    }

    /// Takes up to `max` queued records, each copied into a slot of `rec_size` bytes (cut or
    /// zero-padded): `(count, bytes)`. Later records stay queued.
    pub fn take_packed(&self, max: usize, rec_size: usize) -> Result<(usize, Vec<u8>)> {
        let mut q = lock(&self.queue)?;
        let n = q.len().min(max);
        let mut out = vec![0u8; n * rec_size];
        for (i, &(off, len, _)) in q.pending()[..n].iter().enumerate() {
            let m = len.min(rec_size);
            out[i * rec_size..i * rec_size + m].copy_from_slice(&q.data[off..off + m]);
        }
        q.advance(n);
        if q.is_empty() {
            self.unsignal();
        }
        Ok((n, out))
    }

    /// Puts records `from..` of a taken queue back in front of what has been queued since.
    pub fn requeue_front(&self, taken: &Queue, from: usize) -> Result<()> {
        let mut q = lock(&self.queue)?;
        let mut nq = Queue::default();
        for &(off, len, cpu) in &taken.pending()[from.min(taken.len())..] {
            nq.push(cpu, &taken.data[off..off + len]);
        }
        for &(off, len, cpu) in q.pending() {
            nq.push(cpu, &q.data[off..off + len]);
        }
        *q = nq;
        Ok(())
    }

    /// Starts a native thread that drains the kernel buffer continuously, lingering `linger`
    /// after a small batch so that records accumulate (a consumer that is always caught up
    /// makes the kernel wake it for nearly every record). Idempotent.
    pub fn start_pump(self: &Arc<Self>, linger: Duration) -> Result<()> {
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
                    let before = s.queued();
                    if before >= PUMP_MAX_QUEUED {
                        drop(s);
                        std::thread::sleep(linger.max(Duration::from_millis(1)));
                        continue;
                    }
                    match s.fill(100, PUMP_MAX_QUEUED) {
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
                            if s.kind == StreamKind::Perf && s.fill(0, PUMP_MAX_QUEUED).unwrap_or(0) > before {
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
        let fd = self.notify_fd.load(Ordering::Acquire);
        if fd >= 0 {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        }
    }

    /// Resets the eventfd; called with the queue lock held, after the queue was emptied.
    fn unsignal(&self) {
        let fd = self.notify_fd.load(Ordering::Acquire);
        if fd >= 0 {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
            unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        }
    }

    /// Clears a stale eventfd signal when nothing is queued (the pump signals after its fill,
    /// so a consumer may already have taken the records the signal announces).
    pub fn rearm(&self) -> Result<usize> {
        let q = lock(&self.queue)?;
        if q.is_empty() {
            self.unsignal();
        }
        Ok(q.len())
    }

    /// The fd to wait on: the eventfd when a pump runs (readable while records are queued),
    /// else the kernel buffer's epoll fd.
    pub fn wait_fd(&self) -> Result<i32> {
        if self.pumped() {
            let fd = self.notify_fd.load(Ordering::Acquire);
            if fd >= 0 {
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
    /// Returns the number queued.
    pub fn wait_queued(&self, timeout_ms: i32) -> Result<usize> {
        let deadline = (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let mut q = lock(&self.queue)?;
        while q.is_empty() {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => w.min(Duration::from_millis(50)),
                    _ => break,
                },
                None => Duration::from_millis(50),
            };
            q = self.arrived.wait_timeout(q, wait).map_err(|_| Error::Value("event stream lock poisoned".into()))?.0;
            if deadline.is_none() {
                // Return periodically so the caller can check for signals.
                break;
            }
        }
        Ok(q.len())
    }

    /// Stops the pump (if any), then stops reading and frees the kernel-side resources (mmaps,
    /// perf fds). Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
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
        self.arrived.notify_all();
        let fd = self.notify_fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: our own eventfd, closed once (swapped out above).
            unsafe { libc::close(fd) };
        }
    }
}

/// Waits until one of `fds` (epoll fds of streams) is readable or `timeout_ms` passes (-1:
/// forever). Returns the indexes of the ready ones; `Err(EINTR)` on a signal.
pub fn wait_any(fds: &[i32], timeout_ms: i32) -> Result<Vec<usize>> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: pfds is a valid array of pollfd of the given length.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Os { errno: e.raw_os_error().unwrap_or(libc::EIO), message: format!("waiting for events: {e}") });
    }
    Ok(pfds.iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect())
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
    fn queue_takes_from_the_head() {
        let mut q = Queue::default();
        for i in 0..5u8 {
            q.push(-1, &[i; 3]);
        }
        q.advance(2);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pending()[0], (16, 3, -1));
        q.advance(3);
        assert!(q.is_empty() && q.data.is_empty() && q.head == 0);
    }

    #[test]
    fn queue_aligns_records() {
        let mut q = Queue::default();
        q.push(-1, b"abc");
        q.push(2, b"defghijkl");
        assert_eq!(q.spans, vec![(0, 3, -1), (8, 9, 2)]);
        assert_eq!(&q.data[8..17], b"defghijkl");
    }
}
