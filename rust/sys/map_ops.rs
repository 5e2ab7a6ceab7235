//! Map syscalls on a [`MapFd`]: lookup, update, delete, iteration, batches, queue/stack/bloom.
//!
//! Every call here hands the kernel buffers that it writes into or reads from, sized by the
//! map's key and value sizes. A [`MapFd`] carries those sizes as the kernel (or libbpf, which
//! asked the kernel) reported them, and only this module makes one, so each call checks its
//! buffers against sizes the caller cannot get wrong: a short buffer is an `EINVAL` failure
//! naming both sizes, never a write past its end.

#[allow(unused_imports)]
use super::*;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::types::MapType;

/// A map's fd together with the sizes the kernel gave for it.
///
/// It does not own the fd: the core keeps the owner (the object, or an `OwnedFd`) open for as
/// long as it uses a `MapFd`, under the object's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFd {
    fd: RawFd,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    value_buf: usize,
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

impl MapFd {
    fn new(fd: RawFd, map_type: u32, key_size: u32, value_size: u32) -> Result<MapFd, Failure> {
        let map_type = MapType::from_raw(map_type);
        let value_buf = if map_type.is_percpu() {
            // The kernel copies one value per possible CPU, each rounded up to 8 bytes.
            round8(value_size as usize) * num_possible_cpus()?
        } else {
            value_size as usize
        };
        Ok(MapFd { fd, map_type, key_size, value_size, value_buf })
    }

    /// The fd, for calls that only name the map.
    pub fn raw(&self) -> RawFd {
        self.fd
    }
    /// The fd, borrowed: valid while the map's owner keeps it open, which the core guarantees
    /// for as long as it holds a `MapFd` (under the object's lock).
    pub fn borrow(&self) -> BorrowedFd<'_> {
        // SAFETY: see above; a MapFd is only made for an open map fd.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
    /// The map's type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }
    /// Key size in bytes (0 for queues, stacks and bloom filters).
    pub fn key_size(&self) -> usize {
        self.key_size as usize
    }
    /// Value size in bytes, per CPU for per-CPU maps.
    pub fn value_size(&self) -> usize {
        self.value_size as usize
    }
    /// The bytes one value occupies in a lookup buffer: the value size, or for per-CPU maps one
    /// 8-byte-aligned slot per possible CPU.
    pub fn value_buf_size(&self) -> usize {
        self.value_buf
    }

