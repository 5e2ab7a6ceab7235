//! Objects, programs and the maps libbpf owns: opening, configuring, loading and attaching.

#[allow(unused_imports)]
use super::*;
use std::os::fd::{AsRawFd, OwnedFd};

/// A loaded `bpf_object`. Closing it releases every program and map fd. It can only be made by
/// [`OpenObject::load`], so nothing that belongs before load (initial values of read-only data,
/// autoload) can be done to it by mistake: the open → loaded phases are types.
pub struct Object {
    ptr: NonNull<lb::bpf_object>,
}

/// An opened `bpf_object`, not loaded yet: globals and autoload are configured here, then
/// [`OpenObject::load`] turns it into an [`Object`]. Reading it (programs, maps, BTF) works as on
/// an [`Object`], through `Deref`.
pub struct OpenObject {
    obj: Object,
    /// The memfd holding the kernel BTF given for CO-RE, which libbpf reads at load.
    _core_btf: Option<OwnedFd>,
}

impl std::ops::Deref for OpenObject {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.obj
    }
}

// SAFETY: a bpf_object is plain heap data with no thread affinity; the core serialises access
// to it (an RwLock in `object.rs`), so moving or sharing the handle between threads is sound.
unsafe impl Send for Object {}
// SAFETY: as above; `&Object` methods only read libbpf state or issue fd-based syscalls.
unsafe impl Sync for Object {}

/// Why a load failed: the errno, the program that failed (if one did) and its verifier log.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// What failed and how.
    pub failure: Failure,
    /// The program the kernel refused, if the failure was a program's.
    pub program: Option<String>,
    /// That program's verifier log (empty when the kernel gave none).
    pub log: String,
}

/// Verifier log per program, when logs were requested for a successful load.
pub type ProgramLogs = Vec<(String, String)>;

impl OpenObject {
    /// Opens an ELF object held in memory. `name` becomes the object's name in the kernel.
    pub fn open_mem(data: &[u8], name: &str, core_btf: Option<&[u8]>) -> Result<OpenObject, Failure> {
        install_print_hook();
        let cname = cstring(name, "object name")?;
        // libbpf takes the BTF to relocate against as a path, which it reads at load: the bytes
        // go into a sealed memfd, whose /proc/self/fd path no other process can change. Without
        // a memfd, or a /proc of this process (not mounted, another pid namespace's), libbpf
        // reads the whole kernel BTF itself, as it would without a subset.
        let memfd = core_btf.and_then(|b| os::memfd_with("bpfkit-core-btf", b).ok());
        let path = memfd
            .as_ref()
            .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == core_btf.map_or(0, |b| b.len() as u64)))
            .map(|p| cstring(&p, "BTF path"))
            .transpose()?;
        // SAFETY: all-zero is a valid bpf_object_open_opts (NULL pointers, false, 0).
        let mut opts: lb::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::bpf_object_open_opts>() as _;
        opts.object_name = cname.as_ptr();
        if let Some(p) = &path {
            opts.btf_custom_path = p.as_ptr();
        }
        // SAFETY: data is valid for its length and libbpf copies what it keeps (the BTF path
        // included); opts, the name and the path outlive the call.
        let p = unsafe { lb::bpf_object__open_mem(data.as_ptr().cast(), data.len() as _, &opts) };
        let ptr = check_ptr(p, || format!("opening BPF object `{name}`"))?;
        Ok(OpenObject { obj: Object { ptr }, _core_btf: memfd })
    }
}

impl Object {

    /// The programs of the object, in ELF order.
    pub fn programs(&self) -> Vec<Program<'_>> {
        let mut out = Vec::new();
        let mut cur: *mut lb::bpf_program = ptr::null_mut();
        loop {
            // SAFETY: self.ptr is a live object; cur is NULL or a program of it.
            cur = unsafe { lb::bpf_object__next_program(self.ptr.as_ptr(), cur) };
            match NonNull::new(cur) {
                Some(p) => out.push(Program { ptr: p, _obj: PhantomData }),
                None => return out,
            }
        }
    }

    /// The program called `name`, if any.
    pub fn program(&self, name: &str) -> Option<Program<'_>> {
        self.programs().into_iter().find(|p| p.name() == name)
    }

    /// The maps of the object, internal ones (`.rodata`, `.data`, `.bss`) included.
    pub fn maps(&self) -> Vec<Map<'_>> {
        let mut out = Vec::new();
        let mut cur: *mut lb::bpf_map = ptr::null_mut();
        loop {
            // SAFETY: self.ptr is a live object; cur is NULL or a map of it.
            cur = unsafe { lb::bpf_object__next_map(self.ptr.as_ptr(), cur) };
            match NonNull::new(cur) {
                Some(p) => out.push(Map { ptr: p, _obj: PhantomData }),
                None => return out,
            }
        }
    }

}

