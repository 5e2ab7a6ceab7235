//! Kernel feature probes: each asks the running kernel one question by doing the smallest real
//! thing that needs the feature (load a two-instruction program, create a map, make a link that
//! fails only in a way that proves the kernel understood the request) and says why not when not.
//!
//! No probe leaves anything behind: every fd it makes is closed before it returns, and the only
//! probes that attach at all do so to hooks that nothing else uses (`bpf_fentry_test1`, which runs
//! only under BPF_PROG_TEST_RUN) or for the instant before the link's fd is closed.
//! Each feature's record ([`Feature`]: name, first kernel, configuration) lives here, beside its
//! probe; memoisation and the known configuration behind a "no" live in `bpfkit.features`.

use std::path::Path;

use crate::core::error::{Error, Result};
use crate::core::host;
use crate::sys::{self, Failure, ProbeLink};

/// What a probe found: supported, or the errno and a sentence saying why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the kernel has the feature.
    pub supported: bool,
    /// The errno that said no (0 when supported or when no errno applies).
    pub errno: i32,
    /// Why not, in words (empty when supported).
    pub detail: String,
}

impl Outcome {
    fn yes() -> Outcome {
        Outcome { supported: true, errno: 0, detail: String::new() }
    }

    fn no(errno: i32, detail: impl Into<String>) -> Outcome {
        Outcome { supported: false, errno, detail: detail.into() }
    }

    fn from_failure(f: &Failure) -> Outcome {
        Outcome::no(f.errno, f.message())
    }
}

/// A kernel feature: its name, the first mainline kernel that has it, what it is, the kernel
/// configuration it needs, and (through [`probe`]) the smallest real use that proves it. Every
/// refusal for a missing feature ([`Error::NotSupported`]) is built from this record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// The probe's name (`"kprobe_multi"`).
    pub name: &'static str,
    /// The first mainline kernel version with the feature (`"5.18"`).
    pub since: &'static str,
    /// What it is, in words.
    pub description: &'static str,
    /// The kernel configuration options it needs.
    pub config: &'static [&'static str],
}

impl Feature {
    /// The refusal for this feature: `message` says what failed and why.
    pub fn refuse(&self, message: impl Into<String>, program: Option<&str>) -> Error {
        Error::NotSupported {
            feature: self.name.to_string(),
            since: Some(self.since.to_string()),
            message: message.into(),
            program: program.map(str::to_string),
        }
    }
}

macro_rules! features {
    ($($id:ident = $name:literal, $since:literal, $desc:literal, [$($cfg:literal),*];)*) => {
        /// The feature records, one constant each.
        pub mod feature {
            use super::Feature;
            $(
                #[doc = $desc]
                pub const $id: Feature = Feature { name: $name, since: $since, description: $desc, config: &[$($cfg),*] };
            )*
        }
        /// Every feature bpfkit probes.
        pub const FEATURES: &[Feature] = &[$(feature::$id,)*];
        /// Every probe's name, in [`FEATURES`] order.
        pub const NAMES: &[&str] = &[$($name,)*];
    };
}

