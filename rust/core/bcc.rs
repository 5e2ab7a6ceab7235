//! BCC's C dialect, translated to libbpf C on CO-RE before it is compiled.
//!
//! BCC rewrites a program with clang's AST; most of its dialect needs much less. The map macros,
//! their defaults and methods, the program macros and `bpf_trace_printk` are C macros in
//! `rust/bpf/bcc/helpers.h`; this translator, a C tokenizer that leaves comments, strings and
//! line breaks where they are, does what a macro cannot:
//!
//! - `name.method(args)` on a map becomes `__bcc_m_method(&name, args)` (a macro of the header);
//!   a method BCC does not have is an error naming it and its line;
//! - `BPF_TABLE("hash", ...)` names its kind as a token, and `BPF_HISTOGRAM` becomes an array
//!   (an `int` key, as BCC makes it) or a hash, with its defaults written out;
//! - a function named `kprobe__fn`, `kretprobe__fn`, `tracepoint__cat__event` or
//!   `raw_tracepoint__event` gets its `SEC()`; a function whose first parameter is
//!   `struct pt_regs *` and that names the probed function's arguments after it reads them from
//!   the registers (`PT_REGS_PARMn`, through the inner registers for a `syscall__` function);
//! - each `TRACEPOINT_PROBE(cat, event)` gets the struct of its `args`, made from the
//!   tracepoint's format as the running kernel describes it;
//! - `#include <linux/...>`, `<uapi/...>`, `<net/...>`, `<asm/...>` and `<bcc/...>` are
//!   satisfied by `vmlinux.h` (every kernel type, from BTF) and the header, so they are dropped.
//!
//! The output keeps the user's lines where they were (`#line`), so clang's messages name them.

use std::collections::HashSet;

use crate::core::cache::Cache;
use crate::core::compile::{self, Request};
use crate::core::error::{Error, Result};

/// A token of C source: its text and where it starts (byte offset and 1-based line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    start: usize,
    end: usize,
    line: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Char,
    Punct,
    /// A whole preprocessor line (with its continuations).
    Directive,
}

/// The tokens of `src`, without comments and whitespace.
fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
            line_start = true;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let at_line = line;
        if c == b'#' && line_start {
            // A directive runs to the end of the line, continuations included.
            while i < b.len() && b[i] != b'\n' {
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\n' {
                    line += 1;
                    i += 2;
                    continue;
                }
                if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
                    // A comment inside a directive may span lines.
                    i = skip_block_comment(b, i, &mut line);
                    continue;
                }
                i += 1;
            }
            out.push(Tok { start, end: i, line: at_line, kind: Kind::Directive });
            continue;
        }
        line_start = false;
        if c == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            i = skip_block_comment(b, i, &mut line);
            continue;
        }
        let kind = if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            if c == b'"' {
                Kind::Str
            } else {
                Kind::Char
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Kind::Ident
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            Kind::Number
        } else {
            i += if b[i..].starts_with(b"->") { 2 } else { 1 };
            Kind::Punct
        };
        out.push(Tok { start, end: i.min(b.len()), line: at_line, kind });
    }
    out
}

/// The index after the `/* ... */` comment starting at `i`, counting its line breaks.
fn skip_block_comment(b: &[u8], mut i: usize, line: &mut usize) -> usize {
    i += 2;
    while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
        *line += usize::from(b[i] == b'\n');
        i += 1;
    }
    (i + 2).min(b.len())
}

/// The BCC map declarations: macro name and the position of the map's name among its arguments.
const MAP_MACROS: &[(&str, usize)] = &[
    ("BPF_TABLE_PINNED", 3),
    ("BPF_ARRAY_OF_MAPS", 0),
    ("BPF_HASH_OF_MAPS", 0),
    ("BPF_HASH", 0),
    ("BPF_ARRAY", 0),
    ("BPF_HISTOGRAM", 0),
    ("BPF_PERCPU_HASH", 0),
    ("BPF_PERCPU_ARRAY", 0),
    ("BPF_LRU_HASH", 0),
    ("BPF_LPM_TRIE", 0),
    ("BPF_STACK_TRACE", 0),
    ("BPF_PERF_OUTPUT", 0),
    ("BPF_PERF_ARRAY", 0),
    ("BPF_RINGBUF_OUTPUT", 0),
    ("BPF_PROG_ARRAY", 0),
    ("BPF_CGROUP_ARRAY", 0),
    ("BPF_QUEUE", 0),
    ("BPF_STACK", 0),
    ("BPF_DEVMAP", 0),
    ("BPF_CPUMAP", 0),
    ("BPF_XSKMAP", 0),
    ("BPF_SOCKMAP", 0),
    ("BPF_SOCKHASH", 0),
    ("BPF_SK_STORAGE", 0),
    ("BPF_TASK_STORAGE", 0),
    ("BPF_INODE_STORAGE", 0),
    ("BPF_TABLE", 3),
    ("BPF_F_TABLE", 3),
    ("BPF_TABLE_PUBLIC", 3),
    ("BPF_TABLE_SHARED", 3),
];

/// The kinds `BPF_TABLE("kind", ...)` takes (the header's `__BCC_TABLE_<kind>`).
const TABLE_KINDS: &[&str] = &[
    "hash", "array", "histogram", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "lpm_trie",
    "stacktrace", "prog", "perf_output", "perf_array", "cgroup_array", "devmap", "cpumap", "xskmap", "sockmap",
    "sockhash", "queue", "stack",
];

/// The map methods of BCC's reference guide (the header's `__bcc_m_<method>`).
const METHODS: &[&str] = &[
    "lookup", "lookup_or_init", "lookup_or_try_init", "update", "insert", "delete", "increment",
    "atomic_increment", "perf_submit", "perf_submit_skb", "ringbuf_output", "ringbuf_reserve", "ringbuf_submit",
    "ringbuf_discard", "get_stackid", "push", "pop", "peek", "call", "redirect_map", "perf_read",
    "perf_counter_value", "check_current_task", "sock_map_update", "sock_hash_update", "msg_redirect_map",
    "msg_redirect_hash", "sk_redirect_map", "sk_redirect_hash", "sk_storage_get", "sk_storage_delete",
    "task_storage_get", "task_storage_delete", "inode_storage_get", "inode_storage_delete",
];

/// Program macros of the dialect (their presence marks a source as BCC's).
const PROGRAM_MACROS: &[&str] = &["TRACEPOINT_PROBE", "RAW_TRACEPOINT_PROBE", "KFUNC_PROBE", "KRETFUNC_PROBE", "LSM_PROBE"];

/// Include prefixes satisfied by `vmlinux.h` and `bcc/helpers.h`.
const KERNEL_INCLUDES: &[&str] = &["linux/", "uapi/", "net/", "asm/", "bcc/"];

/// Whether `src` is written in BCC's dialect: it declares a map or a program the BCC way, names
/// a program function with BCC's prefixes, or includes kernel headers as BCC programs do; and it
/// has no libbpf `SEC()`.
pub fn is_bcc(src: &str) -> bool {
    let toks = tokenize(src);
    let text = |t: &Tok| &src[t.start..t.end];
    if toks.iter().any(|t| t.kind == Kind::Ident && text(t) == "SEC") {
        return false;
    }
    toks.iter().any(|t| match t.kind {
        Kind::Ident => {
            let s = text(t);
            MAP_MACROS.iter().any(|(m, _)| *m == s)
                || PROGRAM_MACROS.contains(&s)
                || ["kprobe__", "kretprobe__", "tracepoint__", "raw_tracepoint__", "syscall__"].iter().any(|p| s.starts_with(p))
        }
        Kind::Directive => include_path(text(t)).is_some_and(|p| KERNEL_INCLUDES.iter().any(|k| p.starts_with(k))),
        _ => false,
    })
}

