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

/// Opens a uprobe (or uretprobe) at file offset `offset` of `path` as a perf event of the
/// kernel's `uprobe` PMU, for `pid` (-1: every process), without a program: the kernel
/// registers the probe now, and [`Program::attach_perf_event`] gives it a program later. A
/// registration can wait for an RCU grace period (`uprobe_register` takes a per-CPU rwsem for
/// writing); opening early lets that wait pass while the object loads.
pub fn uprobe_event_open(path: &str, offset: u64, pid: i32, retprobe: bool) -> Result<std::os::fd::OwnedFd, Failure> {
    let what = || format!("opening a {} at {path}:{offset:#x}", if retprobe { "uretprobe" } else { "uprobe" });
    let read = |file: &str| std::fs::read_to_string(format!("/sys/bus/event_source/devices/uprobe/{file}"));
    let pmu: u32 = read("type")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Failure { errno: libc::ENOENT, context: format!("{}: no uprobe PMU", what()) })?;
    let mut config = 0u64;
    if retprobe {
        // format/retprobe is "config:N": the bit of `config` that makes the probe a return probe.
        let bit: u32 = read("format/retprobe")
            .ok()
            .and_then(|f| f.trim().strip_prefix("config:").and_then(|b| b.parse().ok()))
            .filter(|b| *b < 64)
            .ok_or_else(|| Failure { errno: libc::EOPNOTSUPP, context: format!("{}: the uprobe PMU has no retprobe bit", what()) })?;
        config |= 1 << bit;
    }
    let cpath = cstring(path, "binary path")?;
    let mut attr = lb::perf_event_attr { type_: pmu, size: std::mem::size_of::<lb::perf_event_attr>() as _, config, ..Default::default() };
    // config1 is uprobe_path, config2 probe_offset (the uprobe PMU's format).
    attr.__bindgen_anon_3.config1 = cpath.as_ptr() as u64;
    attr.__bindgen_anon_4.config2 = offset;
    // As libbpf opens it: every process is pid -1 on CPU 0; one process is any CPU.
    let (pid, cpu) = if pid < 0 { (-1, 0) } else { (pid, -1) };
    // SAFETY: attr is fully initialised; cpath outlives the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_perf_event_open, &attr as *const lb::perf_event_attr, pid, cpu, -1, 8 /* PERF_FLAG_FD_CLOEXEC */ as libc::c_ulong)
    };
    if ret < 0 {
        return Err(Failure { errno: last_errno(), context: what() });
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(ret as i32) })
}
