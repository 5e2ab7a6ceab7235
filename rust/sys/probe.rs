//! Raw loads, links and map creations that the kernel feature probes make.

#[allow(unused_imports)]
use super::*;

/// `r0 = ret; exit`, as raw instructions (mov64 r0, imm; exit).
pub(super) fn return_insns(ret: i32) -> [u64; 2] {
    [0xb7 | (u64::from(ret as u32) << 32), 0x95]
}

pub(super) fn owned(fd: c_int) -> std::os::fd::OwnedFd {
    // SAFETY: callers pass a fresh fd returned by the kernel that nothing else owns.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// Loads `r0 = ret; exit` as a program of `prog_type` with the expected attach type and BTF
/// target given (0 for none), without a log.
pub fn probe_prog_load(prog_type: u32, expected_attach: u32, attach_btf_id: u32, ret: i32) -> Result<std::os::fd::OwnedFd, Failure> {
    let insns = return_insns(ret);
    let mut opts = lb::bpf_prog_load_opts {
        sz: std::mem::size_of::<lb::bpf_prog_load_opts>() as _,
        expected_attach_type: expected_attach,
        attach_btf_id,
        ..Default::default()
    };
    // SAFETY: insns are two valid 8-byte instructions (bpf_insn is 8 bytes); the strings are
    // static; opts is valid for the call.
    let ret = unsafe {
        lb::bpf_prog_load(
            prog_type,
            c"bpfkit_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut opts,
        )
    };
    check(ret, || format!("loading a probe program of type {prog_type} (attach type {expected_attach})")).map(owned)
}

/// Target of a probing `BPF_LINK_CREATE`.
#[derive(Debug, Clone)]
pub enum ProbeLink {
    /// Plain: no extra attributes.
    Plain,
    /// A multi-kprobe on these names.
    KprobeMulti(Vec<String>),
    /// A multi-uprobe on `path` at file offset 0.
    UprobeMulti(String),
}

/// `BPF_LINK_CREATE` for a feature probe; the link (if made) is closed at once.
pub fn probe_link_create(prog_fd: i32, target_fd: i32, attach_type: u32, how: &ProbeLink) -> Result<(), Failure> {
    let mut opts = lb::bpf_link_create_opts { sz: std::mem::size_of::<lb::bpf_link_create_opts>() as _, ..Default::default() };
    let names: Vec<CString>;
    let mut ptrs: Vec<*const c_char>;
    let path: CString;
    let offsets: [libc::c_ulong; 1] = [0];
    match how {
        ProbeLink::Plain => {}
        ProbeLink::KprobeMulti(syms) => {
            names = syms.iter().map(|s| cstring(s, "function")).collect::<Result<_, _>>()?;
            ptrs = names.iter().map(|c| c.as_ptr()).collect();
            opts.__bindgen_anon_1.kprobe_multi = lb::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_2 {
                cnt: ptrs.len() as _,
                syms: ptrs.as_mut_ptr(),
                ..Default::default()
            };
        }
        ProbeLink::UprobeMulti(p) => {
            path = cstring(p, "path")?;
            opts.__bindgen_anon_1.uprobe_multi = lb::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
                cnt: 1,
                path: path.as_ptr(),
                offsets: offsets.as_ptr(),
                ..Default::default()
            };
        }
    }
    // SAFETY: opts and everything it points to outlive the call.
    let ret = unsafe { lb::bpf_link_create(prog_fd, target_fd, attach_type, &opts) };
    check(ret, || format!("creating a probe link of attach type {attach_type}")).map(|fd| drop(owned(fd)))
}

/// `libbpf_probe_bpf_prog_type`: Ok(true) when the kernel has the program type.
pub fn probe_prog_type(prog_type: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_prog_type(prog_type, ptr::null()) };
    check(ret, || format!("probing program type {prog_type}")).map(|r| r == 1)
}

/// `libbpf_probe_bpf_map_type`: Ok(true) when the kernel has the map type.
pub fn probe_map_type(map_type: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_map_type(map_type, ptr::null()) };
    check(ret, || format!("probing map type {map_type}")).map(|r| r == 1)
}

/// `libbpf_probe_bpf_helper`: Ok(true) when programs of `prog_type` may call helper `helper`.
pub fn probe_helper(prog_type: u32, helper: u32) -> Result<bool, Failure> {
    // SAFETY: no pointers.
    let ret = unsafe { lb::libbpf_probe_bpf_helper(prog_type, helper, ptr::null()) };
    check(ret, || format!("probing helper {helper} for program type {prog_type}")).map(|r| r == 1)
}

/// Creates a map (for probes); the caller owns the fd.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, flags: u32) -> Result<std::os::fd::OwnedFd, Failure> {
    let opts = lb::bpf_map_create_opts { sz: std::mem::size_of::<lb::bpf_map_create_opts>() as _, map_flags: flags, ..Default::default() };
    // SAFETY: the name is static; opts is valid for the call.
    let ret = unsafe { lb::bpf_map_create(map_type, c"bpfkit_probe".as_ptr(), key_size, value_size, max_entries, &opts) };
    check(ret, || format!("creating a map of type {map_type} (flags {flags:#x})")).map(owned)
}

/// The id of type `name` of BTF kind `kind` in the kernel's own BTF.
pub fn vmlinux_type_id(name: &str, kind: u32) -> Result<u32, Failure> {
    let cname = cstring(name, "type name")?;
    // SAFETY: no arguments; returns an owned btf or NULL with errno.
    let btf = check_ptr(unsafe { lb::btf__load_vmlinux_btf() }, || "loading the kernel's BTF".to_string())?;
    // SAFETY: btf is live until freed below; cname outlives the call.
    let id = unsafe { lb::btf__find_by_name_kind(btf.as_ptr(), cname.as_ptr(), kind) };
    // SAFETY: freed once.
    unsafe { lb::btf__free(btf.as_ptr()) };
    check(id, || format!("finding `{name}` in the kernel's BTF")).map(|id| id as u32)
}