/// The path of an `#include <path>` or `#include "path"` directive.
fn include_path(directive: &str) -> Option<&str> {
    let rest = directive.strip_prefix('#')?.trim_start().strip_prefix("include")?.trim();
    let (open, close) = match rest.chars().next()? {
        '<' => ('<', '>'),
        '"' => ('"', '"'),
        _ => return None,
    };
    rest.strip_prefix(open)?.split(close).next()
}

/// One field of a tracepoint's format: its declaration, offset and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatField {
    /// The declaration as the format gives it (`const char * filename`, `char comm[16]`).
    pub decl: String,
    /// Byte offset in the record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Whether it is signed.
    pub signed: bool,
}

/// The fields of a tracepoint format file (`events/<cat>/<event>/format`), common ones included.
pub fn parse_format(text: &str) -> Vec<FormatField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else { continue };
        let mut decl = "";
        let (mut offset, mut size, mut signed) = (None, None, false);
        for part in rest.split(';') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v.trim() == "1";
            } else if decl.is_empty() && !part.is_empty() {
                decl = part;
            }
        }
        if let (Some(offset), Some(size)) = (offset, size) {
            out.push(FormatField { decl: decl.to_string(), offset, size, signed });
        }
    }
    out
}

/// The struct of a TRACEPOINT_PROBE's `args`: the format's fields at their offsets. A field of a
/// type C cannot be sure of (a kernel typedef such as `pid_t`, `__data_loc char[]`) is given an
/// integer of its size and sign, under its own name; pointers and plain C types keep theirs.
pub fn format_struct(name: &str, fields: &[FormatField]) -> String {
    let mut s = format!("struct {name} {{\n");
    let mut at = 0usize;
    let mut fields: Vec<&FormatField> = fields.iter().collect();
    fields.sort_by_key(|f| f.offset);
    for (i, f) in fields.iter().enumerate() {
        if f.offset < at {
            continue; // overlapping: a union the format flattens
        }
        if f.offset > at {
            s.push_str(&format!("\tchar __pad_{i}[{}];\n", f.offset - at));
        }
        s.push_str(&format!("\t{};\n", field_decl(f)));
        at = f.offset + f.size;
    }
    s.push_str("} __attribute__((packed));\n");
    s
}

fn field_decl(f: &FormatField) -> String {
    let decl = f.decl.trim();
    let (ty, name) = match decl.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']')) {
        Some(i) => (decl[..=i].trim(), decl[i + 1..].trim()),
        None => ("", decl),
    };
    let (base, array) = match name.find('[') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let plain = |t: &str| {
        t.split_whitespace().all(|w| {
            ["const", "volatile", "unsigned", "signed", "char", "short", "int", "long", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "bool", "void", "*"]
                .contains(&w.trim_end_matches('*'))
                || w == "*"
        })
    };
    if ty.contains("__data_loc") && f.size == 4 {
        // Offset (low 16 bits) and length of the data, in the record: BCC names the field
        // `data_loc_NAME` (its TP_DATA_LOC_READ macros use that), the format `NAME`.
        return format!("union {{ u32 {base}; u32 data_loc_{base}; }}");
    }
    if ty.contains('*') && !ty.contains("__data_loc") {
        return format!("{ty} {base}{array}");
    }
    if !ty.contains("__data_loc") && plain(ty) && !ty.is_empty() && natural_size(ty).is_some_and(|n| {
        let count: usize = array.trim_matches(|c| c == '[' || c == ']').parse().unwrap_or(1);
        n * count.max(1) == f.size
    }) {
        return format!("{ty} {base}{array}");
    }
    // An integer of the field's size (an array of them for an array of a kernel type).
    let n: usize = array.trim_matches(|c| c == '[' || c == ']').parse().unwrap_or(1).max(1);
    let elem = if array.is_empty() { f.size } else { f.size / n };
    let int = match (elem, f.signed) {
        (1, true) => "s8",
        (1, false) => "u8",
        (2, true) => "s16",
        (2, false) => "u16",
        (4, true) => "s32",
        (4, false) => "u32",
        (8, true) => "s64",
        _ => "u64",
    };
    if array.is_empty() || elem == 0 || f.size % n != 0 {
        if f.size > 8 || ![1, 2, 4, 8].contains(&f.size) {
            return format!("u8 {base}[{}]", f.size);
        }
        return format!("{int} {base}");
    }
    format!("{int} {base}[{n}]")
}

/// The size of a plain C type on the BPF target (a syscall tracepoint's `int dfd` is 8 bytes
/// in its format: such a field gets an integer of the format's size instead).
fn natural_size(ty: &str) -> Option<usize> {
    let words: Vec<&str> = ty.split_whitespace().filter(|w| !matches!(*w, "const" | "volatile" | "signed" | "unsigned")).collect();
    Some(match words.as_slice() {
        [] | ["int"] | ["u32"] | ["s32"] => 4,
        ["char"] | ["u8"] | ["s8"] | ["bool"] => 1,
        ["short"] | ["short", "int"] | ["u16"] | ["s16"] => 2,
        ["long"] | ["long", "int"] | ["long", "long"] | ["long", "long", "int"] | ["u64"] | ["s64"] => 8,
        _ => return None,
    })
}

/// What the translator asks of the running kernel: a tracepoint's format file, whether it has
/// kprobes, and how its syscall functions are named.
pub trait Kernel {
    /// The text of `events/<cat>/<event>/format`.
    fn tracepoint_format(&self, cat: &str, event: &str) -> Result<String>;
    /// Whether kprobes can be attached. Without them, BCC's syscall kprobes become the
    /// syscall's tracepoints (see [`program_variants`]).
    fn kprobes(&self) -> bool {
        true
    }
    /// The prefix of the syscall entry functions (`__x64_sys_` on x86-64), which BCC puts in
    /// front of `kprobe__sys_NAME`.
    fn syscall_prefix(&self) -> String {
        "sys_".into()
    }
    /// The member names of the kernel's struct `name`, anonymous members' included (None: no
    /// such struct).
    fn struct_members(&self, name: &str) -> Option<HashSet<String>> {
        let _ = name;
        None
    }
    /// The kernel's build configuration (`CONFIG_X=y` lines), if it can be read.
    fn config(&self) -> Option<String> {
        None
    }
}

/// The `CONFIG_` macros of the kernel's configuration, as its headers define them for BCC's
/// programs (`#ifdef CONFIG_ARCH_HAS_SYSCALL_WRAPPER`): `y` is 1, `m` defines `CONFIG_X_MODULE`,
/// numbers and strings are their values. Without a configuration to read, the one fact BCC's
/// tools test most is known from the kernel's own symbols: syscall functions behind a wrapper.
fn config_defines(kernel: &dyn Kernel) -> String {
    let mut out = String::new();
    match kernel.config() {
        Some(config) => {
            for line in config.lines() {
                let Some((name, value)) = line.split_once('=') else { continue };
                if !name.starts_with("CONFIG_") || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    continue;
                }
                let value = value.trim();
                let def = match value {
                    "y" => format!("#define {name} 1\n"),
                    "m" => format!("#define {name}_MODULE 1\n"),
                    "n" | "" => continue,
                    v if v.starts_with('"') || v.parse::<i64>().is_ok() || v.starts_with("0x") => format!("#define {name} {v}\n"),
                    _ => continue,
                };
                out.push_str(&def);
            }
        }
        None if kernel.syscall_prefix() != "sys_" => out.push_str("#define CONFIG_ARCH_HAS_SYSCALL_WRAPPER 1\n"),
        None => {}
    }
    out
}

