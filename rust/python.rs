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

use crate::btf::TypeDesc;
use crate::cache::Cache;
use crate::compile::{self as core_compile, Emit, Request};
use crate::error::Error;
use crate::events::{self, EventStream, StreamKind};
use crate::host::{self, Fs};
use crate::object::{BpfObject, ConstValue, LoadOptions, MapHandle, MmapRegion};
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
            Err(Error::Os { errno: libc::EFAULT, message: format!("internal error in bpfkit (please report): {what}") })
        }
    }
}

/// Sends libbpf's queued messages to the `bpfkit.libbpf` logger.
fn flush_logs(py: Python<'_>) {
    let msgs = sys::take_messages();
    if msgs.is_empty() {
        return;
    }
    let Ok(logging) = py.import("logging") else { return };
    let Ok(logger) = logging.call_method1("getLogger", ("bpfkit.libbpf",)) else { return };
    for (level, msg) in msgs {
        let lvl = match level {
            LogLevel::Warn => 30,
            LogLevel::Info => 20,
            LogLevel::Debug => 10,
        };
        let _ = logger.call_method1("log", (lvl, msg));
    }
}

fn to_pyerr(py: Python<'_>, e: Error) -> PyErr {
    flush_logs(py);
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
        Error::Attach { errno, message } => ("attach", Some(*errno), message.clone(), vec![]),
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
    fn py(self, py: Python<'_>) -> PyResult<T> {
        flush_logs(py);
        self.map_err(|e| to_pyerr(py, e))
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

/// A loaded BPF object (see `bpfkit.BPF` for the public face).
#[pyclass(module = "bpfkit._native", name = "Object", frozen)]
struct PyBpfObject {
    inner: Arc<BpfObject>,
}

#[pymethods]
impl PyBpfObject {
    /// Opens an ELF object, sets `consts`, and loads it. Releases the GIL.
    #[staticmethod]
    #[pyo3(signature = (data, *, name = "bpfkit".to_string(), consts = Vec::new(), log_level = 0, autoload_off = Vec::new()))]
    fn load(
        py: Python<'_>,
        data: Vec<u8>,
        name: String,
        consts: Vec<(String, Bound<'_, PyAny>)>,
        log_level: u32,
        autoload_off: Vec<String>,
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
        let opts = LoadOptions { name, consts: cv, log_level, autoload_off };
        let r = py.detach(|| guarded(|| BpfObject::load(&data, &opts)));
        let inner = r.py(py)?;
        Ok(PyBpfObject { inner })
    }

    /// `[(name, section, prog_type, fd)]` of every program.
    fn programs(&self, py: Python<'_>) -> PyResult<Vec<(String, String, u32, i32)>> {
        guarded(|| self.inner.programs()).py(py)
    }

    /// A dict per map: name, type, key_size, value_size, max_entries, flags, internal, type ids.
    fn maps<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let maps = guarded(|| self.inner.maps()).py(py)?;
        maps.into_iter()
            .map(|m| {
                let d = PyDict::new(py);
                d.set_item("name", m.name)?;
                d.set_item("type", m.map_type)?;
                d.set_item("key_size", m.key_size)?;
                d.set_item("value_size", m.value_size)?;
                d.set_item("max_entries", m.max_entries)?;
                d.set_item("flags", m.flags)?;
                d.set_item("internal", m.internal)?;
                d.set_item("key_type_id", m.key_type_id)?;
                d.set_item("value_type_id", m.value_type_id)?;
                Ok(d)
            })
            .collect()
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
        guarded(|| self.inner.program_fd(prog)).py(py)
    }

    /// Attaches program `prog` where its section says; `(kind, target)` or None.
    fn attach_section(&self, py: Python<'_>, prog: &str, section: &str) -> PyResult<Option<(String, String)>> {
        let inner = self.inner.clone();
        let (p, sec) = (prog.to_string(), section.to_string());
        py.detach(move || guarded(|| inner.attach_section(&p, &sec))).py(py)
    }

    /// Attaches a uprobe (or uretprobe) on `path` at `symbol`+`offset`.
    #[pyo3(signature = (prog, path, symbol = None, offset = 0, pid = -1, retprobe = false))]
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
    ) -> PyResult<u64> {
        let inner = self.inner.clone();
        let (p, pa) = (prog.to_string(), path.to_string());
        py.detach(move || guarded(|| inner.attach_uprobe(&p, &pa, symbol.as_deref(), offset, pid, retprobe))).py(py)
    }

    /// Attaches every program whose section names its hook; `[(program, kind, target)]`.
    #[pyo3(signature = (skip = Vec::new()))]
    fn autoattach(&self, py: Python<'_>, skip: Vec<String>) -> PyResult<Vec<(String, String, String)>> {
        let inner = self.inner.clone();
        py.detach(move || guarded(|| inner.autoattach(&skip))).py(py)
    }

    /// `[(id, kind, target, program)]` of every attachment.
    fn links(&self, py: Python<'_>) -> PyResult<Vec<(u64, String, String, String)>> {
        guarded(|| self.inner.links()).py(py)
    }

    /// Detaches matching attachments; returns how many.
    #[pyo3(signature = (kind, target = None, program = None))]
    fn detach(&self, py: Python<'_>, kind: &str, target: Option<&str>, program: Option<&str>) -> PyResult<usize> {
        // Detaching many links takes the kernel seconds: without the GIL.
        let inner = self.inner.clone();
        let (k, t, p) = (kind.to_string(), target.map(str::to_string), program.map(str::to_string));
        py.detach(move || guarded(|| inner.detach(&k, t.as_deref(), p.as_deref()))).py(py)
    }

    /// Detaches attachment `id`.
    fn detach_id(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let inner = self.inner.clone();
        py.detach(move || guarded(|| inner.detach_id(id))).py(py)
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

/// A map of a loaded object, at the level of bytes; `bpfkit.table` gives it types.
#[pyclass(module = "bpfkit._native", name = "Map", frozen)]
struct PyMap {
    inner: MapHandle,
}

#[pymethods]
impl PyMap {
    #[getter]
    fn name(&self) -> String {
        self.inner.info().name.clone()
    }
    #[getter]
    fn map_type(&self) -> u32 {
        self.inner.info().map_type
    }
    #[getter]
    fn key_size(&self) -> u32 {
        self.inner.info().key_size
    }
    /// Size of one value (one CPU's copy for per-CPU maps).
    #[getter]
    fn value_size(&self) -> u32 {
        self.inner.info().value_size
    }
    /// Bytes a lookup returns (every CPU's copy, each padded to 8 bytes, for per-CPU maps).
    #[getter]
    fn value_buf_size(&self) -> usize {
        self.inner.value_buf_size()
    }
    #[getter]
    fn max_entries(&self) -> u32 {
        self.inner.info().max_entries
    }
    #[getter]
    fn flags(&self) -> u32 {
        self.inner.info().flags
    }
    #[getter]
    fn key_type_id(&self) -> u32 {
        self.inner.info().key_type_id
    }
    #[getter]
    fn value_type_id(&self) -> u32 {
        self.inner.info().value_type_id
    }
    #[getter]
    fn ncpus(&self) -> usize {
        self.inner.ncpus()
    }

    /// The key type as a descriptor dict (kind "void" when the map has no BTF).
    fn key_desc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        desc_to_py(py, &self.inner.key_desc())
    }

    /// The value type as a descriptor dict (kind "void" when the map has no BTF).
    fn value_desc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        desc_to_py(py, &self.inner.value_desc())
    }

    /// Pins the map at `path` (bpffs is mounted at /sys/fs/bpf if needed).
    fn pin(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        guarded(|| self.inner.pin(path)).py(py)
    }

    /// Pushes `value` onto a queue/stack, or adds it to a bloom filter.
    #[pyo3(signature = (value, flags = 0))]
    fn push(&self, py: Python<'_>, value: &[u8], flags: u64) -> PyResult<()> {
        guarded(|| self.inner.push(value, flags)).py(py)
    }

    /// Pops a queue/stack; None when empty.
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = guarded(|| self.inner.pop()).py(py)?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Peeks at a queue/stack head; None when empty.
    fn peek<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = guarded(|| self.inner.peek()).py(py)?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Whether a bloom filter may hold `value`.
    fn bloom_contains(&self, py: Python<'_>, value: &[u8]) -> PyResult<bool> {
        guarded(|| self.inner.bloom_contains(value)).py(py)
    }
    /// The map's fd (valid until the object is closed).
    #[getter]
    fn fd(&self, py: Python<'_>) -> PyResult<i32> {
        self.inner.fd().py(py)
    }

    /// The value bytes for `key`, or None.
    fn lookup<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = guarded(|| self.inner.lookup(key)).py(py)?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Sets `key` to `value`; `flags` 0 (any), 1 (BPF_NOEXIST), 2 (BPF_EXIST).
    #[pyo3(signature = (key, value, flags = 0))]
    fn update(&self, py: Python<'_>, key: &[u8], value: &[u8], flags: u64) -> PyResult<()> {
        guarded(|| self.inner.update(key, value, flags)).py(py)
    }

    /// Deletes `key`; False if it was absent.
    fn delete(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        guarded(|| self.inner.delete(key)).py(py)
    }

    /// Every key (each once, even under concurrent deletion).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let inner = self.inner.clone();
        let ks = py.detach(move || guarded(|| inner.keys())).py(py)?;
        Ok(ks.iter().map(|k| PyBytes::new(py, k)).collect())
    }

    /// `(count, keys, values)`: every entry, packed into two uint8 numpy arrays, read with batch
    /// lookups. Releases the GIL.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<(usize, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let inner = self.inner.clone();
        let (n, k, v) = py.detach(move || guarded(|| inner.snapshot())).py(py)?;
        Ok((n, k.into_pyarray(py).into_any(), v.into_pyarray(py).into_any()))
    }

    /// A zero-copy view of a `BPF_F_MMAPABLE` array: `(view, stride)`, where `view` exposes the
    /// array interface (numpy.asarray(view) is a live uint8 array over the map's values).
    fn mmap(&self, py: Python<'_>) -> PyResult<(PyMmapView, usize)> {
        let (region, stride) = guarded(|| self.inner.mmap()).py(py)?;
        Ok((PyMmapView { region }, stride))
    }

    /// Deletes every entry (hash) or zeroes every value (array).
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        py.detach(move || guarded(|| inner.clear())).py(py)
    }
}

