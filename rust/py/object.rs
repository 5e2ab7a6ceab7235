//! `Object`: a loaded BPF object, its programs, attachments and globals.

#[allow(unused_imports)]
use super::*;
use crate::core::object::MapInfo;
use crate::core::section::Section;

/// A program of a loaded object: `name`, `section` (parsed), `prog_type` (number and
/// `prog_type_name`), and `fd` (-1 when the program was not loaded, as a ladder's unchosen rungs).
#[pyclass(module = "bpfkit._native", name = "ProgramInfo", frozen)]
pub(crate) struct PyProgramInfo {
    name: String,
    section: Section,
    prog_type: u32,
    fd: i32,
}

#[pymethods]
impl PyProgramInfo {
    /// The program's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// `BPF_PROG_TYPE_*` number.
    #[getter]
    fn prog_type(&self) -> u32 {
        self.prog_type
    }
    /// The fd (valid while the object is open), or -1 when the program was not loaded.
    #[getter]
    fn fd(&self) -> i32 {
        self.fd
    }
    /// The section, parsed.
    #[getter]
    fn section(&self) -> PySection {
        PySection { inner: self.section.clone() }
    }
    /// The kernel's name of the program type (`"TRACEPOINT"`).
    #[getter]
    fn prog_type_name(&self) -> &'static str {
        crate::sys::types::ProgType::from_raw(self.prog_type).name()
    }
    fn __repr__(&self) -> String {
        format!("ProgramInfo({:?}, section={:?}, fd={})", self.name, self.section.raw, self.fd)
    }
}

/// A map of a loaded object, as the object describes it.
#[pyclass(module = "bpfkit._native", name = "MapInfo", frozen)]
pub(crate) struct PyMapInfo {
    inner: MapInfo,
}

#[pymethods]
impl PyMapInfo {
    /// The map's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }
    /// `BPF_MAP_TYPE_*` number.
    #[getter]
    fn map_type(&self) -> u32 {
        self.inner.map_type.raw()
    }
    /// The kernel's name of the type (`"HASH"`).
    #[getter]
    fn map_type_name(&self) -> &'static str {
        self.inner.map_type.name()
    }
    /// Key size in bytes.
    #[getter]
    fn key_size(&self) -> u32 {
        self.inner.key_size
    }
    /// Value size in bytes (per CPU for per-CPU maps).
    #[getter]
    fn value_size(&self) -> u32 {
        self.inner.value_size
    }
    /// Capacity.
    #[getter]
    fn max_entries(&self) -> u32 {
        self.inner.max_entries
    }
    /// `BPF_F_*` flags.
    #[getter]
    fn flags(&self) -> u32 {
        self.inner.flags
    }
    /// Whether libbpf made it for a data section.
    #[getter]
    fn internal(&self) -> bool {
        self.inner.internal
    }
    /// BTF type of the key (0: none).
    #[getter]
    fn key_type_id(&self) -> u32 {
        self.inner.key_type_id
    }
    /// BTF type of the value (0: none).
    #[getter]
    fn value_type_id(&self) -> u32 {
        self.inner.value_type_id
    }
    fn __repr__(&self) -> String {
        format!("MapInfo({:?}, {})", self.inner.name, self.inner.map_type)
    }
}

/// A loaded BPF object (see `bpfkit.BPF` for the public face).
#[pyclass(module = "bpfkit._native", name = "Object", frozen)]
pub(crate) struct PyBpfObject {
    pub(crate) inner: Arc<BpfObject>,
}