/// The running kernel, through tracefs.
pub struct Running;

impl Kernel for Running {
    fn tracepoint_format(&self, cat: &str, event: &str) -> Result<String> {
        let dir = crate::core::host::tracing_dir()?;
        let path = format!("{dir}/events/{cat}/{event}/format");
        std::fs::read_to_string(&path).map_err(|e| Error::Compile {
            message: format!("TRACEPOINT_PROBE({cat}, {event}): no such tracepoint on this kernel ({path}: {e})"),
            diagnostics: String::new(),
        })
    }

    fn kprobes(&self) -> bool {
        // Asked for every function of a program; the answer cannot change while we run.
        static KPROBES: once_cell::sync::Lazy<bool> = once_cell::sync::Lazy::new(|| crate::core::host::kprobes_unavailable().is_none());
        *KPROBES
    }

    fn struct_members(&self, name: &str) -> Option<HashSet<String>> {
        compile::kernel_struct_members(name).ok().flatten()
    }

    fn config(&self) -> Option<String> {
        crate::core::host::kernel_config()
    }

    fn syscall_prefix(&self) -> String {
        static PREFIX: once_cell::sync::Lazy<&'static str> = once_cell::sync::Lazy::new(|| {
            ["__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "__ia32_sys_", "__se_sys_"]
            .into_iter()
            .find(|p| crate::core::symbols::ksymname(&format!("{p}getppid")).ok().flatten().is_some())
            .unwrap_or("sys_")
        });
        PREFIX.to_string()
    }
}

/// The suffixes of the tracepoint copies of a function that takes registers, made on a kernel
/// without kprobes (see [`program_variants`]).
pub const SYS_ENTER_SUFFIX: &str = "__bcc_sys_enter";
pub const SYS_EXIT_SUFFIX: &str = "__bcc_sys_exit";

/// How a program function probes a syscall on a kernel without kprobes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SysProbe {
    /// A syscall tracepoint program: `exit` for `sys_exit_*`; `section` its `SEC()`.
    Tracepoint { exit: bool, section: String },
}

/// The syscall a kernel function name probes: `sys_kill`, `__x64_sys_kill` give `kill`.
fn syscall_of<'a>(func: &'a str, prefix: &str) -> Option<&'a str> {
    func.strip_prefix(prefix).or_else(|| func.strip_prefix("sys_")).filter(|n| !n.is_empty())
}

/// For a function named the BCC way that probes a syscall, on a kernel without kprobes: the
/// syscall tracepoint it becomes (if the kernel has it). `kprobe__sys_kill` is
/// `tracepoint/syscalls/sys_enter_kill`, `kretprobe__sys_kill` its `sys_exit_kill`, a
/// `syscall__NAME` function (attached later by name) a tracepoint program whose target the
/// attach call gives, and a copy made by [`program_variants`] the same.
fn syscall_probe(name: &str, kernel: &dyn Kernel) -> Option<SysProbe> {
    if kernel.kprobes() {
        return None;
    }
    let bare = || SysProbe::Tracepoint { exit: false, section: "tracepoint".into() };
    if name.starts_with("syscall__") || name.ends_with(SYS_ENTER_SUFFIX) {
        return Some(bare());
    }
    if name.ends_with(SYS_EXIT_SUFFIX) {
        return Some(SysProbe::Tracepoint { exit: true, section: "tracepoint".into() });
    }
    let (exit, func) = match (name.strip_prefix("kprobe__"), name.strip_prefix("kretprobe__")) {
        (Some(f), _) => (false, f),
        (_, Some(f)) => (true, f),
        _ => return None,
    };
    let sys = syscall_of(func, &kernel.syscall_prefix())?;
    let event = format!("sys_{}_{sys}", if exit { "exit" } else { "enter" });
    kernel.tracepoint_format("syscalls", &event).ok()?;
    Some(SysProbe::Tracepoint { exit, section: format!("tracepoint/syscalls/{event}") })
}

/// The `PT_REGS_*` macros redefined around a function that runs as a syscall tracepoint: the
/// arguments come from `sys_enter`'s `args[]`, the return value from `sys_exit`'s `ret`.
fn register_macros(exit: bool) -> (String, String) {
    let mut names: Vec<(String, String)> = Vec::new();
    if exit {
        for m in ["PT_REGS_RC", "PT_REGS_RC_CORE"] {
            names.push((m.into(), "(((struct trace_event_raw_sys_exit *)(x))->ret)".into()));
        }
    } else {
        for n in 1..=6 {
            let v = format!("(((struct trace_event_raw_sys_enter *)(x))->args[{}])", n - 1);
            for m in ["PT_REGS_PARM{n}", "PT_REGS_PARM{n}_CORE", "PT_REGS_PARM{n}_SYSCALL", "PT_REGS_PARM{n}_CORE_SYSCALL"] {
                names.push((m.replace("{n}", &n.to_string()), v.clone()));
            }
        }
    }
    let (mut push, mut pop) = (String::new(), String::new());
    for (m, v) in &names {
        push.push_str(&format!("#pragma push_macro(\"{m}\")\n#undef {m}\n#define {m}(x) {v}\n"));
        pop.push_str(&format!("#pragma pop_macro(\"{m}\")\n"));
    }
    (push, pop)
}

