//! Compiling C to a BPF object at run time.
//!
//! The kernel's types come from its own BTF: for each compile bpfkit prints (with libbpf's
//! btf_dump) only the types the source names and what they depend on, which makes clang's work
//! ~10x smaller than the full 3 MB `vmlinux.h`; if that header is not enough it falls back to the
//! full one, generated once per kernel and cached. The source goes to clang on stdin, with the
//! implicit headers pulled in by `-include`, so clang's line numbers are the user's own.
//!
//! Objects are cached under a SHA-256 of everything that determines them: the source, the flags,
//! the compiler's identity, this generator's version with the embedded headers, and the kernel's
//! BTF identity. A second compile of the same text on the same kernel never runs clang.
//!
//! Why not clang-sys for finding clang: its `Clang::find` runs `llvm-config`, `clang --version`
//! and `clang -E -v` and prints to stderr on the way, which costs tens of milliseconds on a path
//! that must stay fast, and it knows nothing of `BPFKIT_CLANG` or ziglang. A PATH scan is a few
//! `readdir`s.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

use crate::core::btf::Btf;
use crate::core::cache::{hex, sha256_hex, Cache};
use crate::core::elf;
use crate::core::error::{Error, Result};
use crate::sys;

include!(concat!(env!("OUT_DIR"), "/embedded_headers.rs"));

/// Bump when the generated headers or flags change in a way the other key parts do not capture.
const GENERATOR_VERSION: &str = "bpfkit-gen-4"; // 4: objects kept without DWARF

/// Where the kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What `-D__TARGET_ARCH_*` bpf_tracing.h needs for the host architecture.
pub fn target_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        "riscv64" => "riscv",
        "loongarch64" => "loongarch",
        "arm" => "arm",
        "mips64" => "mips",
        "sparc64" => "sparc",
        other => other,
    }
}

// ------------------------------------------------------------------------------------------
// Finding a compiler

/// A compiler able to emit BPF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiler {
    /// The executable.
    pub path: PathBuf,
    /// Arguments that go before ours (`cc` for zig).
    pub prefix: Vec<String>,
    /// The target flag(s).
    pub target: Vec<String>,
    /// How it was found, for messages: "BPFKIT_CLANG", "PATH" or "ziglang".
    pub source: &'static str,
}

impl Compiler {
    /// Identity for cache keys: resolved path, size, mtime and inode of the executable.
    pub fn identity(&self) -> String {
        let real = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        match fs::metadata(&real) {
            Ok(m) => format!("{}|{}|{}|{}|{:?}", real.display(), m.len(), m.mtime(), m.ino(), self.prefix),
            Err(_) => format!("{}|?|{:?}", real.display(), self.prefix),
        }
    }
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.mode() & 0o111 != 0).unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p)))
        .unwrap_or(None)
}

/// The `clang-NN` with the highest NN on PATH.
fn newest_versioned_clang() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut best: Option<(u32, PathBuf)> = None;
    for dir in std::env::split_paths(&path) {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_prefix("clang-")).and_then(|v| v.parse::<u32>().ok()) else {
                continue;
            };
            let p = e.path();
            if is_executable(&p) && best.as_ref().is_none_or(|(b, _)| n > *b) {
                best = Some((n, p));
            }
        }
    }
    best.map(|(_, p)| p)
}

fn clang_at(path: PathBuf, source: &'static str) -> Compiler {
    Compiler { path, prefix: vec![], target: vec!["-target".into(), "bpf".into()], source }
}

/// Finds a BPF compiler: `$BPFKIT_CLANG`, then `clang` or the newest `clang-NN` on PATH, then
/// the `zig` binary of the `ziglang` Python package (`zig`, found by the caller).
pub fn find_compiler(zig: Option<&Path>) -> Result<Compiler> {
    if let Some(v) = std::env::var_os("BPFKIT_CLANG").filter(|v| !v.is_empty()) {
        let name = v.to_string_lossy().into_owned();
        return match which(&name) {
            Some(p) if p.file_name().is_some_and(|f| f == "zig") => Ok(zig_at(p, "BPFKIT_CLANG")),
            Some(p) => Ok(clang_at(p, "BPFKIT_CLANG")),
            None => Err(Error::CompilerNotFound {
                message: format!("BPFKIT_CLANG is set to `{name}`, which is not an executable file"),
            }),
        };
    }
    if let Some(p) = which("clang").or_else(newest_versioned_clang) {
        return Ok(clang_at(p, "PATH"));
    }
    if let Some(z) = zig.filter(|z| is_executable(z)) {
        return Ok(zig_at(z.to_path_buf(), "ziglang"));
    }
    Err(Error::CompilerNotFound {
        message: "no BPF compiler found: set BPFKIT_CLANG to a clang binary, install clang \
                  (`apt install clang`, giving `clang` or `clang-NN` on PATH), or `pip install ziglang`"
            .to_string(),
    })
}

fn zig_at(path: PathBuf, source: &'static str) -> Compiler {
    Compiler {
        path,
        prefix: vec!["cc".into()],
        target: vec!["-target".into(), "bpfel-freestanding-none".into()],
        source,
    }
}

// ------------------------------------------------------------------------------------------
// Kernel BTF identity and headers

/// The running kernel's BTF, parsed once per process.
pub(crate) struct KernelBtf {
    identity: String,
    pub(crate) parsed: Btf,
}

static KERNEL_BTF: Lazy<Mutex<Option<std::sync::Arc<KernelBtf>>>> = Lazy::new(|| Mutex::new(None));

