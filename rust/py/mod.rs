//! The PyO3 face of the core: `bpfkit._native`.
//!
//! Thin by design: each method converts arguments, runs the core (with the GIL released for
//! anything that may block: compiling, loading, attaching, bulk map reads), forwards libbpf's
//! messages to Python `logging`, and maps [`Error`] onto the `bpfkit.BPFError` hierarchy defined
//! in `bpfkit/_errors.py`. A panic in the core is caught here and raised as a `BPFError`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use numpy::IntoPyArray;
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::core::btf::TypeDesc;
use crate::core::cache::Cache;
use crate::core::compile::{self as core_compile, Emit, Interrupt, Request};
use crate::core::error::Error;
use crate::core::events::{self, EventStream, StreamKind};
use crate::core::host::{self, Fs};
use crate::core::map::{MapHandle, MmapRegion};
use crate::core::object::{BpfObject, ConstValue, LoadOptions};
use crate::sys::{self, LogLevel};

/// Runs `f`, turning a panic into an error so that none reaches Python.
fn guarded<T>(f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Internal(format!("a panic: {what}")))
        }
    }
}

/// Sends libbpf's queued messages to the `bpfkit.libbpf` logger, first running Python's
/// signal handlers: a Ctrl-C that arrived while the GIL was released raises KeyboardInterrupt
/// here, not inside `logging` (where it was lost). Returns the first exception raised, the
/// messages still all logged (the signal handlers have run by then, so logging runs clean).
fn flush_logs_checked(py: Python<'_>) -> PyResult<()> {
    let signalled = py.check_signals();
    let msgs = sys::take_messages();
    if msgs.is_empty() {
        return signalled;
    }
    let logged = (|| -> PyResult<()> {
        // Records nobody can see are not made: debug and info messages only when the
        // application has imported `logging` (bpfkit._logs explains; it keeps `logging` off a
        // tool's start path).
        let logging_loaded = py.import("sys")?.getattr("modules")?.contains("logging")?;
        let logs = py.import("bpfkit._logs")?;
        let kw = pyo3::types::PyDict::new(py);
        kw.set_item("name", "bpfkit.libbpf")?;
        for (level, msg) in msgs {
            let lvl = match level {
                LogLevel::Warn => 30,
                LogLevel::Info => 20,
                LogLevel::Debug => 10,
            };
            if lvl >= 30 || logging_loaded {
                logs.call_method("log", (lvl, "%s", msg), Some(&kw))?;
            }
        }
        Ok(())
    })();
    signalled.and(logged)
}

/// [`flush_logs_checked`] for callers that cannot raise (`close()`): a KeyboardInterrupt it
/// met is made pending again, so Python raises it at its next check instead of losing it.
fn flush_logs(py: Python<'_>) {
    if let Err(e) = flush_logs_checked(py) {
        if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
            // SAFETY: called with the GIL held; re-trips SIGINT as a Ctrl-C would.
            unsafe { pyo3::ffi::PyErr_SetInterrupt() };
        } else {
            e.write_unraisable(py, None);
        }
    }
}

/// The Python exception for `e`; a KeyboardInterrupt (or a failure of logging) met while
/// flushing libbpf's messages wins over it, so Ctrl-C is never lost.
fn to_pyerr(py: Python<'_>, e: Error) -> PyErr {
    match flush_logs_checked(py) {
        Err(first) => first,
        Ok(()) => error_to_py(py, e),
    }
}

