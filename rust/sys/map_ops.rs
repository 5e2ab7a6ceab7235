//! Map syscalls on an fd: lookup, update, delete, iteration and batches.

#[allow(unused_imports)]
use super::*;

/// `BPF_MAP_LOOKUP_ELEM`. Ok(false) when the key is absent.
pub fn map_lookup(fd: i32, key: &[u8], value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: key and value are valid for the map's key and value sizes (callers check sizes).
    let ret = unsafe { lb::bpf_map_lookup_elem(fd, key.as_ptr().cast(), value.as_mut_ptr().cast()) };
    match check(ret, || "looking up a key".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
pub fn map_update(fd: i32, key: &[u8], value: &[u8], flags: u64) -> Result<(), Failure> {
    // SAFETY: key and value are valid for the map's sizes (callers check sizes).
    let ret = unsafe { lb::bpf_map_update_elem(fd, key.as_ptr().cast(), value.as_ptr().cast(), flags) };
    check(ret, || "updating a key".to_string()).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`. Ok(false) when the key was absent.
pub fn map_delete(fd: i32, key: &[u8]) -> Result<bool, Failure> {
    // SAFETY: key is valid for the map's key size (callers check).
    let ret = unsafe { lb::bpf_map_delete_elem(fd, key.as_ptr().cast()) };
    match check(ret, || "deleting a key".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key when `key` is None or absent).
/// Ok(false) at the end.
pub fn map_next_key(fd: i32, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, Failure> {
    let k = key.map_or(ptr::null(), |k| k.as_ptr().cast());
    // SAFETY: key (if any) and next are valid for the map's key size (callers check).
    let ret = unsafe { lb::bpf_map_get_next_key(fd, k, next.as_mut_ptr().cast()) };
    match check(ret, || "iterating keys".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` step. `cursor` is None for the first call; `next_cursor` receives
/// the cursor for the following call. Returns (entries read, finished).
pub fn map_lookup_batch(
    fd: i32,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<(u32, bool), Failure> {
    let mut n = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    let inb = cursor.map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_void);
    // SAFETY: keys/values hold `count` entries (callers size them), cursors hold at least the
    // key size (and at least 8 bytes), opts outlives the call.
    let ret = unsafe {
        lb::bpf_map_lookup_batch(
            fd,
            inb,
            next_cursor.as_mut_ptr().cast(),
            keys.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &mut n,
            &opts,
        )
    };
    match check(ret, || "batch lookup".to_string()) {
        Ok(_) => Ok((n, false)),
        Err(f) if f.errno == libc::ENOENT => Ok((n, true)),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_DELETE_BATCH` of `count` keys packed in `keys`. Returns how many were deleted.
pub fn map_delete_batch(fd: i32, keys: &[u8], count: u32) -> Result<u32, Failure> {
    let mut n = count;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    // SAFETY: keys holds `count` packed keys (callers check).
    let ret = unsafe { lb::bpf_map_delete_batch(fd, keys.as_ptr().cast(), &mut n, &opts) };
    check(ret, || "batch delete".to_string()).map(|_| n)
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

/// One `BPF_MAP_LOOKUP_AND_DELETE_BATCH` step (hash maps, 5.6+): reads and deletes up to
/// `keys.len() / key_size` entries. `cursor` is None for the first call; `next_cursor` receives
/// the cursor for the following one. Returns (entries read and deleted, finished). The sizes are
/// checked here: `keys` and `values` must hold whole entries of `key_size` and `value_size`
/// bytes (the per-CPU stride included), the cursors at least the key size and 8 bytes.
pub fn map_lookup_and_delete_batch(
    fd: i32,
    key_size: usize,
    value_size: usize,
    cursor: Option<&[u8]>,
    next_cursor: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
) -> Result<(u32, bool), Failure> {
    let count = keys.len().checked_div(key_size).unwrap_or(0).min(values.len().checked_div(value_size).unwrap_or(0));
    let cur_min = key_size.max(8);
    if count == 0 || next_cursor.len() < cur_min || cursor.is_some_and(|c| c.len() < cur_min) {
        return Err(Failure { errno: libc::EINVAL, context: "batch lookup and delete: buffers too small".to_string() });
    }
    let mut n = count.min(u32::MAX as usize) as u32;
    // SAFETY: all-zero is a valid bpf_map_batch_opts.
    let mut opts: lb::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<lb::bpf_map_batch_opts>() as _;
    let inb = cursor.map_or(ptr::null_mut(), |c| c.as_ptr() as *mut c_void);
    // SAFETY: keys and values hold `n` entries of the given sizes and the cursors the key size
    // (all checked above); the kernel writes no more; opts outlives the call.
    let ret = unsafe {
        lb::bpf_map_lookup_and_delete_batch(
            fd,
            inb,
            next_cursor.as_mut_ptr().cast(),
            keys.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &mut n,
            &opts,
        )
    };
    match check(ret, || "batch lookup and delete".to_string()) {
        Ok(_) => Ok((n, false)),
        Err(f) if f.errno == libc::ENOENT => Ok((n, true)),
        Err(f) => Err(f),
    }
}