/// The kernel's raw BTF and its identity, read by [`btf_identity`] when it had to: the parse
/// that usually follows takes them rather than reading 5 MB again. Parsing is left to
/// [`kernel_btf`], which a compile calls while clang starts.
type RawBtf = (Vec<u8>, String);
static RAW_BTF: Lazy<Mutex<Option<RawBtf>>> = Lazy::new(|| Mutex::new(None));

fn read_kernel_btf() -> Result<RawBtf> {
    let raw = fs::read(VMLINUX_BTF).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => crate::core::features::BTF_VMLINUX
            .refuse(format!("{VMLINUX_BTF} is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF"), None),
        _ => Error::io(format!("reading {VMLINUX_BTF}"), &e),
    })?;
    let identity = sha256_hex(&raw);
    Ok((raw, identity))
}

pub(crate) fn kernel_btf() -> Result<std::sync::Arc<KernelBtf>> {
    let mut g = KERNEL_BTF.lock().map_err(|_| Error::poisoned("kernel BTF"))?;
    if let Some(k) = g.as_ref() {
        return Ok(k.clone());
    }
    let stashed = RAW_BTF.lock().ok().and_then(|mut r| r.take());
    let (raw, identity) = match stashed {
        Some(r) => r,
        None => read_kernel_btf()?,
    };
    let parsed = Btf::parse(raw)?;
    let k = std::sync::Arc::new(KernelBtf { identity, parsed });
    *g = Some(k.clone());
    Ok(k)
}

/// Whether the running kernel's struct (or union) `name` has a member `field`, directly or
/// through an anonymous struct or union member (as C lets one write it). False when the
/// kernel has no such struct.
pub fn kernel_struct_has_field(name: &str, field: &str) -> Result<bool> {
    Ok(kernel_struct_members(name)?.is_some_and(|m| m.contains(field)))
}

/// The member names of the running kernel's struct (or union) `name`, those of its anonymous
/// struct and union members included; None when the kernel has no such struct.
pub fn kernel_struct_members(name: &str) -> Result<Option<HashSet<String>>> {
    fn collect(members: &[crate::core::btf::Member], out: &mut HashSet<String>) {
        for m in members {
            match &m.ty {
                crate::core::btf::TypeDesc::Struct { members, .. } if m.name.is_empty() => collect(members, out),
                _ => {
                    out.insert(m.name.clone());
                }
            }
        }
    }
    let k = kernel_btf()?;
    Ok(match k.parsed.find_struct(name).map(|id| k.parsed.describe(id)) {
        Some(crate::core::btf::TypeDesc::Struct { members, .. }) => {
            let mut out = HashSet::new();
            collect(&members, &mut out);
            Some(out)
        }
        _ => None,
    })
}

pub(crate) fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// The kernel's BTF identity (SHA-256 of its BTF). Memoised per boot in the cache, since a
/// kernel's BTF cannot change while it runs, so the warm path does not read 5 MB.
pub fn btf_identity(cache: &Cache) -> Result<String> {
    if let Some(k) = KERNEL_BTF.lock().ok().and_then(|g| g.as_ref().map(|k| k.identity.clone())) {
        return Ok(k);
    }
    let memo = boot_id().and_then(|b| {
        let uts = fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default();
        let rel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        cache.private_dir("btf").ok().map(|d| d.join(format!("id-{}", sha256_hex(format!("{b}|{uts}|{rel}").as_bytes()))))
    });
    if let Some(m) = &memo {
        if let Ok(Some(v)) = cache.read_file(m) {
            let v = String::from_utf8_lossy(&v).trim().to_string();
            if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(v);
            }
        }
    }
    let id = match RAW_BTF.lock().ok().and_then(|r| r.as_ref().map(|(_, id)| id.clone())) {
        Some(id) => id,
        None => {
            let (raw, id) = read_kernel_btf()?;
            if let Ok(mut r) = RAW_BTF.lock() {
                *r = Some((raw, id.clone()));
            }
            id
        }
    };
    if let Some(m) = &memo {
        let _ = cache.write_file(m, id.as_bytes());
    }
    Ok(id)
}

const HEADER_OPEN: &str = "/* Kernel types from /sys/kernel/btf/vmlinux, printed by bpfkit. */\n\
#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n\
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n";
const HEADER_CLOSE: &str = "\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n#endif /* __VMLINUX_H__ */\n";

/// Names always printed: the fixed-width types every program uses and the register file the
/// tracing macros dereference.
const BASE_PLAIN: &[&str] = &[
    "__u8", "__u16", "__u32", "__u64", "__s8", "__s16", "__s32", "__s64", "u8", "u16", "u32", "u64", "s8", "s16",
    "s32", "s64", "__be16", "__be32", "__be64", "__le16", "__le32", "__le64", "__wsum", "__sum16", "bool", "size_t",
    "pid_t", "uid_t", "gid_t", "false", "true",
];
const BASE_TAGGED: &[&str] = &["pt_regs"];

/// A token of C source, as far as bpfkit needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// An identifier or keyword.
    Ident(&'a str),
    /// A string or character literal.
    Literal,
    /// A number.
    Number,
    /// Any other non-space character.
    Punct(u8),
}

