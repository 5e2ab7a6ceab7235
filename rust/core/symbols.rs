//! Addresses to names: kernel symbols from `/proc/kallsyms` (read once, then binary-searched),
//! user-space symbols through blazesym (ELF symbol tables, DWARF, build ids, demangling).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::Pid;
use once_cell::sync::Lazy;

use crate::core::error::{Error, Result};

/// A resolved symbol: name, offset of the address into it, and the module (kernel module
/// name, or the path of the binary or library).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Symbol name.
    pub name: String,
    /// Address minus the symbol's start.
    pub offset: u64,
    /// Module, if known.
    pub module: Option<String>,
}

struct Kallsyms {
    /// (address, name, module), sorted by address; text symbols only.
    text: Vec<(u64, String, Option<String>)>,
    /// Every symbol by name (first address wins).
    by_name: HashMap<String, u64>,
}

static KALLSYMS: Lazy<Mutex<Option<std::sync::Arc<Kallsyms>>>> = Lazy::new(|| Mutex::new(None));

/// One line of `/proc/kallsyms`: address, type letter, name, module (without brackets).
struct KallsymsLine<'a> {
    addr: u64,
    kind: &'a str,
    name: &'a str,
    module: Option<&'a str>,
}

impl KallsymsLine<'_> {
    /// A function: a text symbol, global or local, or a weak one.
    fn is_text(&self) -> bool {
        matches!(self.kind, "t" | "T" | "w" | "W")
    }
}

/// The lines of `/proc/kallsyms` (`ADDR TYPE NAME [MODULE]`); malformed lines are passed over.
/// The one reader of the format: the by-address table and the function list both use it.
fn kallsyms_lines(text: &str) -> impl Iterator<Item = KallsymsLine<'_>> {
    text.lines().filter_map(|line| {
        let mut it = line.split_ascii_whitespace();
        let (addr, kind, name) = (it.next()?, it.next()?, it.next()?);
        let addr = u64::from_str_radix(addr, 16).ok()?;
        let module = it.next().map(|m| m.trim_start_matches('[').trim_end_matches(']'));
        Some(KallsymsLine { addr, kind, name, module })
    })
}

fn parse_kallsyms(text: &str) -> Kallsyms {
    let mut syms = Vec::new();
    let mut by_name = HashMap::new();
    for l in kallsyms_lines(text) {
        by_name.entry(l.name.to_string()).or_insert(l.addr);
        if l.addr != 0 && l.is_text() {
            syms.push((l.addr, l.name.to_string(), l.module.map(str::to_string)));
        }
    }
    syms.sort_by_key(|s| s.0);
    Kallsyms { text: syms, by_name }
}

/// The names of the kernel's functions (text symbols of vmlinux and modules), in
/// `/proc/kallsyms` order without duplicates. Unlike [`ksym`], this reads the file afresh on
/// each call, so modules loaded since are in it, and it needs no privilege: names are shown
/// even where `kptr_restrict` hides the addresses.
pub fn kernel_functions() -> Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").map_err(|e| Error::io("reading /proc/kallsyms", &e))?;
    Ok(text_symbol_names(&text))
}

fn text_symbol_names(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    kallsyms_lines(text).filter(|l| l.is_text() && seen.insert(l.name)).map(|l| l.name.to_string()).collect()
}

fn kallsyms() -> Result<std::sync::Arc<Kallsyms>> {
    let mut g = KALLSYMS.lock().map_err(|_| Error::poisoned("kallsyms"))?;
    if let Some(k) = g.as_ref() {
        return Ok(k.clone());
    }
    let text = std::fs::read_to_string("/proc/kallsyms").map_err(|e| Error::io("reading /proc/kallsyms", &e))?;
    let k = std::sync::Arc::new(parse_kallsyms(&text));
    if k.text.is_empty() {
        return Err(Error::Privilege {
            errno: libc::EPERM,
            message: "/proc/kallsyms shows no addresses (kptr_restrict): kernel symbols need root".into(),
        });
    }
    *g = Some(k.clone());
    Ok(k)
}

/// The kernel symbol containing `addr` (the nearest text symbol at or below it).
pub fn ksym(addr: u64) -> Result<Option<Resolved>> {
    let k = kallsyms()?;
    let i = k.text.partition_point(|s| s.0 <= addr);
    if i == 0 {
        return Ok(None);
    }
    let (start, name, module) = &k.text[i - 1];
    Ok(Some(Resolved { name: name.clone(), offset: addr - start, module: module.clone() }))
}

/// The address of kernel symbol `name`.
pub fn ksymname(name: &str) -> Result<Option<u64>> {
    Ok(kallsyms()?.by_name.get(name).copied())
}

thread_local! {
    // blazesym's Symbolizer caches parsed ELF/DWARF data and is not Send: one per thread, with
    // and without demangling.
    static SYMBOLIZERS: [Symbolizer; 2] = [
        Symbolizer::builder().enable_demangling(false).enable_code_info(false).build(),
        Symbolizer::builder().enable_demangling(true).enable_code_info(false).build(),
    ];
}

/// The symbol containing `addr` in process `pid`'s address space.
pub fn usym(addr: u64, pid: u32, demangle: bool) -> Result<Option<Resolved>> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(Error::Value(format!("no process {pid}")));
    }
    let src = Source::Process(Process::new(Pid::from(pid)));
    SYMBOLIZERS.with(|syms| {
        let r = syms[usize::from(demangle)]
            .symbolize_single(&src, Input::AbsAddr(addr))
            .map_err(|e| Error::Os { errno: libc::EINVAL, message: format!("symbolizing {addr:#x} in process {pid}: {e}") })?;
        Ok(match r {
            Symbolized::Sym(sym) => Some(Resolved {
                name: sym.name.to_string(),
                offset: sym.offset as u64,
                module: sym.module.map(|m| m.to_string_lossy().into_owned()),
            }),
            Symbolized::Unknown(_) => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lookup_by_address_and_name() {
        let k = parse_kallsyms(
            "ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffff81000200 D some_data\n\
             ffffffffc0000000 t mod_fn\t[mymod]\n0000000000000000 A fixed\n",
        );
        assert_eq!(k.text.len(), 3);
        assert_eq!(k.by_name["some_data"], 0xffffffff81000200);
        let i = k.text.partition_point(|s| s.0 <= 0xffffffff81000150);
        assert_eq!(k.text[i - 1].1, "helper");
        assert_eq!(k.text[2].2.as_deref(), Some("mymod"));
    }

    #[test]
    fn kernel_function_names_keep_file_order_once_each_even_without_addresses() {
        let names = text_symbol_names(
            "0000000000000000 T b_fn\n0000000000000000 t a_fn\n0000000000000000 D data\n\
             0000000000000000 t a_fn\t[mod]\n0000000000000000 W weak_fn\nnot a line\n",
        );
        assert_eq!(names, ["b_fn", "a_fn", "weak_fn"]);
    }
}
