//! A loaded BPF object: its programs, maps, links and globals, shareable across threads.
//!
//! [`BpfObject`] is held in an `Arc` by everything derived from it (map handles, the Python
//! wrappers), so a map never outlives the object whose fd it uses. `close()` takes the loaded
//! state out from under its lock: links are destroyed first, then the object with its program
//! and map fds. Every later use sees [`Error::Closed`]. Dropping the last `Arc` does the same.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::core::btf::{Btf, SecVar, TypeDesc};
use crate::core::error::{Error, Result};
use crate::core::events::EventStream;
use crate::core::host;
use crate::sys::{self, Failure};

/// Map types bpfkit names (`BPF_MAP_TYPE_*`).
#[allow(missing_docs)]
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const RINGBUF: u32 = 27;
}

/// Whether values of this map type are stored once per possible CPU.
pub fn is_percpu(t: u32) -> bool {
    matches!(t, map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | map_type::LRU_PERCPU_HASH | 21)
}

/// Whether this map type is an array (fixed keys 0..max_entries, no deletion).
pub fn is_array(t: u32) -> bool {
    matches!(t, map_type::ARRAY | map_type::PERCPU_ARRAY)
}

fn from_failure(f: Failure) -> Error {
    let message = f.message();
    match f.errno {
        libc::EPERM | libc::EACCES => match host::check_bpf_privileges() {
            Err(Error::Privilege { message: m, .. }) => Error::Privilege { errno: f.errno, message: format!("{message}: {m}") },
            _ => Error::Os { errno: f.errno, message },
        },
        _ => Error::Os { errno: f.errno, message },
    }
}

fn attach_failure(f: Failure) -> Error {
    match from_failure(f) {
        Error::Os { errno, message } => Error::Attach { errno, message },
        e => e,
    }
}

fn map_failure(f: Failure) -> Error {
    match from_failure(f) {
        Error::Os { errno, message } => Error::Map { errno, message },
        e => e,
    }
}

/// A value for a global set before load.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstValue {
    /// An integer, encoded in the variable's own size and signedness.
    Int(i128),
    /// Raw bytes: exactly the variable's size, or shorter for a char array (zero-padded).
    Bytes(Vec<u8>),
}

/// How to open and load an object.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The object's name (internal map names are derived from it).
    pub name: String,
    /// Globals to set before load (`const volatile` ones in `.rodata`, or `.data`/`.bss`).
    pub consts: Vec<(String, ConstValue)>,
    /// Verifier log level for every program (0: logs only on failure).
    pub log_level: u32,
    /// Programs not to load (alternatives not chosen by a fallback ladder).
    pub autoload_off: Vec<String>,
}

/// An attachment owned by an object.
pub struct LinkRec {
    /// bpfkit's id for it.
    pub id: u64,
    /// What kind of hook ("tracepoint", "raw_tracepoint", "kprobe", "uprobe", ...).
    pub kind: String,
    /// The hook ("syscalls:sys_enter_openat", "/usr/lib/libc.so.6:getpid", ...).
    pub target: String,
    /// The program's name.
    pub program: String,
    // Held for its Drop: removing the record detaches the program.
    _link: sys::Link,
    // A tracefs kprobe event the link uses, removed after the link (field order is drop order).
    _event: Option<host::KprobeEvent>,
}

struct Loaded {
    // Field order is drop order: event streams and links go before the object that owns the
    // maps and programs (a ring buffer's mmap would otherwise keep its map alive).
    mmaps: Vec<(String, Arc<MmapRegion>)>,
    streams: Vec<Arc<EventStream>>,
    links: Vec<LinkRec>,
    obj: sys::Object,
}

/// Information about a map of the object.
#[derive(Debug, Clone)]
pub struct MapInfo {
    /// The map's name.
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// BTF type of the key, 0 if none.
    pub key_type_id: u32,
    /// BTF type of the value, 0 if none.
    pub value_type_id: u32,
    /// Whether libbpf made the map for a data section.
    pub internal: bool,
    fd: i32,
}

/// A loaded BPF object. See the module docs for its lifetime.
pub struct BpfObject {
    name: String,
    state: RwLock<Option<Loaded>>,
    btf: Option<Btf>,
    ncpus: usize,
    next_link: AtomicU64,
}

fn section_of(map_name: &str) -> Option<&str> {
    [".rodata", ".data", ".bss", ".kconfig"].iter().find_map(|s| map_name.find(s).map(|i| &map_name[i..]))
}

impl BpfObject {
    /// Opens `data`, sets `opts.consts`, and loads it into the kernel.
    pub fn load(data: &[u8], opts: &LoadOptions) -> Result<Arc<BpfObject>> {
        let name = if opts.name.is_empty() { "bpfkit" } else { &opts.name };
        let mut obj = sys::Object::open_mem(data, name).map_err(|f| match f.errno {
            libc::EPERM | libc::EACCES => from_failure(f),
            _ => Error::Load { program: None, errno: f.errno, message: f.message(), log: String::new() },
        })?;
        let btf = obj.btf_raw().map(Btf::parse).transpose()?;
        let ncpus = sys::num_possible_cpus().map_err(from_failure)?;
        let this = BpfObject { name: name.to_string(), state: RwLock::new(None), btf, ncpus, next_link: AtomicU64::new(1) };
        for (var, value) in &opts.consts {
            let (map_name, sv, desc) = this.find_global(&obj, var)?;
            let bytes = encode_const(var, &sv, &desc, value)?;
            let map = obj.maps().into_iter().find(|m| m.name() == map_name);
            let ok = map.is_some_and(|m| m.write_data(sv.offset as usize, &bytes));
            if !ok {
                return Err(Error::Value(format!("cannot set global `{var}` before load")));
            }
        }
        for prog in &opts.autoload_off {
            let p = obj.program(prog).ok_or_else(|| Error::Value(format!("no program named `{prog}`")))?;
            p.set_autoload(false).map_err(from_failure)?;
        }
        host::check_bpf_privileges()?;
        match obj.load(opts.log_level, 4 << 20) {
            Ok(_) => {}
            Err(lf) => return Err(load_error(lf)),
        }
        // Map every BPF_F_MMAPABLE array now: the kernel inserts all its pages at mmap time, so
        // doing it at load keeps `to_numpy()` constant-time whatever the array's size.
        let mut mmaps = Vec::new();
        for m in obj.maps().iter().filter(|m| !m.is_internal()) {
            if m.map_type() == map_type::ARRAY && m.map_flags() & BPF_F_MMAPABLE != 0 {
                let len = mmap_len(m.value_size(), m.max_entries());
                mmaps.push((m.name(), Arc::new(MmapRegion::new(m.fd(), len)?)));
            }
        }
        *this.write()? = Some(Loaded { mmaps, streams: Vec::new(), links: Vec::new(), obj });
        Ok(Arc::new(this))
    }