/// Copies of program functions for the kinds BCC would load them as at attach time. An untyped
/// function ([`untyped`]) gets a perf event and a tracepoint copy ([`KIND_SUFFIXES`]).
/// On a kernel without kprobes, BCC's syscall probes as syscall tracepoints (as BCC's own
/// killsnoop, statsnoop and syncsnoop need): a function with `SEC` from [`syscall_probe`] runs
/// in place with its `PT_REGS_*` macros reading the tracepoint; any other function that takes
/// registers (attached later by name: a kprobe, or a uprobe) gets tracepoint copies next to it,
/// `NAME__bcc_sys_enter` and, if it reads a return value, `NAME__bcc_sys_exit`, which
/// `attach_kprobe(event=<a syscall function>, fn_name=NAME)` attaches to the syscall's
/// tracepoint instead. The user's lines keep their numbers (`#line`).
fn program_variants(src: &str, display: &str, kernel: &dyn Kernel) -> String {
    let toks = tokenize(src);
    let text = |i: usize| &src[toks[i].start..toks[i].end];
    let file = display.replace('\\', "\\\\").replace('"', "\\\"");
    let mut edits: Vec<(usize, String)> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        match text(i) {
            "{" => depth += 1,
            "}" => depth -= 1,
            _ => {}
        }
        if depth != 0 || toks[i].kind != Kind::Ident || !(i + 1 < toks.len() && text(i + 1) == "(") {
            i += 1;
            continue;
        }
        let name = text(i);
        let (Some(close), true) = (matching(&toks, src, i + 1), i + 1 < toks.len()) else {
            i += 1;
            continue;
        };
        if !(close + 1 < toks.len() && text(close + 1) == "{") {
            i += 1;
            continue;
        }
        let Some(end) = matching(&toks, src, close + 1) else { break };
        // The declaration starts after the previous one's end.
        let mut first = i;
        while first > 0 && !matches!(text(first - 1), ";" | "}") && toks[first - 1].kind != Kind::Directive {
            first -= 1;
        }
        let takes_regs = split_args(&toks, src, i + 1).first().is_some_and(|&(s, e)| {
            let p: Vec<&str> = src[s..e].split(|c: char| c.is_whitespace() || c == '*').filter(|w| !w.is_empty()).collect();
            p.len() >= 3 && p[0] == "struct" && p[1] == "pt_regs"
        });
        let start_line = toks[first].line;
        if untyped(&toks, src, i) && program_prefix(name).is_none() && context_section(&toks, src, i).is_some() {
            let body = &src[toks[first].start..toks[end].end];
            let name_at = toks[i].start - toks[first].start;
            let mut copies = String::new();
            for (suffix, _) in KIND_SUFFIXES {
                let copy = format!("{}{name}{suffix}{}", &body[..name_at], &body[name_at + name.len()..]);
                copies.push_str(&format!("\n#line {start_line} \"{file}\"\n{copy}"));
            }
            edits.push((toks[end].end, format!("{copies}\n#line {} \"{file}\"\n", toks[end].line)));
        } else if let Some(SysProbe::Tracepoint { exit, .. }) = syscall_probe(name, kernel).filter(|_| takes_regs) {
            let (push, pop) = register_macros(exit);
            edits.push((toks[first].start, format!("\n{push}#line {start_line} \"{file}\"\n")));
            edits.push((toks[end].end, format!("\n{pop}#line {} \"{file}\"\n", toks[end].line)));
        } else if takes_regs && !kernel.kprobes() && program_prefix(name).is_none() && context_section(&toks, src, i).is_some() {
            let ctx_name = split_args(&toks, src, i + 1).first().and_then(|&(s, e)| {
                src[s..e].rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).find(|w| !w.is_empty())
            });
            let direct = ctx_name.is_some_and(|c| toks[close..end].windows(2).any(|w| &src[w[0].start..w[0].end] == c && &src[w[1].start..w[1].end] == "->"));
            let body = &src[toks[first].start..toks[end].end];
            if !direct {
                let mut copies = String::new();
                let reads_rc = body.contains("PT_REGS_RC");
                for (exit, suffix) in [(false, SYS_ENTER_SUFFIX), (true, SYS_EXIT_SUFFIX)] {
                    if exit && !reads_rc {
                        continue;
                    }
                    let (push, pop) = register_macros(exit);
                    let name_at = toks[i].start - toks[first].start;
                    let copy = format!("{}{name}{suffix}{}", &body[..name_at], &body[name_at + name.len()..]);
                    copies.push_str(&format!("\n{push}#line {start_line} \"{file}\"\n{copy}\n{pop}"));
                }
                edits.push((toks[end].end, format!("{copies}#line {} \"{file}\"\n", toks[end].line)));
            }
        }
        i = end + 1;
    }
    let mut out = src.to_string();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (at, text) in edits {
        out.insert_str(at, &text);
    }
    out
}

fn fail(display: &str, line: usize, what: String) -> Error {
    let message = format!("{display}:{line}: error: {what}");
    Error::Compile { diagnostics: message.clone(), message }
}

