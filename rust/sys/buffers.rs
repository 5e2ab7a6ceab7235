//! Ring and perf buffers: libbpf's managers, read by the event pump.

#[allow(unused_imports)]
use super::*;

/// Called with each record; a negative return stops the poll and is returned from it.
pub type SampleFn = Box<dyn FnMut(&[u8]) -> i32 + Send>;

/// A libbpf ring buffer manager over one or more `BPF_MAP_TYPE_RINGBUF` maps.
pub struct RingBuffer {
    ptr: NonNull<lb::ring_buffer>,
    callbacks: Vec<*mut SampleFn>,
}

// SAFETY: the manager is heap data plus an epoll fd and mmaps; callbacks are Send.
unsafe impl Send for RingBuffer {}

unsafe extern "C" fn sample_trampoline(ctx: *mut c_void, data: *mut c_void, size: lb::size_t) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the boxed callback registered with this ring, alive until the ring is
        // freed; data points to `size` readable bytes of the record.
        let cb = unsafe { &mut *ctx.cast::<SampleFn>() };
        let rec = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
        cb(rec)
    }));
    r.unwrap_or(-libc::EFAULT)
}

impl RingBuffer {
    /// A manager reading ring buffer map `fd` into `cb`.
    pub fn new(fd: i32, cb: SampleFn) -> Result<RingBuffer, Failure> {
        install_print_hook();
        let ctx = Box::into_raw(Box::new(cb));
        // SAFETY: ctx is a leaked Box freed in Drop (or below on failure).
        let p = unsafe { lb::ring_buffer__new(fd, Some(sample_trampoline), ctx.cast(), ptr::null()) };
        match check_ptr(p, || "opening a ring buffer".to_string()) {
            Ok(ptr) => Ok(RingBuffer { ptr, callbacks: vec![ctx] }),
            Err(f) => {
                // SAFETY: ctx came from Box::into_raw above and was not kept by libbpf.
                drop(unsafe { Box::from_raw(ctx) });
                Err(f)
            }
        }
    }

    /// Adds another ring buffer map to the same manager.
    pub fn add(&mut self, fd: i32, cb: SampleFn) -> Result<(), Failure> {
        let ctx = Box::into_raw(Box::new(cb));
        // SAFETY: self.ptr is live; ctx is kept until Drop.
        let ret = unsafe { lb::ring_buffer__add(self.ptr.as_ptr(), fd, Some(sample_trampoline), ctx.cast()) };
        match check(ret, || "adding a ring buffer".to_string()) {
            Ok(_) => {
                self.callbacks.push(ctx);
                Ok(())
            }
            Err(f) => {
                // SAFETY: not registered, so not referenced by libbpf.
                drop(unsafe { Box::from_raw(ctx) });
                Err(f)
            }
        }
    }

    /// Waits up to `timeout_ms` (-1: forever) and consumes what is there. Returns the number of
    /// records, or the negative value a callback returned.
    pub fn poll(&mut self, timeout_ms: i32) -> Result<i32, Failure> {
        // SAFETY: self.ptr is live; &mut self prevents concurrent use.
        let ret = unsafe { lb::ring_buffer__poll(self.ptr.as_ptr(), timeout_ms) };
        check(ret, || "polling a ring buffer".to_string())
    }

    /// Consumes whatever is available without waiting.
    pub fn consume(&mut self) -> Result<i32, Failure> {
        // SAFETY: self.ptr is live; &mut self prevents concurrent use.
        let ret = unsafe { lb::ring_buffer__consume(self.ptr.as_ptr()) };
        check(ret, || "consuming a ring buffer".to_string())
    }

    /// The epoll fd that becomes readable when records arrive.
    pub fn epoll_fd(&self) -> i32 {
        // SAFETY: self.ptr is live.
        unsafe { lb::ring_buffer__epoll_fd(self.ptr.as_ptr()) }
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: freeing the manager first, so no callback can run after its box is freed.
        unsafe { lb::ring_buffer__free(self.ptr.as_ptr()) };
        for cb in self.callbacks.drain(..) {
            // SAFETY: each came from Box::into_raw and is freed once.
            drop(unsafe { Box::from_raw(cb) });
        }
    }
}