/// Memory shared with a `BPF_F_MMAPABLE` array, exposed through numpy's array interface.
#[pyclass(module = "bpfkit._native", name = "MmapView", frozen)]
struct PyMmapView {
    region: Arc<MmapRegion>,
}

#[pymethods]
impl PyMmapView {
    /// numpy's array interface: a writable uint8 array over the whole mapping.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("shape", (self.region.len(),))?;
        d.set_item("typestr", "|u1")?;
        d.set_item("data", (self.region.addr(), false))?;
        d.set_item("version", 3)?;
        Ok(d)
    }
    /// Whether the object was closed: the view then reads zeros and no longer reaches the map.
    #[getter]
    fn detached(&self) -> bool {
        self.region.is_detached()
    }
    fn __len__(&self) -> usize {
        self.region.len()
    }
}

/// A ring buffer's or perf buffer's records, read in bulk (see `bpfkit.table`).
#[pyclass(module = "bpfkit._native", name = "EventStream", frozen)]
struct PyEventStream {
    inner: Arc<EventStream>,
}

fn interrupted(py: Python<'_>, e: &Error) -> Option<PyResult<usize>> {
    match e {
        Error::Os { errno, .. } if *errno == libc::EINTR => Some(py.check_signals().map(|_| 0)),
        _ => None,
    }
}

