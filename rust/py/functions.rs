//! Module-level functions: compiling, the cache, host facts, features and symbols.

#[allow(unused_imports)]
use super::*;

/// Runs `f` (a compile) with the GIL released, giving it an [`Interrupt`] that runs Python's
/// signal handlers every few milliseconds: a Ctrl-C kills clang at once and its
/// KeyboardInterrupt is raised here. `timeout` (seconds) is checked and resolved first.
fn compile_detached<T: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    f: impl FnOnce(Option<std::time::Duration>, Interrupt<'_>) -> crate::Result<T> + Send,
) -> PyResult<T> {
    let limit = core_compile::time_limit(timeout).py(py)?;
    let pending: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
    let ask = || {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                if let Ok(mut p) = pending.lock() {
                    p.get_or_insert(e);
                }
                true
            }
        })
    };
    let out = py.detach(|| guarded(|| f(limit, Interrupt(&ask))));
    if let Some(e) = pending.lock().ok().and_then(|mut p| p.take()) {
        return Err(e);
    }
    out.py(py)
}

/// Compiles C to a BPF object through the cache: `(object, cached, header, warnings, key)`.
/// Releases the GIL. Ctrl-C kills clang at once (KeyboardInterrupt); a compile that runs past
/// `timeout` seconds (default: `$BPFKIT_COMPILE_TIMEOUT`, else 120) is killed and raises
/// CompileError. A cflag holding a NUL byte raises ValueError.
#[pyfunction]
#[pyo3(signature = (source, *, display_name = "<text>".to_string(), cflags = Vec::new(), zig = None, source_dir = None, cache_dir = None, timeout = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile<'py>(
    py: Python<'py>,
    source: String,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    timeout: Option<f64>,
) -> PyResult<(Bound<'py, PyBytes>, bool, String, String, String)> {
    let out = compile_detached(py, timeout, |time_limit, interrupt| {
        let cache = match &cache_dir {
            Some(d) => Cache::open(d)?,
            None => Cache::open_default()?,
        };
        let req = Request {
            source: &source,
            display_name: &display_name,
            cflags: &cflags,
            zig: zig.as_deref(),
            source_dir: source_dir.as_deref(),
            time_limit,
            interrupt: Some(interrupt),
        };
        core_compile::compile(&req, &cache)
    })?;
    Ok((PyBytes::new(py, &out.object), out.cached, out.header.to_string(), out.warnings, out.key))
}

/// Compiles to text for `debug=`: `emit` is "llvm-ir", "preprocessed" or "asm". Interrupts and
/// time limit as `compile()`.
#[pyfunction]
#[pyo3(signature = (source, emit, *, display_name = "<text>".to_string(), cflags = Vec::new(), zig = None, source_dir = None, timeout = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile_text(
    py: Python<'_>,
    source: String,
    emit: &str,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
    timeout: Option<f64>,
) -> PyResult<String> {
    let emit = match emit {
        "llvm-ir" => Emit::LlvmIr,
        "preprocessed" => Emit::Preprocessed,
        "asm" => Emit::Assembly,
        other => return Err(PyValueError::new_err(format!("unknown emit kind {other:?}"))),
    };
    compile_detached(py, timeout, |time_limit, interrupt| {
        let cache = Cache::open_default()?;
        let req = Request {
            source: &source,
            display_name: &display_name,
            cflags: &cflags,
            zig: zig.as_deref(),
            source_dir: source_dir.as_deref(),
            time_limit,
            interrupt: Some(interrupt),
        };
        core_compile::compile_text(&req, &cache, emit)
    })
}

/// `(path, how_found)` of the compiler bpfkit would use.
#[pyfunction]
#[pyo3(signature = (zig = None))]
pub(crate) fn find_compiler(py: Python<'_>, zig: Option<PathBuf>) -> PyResult<(String, String)> {
    let c = guarded(|| core_compile::find_compiler(zig.as_deref())).py(py)?;
    Ok((c.path.display().to_string(), c.source.to_string()))
}

/// Opens and checks a cache directory (the default when None); returns its path.
#[pyfunction]
#[pyo3(signature = (path = None))]
pub(crate) fn open_cache(py: Python<'_>, path: Option<PathBuf>) -> PyResult<String> {
    let c = guarded(|| match &path {
        Some(p) => Cache::open(p),
        None => Cache::open_default(),
    })
    .py(py)?;
    Ok(c.root().display().to_string())
}

/// A `vmlinux.h` holding only the kernel types `source` names (for inspection and benchmarks).
#[pyfunction]
pub(crate) fn minimal_vmlinux_h(py: Python<'_>, source: String) -> PyResult<String> {
    py.detach(|| guarded(|| core_compile::minimal_vmlinux_h(&source))).py(py)
}