fn error_to_py(py: Python<'_>, e: Error) -> PyErr {
    let (kind, errno, message, extra) = match &e {
        Error::KeyNotFound => return PyKeyError::new_err("key not found"),
        Error::Value(m) => return PyValueError::new_err(m.clone()),
        Error::Type(m) => return PyTypeError::new_err(m.clone()),
        Error::Compile { message, diagnostics } => ("compile", None, message.clone(), vec![("diagnostics", diagnostics.clone())]),
        Error::CompilerNotFound { message } => ("compiler_not_found", Some(libc::ENOENT), message.clone(), vec![]),
        Error::Load { program, errno, message, log } => (
            "load",
            Some(*errno),
            message.clone(),
            vec![("program", program.clone().unwrap_or_default()), ("verifier_log", log.clone())],
        ),
        Error::Attach { errno, message, program, target } => (
            "attach",
            Some(*errno),
            message.clone(),
            vec![("program", program.clone().unwrap_or_default()), ("target", target.clone().unwrap_or_default())],
        ),
        Error::Internal(_) => ("internal", Some(libc::EFAULT), e.to_string(), vec![]),
        Error::NotSupported { feature, since, message, program } => (
            "not_supported",
            Some(libc::EOPNOTSUPP),
            message.clone(),
            vec![
                ("feature", feature.clone()),
                ("since", since.clone().unwrap_or_default()),
                ("program", program.clone().unwrap_or_default()),
            ],
        ),
        Error::Map { errno, message } => ("map", Some(*errno), message.clone(), vec![]),
        Error::Privilege { errno, message } => ("privilege", Some(*errno), message.clone(), vec![]),
        Error::Cache { errno, message } => ("cache", Some(*errno), message.clone(), vec![]),
        Error::Closed => ("closed", Some(libc::EBADF), e.to_string(), vec![]),
        Error::Os { errno, message } => ("os", Some(*errno), message.clone(), vec![]),
    };
    let build = || -> PyResult<PyErr> {
        let m = py.import("bpfkit._errors")?;
        let extra_d = PyDict::new(py);
        for (k, v) in extra {
            extra_d.set_item(k, v)?;
        }
        let exc = m.getattr("_from_native")?.call1((kind, errno, message.clone(), extra_d))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

trait IntoPy<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for crate::Result<T> {
    /// The result for Python. Checks for signals first: the call may have run long with the
    /// GIL released, and a Ctrl-C meanwhile must raise KeyboardInterrupt now, even when the
    /// call succeeded (its result is dropped, which releases what it made).
    fn py(self, py: Python<'_>) -> PyResult<T> {
        flush_logs_checked(py)?;
        self.map_err(|e| error_to_py(py, e))
    }
}

fn desc_to_py<'py>(py: Python<'py>, d: &TypeDesc) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    match d {
        TypeDesc::Void => out.set_item("kind", "void")?,
        TypeDesc::Int { name, size, signed, is_char, is_bool } => {
            out.set_item("kind", "int")?;
            out.set_item("name", name)?;
            out.set_item("size", size)?;
            out.set_item("signed", signed)?;
            out.set_item("char", is_char)?;
            out.set_item("bool", is_bool)?;
        }
        TypeDesc::Float { name, size } => {
            out.set_item("kind", "float")?;
            out.set_item("name", name)?;
            out.set_item("size", size)?;
        }
        TypeDesc::Ptr { size } => {
            out.set_item("kind", "ptr")?;
            out.set_item("size", size)?;
        }
        TypeDesc::Array { elem, len } => {
            out.set_item("kind", "array")?;
            out.set_item("elem", desc_to_py(py, elem)?)?;
            out.set_item("len", len)?;
            out.set_item("size", d.size())?;
        }
        TypeDesc::Struct { name, size, union, members } => {
            out.set_item("kind", if *union { "union" } else { "struct" })?;
            out.set_item("name", name)?;
            out.set_item("size", size)?;
            let ms = PyList::empty(py);
            for m in members {
                let md = PyDict::new(py);
                md.set_item("name", &m.name)?;
                md.set_item("bit_offset", m.bit_offset)?;
                md.set_item("bitfield_size", m.bitfield_size)?;
                md.set_item("type", desc_to_py(py, &m.ty)?)?;
                ms.append(md)?;
            }
            out.set_item("members", ms)?;
        }
        TypeDesc::Enum { name, size, signed } => {
            out.set_item("kind", "enum")?;
            out.set_item("name", name)?;
            out.set_item("size", size)?;
            out.set_item("signed", signed)?;
        }
        TypeDesc::Opaque { name, size } => {
            out.set_item("kind", "opaque")?;
            out.set_item("name", name)?;
            out.set_item("size", size)?;
        }
    }
    Ok(out)
}

