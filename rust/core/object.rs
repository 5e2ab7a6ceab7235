//! A loaded BPF object: its programs, maps, links and globals, shareable across threads.
//!
//! [`BpfObject`] is held in an `Arc` by everything derived from it (map handles, the Python
//! wrappers), so a map never outlives the object whose fd it uses. `close()` takes the loaded
//! state out from under its lock: links are destroyed first, then the object with its program
//! and map fds. Every later use sees [`Error::Closed`]. Dropping the last `Arc` does the same.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::core::btf::{Btf, SecVar, TypeDesc};
use crate::core::error::{Error, Result};
use crate::core::events::EventStream;
use crate::core::features::{feature, Feature};
use crate::core::host;
use crate::core::link::{self, FileId, Hook, Link, LinkRec};
use crate::core::cache::Cache;
use crate::core::map::{MapHandle, MmapRegion};
use crate::core::reloc;
use crate::core::section::{AttachKind, Section};
use crate::sys::types::{AttachType, MapType, ProgType, ENOTSUPP, F_MMAPABLE};
use crate::sys::{self, Failure};

/// A refusal for a link type the kernel lacks (`EOPNOTSUPP`/`ENOTSUPP`), else an attach error.
fn unsupported_link(f: Failure, feat: &Feature, prog: &str, target: &str) -> Error {
    match f.errno {
        libc::EOPNOTSUPP | ENOTSUPP => {
            feat.refuse(format!("{}: this kernel has no {} ({})", f.message(), feat.description, feat.config.join(", ")), Some(prog))
        }
        _ => Error::attach(f, prog, target),
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
    /// Relocate against the whole kernel BTF, not a cached subset of it (for tests and debugging).
    pub whole_kernel_btf: bool,
    /// The cache directory to keep that subset in (the default cache when `None`).
    pub cache_dir: Option<std::path::PathBuf>,
    /// `(map, path)`: maps pinned at a path of the program's choosing (BCC's
    /// `BPF_TABLE_PINNED`): a map already pinned there is used, else the new one is pinned
    /// there, and stays pinned after close, as the program asked.
    pub pins: Vec<(String, String)>,
    /// `(map, entries)`: map sizes to set before load, so that an option sizing a map (a stack
    /// tool's `--stack-storage-size`) never means recompiling.
    pub map_sizes: Vec<(String, u32)>,
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
    /// The map's type.
    pub map_type: MapType,
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
    /// The map's fd with its sizes, valid while the object is open.
    pub(crate) handle: sys::MapFd,
}

/// A loaded BPF object. See the module docs for its lifetime.
pub struct BpfObject {
    name: String,
    state: RwLock<Option<Loaded>>,
    btf: Option<Btf>,
    ncpus: usize,
}

fn section_of(map_name: &str) -> Option<&str> {
    [".rodata", ".data", ".bss", ".kconfig"].iter().find_map(|s| map_name.find(s).map(|i| &map_name[i..]))
}

impl BpfObject {
    /// Opens `data`, sets `opts.consts`, and loads it into the kernel.
    pub fn load(data: &[u8], opts: &LoadOptions) -> Result<Arc<BpfObject>> {
        let name = if opts.name.is_empty() { "bpfkit" } else { &opts.name };
        // A small BTF of just the kernel types the CO-RE relocations name, when one can stand in
        // for the whole (see `reloc`): it spares libbpf parsing all of the kernel's BTF. Being
        // only a speed-up, it gives way to the whole BTF when it cannot be had (and `sys` to
        // libbpf's own reading when it cannot be handed over).
        let core_btf = if opts.whole_kernel_btf {
            None
        } else {
            let cache = match &opts.cache_dir {
                Some(d) => Cache::open(d),
                None => Cache::open_default(),
            };
            cache.and_then(|c| reloc::kernel_btf_for(data, &c)).ok().flatten()
        };
        let obj = sys::OpenObject::open_mem(data, name, core_btf.as_deref()).map_err(|f| match f.errno {
            libc::EPERM | libc::EACCES => Error::from(f),
            _ => Error::Load { program: None, errno: f.errno, message: f.message(), log: String::new() },
        })?;
        let btf = obj.btf_raw().map(Btf::parse).transpose()?;
        let ncpus = sys::num_possible_cpus().map_err(Error::from)?;
        let this = BpfObject { name: name.to_string(), state: RwLock::new(None), btf, ncpus };
        for (var, value) in &opts.consts {
            let (map_name, sv, desc) = this.find_global(&obj, var)?;
            let bytes = encode_const(var, &sv, &desc, value)?;
            let map = obj.maps().into_iter().find(|m| m.name() == map_name);
            let ok = map.is_some_and(|m| m.write_data(sv.offset as usize, &bytes));
            if !ok {
                return Err(Error::Value(format!("cannot set global `{var}` before load")));
            }
        }
        for (map, entries) in &opts.map_sizes {
            let m = obj.maps().into_iter().find(|m| m.name() == *map).ok_or_else(|| Error::Value(format!("map_sizes: no map named `{map}`")))?;
            if *entries == 0 {
                return Err(Error::Value(format!("map_sizes: map `{map}` needs at least one entry")));
            }
            m.set_max_entries(*entries).map_err(Error::from)?;
        }
        for (map, path) in &opts.pins {
            let m = obj.maps().into_iter().find(|m| m.name() == *map).ok_or_else(|| Error::Value(format!("no map named `{map}` to pin")))?;
            m.set_pin_path(path).map_err(Error::from)?;
        }
        for prog in &opts.autoload_off {
            let p = obj.program(prog).ok_or_else(|| Error::Value(format!("no program named `{prog}`")))?;
            p.set_autoload(false).map_err(Error::from)?;
        }
        host::check_bpf_privileges()?;
        let (obj, _logs) = obj.load(opts.log_level, 4 << 20).map_err(load_error)?;
        // Map every BPF_F_MMAPABLE array now: the kernel inserts all its pages at mmap time, so
        // doing it at load keeps `to_numpy()` constant-time whatever the array's size.
        let mut mmaps = Vec::new();
        for m in obj.maps().iter().filter(|m| !m.is_internal()) {
            if MapType::from_raw(m.map_type()) == MapType::Array && m.map_flags() & F_MMAPABLE != 0 {
                mmaps.push((m.name(), Arc::new(MmapRegion::of_array(m.map_fd().map_err(Error::map)?.borrow(), m.value_size(), m.max_entries()).map_err(Error::map)?)));
            }
        }
        *this.write()? = Some(Loaded { mmaps, streams: Vec::new(), links: Vec::new(), obj });
        let this = Arc::new(this);
        link::register(&this);
        Ok(this)
    }

    /// `(name, section)` of every program in object file `data`, without loading it.
    pub fn list_programs(data: &[u8]) -> Result<Vec<(String, String)>> {
        let obj = sys::OpenObject::open_mem(data, "bpfkit_list", None).map_err(|f| Error::Load {
            program: None,
            errno: f.errno,
            message: f.message(),
            log: String::new(),
        })?;
        Ok(obj.programs().iter().map(|p| (p.name(), p.section())).collect())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Loaded>>> {
        self.state.read().map_err(|_| Error::poisoned("object"))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Option<Loaded>>> {
        self.state.write().map_err(|_| Error::poisoned("object"))
    }

    /// Runs `f` while the object is open (its fds cannot close meanwhile).
    pub(crate) fn while_open<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.with(|_| f())
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
        self.with(|l| Ok(l.obj.programs().iter().map(|p| (p.name(), p.section(), p.prog_type(), p.loaded_fd().map_or(-1, |fd| std::os::fd::AsRawFd::as_raw_fd(&fd)))).collect()))
    }

    /// The instructions of program `name` as loaded (CO-RE-relocated; see `sys::Program::insns`).
    pub fn program_insns(&self, name: &str) -> Result<Vec<u8>> {
        self.with(|l| {
            let progs = l.obj.programs();
            let p = progs.iter().find(|p| p.name() == name).ok_or_else(|| Error::Value(format!("no program named `{name}`")))?;
            Ok(p.insns())
        })
    }

    /// Every map, internal ones included.
    pub fn maps(&self) -> Result<Vec<MapInfo>> {
        self.with(|l| {
            l.obj
                .maps()
                .iter()
                .map(|m| {
                    Ok(MapInfo {
                    name: m.name(),
                    map_type: MapType::from_raw(m.map_type()),
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    max_entries: m.max_entries(),
                    flags: m.map_flags(),
                    key_type_id: m.btf_key_type_id(),
                    value_type_id: m.btf_value_type_id(),
                    internal: m.is_internal(),
                    handle: m.map_fd().map_err(Error::map)?,
                    })
                })
                .collect()
        })
    }

    /// A handle on the map called `name`.
    pub fn map(self: &Arc<Self>, name: &str) -> Result<MapHandle> {
        let maps = self.maps()?;
        match maps.into_iter().find(|m| m.name == name && !m.internal) {
            Some(info) => Ok(MapHandle::of_object(self.clone(), info)),
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
            let h = map.map_fd().map_err(Error::map)?;
            let mut val = vec![0u8; h.value_buf_size()];
            sys::map_lookup(&h, &0u32.to_le_bytes(), &mut val).map_err(Error::map)?;
            val.get(sv.offset as usize..(sv.offset + sv.size) as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::Internal(format!("global `{var}` lies outside its section")))
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
            let h = map.map_fd().map_err(Error::map)?;
            let mut val = vec![0u8; h.value_buf_size()];
            sys::map_lookup(&h, &0u32.to_le_bytes(), &mut val).map_err(Error::map)?;
            val.get_mut(sv.offset as usize..(sv.offset + sv.size) as usize)
                .ok_or_else(|| Error::Internal(format!("global `{var}` lies outside its section")))?
                .copy_from_slice(bytes);
            sys::map_update(&h, &0u32.to_le_bytes(), &val, 0).map_err(Error::map)
        })
    }

    fn push_link(links: &mut Vec<LinkRec>, program: &str, hook: Hook, link: sys::Link, event: Option<host::KprobeEvent>) -> u64 {
        let rec = LinkRec::new(program, hook, link, event);
        let id = rec.link.id;
        links.push(rec);
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
        if p.loaded_fd().is_none() {
            return Err(Error::Value(format!("program `{prog}` was not loaded")));
        }
        f(links, p)
    }

    /// Attaches program `prog` to tracepoint `category:name` (kernel 4.7).
    pub fn attach_tracepoint(&self, prog: &str, category: &str, name: &str) -> Result<u64> {
        host::tracing_dir()?;
        self.with_program(prog, |l, p| {
            let link = p.attach_tracepoint(category, name).map_err(|f| {
                let target = format!("{category}:{name}");
                match f.errno {
                    libc::ENOENT => Error::Attach {
                        errno: f.errno,
                        message: format!("{}: no tracepoint {target} in /sys/kernel/tracing/events", f.message()),
                        program: Some(prog.to_string()),
                        target: Some(target),
                    },
                    _ => Error::attach(f, prog, target),
                }
            })?;
            Ok(Self::push_link(l, prog, Hook::Tracepoint { category: category.into(), name: name.into() }, link, None))
        })
    }

    /// Attaches program `prog` to raw tracepoint `name` (kernel 4.17).
    pub fn attach_raw_tracepoint(&self, prog: &str, name: &str) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_raw_tracepoint(name).map_err(|f| Error::attach(f, prog, name))?;
            Ok(Self::push_link(l, prog, Hook::RawTracepoint { name: name.into() }, link, None))
        })
    }

    /// Attaches a kprobe or kretprobe (kernel 4.1). Fails with [`Error::NotSupported`] on a
    /// kernel without kprobes.
    ///
    /// `maxactive > 0` (kretprobes: how many returns can be pending at once) makes the probe
    /// through tracefs's `kprobe_events`, the one interface that takes it.
    pub fn attach_kprobe(&self, prog: &str, func: &str, offset: u64, retprobe: bool, maxactive: u32) -> Result<u64> {
        host::require_kprobes().map_err(|e| e.for_program(prog))?;
        let kind = if retprobe { "kretprobe" } else { "kprobe" };
        if maxactive > 0 && !retprobe {
            return Err(Error::Value("maxactive is for kretprobes (how many returns may be pending at once)".into()));
        }
        let hook = Hook::Kprobe { function: func.to_string(), offset, retprobe, maxactive };
        let target = hook.target();
        if maxactive > 0 {
            let ev = host::KprobeEvent::create(func, offset, retprobe, maxactive)?;
            let spec = sys::PerfEventSpec { ev_type: 2, config: ev.id, period: 1, pid: -1, cpu: 0, group_fd: -1, freq: false };
            let pfd = sys::perf_event_open(&spec).map_err(|f| Error::attach(f, prog, &target))?;
            return self.with_program(prog, |l, p| {
                let link = p
                    .attach_perf_event(pfd, &format!("{kind} {func} (maxactive {maxactive})"))
                    .map_err(|f| Error::attach(f, prog, &target))?;
                Ok(Self::push_link(l, prog, hook, link, Some(ev)))
            });
        }
        self.with_program(prog, |l, p| {
            let link = p.attach_kprobe(func, offset, retprobe).map_err(|f| Error::attach(f, prog, &target))?;
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// Attaches a kprobe or kretprobe to every function in `funcs` through one multi-kprobe
    /// link (kernel 5.18). `label` names the attachment (the pattern the functions came from).
    pub fn attach_kprobe_multi(&self, prog: &str, funcs: &[String], retprobe: bool, label: &str) -> Result<u64> {
        if funcs.is_empty() {
            return Err(Error::Value(format!("no kernel function matches `{label}`")));
        }
        self.with_program(prog, |l, p| {
            let link = p.attach_kprobe_multi(funcs, retprobe).map_err(|f| unsupported_link(f, &feature::KPROBE_MULTI, prog, label))?;
            let hook = Hook::KprobeMulti { pattern: label.to_string(), functions: funcs.len(), retprobe };
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// Attaches a uprobe (or uretprobe) at every file offset of `offsets` in `path` with one
    /// multi-uprobe link (kernel 6.6); `label` names the attachment.
    pub fn attach_uprobe_multi(&self, prog: &str, path: &str, offsets: &[u64], pid: i32, retprobe: bool, label: &str) -> Result<u64> {
        let file = FileId::of(path);
        self.with_program(prog, |l, p| {
            let target = format!("{path}:{label}");
            let link = p
                .attach_uprobe_multi(pid, path, offsets, retprobe)
                .map_err(|f| unsupported_link(f, &feature::UPROBE_MULTI, prog, &target))?;
            let hook = Hook::UprobeMulti { file, pattern: label.to_string(), offsets: offsets.to_vec(), pid, retprobe };
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// Attaches program `prog` to a perf event opened from `spec` (one CPU or one process;
    /// kernel 4.9).
    pub fn attach_perf_event(&self, prog: &str, spec: &sys::PerfEventSpec) -> Result<u64> {
        let hook = Hook::PerfEvent { ev_type: spec.ev_type, config: spec.config, pid: spec.pid, cpu: spec.cpu };
        let target = hook.target();
        let pfd = sys::perf_event_open(spec).map_err(|f| match f.errno {
            libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV => feature::PERF_EVENT_HW.refuse(
                format!(
                    "{}: this machine's PMU does not provide perf event type {} config {:#x} (a VM often has no hardware counters)",
                    f.message(),
                    spec.ev_type,
                    spec.config
                ),
                Some(prog),
            ),
            _ => Error::attach(f, prog, &target),
        })?;
        self.with_program(prog, |l, p| {
            let link = p.attach_perf_event(pfd, &format!("perf event {target}")).map_err(|f| Error::attach(f, prog, &target))?;
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// Attaches XDP program `prog` to interface `ifindex` (named `dev`) through a BPF link with
    /// `XDP_FLAGS_*` mode flags (kernel 5.9); the link goes when the object closes or the process
    /// dies.
    pub fn attach_xdp(&self, prog: &str, ifindex: i32, dev: &str, flags: u32) -> Result<u64> {
        self.with_program(prog, |l, p| {
            let link = p.attach_xdp(ifindex, flags).map_err(|f| {
                let hint = match f.errno {
                    libc::EBUSY | libc::EEXIST => "; the interface already has an XDP program (another process's, or one attached without a link)",
                    libc::EOPNOTSUPP => "; the driver does not support this XDP mode (try flags=BPF.XDP_FLAGS_SKB_MODE)",
                    _ => "",
                };
                Error::attach(Failure { errno: f.errno, context: format!("{} on {dev}{hint}", f.context) }, prog, dev)
            })?;
            Ok(Self::push_link(l, prog, Hook::Xdp { ifindex, dev: dev.to_string(), flags }, link, None))
        })
    }

    /// Attaches tc program `prog` to interface `ifindex` (named `dev`), ingress or egress:
    /// through a tcx link (6.6+) when `mode` is "tcx", through a clsact qdisc filter when
    /// "clsact", and "auto" tries tcx first. Returns the id and "tcx" or "clsact".
    pub fn attach_tc(&self, prog: &str, ifindex: i32, dev: &str, ingress: bool, mode: &str) -> Result<(u64, String)> {
        let target = format!("{dev}:{}", if ingress { "ingress" } else { "egress" });
        self.with_program(prog, |l, p| {
            let tcx = match mode {
                "tcx" | "auto" => p.attach_tcx(ifindex, ingress),
                "clsact" => Err(Failure { errno: libc::EOPNOTSUPP, context: String::new() }),
                _ => return Err(Error::Value(format!("tc mode must be 'auto', 'tcx' or 'clsact', not {mode:?}"))),
            };
            let clsact = |p: &sys::Program<'_>| p.attach_tc_clsact(ifindex, ingress).map_err(|f| Error::attach(f, prog, &target));
            let (link, is_tcx) = match tcx {
                Ok(link) => (link, true),
                // Kernels before 6.6 refuse the attach type: EINVAL (or EOPNOTSUPP).
                Err(f) if mode == "auto" && matches!(f.errno, libc::EINVAL | libc::EOPNOTSUPP) => (clsact(&p)?, false),
                Err(_) if mode == "clsact" => (clsact(&p)?, false),
                Err(f) => return Err(Error::attach(f, prog, &target)),
            };
            let hook = Hook::Tc { ifindex, dev: dev.to_string(), ingress, tcx: is_tcx };
            Ok((Self::push_link(l, prog, hook, link, None), if is_tcx { "tcx" } else { "clsact" }.to_string()))
        })
    }

    /// Attaches cgroup program `prog` to the cgroup v2 directory `path` (cgroup links: 5.7).
    pub fn attach_cgroup(&self, prog: &str, path: &str) -> Result<u64> {
        let dir = host::open_dir(path).map_err(|e| e.context(format!("opening cgroup {path}")))?;
        self.with_program(prog, |l, p| {
            let link = p.attach_cgroup(std::os::fd::AsFd::as_fd(&dir), path).map_err(|f| Error::attach(f, prog, path))?;
            Ok(Self::push_link(l, prog, Hook::Cgroup { path: path.to_string() }, link, None))
        })
    }

    /// Attaches program `prog` to the kernel object open at `target` (a cgroup directory, a
    /// sockmap, a network namespace) with `attach_type`, BCC's `attach_func`: through a BPF link
    /// where the kernel has one for the pair, else `BPF_PROG_ATTACH` with `flags`.
    pub fn attach_fd(&self, prog: &str, target: BorrowedFd<'_>, attach_type: AttachType, flags: u32) -> Result<u64> {
        let file = FileId::of_fd(target);
        let what = format!("{}:{attach_type}", file.path);
        self.with_program(prog, |l, p| {
            let (link, is_link) = p.attach_fd(target, &file.path, attach_type, flags).map_err(|mut f| {
                if f.errno == libc::EBADF && attach_type.name().starts_with("CGROUP_") {
                    f.context.push_str(" (not a directory of a cgroup v2 hierarchy)");
                }
                Error::attach(f, prog, &what)
            })?;
            Ok(Self::push_link(l, prog, Hook::Fd { target: file, attach_type, link: is_link }, link, None))
        })
    }

    /// Undoes [`attach_fd`](Self::attach_fd) of `prog` to the object open at `target` (the same
    /// object, by identity, whatever fd now names it). An attachment this object did not make is
    /// detached with `BPF_PROG_DETACH`, as BCC's `detach_func` does; returns how many links went.
    pub fn detach_fd(&self, prog: &str, target: BorrowedFd<'_>, attach_type: AttachType) -> Result<usize> {
        let file = FileId::of_fd(target);
        let ours = |k: &Link| {
            k.program == prog
                && matches!(&k.hook, Hook::Fd { target: t, attach_type: a, .. }
                    if *a == attach_type && t.dev == file.dev && t.ino == file.ino && t.dev != 0)
        };
        let ids: Vec<u64> = self.links()?.iter().filter(|k| ours(k)).map(|k| k.id).collect();
        if !ids.is_empty() {
            return self.detach_ids(&ids);
        }
        let what = format!("{}:{attach_type}", file.path);
        self.with_program(prog, |_, p| {
            let fd = p.loaded_fd().ok_or_else(|| Error::Value(format!("program `{prog}` was not loaded")))?;
            let said = || format!("detaching program `{prog}` from {} ({attach_type}): with BPF_PROG_DETACH, as this object holds no such attachment", file.path);
            sys::prog_detach(fd, target, attach_type, said).map_err(|f| Error::attach(f, prog, &what))?;
            Ok(1)
        })
    }

    /// Attaches program `prog` to USDT probe `provider:name` of `path` (all processes, or `pid`).
    pub fn attach_usdt(&self, prog: &str, pid: i32, path: &str, provider: &str, name: &str, cookie: u64) -> Result<u64> {
        let hook = Hook::Usdt { file: FileId::of(path), provider: provider.to_string(), name: name.to_string(), pid };
        let target = hook.target();
        self.with_program(prog, |l, p| {
            let link = p.attach_usdt(pid, path, provider, name, cookie).map_err(|f| {
                let hint = if f.errno == libc::ENOENT { format!("; {path} has no USDT probe {provider}:{name}") } else { String::new() };
                Error::attach(Failure { errno: f.errno, context: format!("{}{hint}", f.context) }, prog, &target)
            })?;
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// The fd of loaded program `prog` (valid while the object is open) and its type.
    pub fn program_fd(&self, prog: &str) -> Result<(i32, ProgType)> {
        self.with_program(prog, |_, p| {
            let fd = p.loaded_fd().ok_or_else(|| Error::Value(format!("program `{prog}` was not loaded")))?;
            Ok((std::os::fd::AsRawFd::as_raw_fd(&fd), ProgType::from_raw(p.prog_type())))
        })
    }

    /// The parsed section of program `prog`.
    pub fn section(&self, prog: &str) -> Result<Section> {
        self.with(|l| {
            l.obj.program(prog).map(|p| Section::parse(&p.section())).ok_or_else(|| Error::Value(format!("no program named `{prog}`")))
        })
    }

    /// Attaches a uprobe or uretprobe on `path` at `symbol`+`offset` (or file offset `offset`).
    /// `file_offset`, when the caller resolved the place, is recorded with the link.
    #[allow(clippy::too_many_arguments)] // the place, the process and the direction, each needed
    pub fn attach_uprobe(
        &self,
        prog: &str,
        path: &str,
        symbol: Option<&str>,
        offset: u64,
        file_offset: Option<u64>,
        pid: i32,
        retprobe: bool,
    ) -> Result<u64> {
        let file_offset = if symbol.is_none() { Some(offset) } else { file_offset };
        let hook = Hook::Uprobe { file: FileId::of(path), symbol: symbol.map(str::to_string), offset, file_offset, pid, retprobe };
        let target = hook.target();
        self.with_program(prog, |l, p| {
            let spec = sys::UprobeSpec { path, symbol, offset, pid, retprobe };
            let link = p.attach_uprobe(&spec).map_err(|f| Error::attach(f, prog, &target))?;
            Ok(Self::push_link(l, prog, hook, link, None))
        })
    }

    /// Gives the uprobe `ev`, opened before this object loaded ([`open_uprobe`]), to program
    /// `prog`: the same link, hook and target as [`BpfObject::attach_uprobe`] would make.
    pub fn attach_opened_uprobe(&self, prog: &str, ev: OpenedUprobe) -> Result<u64> {
        let target = ev.hook.target();
        self.with_program(prog, |l, p| {
            let link = p.attach_perf_event(ev.fd, &target).map_err(|f| Error::attach(f, prog, &target))?;
            Ok(Self::push_link(l, prog, ev.hook, link, None))
        })
    }

    /// Attaches every loaded program whose section names its hook, except those in `skip`.
    /// Returns the links made.
    pub fn autoattach(&self, skip: &[String]) -> Result<Vec<Link>> {
        let progs = self.programs()?;
        let mut done = Vec::new();
        for (name, _sec, _, fd) in progs {
            if fd < 0 || skip.contains(&name) {
                continue;
            }
            if let Some(link) = self.attach_section(&name)? {
                done.push(link);
            }
        }
        Ok(done)
    }

    /// Attaches program `name` where its section says; None when the section names no hook
    /// (a bare `SEC("kprobe")` is attached later, by name; XDP, tc and cgroup programs need an
    /// interface or a cgroup).
    pub fn attach_section(&self, name: &str) -> Result<Option<Link>> {
        let sec = self.section(name)?;
        if !sec.names_its_hook() {
            return Ok(None);
        }
        let target = sec.target.clone().unwrap_or_default();
        let id = match sec.kind {
            AttachKind::Tracepoint => {
                let Some((cat, tp)) = sec.tracepoint() else { return Ok(None) };
                self.attach_tracepoint(name, cat, tp)?
            }
            AttachKind::RawTracepoint => self.attach_raw_tracepoint(name, &target)?,
            AttachKind::Kprobe | AttachKind::Kretprobe => {
                let (func, offset) = sec
                    .kprobe_function()
                    .ok_or_else(|| Error::Value(format!("program `{name}`: bad offset in section {:?}", sec.raw)))?;
                self.attach_kprobe(name, func, offset, sec.kind == AttachKind::Kretprobe, 0)?
            }
            kind => {
                if kind.is_kprobe() {
                    if kind.is_multi() {
                        // Refused with NotSupported below, by the link's errno.
                    } else {
                        host::require_kprobes().map_err(|e| e.for_program(name))?;
                    }
                }
                self.with_program(name, |l, p| {
                    let link = p.attach_auto().map_err(|f| match kind.feature() {
                        Some(feat) if kind.is_multi() => unsupported_link(f, feat, name, &target),
                        _ => Error::attach(f, name, &target),
                    })?;
                    Ok(Self::push_link(l, name, Hook::Section { kind, target: target.clone() }, link, None))
                })?
            }
        };
        Ok(self.links()?.into_iter().find(|l| l.id == id))
    }

    /// Every attachment of this object.
    pub fn links(&self) -> Result<Vec<Link>> {
        self.with(|l| Ok(l.links.iter().map(|r| r.link.clone()).collect()))
    }

    /// Detaches attachments whose kind is `kind`, and whose target and program are `target`
    /// and `program` when given. Returns how many were detached.
    pub fn detach(&self, kind: &str, target: Option<&str>, program: Option<&str>) -> Result<usize> {
        self.detach_where(|r| {
            r.hook.kind() == kind && target.is_none_or(|t| r.hook.target() == t) && program.is_none_or(|p| r.program == p)
        })
    }

    /// Detaches the attachments with these ids; returns how many were detached.
    pub fn detach_ids(&self, ids: &[u64]) -> Result<usize> {
        self.detach_where(|r| ids.contains(&r.id))
    }

    fn detach_where(&self, pred: impl Fn(&Link) -> bool) -> Result<usize> {
        let gone = {
            let mut g = self.write()?;
            let l = g.as_mut().ok_or(Error::Closed)?;
            let (gone, kept): (Vec<LinkRec>, Vec<LinkRec>) = std::mem::take(&mut l.links).into_iter().partition(|r| pred(&r.link));
            l.links = kept;
            gone
        };
        // Detached outside the lock: the kernel may take a grace period per link.
        let n = gone.len();
        drop_links(gone);
        Ok(n)
    }

    /// The mapping of mmapable array `map`, made at load.
    pub(crate) fn mapped(&self, map: &str) -> Result<Option<Arc<MmapRegion>>> {
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
        let st = match MapType::from_raw(m.map_type()) {
            MapType::Ringbuf => EventStream::ring(map, m.map_fd().map_err(Error::map)?.raw(), guard)?,
            MapType::PerfEventArray => EventStream::perf(map, m.map_fd().map_err(Error::map)?.raw(), page_cnt, wakeup_events, guard)?,
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

/// A uprobe opened as a perf event of the `uprobe` PMU before the program that will run on it
/// is loaded: the kernel registers the probe at open, which can wait for an RCU grace period,
/// and opening it while the object loads hides that wait. Closed if never attached.
#[derive(Debug)]
pub struct OpenedUprobe {
    fd: std::os::fd::OwnedFd,
    hook: Hook,
}

impl OpenedUprobe {
    /// Where it is, as its link's target will read (`/lib/libc.so.6:getaddrinfo`).
    pub fn target(&self) -> String {
        self.hook.target()
    }
}

/// Opens a uprobe (a uretprobe with `retprobe`) at `file_offset` of `path` for `pid` (-1: every
/// process); `symbol` and `symbol_offset` name the place in the link's target, as
/// [`BpfObject::attach_uprobe`] does.
pub fn open_uprobe(path: &str, file_offset: u64, pid: i32, retprobe: bool, symbol: Option<&str>, symbol_offset: u64) -> Result<OpenedUprobe> {
    let hook = Hook::Uprobe {
        file: FileId::of(path),
        symbol: symbol.map(str::to_string),
        offset: if symbol.is_some() { symbol_offset } else { file_offset },
        file_offset: Some(file_offset),
        pid,
        retprobe,
    };
    let fd = sys::uprobe_event_open(path, file_offset, pid, retprobe).map_err(|f| {
        if f.errno == libc::ENOENT && !std::path::Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
            feature::UPROBES.refuse(f.message(), None)
        } else {
            Error::attach(f, "", hook.target())
        }
    })?;
    Ok(OpenedUprobe { fd, hook })
}