    /// `(name, section)` of every program in object file `data`, without loading it.
    pub fn list_programs(data: &[u8]) -> Result<Vec<(String, String)>> {
        let obj = sys::Object::open_mem(data, "bpfkit_list").map_err(|f| Error::Load {
            program: None,
            errno: f.errno,
            message: f.message(),
            log: String::new(),
        })?;
        Ok(obj.programs().iter().map(|p| (p.name(), p.section())).collect())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Loaded>>> {
        self.state.read().map_err(|_| Error::Value("object lock poisoned".into()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Option<Loaded>>> {
        self.state.write().map_err(|_| Error::Value("object lock poisoned".into()))
    }

    fn with<T>(&self, f: impl FnOnce(&Loaded) -> Result<T>) -> Result<T> {
        let g = self.read()?;
        match g.as_ref() {
            Some(l) => f(l),
            None => Err(Error::Closed),
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of possible CPUs (the length of per-CPU values).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// The object's own BTF, if it has any.
    pub fn btf(&self) -> Option<&Btf> {
        self.btf.as_ref()
    }

    /// Whether `close()` has run.
    pub fn is_closed(&self) -> bool {
        self.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// Detaches everything and releases every fd. Idempotent.
    pub fn close(&self) {
        let taken = self.state.write().map(|mut g| g.take()).unwrap_or(None);
        if let Some(mut l) = taken {
            for st in l.streams.drain(..) {
                st.close();
            }
            for (_, m) in l.mmaps.drain(..) {
                m.detach();
            }
            drop_links(std::mem::take(&mut l.links));
            drop(l);
        }
    }

    /// `(name, section, prog_type, fd)` of every program.
    pub fn programs(&self) -> Result<Vec<(String, String, u32, i32)>> {
        self.with(|l| Ok(l.obj.programs().iter().map(|p| (p.name(), p.section(), p.prog_type(), p.fd())).collect()))
    }

    /// Every map, internal ones included.
    pub fn maps(&self) -> Result<Vec<MapInfo>> {
        self.with(|l| {
            Ok(l.obj
                .maps()
                .iter()
                .map(|m| MapInfo {
                    name: m.name(),
                    map_type: m.map_type(),
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    max_entries: m.max_entries(),
                    flags: m.map_flags(),
                    key_type_id: m.btf_key_type_id(),
                    value_type_id: m.btf_value_type_id(),
                    internal: m.is_internal(),
                    fd: m.fd(),
                })
                .collect())
        })
    }

    /// A handle on the map called `name`.
    pub fn map(self: &Arc<Self>, name: &str) -> Result<MapHandle> {
        let maps = self.maps()?;
        match maps.into_iter().find(|m| m.name == name && !m.internal) {
            Some(info) => Ok(MapHandle { owner: Owner::Obj(self.clone()), ncpus: self.ncpus, info }),
            None => {
                let names: Vec<String> = self.maps()?.into_iter().filter(|m| !m.internal).map(|m| m.name).collect();
                Err(Error::Value(format!(
                    "no map named `{name}` (maps: {})",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                )))
            }
        }
    }

    /// Describes BTF type `id` of this object.
    pub fn describe_type(&self, id: u32) -> TypeDesc {
        self.btf.as_ref().map_or(TypeDesc::Void, |b| b.describe(id))
    }

    fn find_global(&self, obj: &sys::Object, var: &str) -> Result<(String, SecVar, TypeDesc)> {
        let btf = self.btf.as_ref().ok_or_else(|| Error::Value("the object has no BTF, so no globals".into()))?;
        let mut known = Vec::new();
        for m in obj.maps().iter().filter(|m| m.is_internal()) {
            let mname = m.name();
            let Some(sec) = section_of(&mname) else { continue };
            let Some(ds) = btf.find_datasec(sec) else { continue };
            for sv in btf.datasec_vars(ds) {
                if sv.name == var {
                    let desc = btf.describe(sv.type_id);
                    return Ok((mname, sv, desc));
                }
                known.push(sv.name);
            }
        }
        Err(Error::Value(format!(
            "no global variable `{var}` in the program (globals: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )))
    }

    /// The section (`.rodata`, `.data`, `.bss`) and type of global `var`.
    pub fn global_info(&self, var: &str) -> Result<(String, TypeDesc)> {
        self.with(|l| {
            let (m, _, d) = self.find_global(&l.obj, var)?;
            Ok((section_of(&m).unwrap_or("").to_string(), d))
        })
    }

    /// The current bytes of global `var`.
    pub fn read_global(&self, var: &str) -> Result<Vec<u8>> {
        self.with(|l| {
            let (mname, sv, _) = self.find_global(&l.obj, var)?;
            let maps = l.obj.maps();
            let map = maps.iter().find(|m| m.name() == mname).ok_or(Error::Closed)?;
            if let Some(b) = map.read_data(sv.offset as usize, sv.size as usize) {
                return Ok(b);
            }
            let mut val = vec![0u8; map.value_size() as usize];
            sys::map_lookup(map.fd(), &0u32.to_le_bytes(), &mut val).map_err(map_failure)?;
            Ok(val[sv.offset as usize..(sv.offset + sv.size) as usize].to_vec())
        })
    }

    /// Writes global `var` of `.data` or `.bss` (a `const volatile` one is fixed once loaded).
    pub fn write_global(&self, var: &str, bytes: &[u8]) -> Result<()> {
        self.with(|l| {
            let (mname, sv, _) = self.find_global(&l.obj, var)?;
            if mname.contains(".rodata") {
                return Err(Error::Value(format!(
                    "`{var}` is read-only once loaded (const volatile, in .rodata): set it before load with consts={{\"{var}\": ...}}"
                )));
            }
            if bytes.len() != sv.size as usize {
                return Err(Error::Value(format!("`{var}` is {} bytes, got {}", sv.size, bytes.len())));
            }
            let maps = l.obj.maps();
            let map = maps.iter().find(|m| m.name() == mname).ok_or(Error::Closed)?;
            if map.write_data(sv.offset as usize, bytes) {
                return Ok(());
            }
            let mut val = vec![0u8; map.value_size() as usize];
            sys::map_lookup(map.fd(), &0u32.to_le_bytes(), &mut val).map_err(map_failure)?;
            val[sv.offset as usize..(sv.offset + sv.size) as usize].copy_from_slice(bytes);
            sys::map_update(map.fd(), &0u32.to_le_bytes(), &val, 0).map_err(map_failure)
        })
    }

    fn push_link(&self, links: &mut Vec<LinkRec>, kind: &str, target: String, program: &str, link: sys::Link) -> u64 {
        self.push_link_with(links, kind, target, program, link, None)
    }

    fn push_link_with(
        &self,
        links: &mut Vec<LinkRec>,
        kind: &str,
        target: String,
        program: &str,
        link: sys::Link,
        event: Option<host::KprobeEvent>,
    ) -> u64 {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        links.push(LinkRec { id, kind: kind.to_string(), target, program: program.to_string(), _link: link, _event: event });
        id
    }

    fn with_program<T>(&self, prog: &str, f: impl FnOnce(&mut Vec<LinkRec>, sys::Program<'_>) -> Result<T>) -> Result<T> {
        let mut g = self.write()?;
        let Loaded { links, obj, .. } = g.as_mut().ok_or(Error::Closed)?;
        let p = match obj.program(prog) {
            Some(p) => p,
            None => {
                let names: Vec<String> = obj.programs().iter().map(|p| p.name()).collect();
                return Err(Error::Value(format!("no program named `{prog}` (programs: {})", names.join(", "))));
            }
        };
        if p.fd() < 0 {
            return Err(Error::Value(format!("program `{prog}` was not loaded")));
        }
        f(links, p)
    }

    /// Attaches program `prog` to tracepoint `category:name`.
    pub fn attach_tracepoint(&self, prog: &str, category: &str, name: &str) -> Result<u64> {
        host::tracing_dir()?;
        self.with_program(prog, |l, p| {
            let link = p.attach_tracepoint(category, name).map_err(|f| tp_failure(f, category, name))?;
            Ok(self.push_link(l, "tracepoint", format!("{category}:{name}"), prog, link))
        })
    }

    /// Attaches program `prog` to raw tracepoint `name`.
    pub fn attach_raw_tracepoint(&self, prog: &str, name: &str) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_raw_tracepoint(name).map_err(attach_failure)?;
            Ok(self.push_link(l, "raw_tracepoint", name.to_string(), prog, link))
        })
    }

    /// Attaches a kprobe or kretprobe. Fails with [`Error::NotSupported`] on a kernel without
    /// kprobes.
    ///
    /// `maxactive > 0` (kretprobes: how many returns can be pending at once) makes the probe
    /// through tracefs's `kprobe_events`, the one interface that takes it.
    pub fn attach_kprobe(&self, prog: &str, func: &str, offset: u64, retprobe: bool, maxactive: u32) -> Result<u64> {
        host::require_kprobes()?;
        let kind = if retprobe { "kretprobe" } else { "kprobe" };
        if maxactive > 0 && !retprobe {
            return Err(Error::Value("maxactive is for kretprobes (how many returns may be pending at once)".into()));
        }
        if maxactive > 0 {
            let ev = host::KprobeEvent::create(func, offset, retprobe, maxactive)?;
            let spec = sys::PerfEventSpec { ev_type: 2, config: ev.id, period: 1, pid: -1, cpu: 0, group_fd: -1, freq: false };
            let pfd = sys::perf_event_open(&spec).map_err(attach_failure)?;
            return self.with_program(prog, |l, p| {
                let link = p.attach_perf_event(pfd, &format!("{kind} {func} (maxactive {maxactive})")).map_err(attach_failure)?;
                Ok(self.push_link_with(l, kind, func.to_string(), prog, link, Some(ev)))
            });
        }
        self.with_program(prog, |l, p| {
            let link = p.attach_kprobe(func, offset, retprobe).map_err(attach_failure)?;
            Ok(self.push_link(l, kind, func.to_string(), prog, link))
        })
    }

    /// Attaches a kprobe or kretprobe to every function in `funcs` through one multi-kprobe
    /// link. `label` names the attachment (the pattern the functions came from).
    pub fn attach_kprobe_multi(&self, prog: &str, funcs: &[String], retprobe: bool, label: &str) -> Result<u64> {
        if funcs.is_empty() {
            return Err(Error::Value(format!("no kernel function matches `{label}`")));
        }
        self.with_program(prog, |l, p| {
            let link = p.attach_kprobe_multi(funcs, retprobe).map_err(|f| match f.errno {
                libc::EOPNOTSUPP | 524 /* ENOTSUPP */ => Error::NotSupported {
                    feature: "kprobe_multi".into(),
                    since: Some("5.18".into()),
                    message: format!("{}: this kernel has no multi-kprobe links (CONFIG_FPROBE)", f.message()),
                    program: Some(prog.to_string()),
                },
                _ => attach_failure(f),
            })?;
            Ok(self.push_link(l, if retprobe { "kretprobe" } else { "kprobe" }, label.to_string(), prog, link))
        })
    }

    /// Attaches a uprobe (or uretprobe) at every file offset of `offsets` in `path` with one
    /// multi-uprobe link; `label` names the attachment.
    pub fn attach_uprobe_multi(&self, prog: &str, path: &str, offsets: &[u64], pid: i32, retprobe: bool, label: &str) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_uprobe_multi(pid, path, offsets, retprobe).map_err(|f| match f.errno {
                libc::EOPNOTSUPP | 524 => Error::NotSupported {
                    feature: "uprobe_multi".into(),
                    since: Some("6.6".into()),
                    message: format!("{}: this kernel has no multi-uprobe links", f.message()),
                    program: Some(prog.to_string()),
                },
                _ => attach_failure(f),
            })?;
            Ok(self.push_link(l, if retprobe { "uretprobe" } else { "uprobe" }, format!("{path}:{label}"), prog, link))
        })
    }

    /// Attaches program `prog` to a perf event opened from `spec` (one CPU or one process).
    pub fn attach_perf_event(&self, prog: &str, spec: &sys::PerfEventSpec) -> Result<u64> {
        let pfd = sys::perf_event_open(spec).map_err(|f| match f.errno {
            libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV => Error::NotSupported {
                feature: format!("perf event type {} config {:#x}", spec.ev_type, spec.config),
                since: None,
                message: format!("{}: this machine's PMU does not provide that event (a VM often has no hardware counters)", f.message()),
                program: Some(prog.to_string()),
            },
            _ => attach_failure(f),
        })?;
        let target = format!("{}:{:#x}:cpu{}:pid{}", spec.ev_type, spec.config, spec.cpu, spec.pid);
        self.with_program(prog, |l, p| {
            let link = p.attach_perf_event(pfd, &format!("perf event {target}")).map_err(attach_failure)?;
            Ok(self.push_link(l, "perf_event", target, prog, link))
        })
    }

    /// Attaches XDP program `prog` to interface `ifindex` (named `dev`) through a BPF link with
    /// `XDP_FLAGS_*` mode flags; the link goes when the object closes or the process dies.
    pub fn attach_xdp(&self, prog: &str, ifindex: i32, dev: &str, flags: u32) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_xdp(ifindex, flags).map_err(|f| {
                let hint = match f.errno {
                    libc::EBUSY | libc::EEXIST => "; the interface already has an XDP program (another process's, or one attached without a link)",
                    libc::EOPNOTSUPP => "; the driver does not support this XDP mode (try flags=BPF.XDP_FLAGS_SKB_MODE)",
                    _ => "",
                };
                attach_failure(Failure { errno: f.errno, context: format!("{} on {dev}{hint}", f.context) })
            })?;
            Ok(self.push_link(l, "xdp", dev.to_string(), prog, link))
        })
    }

    /// Attaches tc program `prog` to interface `ifindex` (named `dev`), ingress or egress:
    /// through a tcx link (6.6+) when `mode` is "tcx", through a clsact qdisc filter when
    /// "clsact", and "auto" tries tcx first.
    pub fn attach_tc(&self, prog: &str, ifindex: i32, dev: &str, ingress: bool, mode: &str) -> Result<(u64, String)> {
        let dir = if ingress { "ingress" } else { "egress" };
        let target = format!("{dev}:{dir}");
        self.with_program(prog, |l, p| {
            let tcx = match mode {
                "tcx" | "auto" => p.attach_tcx(ifindex, ingress),
                "clsact" => Err(Failure { errno: libc::EOPNOTSUPP, context: String::new() }),
                _ => return Err(Error::Value(format!("tc mode must be 'auto', 'tcx' or 'clsact', not {mode:?}"))),
            };
            let (link, how) = match tcx {
                Ok(link) => (link, "tcx"),
                // Kernels before 6.6 refuse the attach type: EINVAL (or EOPNOTSUPP).
                Err(f) if mode == "auto" && matches!(f.errno, libc::EINVAL | libc::EOPNOTSUPP) => {
                    (p.attach_tc_clsact(ifindex, ingress).map_err(attach_failure)?, "clsact")
                }
                Err(_) if mode == "clsact" => (p.attach_tc_clsact(ifindex, ingress).map_err(attach_failure)?, "clsact"),
                Err(f) => return Err(attach_failure(f)),
            };
            Ok((self.push_link(l, "tc", target.clone(), prog, link), how.to_string()))
        })
    }

    /// Attaches cgroup program `prog` to the cgroup v2 directory `path`.
    pub fn attach_cgroup(&self, prog: &str, path: &str) -> Result<u64> {
        let dir = std::fs::File::open(path).map_err(|e| Error::io(format!("opening cgroup {path}"), &e))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        self.with_program(prog, |l, p| {
            let link = p.attach_cgroup(fd, path).map_err(attach_failure)?;
            Ok(self.push_link(l, "cgroup", path.to_string(), prog, link))
        })
    }

    /// Attaches program `prog` to USDT probe `provider:name` of `path` (all processes, or `pid`).
    pub fn attach_usdt(&self, prog: &str, pid: i32, path: &str, provider: &str, name: &str, cookie: u64) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_usdt(pid, path, provider, name, cookie).map_err(|f| {
                let hint = if f.errno == libc::ENOENT { format!("; {path} has no USDT probe {provider}:{name}") } else { String::new() };
                attach_failure(Failure { errno: f.errno, context: format!("{}{hint}", f.context) })
            })?;
            Ok(self.push_link(l, "usdt", format!("{path}:{provider}:{name}"), prog, link))
        })
    }

    /// The fd of loaded program `prog` (valid while the object is open) and its type.
    pub fn program_fd(&self, prog: &str) -> Result<(i32, u32)> {
        self.with_program(prog, |_, p| Ok((p.fd(), p.prog_type())))
    }

    /// Attaches a uprobe or uretprobe on `path` at `symbol`+`offset` (or file offset `offset`).
    pub fn attach_uprobe(&self, prog: &str, path: &str, symbol: Option<&str>, offset: u64, pid: i32, retprobe: bool) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let spec = sys::UprobeSpec { path, symbol, offset, pid, retprobe };
            let link = p.attach_uprobe(&spec).map_err(attach_failure)?;
            let target = match symbol {
                Some(s) => format!("{path}:{s}"),
                None => format!("{path}:{offset:#x}"),
            };
            Ok(self.push_link(l, if retprobe { "uretprobe" } else { "uprobe" }, target, prog, link))
        })
    }

    /// Attaches every loaded program whose section names its hook, except those in `skip`.
    /// Returns `(program, kind, target)` for each attachment made.
    pub fn autoattach(&self, skip: &[String]) -> Result<Vec<(String, String, String)>> {
        let progs = self.programs()?;
        let mut done = Vec::new();
        for (name, sec, _, fd) in progs {
            if fd < 0 || skip.contains(&name) {
                continue;
            }
            if let Some((kind, target)) = self.attach_section(&name, &sec)? {
                done.push((name, kind, target));
            }
        }
        Ok(done)
    }

    /// Attaches program `prog` where its section `sec` says; None when the section names no
    /// hook (e.g. a bare `SEC("kprobe")`, attached later by name).
    pub fn attach_section(&self, name: &str, sec: &str) -> Result<Option<(String, String)>> {
        let (kind, rest) = sec.split_once('/').unwrap_or((sec, ""));
        if rest.is_empty() {
            return Ok(None);
        }
        let name = name.to_string();
        match kind {
            "tracepoint" | "tp" => {
                let Some((cat, tp)) = rest.split_once('/') else { return Ok(None) };
                self.attach_tracepoint(&name, cat, tp)?;
                Ok(Some(("tracepoint".into(), format!("{cat}:{tp}"))))
            }
            "raw_tp" | "raw_tracepoint" | "raw_tp.w" | "raw_tracepoint.w" => {
                self.attach_raw_tracepoint(&name, rest)?;
                Ok(Some(("raw_tracepoint".into(), rest.into())))
            }
            "kprobe.multi" | "kretprobe.multi" => {
                self.attach_auto(&name, kind, rest).map_err(|e| match e {
                    Error::Attach { errno: libc::EOPNOTSUPP | 524, message } => Error::NotSupported {
                        feature: "kprobe_multi".into(),
                        since: Some("5.18".into()),
                        message: format!("{message}: this kernel has no multi-kprobe links (CONFIG_FPROBE)"),
                        program: Some(name.clone()),
                    },
                    e => e,
                })?;
                Ok(Some((kind.into(), rest.into())))
            }
            "kprobe" | "kretprobe" | "ksyscall" | "kretsyscall" => {
                host::require_kprobes().map_err(|e| match e {
                    Error::NotSupported { feature, since, message, .. } => {
                        Error::NotSupported { feature, since, message, program: Some(name.clone()) }
                    }
                    e => e,
                })?;
                self.attach_auto(&name, kind, rest)?;
                Ok(Some((kind.into(), rest.into())))
            }
            "uprobe" | "uretprobe" | "uprobe.s" | "uretprobe.s" | "uprobe.multi" | "uretprobe.multi" | "usdt" => {
                if !rest.contains(':') {
                    return Ok(None);
                }
                self.attach_auto(&name, kind, rest)?;
                Ok(Some((kind.into(), rest.into())))
            }
            "tp_btf" | "fentry" | "fexit" | "fmod_ret" | "lsm" | "fentry.s" | "fexit.s" | "lsm.s" | "iter" => {
                self.attach_auto(&name, kind, rest)?;
                Ok(Some((kind.into(), rest.into())))
            }
            _ => Ok(None),
        }
    }

    fn attach_auto(&self, prog: &str, kind: &str, target: &str) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_auto().map_err(attach_failure)?;
            Ok(self.push_link(l, kind, target.to_string(), prog, link))
        })
    }

    /// `(id, kind, target, program)` of every attachment.
    pub fn links(&self) -> Result<Vec<(u64, String, String, String)>> {
        self.with(|l| Ok(l.links.iter().map(|r| (r.id, r.kind.clone(), r.target.clone(), r.program.clone())).collect()))
    }

    /// Detaches attachments matching `kind`, and `target` and `program` when given. Returns how
    /// many were detached.
    pub fn detach(&self, kind: &str, target: Option<&str>, program: Option<&str>) -> Result<usize> {
        let mut g = self.write()?;
        let l = g.as_mut().ok_or(Error::Closed)?;
        let (gone, kept): (Vec<LinkRec>, Vec<LinkRec>) = std::mem::take(&mut l.links).into_iter().partition(|r| {
            r.kind == kind && target.is_none_or(|t| r.target == t) && program.is_none_or(|p| r.program == p)
        });
        l.links = kept;
        let n = gone.len();
        drop_links(gone);
        Ok(n)
    }

    /// Detaches the attachment with bpfkit id `id`.
    pub fn detach_id(&self, id: u64) -> Result<bool> {
        let mut g = self.write()?;
        let l = g.as_mut().ok_or(Error::Closed)?;
        let before = l.links.len();
        l.links.retain(|r| r.id != id);
        Ok(before != l.links.len())
    }

    /// The mapping of mmapable array `map`, made at load.
    fn mapped(&self, map: &str) -> Result<Option<Arc<MmapRegion>>> {
        self.with(|l| Ok(l.mmaps.iter().find(|(n, _)| n == map).map(|(_, r)| r.clone())))
    }

    /// Opens an event stream on ring buffer or perf event array map `map` (`page_cnt` pages per
    /// CPU for perf buffers). The stream closes with the object.
    pub fn open_stream(&self, map: &str, page_cnt: usize, wakeup_events: u32, guard: usize) -> Result<Arc<EventStream>> {
        let mut g = self.write()?;
        let l = g.as_mut().ok_or(Error::Closed)?;
        let m = l.obj.maps().into_iter().find(|m| m.name() == map && !m.is_internal());
        let m = m.ok_or_else(|| Error::Value(format!("no map named `{map}`")))?;
        if l.streams.iter().any(|s| s.map == map) {
            return Err(Error::Value(format!("map `{map}` already has an open event stream")));
        }
        let st = match m.map_type() {
            map_type::RINGBUF => EventStream::ring(map, m.fd(), guard)?,
            map_type::PERF_EVENT_ARRAY => EventStream::perf(map, m.fd(), page_cnt, wakeup_events, guard)?,
            _ => return Err(Error::Type(format!("map `{map}` is neither a ring buffer nor a perf event array"))),
        };
        let st = Arc::new(st);
        l.streams.push(st.clone());
        Ok(st)
    }

}