// ------------------------------------------------------------------------------------------
// Perf buffers

/// Called with (cpu, record) for each sample.
pub type CpuSampleFn = Box<dyn FnMut(i32, &[u8]) + Send>;
/// Called with (cpu, count) when the kernel dropped samples.
pub type LostFn = Box<dyn FnMut(i32, u64) + Send>;

pub(super) struct PerfCtx {
    sample: CpuSampleFn,
    lost: LostFn,
}

/// A libbpf perf buffer over a `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: one ring per CPU.
pub struct PerfBuffer {
    ptr: NonNull<lb::perf_buffer>,
    ctx: *mut PerfCtx,
}

// SAFETY: heap data, perf fds and mmaps; the callbacks are Send.
unsafe impl Send for PerfBuffer {}

unsafe extern "C" fn perf_sample_trampoline(ctx: *mut c_void, cpu: c_int, data: *mut c_void, size: u32) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the PerfCtx registered with this buffer, alive until it is freed; data
        // points to `size` readable bytes.
        let c = unsafe { &mut *ctx.cast::<PerfCtx>() };
        let rec = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
        (c.sample)(cpu, rec);
    }));
}

unsafe extern "C" fn perf_lost_trampoline(ctx: *mut c_void, cpu: c_int, cnt: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as above.
        let c = unsafe { &mut *ctx.cast::<PerfCtx>() };
        (c.lost)(cpu, cnt);
    }));
}

impl PerfBuffer {
    /// Opens per-CPU rings of `page_cnt` pages (a power of two) on perf event array `fd`; the
    /// kernel wakes the reader every `wakeup_events` samples per CPU.
    pub fn new(fd: i32, page_cnt: usize, wakeup_events: u32, sample: CpuSampleFn, lost: LostFn) -> Result<PerfBuffer, Failure> {
        install_print_hook();
        let ctx = Box::into_raw(Box::new(PerfCtx { sample, lost }));
        // SAFETY: all-zero is a valid perf_buffer_opts.
        let mut opts: lb::perf_buffer_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::perf_buffer_opts>() as _;
        opts.sample_period = wakeup_events.max(1);
        // SAFETY: ctx is kept until Drop (or freed below on failure); opts outlives the call.
        let p = unsafe {
            lb::perf_buffer__new(
                fd,
                page_cnt as _,
                Some(perf_sample_trampoline),
                Some(perf_lost_trampoline),
                ctx.cast(),
                &opts,
            )
        };
        match check_ptr(p, || format!("opening a perf buffer of {page_cnt} pages per CPU")) {
            Ok(ptr) => Ok(PerfBuffer { ptr, ctx }),
            Err(f) => {
                // SAFETY: not kept by libbpf on failure.
                drop(unsafe { Box::from_raw(ctx) });
                Err(f)
            }
        }
    }

    /// Waits up to `timeout_ms` and handles what is there; returns the number of rings read.
    pub fn poll(&mut self, timeout_ms: i32) -> Result<i32, Failure> {
        // SAFETY: live; &mut self serialises use.
        let ret = unsafe { lb::perf_buffer__poll(self.ptr.as_ptr(), timeout_ms) };
        check(ret, || "polling a perf buffer".to_string())
    }

    /// Handles everything available without waiting.
    pub fn consume(&mut self) -> Result<i32, Failure> {
        // SAFETY: live; &mut self serialises use.
        let ret = unsafe { lb::perf_buffer__consume(self.ptr.as_ptr()) };
        check(ret, || "consuming a perf buffer".to_string())
    }

    /// The epoll fd that becomes readable when samples arrive.
    pub fn epoll_fd(&self) -> i32 {
        // SAFETY: live.
        unsafe { lb::perf_buffer__epoll_fd(self.ptr.as_ptr()) }
    }
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        // SAFETY: free the buffer first so no callback runs after the context is freed.
        unsafe { lb::perf_buffer__free(self.ptr.as_ptr()) };
        // SAFETY: from Box::into_raw in new(), freed once.
        drop(unsafe { Box::from_raw(self.ctx) });
    }
}