/// The tokens of `src`, comments skipped (preprocessor lines are tokenized like any other).
fn tokens(src: &str) -> Vec<Tok<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Literal);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(&src[st..i]));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Number);
        } else {
            if !c.is_ascii_whitespace() {
                out.push(Tok::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// Identifiers of a C source, split by whether they follow `struct`, `union` or `enum`
/// (`(plain, tagged)`). Comments and string/char literals are skipped.
pub fn scan_identifiers(src: &str) -> (HashSet<String>, HashSet<String>) {
    let (mut plain, mut tagged) = (HashSet::new(), HashSet::new());
    let mut after_tag = false;
    for t in tokens(src) {
        match t {
            Tok::Ident(w) if after_tag => {
                tagged.insert(w.to_string());
                after_tag = false;
            }
            Tok::Ident("struct" | "union" | "enum") => after_tag = true,
            Tok::Ident(w) => {
                plain.insert(w.to_string());
            }
            Tok::Number => {}
            Tok::Literal | Tok::Punct(_) => after_tag = false,
        }
    }
    (plain, tagged)
}

/// Names of the structs `src` defines (`struct NAME {`), outside comments and strings.
pub fn defined_structs(src: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in tokens(src).windows(3) {
        if let [Tok::Ident("struct"), Tok::Ident(name), Tok::Punct(b'{')] = w {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Declarations appended after the user's source so that every struct it defines is in the
/// object's BTF (clang only emits BTF for types that globals and functions reach), which lets
/// an event's record type be decoded from BTF without a declaration in Python. Appended, so
/// the user's line numbers do not move.
fn type_anchors(src: &str) -> String {
    let mut out = String::new();
    for name in defined_structs(src) {
        out.push_str(&format!("\nstruct {name} *__bpfkit_btf_{name} __attribute__((unused));"));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// How many times the minimal header is made again with the types clang found missing.
const MINIMAL_HEADER_TRIES: usize = 3;

/// The struct and union tags clang's diagnostics say are incomplete (`incomplete definition of
/// type 'struct request_queue'`, `... 'struct request_queue *'`), which a minimal header declared
/// but did not define.
fn incomplete_types(diag: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for line in diag.lines().filter(|l| l.contains("error:") && l.contains("incomplete")) {
        for kw in ["'struct ", "'union "] {
            let mut rest = line;
            while let Some(i) = rest.find(kw) {
                rest = &rest[i + kw.len()..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// A `vmlinux.h` holding only the kernel types `src` names, and what they depend on.
pub fn minimal_vmlinux_h(src: &str) -> Result<String> {
    minimal_vmlinux_h_with(src, &HashSet::new())
}

/// [`minimal_vmlinux_h`] with the struct/union tags `extra` defined as well.
/// `src` followed by the text of the headers it includes from its own directory (`source_dir`,
/// which is on the include path), and theirs, once each: the kernel names a program uses
/// through its own shared headers (a tool's `hist.bpf.h`) belong in its minimal header too.
/// System headers (`bpf/bpf_helpers.h`) are not read: they name no kernel type the scan needs.
fn with_local_headers(src: &str, source_dir: Option<&Path>) -> String {
    let Some(dir) = source_dir else { return src.to_string() };
    let mut out = src.to_string();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut todo: Vec<String> = vec![src.to_string()];
    while let Some(text) = todo.pop() {
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix('#').map(str::trim_start) else { continue };
            let Some(rest) = rest.strip_prefix("include").map(str::trim) else { continue };
            let name = rest.trim_start_matches(['<', '"']).split(['>', '"']).next().unwrap_or("");
            let path = dir.join(name);
            if name.is_empty() || name.contains("..") || !path.is_file() || !seen.insert(path.clone()) || seen.len() > 64 {
                continue;
            }
            if let Ok(t) = fs::read_to_string(&path) {
                out.push('\n');
                out.push_str(&t);
                todo.push(t);
            }
        }
    }
    out
}

/// The last minimal headers made in this process, by the names they were made for: a BCC
/// program's AST pass and its compile ask for the same one.
type HeaderMemo = Vec<(Vec<String>, std::sync::Arc<String>)>;
static MINIMAL_MEMO: Lazy<Mutex<HeaderMemo>> = Lazy::new(|| Mutex::new(Vec::new()));

fn minimal_vmlinux_h_with(src: &str, extra: &HashSet<String>) -> Result<String> {
    let (plain, tagged) = scan_identifiers(src);
    let mut names: Vec<String> = plain.iter().map(|p| format!(" {p}")).chain(tagged.iter().chain(extra.iter()).map(|t| format!("*{t}"))).collect();
    names.sort_unstable();
    names.dedup();
    if let Some(hit) = MINIMAL_MEMO.lock().ok().and_then(|m| m.iter().find(|(n, _)| *n == names).map(|(_, h)| h.clone())) {
        return Ok((*hit).clone());
    }
    let header = minimal_vmlinux_h_for(plain, tagged, extra)?;
    if let Ok(mut m) = MINIMAL_MEMO.lock() {
        if m.len() >= 4 {
            m.remove(0);
        }
        m.push((names, std::sync::Arc::new(header.clone())));
    }
    Ok(header)
}

fn minimal_vmlinux_h_for(mut plain: HashSet<String>, mut tagged: HashSet<String>, extra: &HashSet<String>) -> Result<String> {
    let k = kernel_btf()?;
    tagged.extend(extra.iter().cloned());
    plain.extend(BASE_PLAIN.iter().map(|s| s.to_string()));
    tagged.extend(BASE_TAGGED.iter().map(|s| s.to_string()));
    let all: HashSet<&str> = plain.iter().chain(tagged.iter()).map(|s| s.as_str()).collect();
    let (found_tagged, found_plain) = k.parsed.find_names(&all);
    let mut ids: Vec<u32> = Vec::new();
    for (name, v) in &found_tagged {
        if tagged.contains(name) {
            ids.extend(v);
        }
    }
    for (name, v) in &found_plain {
        if plain.contains(name) {
            ids.extend(v);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    dump_header(&k.parsed, ids)
}

fn dump_header(btf: &Btf, ids: Vec<u32>) -> Result<String> {
    let lb = sys::Btf::from_raw(btf.raw()).map_err(Error::from)?;
    let body = lb.dump_c(ids).map_err(Error::from)?;
    Ok(format!("{HEADER_OPEN}{body}{HEADER_CLOSE}"))
}

/// The full `vmlinux.h` of the running kernel, generated once per BTF identity into the cache.
pub fn full_vmlinux_h(cache: &Cache) -> Result<PathBuf> {
    let id = btf_identity(cache)?;
    let dir = cache.private_dir(&format!("btf/{id}"))?;
    let path = dir.join("vmlinux.h");
    if cache.read_file(&path)?.is_some() {
        return Ok(path);
    }
    let k = kernel_btf()?;
    let text = dump_header(&k.parsed, (1..=k.parsed.len()).collect())?;
    // Its existence is all a later compile checks.
    cache.write_file_durable(&path, text.as_bytes())?;
    Ok(path)
}

/// libbpf's version ("1.7") from the embedded `libbpf_version.h`.
pub fn libbpf_version() -> String {
    let num = |key: &str| {
        LIBBPF_VERSION_H
            .lines()
            .find_map(|l| l.strip_prefix("#define ").and_then(|r| r.strip_prefix(key)).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into())
    };
    format!("{}.{}", num("LIBBPF_MAJOR_VERSION"), num("LIBBPF_MINOR_VERSION"))
}

fn headers_digest() -> String {
    let mut h = Sha256::new();
    for (name, data) in HEADERS {
        h.update(name.as_bytes());
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    h.update(LIBBPF_VERSION_H.as_bytes());
    h.update(PRELUDE.as_bytes());
    h.update(USDT_PRELUDE.as_bytes());
    h.update(GENERATOR_VERSION.as_bytes());
    hex(&h.finalize())
}

static HEADERS_DIGEST: Lazy<String> = Lazy::new(headers_digest);

/// The cache key of a compile-time product of `req` (named by `what`, with its own version):
/// everything [`cache_key`] covers, so a translation is made again whenever its compile would be.
pub fn derived_key(what: &str, req: &Request<'_>, cache: &Cache) -> Result<String> {
    let compiler = find_compiler(req.zig)?;
    Ok(format!("{what}-{}", cache_key(req, &compiler, &btf_identity(cache)?)))
}

const PRELUDE: &str = "/* Included before every bpfkit program (clang -include). */\n\
#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n\
#include <bpf/bpf_core_read.h>\n#include <bpf/bpf_endian.h>\n#include <bpfkit.h>\n";

/// Also included when the source uses USDT arguments: libbpf's `usdt.bpf.h` (its `BPF_USDT()`
/// and `bpf_usdt_arg()`) and BCC's `bpf_usdt_readarg()` (arguments counted from 1) over it.
const USDT_PRELUDE: &str = "/* Included before bpfkit programs that read USDT arguments. */\n\
#include <bpf/usdt.bpf.h>\n\
#define bpf_usdt_readarg(n, ctx, addr) ({ long __bpfkit_v = 0; \\\n\
    int __bpfkit_r = bpf_usdt_arg((ctx), (n) - 1, &__bpfkit_v); \\\n\
    *(addr) = (__typeof__(*(addr)))__bpfkit_v; __bpfkit_r; })\n\
#define bpf_usdt_readarg_p(n, ctx, buf, len) ({ long __bpfkit_v = 0; \\\n\
    int __bpfkit_r = bpf_usdt_arg((ctx), (n) - 1, &__bpfkit_v); \\\n\
    if (!__bpfkit_r) __bpfkit_r = bpf_probe_read_user((buf), (len), (void *)__bpfkit_v); \\\n\
    __bpfkit_r < 0 ? __bpfkit_r : 0; })\n";

/// Whether a source reads USDT arguments without including libbpf's header itself.
fn wants_usdt(src: &str) -> bool {
    (src.contains("usdt") || src.contains("USDT")) && !src.contains("usdt.bpf.h")
}

/// The embedded headers written out under the cache (once per header digest; contents checked).
fn headers_dir(cache: &Cache) -> Result<PathBuf> {
    let dir = cache.private_dir(&format!("headers/{}", &HEADERS_DIGEST[..16]))?;
    cache.private_dir(&format!("headers/{}/bpf", &HEADERS_DIGEST[..16]))?;
    cache.private_dir(&format!("headers/{}/linux", &HEADERS_DIGEST[..16]))?;
    cache.private_dir(&format!("headers/{}/bcc", &HEADERS_DIGEST[..16]))?;
    let mut files: Vec<(&str, &[u8])> = HEADERS.to_vec();
    files.push(("bpfkit_prelude.h", PRELUDE.as_bytes()));
    files.push(("bpfkit_usdt.h", USDT_PRELUDE.as_bytes()));
    for (name, data) in files {
        let p = dir.join(name);
        if cache.read_file(&p)?.as_deref() != Some(data) {
            cache.write_file(&p, data)?;
        }
    }
    Ok(dir)
}

// ------------------------------------------------------------------------------------------
// Compiling

/// How long a compile may take unless told otherwise, in seconds (`BPFKIT_COMPILE_TIMEOUT`).
pub const DEFAULT_TIMEOUT_SECS: f64 = 120.0;

/// The environment variable that sets the compile time limit, in seconds.
pub const TIMEOUT_ENV: &str = "BPFKIT_COMPILE_TIMEOUT";

/// Asked every few milliseconds while clang runs: true stops the compile, killing clang, with
/// `Error::Os { errno: EINTR }`. The bindings answer it from Python's signal handlers, so
/// Ctrl-C stops a compile at once.
#[derive(Clone, Copy)]
pub struct Interrupt<'a>(pub &'a (dyn Fn() -> bool + Sync));

impl std::fmt::Debug for Interrupt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt(..)")
    }
}

/// The time limit of a compile: `seconds` if given, else `$BPFKIT_COMPILE_TIMEOUT`, else
/// [`DEFAULT_TIMEOUT_SECS`]. None: no limit (infinity). A value that is not a positive number
/// is refused, naming where it came from.
pub fn time_limit(seconds: Option<f64>) -> Result<Option<Duration>> {
    let (v, from) = match seconds {
        Some(v) => (v, "timeout".to_string()),
        None => match std::env::var(TIMEOUT_ENV) {
            Ok(t) if !t.trim().is_empty() => match t.trim().parse::<f64>() {
                Ok(v) => (v, format!("{TIMEOUT_ENV}={t}")),
                Err(_) => return Err(Error::Value(format!("{TIMEOUT_ENV} must be a number of seconds, got {t:?}"))),
            },
            _ => (DEFAULT_TIMEOUT_SECS, String::new()),
        },
    };
    if v.is_nan() || v <= 0.0 {
        return Err(Error::Value(format!("the compile time limit must be a positive number of seconds, got {v} ({from})")));
    }
    Ok(v.is_finite().then(|| Duration::from_secs_f64(v)))
}

/// What to compile.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// The C source.
    pub source: &'a str,
    /// Name used for the source in diagnostics (`<text>` or the file's path).
    pub display_name: &'a str,
    /// Extra flags (`-DX=1`, `-I...`).
    pub cflags: &'a [String],
    /// The zig binary of the `ziglang` package, if installed.
    pub zig: Option<&'a Path>,
    /// Directory of a source file, added to the include path.
    pub source_dir: Option<&'a Path>,
    /// The time limit of the whole compile (see [`time_limit`]); None: none.
    pub time_limit: Option<Duration>,
    /// Asked periodically while clang runs; true stops the compile.
    pub interrupt: Option<Interrupt<'a>>,
}

impl Request<'_> {
    /// Refuses arguments clang cannot be given: a NUL byte cannot pass through `execve`.
    fn check(&self) -> Result<()> {
        for f in self.cflags {
            if f.contains('\0') {
                return Err(Error::Value(format!("cflag {f:?} contains a NUL byte")));
            }
        }
        if let Some(d) = self.source_dir {
            if d.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(Error::Value(format!("source directory {:?} contains a NUL byte", d.display())));
            }
        }
        Ok(())
    }
}

/// What a compile produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The BPF ELF object.
    pub object: Vec<u8>,
    /// Whether it came from the cache.
    pub cached: bool,
    /// Which header was used: "cache", "minimal" or "full".
    pub header: &'static str,
    /// clang's warnings, if any.
    pub warnings: String,
    /// The cache key.
    pub key: String,
}

fn base_flags(req: &Request<'_>) -> Vec<String> {
    let mut f: Vec<String> = vec![
        "-g".into(),
        "-O2".into(),
        "-mcpu=v3".into(),
        format!("-D__TARGET_ARCH_{}", target_arch()),
        "-D__BPFKIT__=1".into(),
        "-Wno-unused-command-line-argument".into(),
        "-Wno-compare-distinct-pointer-types".into(),
        "-fno-stack-protector".into(),
        // A call to an undeclared function (a kernel header's inline helper, a typo) is clang's
        // error on the user's line, not an unresolved extern when the object is opened.
        "-Werror=implicit-function-declaration".into(),
    ];
    if !req.source.contains("\"license\"") {
        f.push("-DBPFKIT_DEFAULT_LICENSE".into());
    }
    f.extend(req.cflags.iter().cloned());
    f
}

/// The cache key of a request with a given compiler and kernel.
pub fn cache_key(req: &Request<'_>, compiler: &Compiler, btf_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        GENERATOR_VERSION,
        HEADERS_DIGEST.as_str(),
        &compiler.identity(),
        &compiler.target.join(" "),
        &base_flags(req).join("\u{1}"),
        btf_id,
        &req.source_dir.map(|d| d.display().to_string()).unwrap_or_default(),
        req.source,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize())
}

/// Output kinds for `debug=`: what clang prints instead of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// A BPF object (the normal case).
    Object,
    /// LLVM IR text.
    LlvmIr,
    /// Preprocessed C.
    Preprocessed,
    /// BPF assembly.
    Assembly,
    /// clang's AST as JSON (`-ast-dump=json`), for the BCC dialect's kernel reads.
    SyntaxTree,
}

/// How often a running compiler is checked for exit, interrupt and time limit.
const CHILD_POLL: Duration = Duration::from_millis(10);

/// Kills `child`'s whole process group (clang and anything it spawned) and reaps `child`.
fn kill_group(child: &mut Child) {
    // The group is the one the child leads (it was spawned with process_group(0)), so nothing
    // else is signalled.
    sys::os::kill_process_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for `child`, asking `interrupt` and checking `deadline` every [`CHILD_POLL`]; on
/// either, kills and reaps its process group and says why. `exited` hears from the thread
/// draining clang's stderr when that pipe closes, which is when clang exits: the wait then ends
/// at once rather than at the next poll.
fn wait_child(
    child: &mut Child,
    req: &Request<'_>,
    deadline: Option<Instant>,
    exited: &std::sync::mpsc::Receiver<()>,
) -> Result<ExitStatus> {
    let mut pipe_closed = false;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                return Err(Error::io("waiting for clang", &e));
            }
        }
        if req.interrupt.is_some_and(|i| (i.0)()) {
            kill_group(child);
            return Err(Error::Os { errno: libc::EINTR, message: format!("compiling {} was interrupted", req.display_name) });
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_group(child);
            let secs = req.time_limit.map(|t| t.as_secs_f64()).unwrap_or_default();
            return Err(Error::Compile {
                message: format!(
                    "compiling {} timed out after {secs} s (the limit is set by timeout= or {TIMEOUT_ENV})",
                    req.display_name
                ),
                diagnostics: String::new(),
            });
        }
        if pipe_closed {
            // Exiting: the kernel has closed its files but not yet made it a zombie.
            std::thread::sleep(Duration::from_millis(1));
        } else if exited.recv_timeout(CHILD_POLL).is_ok() {
            pipe_closed = true;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_clang(
    compiler: &Compiler,
    req: &Request<'_>,
    gen_dir: &Path,
    hdr_dir: &Path,
    out: &Path,
    emit: Emit,
    deadline: Option<Instant>,
    prepare: impl FnOnce() -> Result<()>,
) -> Result<(bool, String)> {
    let mut cmd = Command::new(&compiler.path);
    cmd.args(&compiler.prefix).args(&compiler.target).args(base_flags(req));
    cmd.arg(format!("-I{}", gen_dir.display())).arg(format!("-I{}", hdr_dir.display()));
    if let Some(d) = req.source_dir {
        cmd.arg(format!("-I{}", d.display()));
    }
    cmd.arg("-include").arg(hdr_dir.join("bpfkit_prelude.h"));
    if wants_usdt(req.source) {
        cmd.arg("-include").arg(hdr_dir.join("bpfkit_usdt.h"));
    }
    match emit {
        // The headers the source included, for the cache entry's dependency manifest.
        Emit::Object => cmd.arg("-c").arg("-MD").arg("-MF").arg(out.with_extension("d")),
        Emit::LlvmIr => cmd.args(["-S", "-emit-llvm"]),
        Emit::Preprocessed => cmd.arg("-E"),
        Emit::Assembly => cmd.arg("-S"),
        Emit::SyntaxTree => cmd.args(["-fsyntax-only", "-Xclang", "-ast-dump=json"]),
    };
    cmd.args(["-x", "c", "-o"]).arg(out).arg("-");
    let stdout = if emit == Emit::SyntaxTree {
        // The AST goes to stdout whatever -o says.
        Stdio::from(fs::File::create(out).map_err(|e| Error::io("creating the AST file", &e))?)
    } else {
        Stdio::null()
    };
    cmd.stdin(Stdio::piped()).stdout(stdout).stderr(Stdio::piped());
    // Its own process group, so that an interrupt or the time limit kills clang and whatever it
    // spawned in one go (a Ctrl-C at the terminal then reaches only us; we kill it at once).
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::CompilerNotFound {
            message: format!("cannot run {} (found via {}): {e}", compiler.path.display(), compiler.source),
        },
        _ => Error::io(format!("starting {}", compiler.path.display()), &e),
    })?;
    // clang starts (loading LLVM takes it ~50 ms) while `prepare` writes the headers it will
    // include: it reads all of its standard input, the source, before it opens any header, and
    // the source goes in only once `prepare` is done.
    if let Err(e) = prepare() {
        kill_group(&mut child);
        return Err(e);
    }
    let input = [req.source.as_bytes(), type_anchors(req.source).as_bytes()].concat();
    let (stdin, stderr) = (child.stdin.take(), child.stderr.take());
    let (exited_tx, exited) = std::sync::mpsc::channel();
    // Feed stdin and drain stderr on their own threads: either pipe can fill and block clang
    // while this thread watches the clock and interrupts.
    let (status, diag) = std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(mut w) = stdin {
                // A compiler that exits early closes the pipe; its stderr says why.
                let _ = w.write_all(&input);
            }
        });
        let reader = s.spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = stderr {
                let _ = r.read_to_end(&mut buf);
            }
            let _ = exited_tx.send(());
            buf
        });
        let status = wait_child(&mut child, req, deadline, &exited);
        // clang has exited or its group was killed: the pipes close and the threads end.
        (status, reader.join().unwrap_or_default())
    });
    let status = status?;
    let diag = String::from_utf8_lossy(&diag).replace("<stdin>", req.display_name);
    Ok((status.success(), diag))
}