#[pymethods]
impl PyEventStream {
    /// The map's name.
    #[getter]
    fn map(&self) -> String {
        self.inner.map.clone()
    }
    /// "ring" or "perf".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            StreamKind::Ring => "ring",
            StreamKind::Perf => "perf",
        }
    }
    /// Samples the kernel dropped (perf buffers).
    #[getter]
    fn lost(&self) -> u64 {
        self.inner.lost()
    }
    /// Records received so far.
    #[getter]
    fn received(&self) -> u64 {
        self.inner.received()
    }
    /// Records waiting to be handed over.
    #[getter]
    fn queued(&self) -> usize {
        self.inner.queued()
    }
    /// An fd that is readable when records are waiting: the kernel buffer's epoll fd, or, once
    /// a pump drains it, an eventfd readable while records are queued.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        guarded(|| self.inner.wait_fd()).py(py)
    }

    /// Reads records from the kernel into the queue, waiting up to `timeout` ms (0: none, -1:
    /// forever) with the GIL released; a ring buffer stops at `limit` queued. Ctrl-C raises
    /// KeyboardInterrupt at once. Returns the number queued.
    #[pyo3(signature = (timeout = 0, limit = usize::MAX))]
    fn fill(&self, py: Python<'_>, timeout: i32, limit: usize) -> PyResult<usize> {
        let inner = self.inner.clone();
        match py.detach(move || guarded(|| inner.fill(timeout, limit))) {
            Ok(n) => Ok(n),
            Err(e) => match interrupted(py, &e) {
                Some(r) => r,
                None => Err(to_pyerr(py, e)),
            },
        }
    }

    /// Calls `callback(first, address, size)` for each queued record, where `first` is `ctx` for
    /// a ring buffer and the CPU for a perf buffer, and `address` points at the record (valid
    /// during the call, as BCC's `data`). If the callback raises, the records after it stay queued
    /// and the exception propagates. Returns the number handled.
    #[pyo3(signature = (callback, ctx = None))]
    fn dispatch(&self, py: Python<'_>, callback: Bound<'_, PyAny>, ctx: Option<Bound<'_, PyAny>>) -> PyResult<usize> {
        let q = guarded(|| self.inner.take()).py(py)?;
        let ring = self.inner.kind == StreamKind::Ring;
        let ctx = ctx.unwrap_or_else(|| py.None().into_bound(py));
        let base = q.data.as_ptr() as usize;
        for (i, &(off, len, cpu)) in q.pending().iter().enumerate() {
            let r = if ring { callback.call1((&ctx, base + off, len)) } else { callback.call1((cpu, base + off, len)) };
            if let Err(e) = r {
                let _ = self.inner.requeue_front(&q, i + 1);
                return Err(e);
            }
        }
        Ok(q.len())
    }

    /// Takes up to `max` queued records as one uint8 array of `max`×`rec_size` bytes (each record
    /// cut or zero-padded to `rec_size`): `(count, array)`.
    fn take_packed<'py>(&self, py: Python<'py>, max: usize, rec_size: usize) -> PyResult<(usize, Bound<'py, PyAny>)> {
        let inner = self.inner.clone();
        let (n, v) = py.detach(move || guarded(|| inner.take_packed(max, rec_size))).py(py)?;
        Ok((n, v.into_pyarray(py).into_any()))
    }

    /// Clears a stale readiness of `fileno()` when nothing is queued; returns the number queued.
    fn rearm(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(|| self.inner.rearm()).py(py)
    }

    /// Starts a native thread that drains the kernel buffer continuously (see `read()`),
    /// lingering `linger` seconds after a small batch.
    #[pyo3(signature = (linger = 0.001))]
    fn start_pump(&self, py: Python<'_>, linger: f64) -> PyResult<()> {
        let d = std::time::Duration::from_secs_f64(linger.clamp(0.0, 1.0));
        guarded(|| self.inner.start_pump(d)).py(py)
    }

    /// Whether a pump thread is running.
    #[getter]
    fn pumped(&self) -> bool {
        self.inner.pumped()
    }

    /// With a pump: waits up to `timeout` ms (-1: forever) for a queued record, GIL released.
    /// Ctrl-C raises KeyboardInterrupt at once. Returns the number queued.
    #[pyo3(signature = (timeout = -1))]
    fn wait(&self, py: Python<'_>, timeout: i32) -> PyResult<usize> {
        loop {
            let inner = self.inner.clone();
            let n = py.detach(move || guarded(|| inner.wait_queued(timeout))).py(py)?;
            py.check_signals()?;
            if n > 0 || timeout >= 0 {
                return Ok(n);
            }
        }
    }

    /// Stops reading and releases the kernel-side buffers.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(move || inner.close());
    }
}