features! {
    KPROBES = "kprobes", "4.1", "kprobes and kretprobes (BPF_PROG_TYPE_KPROBE on a kprobe PMU or kprobe_events)", ["CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"];
    KPROBE_MULTI = "kprobe_multi", "5.18", "one link attaching a kprobe to many functions (BPF_TRACE_KPROBE_MULTI)", ["CONFIG_FPROBE"];
    UPROBES = "uprobes", "4.1", "uprobes and uretprobes", ["CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS"];
    UPROBE_MULTI = "uprobe_multi", "6.6", "one link attaching a uprobe to many offsets (BPF_TRACE_UPROBE_MULTI)", ["CONFIG_UPROBES"];
    FENTRY = "fentry", "5.5", "fentry programs (BPF trampolines)", ["CONFIG_BPF_JIT", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"];
    FEXIT = "fexit", "5.5", "fexit programs (BPF trampolines)", ["CONFIG_BPF_JIT", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"];
    LSM = "lsm", "5.7", "BPF LSM programs", ["CONFIG_BPF_LSM"];
    TP_BTF = "tp_btf", "5.5", "BTF-typed tracepoints (tp_btf)", ["CONFIG_DEBUG_INFO_BTF"];
    RAW_TP = "raw_tp", "4.17", "raw tracepoints (raw_tp)", [];
    RINGBUF = "ringbuf", "5.8", "BPF ring buffers (BPF_MAP_TYPE_RINGBUF)", [];
    BPF_COOKIE = "bpf_cookie", "5.15", "bpf_get_attach_cookie()", [];
    MMAPABLE_MAPS = "mmapable_maps", "5.5", "mmap()able arrays (BPF_F_MMAPABLE)", [];
    BATCH_OPS = "batch_ops", "5.6", "batched map lookups and deletes", [];
    PERF_LINK = "perf_link", "5.15", "BPF links for perf-event based attachments (BPF_PERF_EVENT)", [];
    TCX = "tcx", "6.6", "tcx links for tc programs", ["CONFIG_NET_XGRESS"];
    XDP_LINK = "xdp_link", "5.9", "BPF links for XDP", [];
    CGROUP_LINK = "cgroup_link", "5.7", "BPF links for cgroup programs", ["CONFIG_CGROUP_BPF"];
    PERF_EVENT_SW = "perf_event_sw", "4.9", "BPF programs on software perf events", ["CONFIG_PERF_EVENTS"];
    PERF_EVENT_HW = "perf_event_hw", "4.9", "BPF programs on hardware perf events (needs a hardware PMU)", ["CONFIG_PERF_EVENTS"];
}

/// The kernel's own BTF (`/sys/kernel/btf/vmlinux`), which CO-RE compiling needs: a
/// prerequisite checked by reading the file, not one of the probed [`FEATURES`].
pub const BTF_VMLINUX: Feature = Feature {
    name: "btf_vmlinux",
    since: "5.4",
    description: "the kernel's BTF in /sys/kernel/btf/vmlinux",
    config: &["CONFIG_DEBUG_INFO_BTF"],
};

/// The feature record called `name`.
pub fn find(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

use crate::sys::types::{AttachType as At, MapType, ProgType, F_MMAPABLE, FUNC_GET_ATTACH_COOKIE, XDP_PASS};

const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_FUNC: u32 = 12;

fn lockdown_note(f: &Failure) -> Outcome {
    match host::lockdown() {
        Some(mode) if f.errno == libc::EPERM && mode != "none" => Outcome::no(
            f.errno,
            format!("{}: the kernel is in lockdown mode ({mode}), which refuses this program type", f.message()),
        ),
        _ => Outcome::from_failure(f),
    }
}

/// A BPF trampoline program (fentry/fexit) on `bpf_fentry_test1`: load, then attach for an
/// instant (that function runs only under BPF_PROG_TEST_RUN).
fn trampoline(attach_type: u32) -> Result<Outcome> {
    let id = match sys::vmlinux_type_id("bpf_fentry_test1", BTF_KIND_FUNC) {
        Ok(id) => id,
        Err(f) => return Ok(Outcome::no(f.errno, format!("{}: no kernel BTF to attach by", f.message()))),
    };
    let fd = match sys::probe_prog_load(ProgType::Tracing.raw(), attach_type, id, 0) {
        Ok(fd) => fd,
        Err(f) => return Ok(lockdown_note(&f)),
    };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    Ok(match sys::probe_link_create(raw, 0, attach_type, &ProbeLink::Plain) {
        Ok(()) => Outcome::yes(),
        Err(f) => Outcome::no(f.errno, format!("{}: the kernel loads trampoline programs but cannot attach them", f.message())),
    })
}

/// [`probe`], remembered for the rest of the boot in the cache (`features/<boot>`), so that a
/// tool choosing among fallback ladders does not load probe programs (and have libbpf parse the
/// kernel's BTF for the BTF-typed ones) at every start. A kernel's features stay as they are
/// while it runs, but for one: lockdown can be raised, never lowered. So a remembered "yes" is a
/// prediction that a load can still refute (the ladders then try the next rung), and anything
/// that must know now (`bpfkit features`) calls [`probe`]. Any trouble with the cache: probe.
pub fn probe_remembered(name: &str) -> Result<Outcome> {
    use crate::core::cache::{sha256_hex, Cache};
    static MEMO: std::sync::Mutex<Option<Vec<(String, Outcome)>>> = std::sync::Mutex::new(None);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let file = crate::core::compile::boot_id().and_then(|b| {
        let cache = Cache::open_default().ok()?;
        let dir = cache.private_dir("features").ok()?;
        Some((cache, dir.join(sha256_hex(format!("{b}|{release}").as_bytes()))))
    });
    let mut memo = MEMO.lock().map_err(|_| Error::poisoned("feature memo"))?;
    if memo.is_none() {
        let text = file.as_ref().and_then(|(c, f)| c.read_file(f).ok().flatten()).unwrap_or_default();
        let parsed = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(4, '\t');
                let (n, ok, e, d) = (f.next()?, f.next()?, f.next()?, f.next().unwrap_or(""));
                Some((n.to_string(), Outcome { supported: ok == "1", errno: e.parse().ok()?, detail: d.to_string() }))
            })
            .collect();
        *memo = Some(parsed);
    }
    let known = memo.get_or_insert_with(Vec::new);
    if let Some((_, o)) = known.iter().find(|(n, _)| n == name) {
        return Ok(o.clone());
    }
    let outcome = probe(name)?;
    known.push((name.to_string(), outcome.clone()));
    if let Some((cache, f)) = &file {
        let text: String = known
            .iter()
            .map(|(n, o)| format!("{n}\t{}\t{}\t{}\n", u8::from(o.supported), o.errno, o.detail.replace(['\t', '\n'], " ")))
            .collect();
        let _ = cache.write_file(f, text.as_bytes());
    }
    Ok(outcome)
}


/// Runs probe `name`.
pub fn probe(name: &str) -> Result<Outcome> {
    host::check_bpf_privileges()?;
    let link_probe = |prog_type: u32, expected: u32, ret: i32, target: i32, attach: u32, how: ProbeLink, yes: &[i32]| {
        let fd = match sys::probe_prog_load(prog_type, expected, 0, ret) {
            Ok(fd) => fd,
            Err(f) => return Outcome::from_failure(&f),
        };
        match sys::probe_link_create(std::os::fd::AsRawFd::as_raw_fd(&fd), target, attach, &how) {
            Ok(()) => Outcome::yes(),
            Err(f) if yes.contains(&f.errno) => Outcome::yes(),
            Err(f) => Outcome::from_failure(&f),
        }
    };
    let bool_probe = |r: std::result::Result<bool, Failure>, what: &str| match r {
        Ok(true) => Outcome::yes(),
        Ok(false) => Outcome::no(libc::EINVAL, format!("the kernel does not know {what}")),
        Err(f) => Outcome::from_failure(&f),
    };
    Ok(match name {
        "kprobes" => match host::kprobes_unavailable() {
            None => Outcome::yes(),
            Some(why) => Outcome::no(libc::ENOENT, why),
        },
        // A multi-kprobe on a name no kernel has: ENOENT/ESRCH once the kernel has looked it
        // up (supported); EOPNOTSUPP without CONFIG_FPROBE; EINVAL before 5.18.
        "kprobe_multi" => link_probe(
            ProgType::Kprobe.raw(),
            At::TraceKprobeMulti.raw(),
            0,
            0,
            At::TraceKprobeMulti.raw(),
            ProbeLink::KprobeMulti(vec!["bpfkit_no_such_function".into()]),
            &[libc::ENOENT, libc::ESRCH],
        ),
        "uprobes" => {
            if Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
                Outcome::yes()
            } else {
                Outcome::no(libc::ENOENT, "no uprobe PMU (/sys/bus/event_source/devices/uprobe): the kernel was built without CONFIG_UPROBES")
            }
        }
        // A multi-uprobe on "/" (not a regular file): EBADF once the kernel has parsed it.
        "uprobe_multi" => link_probe(
            ProgType::Kprobe.raw(),
            At::TraceUprobeMulti.raw(),
            0,
            -1,
            At::TraceUprobeMulti.raw(),
            ProbeLink::UprobeMulti("/".into()),
            &[libc::EBADF],
        ),
        "fentry" => trampoline(At::TraceFentry.raw())?,
        "fexit" => trampoline(At::TraceFexit.raw())?,
        "lsm" => {
            let id = match sys::vmlinux_type_id("bpf_lsm_file_open", BTF_KIND_FUNC) {
                Ok(id) => id,
                Err(f) => return Ok(Outcome::no(f.errno, format!("{}: the kernel has no BPF LSM hooks (CONFIG_BPF_LSM)", f.message()))),
            };
            match sys::probe_prog_load(ProgType::Lsm.raw(), At::LsmMac.raw(), id, 0) {
                Err(f) => lockdown_note(&f),
                Ok(_fd) => match host::active_lsms() {
                    Some(l) if l.iter().any(|x| x == "bpf") => Outcome::yes(),
                    Some(l) => Outcome::no(
                        libc::EOPNOTSUPP,
                        format!("the BPF LSM is built in but not active (lsm={}); boot with lsm=...,bpf", l.join(",")),
                    ),
                    None => Outcome::no(libc::ENOENT, "cannot read the active LSMs from /sys/kernel/security/lsm"),
                },
            }
        }
        "tp_btf" => {
            let id = match sys::vmlinux_type_id("btf_trace_sched_switch", BTF_KIND_TYPEDEF) {
                Ok(id) => id,
                Err(f) => return Ok(Outcome::no(f.errno, format!("{}: no kernel BTF for BTF tracepoints", f.message()))),
            };
            match sys::probe_prog_load(ProgType::Tracing.raw(), At::TraceRawTp.raw(), id, 0) {
                Err(f) => lockdown_note(&f),
                Ok(fd) => match sys::probe_link_create(std::os::fd::AsRawFd::as_raw_fd(&fd), 0, At::TraceRawTp.raw(), &ProbeLink::Plain) {
                    Ok(()) => Outcome::yes(),
                    Err(f) => Outcome::from_failure(&f),
                },
            }
        }
        "raw_tp" => bool_probe(sys::probe_prog_type(ProgType::RawTracepoint.raw()), "BPF_PROG_TYPE_RAW_TRACEPOINT"),
        "ringbuf" => bool_probe(sys::probe_map_type(MapType::Ringbuf.raw()), "BPF_MAP_TYPE_RINGBUF"),
        "bpf_cookie" => bool_probe(sys::probe_helper(ProgType::Kprobe.raw(), FUNC_GET_ATTACH_COOKIE), "bpf_get_attach_cookie()"),
        "mmapable_maps" => match sys::map_create(MapType::Array.raw(), 4, 8, 1, F_MMAPABLE) {
            Ok(_) => Outcome::yes(),
            Err(f) => Outcome::from_failure(&f),
        },
        "batch_ops" => match sys::map_create(MapType::Hash.raw(), 4, 4, 1, 0) {
            Err(f) => Outcome::from_failure(&f),
            Ok(fd) => {
                let (mut cursor, mut keys, mut vals) = ([0u8; 8], [0u8; 4], [0u8; 4]);
                let lookup = sys::map_info_by_fd(std::os::fd::AsFd::as_fd(&fd))
                    .and_then(|info| sys::map_lookup_batch(&info.handle, None, &mut cursor, &mut keys, &mut vals, 1));
                match lookup {
                    Ok(_) => Outcome::yes(),
                    Err(f) => Outcome::from_failure(&f),
                }
            }
        },
        // BPF_LINK_CREATE for a perf event with fd -1: EBADF once the kernel knows the type.
        "perf_link" => link_probe(ProgType::Tracepoint.raw(), At::PerfEvent.raw(), 0, -1, At::PerfEvent.raw(), ProbeLink::Plain, &[libc::EBADF]),
        // A tcx link on interface index 0: ENODEV once the kernel knows tcx (6.6+).
        "tcx" => link_probe(ProgType::SchedCls.raw(), At::TcxIngress.raw(), 0, 0, At::TcxIngress.raw(), ProbeLink::Plain, &[libc::ENODEV]),
        // An XDP link on loopback that passes every packet (XDP_PASS), closed at once (a
        // program already there answers EBUSY).
        "xdp_link" => link_probe(ProgType::Xdp.raw(), 0, XDP_PASS as i32, 1, At::Xdp.raw(), ProbeLink::Plain, &[libc::EBUSY, libc::EEXIST]),
        // A cgroup link with cgroup fd -1: EBADF once the kernel knows cgroup links (5.7+).
        "cgroup_link" => {
            link_probe(ProgType::CgroupSkb.raw(), At::CgroupInetIngress.raw(), 1, -1, At::CgroupInetIngress.raw(), ProbeLink::Plain, &[libc::EBADF])
        }
        "perf_event_sw" | "perf_event_hw" => {
            let hw = name == "perf_event_hw";
            // PERF_COUNT_SW_CPU_CLOCK, PERF_COUNT_HW_CPU_CYCLES: counting, on this thread.
            let spec = sys::PerfEventSpec { ev_type: if hw { 0 } else { 1 }, config: 0, period: 0, freq: false, pid: 0, cpu: -1, group_fd: -1 };
            match sys::perf_event_open(&spec) {
                Ok(_) => Outcome::yes(),
                Err(f) if hw && matches!(f.errno, libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV) => {
                    Outcome::no(f.errno, format!("{}: no hardware PMU (usual in a VM)", f.message()))
                }
                Err(f) => Outcome::from_failure(&f),
            }
        }
        _ => return Err(Error::Value(format!("no feature probe named `{name}` (known: {})", NAMES.join(", ")))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unknown_names_are_refused() {
        let mut n = NAMES.to_vec();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), NAMES.len());
        assert!(FEATURES.iter().all(|f| !f.since.is_empty() && !f.description.is_empty()));
        match probe("warp_drive") {
            Err(Error::Value(m)) => assert!(m.contains("warp_drive")),
            // Without privileges the refusal comes first, and says so.
            Err(Error::Privilege { .. }) => assert!(host::check_bpf_privileges().is_err()),
            other => panic!("{other:?}"),
        }
        let e = feature::KPROBE_MULTI.refuse("no", Some("p"));
        assert!(matches!(e, Error::NotSupported { ref feature, ref since, .. } if feature == "kprobe_multi" && since.as_deref() == Some("5.18")));
    }

    #[test]
    fn every_probe_answers_without_leaving_an_fd() {
        // bpfkit's tests run as root (the Makefile and CI say so): a probe that cannot run is a
        // failure here, not a silent pass.
        host::check_bpf_privileges().expect("the Rust tests run as root");
        // bpf and perf fds only: the test harness's other threads open files meanwhile.
        let fds = || {
            std::fs::read_dir("/proc/self/fd")
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| std::fs::read_link(e.path()).ok())
                        .filter(|t| t.to_string_lossy().starts_with("anon_inode:bpf") || t.to_string_lossy().contains("perf_event"))
                        .count()
                })
                .unwrap_or(0)
        };
        let before = fds();
        for name in NAMES {
            let o = probe(name).unwrap();
            assert_eq!(o.supported, o.detail.is_empty(), "{name}: {o:?}");
        }
        assert_eq!(fds(), before);
    }
}