#[pymethods]
impl PyBpfObject {
    /// Opens an ELF object, sets `consts`, and loads it. Releases the GIL.
    #[staticmethod]
    #[pyo3(signature = (data, *, name = "bpfkit".to_string(), consts = Vec::new(), log_level = 0, autoload_off = Vec::new(), whole_kernel_btf = false, cache_dir = None, pins = Vec::new(), map_sizes = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn load(
        py: Python<'_>,
        data: Vec<u8>,
        name: String,
        consts: Vec<(String, Bound<'_, PyAny>)>,
        log_level: u32,
        autoload_off: Vec<String>,
        whole_kernel_btf: bool,
        cache_dir: Option<std::path::PathBuf>,
        pins: Vec<(String, String)>,
        map_sizes: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let mut cv = Vec::with_capacity(consts.len());
        for (k, v) in consts {
            let val = if let Ok(b) = v.cast::<PyBytes>() {
                ConstValue::Bytes(b.as_bytes().to_vec())
            } else if v.is_instance_of::<pyo3::types::PyBool>() {
                ConstValue::Int(i128::from(v.extract::<bool>()?))
            } else if let Ok(i) = v.extract::<i128>() {
                ConstValue::Int(i)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "consts[{k:?}] must be an int or bytes, not {}",
                    v.get_type().name()?
                )));
            };
            cv.push((k, val));
        }
        let opts = LoadOptions { name, consts: cv, log_level, autoload_off, whole_kernel_btf, cache_dir, pins, map_sizes };
        let r = py.detach(|| guarded(|| BpfObject::load(&data, &opts)));
        let inner = r.py(py)?;
        Ok(PyBpfObject { inner })
    }

    /// The instructions of program `name` as loaded, 8 bytes each (`BPF.dump_func`).
    fn program_insns<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let insns = guarded(|| self.inner.program_insns(name)).py(py)?;
        Ok(PyBytes::new(py, &insns))
    }

    /// Every program of the object.
    fn programs(&self, py: Python<'_>) -> PyResult<Vec<PyProgramInfo>> {
        let progs = guarded(|| self.inner.programs()).py(py)?;
        Ok(progs
            .into_iter()
            .map(|(name, section, prog_type, fd)| PyProgramInfo { name, section: Section::parse(&section), prog_type, fd })
            .collect())
    }

    /// Every map of the object, internal ones (`.rodata`, `.data`, `.bss`) included.
    fn maps(&self, py: Python<'_>) -> PyResult<Vec<PyMapInfo>> {
        let maps = guarded(|| self.inner.maps()).py(py)?;
        Ok(maps.into_iter().map(|inner| PyMapInfo { inner }).collect())
    }

    /// The map called `name`.
    fn map(&self, py: Python<'_>, name: &str) -> PyResult<PyMap> {
        let inner = guarded(|| self.inner.map(name)).py(py)?;
        Ok(PyMap { inner })
    }

    /// The BTF type `type_id` of this object as a descriptor dict.
    fn describe_type<'py>(&self, py: Python<'py>, type_id: u32) -> PyResult<Bound<'py, PyDict>> {
        desc_to_py(py, &self.inner.describe_type(type_id))
    }

    /// The id of the struct or union called `name` in the object's BTF, if any.
    fn find_struct(&self, name: &str) -> Option<u32> {
        self.inner.btf().and_then(|b| b.find_struct(name))
    }

    /// `(section, type descriptor)` of global `name`.
    fn global_info<'py>(&self, py: Python<'py>, name: &str) -> PyResult<(String, Bound<'py, PyDict>)> {
        let (sec, d) = guarded(|| self.inner.global_info(name)).py(py)?;
        Ok((sec, desc_to_py(py, &d)?))
    }

    /// The bytes of global `name`.
    fn read_global<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let b = guarded(|| self.inner.read_global(name)).py(py)?;
        Ok(PyBytes::new(py, &b))
    }

    /// Writes global `name` (in `.data` or `.bss`).
    fn write_global(&self, py: Python<'_>, name: &str, value: &[u8]) -> PyResult<()> {
        guarded(|| self.inner.write_global(name, value)).py(py)
    }

    /// Attaches program `prog` to tracepoint `category:name`; returns the attachment id.
    fn attach_tracepoint(&self, py: Python<'_>, prog: &str, category: &str, name: &str) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, c, n) = (prog.to_string(), category.to_string(), name.to_string());
        py.detach(move || guarded(|| inner.attach_tracepoint(&p, &c, &n))).py(py)
    }

    /// Attaches program `prog` to raw tracepoint `name`.
    fn attach_raw_tracepoint(&self, py: Python<'_>, prog: &str, name: &str) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, n) = (prog.to_string(), name.to_string());
        py.detach(move || guarded(|| inner.attach_raw_tracepoint(&p, &n))).py(py)
    }

    /// Attaches a kprobe (or kretprobe) on kernel function `func`.
    #[pyo3(signature = (prog, func, offset = 0, retprobe = false, maxactive = 0))]
    fn attach_kprobe(&self, py: Python<'_>, prog: &str, func: &str, offset: u64, retprobe: bool, maxactive: u32) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, f) = (prog.to_string(), func.to_string());
        py.detach(move || guarded(|| inner.attach_kprobe(&p, &f, offset, retprobe, maxactive))).py(py)
    }

    /// Attaches a kprobe (or kretprobe) to every function of `funcs` with one multi-kprobe link.
    #[pyo3(signature = (prog, funcs, retprobe = false, label = String::new()))]
    fn attach_kprobe_multi(&self, py: Python<'_>, prog: &str, funcs: Vec<String>, retprobe: bool, label: String) -> PyResult<u64> {
        let inner = self.inner.clone();
        let p = prog.to_string();
        py.detach(move || guarded(|| inner.attach_kprobe_multi(&p, &funcs, retprobe, &label))).py(py)
    }

    /// Attaches a uprobe (or uretprobe) at every file offset of `offsets` with one multi-uprobe link.
    #[pyo3(signature = (prog, path, offsets, pid = -1, retprobe = false, label = String::new()))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one for one
    fn attach_uprobe_multi(
        &self,
        py: Python<'_>,
        prog: &str,
        path: &str,
        offsets: Vec<u64>,
        pid: i32,
        retprobe: bool,
        label: String,
    ) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, pa) = (prog.to_string(), path.to_string());
        py.detach(move || guarded(|| inner.attach_uprobe_multi(&p, &pa, &offsets, pid, retprobe, &label))).py(py)
    }

    /// Attaches program `prog` to a new perf event.
    #[pyo3(signature = (prog, ev_type, config, period, freq = false, pid = -1, cpu = -1, group_fd = -1))]
    #[allow(clippy::too_many_arguments)] // mirrors perf_event_open's arguments one for one
    fn attach_perf_event(
        &self,
        py: Python<'_>,
        prog: &str,
        ev_type: u32,
        config: u64,
        period: u64,
        freq: bool,
        pid: i32,
        cpu: i32,
        group_fd: i32,
    ) -> PyResult<u64> {
        let inner = self.inner.clone();
        let p = prog.to_string();
        let spec = crate::sys::PerfEventSpec { ev_type, config, period, freq, pid, cpu, group_fd };
        py.detach(move || guarded(|| inner.attach_perf_event(&p, &spec))).py(py)
    }

    /// Attaches XDP program `prog` to interface `ifindex` (named `dev`) through a BPF link.
    fn attach_xdp(&self, py: Python<'_>, prog: &str, ifindex: i32, dev: &str, flags: u32) -> PyResult<u64> {
        guarded(|| self.inner.attach_xdp(prog, ifindex, dev, flags)).py(py)
    }

    /// Attaches tc program `prog` to interface `ifindex`; returns (id, "tcx" or "clsact").
    fn attach_tc(&self, py: Python<'_>, prog: &str, ifindex: i32, dev: &str, ingress: bool, mode: &str) -> PyResult<(u64, String)> {
        guarded(|| self.inner.attach_tc(prog, ifindex, dev, ingress, mode)).py(py)
    }

    /// Attaches cgroup program `prog` to the cgroup v2 directory `path`.
    fn attach_cgroup(&self, py: Python<'_>, prog: &str, path: &str) -> PyResult<u64> {
        guarded(|| self.inner.attach_cgroup(prog, path)).py(py)
    }

    /// Attaches program `prog` to the object open at fd `target` with attach type `attach_type`
    /// (BCC's `attach_func`); returns the link id.
    #[pyo3(signature = (prog, target, attach_type, flags = 0))]
    fn attach_fd(&self, py: Python<'_>, prog: &str, target: i32, attach_type: u32, flags: u32) -> PyResult<u64> {
        guarded(|| {
            let fd = caller_fd(target, prog, "attach_func")?;
            self.inner.attach_fd(prog, std::os::fd::AsFd::as_fd(&fd), crate::sys::types::AttachType::from_raw(attach_type), flags)
        })
        .py(py)
    }

    /// Undoes `attach_fd` (BCC's `detach_func`); returns how many attachments went.
    fn detach_fd(&self, py: Python<'_>, prog: &str, target: i32, attach_type: u32) -> PyResult<usize> {
        guarded(|| {
            let fd = caller_fd(target, prog, "detach_func")?;
            self.inner.detach_fd(prog, std::os::fd::AsFd::as_fd(&fd), crate::sys::types::AttachType::from_raw(attach_type))
        })
        .py(py)
    }

    /// Attaches program `prog` to USDT probe `provider:name` in `path`.
    #[pyo3(signature = (prog, path, provider, name, pid = -1, cookie = 0))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one for one
    fn attach_usdt(&self, py: Python<'_>, prog: &str, path: &str, provider: &str, name: &str, pid: i32, cookie: u64) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, pa, pr, n) = (prog.to_string(), path.to_string(), provider.to_string(), name.to_string());
        py.detach(move || guarded(|| inner.attach_usdt(&p, pid, &pa, &pr, &n, cookie))).py(py)
    }

    /// `(fd, prog_type)` of loaded program `prog`; the fd is valid while the object is open.
    fn program_fd(&self, py: Python<'_>, prog: &str) -> PyResult<(i32, u32)> {
        guarded(|| self.inner.program_fd(prog)).py(py).map(|(fd, t)| (fd, t.raw()))
    }

    /// Attaches program `prog` where its section says; the link, or None when the section
    /// names no complete hook.
    fn attach_section(&self, py: Python<'_>, prog: &str) -> PyResult<Option<PyLink>> {
        let inner = self.inner.clone();
        let p = prog.to_string();
        let r = py.detach(move || guarded(|| inner.attach_section(&p))).py(py)?;
        Ok(r.map(|inner| PyLink { inner }))
    }

    /// The parsed section of program `prog`.
    fn section(&self, py: Python<'_>, prog: &str) -> PyResult<PySection> {
        let inner = guarded(|| self.inner.section(prog)).py(py)?;
        Ok(PySection { inner })
    }

    /// Gives program `prog` the uprobe `opened` (from `open_uprobe`, made before this object
    /// loaded); `opened` is used up, attached or not.
    fn attach_opened_uprobe(&self, py: Python<'_>, prog: &str, opened: &PyOpenedUprobe) -> PyResult<u64> {
        let ev = opened.take().py(py)?;
        let inner = self.inner.clone();
        let p = prog.to_string();
        py.detach(move || guarded(|| inner.attach_opened_uprobe(&p, ev))).py(py)
    }

    /// Attaches a uprobe (or uretprobe) on `path` at `symbol`+`offset`.
    #[pyo3(signature = (prog, path, symbol = None, offset = 0, pid = -1, retprobe = false, file_offset = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one for one
    fn attach_uprobe(
        &self,
        py: Python<'_>,
        prog: &str,
        path: &str,
        symbol: Option<String>,
        offset: u64,
        pid: i32,
        retprobe: bool,
        file_offset: Option<u64>,
    ) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, pa) = (prog.to_string(), path.to_string());
        py.detach(move || guarded(|| inner.attach_uprobe(&p, &pa, symbol.as_deref(), offset, file_offset, pid, retprobe))).py(py)
    }

    /// Attaches every program whose section names its hook, except those in `skip`; the links.
    #[pyo3(signature = (skip = Vec::new()))]
    fn autoattach(&self, py: Python<'_>, skip: Vec<String>) -> PyResult<Vec<PyLink>> {
        let inner = self.inner.clone();
        let r = py.detach(move || guarded(|| inner.autoattach(&skip))).py(py)?;
        Ok(r.into_iter().map(|inner| PyLink { inner }).collect())
    }

    /// Every attachment of this object.
    fn links(&self, py: Python<'_>) -> PyResult<Vec<PyLink>> {
        let r = guarded(|| self.inner.links()).py(py)?;
        Ok(r.into_iter().map(|inner| PyLink { inner }).collect())
    }

    /// Detaches attachments of `kind` (with this `target` and `program` when given); how many.
    #[pyo3(signature = (kind, target = None, program = None))]
    fn detach(&self, py: Python<'_>, kind: &str, target: Option<&str>, program: Option<&str>) -> PyResult<usize> {
        // Detaching many links takes the kernel seconds: without the GIL.
        let inner = self.inner.clone();
        let (k, t, p) = (kind.to_string(), target.map(str::to_string), program.map(str::to_string));
        py.detach(move || guarded(|| inner.detach(&k, t.as_deref(), p.as_deref()))).py(py)
    }

    /// Detaches the attachments with these ids; how many went.
    fn detach_ids(&self, py: Python<'_>, ids: Vec<u64>) -> PyResult<usize> {
        let inner = self.inner.clone();
        py.detach(move || guarded(|| inner.detach_ids(&ids))).py(py)
    }

    /// Detaches attachment `id`; whether it was attached.
    fn detach_id(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let inner = self.inner.clone();
        py.detach(move || guarded(|| inner.detach_ids(&[id]))).py(py).map(|n| n > 0)
    }

    /// Releases every link and fd now. Idempotent.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        // A panic (say, in a detach thread) must not reach Python; closing is best-effort.
        let _ = py.detach(move || guarded(|| {
            inner.close();
            Ok(())
        }));
        flush_logs(py);
    }

    /// Opens the event stream of ring buffer or perf event array `map`.
    #[pyo3(signature = (map, page_cnt = 64, wakeup_events = 1, guard = 4096))]
    fn open_stream(&self, py: Python<'_>, map: &str, page_cnt: usize, wakeup_events: u32, guard: usize) -> PyResult<PyEventStream> {
        let inner = guarded(|| self.inner.open_stream(map, page_cnt, wakeup_events, guard)).py(py)?;
        Ok(PyEventStream { inner })
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Number of possible CPUs.
    #[getter]
    fn ncpus(&self) -> usize {
        self.inner.ncpus()
    }
}