impl OpenObject {
    /// Loads every autoloaded program and creates every map.
    ///
    /// Each program gets a log buffer; the kernel fills it only when the load fails (libbpf
    /// then retries at log level 1), unless `log_level > 0`, in which case every program's log
    /// is returned on success too.
    pub fn load(self, log_level: u32, log_size: usize) -> Result<(Object, ProgramLogs), LoadFailure> {
        let OpenObject { obj, _core_btf } = self;
        let logs = obj.load_in_place(log_level, log_size)?;
        Ok((obj, logs))
    }
}

impl Object {
    fn load_in_place(&self, log_level: u32, log_size: usize) -> Result<ProgramLogs, LoadFailure> {
        let progs: Vec<(NonNull<lb::bpf_program>, String)> =
            self.programs().iter().map(|p| (p.ptr, p.name())).collect();
        let mut bufs: Vec<Vec<u8>> = progs.iter().map(|_| vec![0u8; log_size]).collect();
        for ((p, _), buf) in progs.iter().zip(bufs.iter_mut()) {
            // SAFETY: buf stays alive (and unmoved: only the Vec header moves) until after
            // bpf_object__load returns and the buffers are detached below.
            unsafe {
                lb::bpf_program__set_log_buf(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len() as _);
                if log_level > 0 {
                    lb::bpf_program__set_log_level(p.as_ptr(), log_level);
                }
            }
        }
        // SAFETY: self.ptr is a live, not yet loaded object.
        let ret = unsafe { lb::bpf_object__load(self.ptr.as_ptr()) };
        let logs: Vec<(String, String)> = progs
            .iter()
            .zip(bufs.iter())
            .map(|((_, name), buf)| {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                (name.clone(), String::from_utf8_lossy(&buf[..end]).into_owned())
            })
            .collect();
        for (p, _) in &progs {
            // SAFETY: detaching the buffers before they are freed; a NULL buffer is allowed.
            unsafe { lb::bpf_program__set_log_buf(p.as_ptr(), ptr::null_mut(), 0) };
        }
        drop(bufs);
        match check(ret, || "loading BPF object".to_string()) {
            Ok(_) => Ok(if log_level > 0 { logs } else { Vec::new() }),
            Err(failure) => {
                // The program that failed is the one whose log the kernel wrote (libbpf stops
                // at the first failure); with logs on for all, it is the first without an fd.
                let failed = if log_level == 0 {
                    logs.into_iter().find(|(_, log)| !log.is_empty())
                } else {
                    let fds: Vec<i32> = self.programs().iter().map(|p| p.fd()).collect();
                    let autoload: Vec<bool> = self.programs().iter().map(|p| p.autoload()).collect();
                    logs.into_iter()
                        .zip(fds.into_iter().zip(autoload))
                        .find(|(_, (fd, auto))| *fd < 0 && *auto)
                        .map(|(l, _)| l)
                };
                // Without a verifier log, libbpf's own messages name the program ("prog 'x':
                // failed to ..."); failing that, an EPERM/EACCES (lockdown refusing the program
                // type) belongs to the first program that should have loaded and has no fd
                // (libbpf loads in order and stops). Anything else (a map that cannot be made,
                // BTF) is the object's, and blames no program.
                let failed = failed.or_else(|| program_named_in_messages().map(|p| (p, String::new()))).or_else(|| {
                    if !matches!(failure.errno, libc::EPERM | libc::EACCES) {
                        return None;
                    }
                    self.programs().iter().find(|p| p.autoload() && p.fd() < 0).map(|p| (p.name(), String::new()))
                });
                let (program, log) = match failed {
                    Some((name, log)) => (Some(name), log),
                    None => (None, String::new()),
                };
                Err(LoadFailure { failure, program, log })
            }
        }
    }