/// Detaches `links`, many at once. The kernel waits out an RCU grace period for each perf-event
/// based detach (uprobes, kprobes, tracepoints: ~0.1 s each on this machine, where attaching takes
/// 0.3 ms), so 500 links closed one after another take a minute; closed from several threads, the
/// waits overlap.
fn drop_links(links: Vec<LinkRec>) {
    const PER_THREAD: usize = 8;
    const MAX_THREADS: usize = 64;
    if links.len() <= PER_THREAD {
        drop(links);
        return;
    }
    let threads = links.len().div_ceil(PER_THREAD).min(MAX_THREADS);
    let mut groups: Vec<Vec<LinkRec>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, r) in links.into_iter().enumerate() {
        groups[i % threads].push(r);
    }
    std::thread::scope(|s| {
        for g in groups {
            // If the thread cannot be spawned, the closure, and with it the group, is dropped
            // here instead: the links are detached either way.
            let _ = std::thread::Builder::new().name("bpfkit-detach".into()).spawn_scoped(s, move || drop(g));
        }
    });
}

impl Drop for BpfObject {
    fn drop(&mut self) {
        self.close();
    }
}

fn tp_failure(f: Failure, category: &str, name: &str) -> Error {
    if f.errno == libc::ENOENT {
        return Error::Attach {
            errno: f.errno,
            message: format!("{}: no tracepoint {category}:{name} in /sys/kernel/tracing/events", f.message()),
        };
    }
    attach_failure(f)
}