/// A uprobe opened before its program loaded (`open_uprobe`): give it to a program with
/// `Object.attach_opened_uprobe`; closed by `close()` or when dropped, if never attached.
#[pyclass(module = "bpfkit._native", name = "OpenedUprobe", frozen)]
pub(crate) struct PyOpenedUprobe {
    inner: std::sync::Mutex<Option<crate::core::object::OpenedUprobe>>,
    target: String,
}

impl PyOpenedUprobe {
    fn take(&self) -> Result<crate::core::object::OpenedUprobe, Error> {
        let mut g = self.inner.lock().map_err(|_| Error::Internal("poisoned lock on an opened uprobe".into()))?;
        g.take().ok_or_else(|| Error::Value(format!("the uprobe at {} was already attached or closed", self.target)))
    }
}

#[pymethods]
impl PyOpenedUprobe {
    /// Where it is (`/lib/x86_64-linux-gnu/libc.so.6:getaddrinfo`).
    #[getter]
    fn target(&self) -> String {
        self.target.clone()
    }
    /// Closes it if it was not attached (idempotent).
    fn close(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.take();
        }
    }
    fn __repr__(&self) -> String {
        let open = self.inner.lock().map(|g| g.is_some()).unwrap_or(false);
        format!("OpenedUprobe({}, {})", self.target, if open { "open" } else { "used" })
    }
}

