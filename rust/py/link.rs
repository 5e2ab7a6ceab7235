//! `Link` and `Section`: attachments and parsed `SEC()` names as typed Python values.

#[allow(unused_imports)]
use super::*;
use crate::core::link::{self, Hook, Link};
use crate::core::section::Section;

/// An attachment: `id` (unique in the process), `kind`, `target`, `program`, and the hook's own
/// fields where they apply (None elsewhere). Like `os.stat_result`, it is also the tuple
/// `(kind, target, program)`, the shape `BPF.links()` has always had. Detach it by its id.
#[pyclass(module = "bpfkit._native", name = "Link", frozen)]
pub(crate) struct PyLink {
    pub(crate) inner: Link,
}

impl PyLink {
    fn as_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        pyo3::types::PyTuple::new(py, [self.inner.hook.kind().to_string(), self.inner.hook.target(), self.inner.program.clone()])
    }

    fn file(&self) -> Option<&crate::core::link::FileId> {
        match &self.inner.hook {
            Hook::Uprobe { file, .. } | Hook::UprobeMulti { file, .. } | Hook::Usdt { file, .. } => Some(file),
            _ => None,
        }
    }
}

#[pymethods]
impl PyLink {
    /// The id, unique in the process while the link lives.
    #[getter]
    fn id(&self) -> u64 {
        self.inner.id
    }
    /// "tracepoint", "raw_tracepoint", "kprobe", "kretprobe", "uprobe", "uretprobe", "usdt",
    /// "perf_event", "xdp", "tc", "cgroup", "fentry", ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.hook.kind()
    }
    /// The hook in words ("syscalls:sys_enter_openat", "/usr/lib/libc.so.6:malloc", "eth0:ingress").
    #[getter]
    fn target(&self) -> String {
        self.inner.hook.target()
    }
    /// The program attached.
    #[getter]
    fn program(&self) -> String {
        self.inner.program.clone()
    }
    /// Whether the program runs at a function's return (kretprobe, uretprobe).
    #[getter]
    fn retprobe(&self) -> bool {
        matches!(
            self.inner.hook,
            Hook::Kprobe { retprobe: true, .. }
                | Hook::KprobeMulti { retprobe: true, .. }
                | Hook::Uprobe { retprobe: true, .. }
                | Hook::UprobeMulti { retprobe: true, .. }
        )
    }
    /// The process a uprobe, USDT probe or perf event is limited to (-1: all), else None.
    #[getter]
    fn pid(&self) -> Option<i32> {
        match self.inner.hook {
            Hook::Uprobe { pid, .. } | Hook::UprobeMulti { pid, .. } | Hook::Usdt { pid, .. } | Hook::PerfEvent { pid, .. } => Some(pid),
            _ => None,
        }
    }
    /// The file of a uprobe or USDT probe.
    #[getter]
    fn path(&self) -> Option<String> {
        self.file().map(|f| f.path.clone())
    }
    /// `(st_dev, st_ino)` of that file when attached.
    #[getter]
    fn file_id(&self) -> Option<(u64, u64)> {
        self.file().map(|f| (f.dev, f.ino))
    }
    /// The file offsets a uprobe covers (one, or many for a multi-uprobe link; none when libbpf
    /// placed it by a symbol bpfkit did not resolve), or a kprobe's offset into its function.
    #[getter]
    fn offsets(&self) -> Vec<u64> {
        match &self.inner.hook {
            Hook::Uprobe { file_offset, .. } => file_offset.iter().copied().collect(),
            Hook::UprobeMulti { offsets, .. } => offsets.clone(),
            Hook::Kprobe { offset, .. } => vec![*offset],
            _ => Vec::new(),
        }
    }
    /// The symbol a uprobe was placed at by name, if it was.
    #[getter]
    fn symbol(&self) -> Option<String> {
        match &self.inner.hook {
            Hook::Uprobe { symbol, .. } => symbol.clone(),
            Hook::Kprobe { function, .. } => Some(function.clone()),
            _ => None,
        }
    }
    /// The interface index of an XDP or tc attachment.
    #[getter]
    fn ifindex(&self) -> Option<i32> {
        match self.inner.hook {
            Hook::Xdp { ifindex, .. } | Hook::Tc { ifindex, .. } => Some(ifindex),
            _ => None,
        }
    }
    /// The `XDP_FLAGS_*` an XDP link was made with.
    #[getter]
    fn xdp_flags(&self) -> Option<u32> {
        match self.inner.hook {
            Hook::Xdp { flags, .. } => Some(flags),
            _ => None,
        }
    }
    /// The CPU of a perf event (-1: any).
    #[getter]
    fn cpu(&self) -> Option<i32> {
        match self.inner.hook {
            Hook::PerfEvent { cpu, .. } => Some(cpu),
            _ => None,
        }
    }
    /// `(type, config)` of a perf event.
    #[getter]
    fn perf_event(&self) -> Option<(u32, u64)> {
        match self.inner.hook {
            Hook::PerfEvent { ev_type, config, .. } => Some((ev_type, config)),
            _ => None,
        }
    }
    /// How a tc program is attached: "tcx" or "clsact" (None for other kinds).
    #[getter]
    fn tc_mode(&self) -> Option<&'static str> {
        match self.inner.hook {
            Hook::Tc { tcx, .. } => Some(if tcx { "tcx" } else { "clsact" }),
            _ => None,
        }
    }
    fn __len__(&self) -> usize {
        3
    }
    fn __getitem__<'py>(&self, py: Python<'py>, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        // As a tuple does: ints, negative ints and slices.
        self.as_tuple(py)?.as_any().get_item(index)
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        self.as_tuple(py)?.try_iter()
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(o) = other.cast::<PyLink>() {
            return o.get().inner == self.inner;
        }
        match other.extract::<(String, String, String)>() {
            Ok((k, t, p)) => k == self.inner.hook.kind() && t == self.inner.hook.target() && p == self.inner.program,
            Err(_) => false,
        }
    }
    fn __repr__(&self) -> String {
        format!("Link(id={}, kind={:?}, target={:?}, program={:?})", self.inner.id, self.inner.hook.kind(), self.inner.hook.target(), self.inner.program)
    }
}