fn load_error(lf: sys::LoadFailure) -> Error {
    let f = lf.failure;
    if matches!(f.errno, libc::EPERM | libc::EACCES) && lf.log.is_empty() {
        if let Err(e) = host::check_bpf_privileges() {
            return e;
        }
        if let Some(mode) = host::lockdown().filter(|m| m != "none") {
            let prog = lf.program.clone().unwrap_or_default();
            return Error::NotSupported {
                feature: "BPF program type under kernel lockdown".into(),
                since: None,
                program: lf.program.clone(),
                message: format!(
                    "loading program `{prog}` failed with EPERM: the kernel is in lockdown mode ({mode}), which refuses \
                     this kind of program (fentry/fexit/LSM and others that read kernel memory); {}",
                    f.message()
                ),
            };
        }
    }
    let tail: Vec<&str> = lf.log.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    let message = match &lf.program {
        Some(p) if !lf.log.is_empty() => {
            format!("the verifier rejected program `{p}`: {}\n{}", f.message(), tail.join("\n"))
        }
        Some(p) => format!("loading program `{p}`: {}", f.message()),
        None => f.message(),
    };
    Error::Load { program: lf.program, errno: f.errno, message, log: lf.log }
}

fn encode_const(var: &str, sv: &SecVar, desc: &TypeDesc, value: &ConstValue) -> Result<Vec<u8>> {
    let size = sv.size as usize;
    match value {
        ConstValue::Bytes(b) => {
            let is_char_array = matches!(desc, TypeDesc::Array { elem, .. } if matches!(**elem, TypeDesc::Int { size: 1, .. }));
            if b.len() == size || (is_char_array && b.len() < size) {
                let mut out = b.clone();
                out.resize(size, 0);
                Ok(out)
            } else {
                Err(Error::Value(format!("`{var}` is {size} bytes, got {} bytes", b.len())))
            }
        }
        ConstValue::Int(v) => {
            let signed = match desc {
                TypeDesc::Int { signed, .. } => *signed,
                TypeDesc::Enum { signed, .. } => *signed,
                TypeDesc::Ptr { .. } => false,
                _ => return Err(Error::Type(format!("`{var}` is not an integer; pass bytes of its {size}-byte value"))),
            };
            let bits = (size * 8) as u32;
            let (lo, hi): (i128, i128) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if *v < lo || *v > hi {
                return Err(Error::Value(format!(
                    "{v} does not fit `{var}`, a {}{bits}-bit integer",
                    if signed { "signed " } else { "unsigned " }
                )));
            }
            Ok(v.to_le_bytes()[..size].to_vec())
        }
    }
}