/// Opens a uprobe (a uretprobe with `retprobe`) at `file_offset` of `path` for `pid` (-1:
/// every process), before the program that will run on it is loaded: the kernel registers it
/// now (which may wait for an RCU grace period). `symbol` and `offset` name the place, as
/// `Object.attach_uprobe` takes them.
#[pyfunction]
#[pyo3(signature = (path, file_offset, pid = -1, retprobe = false, symbol = None, offset = 0))]
pub(crate) fn open_uprobe(
    py: Python<'_>,
    path: String,
    file_offset: u64,
    pid: i32,
    retprobe: bool,
    symbol: Option<String>,
    offset: u64,
) -> PyResult<PyOpenedUprobe> {
    let ev = py
        .detach(move || guarded(|| crate::core::object::open_uprobe(&path, file_offset, pid, retprobe, symbol.as_deref(), offset)))
        .py(py)?;
    Ok(PyOpenedUprobe { target: ev.target(), inner: std::sync::Mutex::new(Some(ev)) })
}

/// A duplicate of fd `target`, a number the caller passed (held for the call, whatever the caller
/// does with its own); an fd that is not open is an attach error naming it.
fn caller_fd(target: i32, prog: &str, call: &str) -> crate::Result<std::os::fd::OwnedFd> {
    crate::sys::os::dup_raw(target).map_err(|e| Error::Attach {
        errno: e.raw_os_error().unwrap_or(libc::EBADF),
        message: format!("{call}: fd {target}: {e}"),
        program: Some(prog.to_string()),
        target: Some(format!("fd {target}")),
    })
}
