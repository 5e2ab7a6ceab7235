//! The kernel types an object's CO-RE relocations can match, cut out of the kernel's BTF once per
//! object and kernel and kept in the cache.
//!
//! libbpf resolves CO-RE relocations against the kernel's BTF: at every load it parses all of
//! `/sys/kernel/btf/vmlinux` (about 150,000 types) and scans it once per relocated type. That is
//! most of what a warm load costs, for a handful of structs. Handed a small BTF holding just the
//! types those relocations name (see [`Btf::core_subset`]) through `btf_custom_path`, libbpf
//! computes the same offsets, sizes and answers from it. The subset is used only when it cannot
//! change a result:
//!
//! * no relocation names a type that a module's BTF has and the kernel's has not in a compatible
//!   kind (a struct vmlinux only forward-declares, say, is found in the module that defines it:
//!   libbpf looks in the modules only when vmlinux has no candidate; a type found nowhere is fine,
//!   no candidate either way). The modules loaded are part of the cache key, so loading one
//!   makes a new decision;
//! * no relocation asks for a kernel type id (`bpf_core_type_id_kernel()`), which a renumbered
//!   subset would get wrong, and none is a `bpf_core_type_matches()`, whose rules look deeper;
//! * libbpf still loads the whole kernel BTF itself for what is not CO-RE (typed `__ksym`
//!   externs, `tp_btf`, fentry and LSM programs), so those keep working unchanged.

use std::collections::HashSet;

use crate::core::btf::{essential_name, Btf};
use crate::core::cache::{sha256_hex, Cache};
use crate::core::compile;
use crate::core::elf;
use crate::core::error::{Error, Result};

/// `bpf_core_relo_kind` values that rule out a subset: `BPF_CORE_TYPE_ID_TARGET` (a kernel type
/// id) and `BPF_CORE_TYPE_MATCHES`; `BPF_CORE_TYPE_ID_LOCAL` needs no kernel type at all.
const TYPE_ID_LOCAL: u32 = 6;
const TYPE_ID_TARGET: u32 = 7;
const TYPE_MATCHES: u32 = 12;
const LAST_KNOWN_KIND: u32 = 12;

/// Part of every subset's cache key: a change to how subsets are cut or decided must not reuse
/// what an older version cached.
const SUBSET_VERSION: &str = "core-btf-2";

/// What an object's CO-RE relocations need of the kernel's BTF.
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    /// No CO-RE relocations: libbpf does not read the kernel's BTF for CO-RE.
    Nothing,
    /// The whole BTF, for the reason given.
    Whole(&'static str),
    /// The types of these (essential name, BTF kind) roots, and what they reach.
    Types(HashSet<(String, u8)>),
}

fn bad(what: &str) -> Error {
    Error::Value(format!("malformed .BTF.ext: {what}"))
}

/// What the CO-RE relocations of ELF object `image` need of the kernel's BTF.
pub fn needs(image: &[u8]) -> Result<Needs> {
    let Some(ext) = elf::section_in(image, ".BTF.ext")? else { return Ok(Needs::Nothing) };
    let rd = |o: usize| -> Result<u32> {
        ext.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| bad("truncated"))
    };
    if ext.len() < 8 || u16::from_le_bytes([ext[0], ext[1]]) != 0xeb9f {
        return Err(bad("bad magic"));
    }
    let hdr_len = rd(4)? as usize;
    // The CO-RE relocation section was added to the header later: an older header has none.
    if hdr_len < 32 {
        return Ok(Needs::Nothing);
    }
    let (off, len) = (rd(24)? as usize, rd(28)? as usize);
    if len == 0 {
        return Ok(Needs::Nothing);
    }
    let start = hdr_len.checked_add(off).ok_or_else(|| bad("offset"))?;
    let end = start.checked_add(len).filter(|&e| e <= ext.len()).ok_or_else(|| bad("relocations run past the end"))?;
    let Some(btf) = elf::section_in(image, ".BTF")? else { return Err(bad("CO-RE relocations without .BTF")) };
    let btf = Btf::parse(btf.to_vec())?;
    let rec_size = rd(start)? as usize;
    if rec_size < 16 {
        return Err(bad("relocation record size"));
    }
    let mut names = HashSet::new();
    let mut o = start + 4;
    while o < end {
        let count = rd(o + 4)? as usize;
        o += 8;
        for _ in 0..count {
            if o + rec_size > end {
                return Err(bad("a relocation runs past the end"));
            }
            let (type_id, kind) = (rd(o + 4)?, rd(o + 12)?);
            o += rec_size;
            match kind {
                TYPE_ID_LOCAL => continue,
                TYPE_ID_TARGET => return Ok(Needs::Whole("a relocation asks for a kernel type id")),
                TYPE_MATCHES => return Ok(Needs::Whole("a relocation is a bpf_core_type_matches()")),
                k if k > LAST_KNOWN_KIND => return Ok(Needs::Whole("a relocation kind this version does not know")),
                _ => {}
            }
            let name = essential_name(btf.name(type_id));
            if name.is_empty() {
                return Ok(Needs::Whole("a relocation on an anonymous type"));
            }
            names.insert((name.to_string(), btf.kind(type_id)));
        }
    }
    Ok(if names.is_empty() { Needs::Nothing } else { Needs::Types(names) })
}