/// `src` (BCC's dialect) as libbpf C: see the module's documentation. `display` names the source
/// in `#line` and in errors.
pub fn translate(src: &str, display: &str, kernel: &dyn Kernel) -> Result<String> {
    let with_variants = program_variants(src, display, kernel);
    let src = with_variants.as_str();
    let toks = tokenize(src);
    let text = |i: usize| &src[toks[i].start..toks[i].end];
    let is = |i: usize, s: &str| i < toks.len() && text(i) == s;
    // The maps, by name.
    let mut maps: HashSet<&str> = HashSet::new();
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Ident {
            continue;
        }
        if let Some((_, at)) = MAP_MACROS.iter().find(|(m, _)| *m == text(i)) {
            if is(i + 1, "(") {
                let args = split_args(&toks, src, i + 1);
                if let Some(&(s, e)) = args.get(*at) {
                    maps.insert(src[s..e].trim());
                }
            }
        }
    }
    // Edits: (start, end, replacement), applied back to front.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut flavoured: HashSet<&str> = HashSet::new();
    // (event map, struct it carries), from its perf_submit/ringbuf_output/ringbuf_reserve calls.
    let mut records: Vec<(String, String)> = Vec::new();
    // (table, path) of each BPF_TABLE_PINNED.
    let mut pins: Vec<(String, String)> = Vec::new();
    let mut structs: Vec<String> = Vec::new();
    let mut made: HashSet<String> = HashSet::new();
    let mut tracepoint_struct = |cat: &str, ev: &str, line: usize| -> Result<()> {
        let name = format!("tracepoint__{cat}__{ev}");
        if made.insert(name.clone()) {
            let fmt = kernel.tracepoint_format(cat, ev).map_err(|e| fail(display, line, e.to_string()))?;
            structs.push(format_struct(&name, &parse_format(&fmt)));
        }
        Ok(())
    };
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match (t.kind, text(i)) {
            (Kind::Directive, d) => {
                if let Some(p) = include_path(d) {
                    if KERNEL_INCLUDES.iter().any(|k| p.starts_with(k)) {
                        edits.push((t.start, t.end, format!("/* <{p}>: its kernel types come from vmlinux.h, its macros from bcc/helpers.h */")));
                    }
                }
            }
            (Kind::Ident, "struct") if depth == 0 && i + 2 < toks.len() && toks[i + 1].kind == Kind::Ident && is(i + 2, "{") => {
                // A copy of part of a kernel struct (BCC's tools declare the private ones they
                // read, `struct nameidata`): the kernel's own, from BTF, replaces it, and CO-RE
                // reads its fields where this kernel has them.
                if let Some(close) = matching(&toks, src, i + 2) {
                    let name = text(i + 1);
                    let fields = struct_fields(&toks, src, i + 2, close);
                    let members = kernel.struct_members(name);
                    let partial = !fields.is_empty() && members.as_ref().is_some_and(|m| fields.iter().all(|f| m.contains(f)));
                    if partial && is(close + 1, ";") {
                        let lines = src[t.start..toks[close + 1].end].matches('\n').count();
                        edits.push((t.start, toks[close + 1].end, format!("/* struct {name}: the kernel's, from BTF */{}", "\n".repeat(lines))));
                        i = close + 1;
                    } else if members.is_some() {
                        // A copy that differs from this kernel's (a member renamed or gone): a
                        // CO-RE flavour of it, whose members are found in the kernel's struct
                        // by name wherever it has them; every `struct NAME` of the program
                        // names the copy.
                        flavoured.insert(name);
                        edits.push((t.end, t.end, " __attribute__((preserve_access_index))".into()));
                    }
                }
            }
            (Kind::Punct, "{") => depth += 1,
            (Kind::Punct, "}") => depth -= 1,
            (Kind::Ident, "BPF_TABLE" | "BPF_F_TABLE" | "BPF_TABLE_PUBLIC" | "BPF_TABLE_SHARED")
                if is(i + 1, "(") && i + 2 < toks.len() && toks[i + 2].kind == Kind::Str =>
            {
                let kind = text(i + 2).trim_matches('"');
                if !TABLE_KINDS.contains(&kind) {
                    return Err(fail(display, t.line, format!("{}(\"{kind}\", ...): bpfkit has no \"{kind}\" table (it has {})", text(i), TABLE_KINDS.join(", "))));
                }
                edits.push((toks[i + 2].start, toks[i + 2].end, kind.to_string()));
            }
            (Kind::Ident, "BPF_TABLE_PINNED") if is(i + 1, "(") => {
                // BPF_TABLE_PINNED("kind", key, leaf, name, max, "/sys/fs/bpf/path"): a table
                // pinned where the program says (its Python side passes the path to the loader).
                let args = split_args(&toks, src, i + 1);
                let arg = |n: usize| args.get(n).map(|&(s, e)| src[s..e].trim());
                let (Some(kind), Some(name), Some(path)) = (arg(0), arg(3), arg(5)) else {
                    return Err(fail(display, t.line, "BPF_TABLE_PINNED takes (\"kind\", key, leaf, name, max_entries, \"path\")".into()));
                };
                let kind = kind.trim_matches('"');
                if !TABLE_KINDS.contains(&kind) || !path.starts_with('"') || path.contains('\\') {
                    return Err(fail(display, t.line, format!("BPF_TABLE_PINNED: a table kind ({}) and a path in quotes", TABLE_KINDS.join(", "))));
                }
                let close = matching(&toks, src, i + 1).unwrap_or(i + 1);
                let (k, l, m) = (arg(1).unwrap_or("u64"), arg(2).unwrap_or("u64"), arg(4).unwrap_or("10240"));
                edits.push((t.start, toks[close].end, format!("BPF_TABLE({kind}, {k}, {l}, {name}, {m})")));
                pins.push((name.to_string(), path.trim_matches('"').to_string()));
                i = close;
            }
            (Kind::Ident, "BPF_ARRAY_OF_MAPS" | "BPF_HASH_OF_MAPS") if is(i + 1, "(") => {
                // The inner map is named by a string: its definition's type is the inner type.
                for &(s, e) in &split_args(&toks, src, i + 1) {
                    let a = src[s..e].trim();
                    if a.len() >= 2 && a.starts_with('"') && a.ends_with('"') {
                        let at = s + (src[s..e].len() - src[s..e].trim_start().len());
                        edits.push((at, at + a.len(), a.trim_matches('"').to_string()));
                    }
                }
            }
            (Kind::Ident, "BPF_HISTOGRAM") if is(i + 1, "(") => {
                let args = split_args(&toks, src, i + 1);
                let arg = |n: usize| args.get(n).map(|&(s, e)| src[s..e].trim().to_string());
                let name = arg(0).unwrap_or_default();
                let key = arg(1).unwrap_or_else(|| "int".into());
                let size = arg(2).unwrap_or_else(|| "64".into());
                let kind = if key == "int" { "__BCC_HIST_ARRAY" } else { "__BCC_HIST_HASH" };
                let close = matching(&toks, src, i + 1).unwrap_or(i + 1);
                edits.push((t.start, toks[close].end, format!("{kind}({name}, {key}, {size})")));
                i = close;
            }
            (Kind::Ident, "static") if depth == 0 && static_function(&toks, src, i) => {
                // BCC's programs were written for kernels without BPF-to-BPF calls (4.16): their helper
                // functions are inlined, so the verifier sees each call's constant arguments (a
                // string literal copied whole into a key, as BCC's ext4dist does, reads past it
                // in a function of its own).
                edits.push((t.end, t.end, " __attribute__((always_inline))".to_string()));
            }
            (Kind::Ident, "TRACEPOINT_PROBE") if is(i + 1, "(") => {
                let args = split_args(&toks, src, i + 1);
                if args.len() != 2 {
                    return Err(fail(display, t.line, "TRACEPOINT_PROBE takes (category, event)".into()));
                }
                let (cat, ev) = (src[args[0].0..args[0].1].trim(), src[args[1].0..args[1].1].trim());
                tracepoint_struct(cat, ev, t.line)?;
            }
            (Kind::Ident, name) if maps.contains(name) && is(i + 1, ".") && i + 3 < toks.len() && toks[i + 2].kind == Kind::Ident && is(i + 3, "(") => {
                let method = text(i + 2);
                if !METHODS.contains(&method) {
                    return Err(fail(display, t.line, format!("{name}.{method}(): BCC maps have no method `{method}` (they have {})", METHODS.join(", "))));
                }
                let empty = is(i + 4, ")");
                edits.push((t.start, toks[i + 3].end, format!("__bcc_m_{method}(&{name}{}", if empty { "" } else { ", " })));
                if let Some(r) = submitted_record(&toks, src, i, method) {
                    records.push((name.to_string(), r));
                }
                i += 3;
            }
            (Kind::Ident, name)
                if depth == 0 && is(i + 1, "(") && program_prefix(name).is_none() && context_section(&toks, src, i).is_some() =>
            {
                // A program attached later by name (attach_kprobe(fn_name=...), attach_uprobe,
                // a perf event, XDP): its section from its context's type.
                if let (Some(sec), Some(close)) = (context_section(&toks, src, i), matching(&toks, src, i + 1)) {
                    let sys = syscall_probe(name, kernel);
                    let (sec, regs) = match &sys {
                        Some(SysProbe::Tracepoint { section, exit }) => (section.as_str(), Regs::Tracepoint { exit: *exit }),
                        None => (KIND_SUFFIXES.iter().find(|(sfx, _)| name.ends_with(sfx)).map_or(sec, |(_, k)| *k), Regs::Registers),
                    };
                    edits.push((t.start, t.start, format!("SEC(\"{sec}\") ")));
                    if let Some((params, body)) = register_arguments(&toks, src, i + 1, close, regs) {
                        edits.push((toks[i + 1].start, toks[close].end, params));
                        edits.push((toks[close + 1].end, toks[close + 1].end, body));
                    }
                    i = close;
                }
            }
            (Kind::Ident, name) if depth == 0 && is(i + 1, "(") && program_prefix(name).is_some() => {
                if let Some(close) = matching(&toks, src, i + 1) {
                    if is(close + 1, "{") {
                        let sys = syscall_probe(name, kernel);
                        let section = match &sys {
                            Some(SysProbe::Tracepoint { section, .. }) => Some(section.clone()),
                            None => program_section(name, kernel),
                        };
                        if let Some(("tracepoint", rest)) = section.as_deref().map(|s| s.split_once('/').unwrap_or((s, ""))) {
                            if let Some((cat, ev)) = rest.split_once('/') {
                                tracepoint_struct(cat, ev, t.line)?;
                            }
                        }
                        if let Some(sec) = section {
                            edits.push((t.start, t.start, format!("SEC(\"{sec}\") ")));
                        }
                        let regs = match &sys {
                            Some(SysProbe::Tracepoint { exit, .. }) => Regs::Tracepoint { exit: *exit },
                            None if name.starts_with("syscall__") => Regs::Syscall,
                            None => Regs::Registers,
                        };
                        if let Some((params, body)) = register_arguments(&toks, src, i + 1, close, regs) {
                            edits.push((toks[i + 1].start, toks[close].end, params));
                            edits.push((toks[close + 1].end, toks[close + 1].end, body));
                        }
                        i = close;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    // `struct NAME` of a flavoured copy names the copy, `struct NAME___bcc`.
    for (j, t) in toks.iter().enumerate() {
        if t.kind == Kind::Ident && flavoured.contains(text(j)) && j > 0 && text(j - 1) == "struct" {
            edits.push((t.end, t.end, "___bcc".into()));
        }
    }
    let mut out = src.to_string();
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    for (s, e, r) in edits {
        out.replace_range(s..e, &r);
    }
    let mut head = String::from("#include <bcc/helpers.h>\n");
    head.push_str(&config_defines(kernel));
    for s in &structs {
        head.push_str(s);
    }
    head.push_str(&format!("#line 1 \"{}\"\n", display.replace('\\', "\\\\").replace('"', "\\\"")));
    // The record each event map carries, for its Python side (`event()`, as BCC gives it).
    records.sort();
    records.dedup();
    let mut tail = String::new();
    for (map, rec) in records {
        tail.push_str(&format!("\n/* bpfkit-record {map} {rec} */"));
    }
    for (map, path) in pins {
        tail.push_str(&format!("\n/* bpfkit-pin {map} {path} */"));
    }
    Ok(head + &out + &tail)
}


/// [`translate`], then BCC's implicit kernel reads made explicit ([`crate::core::bcc_reads`],
/// from clang's AST of the translation), through the cache: the same source, flags, compiler
/// and kernel give the cached text without running anything. `req.source` is the BCC source;
/// `req.display_name` names it in `#line` and errors.
pub fn translate_cached(req: &Request<'_>, cache: &Cache, kernel: &dyn Kernel) -> Result<String> {
    // The translator's own source is in the key (its digest, made by build.rs), so a changed
    // translator never reuses an old translation.
    let key = compile::derived_key(&format!("bcc-{}", compile::TRANSLATOR_DIGEST), req, cache)?;
    if let Some(text) = cache.get_object(&key)? {
        if let Ok(text) = String::from_utf8(text) {
            return Ok(text);
        }
    }
    let plain = translate(req.source, req.display_name, kernel)?;
    let out = if needs_reads(&plain) {
        let ast = compile::syntax_tree(&Request { source: &plain, ..req.clone() }, cache)?;
        crate::core::bcc_reads::rewrite(&plain, &ast)?
    } else {
        plain
    };
    cache.put_object(&key, out.as_bytes())?;
    Ok(out)
}

/// Whether a translation may read kernel memory through a pointer: it uses `->` other than on
/// a tracepoint's `args` or the program's context, and names a kernel struct or union (one it
/// does not define, other than a program context) for a pointer to point to. A program whose
/// arrows all go into its own structs (map values) needs no AST, so no second clang run.
fn needs_reads(src: &str) -> bool {
    let body = src.split_once("\n#line 1 ").map_or(src, |(_, b)| b);
    let toks = tokenize(body);
    let word = |t: &Tok| &body[t.start..t.end];
    let arrows = toks.windows(2).any(|w| word(&w[1]) == "->" && !(w[0].kind == Kind::Ident && matches!(word(&w[0]), "args" | "ctx")));
    if !arrows {
        return false;
    }
    let own: HashSet<String> = compile::defined_structs(body).into_iter().collect();
    toks.windows(2).any(|w| {
        matches!(word(&w[0]), "struct" | "union")
            && w[1].kind == Kind::Ident
            && !own.contains(word(&w[1]))
            && !crate::core::bcc_reads::direct_record(word(&w[1]))
    })
}

/// The section of a function defined at token `at` that BCC would load as a program of its own,
/// from its first parameter: `struct pt_regs *` a kprobe (or uprobe: the same type),
/// `struct bpf_perf_event_data *` a perf event program, `struct xdp_md *` XDP. A `static`
/// function, or one the source also calls, is a helper.
fn context_section(toks: &[Tok], src: &str, at: usize) -> Option<&'static str> {
    let close = matching(toks, src, at + 1)?;
    if close + 1 >= toks.len() || &src[toks[close + 1].start..toks[close + 1].end] != "{" {
        return None;
    }
    let args = split_args(toks, src, at + 1);
    let first = args.first().map(|&(s, e)| src[s..e].split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
    let sec = if untyped(toks, src, at) {
        // `int f()`, `int f(void *ctx)`: BCC loads it as whatever its attach call asks for. It is
        // a kprobe (or uprobe) here, with copies for the other kinds (see `program_variants`).
        "kprobe"
    } else if first.starts_with("struct pt_regs") {
        // One that reads USDT arguments is a USDT program (libbpf attaches only those to USDT
        // probes; the program type is a kprobe's either way).
        let body_end = matching(toks, src, close + 1).unwrap_or(close);
        let reads_usdt = toks[close..body_end].iter().any(|t| src[t.start..t.end].starts_with("bpf_usdt_readarg"));
        if reads_usdt {
            "usdt"
        } else {
            "kprobe"
        }
    } else if first.starts_with("struct bpf_perf_event_data") {
        "perf_event"
    } else if first.starts_with("struct xdp_md") {
        "xdp"
    } else {
        return None;
    };
    // Back to the previous declaration's end: `static` there makes it a helper.
    let mut j = at;
    while j > 0 {
        j -= 1;
        let w = &src[toks[j].start..toks[j].end];
        if matches!(w, ";" | "}") || toks[j].kind == Kind::Directive {
            break;
        }
        if w == "static" {
            return None;
        }
    }
    let name = &src[toks[at].start..toks[at].end];
    let called = toks.iter().enumerate().any(|(k, t)| k != at && &src[t.start..t.end] == name);
    (!called).then_some(sec)
}

/// Whether the `static` at token `at` begins a function definition (`static int f(...) {`), not
/// a variable, a declaration or a function pointer.
fn static_function(toks: &[Tok], src: &str, at: usize) -> bool {
    let mut j = at + 1;
    while j < toks.len() {
        match &src[toks[j].start..toks[j].end] {
            ";" | "=" | "{" | "}" => return false,
            "(" => {
                let named = j > at + 1 && toks[j - 1].kind == Kind::Ident;
                return named && matching(toks, src, j).is_some_and(|c| c + 1 < toks.len() && &src[toks[c + 1].start..toks[c + 1].end] == "{");
            }
            _ => j += 1,
        }
    }
    false
}

/// Whether the function defined at token `at` returns `int` and takes no context it names a
/// type for: `()`, `(void)` or `(void *ctx)`.
fn untyped(toks: &[Tok], src: &str, at: usize) -> bool {
    if at == 0 || &src[toks[at - 1].start..toks[at - 1].end] != "int" {
        return false;
    }
    let args = split_args(toks, src, at + 1);
    let first = args.first().map(|&(s, e)| src[s..e].split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
    args.len() <= 1 && (first.is_empty() || first == "void" || first.starts_with("void *") || first.starts_with("void*"))
}

/// The suffixes of the copies of an untyped program function ([`untyped`]) for the kinds BCC
/// could load it as, besides a kprobe: `attach_perf_event(fn_name=F)` and
/// `attach_tracepoint(fn_name=F)` take `F__bcc_perf_event` and `F__bcc_tracepoint`.
pub const KIND_SUFFIXES: &[(&str, &str)] = &[("__bcc_perf_event", "perf_event"), ("__bcc_tracepoint", "tracepoint")];

/// The prefix of a BCC program function's name, if it has one.
fn program_prefix(name: &str) -> Option<&'static str> {
    ["kprobe__", "kretprobe__", "tracepoint__", "raw_tracepoint__", "syscall__"].into_iter().find(|p| name.starts_with(p))
}

/// The `SEC()` of a program function named the BCC way (None: attached later by name). A
/// kprobe on `sys_NAME` is on the kernel's syscall function, as BCC makes it.
fn program_section(name: &str, kernel: &dyn Kernel) -> Option<String> {
    let function = |f: &str| match f.strip_prefix("sys_") {
        Some(sys) => format!("{}{sys}", kernel.syscall_prefix()),
        None => f.to_string(),
    };
    if let Some(f) = name.strip_prefix("kprobe__") {
        return Some(format!("kprobe/{}", function(f)));
    }
    if let Some(f) = name.strip_prefix("kretprobe__") {
        return Some(format!("kretprobe/{}", function(f)));
    }
    if let Some(rest) = name.strip_prefix("tracepoint__") {
        let (cat, ev) = rest.split_once("__")?;
        return Some(format!("tracepoint/{cat}/{ev}"));
    }
    if let Some(ev) = name.strip_prefix("raw_tracepoint__") {
        return Some(format!("raw_tp/{ev}"));
    }
    if name.starts_with("syscall__") {
        return Some("kprobe".into());
    }
    None
}

/// For a function whose first parameter is `struct pt_regs *ctx` and which names more: the
/// parameter list cut to `ctx`, and the declarations that read the others from the registers
/// (put right after the body's `{`, on the same line, so lines do not move).
/// Where a function that takes registers finds its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regs {
    /// The registers of the probed call (`PT_REGS_PARMn`).
    Registers,
    /// A syscall function's: its arguments are in the registers the first register points to.
    Syscall,
    /// A syscall tracepoint's `args[]` (the `sys_enter` tracepoint; `sys_exit` has none).
    Tracepoint { exit: bool },
}

fn register_arguments(toks: &[Tok], src: &str, open: usize, close: usize, regs_from: Regs) -> Option<(String, String)> {
    let syscall = regs_from == Regs::Syscall;
    let args = split_args(toks, src, open);
    if args.len() < 2 {
        return None;
    }
    let first = src[args[0].0..args[0].1].trim();
    let words: Vec<&str> = first.split(|c: char| c.is_whitespace() || c == '*').filter(|w| !w.is_empty()).collect();
    if words.len() < 3 || words[0] != "struct" || words[1] != "pt_regs" {
        return None;
    }
    let ctx = words[words.len() - 1];
    let regs = if syscall { "__bcc_regs" } else { ctx };
    let mut body = String::new();
    if syscall {
        body.push_str(&format!(" struct pt_regs *__bcc_regs = (struct pt_regs *)PT_REGS_PARM1({ctx});"));
    }
    for (n, &(s, e)) in args.iter().enumerate().skip(1) {
        let decl = src[s..e].trim();
        let name_at = decl.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))? + 1;
        let (ty, name) = (decl[..name_at].trim(), &decl[name_at..]);
        let ty = ty.replace("__user", "");
        let read = if let Regs::Tracepoint { .. } = regs_from {
            format!("((struct trace_event_raw_sys_enter *){ctx})->args[{}]", n - 1)
        } else if syscall {
            format!("PT_REGS_PARM{n}_CORE_SYSCALL({regs})")
        } else {
            format!("PT_REGS_PARM{n}({regs})")
        };
        body.push_str(&format!(" {ty} {name} = ({ty}){read};"));
    }
    let _ = close;
    Some((format!("({first})"), body))
}

