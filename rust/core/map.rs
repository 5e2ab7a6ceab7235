//! Map handles: typed access to a map of a loaded object, or to one opened on its own (pinned,
//! by id, an inner map), and the shared memory of mmapable arrays.
//!
//! Every key and value passes through the size checks of [`crate::sys`]'s map calls; a handle
//! of an object keeps that object alive and fails with [`Error::Closed`] once it is closed.

use std::collections::HashSet;
use std::sync::Arc;

use crate::core::btf::{Btf, TypeDesc};
use crate::core::error::{Error, Result};
use crate::core::host;
use crate::core::object::{BpfObject, MapInfo};
pub use crate::sys::MmapRegion;
use crate::sys::{self, types::{MapType, ENOTSUPP, F_MMAPABLE}};

/// Who keeps a map's fd open.
#[derive(Clone)]
enum Owner {
    /// A map of a loaded object: valid until the object closes.
    Obj(Arc<BpfObject>),
    /// A map opened on its own (pinned, by id, an inner map): owns its fd and its BTF.
    Own(Arc<OwnedMap>),
}

/// A map fd owned outside any object, with the map's BTF when the kernel has it.
pub struct OwnedMap {
    // Held for its Drop: the map stays open exactly as long as a handle refers to it.
    _fd: std::os::fd::OwnedFd,
    btf: Option<Btf>,
}

/// A map of a loaded object, or one opened by pin path or id. A map of an object holds the
/// object alive and fails with [`Error::Closed`] after the object is closed.
#[derive(Clone)]
pub struct MapHandle {
    owner: Owner,
    ncpus: usize,
    info: MapInfo,
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

impl MapHandle {
    /// The handle of map `info` of object `obj`.
    pub(crate) fn of_object(obj: Arc<BpfObject>, info: MapInfo) -> MapHandle {
        let ncpus = obj.ncpus();
        MapHandle { owner: Owner::Obj(obj), ncpus, info }
    }

    /// The map's description.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// Number of possible CPUs (the length of per-CPU values).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// Runs `f` while the map's fd is guaranteed open.
    fn with<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match &self.owner {
            Owner::Obj(o) => o.while_open(f),
            Owner::Own(_) => f(),
        }
    }