/// The files a make-style dependency list (clang's `-MD`) names, in order, without duplicates,
/// with make's escapes undone (`\ ` for a space, `\#`, `$$`).
fn depfile_paths(depfile: &str) -> Vec<String> {
    let joined = depfile.replace("\\\n", " ");
    let rules = joined.split_once(": ").map_or("", |(_target, deps)| deps);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = rules.chars().peekable();
    let mut finish = |cur: &mut String| {
        if !cur.is_empty() && !out.contains(cur) {
            out.push(std::mem::take(cur));
        }
        cur.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some(' ' | '#')) => cur.push(chars.next().unwrap_or(' ')),
            '$' if chars.peek() == Some(&'$') => cur.push(chars.next().unwrap_or('$')),
            c if c.is_whitespace() => finish(&mut cur),
            c => cur.push(c),
        }
    }
    finish(&mut cur);
    out
}

/// The dependency manifest of a compile, bound to its object: `object <sha256>`, then
/// `<sha256> <path>` for every header it read outside `covered` (the scratch directory, bpfkit's
/// own headers and the cache's generated vmlinux.h, which the cache key already covers). A
/// relative path (`#include "x.h"` in `text=`, `-I.`) is kept as clang wrote it and read again
/// from the same working directory, as clang would. `None` when the compile cannot be trusted
/// to the cache: no dependency list, or a header changed while clang ran (`started`).
fn header_manifest(depfile: &str, object: &[u8], covered: &[&Path], started: std::time::SystemTime) -> Result<Option<String>> {
    if depfile.trim().is_empty() {
        return Ok(None);
    }
    let mut manifest = format!("object {}\n", sha256_hex(object));
    for p in depfile_paths(depfile) {
        let path = Path::new(&p);
        if p == "<stdin>" || p == "-" || (path.is_absolute() && covered.iter().any(|c| path.starts_with(c))) {
            continue;
        }
        let meta = fs::metadata(path).map_err(|e| Error::io(format!("reading included header {p}"), &e))?;
        if meta.modified().is_ok_and(|m| m >= started) {
            return Ok(None);
        }
        let data = fs::read(path).map_err(|e| Error::io(format!("reading included header {p}"), &e))?;
        manifest.push_str(&format!("{} {p}\n", sha256_hex(&data)));
    }
    Ok(Some(manifest))
}

