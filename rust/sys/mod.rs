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
        format!("{}: {} ({})", self.context, strerror(self.errno), crate::core::error::errno_name(self.errno))
    }
}

/// Funnel for calls returning a negative errno on failure.
pub(super) fn check(ret: c_int, context: impl FnOnce() -> String) -> Result<c_int, Failure> {
    if ret < 0 {
        Err(Failure { errno: -ret, context: context() })
    } else {
        Ok(ret)
    }
}

/// Funnel for calls returning NULL (with `errno` set) on failure.
pub(super) fn check_ptr<T>(p: *mut T, context: impl FnOnce() -> String) -> Result<NonNull<T>, Failure> {
    NonNull::new(p).ok_or_else(|| Failure { errno: last_errno(), context: context() })
}

pub(super) fn last_errno() -> i32 {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(0) | None => libc::EINVAL,
        Some(e) => e,
    }
}

pub(super) fn cstring(s: &str, what: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure { errno: libc::EINVAL, context: format!("{what} `{s}` contains a NUL byte") })
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// libbpf's text for an errno, including its own LIBBPF_ERRNO__* codes.
pub fn strerror(errno: i32) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: libbpf_strerror writes at most `buf.len()` bytes, NUL-terminated, into `buf`.
    let ret = unsafe { lb::libbpf_strerror(errno, buf.as_mut_ptr(), buf.len() as _) };
    if ret < 0 {
        return crate::core::error::strerror(errno);
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
pub(super) unsafe fn format_va(fmt: *const c_char, ap: *mut lb::__va_list_tag) -> String {
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
pub(super) fn peek_messages() -> Vec<String> {
    MESSAGES.with(|m| m.try_borrow().map(|m| m.iter().map(|(_, s)| s.clone()).collect()).unwrap_or_default())
}

/// The program libbpf's messages name in their last "prog 'NAME': failed ..." line.
pub(super) fn program_named_in_messages() -> Option<String> {
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

mod object;
pub use object::*;
mod link;
pub use link::*;
mod map_ops;
pub use map_ops::*;
mod btf;
pub use btf::*;
mod buffers;
pub use buffers::*;
mod map_extra;
pub use map_extra::*;
mod perf;
pub use perf::*;
mod probe;
pub use probe::*;
mod mmap;
pub mod os;
pub use mmap::*;
pub mod types;