/// Waits until one of `fds` is readable or `timeout` ms pass, GIL released; returns the ready
/// indexes. Ctrl-C raises KeyboardInterrupt at once.
#[pyfunction]
fn wait_any(py: Python<'_>, fds: Vec<i32>, timeout: i32) -> PyResult<Vec<usize>> {
    match py.detach(move || guarded(|| events::wait_any(&fds, timeout))) {
        Ok(v) => Ok(v),
        Err(Error::Os { errno, .. }) if errno == libc::EINTR => {
            py.check_signals()?;
            Ok(Vec::new())
        }
        Err(e) => Err(to_pyerr(py, e)),
    }
}

/// Compiles C to a BPF object through the cache: `(object, cached, header, warnings, key)`.
/// Releases the GIL.
#[pyfunction]
#[pyo3(signature = (source, *, display_name = "<text>".to_string(), cflags = Vec::new(), zig = None, source_dir = None, cache_dir = None))]
fn compile<'py>(
    py: Python<'py>,
    source: String,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyBytes>, bool, String, String, String)> {
    let out = py
        .detach(|| {
            guarded(|| {
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
                };
                core_compile::compile(&req, &cache)
            })
        })
        .py(py)?;
    Ok((PyBytes::new(py, &out.object), out.cached, out.header.to_string(), out.warnings, out.key))
}

