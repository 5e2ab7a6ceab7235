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

/// What every compile-time binding takes: the source and how to compile it.
struct CompileArgs {
    source: String,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
}

impl CompileArgs {
    /// Runs `f` on the request and the cache (the default one unless `cache_dir`), through
    /// [`compile_detached`].
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        f: impl FnOnce(&Request<'_>, &Cache) -> crate::Result<T> + Send,
    ) -> PyResult<T> {
        compile_detached(py, timeout, |time_limit, interrupt| {
            let cache = match &self.cache_dir {
                Some(d) => Cache::open(d)?,
                None => Cache::open_default()?,
            };
            let req = Request {
                source: &self.source,
                display_name: &self.display_name,
                cflags: &self.cflags,
                zig: self.zig.as_deref(),
                source_dir: self.source_dir.as_deref(),
                time_limit,
                interrupt: Some(interrupt),
            };
            f(&req, &cache)
        })
    }
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
    let args = CompileArgs { source, display_name, cflags, zig, source_dir, cache_dir };
    let out = args.run(py, timeout, core_compile::compile)?;
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
    let args = CompileArgs { source, display_name, cflags, zig, source_dir, cache_dir: None };
    args.run(py, timeout, |req, cache| core_compile::compile_text(req, cache, emit))
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

/// Whether the running kernel's struct `name` has member `field` (BTF; anonymous members
/// looked into).
#[pyfunction]
pub(crate) fn kernel_struct_has_field(py: Python<'_>, name: &str, field: &str) -> PyResult<bool> {
    py.detach(|| guarded(|| core_compile::kernel_struct_has_field(name, field))).py(py)
}

/// Whether `source` is written in BCC's C dialect (see `bcc_translate`).
#[pyfunction]
pub(crate) fn is_bcc(source: &str) -> bool {
    crate::core::bcc::is_bcc(source)
}

/// `source`, written in BCC's C dialect, as libbpf C (`CompileError` naming the line of a
/// construct it cannot translate, or clang's errors); `display_name` names the source in
/// `#line` and errors. Implicit kernel reads (`task->real_parent->tgid`) are made explicit from
/// clang's AST; the result is cached under the key its compile would have (flags, compiler,
/// kernel), so a second call runs nothing. Interrupts and time limit as `compile()`.
#[pyfunction]
#[pyo3(signature = (source, display_name = "<text>".to_string(), *, cflags = Vec::new(), zig = None, source_dir = None, cache_dir = None, timeout = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn bcc_translate(
    py: Python<'_>,
    source: String,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    timeout: Option<f64>,
) -> PyResult<String> {
    let args = CompileArgs { source, display_name, cflags, zig, source_dir, cache_dir };
    args.run(py, timeout, |req, cache| crate::core::bcc::translate_cached(req, cache, &crate::core::bcc::Running))
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
    guarded(|| sys::object_ids(k).map_err(Error::from)).py(py)
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

/// Runs kernel feature probe `name`: `(supported, errno, why not)`. With `remembered`, an answer
/// given earlier in this boot is taken from the cache (a prediction: see
/// `core::features::probe_remembered`).
#[pyfunction]
#[pyo3(signature = (name, remembered = false))]
pub(crate) fn probe_feature(py: Python<'_>, name: &str, remembered: bool) -> PyResult<(bool, i32, String)> {
    let n = name.to_string();
    let r = py
        .detach(move || {
            guarded(|| {
                if remembered {
                    crate::core::features::probe_remembered(&n)
                } else {
                    crate::core::features::probe(&n)
                }
            })
        })
        .py(py)?;
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

/// Remembers process `pid`'s executable mappings so its addresses can be named after it exits;
/// False when it is already gone.
#[pyfunction]
pub(crate) fn remember_process(py: Python<'_>, pid: u32) -> bool {
    py.detach(move || crate::core::symbols::remember_process(pid))
}

/// Number of possible CPUs.
#[pyfunction]
pub(crate) fn num_possible_cpus(py: Python<'_>) -> PyResult<usize> {
    guarded(|| sys::num_possible_cpus().map_err(Error::from)).py(py)
}

/// The names of the kernel's functions (text symbols of vmlinux and modules, from
/// `/proc/kallsyms`, read afresh), in file order without duplicates.
#[pyfunction]
pub(crate) fn kernel_functions(py: Python<'_>) -> PyResult<Vec<String>> {
    py.detach(|| guarded(crate::core::symbols::kernel_functions)).py(py)
}

/// The names of the structs C source `source` defines (`struct NAME {`), outside comments and
/// string literals, in order: the one struct scanner, also used to anchor those structs in BTF.
#[pyfunction]
pub(crate) fn defined_structs(source: &str) -> Vec<String> {
    core_compile::defined_structs(source)
}

/// A defined function symbol of an ELF file (`STT_FUNC` or `STT_GNU_IFUNC`).
#[pyclass(module = "bpfkit._native", name = "ElfSymbol", frozen, get_all)]
pub(crate) struct PyElfSymbol {
    /// The name as its table spells it (`.symtab` names may carry `@VER`/`@@VER`).
    name: String,
    /// Its virtual address (`st_value`).
    value: u64,
    /// Its size in bytes (0 when unknown).
    size: u64,
    /// A GNU indirect function: `value` is its resolver.
    is_ifunc: bool,
    /// `"local"`, `"global"`, `"weak"` or `"other"`.
    bind: &'static str,
    /// `"dynsym"` or `"symtab"`.
    table: &'static str,
    /// The GNU version of a `.dynsym` entry, None when unversioned.
    version: Option<String>,
    /// True for `name@@VER` (and for unversioned names), False for `name@VER`.
    default_version: bool,
}

impl From<&crate::core::elf::Symbol> for PyElfSymbol {
    fn from(s: &crate::core::elf::Symbol) -> Self {
        PyElfSymbol {
            name: s.name.clone(),
            value: s.value,
            size: s.size,
            is_ifunc: s.ifunc,
            bind: s.bind.as_str(),
            table: s.table.as_str(),
            version: s.version.clone(),
            default_version: s.default_version,
        }
    }
}

#[pymethods]
impl PyElfSymbol {
    /// `name@@VER`/`name@VER` for a versioned `.dynsym` entry, else the name.
    #[getter]
    fn versioned_name(&self) -> String {
        match &self.version {
            None => self.name.clone(),
            Some(v) => format!("{}{}{}", self.name, if self.default_version { "@@" } else { "@" }, v),
        }
    }

    /// The name without any `@VER`/`@@VER`.
    #[getter]
    fn base_name(&self) -> &str {
        self.name.split('@').next().unwrap_or(&self.name)
    }

    fn __repr__(&self) -> String {
        format!("<ElfSymbol {} at {:#x}, {} bytes, {} {}>", self.versioned_name(), self.value, self.size, self.bind, self.table)
    }
}

/// A `PT_LOAD` program header of an ELF file.
#[pyclass(module = "bpfkit._native", name = "ElfSegment", frozen, get_all)]
pub(crate) struct PyElfSegment {
    /// File offset.
    offset: u64,
    /// Virtual address.
    vaddr: u64,
    /// Bytes in the file.
    filesz: u64,
    /// Bytes in memory.
    memsz: u64,
    /// `p_flags` (1 executable, 2 writable, 4 readable).
    flags: u32,
}

#[pymethods]
impl PyElfSegment {
    fn __repr__(&self) -> String {
        format!("<ElfSegment offset={:#x} vaddr={:#x} filesz={:#x} flags={}>", self.offset, self.vaddr, self.filesz, self.flags)
    }
}

/// One `.note.stapsdt` entry: a USDT probe site.
#[pyclass(module = "bpfkit._native", name = "SdtNote", frozen, get_all)]
pub(crate) struct PySdtNote {
    /// The provider.
    provider: String,
    /// The probe's name.
    name: String,
    /// The site's virtual address.
    pc: u64,
    /// The semaphore's virtual address, 0 when there is none.
    semaphore: u64,
    /// The argument specification (`"-4@%edi 8@-16(%rbp)"`).
    args: String,
}

#[pymethods]
impl PySdtNote {
    fn __repr__(&self) -> String {
        format!("<SdtNote {}:{} at {:#x}>", self.provider, self.name, self.pc)
    }
}

/// An ELF file read for attaching: see `open_elf`.
#[pyclass(module = "bpfkit._native", name = "ElfFile", frozen)]
pub(crate) struct PyElfFile {
    inner: Arc<crate::core::elf::ElfFile>,
}

#[pymethods]
impl PyElfFile {
    /// The path it was read from.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// `ET_DYN`: a shared library or a position-independent executable.
    #[getter]
    fn is_shared_object(&self) -> bool {
        self.inner.is_shared_object()
    }

    /// An x86-64 file.
    #[getter]
    fn is_x86_64(&self) -> bool {
        self.inner.machine == crate::core::elf::EM_X86_64
    }

    /// The `PT_LOAD` program headers, in file order.
    #[getter]
    fn segments(&self) -> Vec<PyElfSegment> {
        self.inner
            .segments
            .iter()
            .map(|s| PyElfSegment { offset: s.offset, vaddr: s.vaddr, filesz: s.filesz, memsz: s.memsz, flags: s.flags })
            .collect()
    }

    /// Every defined function symbol, `.dynsym` first.
    fn functions(&self, py: Python<'_>) -> PyResult<Vec<PyElfSymbol>> {
        let f = py.detach(|| guarded(|| self.inner.functions())).py(py)?;
        Ok(f.all.iter().map(PyElfSymbol::from).collect())
    }

    /// The function symbols whose name without `@VER` is `base` (`"f"` finds `f`, `f@V1`,
    /// `f@@V2`).
    fn functions_named(&self, py: Python<'_>, base: &str) -> PyResult<Vec<PyElfSymbol>> {
        let f = py.detach(|| guarded(|| self.inner.functions())).py(py)?;
        Ok(f.named(base).map(PyElfSymbol::from).collect())
    }

    /// `{mangled: demangled}` of the C++ function names (without `@VER`).
    fn demangled(&self, py: Python<'_>) -> PyResult<std::collections::HashMap<String, String>> {
        let d = py.detach(|| guarded(|| self.inner.demangled())).py(py)?;
        Ok((*d).clone())
    }

    /// The USDT probe sites of `.note.stapsdt`, in file order.
    fn sdt_notes(&self, py: Python<'_>) -> PyResult<Vec<PySdtNote>> {
        let n = py.detach(|| guarded(|| self.inner.sdt_notes())).py(py)?;
        Ok(n.iter()
            .map(|n| PySdtNote { provider: n.provider.clone(), name: n.name.clone(), pc: n.pc, semaphore: n.semaphore, args: n.args.clone() })
            .collect())
    }

    /// The file offset of virtual address `vaddr` (through the loaded segments), or None.
    fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.inner.vaddr_to_offset(vaddr)
    }

    /// Whether `vaddr` lies in an executable loaded segment.
    fn is_executable_vaddr(&self, vaddr: u64) -> bool {
        self.inner.is_executable_vaddr(vaddr)
    }

    /// Up to `size` bytes of the file at `offset` (fewer at its end).
    fn read<'py>(&self, py: Python<'py>, offset: u64, size: u64) -> PyResult<Bound<'py, PyBytes>> {
        let b = py.detach(|| guarded(|| self.inner.read(offset, size))).py(py)?;
        Ok(PyBytes::new(py, &b))
    }

    fn __repr__(&self) -> String {
        format!("<ElfFile {}>", self.inner.path().display())
    }
}