/// Whether the cached `object` for `key` is the one its manifest was written for and every
/// header it was built from still has the content it had (an entry without a manifest counts as
/// changed).
fn headers_unchanged(cache: &Cache, key: &str, object: &[u8]) -> Result<bool> {
    let Some(manifest) = cache.get_object(&format!("{key}.headers"))? else { return Ok(false) };
    let manifest = String::from_utf8_lossy(&manifest);
    let mut lines = manifest.lines();
    if lines.next() != Some(&format!("object {}", sha256_hex(object))) {
        return Ok(false);
    }
    Ok(lines.all(|line| match line.split_once(' ') {
        Some((sha, path)) => fs::read(path).is_ok_and(|d| sha256_hex(&d) == sha),
        None => false,
    }))
}

/// Compiles a request, through the cache.
pub fn compile(req: &Request<'_>, cache: &Cache) -> Result<Output> {
    req.check()?;
    let deadline = req.time_limit.map(|t| Instant::now() + t);
    let compiler = find_compiler(req.zig)?;
    let btf_id = btf_identity(cache)?;
    let key = cache_key(req, &compiler, &btf_id);
    if let Some(object) = cache.get_object(&key)? {
        if headers_unchanged(cache, &key, &object)? {
            return Ok(Output { object, cached: true, header: "cache", warnings: String::new(), key });
        }
    }
    let hdr_dir = headers_dir(cache)?;
    let scratch = cache.scratch()?;
    let out = scratch.path().join("out.o");
    // A header saved after this moment may or may not be what clang read.
    let started = std::time::SystemTime::now() - Duration::from_millis(10);

    let (header, warnings) = with_headers(&compiler, req, cache, &hdr_dir, scratch.path(), &out, Emit::Object, deadline)?;
    let object = elf::without_dwarf(&fs::read(&out).map_err(|e| Error::io("reading clang's output", &e))?)?;
    let depfile = fs::read_to_string(out.with_extension("d")).unwrap_or_default();
    // Only an object whose headers are known and unchanged since clang started is kept.
    if let Some(manifest) = header_manifest(&depfile, &object, &[scratch.path(), &hdr_dir, cache.root()], started)? {
        cache.put_object(&key, &object)?;
        cache.put_object(&format!("{key}.headers"), manifest.as_bytes())?;
    }
    Ok(Output { object, cached: false, header, warnings, key })
}