/// Compiles to text for `debug=`: `emit` is "llvm-ir", "preprocessed" or "asm".
#[pyfunction]
#[pyo3(signature = (source, emit, *, display_name = "<text>".to_string(), cflags = Vec::new(), zig = None, source_dir = None))]
fn compile_text(
    py: Python<'_>,
    source: String,
    emit: &str,
    display_name: String,
    cflags: Vec<String>,
    zig: Option<PathBuf>,
    source_dir: Option<PathBuf>,
) -> PyResult<String> {
    let emit = match emit {
        "llvm-ir" => Emit::LlvmIr,
        "preprocessed" => Emit::Preprocessed,
        "asm" => Emit::Assembly,
        other => return Err(PyValueError::new_err(format!("unknown emit kind {other:?}"))),
    };
    py.detach(|| {
        guarded(|| {
            let cache = Cache::open_default()?;
            let req = Request { source: &source, display_name: &display_name, cflags: &cflags, zig: zig.as_deref(), source_dir: source_dir.as_deref() };
            core_compile::compile_text(&req, &cache, emit)
        })
    })
    .py(py)
}

/// `(path, how_found)` of the compiler bpfkit would use.
#[pyfunction]
#[pyo3(signature = (zig = None))]
fn find_compiler(py: Python<'_>, zig: Option<PathBuf>) -> PyResult<(String, String)> {
    let c = guarded(|| core_compile::find_compiler(zig.as_deref())).py(py)?;
    Ok((c.path.display().to_string(), c.source.to_string()))
}

/// Opens and checks a cache directory (the default when None); returns its path.
#[pyfunction]
#[pyo3(signature = (path = None))]
fn open_cache(py: Python<'_>, path: Option<PathBuf>) -> PyResult<String> {
    let c = guarded(|| match &path {
        Some(p) => Cache::open(p),
        None => Cache::open_default(),
    })
    .py(py)?;
    Ok(c.root().display().to_string())
}

/// A `vmlinux.h` holding only the kernel types `source` names (for inspection and benchmarks).
#[pyfunction]
fn minimal_vmlinux_h(py: Python<'_>, source: String) -> PyResult<String> {
    py.detach(|| guarded(|| core_compile::minimal_vmlinux_h(&source))).py(py)
}