/// A parsed `SEC()` name (see `parse_section`).
#[pyclass(module = "bpfkit._native", name = "Section", frozen)]
pub(crate) struct PySection {
    pub(crate) inner: Section,
}

#[pymethods]
impl PySection {
    /// Parses `raw` (never fails: unknown sections have kind "other").
    #[new]
    fn new(raw: &str) -> Self {
        PySection { inner: Section::parse(raw) }
    }
    /// The section as written.
    #[getter]
    fn raw(&self) -> String {
        self.inner.raw.clone()
    }
    /// The kind of hook: "tracepoint", "kprobe", "kprobe.multi", "uprobe", "xdp", "tcx", ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.name()
    }
    /// What follows the kind's "/", or None.
    #[getter]
    fn target(&self) -> Option<String> {
        self.inner.target.clone()
    }
    /// Whether the section names its hook completely (so loading attaches it).
    #[getter]
    fn names_its_hook(&self) -> bool {
        self.inner.names_its_hook()
    }
    /// The kernel feature the program needs ("kprobes", "fentry", ...), or None.
    #[getter]
    fn feature(&self) -> Option<&'static str> {
        self.inner.feature().map(|f| f.name)
    }
    /// Whether it runs on return (kretprobe, uretprobe, fexit).
    #[getter]
    fn is_return(&self) -> bool {
        self.inner.kind.is_return()
    }
    /// Whether one link covers many functions or offsets.
    #[getter]
    fn is_multi(&self) -> bool {
        self.inner.kind.is_multi()
    }
    /// `(category, name)` of a tracepoint section.
    #[getter]
    fn tracepoint(&self) -> Option<(String, String)> {
        self.inner.tracepoint().map(|(c, n)| (c.to_string(), n.to_string()))
    }
    /// `(function, offset)` of a kprobe/kretprobe section naming its function.
    #[getter]
    fn kprobe_function(&self) -> Option<(String, u64)> {
        self.inner.kprobe_function().map(|(f, o)| (f.to_string(), o))
    }
    /// Sleepable (`.s`).
    #[getter]
    fn sleepable(&self) -> bool {
        self.inner.sleepable
    }
    fn __repr__(&self) -> String {
        format!("Section({:?}, kind={:?})", self.inner.raw, self.inner.kind.name())
    }
}

/// Every link of every open object in this process.
#[pyfunction]
pub(crate) fn process_links() -> Vec<PyLink> {
    link::registry().into_iter().map(|inner| PyLink { inner }).collect()
}

/// Detaches the links with these ids, whichever object owns them; returns how many went.
#[pyfunction]
pub(crate) fn detach_links(py: Python<'_>, ids: Vec<u64>) -> usize {
    py.detach(move || link::detach_ids(&ids))
}

/// `[(number, name, since)]` of the map types bpfkit names.
#[pyfunction]
pub(crate) fn map_types() -> Vec<(u32, &'static str, &'static str)> {
    crate::sys::types::MapType::ALL.iter().map(|t| (t.raw(), t.name(), t.since())).collect()
}

/// `[(number, name, since)]` of the program types bpfkit names.
#[pyfunction]
pub(crate) fn prog_types() -> Vec<(u32, &'static str, &'static str)> {
    crate::sys::types::ProgType::ALL.iter().map(|t| (t.raw(), t.name(), t.since())).collect()
}

/// `[(number, name, since)]` of the attach types (enum bpf_attach_type) bpfkit names.
#[pyfunction]
pub(crate) fn attach_types() -> Vec<(u32, &'static str, &'static str)> {
    crate::sys::types::AttachType::ALL.iter().map(|t| (t.raw(), t.name(), t.since())).collect()
}

/// `[(name, since, description, config options)]` of every kernel feature bpfkit probes.
#[pyfunction]
pub(crate) fn feature_table() -> Vec<(&'static str, &'static str, &'static str, Vec<&'static str>)> {
    crate::core::features::FEATURES.iter().map(|f| (f.name, f.since, f.description, f.config.to_vec())).collect()
}