/// Runs clang on `req` with the minimal header, then the full one if it must: `(header used,
/// clang's warnings)`, or clang's errors.
///
/// A struct the source reaches only through a member (`BPF_CORE_READ(rq, q, disk)` needs
/// `struct request_queue`) is only declared in the minimal header: clang names it, and the
/// minimal header is made again with it, a few times; if clang still refuses, the full header
/// decides.
#[allow(clippy::too_many_arguments)]
fn with_headers(
    compiler: &Compiler,
    req: &Request<'_>,
    cache: &Cache,
    hdr_dir: &Path,
    scratch: &Path,
    out: &Path,
    emit: Emit,
    deadline: Option<Instant>,
) -> Result<(&'static str, String)> {
    let gen_min = scratch.join("min");
    if !gen_min.is_dir() {
        fs::create_dir(&gen_min).map_err(|e| Error::io("creating scratch directory", &e))?;
    }
    let scanned = scanned_text(req);
    let mut extra: HashSet<String> = HashSet::new();
    let mut result = (false, String::new());
    for _ in 0..MINIMAL_HEADER_TRIES {
        let write_header = || {
            let minimal = minimal_vmlinux_h_with(&scanned, &extra)?;
            cache.write_file(&gen_min.join("vmlinux.h"), minimal.as_bytes())
        };
        result = run_clang(compiler, req, &gen_min, hdr_dir, out, emit, deadline, write_header)?;
        let before = extra.len();
        if result.0 {
            break;
        }
        extra.extend(incomplete_types(&result.1));
        if extra.len() == before {
            break;
        }
    }
    let (ok, diag) = result;
    if ok {
        return Ok(("minimal", diag));
    }
    let full = full_vmlinux_h(cache)?;
    let gen_full = full.parent().map(Path::to_path_buf).unwrap_or_default();
    let (ok, diag) = run_clang(compiler, req, &gen_full, hdr_dir, out, emit, deadline, || Ok(()))?;
    if !ok {
        return Err(compile_error(diag));
    }
    Ok(("full", diag))
}