    /// The object's BTF in its raw form, if the object has BTF.
    pub fn btf_raw(&self) -> Option<Vec<u8>> {
        // SAFETY: self.ptr is live; the returned btf (if any) is owned by the object.
        let btf = unsafe { lb::bpf_object__btf(self.ptr.as_ptr()) };
        if btf.is_null() {
            return None;
        }
        let mut size: u32 = 0;
        // SAFETY: btf is live while the object is; raw_data points to `size` bytes it owns.
        let data = unsafe { lb::btf__raw_data(btf, &mut size) };
        if data.is_null() {
            return None;
        }
        // SAFETY: as above; the bytes are copied out before the object can change.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec())
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: we own the object; links into it were destroyed first by the owner
        // (`object.rs` drops links before the object), and no Program/Map borrow can outlive it.
        unsafe { lb::bpf_object__close(self.ptr.as_ptr()) };
    }
}

pub(super) fn cstr_or_empty(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libbpf returns NUL-terminated strings it owns; we copy them out at once.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A program of an [`Object`], borrowed from it.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    ptr: NonNull<lb::bpf_program>,
    _obj: PhantomData<&'a Object>,
}

/// Options for attaching a uprobe or uretprobe.
#[derive(Debug, Clone, Default)]
pub struct UprobeSpec<'s> {
    /// Absolute path of the binary or library.
    pub path: &'s str,
    /// Symbol to resolve in `path`; when set, `offset` is relative to it.
    pub symbol: Option<&'s str>,
    /// File offset, or offset from `symbol`.
    pub offset: u64,
    /// Process to trace, or -1 for every process.
    pub pid: i32,
    /// Probe the return instead of the entry.
    pub retprobe: bool,
}

impl<'a> Program<'a> {
    /// The program's name: its C function name.
    pub fn name(&self) -> String {
        // SAFETY: the program is live for 'a.
        cstr_or_empty(unsafe { lb::bpf_program__name(self.ptr.as_ptr()) })
    }

    /// The ELF section the program was in, e.g. `tracepoint/syscalls/sys_enter_openat`.
    pub fn section(&self) -> String {
        // SAFETY: the program is live for 'a.
        cstr_or_empty(unsafe { lb::bpf_program__section_name(self.ptr.as_ptr()) })
    }

    /// The program's fd once loaded, else a negative number.
    pub(super) fn fd(&self) -> i32 {
        // SAFETY: the program is live for 'a.
        unsafe { lb::bpf_program__fd(self.ptr.as_ptr()) }
    }

