//! Programs and BTF by id.

#[allow(unused_imports)]
use super::*;


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
