//! The FFI funnel: the only module that names `libbpf_sys`.
//!
//! Every libbpf call goes through one of two funnels, [`check`] for calls that return a negative
//! errno and [`check_ptr`] for calls that return a pointer (NULL with `errno` set), each adding
//! what was being done ("loading program `count_opens`"). Above this module the core is safe
//! Rust: owned handles ([`Object`], [`Link`], [`Btf`], [`RingBuffer`]) free themselves on drop,
//! and borrowed handles ([`Program`], [`Map`]) cannot outlive the object they belong to.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::Once;

use libbpf_sys as lb;

/// A failed libbpf call: the errno and what was being attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Positive errno (libbpf's own codes, 4000 and up, included).
    pub errno: i32,
    /// What bpfkit was doing, e.g. "attaching program `count_opens`".
    pub context: String,
}

impl Failure {
    /// `"<context>: <strerror> (<ERRNO>)"`.
    pub fn message(&self) -> String {
        format!("{}: {} ({})", self.context, strerror(self.errno), crate::error::errno_name(self.errno))
    }
}

/// Funnel for calls returning a negative errno on failure.
fn check(ret: c_int, context: impl FnOnce() -> String) -> Result<c_int, Failure> {
    if ret < 0 {
        Err(Failure { errno: -ret, context: context() })
    } else {
        Ok(ret)
    }
}

/// Funnel for calls returning NULL (with `errno` set) on failure.
fn check_ptr<T>(p: *mut T, context: impl FnOnce() -> String) -> Result<NonNull<T>, Failure> {
    NonNull::new(p).ok_or_else(|| Failure { errno: last_errno(), context: context() })
}

fn last_errno() -> i32 {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(0) | None => libc::EINVAL,
        Some(e) => e,
    }
}

fn cstring(s: &str, what: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure { errno: libc::EINVAL, context: format!("{what} `{s}` contains a NUL byte") })
}

/// libbpf's text for an errno, including its own LIBBPF_ERRNO__* codes.
pub fn strerror(errno: i32) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: libbpf_strerror writes at most `buf.len()` bytes, NUL-terminated, into `buf`.
    let ret = unsafe { lb::libbpf_strerror(errno, buf.as_mut_ptr(), buf.len() as _) };
    if ret < 0 {
        return crate::error::strerror(errno);
    }
    // SAFETY: libbpf_strerror NUL-terminates within the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

// ------------------------------------------------------------------------------------------
// libbpf's log output

/// Severity of a libbpf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something failed or looks wrong.
    Warn,
    /// Informational.
    Info,
    /// Verbose detail.
    Debug,
}

/// Messages kept per thread until the bindings drain them; older ones are dropped past this.
const MAX_PENDING_MESSAGES: usize = 512;

thread_local! {
    static MESSAGES: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
}

extern "C" {
    // Declared with libbpf-sys's own va_list type so the argument passes straight through.
    fn vsnprintf(s: *mut c_char, n: usize, format: *const c_char, ap: *mut lb::__va_list_tag) -> c_int;
}

/// Formats a printf-style call into a String, truncating very long messages.
///
/// # Safety
/// `fmt` and `ap` must be a valid format string and matching argument list.
unsafe fn format_va(fmt: *const c_char, ap: *mut lb::__va_list_tag) -> String {
    let mut buf = vec![0u8; 8192];
    // SAFETY: buf is writable for its length; fmt/ap come from libbpf (caller's contract).
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, ap) };
    if n < 0 {
        return String::new();
    }
    let n = (n as usize).min(buf.len() - 1);
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

unsafe extern "C" fn print_hook(level: lb::libbpf_print_level, fmt: *const c_char, ap: *mut lb::__va_list_tag) -> c_int {
    // A panic must not unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libbpf hands us its own format string and argument list.
        let msg = unsafe { format_va(fmt, ap) };
        let level = match level {
            lb::LIBBPF_WARN => LogLevel::Warn,
            lb::LIBBPF_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let msg = msg.trim_end_matches('\n').to_string();
        if msg.is_empty() {
            return;
        }
        MESSAGES.with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                if m.len() >= MAX_PENDING_MESSAGES {
                    m.remove(0);
                }
                m.push((level, msg));
            }
        });
    }));
    0
}

