//! One error type for the whole core.
//!
//! Every failure carries enough to act on: the errno where the kernel or libc gave one, the
//! program or map it concerns, clang's diagnostics, the verifier log. The Python layer maps each
//! variant onto one class of the `bpfkit.BPFError` hierarchy (see `python/bpfkit/_errors.py`).

use std::fmt;

use crate::sys::Failure;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in bpfkit's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// clang rejected the source. `diagnostics` is clang's own text, lines numbered as in the
    /// user's source.
    Compile { message: String, diagnostics: String },
    /// No usable BPF compiler was found.
    CompilerNotFound { message: String },
    /// The kernel (usually the verifier) refused a program.
    Load { program: Option<String>, errno: i32, message: String, log: String },
    /// Attaching a program to its hook failed. `program` and `target` name them when known.
    Attach { errno: i32, message: String, program: Option<String>, target: Option<String> },
    /// The running kernel lacks a feature. `since` is the first kernel version that has it.
    NotSupported { feature: String, since: Option<String>, message: String, program: Option<String> },
    /// A map operation failed with an errno other than "no such key".
    Map { errno: i32, message: String },
    /// The process lacks a privilege the kernel asked for.
    Privilege { errno: i32, message: String },
    /// The compile cache is unsafe or unusable.
    Cache { errno: i32, message: String },
    /// A key is not in the map.
    KeyNotFound,
    /// An argument has the wrong value (size, range, name).
    Value(String),
    /// An argument has the wrong type.
    Type(String),
    /// The object was closed.
    Closed,
    /// Any other OS-level failure, with errno.
    Os { errno: i32, message: String },
    /// A bug in bpfkit (a poisoned lock, a broken invariant): not the caller's fault.
    Internal(String),
}

impl Error {
    /// The errno this error carries, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Load { errno, .. }
            | Error::Attach { errno, .. }
            | Error::Map { errno, .. }
            | Error::Privilege { errno, .. }
            | Error::Cache { errno, .. }
            | Error::Os { errno, .. } => Some(*errno),
            Error::KeyNotFound => Some(libc::ENOENT),
            Error::NotSupported { .. } => Some(libc::EOPNOTSUPP),
            Error::Closed => Some(libc::EBADF),
            _ => None,
        }
    }

    /// A generic OS error from an `io::Error`, with context.
    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Error {
        Error::Os {
            errno: err.raw_os_error().unwrap_or(libc::EIO),
            message: format!("{context}: {err}"),
        }
    }

    /// Prefix the human-readable message with more context, keeping the variant.
    pub fn context(self, ctx: impl fmt::Display) -> Error {
        let pre = |m: String| format!("{ctx}: {m}");
        match self {
            Error::Compile { message, diagnostics } => Error::Compile { message: pre(message), diagnostics },
            Error::CompilerNotFound { message } => Error::CompilerNotFound { message: pre(message) },
            Error::Load { program, errno, message, log } => Error::Load { program, errno, message: pre(message), log },
            Error::Attach { errno, message, program, target } => Error::Attach { errno, message: pre(message), program, target },
            Error::NotSupported { feature, since, message, program } => Error::NotSupported { feature, since, message: pre(message), program },
            Error::Map { errno, message } => Error::Map { errno, message: pre(message) },
            Error::Privilege { errno, message } => Error::Privilege { errno, message: pre(message) },
            Error::Cache { errno, message } => Error::Cache { errno, message: pre(message) },
            Error::Os { errno, message } => Error::Os { errno, message: pre(message) },
            Error::Value(m) => Error::Value(pre(m)),
            Error::Type(m) => Error::Type(pre(m)),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Compile { message, .. }
            | Error::CompilerNotFound { message }
            | Error::Load { message, .. }
            | Error::Attach { message, .. }
            | Error::NotSupported { message, .. }
            | Error::Map { message, .. }
            | Error::Privilege { message, .. }
            | Error::Cache { message, .. }
            | Error::Os { message, .. }
            | Error::Value(message)
            | Error::Type(message) => f.write_str(message),
            Error::Internal(message) => write!(f, "internal error in bpfkit (please report): {message}"),
            Error::KeyNotFound => f.write_str("key not found"),
            Error::Closed => f.write_str("operation on a closed BPF object"),
        }
    }
}

impl std::error::Error for Error {}

/// The one conversion from a failed libbpf call: EPERM/EACCES become [`Error::Privilege`] when
/// the process lacks a privilege (the message says which), everything else [`Error::Os`].
/// Callers that know better use [`Error::attach`], [`Error::map`] or a [`Feature`]'s refusal.
///
/// [`Feature`]: crate::core::features::Feature
impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        let message = f.message();
        if matches!(f.errno, libc::EPERM | libc::EACCES) {
            if let Err(Error::Privilege { message: m, .. }) = crate::core::host::check_bpf_privileges() {
                return Error::Privilege { errno: f.errno, message: format!("{message}: {m}") };
            }
        }
        Error::Os { errno: f.errno, message }
    }
}

impl Error {
    /// A failed attach of `program` to `target`.
    pub fn attach(f: Failure, program: &str, target: impl Into<String>) -> Error {
        match Error::from(f) {
            Error::Os { errno, message } => {
                Error::Attach { errno, message, program: Some(program.to_string()), target: Some(target.into()) }
            }
            e => e,
        }
    }

    /// A failed map operation.
    pub fn map(f: Failure) -> Error {
        match Error::from(f) {
            Error::Os { errno, message } => Error::Map { errno, message },
            e => e,
        }
    }

    /// The same error, naming `program` where it concerns one and does not yet name it.
    pub fn for_program(self, program: &str) -> Error {
        match self {
            Error::NotSupported { feature, since, message, program: None } => {
                Error::NotSupported { feature, since, message, program: Some(program.to_string()) }
            }
            Error::Attach { errno, message, program: None, target } => {
                Error::Attach { errno, message, program: Some(program.to_string()), target }
            }
            e => e,
        }
    }

    /// A lock whose holder panicked: an internal error, never the caller's.
    pub fn poisoned(what: &str) -> Error {
        Error::Internal(format!("the {what} lock was poisoned by a panic"))
    }
}

/// The text of an errno, as libc's strerror gives it.
pub fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// The symbolic name of common errnos, for messages that users grep for.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => "errno",
    }
}