/// Ids of every kernel object of `kind` ("prog", "map" or "link").
#[pyfunction]
pub(crate) fn kernel_object_ids(py: Python<'_>, kind: &str) -> PyResult<Vec<u32>> {
    let k = match kind {
        "prog" => sys::IdKind::Prog,
        "map" => sys::IdKind::Map,
        "link" => sys::IdKind::Link,
        other => return Err(PyValueError::new_err(format!("unknown kind {other:?}"))),
    };
    guarded(|| sys::object_ids(k).map_err(|f| Error::Os { errno: f.errno, message: f.message() })).py(py)
}

/// Mounts "tracefs", "debugfs" or "bpffs" at its usual place if needed; True if it mounted it.
#[pyfunction]
pub(crate) fn ensure_mounted(py: Python<'_>, fs: &str) -> PyResult<bool> {
    let f = match fs {
        "tracefs" => Fs::Tracefs,
        "debugfs" => Fs::Debugfs,
        "bpffs" => Fs::Bpffs,
        "securityfs" => Fs::Securityfs,
        other => return Err(PyValueError::new_err(format!("unknown filesystem {other:?}"))),
    };
    guarded(|| host::ensure_mounted(f)).py(py)
}

/// Why kprobes cannot be used here, or None.
#[pyfunction]
pub(crate) fn kprobes_unavailable() -> Option<String> {
    host::kprobes_unavailable()
}

/// `[(name, section)]` of the programs in BPF object file `data`, without loading it.
#[pyfunction]
pub(crate) fn object_programs(py: Python<'_>, data: Vec<u8>) -> PyResult<Vec<(String, String)>> {
    guarded(|| BpfObject::list_programs(&data)).py(py)
}

/// Runs kernel feature probe `name`: `(supported, errno, why not)`.
#[pyfunction]
pub(crate) fn probe_feature(py: Python<'_>, name: &str) -> PyResult<(bool, i32, String)> {
    let n = name.to_string();
    let r = py.detach(move || guarded(|| crate::core::features::probe(&n))).py(py)?;
    Ok((r.supported, r.errno, r.detail))
}

/// The kernel's lockdown mode, if securityfs shows it.
#[pyfunction]
pub(crate) fn lockdown() -> Option<String> {
    host::lockdown()
}

/// Whether tracepoint `category:name` exists.
#[pyfunction]
pub(crate) fn tracepoint_exists(category: &str, name: &str) -> bool {
    host::tracepoint_exists(category, name)
}

/// The path of a binary or library given by path or short name (`"c"`).
#[pyfunction]
#[pyo3(signature = (name, pid = None))]
pub(crate) fn resolve_binary(py: Python<'_>, name: &str, pid: Option<i32>) -> PyResult<String> {
    guarded(|| host::resolve_binary(name, pid)).py(py).map(|p| p.display().to_string())
}

/// Raises PrivilegeError unless the process may load tracing programs.
#[pyfunction]
pub(crate) fn check_privileges(py: Python<'_>) -> PyResult<()> {
    guarded(host::check_bpf_privileges).py(py)
}

/// Opens the map pinned at `path`.
#[pyfunction]
pub(crate) fn open_pinned_map(py: Python<'_>, path: &str) -> PyResult<PyMap> {
    let inner = guarded(|| MapHandle::open_pinned(path)).py(py)?;
    Ok(PyMap { inner })
}

/// Opens the map with kernel id `id`.
#[pyfunction]
pub(crate) fn open_map_id(py: Python<'_>, id: u32) -> PyResult<PyMap> {
    let inner = guarded(|| MapHandle::open_id(id)).py(py)?;
    Ok(PyMap { inner })
}

/// `(name, offset, module)` of the kernel symbol containing `addr`, or None.
#[pyfunction]
pub(crate) fn ksym(py: Python<'_>, addr: u64) -> PyResult<Option<(String, u64, Option<String>)>> {
    let r = py.detach(move || guarded(|| crate::core::symbols::ksym(addr))).py(py)?;
    Ok(r.map(|r| (r.name, r.offset, r.module)))
}

/// The address of kernel symbol `name`, or None.
#[pyfunction]
pub(crate) fn ksymname(py: Python<'_>, name: String) -> PyResult<Option<u64>> {
    py.detach(move || guarded(|| crate::core::symbols::ksymname(&name))).py(py)
}

/// `(name, offset, module)` of the symbol containing `addr` in process `pid`, or None.
#[pyfunction]
#[pyo3(signature = (addr, pid, demangle = true))]
pub(crate) fn usym(py: Python<'_>, addr: u64, pid: u32, demangle: bool) -> PyResult<Option<(String, u64, Option<String>)>> {
    let r = py.detach(move || guarded(|| crate::core::symbols::usym(addr, pid, demangle))).py(py)?;
    Ok(r.map(|r| (r.name, r.offset, r.module)))
}

/// Number of possible CPUs.
#[pyfunction]
pub(crate) fn num_possible_cpus(py: Python<'_>) -> PyResult<usize> {
    guarded(|| sys::num_possible_cpus().map_err(|f| Error::Os { errno: f.errno, message: f.message() })).py(py)
}