/// The struct an event map's call at token `at` (`name.method(...)`) submits, when the source
/// says it plainly: `perf_submit(ctx, &v, ...)` or `ringbuf_output(&v, ...)` of a variable
/// declared `struct T v`, or `struct T *p = name.ringbuf_reserve(...)`.
fn submitted_record(toks: &[Tok], src: &str, at: usize, method: &str) -> Option<String> {
    let text = |i: usize| &src[toks[i].start..toks[i].end];
    if method == "ringbuf_reserve" {
        // `struct T * p = name.ringbuf_reserve(`
        let (eq, var, star, ty, kw) = (at.checked_sub(1)?, at.checked_sub(2)?, at.checked_sub(3)?, at.checked_sub(4)?, at.checked_sub(5)?);
        return (text(eq) == "=" && toks[var].kind == Kind::Ident && text(star) == "*" && text(kw) == "struct")
            .then(|| text(ty).to_string());
    }
    let arg = match method {
        "perf_submit" | "perf_submit_skb" => 1,
        "ringbuf_output" => 0,
        _ => return None,
    };
    let &(s, e) = split_args(toks, src, at + 3).get(arg)?;
    let var = src[s..e].trim().strip_prefix('&')?.trim();
    if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    // The nearest declaration before the call: `struct T var`.
    (2..at).rev().find(|&j| text(j) == var && text(j - 2) == "struct" && toks[j - 1].kind == Kind::Ident).map(|j| text(j - 1).to_string())
}

