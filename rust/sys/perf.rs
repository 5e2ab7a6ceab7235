//! perf_event_open.

#[allow(unused_imports)]
use super::*;

/// What to open with `perf_event_open(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerfEventSpec {
    /// `PERF_TYPE_*` (0 hardware, 1 software, 2 tracepoint, ...).
    pub ev_type: u32,
    /// Event within the type (`PERF_COUNT_*`, or a tracepoint id).
    pub config: u64,
    /// Sample every `period` events, or `period` times a second when `freq`.
    pub period: u64,
    /// Whether `period` is a frequency.
    pub freq: bool,
    /// Process to count, or -1 for all.
    pub pid: i32,
    /// CPU to count on, or -1 for any (with a pid).
    pub cpu: i32,
    /// Group leader fd, or -1.
    pub group_fd: i32,
}

/// Opens a perf event (close-on-exec).
pub fn perf_event_open(spec: &PerfEventSpec) -> Result<std::os::fd::OwnedFd, Failure> {
    let mut attr = lb::perf_event_attr { type_: spec.ev_type, size: std::mem::size_of::<lb::perf_event_attr>() as _, config: spec.config, ..Default::default() };
    attr.__bindgen_anon_1.sample_period = spec.period;
    if spec.freq {
        attr.set_freq(1);
    }
    // SAFETY: attr is a valid, fully initialised perf_event_attr for the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_perf_event_open, &attr as *const lb::perf_event_attr, spec.pid, spec.cpu, spec.group_fd, 8 /* PERF_FLAG_FD_CLOEXEC */ as libc::c_ulong)
    };
    if ret < 0 {
        let errno = last_errno();
        return Err(Failure {
            errno,
            context: format!(
                "opening perf event type {} config {:#x} (pid {}, cpu {})",
                spec.ev_type, spec.config, spec.pid, spec.cpu
            ),
        });
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(ret as i32) })
}