    fn check_key(&self, key: &[u8], what: &str) -> Result<(), Failure> {
        if key.len() != self.key_size as usize {
            return Err(Failure {
                errno: libc::EINVAL,
                context: format!("{what}: the key is {} bytes, the map's keys are {}", key.len(), self.key_size),
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8], count: usize, what: &str) -> Result<(), Failure> {
        let need = self.value_buf.saturating_mul(count);
        if value.len() < need {
            return Err(Failure {
                errno: libc::EINVAL,
                context: format!("{what}: a {}-byte buffer for {count} value(s) of {} bytes", value.len(), self.value_buf),
            });
        }
        Ok(())
    }
}

impl Map<'_> {
    /// This map's fd with its sizes (valid while the object is open and loaded).
    pub fn map_fd(&self) -> Result<MapFd, Failure> {
        if self.fd() < 0 {
            return Err(Failure { errno: libc::EBADF, context: format!("map `{}` is not loaded", self.name()) });
        }
        MapFd::new(self.fd(), self.map_type(), self.key_size(), self.value_size())
    }
}

fn found(r: Result<c_int, Failure>) -> Result<bool, Failure> {
    match r {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_LOOKUP_ELEM`: the value of `key` into `value`. Ok(false) when the key is absent.
pub fn map_lookup(m: &MapFd, key: &[u8], value: &mut [u8]) -> Result<bool, Failure> {
    m.check_key(key, "looking up a key")?;
    m.check_value(value, 1, "looking up a key")?;
    // SAFETY: key holds key_size bytes and value at least one value buffer, both checked above
    // against the sizes the kernel reported for this map.
    let ret = unsafe { lb::bpf_map_lookup_elem(m.fd, key.as_ptr().cast(), value.as_mut_ptr().cast()) };
    found(check(ret, || "looking up a key".to_string()))
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
pub fn map_update(m: &MapFd, key: &[u8], value: &[u8], flags: u64) -> Result<(), Failure> {
    m.check_key(key, "updating a key")?;
    m.check_value(value, 1, "updating a key")?;
    // SAFETY: sizes checked above; the kernel only reads the buffers.
    let ret = unsafe { lb::bpf_map_update_elem(m.fd, key.as_ptr().cast(), value.as_ptr().cast(), flags) };
    check(ret, || "updating a key".to_string()).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`. Ok(false) when the key was absent.
pub fn map_delete(m: &MapFd, key: &[u8]) -> Result<bool, Failure> {
    m.check_key(key, "deleting a key")?;
    // SAFETY: key size checked above.
    let ret = unsafe { lb::bpf_map_delete_elem(m.fd, key.as_ptr().cast()) };
    found(check(ret, || "deleting a key".to_string()))
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key when `key` is None or absent)
/// into `next`. Ok(false) at the end.
pub fn map_next_key(m: &MapFd, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, Failure> {
    if let Some(k) = key {
        m.check_key(k, "iterating keys")?;
    }
    m.check_key(next, "iterating keys")?;
    let k = key.map_or(ptr::null(), |k| k.as_ptr().cast());
    // SAFETY: key (if any) and next hold exactly key_size bytes (checked above).
    let ret = unsafe { lb::bpf_map_get_next_key(m.fd, k, next.as_mut_ptr().cast()) };
    found(check(ret, || "iterating keys".to_string()))
}

/// The size a batch cursor must have: the kernel writes a key (arrays) or a bucket number
/// (hashes) into it.
pub fn batch_cursor_size(m: &MapFd) -> usize {
    m.key_size().max(8)
}

/// The libbpf batch calls that read entries out (they share one signature).
type BatchFn = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void, *mut c_void, *mut c_void, *mut u32, *const lb::bpf_map_batch_opts) -> c_int;

/// One `BPF_MAP_LOOKUP_BATCH` step of up to `count` entries. `cursor` is None for the first
/// call; `next_cursor` receives the cursor for the following call. Returns (entries read,
/// finished).
pub fn map_lookup_batch(
    m: &MapFd,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<(u32, bool), Failure> {
    batch(lb::bpf_map_lookup_batch, "batch lookup", m, cursor, next_cursor, keys, values, count)
}

/// One `BPF_MAP_LOOKUP_AND_DELETE_BATCH` step of up to `count` entries (hash maps, 5.6+): reads
/// and deletes them. `cursor` is None for the first call; `next_cursor` receives the cursor for
/// the following call. Returns (entries read and deleted, finished).
pub fn map_lookup_and_delete_batch(
    m: &MapFd,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<(u32, bool), Failure> {
    batch(lb::bpf_map_lookup_and_delete_batch, "batch lookup and delete", m, cursor, next_cursor, keys, values, count)
}

#[allow(clippy::too_many_arguments)] // the batch call's own arguments, plus which call and its name
fn batch(
    call: BatchFn,
    what: &str,
    m: &MapFd,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<(u32, bool), Failure> {
    check_batch(m, cursor, next_cursor, keys, values, count, what)?;
    let mut got = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    let inb = cursor.map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_void);
    // SAFETY: `call` is one of libbpf's batch reads; keys and values hold `count` entries and
    // the cursors hold a cursor (checked by check_batch); the kernel only reads `in_batch`;
    // opts outlives the call.
    let ret = unsafe {
        call(m.fd, inb, next_cursor.as_mut_ptr().cast(), keys.as_mut_ptr().cast(), values.as_mut_ptr().cast(), &mut got, &opts)
    };
    match check(ret, || what.to_string()) {
        Ok(_) => Ok((got, false)),
        Err(f) if f.errno == libc::ENOENT => Ok((got, true)),
        Err(f) => Err(f),
    }
}

/// The size checks of a batch call: cursors of [`batch_cursor_size`], `count` keys and values.
fn check_batch(m: &MapFd, cursor: Option<&[u8]>, next_cursor: &[u8], keys: &[u8], values: &[u8], count: u32, what: &str) -> Result<(), Failure> {
    let cur = batch_cursor_size(m);
    if next_cursor.len() < cur || cursor.is_some_and(|c| c.len() < cur) {
        return Err(Failure { errno: libc::EINVAL, context: format!("{what}: a batch cursor needs {cur} bytes") });
    }
    let n = count as usize;
    if keys.len() < m.key_size().saturating_mul(n) {
        return Err(Failure { errno: libc::EINVAL, context: format!("{what}: a {}-byte buffer for {n} keys", keys.len()) });
    }
    m.check_value(values, n, what)
}

/// `BPF_MAP_DELETE_BATCH` of the keys packed in `keys` (a whole number of keys). Returns how many
/// were deleted.
pub fn map_delete_batch(m: &MapFd, keys: &[u8]) -> Result<u32, Failure> {
    let ks = m.key_size();
    if ks == 0 || keys.len() % ks != 0 {
        return Err(Failure { errno: libc::EINVAL, context: format!("batch delete: {} bytes is not a whole number of {ks}-byte keys", keys.len()) });
    }
    let count = u32::try_from(keys.len() / ks).map_err(|_| Failure { errno: libc::E2BIG, context: "batch delete: too many keys".into() })?;
    let mut n = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    // SAFETY: keys holds exactly `count` keys of the map's key size (checked above).
    let ret = unsafe { lb::bpf_map_delete_batch(m.fd, keys.as_ptr().cast(), &mut n, &opts) };
    check(ret, || "batch delete".to_string()).map(|_| n)
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` with no key: pops from a queue or stack map. Ok(false) when
/// empty.
pub fn map_pop(m: &MapFd, value: &mut [u8]) -> Result<bool, Failure> {
    m.check_value(value, 1, "popping a value")?;
    // SAFETY: value holds one value (checked); queue/stack maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_and_delete_elem(m.fd, ptr::null(), value.as_mut_ptr().cast()) };
    found(check(ret, || "popping a value".to_string()))
}

/// `BPF_MAP_LOOKUP_ELEM` with no key: peeks at a queue/stack head, or asks a bloom filter
/// whether `value` may be present. Ok(false) when empty or absent.
pub fn map_peek(m: &MapFd, value: &mut [u8]) -> Result<bool, Failure> {
    m.check_value(value, 1, "peeking")?;
    // SAFETY: value holds one value (checked); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_elem(m.fd, ptr::null(), value.as_mut_ptr().cast()) };
    found(check(ret, || "peeking".to_string()))
}

/// `BPF_MAP_UPDATE_ELEM` with no key: pushes onto a queue/stack, or adds to a bloom filter.
pub fn map_push(m: &MapFd, value: &[u8], flags: u64) -> Result<(), Failure> {
    m.check_value(value, 1, "pushing a value")?;
    // SAFETY: value holds one value (checked); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_update_elem(m.fd, ptr::null(), value.as_ptr().cast(), flags) };
    check(ret, || "pushing a value".to_string()).map(drop)
}

/// Pins the map at `path` on a bpffs.
pub fn obj_pin(m: &MapFd, path: &str) -> Result<(), Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_pin(m.fd, p.as_ptr()) };
    check(ret, || format!("pinning at {path}")).map(drop)
}

fn owned_fd(ret: c_int) -> OwnedFd {
    // SAFETY: a successful bpf() call returned a fresh fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(ret) }
}

/// Opens the object pinned at `path`.
pub fn obj_get(path: &str) -> Result<OwnedFd, Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_get(p.as_ptr()) };
    check(ret, || format!("opening pinned object {path}")).map(owned_fd)
}

/// An fd for the map with kernel id `id`.
pub fn map_fd_by_id(id: u32) -> Result<OwnedFd, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::bpf_map_get_fd_by_id(id) };
    check(ret, || format!("opening map id {id}")).map(owned_fd)
}

/// What the kernel says of a map, by fd.
#[derive(Debug, Clone)]
pub struct KernelMapInfo {
    /// The map's fd with its sizes, borrowed from the fd given.
    pub handle: MapFd,
    /// Kernel id.
    pub id: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Flags.
    pub flags: u32,
    /// Name (up to 15 bytes).
    pub name: String,
    /// Id of the BTF object holding its types, 0 if none.
    pub btf_id: u32,
    /// Key type in that BTF.
    pub btf_key_type_id: u32,
    /// Value type in that BTF.
    pub btf_value_type_id: u32,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map.
pub fn map_info_by_fd(fd: BorrowedFd<'_>) -> Result<KernelMapInfo, Failure> {
    // SAFETY: all-zero is a valid bpf_map_info.
    let mut info: lb::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<lb::bpf_map_info>() as u32;
    // SAFETY: info is valid for len bytes, and the kernel writes at most len.
    let ret = unsafe { lb::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    check(ret, || "reading map info".to_string())?;
    let name_bytes: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(KernelMapInfo {
        handle: MapFd::new(fd.as_raw_fd(), info.type_, info.key_size, info.value_size)?,
        id: info.id,
        max_entries: info.max_entries,
        flags: info.map_flags,
        name: String::from_utf8_lossy(&name_bytes).into_owned(),
        btf_id: info.btf_id,
        btf_key_type_id: info.btf_key_type_id,
        btf_value_type_id: info.btf_value_type_id,
    })
}

/// Number of possible CPUs: the stride of per-CPU map values.
pub fn num_possible_cpus() -> Result<usize, Failure> {
    // SAFETY: no arguments; libbpf parses /sys/devices/system/cpu/possible once.
    let n = unsafe { lb::libbpf_num_possible_cpus() };
    check(n, || "counting possible CPUs".to_string()).map(|n| n as usize)
}

/// Which kernel object ids to enumerate.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    /// Loaded programs.
    Prog,
    /// Maps.
    Map,
    /// Links.
    Link,
}

/// Ids of every program, map or link in the kernel (needs CAP_SYS_ADMIN).
pub fn object_ids(kind: IdKind) -> Result<Vec<u32>, Failure> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: next is a valid out-pointer.
        let ret = unsafe {
            match kind {
                IdKind::Prog => lb::bpf_prog_get_next_id(id, &mut next),
                IdKind::Map => lb::bpf_map_get_next_id(id, &mut next),
                IdKind::Link => lb::bpf_link_get_next_id(id, &mut next),
            }
        };
        match check(ret, || format!("listing {kind:?} ids")) {
            Ok(_) => {
                out.push(next);
                id = next;
            }
            Err(f) if f.errno == libc::ENOENT => return Ok(out),
            Err(f) => return Err(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The size checks run before any syscall, so a bogus fd shows they refuse without the kernel.
    fn fake(key: u32, value: u32) -> MapFd {
        MapFd { fd: -1, map_type: MapType::Hash, key_size: key, value_size: value, value_buf: value as usize }
    }

    #[test]
    fn wrong_sizes_are_refused_before_the_kernel_sees_them() {
        let m = fake(4, 8);
        let mut small = [0u8; 4];
        let e = map_lookup(&m, &[0u8; 4], &mut small).unwrap_err();
        assert_eq!(e.errno, libc::EINVAL);
        assert!(e.context.contains("4-byte buffer"), "{e:?}");
        assert!(map_lookup(&m, &[0u8; 3], &mut [0u8; 8]).unwrap_err().context.contains("the key is 3 bytes"));
        assert_eq!(map_update(&m, &[0u8; 4], &[0u8; 7], 0).unwrap_err().errno, libc::EINVAL);
        assert_eq!(map_delete(&m, &[0u8; 5]).unwrap_err().errno, libc::EINVAL);
        assert_eq!(map_next_key(&m, None, &mut [0u8; 2]).unwrap_err().errno, libc::EINVAL);
        assert_eq!(map_pop(&m, &mut [0u8; 1]).unwrap_err().errno, libc::EINVAL);
        assert_eq!(map_push(&m, &[0u8; 1], 0).unwrap_err().errno, libc::EINVAL);
        assert_eq!(map_delete_batch(&m, &[0u8; 6]).unwrap_err().errno, libc::EINVAL);
        let (mut cur, mut k, mut v) = ([0u8; 8], [0u8; 8], [0u8; 15]);
        // Two entries asked for, room for less than two values.
        assert_eq!(map_lookup_batch(&m, None, &mut cur, &mut k, &mut v, 2).unwrap_err().errno, libc::EINVAL);
        let mut short_cur = [0u8; 4];
        assert_eq!(map_lookup_batch(&m, None, &mut short_cur, &mut k, &mut [0u8; 16], 2).unwrap_err().errno, libc::EINVAL);
    }

    #[test]
    fn right_sizes_reach_the_kernel() {
        // With correct sizes the call is made, and the bogus fd is what fails.
        let m = fake(4, 8);
        assert_eq!(map_lookup(&m, &[0u8; 4], &mut [0u8; 8]).unwrap_err().errno, libc::EBADF);
    }
}
