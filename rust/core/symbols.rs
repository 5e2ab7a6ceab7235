//! Addresses to names: kernel symbols from `/proc/kallsyms` (read once, then binary-searched),
//! user-space symbols through blazesym (ELF symbol tables, DWARF, build ids, demangling).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use blazesym::symbolize::source::{Elf, Process, Source};
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

/// The address of kernel symbol `name`. Until the whole of `/proc/kallsyms` has been read (by
/// [`ksym`], or after [`SCANS_BEFORE_TABLE`] lookups), the file is scanned only up to the name's
/// line: asking whether one function exists (a ladder's kprobe rung, `sys_getppid`) costs
/// 5-70 ms and no memory here, where the whole table costs 0.2 s and 30 MiB.
pub fn ksymname(name: &str) -> Result<Option<u64>> {
    // The names scanned for, and what was found (the file is read once per name, as the
    // whole table is read once).
    static SCANNED: Lazy<Mutex<HashMap<String, Option<u64>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
    let cached = KALLSYMS.lock().map_err(|_| Error::poisoned("kallsyms"))?.clone();
    if let Some(k) = cached {
        return Ok(k.by_name.get(name).copied());
    }
    let mut scanned = SCANNED.lock().map_err(|_| Error::poisoned("kallsyms"))?;
    if let Some(found) = scanned.get(name) {
        return Ok(*found);
    }
    if scanned.len() >= SCANS_BEFORE_TABLE {
        return Ok(kallsyms()?.by_name.get(name).copied());
    }
    let f = std::fs::File::open("/proc/kallsyms").map_err(|e| Error::io("reading /proc/kallsyms", &e))?;
    match scan_kallsyms(std::io::BufReader::with_capacity(1 << 16, f), name) {
        Ok(Some(0)) => Err(Error::Privilege {
            errno: libc::EPERM,
            message: "/proc/kallsyms shows no addresses (kptr_restrict): kernel symbols need root".into(),
        }),
        Ok(found) => {
            scanned.insert(name.to_string(), found);
            Ok(found)
        }
        Err(e) => Err(Error::io("reading /proc/kallsyms", &e)),
    }
}

/// How many names [`ksymname`] looks up by scanning before it reads the whole table instead.
const SCANS_BEFORE_TABLE: usize = 8;

/// The address on the first line of `kallsyms` naming `name`, read line by line up to it.
fn scan_kallsyms(mut kallsyms: impl std::io::BufRead, name: &str) -> std::io::Result<Option<u64>> {
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if kallsyms.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = std::str::from_utf8(&line).unwrap_or("");
        if let Some(l) = kallsyms_lines(text).next() {
            if l.name == name {
                return Ok(Some(l.addr));
            }
        }
    }
}

thread_local! {
    // blazesym's Symbolizer caches parsed ELF/DWARF data and is not Send: one per thread, with
    // and without demangling.
    static SYMBOLIZERS: [Symbolizer; 2] = [
        Symbolizer::builder().enable_demangling(false).enable_code_info(false).build(),
        Symbolizer::builder().enable_demangling(true).enable_code_info(false).build(),
    ];
}

/// An executable file mapping of a process: `[start, end)` maps `path` from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

/// How many processes' mappings are remembered at most; the oldest go first.
const REMEMBERED_MAX: usize = 4096;

/// The executable mappings of processes, remembered while they lived (see [`remember_process`]),
/// oldest first.
static REMEMBERED: Lazy<Mutex<Vec<ProcessMaps>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// A process id and its executable mappings.
type ProcessMaps = (u32, Vec<Mapping>);

/// The executable, file-backed mappings of a `/proc/PID/maps` text.
fn executable_mappings(maps: &str) -> Vec<Mapping> {
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(a, 16).ok()?,
                end: u64::from_str_radix(b, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_string(),
            })
        })
        .collect()
}

/// Remembers where process `pid`'s executable files are mapped, so that its user addresses can be
/// named after it exits (a stack tool sees a pid in a sample, the process is gone by the time the
/// tool prints). False when the process is already gone.
pub fn remember_process(pid: u32) -> bool {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else { return false };
    let m = executable_mappings(&maps);
    let mut g = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
    g.retain(|(p, _)| *p != pid);
    if g.len() >= REMEMBERED_MAX {
        g.remove(0);
    }
    g.push((pid, m));
    true
}

/// The symbol containing `addr` in process `pid`'s address space; for a process that has exited,
/// through the mappings [`remember_process`] saw (the files are read where they are on disk).
pub fn usym(addr: u64, pid: u32, demangle: bool) -> Result<Option<Resolved>> {
    let (src, input) = if Path::new(&format!("/proc/{pid}")).exists() {
        (Source::Process(Process::new(Pid::from(pid))), Input::AbsAddr(addr))
    } else {
        let g = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, maps)) = g.iter().rev().find(|(p, _)| *p == pid) else {
            return Err(Error::Value(format!("no process {pid}")));
        };
        let Some(m) = maps.iter().find(|m| m.start <= addr && addr < m.end) else { return Ok(None) };
        (Source::Elf(Elf::new(&m.path)), Input::FileOffset(addr - m.start + m.offset))
    };
    SYMBOLIZERS.with(|syms| {
        let r = syms[usize::from(demangle)]
            .symbolize_single(&src, input)
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
    fn executable_file_mappings_only() {
        let m = executable_mappings(
            "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 123 /usr/bin/cat\n\
             55d0c0a01000-55d0c0a05000 r-xp 00001000 08:01 123 /usr/bin/cat\n\
             7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n\
             7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0 [vdso]\n\
             7f1000000000-7f1000100000 r-xp 00028000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].start, m[0].end, m[0].offset, m[0].path.as_str()), (0x55d0c0a01000, 0x55d0c0a05000, 0x1000, "/usr/bin/cat"));
        assert_eq!(m[1].offset, 0x28000);
    }

    #[test]
    fn kallsyms_scanned_up_to_a_name() {
        let text = "ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffffc0000000 t mod_fn\t[mymod]\n\
                    ffffffffc0000100 t helper\t[mymod]\n";
        assert_eq!(scan_kallsyms(text.as_bytes(), "helper").unwrap(), Some(0xffffffff81000100));
        assert_eq!(scan_kallsyms(text.as_bytes(), "mod_fn").unwrap(), Some(0xffffffffc0000000));
        assert_eq!(scan_kallsyms(text.as_bytes(), "help").unwrap(), None);
        assert_eq!(scan_kallsyms(&b"garbage\n"[..], "garbage").unwrap(), None);
    }

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
