//! `Map` and `MmapView`: map access and mmapable arrays as numpy memory.

#[allow(unused_imports)]
use super::*;

/// A map of a loaded object, at the level of bytes; `bpfkit.table` gives it types.
#[pyclass(module = "bpfkit._native", name = "Map", frozen)]
pub(crate) struct PyMap {
    pub(crate) inner: MapHandle,
}

#[pymethods]
impl PyMap {
    #[getter]
    fn name(&self) -> String {
        self.inner.info().name.clone()
    }
    #[getter]
    fn map_type(&self) -> u32 {
        self.inner.info().map_type.raw()
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

    /// [`snapshot`](Self::snapshot) as bytes, for `items()`: numpy is not needed (nor imported,
    /// which costs a tool tens of milliseconds and megabytes) to walk a map.
    fn snapshot_bytes<'py>(&self, py: Python<'py>) -> PyResult<(usize, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let inner = self.inner.clone();
        let (n, k, v) = py.detach(move || guarded(|| inner.snapshot())).py(py)?;
        Ok((n, PyBytes::new(py, &k), PyBytes::new(py, &v)))
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
pub(crate) struct PyMmapView {
    pub(crate) region: Arc<MmapRegion>,
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
