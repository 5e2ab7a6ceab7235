//! Queue/stack/bloom operations, pinning, and maps, programs and BTF by id.

#[allow(unused_imports)]
use super::*;

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` with no key: pops from a queue or stack map. Ok(false) when
/// empty.
pub fn map_pop(fd: i32, value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: value is the map's value size (callers check); queue/stack maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_and_delete_elem(fd, ptr::null(), value.as_mut_ptr().cast()) };
    match check(ret, || "popping a value".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_LOOKUP_ELEM` with no key: peeks at a queue/stack head, or asks a bloom filter
/// whether `value` may be present. Ok(false) when empty or absent.
pub fn map_peek(fd: i32, value: &mut [u8]) -> Result<bool, Failure> {
    // SAFETY: value is the map's value size (callers check); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_lookup_elem(fd, ptr::null(), value.as_mut_ptr().cast()) };
    match check(ret, || "peeking".to_string()) {
        Ok(_) => Ok(true),
        Err(f) if f.errno == libc::ENOENT => Ok(false),
        Err(f) => Err(f),
    }
}

/// `BPF_MAP_UPDATE_ELEM` with no key: pushes onto a queue/stack, or adds to a bloom filter.
pub fn map_push(fd: i32, value: &[u8], flags: u64) -> Result<(), Failure> {
    // SAFETY: value is the map's value size (callers check); these maps take a NULL key.
    let ret = unsafe { lb::bpf_map_update_elem(fd, ptr::null(), value.as_ptr().cast(), flags) };
    check(ret, || "pushing a value".to_string()).map(drop)
}

/// Pins the object behind `fd` at `path` on a bpffs.
pub fn obj_pin(fd: i32, path: &str) -> Result<(), Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_pin(fd, p.as_ptr()) };
    check(ret, || format!("pinning at {path}")).map(drop)
}

/// Opens the object pinned at `path`; the caller owns the returned fd.
pub fn obj_get(path: &str) -> Result<i32, Failure> {
    let p = cstring(path, "pin path")?;
    // SAFETY: p is NUL-terminated and outlives the call.
    let ret = unsafe { lb::bpf_obj_get(p.as_ptr()) };
    check(ret, || format!("opening pinned object {path}"))
}

/// An fd for the map with kernel id `id`; the caller owns it.
pub fn map_fd_by_id(id: u32) -> Result<i32, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::bpf_map_get_fd_by_id(id) };
    check(ret, || format!("opening map id {id}"))
}

/// What the kernel says of a map, by fd.
#[derive(Debug, Clone, Default)]
pub struct KernelMapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Kernel id.
    pub id: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
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
pub fn map_info_by_fd(fd: i32) -> Result<KernelMapInfo, Failure> {
    // SAFETY: all-zero is a valid bpf_map_info.
    let mut info: lb::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<lb::bpf_map_info>() as u32;
    // SAFETY: info is valid for len bytes.
    let ret = unsafe { lb::bpf_map_get_info_by_fd(fd, &mut info, &mut len) };
    check(ret, || "reading map info".to_string())?;
    let name_bytes: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(KernelMapInfo {
        map_type: info.type_,
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
        name: String::from_utf8_lossy(&name_bytes).into_owned(),
        btf_id: info.btf_id,
        btf_key_type_id: info.btf_key_type_id,
        btf_value_type_id: info.btf_value_type_id,
    })
}

/// The raw bytes of kernel BTF object `id`.
pub fn btf_raw_by_id(id: u32) -> Result<Vec<u8>, Failure> {
    install_print_hook();
    // SAFETY: no pointer arguments; the result is owned here and freed below.
    let p = unsafe { lb::btf__load_from_kernel_by_id(id) };
    let p = check_ptr(p, || format!("loading BTF id {id}"))?;
    let mut size: u32 = 0;
    // SAFETY: p is live; raw_data points to `size` bytes owned by it.
    let data = unsafe { lb::btf__raw_data(p.as_ptr(), &mut size) };
    let out = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: data is valid for size bytes while p lives.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    };
    // SAFETY: freed once.
    unsafe { lb::btf__free(p.as_ptr()) };
    Ok(out)
}

/// An fd for the program with kernel id `id`; the caller owns it.
pub fn prog_fd_by_id(id: u32) -> Result<i32, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::bpf_prog_get_fd_by_id(id) };
    check(ret, || format!("opening program id {id}"))
}
