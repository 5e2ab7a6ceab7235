//! libbpf's BTF objects and btf_dump, for vmlinux.h.

#[allow(unused_imports)]
use super::*;

/// A BTF object owned by libbpf, used to print C declarations.
pub struct Btf {
    ptr: NonNull<lb::btf>,
}

// SAFETY: a struct btf is heap data; it is only read after construction.
unsafe impl Send for Btf {}
impl Btf {
    /// Parses raw BTF bytes (libbpf copies them).
    pub fn from_raw(data: &[u8]) -> Result<Btf, Failure> {
        install_print_hook();
        // SAFETY: data is valid for its length; libbpf copies it.
        let p = unsafe { lb::btf__new(data.as_ptr().cast(), data.len() as u32) };
        check_ptr(p, || "parsing kernel BTF".to_string()).map(|ptr| Btf { ptr })
    }

    /// C declarations for `ids` and everything they need, in dependency order, each type once.
    pub fn dump_c(&self, ids: impl IntoIterator<Item = u32>) -> Result<String, Failure> {
        let mut out = String::new();
        // SAFETY: all-zero is a valid btf_dump_opts.
        let mut opts: lb::btf_dump_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<lb::btf_dump_opts>() as _;
        // SAFETY: self.ptr is live; `out` outlives the dumper (freed below); dump_printf matches
        // the callback type and appends to the String behind ctx.
        let d = unsafe {
            lb::btf_dump__new(self.ptr.as_ptr(), Some(dump_printf), (&mut out as *mut String).cast(), &opts)
        };
        let d = check_ptr(d, || "creating a BTF dumper".to_string())?;
        let mut result = Ok(());
        for id in ids {
            // SAFETY: d is live; ids beyond the BTF are rejected by libbpf with -EINVAL.
            let ret = unsafe { lb::btf_dump__dump_type(d.as_ptr(), id) };
            if let Err(f) = check(ret, || format!("printing BTF type {id}")) {
                result = Err(f);
                break;
            }
        }
        // SAFETY: d was created above and is freed once.
        unsafe { lb::btf_dump__free(d.as_ptr()) };
        result.map(|_| out)
    }
}

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: we own the btf and free it once.
        unsafe { lb::btf__free(self.ptr.as_ptr()) };
    }
}

unsafe extern "C" fn dump_printf(ctx: *mut c_void, fmt: *const c_char, ap: *mut lb::__va_list_tag) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx is the &mut String passed to btf_dump__new, alive for the dump.
        let out = unsafe { &mut *ctx.cast::<String>() };
        // SAFETY: libbpf's own format string and arguments.
        out.push_str(&unsafe { format_va(fmt, ap) });
    }));
}