    /// The program's fd once loaded, borrowed for as long as the object lives.
    pub fn loaded_fd(&self) -> Option<std::os::fd::BorrowedFd<'a>> {
        borrow_object_fd(self.fd())
    }

    /// The kernel program type (`BPF_PROG_TYPE_*`).
    pub fn prog_type(&self) -> u32 {
        // SAFETY: the program is live for 'a.
        unsafe { lb::bpf_program__type(self.ptr.as_ptr()) }
    }

    /// The program's instructions as libbpf has them: after load, CO-RE-relocated, with
    /// subprograms appended and map fds in their `ld_imm64`s (8 bytes each, host byte order).
    pub fn insns(&self) -> Vec<u8> {
        // SAFETY: the program is live for 'a; libbpf returns a valid, non-NULL array of
        // insn_cnt instructions of 8 bytes each, which is copied before anything can change it.
        unsafe {
            let n = lb::bpf_program__insn_cnt(self.ptr.as_ptr()) as usize;
            let p = lb::bpf_program__insns(self.ptr.as_ptr());
            if p.is_null() || n == 0 {
                return Vec::new();
            }
            std::slice::from_raw_parts(p.cast::<u8>(), n * std::mem::size_of::<lb::bpf_insn>()).to_vec()
        }
    }

    /// Whether the program is loaded with the object.
    pub fn autoload(&self) -> bool {
        // SAFETY: the program is live for 'a.
        unsafe { lb::bpf_program__autoload(self.ptr.as_ptr()) }
    }

    /// Sets whether the program is loaded with the object (before load only).
    pub fn set_autoload(&self, on: bool) -> Result<(), Failure> {
        // SAFETY: the program is live for 'a.
        let ret = unsafe { lb::bpf_program__set_autoload(self.ptr.as_ptr(), on) };
        check(ret, || format!("setting autoload of program `{}`", self.name())).map(drop)
    }

    fn link(&self, p: *mut lb::bpf_link, what: impl FnOnce() -> String) -> Result<Link, Failure> {
        check_ptr(p, what).map(|ptr| Link { inner: LinkInner::Libbpf(ptr) })
    }

    /// Attaches the program where its section name says (libbpf's auto-attach).
    pub fn attach_auto(&self) -> Result<Link, Failure> {
        // SAFETY: the program is live and loaded (libbpf checks and fails otherwise).
        let p = unsafe { lb::bpf_program__attach(self.ptr.as_ptr()) };
        self.link(p, || format!("attaching program `{}` ({})", self.name(), self.section()))
    }

    /// Attaches to the tracepoint `category:name`.
    pub fn attach_tracepoint(&self, category: &str, name: &str) -> Result<Link, Failure> {
        let c = cstring(category, "tracepoint category")?;
        let n = cstring(name, "tracepoint name")?;
        // SAFETY: the program is live; the strings outlive the call.
        let p = unsafe { lb::bpf_program__attach_tracepoint(self.ptr.as_ptr(), c.as_ptr(), n.as_ptr()) };
        self.link(p, || format!("attaching program `{}` to tracepoint {category}:{name}", self.name()))
    }

    /// Attaches to the raw tracepoint `name`.
    pub fn attach_raw_tracepoint(&self, name: &str) -> Result<Link, Failure> {
        let n = cstring(name, "raw tracepoint name")?;
        // SAFETY: the program is live; the string outlives the call.
        let p = unsafe { lb::bpf_program__attach_raw_tracepoint(self.ptr.as_ptr(), n.as_ptr()) };
        self.link(p, || format!("attaching program `{}` to raw tracepoint {name}", self.name()))
    }

    /// Attaches a kprobe (or kretprobe) to kernel function `func` at `offset`.
    pub fn attach_kprobe(&self, func: &str, offset: u64, retprobe: bool) -> Result<Link, Failure> {
        let f = cstring(func, "kernel function name")?;
        // SAFETY: all-zero is a valid bpf_kprobe_opts.
        let mut opts: lb::bpf_kprobe_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::bpf_kprobe_opts>() as _;
        opts.offset = offset as _;
        opts.retprobe = retprobe;
        // SAFETY: the program is live; the string and opts outlive the call.
        let p = unsafe { lb::bpf_program__attach_kprobe_opts(self.ptr.as_ptr(), f.as_ptr(), &opts) };
        let kind = if retprobe { "kretprobe" } else { "kprobe" };
        self.link(p, || format!("attaching program `{}` as {kind} on {func}+{offset}", self.name()))
    }

    /// Attaches a uprobe (or uretprobe).
    pub fn attach_uprobe(&self, spec: &UprobeSpec<'_>) -> Result<Link, Failure> {
        let path = cstring(spec.path, "binary path")?;
        let sym = spec.symbol.map(|s| cstring(s, "symbol")).transpose()?;
        // SAFETY: all-zero is a valid bpf_uprobe_opts.
        let mut opts: lb::bpf_uprobe_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::bpf_uprobe_opts>() as _;
        opts.retprobe = spec.retprobe;
        opts.func_name = sym.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        // SAFETY: the program is live; path, sym and opts outlive the call.
        let p = unsafe {
            lb::bpf_program__attach_uprobe_opts(self.ptr.as_ptr(), spec.pid, path.as_ptr(), spec.offset as _, &opts)
        };
        let kind = if spec.retprobe { "uretprobe" } else { "uprobe" };
        self.link(p, || {
            let at = match spec.symbol {
                Some(s) if spec.offset != 0 => format!("{s}+{:#x}", spec.offset),
                Some(s) => s.to_string(),
                None => format!("{:#x}", spec.offset),
            };
            format!("attaching program `{}` as {kind} on {}:{at}", self.name(), spec.path)
        })
    }

    /// Attaches a kprobe (or kretprobe) to every kernel function in `syms` through one
    /// multi-kprobe link (`BPF_TRACE_KPROBE_MULTI`, kernels with CONFIG_FPROBE, 5.18+).
    pub fn attach_kprobe_multi(&self, syms: &[String], retprobe: bool) -> Result<Link, Failure> {
        let cs: Vec<CString> = syms.iter().map(|s| cstring(s, "kernel function name")).collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const c_char> = cs.iter().map(|c| c.as_ptr()).collect();
        let opts = lb::bpf_kprobe_multi_opts {
            sz: std::mem::size_of::<lb::bpf_kprobe_multi_opts>() as _,
            syms: ptrs.as_mut_ptr(),
            cnt: ptrs.len() as _,
            retprobe,
            ..Default::default()
        };
        // SAFETY: the program is live; the names, the pointer array and opts outlive the call.
        let p = unsafe { lb::bpf_program__attach_kprobe_multi_opts(self.ptr.as_ptr(), ptr::null(), &opts) };
        let kind = if retprobe { "kretprobe.multi" } else { "kprobe.multi" };
        self.link(p, || format!("attaching program `{}` as {kind} on {} functions", self.name(), syms.len()))
    }

    /// Attaches a uprobe (or uretprobe) at every file offset of `offsets` in `path` through one
    /// multi-uprobe link (`BPF_TRACE_UPROBE_MULTI`, 6.6+; the program must be `uprobe.multi`).
    pub fn attach_uprobe_multi(&self, pid: i32, path: &str, offsets: &[u64], retprobe: bool) -> Result<Link, Failure> {
        let cpath = cstring(path, "binary path")?;
        let offs: Vec<libc::c_ulong> = offsets.iter().map(|&o| o as libc::c_ulong).collect();
        let opts = lb::bpf_uprobe_multi_opts {
            sz: std::mem::size_of::<lb::bpf_uprobe_multi_opts>() as _,
            offsets: offs.as_ptr(),
            cnt: offs.len() as _,
            retprobe,
            ..Default::default()
        };
        // SAFETY: the program is live; the path, the offsets and opts outlive the call.
        let p = unsafe { lb::bpf_program__attach_uprobe_multi(self.ptr.as_ptr(), pid, cpath.as_ptr(), ptr::null(), &opts) };
        let kind = if retprobe { "uretprobe.multi" } else { "uprobe.multi" };
        self.link(p, || format!("attaching program `{}` as {kind} on {} offsets of {path}", self.name(), offsets.len()))
    }

    /// Attaches to an open perf event. The link owns `pfd` from then on (closing it on drop);
    /// on failure `pfd` is closed here.
    pub fn attach_perf_event(&self, pfd: std::os::fd::OwnedFd, what: &str) -> Result<Link, Failure> {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&pfd);
        // SAFETY: the program is live; raw is an open perf event fd.
        let p = unsafe { lb::bpf_program__attach_perf_event(self.ptr.as_ptr(), raw) };
        let link = self.link(p, || format!("attaching program `{}` to {what}", self.name()))?;
        // The link closes the perf event fd when destroyed.
        std::mem::forget(pfd);
        Ok(link)
    }

    /// Attaches an XDP program to interface `ifindex` through a BPF link, with `XDP_FLAGS_*`
    /// mode flags (SKB, DRV, HW; 0 lets the kernel choose).
    pub fn attach_xdp(&self, ifindex: i32, flags: u32) -> Result<Link, Failure> {
        let opts = lb::bpf_link_create_opts {
            sz: std::mem::size_of::<lb::bpf_link_create_opts>() as _,
            flags,
            ..Default::default()
        };
        // SAFETY: opts is valid for the call; the fds are plain integers.
        let ret = unsafe { lb::bpf_link_create(self.fd(), ifindex, lb::BPF_XDP, &opts) };
        let fd = check(ret, || format!("attaching XDP program `{}` to interface {ifindex} (flags {flags:#x})", self.name()))?;
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(Link { inner: LinkInner::Fd(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }) })
    }

    /// Attaches the program to the kernel object open at `target` (a cgroup directory, a
    /// sockmap, a network namespace, ...) with attach type `attach_type`, as BCC's `attach_func`
    /// does. A BPF link (`BPF_LINK_CREATE`) is tried first, so that the attachment goes with the
    /// process however it ends; where the kernel has no link for the pair (sockmaps before 6.10,
    /// cgroups before 5.7, ...) it falls back to `BPF_PROG_ATTACH` with `flags`, undone with
    /// `BPF_PROG_DETACH` when the returned link is dropped. The second value says which. `name`
    /// names the target in errors.
    pub fn attach_fd(&self, target: std::os::fd::BorrowedFd<'_>, name: &str, attach_type: types::AttachType, flags: u32) -> Result<(Link, bool), Failure> {
        let what = || format!("attaching program `{}` to {name} as {attach_type}", self.name());
        let opts = lb::bpf_link_create_opts { sz: std::mem::size_of::<lb::bpf_link_create_opts>() as _, ..Default::default() };
        // SAFETY: opts is valid for the call; the fds are open for its duration.
        let ret = unsafe { lb::bpf_link_create(self.fd(), target.as_raw_fd(), attach_type.raw(), &opts) };
        if ret >= 0 {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            return Ok((Link { inner: LinkInner::Fd(unsafe { std::os::fd::FromRawFd::from_raw_fd(ret) }) }, true));
        }
        // No link for this attach type or target on this kernel: EINVAL (unknown pairing) or
        // EOPNOTSUPP/ENOTSUPP; anything else (EPERM, EBUSY, EBADF) is the answer.
        if ![-libc::EINVAL, -libc::EOPNOTSUPP, -types::ENOTSUPP].contains(&ret) {
            check(ret, what)?;
        }
        // Both fds are kept (duplicated) for the detach, which names the program and target.
        let dup = |fd: Option<std::os::fd::BorrowedFd<'_>>| {
            fd.ok_or(libc::EBADF)
                .and_then(|fd| fd.try_clone_to_owned().map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF)))
                .map_err(|errno| Failure { errno, context: what() })
        };
        let prog = dup(self.loaded_fd())?;
        let target = dup(Some(target))?;
        // SAFETY: the fds are open for the call.
        let ret = unsafe { lb::bpf_prog_attach(prog.as_raw_fd(), target.as_raw_fd(), attach_type.raw(), flags) };
        check(ret, what)?;
        Ok((Link { inner: LinkInner::ProgAttach { prog, target, attach_type: attach_type.raw() } }, false))
    }

    /// Attaches a tc program to interface `ifindex` through a tcx link (6.6+). The link is made
    /// with `BPF_LINK_CREATE` directly: the direction is chosen here, at attach time, whatever
    /// attach type the program was loaded with.
    pub fn attach_tcx(&self, ifindex: i32, ingress: bool) -> Result<Link, Failure> {
        let at = if ingress { lb::BPF_TCX_INGRESS } else { lb::BPF_TCX_EGRESS };
        let opts = lb::bpf_link_create_opts { sz: std::mem::size_of::<lb::bpf_link_create_opts>() as _, ..Default::default() };
        // SAFETY: opts is valid for the call; the fds are plain integers.
        let ret = unsafe { lb::bpf_link_create(self.fd(), ifindex, at, &opts) };
        let dir = if ingress { "ingress" } else { "egress" };
        let fd = check(ret, || format!("attaching tc program `{}` to interface {ifindex} {dir} (tcx)", self.name()))?;
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(Link { inner: LinkInner::Fd(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }) })
    }

    /// Attaches a tc program as a direct-action filter in a clsact qdisc (the way before tcx),
    /// creating the qdisc if the interface has none.
    pub fn attach_tc_clsact(&self, ifindex: i32, ingress: bool) -> Result<Link, Failure> {
        let dir = if ingress { "ingress" } else { "egress" };
        let mut hook = tc_hook(ifindex, ingress);
        // SAFETY: hook is valid for the call.
        // Held throughout: serialised with the filters' release (see `Drop for Link`).
        let mut table = clsact_table();
        let ret = unsafe { lb::bpf_tc_hook_create(&mut hook) };
        let created_qdisc = match ret {
            0 => true,
            r if r == -libc::EEXIST => false,
            r => {
                check(r, || format!("creating a clsact qdisc on interface {ifindex}"))?;
                false
            }
        };
        let mut opts = lb::bpf_tc_opts {
            sz: std::mem::size_of::<lb::bpf_tc_opts>() as _,
            prog_fd: self.fd(),
            ..Default::default()
        };
        // SAFETY: hook and opts are valid for the call.
        let ret = unsafe { lb::bpf_tc_attach(&hook, &mut opts) };
        if let Err(f) = check(ret, || format!("attaching tc program `{}` to interface {ifindex} {dir} (clsact)", self.name())) {
            if created_qdisc {
                let mut both = hook;
                both.attach_point = lb::BPF_TC_INGRESS | lb::BPF_TC_EGRESS;
                // SAFETY: as above.
                unsafe { lb::bpf_tc_hook_destroy(&mut both) };
            }
            return Err(f);
        }
        clsact_acquire(&mut table, ifindex, created_qdisc);
        Ok(Link { inner: LinkInner::Tc { ifindex, ingress, handle: opts.handle, priority: opts.priority } })
    }

    /// Attaches a cgroup program (its section names the attach type) to the cgroup open at
    /// `cgroup_fd`, through a BPF link.
    pub fn attach_cgroup(&self, cgroup_fd: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<Link, Failure> {
        // SAFETY: the program is live; cgroup_fd is an open directory fd (the kernel checks).
        let p = unsafe { lb::bpf_program__attach_cgroup(self.ptr.as_ptr(), std::os::fd::AsRawFd::as_raw_fd(&cgroup_fd)) };
        self.link(p, || format!("attaching program `{}` ({}) to cgroup {what}", self.name(), self.section()))
    }

    /// Attaches to the USDT probe `provider:name` in `path` (libbpf's USDT support: the
    /// program reads arguments with `bpf_usdt_arg()`).
    pub fn attach_usdt(&self, pid: i32, path: &str, provider: &str, name: &str, cookie: u64) -> Result<Link, Failure> {
        let cpath = cstring(path, "binary path")?;
        let cprov = cstring(provider, "USDT provider")?;
        let cname = cstring(name, "USDT name")?;
        let opts = lb::bpf_usdt_opts { sz: std::mem::size_of::<lb::bpf_usdt_opts>() as _, usdt_cookie: cookie };
        // SAFETY: the program is live; the strings and opts outlive the call.
        let p = unsafe {
            lb::bpf_program__attach_usdt(self.ptr.as_ptr(), pid, cpath.as_ptr(), cprov.as_ptr(), cname.as_ptr(), &opts)
        };
        self.link(p, || format!("attaching program `{}` to USDT probe {provider}:{name} in {path}", self.name()))
    }
}