/// The kernel BTF to hand libbpf for CO-RE when loading `image`: `Some(bytes)` of a subset when
/// one can stand in for the whole (built on first use, then read back from the cache, where it is
/// content-addressed and checked like a compiled object), `None` when libbpf should read the
/// whole BTF itself or needs none.
pub fn kernel_btf_for(image: &[u8], cache: &Cache) -> Result<Option<Vec<u8>>> {
    let roots = match needs(image)? {
        Needs::Types(roots) => roots,
        Needs::Nothing | Needs::Whole(_) => return Ok(None),
    };
    let modules = module_btfs();
    let listed: Vec<String> = modules.iter().map(|(m, ino)| format!("{m}:{ino}")).collect();
    let inputs = format!("{SUBSET_VERSION}|{}|{}|{}", sha256_hex(image), compile::btf_identity(cache)?, listed.join(","));
    let key = format!("core-btf-{}", sha256_hex(inputs.as_bytes()));
    if let Some(found) = cache.get_object(&key)? {
        // An empty entry records that no subset can stand in for this object on this kernel.
        return Ok((!found.is_empty()).then_some(found));
    }
    let kernel = compile::kernel_btf()?;
    let subset = match kernel.parsed.core_subset(&roots) {
        Some((subset, missing)) if missing.is_empty() || !in_a_module(&missing, &kernel.parsed, &modules) => {
            Some(subset)
        }
        _ => None,
    };
    cache.put_object(&key, subset.as_deref().unwrap_or_default())?;
    Ok(subset)
}

/// The modules that have BTF (`/sys/kernel/btf/*` but `vmlinux`) with their sysfs inode (a
/// module unloaded and loaded again, perhaps rebuilt, gets a new one), sorted by name.
fn module_btfs() -> Vec<(String, u64)> {
    use std::os::unix::fs::DirEntryExt;
    let mut mods: Vec<(String, u64)> = std::fs::read_dir("/sys/kernel/btf")
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name().into_string().ok()?, e.ino()))
            })
            .filter(|(n, _)| n != "vmlinux")
            .collect()
        })
        .unwrap_or_default();
    mods.sort();
    mods
}

/// Whether any of `modules`' BTF has a type of one of `names`. A module's BTF that cannot be
/// read or parsed counts as having them (the whole BTF is the safe answer).
fn in_a_module(names: &[String], kernel: &Btf, modules: &[(String, u64)]) -> bool {
    modules.iter().any(|(m, _)| {
        let Ok(raw) = std::fs::read(format!("/sys/kernel/btf/{m}")) else { return true };
        let Ok(btf) = Btf::parse(raw) else { return true };
        // Bound to a name so that the iterator borrowing `btf` ends before `btf` does.
        #[allow(clippy::let_and_return)]
        let found = btf.split_names(kernel).any(|n| names.iter().any(|w| w == n));
        found
    })
}