/// The text whose names make the minimal header: the source, the headers it includes from its
/// own directory, and bpfkit's BCC header when it includes that (its macros name kernel enums).
fn scanned_text(req: &Request<'_>) -> String {
    let mut text = with_local_headers(req.source, req.source_dir);
    if req.source.contains("<bcc/helpers.h>") {
        if let Some((_, h)) = HEADERS.iter().find(|(n, _)| *n == "bcc/helpers.h") {
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(h));
        }
    }
    text
}

/// clang's AST of `req` as JSON (see [`crate::core::bcc_reads`]); clang's errors if the source
/// does not compile.
pub fn syntax_tree(req: &Request<'_>, cache: &Cache) -> Result<String> {
    req.check()?;
    let deadline = req.time_limit.map(|t| Instant::now() + t);
    let compiler = find_compiler(req.zig)?;
    let hdr_dir = headers_dir(cache)?;
    let scratch = cache.scratch()?;
    let out = scratch.path().join("ast.json");
    with_headers(&compiler, req, cache, &hdr_dir, scratch.path(), &out, Emit::SyntaxTree, deadline)?;
    fs::read_to_string(&out).map_err(|e| Error::io("reading clang's AST", &e))
}

/// Compiles to text (LLVM IR, preprocessed C or assembly) for `debug=`, with the full header.
pub fn compile_text(req: &Request<'_>, cache: &Cache, emit: Emit) -> Result<String> {
    req.check()?;
    let deadline = req.time_limit.map(|t| Instant::now() + t);
    let compiler = find_compiler(req.zig)?;
    let hdr_dir = headers_dir(cache)?;
    let full = full_vmlinux_h(cache)?;
    let gen_full = full.parent().map(Path::to_path_buf).unwrap_or_default();
    let scratch = cache.scratch()?;
    let out = scratch.path().join("out.txt");
    let (ok, diag) = run_clang(&compiler, req, &gen_full, &hdr_dir, &out, emit, deadline, || Ok(()))?;
    if !ok {
        return Err(compile_error(diag));
    }
    let text = fs::read_to_string(&out).map_err(|e| Error::io("reading clang's output", &e))?;
    Ok(text.replace("<stdin>", req.display_name))
}