/// Ids of every kernel object of `kind` ("prog", "map" or "link").
#[pyfunction]
fn kernel_object_ids(py: Python<'_>, kind: &str) -> PyResult<Vec<u32>> {
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
fn ensure_mounted(py: Python<'_>, fs: &str) -> PyResult<bool> {
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
fn kprobes_unavailable() -> Option<String> {
    host::kprobes_unavailable()
}

/// `[(name, section)]` of the programs in BPF object file `data`, without loading it.
#[pyfunction]
fn object_programs(py: Python<'_>, data: Vec<u8>) -> PyResult<Vec<(String, String)>> {
    guarded(|| BpfObject::list_programs(&data)).py(py)
}

/// Runs kernel feature probe `name`: `(supported, errno, why not)`.
#[pyfunction]
fn probe_feature(py: Python<'_>, name: &str) -> PyResult<(bool, i32, String)> {
    let n = name.to_string();
    let r = py.detach(move || guarded(|| crate::features::probe(&n))).py(py)?;
    Ok((r.supported, r.errno, r.detail))
}

/// The kernel's lockdown mode, if securityfs shows it.
#[pyfunction]
fn lockdown() -> Option<String> {
    host::lockdown()
}

/// Whether tracepoint `category:name` exists.
#[pyfunction]
fn tracepoint_exists(category: &str, name: &str) -> bool {
    host::tracepoint_exists(category, name)
}

/// The path of a binary or library given by path or short name (`"c"`).
#[pyfunction]
#[pyo3(signature = (name, pid = None))]
fn resolve_binary(py: Python<'_>, name: &str, pid: Option<i32>) -> PyResult<String> {
    guarded(|| host::resolve_binary(name, pid)).py(py).map(|p| p.display().to_string())
}

/// Raises PrivilegeError unless the process may load tracing programs.
#[pyfunction]
fn check_privileges(py: Python<'_>) -> PyResult<()> {
    guarded(host::check_bpf_privileges).py(py)
}

/// Opens the map pinned at `path`.
#[pyfunction]
fn open_pinned_map(py: Python<'_>, path: &str) -> PyResult<PyMap> {
    let inner = guarded(|| MapHandle::open_pinned(path)).py(py)?;
    Ok(PyMap { inner })
}

/// Opens the map with kernel id `id`.
#[pyfunction]
fn open_map_id(py: Python<'_>, id: u32) -> PyResult<PyMap> {
    let inner = guarded(|| MapHandle::open_id(id)).py(py)?;
    Ok(PyMap { inner })
}

/// `(name, offset, module)` of the kernel symbol containing `addr`, or None.
#[pyfunction]
fn ksym(py: Python<'_>, addr: u64) -> PyResult<Option<(String, u64, Option<String>)>> {
    let r = py.detach(move || guarded(|| crate::symbols::ksym(addr))).py(py)?;
    Ok(r.map(|r| (r.name, r.offset, r.module)))
}

/// The address of kernel symbol `name`, or None.
#[pyfunction]
fn ksymname(py: Python<'_>, name: String) -> PyResult<Option<u64>> {
    py.detach(move || guarded(|| crate::symbols::ksymname(&name))).py(py)
}

/// `(name, offset, module)` of the symbol containing `addr` in process `pid`, or None.
#[pyfunction]
#[pyo3(signature = (addr, pid, demangle = true))]
fn usym(py: Python<'_>, addr: u64, pid: u32, demangle: bool) -> PyResult<Option<(String, u64, Option<String>)>> {
    let r = py.detach(move || guarded(|| crate::symbols::usym(addr, pid, demangle))).py(py)?;
    Ok(r.map(|r| (r.name, r.offset, r.module)))
}

/// Number of possible CPUs.
#[pyfunction]
fn num_possible_cpus(py: Python<'_>) -> PyResult<usize> {
    guarded(|| sys::num_possible_cpus().map_err(|f| Error::Os { errno: f.errno, message: f.message() })).py(py)
}

/// The `bpfkit._native` extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    sys::install_print_hook();
    m.add_class::<PyBpfObject>()?;
    m.add_class::<PyMap>()?;
    m.add_class::<PyEventStream>()?;
    m.add_class::<PyMmapView>()?;
    m.add_function(wrap_pyfunction!(wait_any, m)?)?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(compile_text, m)?)?;
    m.add_function(wrap_pyfunction!(find_compiler, m)?)?;
    m.add_function(wrap_pyfunction!(open_cache, m)?)?;
    m.add_function(wrap_pyfunction!(minimal_vmlinux_h, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_object_ids, m)?)?;
    m.add_function(wrap_pyfunction!(ensure_mounted, m)?)?;
    m.add_function(wrap_pyfunction!(kprobes_unavailable, m)?)?;
    m.add_function(wrap_pyfunction!(tracepoint_exists, m)?)?;
    m.add_function(wrap_pyfunction!(probe_feature, m)?)?;
    m.add_function(wrap_pyfunction!(object_programs, m)?)?;
    m.add_function(wrap_pyfunction!(lockdown, m)?)?;
    m.add("FEATURES", crate::features::NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(resolve_binary, m)?)?;
    m.add_function(wrap_pyfunction!(check_privileges, m)?)?;
    m.add_function(wrap_pyfunction!(num_possible_cpus, m)?)?;
    m.add_function(wrap_pyfunction!(open_pinned_map, m)?)?;
    m.add_function(wrap_pyfunction!(open_map_id, m)?)?;
    m.add_function(wrap_pyfunction!(ksym, m)?)?;
    m.add_function(wrap_pyfunction!(ksymname, m)?)?;
    m.add_function(wrap_pyfunction!(usym, m)?)?;
    m.add("LIBBPF_VERSION", crate::compile::libbpf_version())?;
    Ok(())
}