    /// Opens a map by fd, taking ownership of the fd.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<MapHandle> {
        use std::os::fd::AsFd;
        let ki = sys::map_info_by_fd(fd.as_fd()).map_err(Error::map)?;
        let btf = if ki.btf_id != 0 { sys::btf_raw_by_id(ki.btf_id).ok().and_then(|r| Btf::parse(r).ok()) } else { None };
        let info = MapInfo {
            name: ki.name,
            map_type: ki.handle.map_type(),
            key_size: ki.handle.key_size() as u32,
            value_size: ki.handle.value_size() as u32,
            max_entries: ki.max_entries,
            flags: ki.flags,
            key_type_id: if btf.is_some() { ki.btf_key_type_id } else { 0 },
            value_type_id: if btf.is_some() { ki.btf_value_type_id } else { 0 },
            internal: false,
            handle: ki.handle,
        };
        let ncpus = sys::num_possible_cpus().map_err(Error::from)?;
        Ok(MapHandle { owner: Owner::Own(Arc::new(OwnedMap { _fd: fd, btf })), ncpus, info })
    }

    /// Opens the map pinned at `path` (on a bpffs).
    pub fn open_pinned(path: &str) -> Result<MapHandle> {
        let fd = sys::obj_get(path).map_err(|f| match Error::from(f) {
            Error::Os { errno, message } => Error::Map { errno, message },
            e => e,
        })?;
        MapHandle::from_fd(fd)
    }

    /// Opens the map with kernel id `id` (e.g. an inner map of a map-in-map).
    pub fn open_id(id: u32) -> Result<MapHandle> {
        let fd = sys::map_fd_by_id(id).map_err(Error::map)?;
        MapHandle::from_fd(fd)
    }

    /// The key type, from BTF (Void when the map has none).
    pub fn key_desc(&self) -> TypeDesc {
        self.desc(self.info.key_type_id)
    }

    /// The value type, from BTF (Void when the map has none).
    pub fn value_desc(&self) -> TypeDesc {
        self.desc(self.info.value_type_id)
    }

    fn desc(&self, id: u32) -> TypeDesc {
        if id == 0 {
            return TypeDesc::Void;
        }
        match &self.owner {
            Owner::Obj(o) => o.describe_type(id),
            Owner::Own(m) => m.btf.as_ref().map_or(TypeDesc::Void, |b| b.describe(id)),
        }
    }

    /// Pins the map at `path` (mounting bpffs at /sys/fs/bpf first if needed).
    pub fn pin(&self, path: &str) -> Result<()> {
        if path.starts_with("/sys/fs/bpf/") {
            host::ensure_mounted(host::Fs::Bpffs)?;
        }
        self.with(|| sys::obj_pin(&self.info.handle, path).map_err(Error::map))
    }

    /// Pushes onto a queue or stack, or adds to a bloom filter.
    pub fn push(&self, value: &[u8], flags: u64) -> Result<()> {
        self.check_value(value)?;
        self.with(|| sys::map_push(&self.info.handle, value, flags).map_err(Error::map))
    }

    /// Pops from a queue or stack; None when empty.
    pub fn pop(&self) -> Result<Option<Vec<u8>>> {
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            Ok(sys::map_pop(&self.info.handle, &mut v).map_err(Error::map)?.then_some(v))
        })
    }

    /// Peeks at a queue's or stack's head; None when empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            Ok(sys::map_peek(&self.info.handle, &mut v).map_err(Error::map)?.then_some(v))
        })
    }

    /// Whether a bloom filter may contain `value` (false means certainly not).
    pub fn bloom_contains(&self, value: &[u8]) -> Result<bool> {
        self.check_value(value)?;
        self.with(|| {
            let mut v = value.to_vec();
            sys::map_peek(&self.info.handle, &mut v).map_err(Error::map)
        })
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() != self.value_buf_size() {
            return Err(Error::Value(format!(
                "map `{}` takes {}-byte values, got {} bytes",
                self.info.name,
                self.value_buf_size(),
                value.len()
            )));
        }
        Ok(())
    }

    /// Bytes of one value as the syscalls see it (all CPUs' copies for per-CPU maps).
    pub fn value_buf_size(&self) -> usize {
        self.info.handle.value_buf_size()
    }

    /// The kernel fd (valid while the object is open).
    pub fn fd(&self) -> Result<i32> {
        self.with(|| Ok(self.info.handle.raw()))
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() != self.info.key_size as usize {
            return Err(Error::Value(format!(
                "map `{}` takes {}-byte keys, got {} bytes",
                self.info.name,
                self.info.key_size,
                key.len()
            )));
        }
        Ok(())
    }

    /// Looks `key` up.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        self.with(|| {
            let mut v = vec![0u8; self.value_buf_size()];
            let found = sys::map_lookup(&self.info.handle, key, &mut v).map_err(Error::map)?;
            Ok(found.then_some(v))
        })
    }

    /// Sets `key` to `value` (`flags`: 0 any, 1 only new, 2 only existing).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        self.check_key(key)?;
        self.check_value(value)?;
        self.with(|| {
            sys::map_update(&self.info.handle, key, value, flags).map_err(|f| match f.errno {
                libc::E2BIG => Error::Map { errno: f.errno, message: format!("map `{}` is full ({} entries)", self.info.name, self.info.max_entries) },
                _ => Error::map(f),
            })
        })
    }

    /// Deletes `key`; false if it was absent.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        self.with(|| sys::map_delete(&self.info.handle, key).map_err(Error::map))
    }

    /// Every key, by `get_next_key`, each at most once even if entries are deleted meanwhile
    /// (deleting the current key makes the kernel restart from the first key).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.with(|| {
            let ks = self.info.key_size as usize;
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            let mut cur: Option<Vec<u8>> = None;
            let limit = (self.info.max_entries as usize).saturating_mul(4).max(1024);
            for _ in 0..limit {
                let mut next = vec![0u8; ks];
                if !sys::map_next_key(&self.info.handle, cur.as_deref(), &mut next).map_err(Error::map)? {
                    break;
                }
                if seen.insert(next.clone()) {
                    out.push(next.clone());
                }
                cur = Some(next);
            }
            Ok(out)
        })
    }

    /// A snapshot of every entry as packed keys and values: `(count, keys, values)`. Uses batch
    /// lookups where the kernel has them (5.6+), else key iteration plus lookups.
    pub fn snapshot(&self) -> Result<(usize, Vec<u8>, Vec<u8>)> {
        let ks = self.info.key_size as usize;
        let vs = self.value_buf_size();
        match self.snapshot_batch(ks, vs) {
            Ok(r) => return Ok(r),
            Err(Error::Map { errno: libc::EINVAL | libc::EOPNOTSUPP | 524, .. }) => {}
            Err(e) => return Err(e),
        }
        let keys = self.keys()?;
        let (mut kout, mut vout, mut n) = (Vec::with_capacity(keys.len() * ks), Vec::with_capacity(keys.len() * vs), 0);
        for k in keys {
            if let Some(v) = self.lookup(&k)? {
                kout.extend_from_slice(&k);
                vout.extend_from_slice(&v);
                n += 1;
            }
        }
        Ok((n, kout, vout))
    }

    fn snapshot_batch(&self, ks: usize, vs: usize) -> Result<(usize, Vec<u8>, Vec<u8>)> {
        self.with(|| {
            let chunk = (self.info.max_entries as usize).clamp(1, 16384);
            let (mut keys, mut vals) = (Vec::new(), Vec::new());
            let mut total = 0usize;
            let cur_len = sys::batch_cursor_size(&self.info.handle);
            let mut cursor: Option<Vec<u8>> = None;
            let mut next = vec![0u8; cur_len];
            loop {
                keys.resize((total + chunk) * ks, 0);
                vals.resize((total + chunk) * vs, 0);
                let (n, done) = sys::map_lookup_batch(
                    &self.info.handle,
                    cursor.as_deref(),
                    &mut next,
                    &mut keys[total * ks..],
                    &mut vals[total * vs..],
                    chunk as u32,
                )
                .map_err(Error::map)?;
                total += n as usize;
                if done {
                    break;
                }
                cursor = Some(next.clone());
            }
            keys.truncate(total * ks);
            vals.truncate(total * vs);
            Ok((total, keys, vals))
        })
    }

    /// Removes every entry (hash maps) or zeroes every value (arrays).
    pub fn clear(&self) -> Result<()> {
        if self.info.map_type.is_array() {
            let zero = vec![0u8; self.value_buf_size()];
            for i in 0..self.info.max_entries {
                self.update(&i.to_le_bytes(), &zero, 0)?;
            }
            return Ok(());
        }
        // One pass of batch lookup-and-deletes (hash maps, 5.6+): a syscall per 16384 entries
        // instead of two per entry (1M entries: 0.4 s instead of 5.5 s). Without it (older
        // kernels, other map types), key by key.
        let h = &self.info.handle;
        let chunk = (self.info.max_entries as usize).clamp(1, 16384);
        let (mut keys, mut vals) = (vec![0u8; chunk * h.key_size()], vec![0u8; chunk * h.value_buf_size()]);
        let (mut cursor, mut next) = (None::<Vec<u8>>, vec![0u8; sys::batch_cursor_size(h)]);
        loop {
            let step = self.with(|| {
                sys::map_lookup_and_delete_batch(h, cursor.as_deref(), &mut next, &mut keys, &mut vals, chunk as u32)
                    .map_err(Error::map)
            });
            match step {
                Ok((_, true)) => return Ok(()),
                Ok((_, false)) => cursor = Some(next.clone()),
                Err(Error::Map { errno: libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSPC | ENOTSUPP, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        for k in self.keys()? {
            self.delete(&k)?;
        }
        Ok(())
    }
}

impl MapHandle {
    /// Maps a `BPF_F_MMAPABLE` array's values into memory: element `i` is at `i * stride`, with
    /// `stride` the value size rounded up to 8. Returns `(region, stride)`.
    pub fn mmap(&self) -> Result<(Arc<MmapRegion>, usize)> {
        if self.info.map_type != MapType::Array || self.info.flags & F_MMAPABLE == 0 {
            return Err(Error::Type(format!(
                "map `{}` is not an array declared with BPF_F_MMAPABLE (__uint(map_flags, BPF_F_MMAPABLE))",
                self.info.name
            )));
        }
        let stride = round8(self.info.value_size as usize);
        if let Owner::Obj(o) = &self.owner {
            if let Some(region) = o.mapped(&self.info.name)? {
                return Ok((region, stride));
            }
        }
        let region = self.with(|| MmapRegion::of_array(self.info.handle.borrow(), self.info.value_size, self.info.max_entries).map_err(Error::map))?;
        Ok((Arc::new(region), stride))
    }
}