/// Routes libbpf's messages into a per-thread queue instead of stderr. Idempotent.
pub fn install_print_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: print_hook has the signature libbpf expects and never unwinds.
        unsafe { lb::libbpf_set_print(Some(print_hook)) };
    });
}

/// The libbpf messages this thread has produced and not yet handed on, left in place.
fn peek_messages() -> Vec<String> {
    MESSAGES.with(|m| m.try_borrow().map(|m| m.iter().map(|(_, s)| s.clone()).collect()).unwrap_or_default())
}

/// The program libbpf's messages name in their last "prog 'NAME': failed ..." line.
fn program_named_in_messages() -> Option<String> {
    peek_messages().iter().rev().find_map(|line| {
        let rest = &line[line.find("prog '")? + 6..];
        let end = rest.find("': ")?;
        rest[end + 3..].contains("fail").then(|| rest[..end].to_string())
    })
}

/// Takes the libbpf messages this thread has produced since the last call.
pub fn take_messages() -> Vec<(LogLevel, String)> {
    MESSAGES.with(|m| m.try_borrow_mut().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default())
}

// ------------------------------------------------------------------------------------------
// Objects, programs, maps

/// An opened (and later loaded) `bpf_object`. Closing it releases every program and map fd.
pub struct Object {
    ptr: NonNull<lb::bpf_object>,
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

impl Object {
    /// Opens an ELF object held in memory. `name` becomes the object's name in the kernel.
    pub fn open_mem(data: &[u8], name: &str) -> Result<Object, Failure> {
        install_print_hook();
        let cname = cstring(name, "object name")?;
        // SAFETY: all-zero is a valid bpf_object_open_opts (NULL pointers, false, 0).
        let mut opts: lb::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::bpf_object_open_opts>() as _;
        opts.object_name = cname.as_ptr();
        // SAFETY: data is valid for its length and libbpf copies what it keeps; opts and the
        // name outlive the call.
        let p = unsafe { lb::bpf_object__open_mem(data.as_ptr().cast(), data.len() as _, &opts) };
        let ptr = check_ptr(p, || format!("opening BPF object `{name}`"))?;
        Ok(Object { ptr })
    }

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