// ------------------------------------------------------------------------------------------
// Maps

/// Who keeps a map's fd open.
#[derive(Clone)]
enum Owner {
    /// A map of a loaded object: valid until the object closes.
    Obj(Arc<BpfObject>),
    /// A map opened on its own (pinned, by id, an inner map): owns its fd and its BTF.
    Own(Arc<OwnedMap>),
}

/// A map fd owned outside any object, with the map's BTF when the kernel has it.
pub struct OwnedMap {
    // Held for its Drop: the map stays open exactly as long as a handle refers to it.
    _fd: std::os::fd::OwnedFd,
    btf: Option<Btf>,
}

/// A map of a loaded object, or one opened by pin path or id. A map of an object holds the
/// object alive and fails with [`Error::Closed`] after the object is closed.
#[derive(Clone)]
pub struct MapHandle {
    owner: Owner,
    ncpus: usize,
    info: MapInfo,
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

impl MapHandle {
    /// The map's description.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// Number of possible CPUs (the length of per-CPU values).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// Runs `f` while the map's fd is guaranteed open.
    fn with<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match &self.owner {
            Owner::Obj(o) => o.with(|_| f()),
            Owner::Own(_) => f(),
        }
    }

    /// Opens a map by fd, taking ownership of the fd.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<MapHandle> {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        let ki = sys::map_info_by_fd(raw).map_err(map_failure)?;
        let btf = if ki.btf_id != 0 { sys::btf_raw_by_id(ki.btf_id).ok().and_then(|r| Btf::parse(r).ok()) } else { None };
        let info = MapInfo {
            name: ki.name,
            map_type: ki.map_type,
            key_size: ki.key_size,
            value_size: ki.value_size,
            max_entries: ki.max_entries,
            flags: ki.flags,
            key_type_id: if btf.is_some() { ki.btf_key_type_id } else { 0 },
            value_type_id: if btf.is_some() { ki.btf_value_type_id } else { 0 },
            internal: false,
            fd: raw,
        };
        let ncpus = sys::num_possible_cpus().map_err(from_failure)?;
        Ok(MapHandle { owner: Owner::Own(Arc::new(OwnedMap { _fd: fd, btf })), ncpus, info })
    }

    /// Opens the map pinned at `path` (on a bpffs).
    pub fn open_pinned(path: &str) -> Result<MapHandle> {
        let fd = sys::obj_get(path).map_err(|f| match from_failure(f) {
            Error::Os { errno, message } => Error::Map { errno, message },
            e => e,
        })?;
        // SAFETY: obj_get returned a fresh fd that nothing else owns.
        MapHandle::from_fd(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// Opens the map with kernel id `id` (e.g. an inner map of a map-in-map).
    pub fn open_id(id: u32) -> Result<MapHandle> {
        let fd = sys::map_fd_by_id(id).map_err(map_failure)?;
        // SAFETY: a fresh fd that nothing else owns.
        MapHandle::from_fd(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// The key type, from BTF (Void when the map has none).
    pub fn key_desc(&self) -> TypeDesc {
        self.desc(self.info.key_type_id)
    }

    /// The value type, from BTF (Void when the map has none).
    pub fn value_desc(&self) -> TypeDesc {
        self.desc(self.info.value_type_id)
    }

    fn desc(&self, id: u32) -> TypeDesc {
        if id == 0 {
            return TypeDesc::Void;
        }
        match &self.owner {
            Owner::Obj(o) => o.describe_type(id),
            Owner::Own(m) => m.btf.as_ref().map_or(TypeDesc::Void, |b| b.describe(id)),
        }
    }

    /// Pins the map at `path` (mounting bpffs at /sys/fs/bpf first if needed).
    pub fn pin(&self, path: &str) -> Result<()> {
        if path.starts_with("/sys/fs/bpf/") {
            host::ensure_mounted(host::Fs::Bpffs)?;
        }
        self.with(|| sys::obj_pin(self.info.fd, path).map_err(map_failure))
    }

    /// Pushes onto a queue or stack, or adds to a bloom filter.
    pub fn push(&self, value: &[u8], flags: u64) -> Result<()> {
        self.check_value(value)?;
        self.with(|| sys::map_push(self.info.fd, value, flags).map_err(map_failure))
    }

    /// Pops from a queue or stack; None when empty.
    pub fn pop(&self) -> Result<Option<Vec<u8>>> {
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            Ok(sys::map_pop(self.info.fd, &mut v).map_err(map_failure)?.then_some(v))
        })
    }

    /// Peeks at a queue's or stack's head; None when empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            Ok(sys::map_peek(self.info.fd, &mut v).map_err(map_failure)?.then_some(v))
        })
    }

    /// Whether a bloom filter may contain `value` (false means certainly not).
    pub fn bloom_contains(&self, value: &[u8]) -> Result<bool> {
        self.check_value(value)?;
        self.with(|| {
            let mut v = value.to_vec();
            sys::map_peek(self.info.fd, &mut v).map_err(map_failure)
        })
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() != self.value_buf_size() {
            return Err(Error::Value(format!(
                "map `{}` takes {}-byte values, got {} bytes",
                self.info.name,
                self.value_buf_size(),
                value.len()
            )));
        }
        Ok(())
    }

    /// Bytes of one value as the syscalls see it (all CPUs' copies for per-CPU maps).
    pub fn value_buf_size(&self) -> usize {
        if is_percpu(self.info.map_type) {
            round8(self.info.value_size as usize) * self.ncpus
        } else {
            self.info.value_size as usize
        }
    }

    /// The kernel fd (valid while the object is open).
    pub fn fd(&self) -> Result<i32> {
        self.with(|| Ok(self.info.fd))
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() != self.info.key_size as usize {
            return Err(Error::Value(format!(
                "map `{}` takes {}-byte keys, got {} bytes",
                self.info.name,
                self.info.key_size,
                key.len()
            )));
        }
        Ok(())
    }

    /// Looks `key` up.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            let found = sys::map_lookup(self.info.fd, key, &mut v).map_err(map_failure)?;
            Ok(found.then_some(v))
        })
    }

    /// Sets `key` to `value` (`flags`: 0 any, 1 only new, 2 only existing).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        self.check_key(key)?;
        self.check_value(value)?;
        self.with(|| {
            sys::map_update(self.info.fd, key, value, flags).map_err(|f| match f.errno {
                libc::E2BIG => Error::Map { errno: f.errno, message: format!("map `{}` is full ({} entries)", self.info.name, self.info.max_entries) },
                _ => map_failure(f),
            })
        })
    }

    /// Deletes `key`; false if it was absent.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        self.with(|| sys::map_delete(self.info.fd, key).map_err(map_failure))
    }

    /// Every key, by `get_next_key`, each at most once even if entries are deleted meanwhile
    /// (deleting the current key makes the kernel restart from the first key).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.with(|| {
            let ks = self.info.key_size as usize;
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            let mut cur: Option<Vec<u8>> = None;
            let limit = (self.info.max_entries as usize).saturating_mul(4).max(1024);
            for _ in 0..limit {
                let mut next = vec![0u8; ks];
                if !sys::map_next_key(self.info.fd, cur.as_deref(), &mut next).map_err(map_failure)? {
                    break;
                }
                if seen.insert(next.clone()) {
                    out.push(next.clone());
                }
                cur = Some(next);
            }
            Ok(out)
        })
    }

    /// A snapshot of every entry as packed keys and values: `(count, keys, values)`. Uses batch
    /// lookups where the kernel has them (5.6+), else key iteration plus lookups.
    pub fn snapshot(&self) -> Result<(usize, Vec<u8>, Vec<u8>)> {
        let ks = self.info.key_size as usize;
        let vs = self.value_buf_size();
        match self.snapshot_batch(ks, vs) {
            Ok(r) => return Ok(r),
            Err(Error::Map { errno: libc::EINVAL | libc::EOPNOTSUPP | 524, .. }) => {}
            Err(e) => return Err(e),
        }
        let keys = self.keys()?;
        let (mut kout, mut vout, mut n) = (Vec::with_capacity(keys.len() * ks), Vec::with_capacity(keys.len() * vs), 0);
        for k in keys {
            if let Some(v) = self.lookup(&k)? {
                kout.extend_from_slice(&k);
                vout.extend_from_slice(&v);
                n += 1;
            }
        }
        Ok((n, kout, vout))
    }

    fn snapshot_batch(&self, ks: usize, vs: usize) -> Result<(usize, Vec<u8>, Vec<u8>)> {
        self.with(|| {
            let chunk = (self.info.max_entries as usize).clamp(1, 16384);
            let (mut keys, mut vals) = (Vec::new(), Vec::new());
            let mut total = 0usize;
            let cur_len = ks.max(8);
            let mut cursor: Option<Vec<u8>> = None;
            let mut next = vec![0u8; cur_len];
            loop {
                keys.resize((total + chunk) * ks, 0);
                vals.resize((total + chunk) * vs, 0);
                let (n, done) = sys::map_lookup_batch(
                    self.info.fd,
                    cursor.as_deref(),
                    &mut next,
                    &mut keys[total * ks..],
                    &mut vals[total * vs..],
                    chunk as u32,
                )
                .map_err(map_failure)?;
                total += n as usize;
                if done {
                    break;
                }
                cursor = Some(next.clone());
            }
            keys.truncate(total * ks);
            vals.truncate(total * vs);
            Ok((total, keys, vals))
        })
    }

    /// Removes every entry (hash maps) or zeroes every value (arrays).
    pub fn clear(&self) -> Result<()> {
        if is_array(self.info.map_type) {
            let zero = vec![0u8; self.value_buf_size()];
            for i in 0..self.info.max_entries {
                self.update(&i.to_le_bytes(), &zero, 0)?;
            }
            return Ok(());
        }
        // One pass of batch lookup-and-deletes (hash maps, 5.6+): a syscall per 16384 entries
        // instead of two per entry (1M entries: 0.4 s instead of 5.5 s). Without it (older
        // kernels, other map types), key by key.
        let (ks, vs) = (self.info.key_size as usize, self.value_buf_size());
        let chunk = (self.info.max_entries as usize).clamp(1, 16384);
        let (mut keys, mut vals) = (vec![0u8; chunk * ks], vec![0u8; chunk * vs]);
        let (mut cursor, mut next) = (None::<Vec<u8>>, vec![0u8; ks.max(8)]);
        loop {
            let step = self.with(|| {
                sys::map_lookup_and_delete_batch(self.info.fd, ks, vs, cursor.as_deref(), &mut next, &mut keys, &mut vals)
                    .map_err(map_failure)
            });
            match step {
                Ok((_, true)) => return Ok(()),
                Ok((_, false)) => cursor = Some(next.clone()),
                Err(Error::Map { errno: libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSPC | 524, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        for k in self.keys()? {
            self.delete(&k)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Memory-mapped arrays

/// Bytes to map for an mmapable array: values rounded up to 8, the total to whole pages.
fn mmap_len(value_size: u32, max_entries: u32) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    (round8(value_size as usize) * max_entries as usize).div_ceil(page) * page
}

/// `BPF_F_MMAPABLE`: an array map whose values can be mapped into user memory (5.5+).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A shared mapping of a `BPF_F_MMAPABLE` array: user space and the program see the same memory.
///
/// Views handed to Python (numpy arrays) may outlive the object. Closing the object therefore
/// does not unmap the region (a view would then fault): it replaces the pages in place with
/// private zero pages, which drops the kernel map's last reference while every view stays
/// valid memory. The address range is unmapped when the last owner drops.
pub struct MmapRegion {
    addr: usize,
    len: usize,
    detached: std::sync::atomic::AtomicBool,
}

impl MmapRegion {
    fn new(fd: i32, len: usize) -> Result<MmapRegion> {
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks len and flags.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        if p == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(Error::Map { errno: e.raw_os_error().unwrap_or(libc::EINVAL), message: format!("mapping the array into memory: {e}") });
        }
        Ok(MmapRegion { addr: p as usize, len, detached: std::sync::atomic::AtomicBool::new(false) })
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the map behind it has been released (the region now reads zeros).
    pub fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    fn detach(&self) {
        if self.detached.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: replaces exactly our own mapping, in place, with anonymous zero pages.
        unsafe {
            libc::mmap(
                self.addr as *mut libc::c_void,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }
}

impl Drop for MmapRegion {
    fn drop(&mut self) {
        // SAFETY: we own the range [addr, addr+len) and unmap it once.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

impl MapHandle {
    /// Maps a `BPF_F_MMAPABLE` array's values into memory: element `i` is at `i * stride`, with
    /// `stride` the value size rounded up to 8. Returns `(region, stride)`.
    pub fn mmap(&self) -> Result<(Arc<MmapRegion>, usize)> {
        if self.info.map_type != map_type::ARRAY || self.info.flags & BPF_F_MMAPABLE == 0 {
            return Err(Error::Type(format!(
                "map `{}` is not an array declared with BPF_F_MMAPABLE (__uint(map_flags, BPF_F_MMAPABLE))",
                self.info.name
            )));
        }
        let stride = round8(self.info.value_size as usize);
        if let Owner::Obj(o) = &self.owner {
            if let Some(region) = o.mapped(&self.info.name)? {
                return Ok((region, stride));
            }
        }
        let fd = self.fd()?;
        let region = Arc::new(MmapRegion::new(fd, mmap_len(self.info.value_size, self.info.max_entries))?);
        Ok((region, stride))
    }
}