/// A map of an [`Object`], borrowed from it.
#[derive(Clone, Copy)]
pub struct Map<'a> {
    ptr: NonNull<lb::bpf_map>,
    _obj: PhantomData<&'a Object>,
}

impl<'a> Map<'a> {
    /// The map's name (internal maps are named like `<obj>.rodata`).
    pub fn name(&self) -> String {
        // SAFETY: the map is live for 'a.
        cstr_or_empty(unsafe { lb::bpf_map__name(self.ptr.as_ptr()) })
    }
    /// The map's fd once created, else negative.
    pub(super) fn fd(&self) -> i32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__fd(self.ptr.as_ptr()) }
    }
    /// The map's fd once created, borrowed for as long as the object lives.
    pub fn loaded_fd(&self) -> Option<std::os::fd::BorrowedFd<'a>> {
        borrow_object_fd(self.fd())
    }
    /// `BPF_MAP_TYPE_*`.
    pub fn map_type(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__type(self.ptr.as_ptr()) }
    }
    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__key_size(self.ptr.as_ptr()) }
    }
    /// Value size in bytes (per CPU, for per-CPU maps).
    pub fn value_size(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__value_size(self.ptr.as_ptr()) }
    }
    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__max_entries(self.ptr.as_ptr()) }
    }
    /// `BPF_F_*` creation flags.
    pub fn map_flags(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__map_flags(self.ptr.as_ptr()) }
    }
    /// BTF type id of the key in the object's BTF (0 when unknown).
    pub fn btf_key_type_id(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__btf_key_type_id(self.ptr.as_ptr()) }
    }
    /// BTF type id of the value in the object's BTF (0 when unknown).
    pub fn btf_value_type_id(&self) -> u32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__btf_value_type_id(self.ptr.as_ptr()) }
    }
    /// Whether libbpf made this map for a data section (`.rodata`, `.data`, `.bss`, `.kconfig`).
    pub fn is_internal(&self) -> bool {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__is_internal(self.ptr.as_ptr()) }
    }

    fn initial_value_ptr(&self) -> Option<(NonNull<u8>, usize)> {
        let mut size: usize = 0;
        // SAFETY: the map is live; libbpf returns its own buffer (or the mmap'd map) and size.
        let p = unsafe { lb::bpf_map__initial_value(self.ptr.as_ptr(), (&mut size as *mut usize).cast()) };
        NonNull::new(p.cast::<u8>()).map(|p| (p, size))
    }

    /// Copies `len` bytes at `offset` of a data-section map's contents: libbpf's staging copy
    /// before load, the live memory-mapped map after. `None` when the memory is not mapped.
    pub fn read_data(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        let (p, size) = self.initial_value_ptr()?;
        if offset.checked_add(len)? > size {
            return None;
        }
        let mut out = vec![0u8; len];
        // SAFETY: [offset, offset+len) lies within the `size` bytes libbpf reported; the copy goes
        // through raw pointers, as the kernel may write the mapping concurrently.
        unsafe { ptr::copy_nonoverlapping(p.as_ptr().add(offset), out.as_mut_ptr(), len) };
        Some(out)
    }

    /// Sets how many entries the map holds (before load only): a tool's option sizes its maps
    /// without recompiling its C.
    pub fn set_max_entries(&self, entries: u32) -> Result<(), Failure> {
        // SAFETY: the map is live for 'a; libbpf refuses a loaded map (EBUSY).
        let ret = unsafe { lb::bpf_map__set_max_entries(self.ptr.as_ptr(), entries) };
        check(ret, || format!("setting map `{}` to {entries} entries", self.name())).map(drop)
    }

    /// Pins the map at `path` when the object loads, or, if a compatible map is pinned there
    /// already, uses that one instead of creating it (before load only).
    pub fn set_pin_path(&self, path: &str) -> Result<(), Failure> {
        let c = cstring(path, "pin path")?;
        // SAFETY: the map is live for 'a; libbpf copies the path.
        let ret = unsafe { lb::bpf_map__set_pin_path(self.ptr.as_ptr(), c.as_ptr()) };
        check(ret, || format!("setting the pin path of map `{}` to {path}", self.name())).map(drop)
    }

    /// Writes bytes at `offset` of a data-section map's contents (see [`Map::read_data`]).
    /// Returns false when the memory is not writable here: after load, a read-only map
    /// (`.rodata`, `BPF_F_RDONLY_PROG`) is mapped read-only, so it is refused, never written.
    pub fn write_data(&self, offset: usize, bytes: &[u8]) -> bool {
        if self.fd() >= 0 && self.map_flags() & lb::BPF_F_RDONLY_PROG != 0 {
            return false;
        }
        let Some((p, size)) = self.initial_value_ptr() else { return false };
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= size => {
                // SAFETY: in bounds as checked; writable: before load it is libbpf's heap copy,
                // after load a map without BPF_F_RDONLY_PROG, which libbpf maps read-write.
                unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(offset), bytes.len()) };
                true
            }
            _ => false,
        }
    }
}

/// A program's or map's fd (negative: not loaded) borrowed for `'a`, the borrow of its object.
fn borrow_object_fd<'a>(fd: i32) -> Option<std::os::fd::BorrowedFd<'a>> {
    // SAFETY: libbpf owns the fd and closes it only when the object closes, which the borrow of
    // the object ('a) outlives.
    (fd >= 0).then(|| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}