    /// Loads every autoloaded program and creates every map.
    ///
    /// Each program gets a log buffer; the kernel fills it only when the load fails (libbpf
    /// then retries at log level 1), unless `log_level > 0`, in which case every program's log
    /// is returned on success too.
    pub fn load(&mut self, log_level: u32, log_size: usize) -> Result<ProgramLogs, LoadFailure> {
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

fn cstr_or_empty(p: *const c_char) -> String {
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
    pub fn fd(&self) -> i32 {
        // SAFETY: the program is live for 'a.
        unsafe { lb::bpf_program__fd(self.ptr.as_ptr()) }
    }

    /// The kernel program type (`BPF_PROG_TYPE_*`).
    pub fn prog_type(&self) -> u32 {
        // SAFETY: the program is live for 'a.
        unsafe { lb::bpf_program__type(self.ptr.as_ptr()) }
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
    pub fn attach_cgroup(&self, cgroup_fd: i32, what: &str) -> Result<Link, Failure> {
        // SAFETY: the program is live; cgroup_fd is an open directory fd (the kernel checks).
        let p = unsafe { lb::bpf_program__attach_cgroup(self.ptr.as_ptr(), cgroup_fd) };
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
    pub fn fd(&self) -> i32 {
        // SAFETY: the map is live for 'a.
        unsafe { lb::bpf_map__fd(self.ptr.as_ptr()) }
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

    /// Writes bytes at `offset` of a data-section map's contents (see [`Map::read_data`]).
    /// Returns false when the memory is not mapped writable here. The caller must not write a
    /// read-only (`.rodata`) map after load: its mapping is then read-only.
    pub fn write_data(&self, offset: usize, bytes: &[u8]) -> bool {
        let Some((p, size)) = self.initial_value_ptr() else { return false };
        match offset.checked_add(bytes.len()) {
            Some(end) if end <= size => {
                // SAFETY: in bounds as checked; writable: before load it is libbpf's heap copy,
                // after load callers only write maps mapped read-write.
                unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(offset), bytes.len()) };
                true
            }
            _ => false,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Links

/// An attachment. Dropping it detaches the program.
pub struct Link {
    inner: LinkInner,
}

enum LinkInner {
    /// A libbpf link (BPF link, or a perf event for perf-based attachments).
    Libbpf(NonNull<lb::bpf_link>),
    /// A BPF link fd made with `BPF_LINK_CREATE` (XDP with mode flags): closing it detaches.
    Fd(std::os::fd::OwnedFd),
    /// A filter in a clsact qdisc (kernels without tcx): detached on drop, and the qdisc
    /// removed with the last of this process's filters in it, if this process created it.
    Tc { ifindex: i32, ingress: bool, handle: u32, priority: u32 },
}

/// The clsact qdiscs this process's tc filters sit in: ifindex -> (whether this process created
/// the qdisc, how many of its filters are in it). The qdisc goes with the last filter, and only
/// if it was ours, so detaching one direction never takes the other's filter with it.
static CLSACT: std::sync::Mutex<Vec<(i32, bool, usize)>> = std::sync::Mutex::new(Vec::new());

type ClsactTable = std::sync::MutexGuard<'static, Vec<(i32, bool, usize)>>;

fn clsact_table() -> ClsactTable {
    CLSACT.lock().unwrap_or_else(|e| e.into_inner())
}

fn clsact_acquire(table: &mut ClsactTable, ifindex: i32, created: bool) {
    match table.iter_mut().find(|e| e.0 == ifindex) {
        Some(e) => e.2 += 1,
        None => table.push((ifindex, created, 1)),
    }
}

/// Drops one filter's hold; true when it was the last and this process created the qdisc.
fn clsact_release(table: &mut ClsactTable, ifindex: i32) -> bool {
    let Some(i) = table.iter().position(|e| e.0 == ifindex) else { return false };
    table[i].2 -= 1;
    if table[i].2 > 0 {
        return false;
    }
    table.swap_remove(i).1
}

// SAFETY: a bpf_link is heap data plus an fd, with no thread affinity.
unsafe impl Send for Link {}
// SAFETY: `&Link` only reads the fd.
unsafe impl Sync for Link {}

impl Link {
    /// The link's fd (a perf event fd for perf-based links on old kernels; -1 for a tc filter).
    pub fn fd(&self) -> i32 {
        match &self.inner {
            // SAFETY: the link is live.
            LinkInner::Libbpf(p) => unsafe { lb::bpf_link__fd(p.as_ptr()) },
            LinkInner::Fd(fd) => std::os::fd::AsRawFd::as_raw_fd(fd),
            LinkInner::Tc { .. } => -1,
        }
    }
}

fn tc_hook(ifindex: i32, ingress: bool) -> lb::bpf_tc_hook {
    lb::bpf_tc_hook {
        sz: std::mem::size_of::<lb::bpf_tc_hook>() as _,
        ifindex,
        attach_point: if ingress { lb::BPF_TC_INGRESS } else { lb::BPF_TC_EGRESS },
        ..Default::default()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        match &self.inner {
            // SAFETY: we own the link; destroying it detaches and frees it exactly once.
            LinkInner::Libbpf(p) => unsafe {
                lb::bpf_link__destroy(p.as_ptr());
            },
            LinkInner::Fd(_) => {} // the OwnedFd closes itself
            &LinkInner::Tc { ifindex, ingress, handle, priority } => {
                let hook = tc_hook(ifindex, ingress);
                let opts = lb::bpf_tc_opts {
                    sz: std::mem::size_of::<lb::bpf_tc_opts>() as _,
                    handle,
                    priority,
                    ..Default::default()
                };
                // SAFETY: hook and opts are valid for the calls. Failures (the device is gone)
                // leave nothing to clean up.
                // The table stays locked until the qdisc is gone, so no filter of this
                // process can be attached to a qdisc about to be destroyed.
                let mut table = clsact_table();
                unsafe {
                    lb::bpf_tc_detach(&hook, &opts);
                    if clsact_release(&mut table, ifindex) {
                        let mut both = hook;
                        both.attach_point = lb::BPF_TC_INGRESS | lb::BPF_TC_EGRESS;
                        lb::bpf_tc_hook_destroy(&mut both);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Map syscalls (fd based)

/// `BPF_MAP_LOOKUP_ELEM`. Ok(false) when the key is absent.
pub fn map_lookup(fd: i32, key: &[u8], value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: key and value are valid for the map's key and value sizes (callers check sizes).
    let ret = unsafe { lb::bpf_map_lookup_elem(fd, key.as_ptr().cast(), value.as_mut_ptr().cast()) };
    match check(ret, || "looking up a key".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
pub fn map_update(fd: i32, key: &[u8], value: &[u8], flags: u64) -> Result<(), Failure> {
    // SAFETY: key and value are valid for the map's sizes (callers check sizes).
    let ret = unsafe { lb::bpf_map_update_elem(fd, key.as_ptr().cast(), value.as_ptr().cast(), flags) };
    check(ret, || "updating a key".to_string()).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`. Ok(false) when the key was absent.
pub fn map_delete(fd: i32, key: &[u8]) -> Result<bool, Failure> {
    // SAFETY: key is valid for the map's key size (callers check).
    let ret = unsafe { lb::bpf_map_delete_elem(fd, key.as_ptr().cast()) };
    match check(ret, || "deleting a key".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key when `key` is None or absent).
/// Ok(false) at the end.
pub fn map_next_key(fd: i32, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, Failure> {
    let k = key.map_or(ptr::null(), |k| k.as_ptr().cast());
    // SAFETY: key (if any) and next are valid for the map's key size (callers check).
    let ret = unsafe { lb::bpf_map_get_next_key(fd, k, next.as_mut_ptr().cast()) };
    match check(ret, || "iterating keys".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` step. `cursor` is None for the first call; `next_cursor` receives
/// the cursor for the following call. Returns (entries read, finished).
pub fn map_lookup_batch(
    fd: i32,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<(u32, bool), Failure> {
    let mut n = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    let inb = cursor.map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_void);
    // SAFETY: keys/values hold `count` entries (callers size them), cursors hold at least the
    // key size (and at least 8 bytes), opts outlives the call.
    let ret = unsafe {
        lb::bpf_map_lookup_batch(
            fd,
            inb,
            next_cursor.as_mut_ptr().cast(),
            keys.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &mut n,
            &opts,
        )
    };
    match check(ret, || "batch lookup".to_string()) {
        Ok(_) => Ok((n, false)),
        Err(f) if f.errno == libc::ENOENT => Ok((n, true)),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_DELETE_BATCH` of `count` keys packed in `keys`. Returns how many were deleted.
pub fn map_delete_batch(fd: i32, keys: &[u8], count: u32) -> Result<u32, Failure> {
    let mut n = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    // SAFETY: keys holds `count` packed keys (callers check).
    let ret = unsafe { lb::bpf_map_delete_batch(fd, keys.as_ptr().cast(), &mut n, &opts) };
    check(ret, || "batch delete".to_string()).map(|_| n)
}

/// Number of possible CPUs: the stride of per-CPU map values.
pub fn num_possible_cpus() -> Result<usize, Failure> {
    // SAFETY: no arguments; libbpf parses /sys/devices/system/cpu/possible once.
    let n = unsafe { lb::libbpf_num_possible_cpus() };
    check(n, || "counting possible CPUs".to_string()).map(|n| n as usize)
}

/// Which kernel object ids to enumerate.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    /// Loaded programs.
    Prog,
    /// Maps.
    Map,
    /// Links.
    Link,
}

/// Ids of every program, map or link in the kernel (needs CAP_SYS_ADMIN).
pub fn object_ids(kind: IdKind) -> Result<Vec<u32>, Failure> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: next is a valid out-pointer.
        let ret = unsafe {
            match kind {
                IdKind::Prog => lb::bpf_prog_get_next_id(id, &mut next),
                IdKind::Map => lb::bpf_map_get_next_id(id, &mut next),
                IdKind::Link => lb::bpf_link_get_next_id(id, &mut next),
            }
        };
        match check(ret, || format!("listing {kind:?} ids")) {
            Ok(_) => {
                out.push(next);
                id = next;
            }
            Err(f) if f.errno == libc::ENOENT => return Ok(out),
            Err(f) => return Err(f),
        }
    }
}

// ------------------------------------------------------------------------------------------
// BTF dumping (libbpf's btf_dump, for vmlinux.h)

/// A BTF object owned by libbpf, used to print C declarations.
pub struct Btf {
    ptr: NonNull<lb::btf>,
}

// SAFETY: a struct btf is heap data; it is only read after construction.
unsafe impl Send for Btf {}
impl Btf {
    /// Parses raw BTF bytes (libbpf copies them).
    pub fn from_raw(data: &[u8]) -> Result<Btf, Failure> {
        install_print_hook();
        // SAFETY: data is valid for its length; libbpf copies it.
        let p = unsafe { lb::btf__new(data.as_ptr().cast(), data.len() as u32) };
        check_ptr(p, || "parsing kernel BTF".to_string()).map(|ptr| Btf { ptr })
    }

    /// C declarations for `ids` and everything they need, in dependency order, each type once.
    pub fn dump_c(&self, ids: impl IntoIterator<Item = u32>) -> Result<String, Failure> {
        let mut out = String::new();
        // SAFETY: all-zero is a valid btf_dump_opts.
        let mut opts: lb::btf_dump_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::btf_dump_opts>() as _;
        // SAFETY: self.ptr is live; `out` outlives the dumper (freed below); dump_printf matches
        // the callback type and appends to the String behind ctx.
        let d = unsafe {
            lb::btf_dump__new(self.ptr.as_ptr(), Some(dump_printf), (&mut out as *mut String).cast(), &opts)
        };
        let d = check_ptr(d, || "creating a BTF dumper".to_string())?;
        let mut result = Ok(());
        for id in ids {
            // SAFETY: d is live; ids beyond the BTF are rejected by libbpf with -EINVAL.
            let ret = unsafe { lb::btf_dump__dump_type(d.as_ptr(), id) };
            if let Err(f) = check(ret, || format!("printing BTF type {id}")) {
                result = Err(f);
                break;
            }
        }
        // SAFETY: d was created above and is freed once.
        unsafe { lb::btf_dump__free(d.as_ptr()) };
        result.map(|_| out)
    }
}

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: we own the btf and free it once.
        unsafe { lb::btf__free(self.ptr.as_ptr()) };
    }
}

unsafe extern "C" fn dump_printf(ctx: *mut c_void, fmt: *const c_char, ap: *mut lb::__va_list_tag) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the &mut String passed to btf_dump__new, alive for the dump.
        let out = unsafe { &mut *ctx.cast::<String>() };
        // SAFETY: libbpf's own format string and arguments.
        out.push_str(&unsafe { format_va(fmt, ap) });
    }));
}

// ------------------------------------------------------------------------------------------
// Ring buffers

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

struct PerfCtx {
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

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` with no key: pops from a queue or stack map. Ok(false) when
/// empty.
pub fn map_pop(fd: i32, value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: value is the map's value size (callers check); queue/stack maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_and_delete_elem(fd, ptr::null(), value.as_mut_ptr().cast()) };
    match check(ret, || "popping a value".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_LOOKUP_ELEM` with no key: peeks at a queue/stack head, or asks a bloom filter
/// whether `value` may be present. Ok(false) when empty or absent.
pub fn map_peek(fd: i32, value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: value is the map's value size (callers check); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_elem(fd, ptr::null(), value.as_mut_ptr().cast()) };
    match check(ret, || "peeking".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_UPDATE_ELEM` with no key: pushes onto a queue/stack, or adds to a bloom filter.
pub fn map_push(fd: i32, value: &[u8], flags: u64) -> Result<(), Failure> {
    // SAFETY: value is the map's value size (callers check); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_update_elem(fd, ptr::null(), value.as_ptr().cast(), flags) };
    check(ret, || "pushing a value".to_string()).map(drop)
}

/// Pins the object behind `fd` at `path` on a bpffs.
pub fn obj_pin(fd: i32, path: &str) -> Result<(), Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_pin(fd, p.as_ptr()) };
    check(ret, || format!("pinning at {path}")).map(drop)
}

/// Opens the object pinned at `path`; the caller owns the returned fd.
pub fn obj_get(path: &str) -> Result<i32, Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_get(p.as_ptr()) };
    check(ret, || format!("opening pinned object {path}"))
}

/// An fd for the map with kernel id `id`; the caller owns it.
pub fn map_fd_by_id(id: u32) -> Result<i32, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::bpf_map_get_fd_by_id(id) };
    check(ret, || format!("opening map id {id}"))
}

/// What the kernel says of a map, by fd.
#[derive(Debug, Clone, Default)]
pub struct KernelMapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Kernel id.
    pub id: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Flags.
    pub flags: u32,
    /// Name (up to 15 bytes).
    pub name: String,
    /// Id of the BTF object holding its types, 0 if none.
    pub btf_id: u32,
    /// Key type in that BTF.
    pub btf_key_type_id: u32,
    /// Value type in that BTF.
    pub btf_value_type_id: u32,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map.
pub fn map_info_by_fd(fd: i32) -> Result<KernelMapInfo, Failure> {
    // SAFETY: all-zero is a valid bpf_map_info.
    let mut info: lb::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<lb::bpf_map_info>() as u32;
    // SAFETY: info is valid for len bytes.
    let ret = unsafe { lb::bpf_map_get_info_by_fd(fd, &mut info, &mut len) };
    check(ret, || "reading map info".to_string())?;
    let name_bytes: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(KernelMapInfo {
        map_type: info.type_,
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
        name: String::from_utf8_lossy(&name_bytes).into_owned(),
        btf_id: info.btf_id,
        btf_key_type_id: info.btf_key_type_id,
        btf_value_type_id: info.btf_value_type_id,
    })
}

/// The raw bytes of kernel BTF object `id`.
pub fn btf_raw_by_id(id: u32) -> Result<Vec<u8>, Failure> {
    install_print_hook();
    // SAFETY: no pointer arguments; the result is owned here and freed below.
    let p = unsafe { lb::btf__load_from_kernel_by_id(id) };
    let p = check_ptr(p, || format!("loading BTF id {id}"))?;
    let mut size: u32 = 0;
    // SAFETY: p is live; raw_data points to `size` bytes owned by it.
    let data = unsafe { lb::btf__raw_data(p.as_ptr(), &mut size) };
    let out = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: data is valid for size bytes while p lives.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    };
    // SAFETY: freed once.
    unsafe { lb::btf__free(p.as_ptr()) };
    Ok(out)
}

/// An fd for the program with kernel id `id`; the caller owns it.
pub fn prog_fd_by_id(id: u32) -> Result<i32, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::bpf_prog_get_fd_by_id(id) };
    check(ret, || format!("opening program id {id}"))
}

// ------------------------------------------------------------------------------------------
// Perf events

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

// ------------------------------------------------------------------------------------------
// Raw loads and links, for kernel feature probes

/// `r0 = ret; exit`, as raw instructions (mov64 r0, imm; exit).
fn return_insns(ret: i32) -> [u64; 2] {
    [0xb7 | (u64::from(ret as u32) << 32), 0x95]
}

fn owned(fd: c_int) -> std::os::fd::OwnedFd {
    // SAFETY: callers pass a fresh fd returned by the kernel that nothing else owns.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// Loads `r0 = ret; exit` as a program of `prog_type` with the expected attach type and BTF
/// target given (0 for none), without a log.
pub fn probe_prog_load(prog_type: u32, expected_attach: u32, attach_btf_id: u32, ret: i32) -> Result<std::os::fd::OwnedFd, Failure> {
    let insns = return_insns(ret);
    let mut opts = lb::bpf_prog_load_opts {
        sz: std::mem::size_of::<lb::bpf_prog_load_opts>() as _,
        expected_attach_type: expected_attach,
        attach_btf_id,
        ..Default::default()
    };
    // SAFETY: insns are two valid 8-byte instructions (bpf_insn is 8 bytes); the strings are
    // static; opts is valid for the call.
    let ret = unsafe {
        lb::bpf_prog_load(
            prog_type,
            c"bpfkit_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut opts,
        )
    };
    check(ret, || format!("loading a probe program of type {prog_type} (attach type {expected_attach})")).map(owned)
}

/// Target of a probing `BPF_LINK_CREATE`.
#[derive(Debug, Clone)]
pub enum ProbeLink {
    /// Plain: no extra attributes.
    Plain,
    /// A multi-kprobe on these names.
    KprobeMulti(Vec<String>),
    /// A multi-uprobe on `path` at file offset 0.
    UprobeMulti(String),
}

/// `BPF_LINK_CREATE` for a feature probe; the link (if made) is closed at once.
pub fn probe_link_create(prog_fd: i32, target_fd: i32, attach_type: u32, how: &ProbeLink) -> Result<(), Failure> {
    let mut opts = lb::bpf_link_create_opts { sz: std::mem::size_of::<lb::bpf_link_create_opts>() as _, ..Default::default() };
    let names: Vec<CString>;
    let mut ptrs: Vec<*const c_char>;
    let path: CString;
    let offsets: [libc::c_ulong; 1] = [0];
    match how {
        ProbeLink::Plain => {}
        ProbeLink::KprobeMulti(syms) => {
            names = syms.iter().map(|s| cstring(s, "function")).collect::<Result<_, _>>()?;
            ptrs = names.iter().map(|c| c.as_ptr()).collect();
            opts.__bindgen_anon_1.kprobe_multi = lb::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_2 {
                cnt: ptrs.len() as _,
                syms: ptrs.as_mut_ptr(),
                ..Default::default()
            };
        }
        ProbeLink::UprobeMulti(p) => {
            path = cstring(p, "path")?;
            opts.__bindgen_anon_1.uprobe_multi = lb::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
                cnt: 1,
                path: path.as_ptr(),
                offsets: offsets.as_ptr(),
                ..Default::default()
            };
        }
    }
    // SAFETY: opts and everything it points to outlive the call.
    let ret = unsafe { lb::bpf_link_create(prog_fd, target_fd, attach_type, &opts) };
    check(ret, || format!("creating a probe link of attach type {attach_type}")).map(|fd| drop(owned(fd)))
}

/// `libbpf_probe_bpf_prog_type`: Ok(true) when the kernel has the program type.
pub fn probe_prog_type(prog_type: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_prog_type(prog_type, ptr::null()) };
    check(ret, || format!("probing program type {prog_type}")).map(|r| r == 1)
}

/// `libbpf_probe_bpf_map_type`: Ok(true) when the kernel has the map type.
pub fn probe_map_type(map_type: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_map_type(map_type, ptr::null()) };
    check(ret, || format!("probing map type {map_type}")).map(|r| r == 1)
}

/// `libbpf_probe_bpf_helper`: Ok(true) when programs of `prog_type` may call helper `helper`.
pub fn probe_helper(prog_type: u32, helper: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_helper(prog_type, helper, ptr::null()) };
    check(ret, || format!("probing helper {helper} for program type {prog_type}")).map(|r| r == 1)
}

/// Creates a map (for probes); the caller owns the fd.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, flags: u32) -> Result<std::os::fd::OwnedFd, Failure> {
    let opts = lb::bpf_map_create_opts { sz: std::mem::size_of::<lb::bpf_map_create_opts>() as _, map_flags: flags, ..Default::default() };
    // SAFETY: the name is static; opts is valid for the call.
    let ret = unsafe { lb::bpf_map_create(map_type, c"bpfkit_probe".as_ptr(), key_size, value_size, max_entries, &opts) };
    check(ret, || format!("creating a map of type {map_type} (flags {flags:#x})")).map(owned)
}

/// The id of type `name` of BTF kind `kind` in the kernel's own BTF.
pub fn vmlinux_type_id(name: &str, kind: u32) -> Result<u32, Failure> {
    let cname = cstring(name, "type name")?;
    // SAFETY: no arguments; returns an owned btf or NULL with errno.
    let btf = check_ptr(unsafe { lb::btf__load_vmlinux_btf() }, || "loading the kernel's BTF".to_string())?;
    // SAFETY: btf is live until freed below; cname outlives the call.
    let id = unsafe { lb::btf__find_by_name_kind(btf.as_ptr(), cname.as_ptr(), kind) };
    // SAFETY: freed once.
    unsafe { lb::btf__free(btf.as_ptr()) };
    check(id, || format!("finding `{name}` in the kernel's BTF")).map(|id| id as u32)
}