/// The member names a struct definition declares between its braces (tokens `open`, `close`),
/// those of anonymous struct and union members included.
fn struct_fields(toks: &[Tok], src: &str, open: usize, close: usize) -> Vec<String> {
    let text = |i: usize| &src[toks[i].start..toks[i].end];
    let mut out = Vec::new();
    let mut last_ident: Option<&str> = None;
    let mut stop = false; // after `[` or `:` in a declarator, its name is known
    let mut parens = 0i32;
    #[allow(clippy::needless_range_loop)] // `text(i - 1)` looks back
    for i in open + 1..close {
        match text(i) {
            "(" => parens += 1,
            ")" => parens -= 1,
            "[" | ":" if parens == 0 => stop = true,
            ";" | "," if parens == 0 => {
                if let Some(n) = last_ident.take() {
                    out.push(n.to_string());
                }
                stop = false;
            }
            _ if toks[i].kind == Kind::Ident && !stop && (parens == 0 || text(i - 1) == "*") => {
                last_ident = Some(text(i));
            }
            _ => {}
        }
    }
    out.retain(|n| !matches!(n.as_str(), "struct" | "union" | "enum" | "const" | "volatile"));
    out
}

/// The index of the `)` closing the `(` at `open`.
fn matching(toks: &[Tok], src: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match &src[t.start..t.end] {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte ranges of the top-level arguments of the call whose `(` is at token `open`.
fn split_args(toks: &[Tok], src: &str, open: usize) -> Vec<(usize, usize)> {
    let Some(close) = matching(toks, src, open) else { return Vec::new() };
    if close == open + 1 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut depth = 0;
    let mut from = toks[open].end;
    for t in &toks[open + 1..close] {
        match &src[t.start..t.end] {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            "," if depth == 0 => {
                out.push((from, t.start));
                from = t.end;
            }
            _ => {}
        }
    }
    out.push((from, toks[close].start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Kernel for Fake {
        fn tracepoint_format(&self, cat: &str, event: &str) -> Result<String> {
            assert_eq!((cat, event), ("random", "urandom_read"));
            Ok("name: urandom_read\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int got_bits;\toffset:8;\tsize:4;\tsigned:1;\n\
                \tfield:pid_t pool_left;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] name;\toffset:16;\tsize:4;\tsigned:0;\n\
                \tfield:int flags;\toffset:24;\tsize:8;\tsigned:0;\n"
                .into())
        }
    }

    #[test]
    fn only_arrows_into_kernel_structs_need_the_ast() {
        let own = "struct val_t { u64 n; };\nint f(void *ctx) { struct val_t *v = 0; return v ? v->n : 0; }";
        assert!(!needs_reads(own));
        assert!(!needs_reads("int f(struct pt_regs *ctx) { return ctx->ip + args->x; }"));
        assert!(needs_reads("int f(void *c) { struct task_struct *t = (void *)bpf_get_current_task(); return t->pid; }"));
        assert!(!needs_reads("int f(void *c) { struct task_struct *t = 0; return t != 0; }")); // no arrow
    }

    #[test]
    fn static_helper_functions_are_inlined_and_static_data_is_not_touched() {
        let src = "BPF_HASH(counts, u32);\nstatic u64 total = 0;\nstatic int (*fp)(int);\nstatic int helper(const char *op) { return op[0]; }\n\
                   static inline int two(void);\nstatic inline int two(void) { return 2; }\n";
        let out = translate(src, "prog.c", &Fake).unwrap();
        let body = out.split_once("#line 1 \"prog.c\"\n").unwrap().1;
        assert!(body.contains("static __attribute__((always_inline)) int helper(const char *op) {"), "{body}");
        assert!(body.contains("static __attribute__((always_inline)) inline int two(void) {"), "{body}");
        assert!(body.contains("static inline int two(void);"), "{body}");
        assert!(body.contains("static u64 total = 0;") && body.contains("static int (*fp)(int);"), "{body}");
    }

    #[test]
    fn recognises_the_dialect_and_leaves_libbpf_c_alone() {
        assert!(is_bcc("#include <uapi/linux/ptrace.h>\nint x;"));
        assert!(is_bcc("BPF_HASH(counts, u32);"));
        assert!(is_bcc("int kprobe__do_sys_open(struct pt_regs *ctx) { return 0; }"));
        assert!(!is_bcc("SEC(\"tracepoint/x/y\") int f(void *c) { return 0; } // BPF_HASH("));
        assert!(!is_bcc("/* BPF_HASH(x) */ int y;"));
    }

    #[test]
    fn rewrites_maps_methods_programs_and_includes_keeping_lines() {
        let src = "#include <uapi/linux/ptrace.h>\nBPF_HASH(counts, u32);\nBPF_HISTOGRAM(dist);\n\
                   BPF_TABLE(\"percpu_array\", int, u64, tab, 4);\n\
                   TRACEPOINT_PROBE(random, urandom_read) {\n  u32 k = args->got_bits; counts.increment(k);\n\
                   dist.increment(bpf_log2l(k)); return 0;\n}\n\
                   int kprobe__tcp_v4_connect(struct pt_regs *ctx, struct sock *sk) { return sk != 0; }\n";
        let out = translate(src, "prog.c", &Fake).unwrap();
        let body = out.split_once("#line 1 \"prog.c\"\n").unwrap().1;
        assert_eq!(body.lines().count(), src.lines().count());
        assert!(body.contains("__bcc_m_increment(&counts, k)"));
        assert!(body.contains("__BCC_HIST_ARRAY(dist, int, 64)"));
        assert!(body.contains("BPF_TABLE(percpu_array, int, u64, tab, 4)"));
        assert!(body.contains("SEC(\"kprobe/tcp_v4_connect\") kprobe__tcp_v4_connect(struct pt_regs *ctx) { struct sock * sk = (struct sock *)PT_REGS_PARM1(ctx);"));
        assert!(out.contains("struct tracepoint__random__urandom_read {"));
        assert!(out.contains("\tint got_bits;\n\ts32 pool_left;\n\tunion { u32 name; u32 data_loc_name; };\n\tchar __pad_5[4];\n\tu64 flags;\n"), "{out}");
        assert!(!body.contains("#include <uapi"));
    }

    /// A kernel without kprobes, whose tracepoints are `sys_enter_kill`/`sys_exit_kill` only.
    struct NoKprobes;
    impl Kernel for NoKprobes {
        fn tracepoint_format(&self, cat: &str, event: &str) -> Result<String> {
            match (cat, event) {
                ("syscalls", "sys_enter_kill" | "sys_exit_kill") => Ok(String::new()),
                _ => Err(Error::Value("none".into())),
            }
        }
        fn kprobes(&self) -> bool {
            false
        }
        fn syscall_prefix(&self) -> String {
            "__x64_sys_".into()
        }
        fn struct_members(&self, name: &str) -> Option<HashSet<String>> {
            (name == "nameidata").then(|| ["path", "last", "flags"].into_iter().map(String::from).collect())
        }
    }

    #[test]
    fn syscall_kprobes_become_syscall_tracepoints_without_kprobes() {
        let src = "int kprobe__sys_kill(struct pt_regs *ctx) { return 0; }
                   int kretprobe__sys_kill(struct pt_regs *ctx) { return PT_REGS_RC(ctx); }
                   int syscall__kill(struct pt_regs *ctx, int pid, int sig) { return sig; }
                   int ret(struct pt_regs *ctx) { return PT_REGS_RC(ctx); }
                   int kprobe__sys_nothere(struct pt_regs *ctx) { return 0; }
";
        let out = translate(src, "p.c", &NoKprobes).unwrap();
        assert!(out.contains("SEC(\"tracepoint/syscalls/sys_enter_kill\") kprobe__sys_kill("), "{out}");
        assert!(out.contains("SEC(\"tracepoint/syscalls/sys_exit_kill\") kretprobe__sys_kill("), "{out}");
        assert!(out.contains("#define PT_REGS_RC(x) (((struct trace_event_raw_sys_exit *)(x))->ret)"), "{out}");
        assert!(out.contains("int sig = (int)((struct trace_event_raw_sys_enter *)ctx)->args[1];"), "{out}");
        assert!(out.contains("SEC(\"kprobe\") ret(") && out.contains("SEC(\"tracepoint\") ret__bcc_sys_exit("), "{out}");
        // A syscall without tracepoints stays a kprobe (whose attach then says why not).
        assert!(out.contains("SEC(\"kprobe/__x64_sys_nothere\") kprobe__sys_nothere("), "{out}");
        // The user's lines keep their numbers: each function is preceded by its own #line.
        assert!(out.contains("#line 4 \"p.c\"\nint SEC(\"tracepoint\") ret__bcc_sys_exit"), "{out}");
        // With kprobes, `sys_` names the kernel's syscall function.
        let with = translate(src, "p.c", &Fake).unwrap();
        assert!(with.contains("SEC(\"kprobe/sys_kill\") kprobe__sys_kill(") && !with.contains("__bcc_sys_"), "{with}");
    }

    #[test]
    fn copies_of_kernel_structs_give_way_to_the_kernels_or_become_flavours() {
        let src = "struct nameidata {\n  struct path path;\n  struct qstr last;\n};\n\
                   struct nameidata___x;\nstruct mystery_t { int a; };\n";
        let out = translate(src, "p.c", &NoKprobes).unwrap();
        let body = out.split_once("#line 1 \"p.c\"\n").unwrap().1;
        assert_eq!(body.lines().count(), src.lines().count());
        assert!(body.starts_with("/* struct nameidata: the kernel's, from BTF */\n\n\n\n"), "{body}");
        assert!(body.contains("struct mystery_t { int a; }"), "{body}");
    }

    #[test]
    fn untyped_functions_get_a_copy_for_each_kind() {
        let out = translate("int on_sample() { return 0; }\n", "p.c", &Fake).unwrap();
        assert!(out.contains("SEC(\"kprobe\") on_sample()"), "{out}");
        assert!(out.contains("SEC(\"perf_event\") on_sample__bcc_perf_event()"), "{out}");
        assert!(out.contains("SEC(\"tracepoint\") on_sample__bcc_tracepoint()"), "{out}");
    }

    #[test]
    fn a_function_taking_registers_is_a_program_unless_static_or_called() {
        let src = "int on_call(struct pt_regs *ctx, int n) { return n; }\n\
                   static int helper(struct pt_regs *ctx) { return 0; }\n\
                   int used(struct pt_regs *ctx) { return 1; }\nint caller(struct xdp_md *x) { return used(0); }\n";
        let out = translate(src, "p.c", &Fake).unwrap();
        assert!(out.contains("SEC(\"kprobe\") on_call(struct pt_regs *ctx) { int n = (int)PT_REGS_PARM1(ctx);"), "{out}");
        assert!(!out.contains("SEC(\"kprobe\") helper") && !out.contains("SEC(\"kprobe\") used"));
        assert!(out.contains("SEC(\"xdp\") caller"));
    }

    #[test]
    fn unknown_methods_and_tables_name_the_line() {
        let e = translate("BPF_HASH(m);\n\nint f() { m.frobnicate(1); }", "p.c", &Fake).unwrap_err();
        assert!(e.to_string().contains("p.c:3: error: m.frobnicate()"), "{e}");
        let e = translate("BPF_TABLE(\"nope\", int, int, t, 1);", "p.c", &Fake).unwrap_err();
        assert!(e.to_string().contains("p.c:1: error: BPF_TABLE(\"nope\""), "{e}");
    }
}