mod stream;
mod functions;
mod link;
mod map;
mod object;

use stream::*;
use functions::*;
use link::*;
use map::*;
use object::*;

/// The `bpfkit._native` extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    sys::install_print_hook();
    m.add_class::<PyBpfObject>()?;
    m.add_class::<PyMap>()?;
    m.add_class::<PyEventStream>()?;
    m.add_class::<PyMmapView>()?;
    m.add_class::<PyLink>()?;
    m.add_class::<PyProgramInfo>()?;
    m.add_class::<PyMapInfo>()?;
    m.add_class::<PySection>()?;
    m.add_class::<PyOpenedUprobe>()?;
    m.add_function(wrap_pyfunction!(open_uprobe, m)?)?;
    m.add_function(wrap_pyfunction!(process_links, m)?)?;
    m.add_function(wrap_pyfunction!(detach_links, m)?)?;
    m.add_function(wrap_pyfunction!(map_types, m)?)?;
    m.add_function(wrap_pyfunction!(prog_types, m)?)?;
    m.add_function(wrap_pyfunction!(attach_types, m)?)?;
    m.add_function(wrap_pyfunction!(feature_table, m)?)?;
    m.add_class::<PyRecord>()?;
    m.add("RECORD_OVERHEAD", events::RECORD_OVERHEAD)?;
    m.add_function(wrap_pyfunction!(wait_any, m)?)?;
    m.add_function(wrap_pyfunction!(wait_streams, m)?)?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(compile_text, m)?)?;
    m.add_function(wrap_pyfunction!(find_compiler, m)?)?;
    m.add_function(wrap_pyfunction!(open_cache, m)?)?;
    m.add_function(wrap_pyfunction!(minimal_vmlinux_h, m)?)?;
    m.add_function(wrap_pyfunction!(is_bcc, m)?)?;
    m.add_function(wrap_pyfunction!(bcc_translate, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_struct_has_field, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_object_ids, m)?)?;
    m.add_function(wrap_pyfunction!(ensure_mounted, m)?)?;
    m.add_function(wrap_pyfunction!(kprobes_unavailable, m)?)?;
    m.add_function(wrap_pyfunction!(tracepoint_exists, m)?)?;
    m.add_function(wrap_pyfunction!(probe_feature, m)?)?;
    m.add_function(wrap_pyfunction!(object_programs, m)?)?;
    m.add_function(wrap_pyfunction!(lockdown, m)?)?;
    m.add("FEATURES", crate::core::features::NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(resolve_binary, m)?)?;
    m.add_function(wrap_pyfunction!(flamegraph_svg, m)?)?;
    m.add_function(wrap_pyfunction!(remember_process, m)?)?;
    m.add_function(wrap_pyfunction!(flamegraph_diff_folded, m)?)?;
    m.add_function(wrap_pyfunction!(check_privileges, m)?)?;
    m.add_function(wrap_pyfunction!(num_possible_cpus, m)?)?;
    m.add_function(wrap_pyfunction!(open_pinned_map, m)?)?;
    m.add_function(wrap_pyfunction!(open_map_id, m)?)?;
    m.add_function(wrap_pyfunction!(ksym, m)?)?;
    m.add_function(wrap_pyfunction!(ksymname, m)?)?;
    m.add_function(wrap_pyfunction!(usym, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_functions, m)?)?;
    m.add_function(wrap_pyfunction!(defined_structs, m)?)?;
    m.add_function(wrap_pyfunction!(open_elf, m)?)?;
    m.add_class::<PyElfFile>()?;
    m.add_class::<PyElfSymbol>()?;
    m.add_class::<PyElfSegment>()?;
    m.add_class::<PySdtNote>()?;
    m.add("LIBBPF_VERSION", crate::core::compile::libbpf_version())?;
    Ok(())
}
