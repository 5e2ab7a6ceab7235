//! Attachments as typed values.
//!
//! Every attachment bpfkit makes is a [`Link`]: a process-wide unique id, the program, and the
//! [`Hook`] it is attached to, with the hook's own fields (a uprobe's file identity and offsets,
//! an XDP interface index, a perf event's type and CPU). The object that made it owns the kernel
//! link; [`registry`] finds the links of every live object in the process, so a static call
//! such as BCC's `BPF.remove_xdp(dev)` finds the XDP link whichever object made it. A link is
//! detached by its id, never by rebuilding a string that names it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use once_cell::sync::Lazy;

use crate::core::host;
use crate::core::object::BpfObject;
use crate::core::section::AttachKind;
use crate::sys;

/// The file a uprobe is in, by identity: a path can be replaced, a (device, inode) cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    /// The path the probe was given (resolved to an absolute path by the caller).
    pub path: String,
    /// `st_dev` of the file when attached (0 if it could not be read).
    pub dev: u64,
    /// `st_ino` of the file when attached (0 if it could not be read).
    pub ino: u64,
}

impl FileId {
    /// The identity of `path` now.
    pub fn of(path: &str) -> FileId {
        use std::os::unix::fs::MetadataExt;
        let (dev, ino) = std::fs::metadata(path).map_or((0, 0), |m| (m.dev(), m.ino()));
        FileId { path: path.to_string(), dev, ino }
    }

    /// The identity of the file open at `fd`, named by its `/proc/self/fd` link ("anon_inode:bpf-map"
    /// for a map, "net:[4026531840]" for a namespace).
    pub fn of_fd(fd: std::os::fd::BorrowedFd<'_>) -> FileId {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let path = std::fs::read_link(&link).map_or_else(|_| format!("fd {}", fd.as_raw_fd()), |p| p.to_string_lossy().into_owned());
        let (dev, ino) = std::fs::metadata(&link).map_or((0, 0), |m| (m.dev(), m.ino()));
        FileId { path, dev, ino }
    }
}

/// Where an attachment is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hook {
    /// A tracepoint `category:name` (kernel 4.7).
    Tracepoint { category: String, name: String },
    /// A raw tracepoint (4.17).
    RawTracepoint { name: String },
    /// A kprobe or kretprobe on one function (4.1); `maxactive` > 0 when made through tracefs.
    Kprobe { function: String, offset: u64, retprobe: bool, maxactive: u32 },
    /// One multi-kprobe link over `functions` functions matching `pattern` (5.18).
    KprobeMulti { pattern: String, functions: usize, retprobe: bool },
    /// A uprobe or uretprobe (4.1) at file offset `offset` of `file` (`symbol`+offset when libbpf
    /// resolved a symbol), for process `pid` (-1: all). `file_offset` is where it is in the file,
    /// when the caller resolved it.
    Uprobe { file: FileId, symbol: Option<String>, offset: u64, file_offset: Option<u64>, pid: i32, retprobe: bool },
    /// One multi-uprobe link (6.6) at every file offset of `offsets`.
    UprobeMulti { file: FileId, pattern: String, offsets: Vec<u64>, pid: i32, retprobe: bool },
    /// A USDT probe `provider:name` of `file`.
    Usdt { file: FileId, provider: String, name: String, pid: i32 },
    /// A perf event (`PERF_TYPE_*`, config) on one CPU or one process (4.9).
    PerfEvent { ev_type: u32, config: u64, pid: i32, cpu: i32 },
    /// An XDP link on interface `ifindex` (5.9).
    Xdp { ifindex: i32, dev: String, flags: u32 },
    /// A tc program on interface `ifindex`: a tcx link (6.6) or a clsact filter.
    Tc { ifindex: i32, dev: String, ingress: bool, tcx: bool },
    /// A cgroup link (5.7) on the cgroup v2 directory `path`.
    Cgroup { path: String },
    /// An attachment to the kernel object behind a file descriptor (a cgroup, a sockmap, a
    /// network namespace) by attach type, BCC's `attach_func`: a BPF link when `link`, else
    /// `BPF_PROG_ATTACH` (which the kernel keeps past a killed process).
    Fd { target: FileId, attach_type: crate::sys::types::AttachType, link: bool },
    /// A hook libbpf attached from the program's section alone (fentry, fexit, lsm, tp_btf, iter,
    /// multi-kprobes and probes named in the section).
    Section { kind: AttachKind, target: String },
}