fn compile_error(diag: String) -> Error {
    let first = diag
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or("clang failed")
        .trim()
        .to_string();
    let count = diag.lines().filter(|l| l.contains(" error:")).count();
    let more = if count > 1 { format!(" (and {} more errors)", count - 1) } else { String::new() };
    Error::Compile { message: format!("{first}{more}"), diagnostics: diag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_identifiers_outside_comments_and_strings() {
        let (plain, tagged) = scan_identifiers(
            "struct task_struct *t; /* struct hidden */ // enum gone\n u32 x = BPF_ANY; char *s = \"struct str\"; \
             enum  bpf_map_type m; union u v; 0x1f; 12ull;",
        );
        assert!(tagged.contains("task_struct") && tagged.contains("bpf_map_type") && tagged.contains("u"));
        assert!(!tagged.contains("hidden") && !tagged.contains("gone") && !tagged.contains("str"));
        assert!(plain.contains("u32") && plain.contains("BPF_ANY") && plain.contains("v"));
        assert!(!plain.contains("ull") && !plain.contains("x1f"));
    }

    #[test]
    fn finds_defined_structs_only() {
        let src = "struct a { int x; };\n// struct b { }\nstruct c *p; struct d\n{ int y; }; char *s = \"struct e {\";";
        assert_eq!(defined_structs(src), vec!["a".to_string(), "d".to_string()]);
    }

    #[test]
    fn arch_define_matches_the_kernel_headers_names() {
        // The -D__TARGET_ARCH_<x> that bpf_tracing.h expects: the kernel's arch directory names,
        // not Rust's target names.
        let expected = match std::env::consts::ARCH {
            "x86_64" => "x86",
            "aarch64" => "arm64",
            "s390x" => "s390",
            "powerpc64" => "powerpc",
            "riscv64" => "riscv",
            other => other,
        };
        assert_eq!(target_arch(), expected);
        assert_ne!(target_arch(), "x86_64");
    }

    #[test]
    fn incomplete_types_are_read_from_clang() {
        let diag = "<stdin>:55:25: error: incomplete definition of type 'struct request_queue'\n\
                    x.c:3:1: error: member access into incomplete type 'union u_x *'\n\
                    x.c:9:1: warning: incomplete 'struct not_an_error'\n";
        let got = incomplete_types(diag);
        assert_eq!(got, ["request_queue", "u_x"].into_iter().map(String::from).collect());
    }

    #[test]
    fn depfiles_list_every_header_once() {
        let d = "/tmp/s/out.o: /tmp/my\\ dir/a.h /usr/include/linux/types.h \\\n  /tmp/my\\ dir/a.h <stdin> \\#x$$.h inc/b.h\n";
        assert_eq!(
            depfile_paths(d),
            vec!["/tmp/my dir/a.h", "/usr/include/linux/types.h", "<stdin>", "#x$.h", "inc/b.h"]
        );
        assert!(depfile_paths("").is_empty());
    }

    #[test]
    fn key_changes_with_every_input() {
        let c = Compiler { path: "/bin/true".into(), prefix: vec![], target: vec!["-target".into(), "bpf".into()], source: "PATH" };
        let flags = vec!["-DX=1".to_string()];
        let base = Request { source: "int x;", display_name: "<text>", ..Default::default() };
        let k0 = cache_key(&base, &c, "btf1");
        assert_eq!(k0, cache_key(&base, &c, "btf1"));
        assert_ne!(k0, cache_key(&base, &c, "btf2"));
        assert_ne!(k0, cache_key(&Request { source: "int y;", ..base.clone() }, &c, "btf1"));
        assert_ne!(k0, cache_key(&Request { cflags: &flags, ..base.clone() }, &c, "btf1"));
        let other = Compiler { path: "/bin/false".into(), ..c.clone() };
        assert_ne!(k0, cache_key(&base, &other, "btf1"));
    }
}