/// The ELF file at `path`, parsed (and remembered while the file stays the same). Raises
/// `AttachError` for anything but a regular ELF file, at once: a FIFO is never opened.
#[pyfunction]
pub(crate) fn open_elf(py: Python<'_>, path: PathBuf) -> PyResult<PyElfFile> {
    let inner = py.detach(|| guarded(|| crate::core::elf::open(&path))).py(py)?;
    Ok(PyElfFile { inner })
}

/// The SVG flame graph of folded stacks (see `bpfkit.flamegraph`).
#[pyfunction]
#[pyo3(signature = (folded, *, title = None, subtitle = None, count_name = None, colors = None, inverted = false,
                    reverse = false, width = 1200, min_width = 0.1))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one for one
pub(crate) fn flamegraph_svg(
    py: Python<'_>,
    folded: &str,
    title: Option<String>,
    subtitle: Option<String>,
    count_name: Option<String>,
    colors: Option<String>,
    inverted: bool,
    reverse: bool,
    width: usize,
    min_width: f64,
) -> PyResult<String> {
    use crate::core::flamegraph::{svg, FlameOptions};
    let d = FlameOptions::default();
    let opts = FlameOptions {
        title: title.unwrap_or(d.title),
        subtitle,
        count_name: count_name.unwrap_or(d.count_name),
        // Two counts per line (a differential graph) are coloured by change, whatever the palette.
        colors: colors.unwrap_or(d.colors),
        inverted,
        reverse,
        width,
        min_width,
    };
    let text = folded.to_string();
    py.detach(move || guarded(|| svg(&text, &opts))).py(py)
}

/// The two-count folded lines of a differential flame graph of `before` and `after`.
#[pyfunction]
pub(crate) fn flamegraph_diff_folded(py: Python<'_>, before: &str, after: &str) -> PyResult<String> {
    guarded(|| crate::core::flamegraph::diff_folded(before, after)).py(py)
}