impl Hook {
    /// The kind, as `links()` reports it: "tracepoint", "kprobe", "uretprobe", "xdp", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Hook::Tracepoint { .. } => "tracepoint",
            Hook::RawTracepoint { .. } => "raw_tracepoint",
            Hook::Kprobe { retprobe, .. } | Hook::KprobeMulti { retprobe, .. } => {
                if *retprobe {
                    "kretprobe"
                } else {
                    "kprobe"
                }
            }
            Hook::Uprobe { retprobe, .. } | Hook::UprobeMulti { retprobe, .. } => {
                if *retprobe {
                    "uretprobe"
                } else {
                    "uprobe"
                }
            }
            Hook::Usdt { .. } => "usdt",
            Hook::PerfEvent { .. } => "perf_event",
            Hook::Xdp { .. } => "xdp",
            Hook::Tc { .. } => "tc",
            Hook::Cgroup { .. } => "cgroup",
            Hook::Fd { .. } => "attach_func",
            Hook::Section { kind, .. } => kind.name(),
        }
    }

    /// The hook in words, for people: "syscalls:sys_enter_openat", "/usr/lib/libc.so.6:malloc",
    /// "eth0:ingress", "cpu0 1:0x0".
    pub fn target(&self) -> String {
        match self {
            Hook::Tracepoint { category, name } => format!("{category}:{name}"),
            Hook::RawTracepoint { name } => name.clone(),
            // The function alone, offset or not (BCC's detach_kprobe(event=) names it so); the
            // offset is the link's own field.
            Hook::Kprobe { function, .. } => function.clone(),
            Hook::KprobeMulti { pattern, .. } => pattern.clone(),
            Hook::Uprobe { file, symbol: Some(s), offset: 0, .. } => format!("{}:{s}", file.path),
            Hook::Uprobe { file, symbol: Some(s), offset, .. } => format!("{}:{s}+{offset:#x}", file.path),
            Hook::Uprobe { file, symbol: None, offset, .. } => format!("{}:{offset:#x}", file.path),
            Hook::UprobeMulti { file, pattern, .. } => format!("{}:{pattern}", file.path),
            Hook::Usdt { file, provider, name, .. } => format!("{}:{provider}:{name}", file.path),
            Hook::PerfEvent { ev_type, config, pid, cpu } => format!("{ev_type}:{config:#x}:cpu{cpu}:pid{pid}"),
            Hook::Xdp { dev, .. } => dev.clone(),
            Hook::Tc { dev, ingress, .. } => format!("{dev}:{}", if *ingress { "ingress" } else { "egress" }),
            Hook::Cgroup { path } => path.clone(),
            Hook::Fd { target, attach_type, .. } => format!("{}:{attach_type}", target.path),
            Hook::Section { target, .. } => target.clone(),
        }
    }
}

/// An attachment: what a `links()` call returns and what detaching takes (by `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Unique in the process for its lifetime.
    pub id: u64,
    /// The program attached.
    pub program: String,
    /// Where.
    pub hook: Hook,
}

/// A link and the kernel objects that keep it (owned by one [`BpfObject`]).
pub(crate) struct LinkRec {
    pub(crate) link: Link,
    // Held for its Drop: removing the record detaches the program.
    _kernel: sys::Link,
    // A tracefs kprobe event the link uses, removed after the link (field order is drop order).
    _event: Option<host::KprobeEvent>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl LinkRec {
    pub(crate) fn new(program: &str, hook: Hook, kernel: sys::Link, event: Option<host::KprobeEvent>) -> LinkRec {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        LinkRec { link: Link { id, program: program.to_string(), hook }, _kernel: kernel, _event: event }
    }
}

/// The process's live objects, so that links can be found across them.
static OBJECTS: Lazy<Mutex<Vec<Weak<BpfObject>>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// Registers a newly loaded object.
pub(crate) fn register(obj: &Arc<BpfObject>) {
    let mut g = OBJECTS.lock().unwrap_or_else(|p| p.into_inner());
    g.retain(|w| w.strong_count() > 0);
    g.push(Arc::downgrade(obj));
}

/// The live objects of the process.
pub fn objects() -> Vec<Arc<BpfObject>> {
    let g = OBJECTS.lock().unwrap_or_else(|p| p.into_inner());
    g.iter().filter_map(Weak::upgrade).filter(|o| !o.is_closed()).collect()
}

/// Every link of every live object in the process.
pub fn registry() -> Vec<Link> {
    objects().iter().flat_map(|o| o.links().unwrap_or_default()).collect()
}

/// Detaches the links with these ids, whichever objects own them; returns how many went.
pub fn detach_ids(ids: &[u64]) -> usize {
    objects().iter().map(|o| o.detach_ids(ids).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_targets_read_as_before() {
        let f = FileId { path: "/lib/libc.so.6".into(), dev: 1, ino: 2 };
        let cases = [
            (Hook::Tracepoint { category: "syscalls".into(), name: "sys_enter_openat".into() }, "tracepoint", "syscalls:sys_enter_openat"),
            (Hook::Kprobe { function: "f".into(), offset: 0, retprobe: true, maxactive: 0 }, "kretprobe", "f"),
            (Hook::Kprobe { function: "f".into(), offset: 16, retprobe: false, maxactive: 0 }, "kprobe", "f"),
            (Hook::Uprobe { file: f.clone(), symbol: Some("malloc".into()), offset: 0, file_offset: None, pid: -1, retprobe: false }, "uprobe", "/lib/libc.so.6:malloc"),
            (Hook::Uprobe { file: f.clone(), symbol: None, offset: 0x1136, file_offset: Some(0x1136), pid: -1, retprobe: true }, "uretprobe", "/lib/libc.so.6:0x1136"),
            (Hook::Tc { ifindex: 3, dev: "veth0".into(), ingress: false, tcx: true }, "tc", "veth0:egress"),
            (Hook::PerfEvent { ev_type: 1, config: 0, pid: -1, cpu: 0 }, "perf_event", "1:0x0:cpu0:pid-1"),
            (Hook::Fd { target: FileId { path: "/sys/fs/cgroup/x".into(), dev: 1, ino: 2 }, attach_type: crate::sys::types::AttachType::CgroupInetSockCreate, link: true }, "attach_func", "/sys/fs/cgroup/x:CGROUP_INET_SOCK_CREATE"),
            (Hook::Section { kind: AttachKind::Fentry, target: "do_unlinkat".into() }, "fentry", "do_unlinkat"),
        ];
        for (h, kind, target) in cases {
            assert_eq!(h.kind(), kind);
            assert_eq!(h.target(), target);
        }
    }

    #[test]
    fn file_identity_is_read_from_the_file() {
        let id = FileId::of("/proc/self/exe");
        assert!(id.ino != 0);
        assert_eq!(FileId::of("/no/such/file").ino, 0);
    }
}
