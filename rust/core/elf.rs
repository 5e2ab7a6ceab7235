//! The one reader of user-space ELF files, for attaching to them: the defined function symbols
//! of `.dynsym` and `.symtab` (with their GNU symbol versions, binding and whether each is a GNU
//! indirect function), the loadable segments (virtual address to file offset, which is what a
//! uprobe takes), the SystemTap SDT notes that describe USDT probes, and C++ names demangled.
//!
//! blazesym (linked for symbolizing addresses, see [`crate::core::symbols`]) answers "which
//! symbol holds this address" well, but its inspection API reports neither a symbol's version,
//! binding nor IFUNC type, nor program headers or notes: attaching needs all of them, so they are
//! read here, once. ELF32 and ELF64 in either byte order. Every offset and size read from the
//! file is checked against what was read before it is used: a truncated or hostile file gives an
//! [`Error::Attach`] naming the file, never a panic or an out-of-bounds read.
//!
//! Only regular files are read. A FIFO, socket or device is refused after a `stat`, and the file
//! is opened with `O_NONBLOCK` so that a path swapped for a FIFO in between still cannot block.
//!
//! ```no_run
//! let elf = bpfkit::core::elf::open(std::path::Path::new("/bin/true")).unwrap();
//! for s in elf.functions().unwrap().all.iter().take(3) {
//!     println!("{} at {:#x}", s.versioned_name(), s.value);
//! }
//! ```

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::core::error::{Error, Result};

/// `e_type` of a shared object (or position-independent executable).
pub const ET_DYN: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `p_flags` bit of an executable segment.
pub const PF_X: u32 = 1;

const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const SHT_NOBITS: u32 = 8;
const SHT_DYNSYM: u32 = 11;
const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;
const SHT_GNU_VERSYM: u32 = 0x6fff_ffff;
const PT_LOAD: u32 = 1;
const PN_XNUM: u16 = 0xffff;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const SHN_UNDEF: u16 = 0;
const SHN_XINDEX: u16 = 0xffff;
const VERSYM_HIDDEN: u16 = 0x8000;
const NT_STAPSDT: u32 = 3;
/// Most binaries a process maps at once, remembered between calls.
const CACHE_SIZE: usize = 64;

/// Which symbol table a symbol came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `.dynsym`: what the dynamic linker sees; versions live beside it in `.gnu.version`.
    Dynsym,
    /// `.symtab`: the full table; a versioned name is spelt `f@V1`/`f@@V2` in it.
    Symtab,
}

impl Table {
    /// `"dynsym"` or `"symtab"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Dynsym => "dynsym",
            Table::Symtab => "symtab",
        }
    }
}

/// A symbol's binding (`STB_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// `STB_LOCAL`: visible in its own file only.
    Local,
    /// `STB_GLOBAL`.
    Global,
    /// `STB_WEAK`.
    Weak,
    /// `STB_GNU_UNIQUE` or an OS/processor-specific binding.
    Other(u8),
}

impl Bind {
    fn from_info(info: u8) -> Bind {
        match info >> 4 {
            0 => Bind::Local,
            1 => Bind::Global,
            2 => Bind::Weak,
            b => Bind::Other(b),
        }
    }

    /// `"local"`, `"global"`, `"weak"` or `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bind::Local => "local",
            Bind::Global => "global",
            Bind::Weak => "weak",
            Bind::Other(_) => "other",
        }
    }
}

/// A defined function symbol (`STT_FUNC` or `STT_GNU_IFUNC`, not `SHN_UNDEF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The name as the table spells it (`.symtab` names may carry `@VER`/`@@VER`).
    pub name: String,
    /// `st_value`: the symbol's virtual address.
    pub value: u64,
    /// `st_size` (0 when unknown).
    pub size: u64,
    /// A GNU indirect function: `value` is its resolver, not the code that runs.
    pub ifunc: bool,
    /// Its binding.
    pub bind: Bind,
    /// The table it came from.
    pub table: Table,
    /// The GNU version of a `.dynsym` entry, None when unversioned.
    pub version: Option<String>,
    /// `name@@VER` (the default version) rather than `name@VER`; true when unversioned.
    pub default_version: bool,
}

impl Symbol {
    /// `name@@VER`/`name@VER` for a versioned `.dynsym` entry, else the name.
    pub fn versioned_name(&self) -> String {
        match &self.version {
            None => self.name.clone(),
            Some(v) => format!("{}{}{}", self.name, if self.default_version { "@@" } else { "@" }, v),
        }
    }

    /// The name without a `@VER`/`@@VER` suffix.
    pub fn base_name(&self) -> &str {
        base_of(&self.name)
    }
}

fn base_of(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// A `PT_LOAD` program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_flags` (`PF_X` = 1, `PF_W` = 2, `PF_R` = 4).
    pub flags: u32,
}

impl Segment {
    fn holds_vaddr(&self, vaddr: u64) -> bool {
        vaddr >= self.vaddr && vaddr - self.vaddr < self.filesz
    }
}

/// One `.note.stapsdt` entry: a USDT probe site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdtNote {
    /// The provider (`bkprov` of `bkprov:tick`).
    pub provider: String,
    /// The probe name.
    pub name: String,
    /// The probe site's virtual address, adjusted for prelinking through `.stapsdt.base`.
    pub pc: u64,
    /// The semaphore's virtual address, 0 when the probe has none.
    pub semaphore: u64,
    /// The argument specification, such as `-4@%edi 8@-16(%rbp)`.
    pub args: String,
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    kind: u32,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
}

/// What tells one version of a file from another: a changed file is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Identity {
    fn of(md: &Metadata) -> Identity {
        Identity { dev: md.dev(), ino: md.ino(), size: md.size(), mtime: md.mtime(), mtime_nsec: md.mtime_nsec() }
    }
}

/// Little helpers over a byte buffer in the file's byte order; every read is bounds-checked.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    data: &'a [u8],
    little: bool,
}

impl<'a> Bytes<'a> {
    fn slice(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }

    fn u8(&self, off: u64) -> Option<u8> {
        self.slice(off, 1).map(|b| b[0])
    }

    fn u16(&self, off: u64) -> Option<u16> {
        let b: [u8; 2] = self.slice(off, 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32(&self, off: u64) -> Option<u32> {
        let b: [u8; 4] = self.slice(off, 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn u64(&self, off: u64) -> Option<u64> {
        let b: [u8; 8] = self.slice(off, 8)?.try_into().ok()?;
        Some(if self.little { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
    }

    /// A word of the file's class: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, off: u64, is64: bool) -> Option<u64> {
        if is64 {
            self.u64(off)
        } else {
            self.u32(off).map(u64::from)
        }
    }

    /// The NUL-terminated string at `off` (lossy UTF-8); None past the end or unterminated.
    fn cstr(&self, off: u64) -> Option<String> {
        let rest = self.data.get(usize::try_from(off).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// The way in to a file's bytes: `pread` on a `File`, or a buffer (the unit tests).
trait Blob {
    fn len(&self) -> u64;
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Blob for File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read_exact_at(buf, off)
    }
}

impl Blob for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|s| Some(s..s.checked_add(buf.len())?))
            .and_then(|r| self.get(r))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A parsed ELF file: its header facts and loadable segments at once, its function symbols and
/// SDT notes on first use. Get one with [`open`], which remembers the latest files read.
#[derive(Debug)]
pub struct ElfFile {
    path: PathBuf,
    identity: Identity,
    is64: bool,
    little: bool,
    /// `e_type`.
    pub kind: u16,
    /// `e_machine`.
    pub machine: u16,
    /// The `PT_LOAD` program headers, in file order.
    pub segments: Vec<Segment>,
    sections: Vec<Section>,
    functions: Mutex<Option<Arc<Functions>>>,
    notes: Mutex<Option<Arc<Vec<SdtNote>>>>,
    demangled: Mutex<Option<Arc<HashMap<String, String>>>>,
}

/// The function symbols of a file, `.dynsym` first, with an index by base name.
#[derive(Debug, Default)]
pub struct Functions {
    /// Every defined function symbol.
    pub all: Vec<Symbol>,
    by_base: HashMap<String, Vec<usize>>,
}

impl Functions {
    fn new(all: Vec<Symbol>) -> Functions {
        let mut by_base: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in all.iter().enumerate() {
            by_base.entry(s.base_name().to_string()).or_default().push(i);
        }
        Functions { all, by_base }
    }

    /// The symbols whose name, without any `@VER`, is `base`.
    pub fn named(&self, base: &str) -> impl Iterator<Item = &Symbol> {
        self.by_base.get(base).into_iter().flatten().map(|&i| &self.all[i])
    }
}

fn describe(md: &Metadata) -> &'static str {
    let t = md.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn refuse_irregular(path: &Path, md: &Metadata) -> Result<()> {
    if md.file_type().is_file() {
        return Ok(());
    }
    let errno = if md.file_type().is_dir() { libc::EISDIR } else { libc::EINVAL };
    Err(Error::Attach { program: None, target: None,
        errno,
        message: format!("{} is {}, not a regular file: only an ELF file can be probed", path.display(), describe(md)),
    })
}

fn read_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Attach { program: None, target: None, errno: e.raw_os_error().unwrap_or(libc::EIO), message: format!("cannot read {}: {e}", path.display()) }
}

/// Opens `path` for reading if it is a regular file, without ever blocking: `stat` first (so a
/// device or FIFO is never opened), then `open` with `O_NONBLOCK`, and `fstat` to make sure it
/// is still the same regular file.
fn open_regular(path: &Path) -> Result<(File, Identity)> {
    let md = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
    refuse_irregular(path, &md)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| read_error(path, &e))?;
    let now = file.metadata().map_err(|e| read_error(path, &e))?;
    refuse_irregular(path, &now)?;
    if (now.dev(), now.ino()) != (md.dev(), md.ino()) {
        return Err(Error::Attach { program: None, target: None, errno: libc::EAGAIN, message: format!("{} was replaced while being opened", path.display()) });
    }
    Ok((file, Identity::of(&now)))
}

/// Reads ELF structures from a [`Blob`], naming `path` in every error.
struct Reader<'a, B: Blob + ?Sized> {
    path: &'a Path,
    blob: &'a B,
    size: u64,
}

impl<B: Blob + ?Sized> Reader<'_, B> {
    fn malformed(&self, what: impl std::fmt::Display) -> Error {
        Error::Attach { program: None, target: None, errno: libc::ENOEXEC, message: format!("{}: malformed ELF file: {what}", self.path.display()) }
    }

    /// `len` bytes at `off`, which must lie inside the file (so no size from the file can make
    /// this allocate more than the file holds).
    fn bytes(&self, off: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        match off.checked_add(len) {
            Some(end) if end <= self.size => {}
            _ => return Err(self.malformed(format!("{what} ({len} bytes at {off:#x}) runs past the end of the file"))),
        }
        let n = usize::try_from(len).map_err(|_| self.malformed(format!("{what} is too large")))?;
        let mut buf = vec![0u8; n];
        self.blob.read_at(off, &mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.malformed(format!("{what} is truncated"))
            } else {
                read_error(self.path, &e)
            }
        })?;
        Ok(buf)
    }
}

/// The facts of the ELF header that the rest is read through.
struct Header {
    is64: bool,
    little: bool,
    kind: u16,
    machine: u16,
    phoff: u64,
    shoff: u64,
    phentsize: u64,
    phnum: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

fn parse<B: Blob + ?Sized>(path: &Path, blob: &B, identity: Identity) -> Result<ElfFile> {
    let r = Reader { path, blob, size: blob.len() };
    let not_elf = || Error::Attach { program: None, target: None, errno: libc::ENOEXEC, message: format!("{} is not an ELF file", path.display()) };
    if r.size < 16 {
        return Err(not_elf());
    }
    let ident = r.bytes(0, 16, "ELF identification")?;
    if ident[..4] != *b"\x7fELF" {
        return Err(not_elf());
    }
    let (is64, little) = match (ident[4], ident[5]) {
        (1 | 2, 1 | 2) => (ident[4] == 2, ident[5] == 1),
        _ => return Err(r.malformed("unknown ELF class or byte order")),
    };
    let ehsize = if is64 { 64 } else { 52 };
    let raw = r.bytes(0, ehsize, "ELF header")?;
    let b = Bytes { data: &raw, little };
    let short = || r.malformed("ELF header");
    // Offsets of e_phoff.. differ between the classes; e_type and e_machine do not.
    let (phoff, shoff, rest) = if is64 {
        (b.u64(32).ok_or_else(short)?, b.u64(40).ok_or_else(short)?, 52)
    } else {
        (u64::from(b.u32(28).ok_or_else(short)?), u64::from(b.u32(32).ok_or_else(short)?), 40)
    };
    let half = |i: u64| b.u16(rest + 2 * i).map(u64::from).ok_or_else(short);
    let mut h = Header {
        is64,
        little,
        kind: b.u16(16).ok_or_else(short)?,
        machine: b.u16(18).ok_or_else(short)?,
        phoff,
        shoff,
        phentsize: half(1)?,
        phnum: half(2)?,
        shentsize: half(3)?,
        shnum: half(4)?,
        shstrndx: half(5)?,
    };
    let sections = read_sections(&r, &mut h)?;
    let segments = read_segments(&r, &h)?;
    Ok(ElfFile {
        path: path.to_path_buf(),
        identity,
        is64,
        little,
        kind: h.kind,
        machine: h.machine,
        segments,
        sections,
        functions: Mutex::new(None),
        notes: Mutex::new(None),
        demangled: Mutex::new(None),
    })
}

fn read_sections<B: Blob + ?Sized>(r: &Reader<'_, B>, h: &mut Header) -> Result<Vec<Section>> {
    if h.shoff == 0 {
        return Ok(Vec::new());
    }
    let need = if h.is64 { 64 } else { 40 };
    if h.shentsize < need {
        return Err(r.malformed(format!("section header size {} (at least {need} expected)", h.shentsize)));
    }
    let parse_one = |raw: &[u8]| -> Option<Section> {
        let b = Bytes { data: raw, little: h.little };
        Some(if h.is64 {
            Section {
                name: String::new(),
                kind: b.u32(4)?,
                addr: b.u64(16)?,
                offset: b.u64(24)?,
                size: b.u64(32)?,
                link: b.u32(40)?,
                info: b.u32(44)?,
                entsize: b.u64(56)?,
            }
        } else {
            Section {
                name: String::new(),
                kind: b.u32(4)?,
                addr: u64::from(b.u32(12)?),
                offset: u64::from(b.u32(16)?),
                size: u64::from(b.u32(20)?),
                link: b.u32(24)?,
                info: b.u32(28)?,
                entsize: u64::from(b.u32(36)?),
            }
        })
    };
    // Section 0 holds the real counts of a file with too many sections (or segments) for the
    // header's 16-bit fields.
    let first = r.bytes(h.shoff, h.shentsize, "section header 0")?;
    let s0 = parse_one(&first).ok_or_else(|| r.malformed("section header 0"))?;
    if h.shnum == 0 {
        h.shnum = s0.size;
    }
    if h.shstrndx == u64::from(SHN_XINDEX) {
        h.shstrndx = u64::from(s0.link);
    }
    if h.phnum == u64::from(PN_XNUM) {
        h.phnum = u64::from(s0.info);
    }
    let total = h.shnum.checked_mul(h.shentsize).ok_or_else(|| r.malformed("section header table size"))?;
    let table = r.bytes(h.shoff, total, "section header table")?;
    let mut raw_names = Vec::with_capacity(h.shnum as usize);
    let mut sections = Vec::with_capacity(h.shnum as usize);
    for i in 0..h.shnum {
        let at = (i * h.shentsize) as usize;
        let raw = &table[at..at + h.shentsize as usize];
        let s = parse_one(raw).ok_or_else(|| r.malformed(format!("section header {i}")))?;
        raw_names.push(Bytes { data: raw, little: h.little }.u32(0).unwrap_or(0));
        sections.push(s);
    }
    // Names come from the section-name string table; a file without one just has no names.
    let names = match sections.get(h.shstrndx as usize) {
        Some(s) if s.kind != SHT_NOBITS && h.shstrndx != 0 => r.bytes(s.offset, s.size, "section name table")?,
        _ => Vec::new(),
    };
    let nb = Bytes { data: &names, little: h.little };
    for (s, off) in sections.iter_mut().zip(raw_names) {
        s.name = nb.cstr(u64::from(off)).unwrap_or_default();
    }
    Ok(sections)
}

fn read_segments<B: Blob + ?Sized>(r: &Reader<'_, B>, h: &Header) -> Result<Vec<Segment>> {
    if h.phoff == 0 || h.phnum == 0 {
        return Ok(Vec::new());
    }
    let need = if h.is64 { 56 } else { 32 };
    if h.phentsize < need {
        return Err(r.malformed(format!("program header size {} (at least {need} expected)", h.phentsize)));
    }
    let total = h.phnum.checked_mul(h.phentsize).ok_or_else(|| r.malformed("program header table size"))?;
    let table = r.bytes(h.phoff, total, "program header table")?;
    let mut out = Vec::new();
    for i in 0..h.phnum {
        let b = Bytes { data: &table[(i * h.phentsize) as usize..], little: h.little };
        let seg = if h.is64 {
            (b.u32(0), b.u32(4), b.u64(8), b.u64(16), b.u64(32), b.u64(40))
        } else {
            (
                b.u32(0),
                b.u32(24),
                b.u32(4).map(u64::from),
                b.u32(8).map(u64::from),
                b.u32(16).map(u64::from),
                b.u32(20).map(u64::from),
            )
        };
        let (Some(kind), Some(flags), Some(offset), Some(vaddr), Some(filesz), Some(memsz)) = seg else {
            return Err(r.malformed(format!("program header {i}")));
        };
        if kind == PT_LOAD {
            out.push(Segment { offset, vaddr, filesz, memsz, flags });
        }
    }
    Ok(out)
}

impl ElfFile {
    /// The path it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A shared object (`ET_DYN`: a library, or a position-independent executable).
    pub fn is_shared_object(&self) -> bool {
        self.kind == ET_DYN
    }

    /// The file offset holding virtual address `vaddr`, through the `PT_LOAD` program headers;
    /// None when no loaded segment holds it.
    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments.iter().find(|s| s.holds_vaddr(vaddr)).map(|s| vaddr - s.vaddr + s.offset)
    }

    /// Whether `vaddr` lies in an executable loaded segment.
    pub fn is_executable_vaddr(&self, vaddr: u64) -> bool {
        self.segments.iter().any(|s| s.holds_vaddr(vaddr) && s.flags & PF_X != 0)
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Runs `f` on the file opened again, after checking it is the version parsed.
    fn with_file<T>(&self, f: impl FnOnce(&Reader<'_, File>) -> Result<T>) -> Result<T> {
        let (file, id) = open_regular(&self.path)?;
        if id != self.identity {
            return Err(Error::Attach { program: None, target: None,
                errno: libc::EAGAIN,
                message: format!("{} changed while being read; try again", self.path.display()),
            });
        }
        f(&Reader { path: &self.path, blob: &file, size: id.size })
    }

    /// Up to `len` bytes of the file at `offset` (fewer at its end, none past it).
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.with_file(|r| {
            let len = len.min(r.size.saturating_sub(offset));
            r.bytes(offset.min(r.size), len, "code")
        })
    }

    /// The defined function symbols (`STT_FUNC`, `STT_GNU_IFUNC`) of `.dynsym` then `.symtab`.
    pub fn functions(&self) -> Result<Arc<Functions>> {
        let mut g = self.functions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = g.as_ref() {
            return Ok(f.clone());
        }
        let f = Arc::new(Functions::new(self.with_file(|r| self.read_functions(r))?));
        *g = Some(f.clone());
        Ok(f)
    }

    fn section_data<B: Blob + ?Sized>(&self, r: &Reader<'_, B>, s: &Section, what: &str) -> Result<Vec<u8>> {
        if s.kind == SHT_NOBITS {
            return Ok(Vec::new());
        }
        r.bytes(s.offset, s.size, what)
    }

    fn read_functions<B: Blob + ?Sized>(&self, r: &Reader<'_, B>) -> Result<Vec<Symbol>> {
        let mut out = Vec::new();
        for table in [SHT_DYNSYM, SHT_SYMTAB] {
            for (index, sec) in self.sections.iter().enumerate().filter(|(_, s)| s.kind == table) {
                self.read_table(r, index, sec, &mut out)?;
            }
        }
        Ok(out)
    }

    fn read_table<B: Blob + ?Sized>(&self, r: &Reader<'_, B>, index: usize, sec: &Section, out: &mut Vec<Symbol>) -> Result<()> {
        // A table whose entries are too small to be symbols, or that names no string table,
        // is one no tool could read: it is passed over, as the rest of the file may be fine.
        let need = if self.is64 { 24 } else { 16 };
        let Some(strtab) = self.sections.get(sec.link as usize).filter(|_| sec.entsize >= need) else {
            return Ok(());
        };
        let data = self.section_data(r, sec, "symbol table")?;
        let strs = self.section_data(r, strtab, "symbol string table")?;
        let strs = Bytes { data: &strs, little: self.little };
        let dynsym = sec.kind == SHT_DYNSYM;
        let (versym, vernames) = if dynsym { self.read_versions(r, index)? } else { (Vec::new(), HashMap::new()) };
        let table = if dynsym { Table::Dynsym } else { Table::Symtab };
        let count = data.len() as u64 / sec.entsize;
        for i in 0..count {
            let b = Bytes { data: &data[(i * sec.entsize) as usize..], little: self.little };
            let fields = if self.is64 {
                (b.u32(0), b.u8(4), b.u16(6), b.u64(8), b.u64(16))
            } else {
                (b.u32(0), b.u8(12), b.u16(14), b.u32(4).map(u64::from), b.u32(8).map(u64::from))
            };
            let (Some(name_off), Some(info), Some(shndx), Some(value), Some(size)) = fields else {
                return Err(r.malformed(format!("symbol {i} of {}", sec.name)));
            };
            let ty = info & 0xf;
            if name_off == 0 || shndx == SHN_UNDEF || !(ty == STT_FUNC || ty == STT_GNU_IFUNC) {
                continue;
            }
            let name = strs
                .cstr(u64::from(name_off))
                .ok_or_else(|| r.malformed(format!("name of symbol {i} of {} is outside its string table", sec.name)))?;
            let (mut version, mut default_version) = (None, true);
            if let Some(&v) = versym.get(i as usize) {
                if let Some(n) = vernames.get(&(v & 0x7fff)).filter(|_| v & 0x7fff >= 2) {
                    version = Some(n.clone());
                    default_version = v & VERSYM_HIDDEN == 0;
                }
            }
            out.push(Symbol { name, value, size, ifunc: ty == STT_GNU_IFUNC, bind: Bind::from_info(info), table, version, default_version });
        }
        Ok(())
    }

    /// `.gnu.version` of the dynamic symbol table at `dynsym`, and the names of the versions
    /// this file defines (`.gnu.version_d`) by index.
    fn read_versions<B: Blob + ?Sized>(&self, r: &Reader<'_, B>, dynsym: usize) -> Result<(Vec<u16>, HashMap<u16, String>)> {
        let Some(versym) = self.sections.iter().find(|s| s.kind == SHT_GNU_VERSYM && s.link as usize == dynsym) else {
            return Ok((Vec::new(), HashMap::new()));
        };
        let raw = self.section_data(r, versym, "symbol version table")?;
        let b = Bytes { data: &raw, little: self.little };
        let entries: Vec<u16> = (0..raw.len() as u64 / 2).filter_map(|i| b.u16(2 * i)).collect();
        let mut names = HashMap::new();
        let Some(verdef) = self.sections.iter().find(|s| s.kind == SHT_GNU_VERDEF) else {
            return Ok((entries, names));
        };
        let Some(strtab) = self.sections.get(verdef.link as usize) else {
            return Ok((entries, names));
        };
        let defs = self.section_data(r, verdef, "version definitions")?;
        let strs = self.section_data(r, strtab, "version names")?;
        let (d, s) = (Bytes { data: &defs, little: self.little }, Bytes { data: &strs, little: self.little });
        let bad = || r.malformed(format!("version definitions of {}", self.path.display()));
        // sh_info counts the entries; each names the next by a relative offset. Stop at either
        // end, and never take more entries than could fit, so a loop in the chain cannot spin.
        let limit = if verdef.info == 0 { defs.len() as u64 / 20 } else { u64::from(verdef.info) };
        let mut off = 0u64;
        for _ in 0..limit.min(defs.len() as u64 / 20 + 1) {
            let (Some(ndx), Some(cnt), Some(aux), Some(next)) = (d.u16(off + 4), d.u16(off + 6), d.u32(off + 12), d.u32(off + 16)) else {
                return Err(bad());
            };
            if cnt > 0 {
                let name_off = d.u32(off + u64::from(aux)).ok_or_else(bad)?;
                names.insert(ndx, s.cstr(u64::from(name_off)).ok_or_else(bad)?);
            }
            if next == 0 {
                break;
            }
            off += u64::from(next);
        }
        Ok((entries, names))
    }

    /// The USDT probe sites of `.note.stapsdt`, in file order (empty when it has none).
    pub fn sdt_notes(&self) -> Result<Arc<Vec<SdtNote>>> {
        let mut g = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = g.as_ref() {
            return Ok(n.clone());
        }
        let notes = Arc::new(self.with_file(|r| self.read_notes(r))?);
        *g = Some(notes.clone());
        Ok(notes)
    }

    fn read_notes<B: Blob + ?Sized>(&self, r: &Reader<'_, B>) -> Result<Vec<SdtNote>> {
        let Some(sec) = self.section(".note.stapsdt").filter(|s| s.kind == SHT_NOTE) else {
            return Ok(Vec::new());
        };
        let data = self.section_data(r, sec, ".note.stapsdt")?;
        let base_addr = self.section(".stapsdt.base").map(|s| s.addr);
        Ok(parse_sdt_notes(&data, self.little, self.is64, base_addr))
    }

    /// `{mangled: demangled}` of the C++ (`_Z`) function names, without `@VER`; names that do
    /// not demangle are left out.
    pub fn demangled(&self) -> Result<Arc<HashMap<String, String>>> {
        let funcs = self.functions()?;
        let mut g = self.demangled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = g.as_ref() {
            return Ok(d.clone());
        }
        let mut out = HashMap::new();
        for s in &funcs.all {
            let base = s.base_name();
            if base.starts_with("_Z") && !out.contains_key(base) {
                if let Some(d) = demangle(base) {
                    out.insert(base.to_string(), d);
                }
            }
        }
        let out = Arc::new(out);
        *g = Some(out.clone());
        Ok(out)
    }
}

/// A C++ name demangled, or None when it is not a valid mangled name.
pub fn demangle(name: &str) -> Option<String> {
    let d = cpp_demangle::Symbol::new(name).ok()?.demangle().ok()?;
    (d != name).then_some(d)
}

/// Parses the notes of a `.note.stapsdt` section. A note that does not fit, or is not a
/// `stapsdt` note, is passed over; parsing stops at the first note header that runs past the end.
fn parse_sdt_notes(data: &[u8], little: bool, is64: bool, base_addr: Option<u64>) -> Vec<SdtNote> {
    let b = Bytes { data, little };
    let asz: u64 = if is64 { 8 } else { 4 };
    let align4 = |n: u64| n.checked_add(3).map(|v| v & !3);
    let end = data.len() as u64;
    let mut out = Vec::new();
    let mut off = 0u64;
    while off + 12 <= end {
        let (Some(namesz), Some(descsz), Some(ntype)) = (b.u32(off), b.u32(off + 4), b.u32(off + 8)) else { break };
        let name_at = off + 12;
        let Some(desc_at) = align4(u64::from(namesz)).map(|n| name_at + n) else { break };
        let Some(next) = align4(u64::from(descsz)).map(|n| desc_at + n) else { break };
        if next > end {
            break;
        }
        let owner = b.slice(name_at, u64::from(namesz)).unwrap_or_default();
        let owner = owner.strip_suffix(b"\0").unwrap_or(owner);
        if ntype == NT_STAPSDT && owner == b"stapsdt" && u64::from(descsz) >= 3 * asz {
            if let Some(note) = parse_one_sdt(&b, desc_at, u64::from(descsz), is64, base_addr) {
                out.push(note);
            }
        }
        off = next;
    }
    out
}

fn parse_one_sdt(b: &Bytes<'_>, at: u64, len: u64, is64: bool, base_addr: Option<u64>) -> Option<SdtNote> {
    let asz: u64 = if is64 { 8 } else { 4 };
    let (mut pc, base, mut sema) = (b.word(at, is64)?, b.word(at + asz, is64)?, b.word(at + 2 * asz, is64)?);
    let strs = b.slice(at + 3 * asz, len - 3 * asz)?;
    let mut parts = strs.split(|&c| c == 0);
    let (provider, name, args) = (parts.next()?, parts.next()?, parts.next()?);
    // A prelinked file moved its sections: .stapsdt.base's address tells by how much.
    if let Some(actual) = base_addr.filter(|_| base != 0) {
        let delta = actual.wrapping_sub(base);
        pc = pc.wrapping_add(delta);
        if sema != 0 {
            sema = sema.wrapping_add(delta);
        }
    }
    let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    Some(SdtNote { provider: text(provider), name: text(name), pc, semaphore: sema, args: text(args) })
}

/// The bytes of section `name` of an ELF image in memory (a BPF object), or `None` when it has no
/// such section.
pub fn section_in<'a>(image: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let id = Identity { dev: 0, ino: 0, size: image.len() as u64, mtime: 0, mtime_nsec: 0 };
    let elf = parse(Path::new("BPF object"), image, id)?;
    let b = Bytes { data: image, little: elf.little };
    Ok(elf.sections.iter().find(|s| s.name == name && s.kind != SHT_NOBITS).and_then(|s| b.slice(s.offset, s.size)))
}

/// A BPF object without its DWARF: the `.debug_*` sections and their relocations keep their
/// headers (so no section index, symbol or other relocation changes) but lose their bytes.
/// clang's `-g` writes DWARF beside the BTF it makes from it; libbpf ignores DWARF, and it is
/// most of an object (600 of 660 KiB for runqlat), which every warm start would read, hash and
/// copy. The verifier's line information is in `.BTF.ext`, which stays. A 64-bit little-endian
/// object only (what clang makes for `bpfel`); any other image is returned as it is.
pub fn without_dwarf(image: &[u8]) -> Result<Vec<u8>> {
    let id = Identity { dev: 0, ino: 0, size: image.len() as u64, mtime: 0, mtime_nsec: 0 };
    let elf = parse(Path::new("BPF object"), image, id)?;
    let b = Bytes { data: image, little: elf.little };
    let (Some(shoff), Some(shentsize)) = (b.u64(40), b.u16(58).map(u64::from)) else { return Ok(image.to_vec()) };
    if !elf.is64 || !elf.little || shentsize != 64 || elf.sections.is_empty() {
        return Ok(image.to_vec());
    }
    let dwarf = |name: &str| {
        let base = name.strip_prefix(".rel").or_else(|| name.strip_prefix(".rela")).unwrap_or(name);
        base.starts_with(".debug_") || base == ".debug"
    };
    let Some(table) = b.slice(shoff, shentsize * elf.sections.len() as u64) else { return Ok(image.to_vec()) };
    let mut headers = table.to_vec();
    let mut out = image.get(..64).map(<[u8]>::to_vec).unwrap_or_default();
    for (i, s) in elf.sections.iter().enumerate().skip(1) {
        let h = &mut headers[i * 64..(i + 1) * 64];
        let align = Bytes { data: h, little: true }.u64(48).unwrap_or(1).clamp(1, 4096) as usize;
        out.resize(out.len().next_multiple_of(align), 0);
        let keep = s.kind == SHT_NOBITS || !dwarf(&s.name);
        if keep && s.kind != SHT_NOBITS {
            let Some(data) = b.slice(s.offset, s.size) else { return Ok(image.to_vec()) };
            h[24..32].copy_from_slice(&(out.len() as u64).to_le_bytes());
            out.extend_from_slice(data);
        } else if !keep {
            h[24..32].copy_from_slice(&(out.len() as u64).to_le_bytes());
            h[32..40].copy_from_slice(&0u64.to_le_bytes());
        }
    }
    out.resize(out.len().next_multiple_of(8), 0);
    let new_shoff = out.len() as u64;
    out[40..48].copy_from_slice(&new_shoff.to_le_bytes());
    out.extend_from_slice(&headers);
    Ok(out)
}

type CacheEntry = (PathBuf, Identity, Arc<ElfFile>);
static CACHE: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());

/// The parsed ELF file at `path`, remembered while the file (device, inode, size, mtime) stays
/// the same. Anything but a regular file is refused with [`Error::Attach`], without blocking.
pub fn open(path: &Path) -> Result<Arc<ElfFile>> {
    let md = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
    refuse_irregular(path, &md)?;
    let id = Identity::of(&md);
    {
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, elf)) = cache.iter().find(|(p, i, _)| p == path && *i == id) {
            return Ok(elf.clone());
        }
    }
    let (file, id) = open_regular(path)?;
    let elf = Arc::new(parse(path, &file, id.clone())?);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache.retain(|(p, _, _)| p != path);
    if cache.len() >= CACHE_SIZE {
        cache.remove(0);
    }
    cache.push((path.to_path_buf(), id, elf.clone()));
    Ok(elf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small little-endian ELF64 shared object: two PT_LOAD segments, a `.dynsym` with
    /// versions, a `.symtab`, and SDT notes.
    struct Builder {
        data: Vec<u8>,
    }

    impl Builder {
        fn put(&mut self, at: usize, bytes: &[u8]) {
            if self.data.len() < at + bytes.len() {
                self.data.resize(at + bytes.len(), 0);
            }
            self.data[at..at + bytes.len()].copy_from_slice(bytes);
        }
        fn u16(&mut self, at: usize, v: u16) {
            self.put(at, &v.to_le_bytes());
        }
        fn u32(&mut self, at: usize, v: u32) {
            self.put(at, &v.to_le_bytes());
        }
        fn u64(&mut self, at: usize, v: u64) {
            self.put(at, &v.to_le_bytes());
        }
    }

    fn sym(b: &mut Builder, at: usize, name: u32, info: u8, shndx: u16, value: u64, size: u64) {
        b.u32(at, name);
        b.put(at + 4, &[info]);
        b.u16(at + 6, shndx);
        b.u64(at + 8, value);
        b.u64(at + 16, size);
    }

    #[allow(clippy::too_many_arguments)]
    fn shdr(b: &mut Builder, at: usize, name: u32, kind: u32, addr: u64, off: u64, size: u64, link: u32, info: u32, entsize: u64) {
        b.u32(at, name);
        b.u32(at + 4, kind);
        b.u64(at + 16, addr);
        b.u64(at + 24, off);
        b.u64(at + 32, size);
        b.u32(at + 40, link);
        b.u32(at + 44, info);
        b.u64(at + 56, entsize);
    }

    fn sdt(provider: &str, name: &str, args: &str, pc: u64, base: u64, sema: u64) -> Vec<u8> {
        let mut desc = Vec::new();
        desc.extend(pc.to_le_bytes());
        desc.extend(base.to_le_bytes());
        desc.extend(sema.to_le_bytes());
        for s in [provider, name, args] {
            desc.extend(s.as_bytes());
            desc.push(0);
        }
        let mut n = Vec::new();
        n.extend(8u32.to_le_bytes());
        n.extend((desc.len() as u32).to_le_bytes());
        n.extend(NT_STAPSDT.to_le_bytes());
        n.extend(b"stapsdt\0");
        n.extend(&desc);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder { data: vec![0; 0x1000] };
        b.put(0, b"\x7fELF\x02\x01\x01");
        b.u16(16, ET_DYN);
        b.u16(18, EM_X86_64);
        b.u64(32, 0x40); // e_phoff
        b.u64(40, 0x800); // e_shoff
        b.u16(54, 56); // e_phentsize
        b.u16(56, 2); // e_phnum
        b.u16(58, 64); // e_shentsize
        b.u16(60, 9); // e_shnum
        b.u16(62, 1); // e_shstrndx
        // PT_LOAD r-x: file 0..0x400 at 0x400000; PT_LOAD rw-: file 0x400..0x500 at 0x600400.
        for (i, (off, vaddr, flags)) in [(0u64, 0x400000u64, 5u32), (0x400, 0x600400, 6)].into_iter().enumerate() {
            let at = 0x40 + i * 56;
            b.u32(at, PT_LOAD);
            b.u32(at + 4, flags);
            b.u64(at + 8, off);
            b.u64(at + 16, vaddr);
            b.u64(at + 32, 0x400.min(0x500 - off));
            b.u64(at + 40, 0x400);
        }
        // .shstrtab at 0x100.
        let names = b"\0.shstrtab\0.dynsym\0.dynstr\0.gnu.version\0.gnu.version_d\0.symtab\0.strtab\0.note.stapsdt\0";
        b.put(0x100, names);
        let name = |s: &str| {
            let pat = format!("\0{s}\0");
            names.windows(pat.len()).position(|w| w == pat.as_bytes()).unwrap() as u32 + 1
        };
        // .dynstr at 0x180: "", f, g, V1, V2, lib.so
        let dynstr = b"\0f\0g\0V1\0V2\0lib.so\0";
        b.put(0x180, dynstr);
        // .dynsym at 0x1c0: null, f@V1 (hidden), f@@V2, g (ifunc, global), an undefined function.
        sym(&mut b, 0x1c0 + 24, 1, 0x12, 5, 0x400100, 16);
        sym(&mut b, 0x1c0 + 48, 1, 0x12, 5, 0x400120, 8);
        sym(&mut b, 0x1c0 + 72, 3, 0x1a, 5, 0x400140, 4);
        sym(&mut b, 0x1c0 + 96, 3, 0x12, 0, 0, 0);
        // .gnu.version at 0x240: 0, 2|hidden, 3, 1, 0
        for (i, v) in [0u16, 0x8002, 3, 1, 0].into_iter().enumerate() {
            b.u16(0x240 + 2 * i, v);
        }
        // .gnu.version_d at 0x260: base (ndx 1, lib.so), V1 (ndx 2), V2 (ndx 3).
        for (i, name_off) in [11u32, 5, 8].into_iter().enumerate() {
            let at = 0x260 + i * 28;
            b.u16(at, 1);
            b.u16(at + 4, i as u16 + 1);
            b.u16(at + 6, 1);
            b.u32(at + 12, 20);
            b.u32(at + 16, if i == 2 { 0 } else { 28 });
            b.u32(at + 20, name_off);
        }
        // .strtab at 0x300, .symtab at 0x320: null, a local function, an object.
        b.put(0x300, b"\0helper\0data\0");
        sym(&mut b, 0x320 + 24, 1, 0x02, 5, 0x400180, 32);
        sym(&mut b, 0x320 + 48, 8, 0x11, 6, 0x600400, 8);
        // .note.stapsdt at 0x500 (past the segments: notes are not loaded).
        let mut notes = sdt("prov", "tick", "-4@%edi 8@%rax", 0x400110, 0x400300, 0);
        notes.extend(sdt("prov", "gated", "", 0x400130, 0x400300, 0x600408));
        let notes_len = notes.len() as u64;
        b.put(0x500, &notes);
        let sh = 0x800;
        shdr(&mut b, sh + 64, name(".shstrtab"), 3, 0, 0x100, names.len() as u64, 0, 0, 0);
        shdr(&mut b, sh + 2 * 64, name(".dynsym"), SHT_DYNSYM, 0, 0x1c0, 5 * 24, 3, 1, 24);
        shdr(&mut b, sh + 3 * 64, name(".dynstr"), 3, 0, 0x180, dynstr.len() as u64, 0, 0, 0);
        shdr(&mut b, sh + 4 * 64, name(".gnu.version"), SHT_GNU_VERSYM, 0, 0x240, 10, 2, 0, 2);
        shdr(&mut b, sh + 5 * 64, name(".gnu.version_d"), SHT_GNU_VERDEF, 0, 0x260, 3 * 28, 3, 3, 0);
        shdr(&mut b, sh + 6 * 64, name(".symtab"), SHT_SYMTAB, 0, 0x320, 3 * 24, 7, 1, 24);
        shdr(&mut b, sh + 7 * 64, name(".strtab"), 3, 0, 0x300, 13, 0, 0, 0);
        shdr(&mut b, sh + 8 * 64, name(".note.stapsdt"), SHT_NOTE, 0, 0x500, notes_len, 0, 0, 0);
        b.data.truncate(sh + 9 * 64);
        b.data
    }

    fn id() -> Identity {
        Identity { dev: 0, ino: 0, size: 0, mtime: 0, mtime_nsec: 0 }
    }

    fn functions_of(data: &[u8]) -> Result<Vec<Symbol>> {
        let elf = parse(Path::new("t.so"), data, id())?;
        elf.read_functions(&Reader { path: Path::new("t.so"), blob: data, size: data.len() as u64 })
    }

    #[test]
    fn reads_functions_with_versions_binding_and_ifunc() {
        let data = sample();
        let elf = parse(Path::new("t.so"), &data[..], id()).unwrap();
        assert!(elf.is_shared_object() && elf.machine == EM_X86_64);
        let f = functions_of(&data).unwrap();
        let got: Vec<_> = f.iter().map(|s| (s.versioned_name(), s.value, s.table, s.bind, s.ifunc)).collect();
        assert_eq!(
            got,
            vec![
                ("f@V1".to_string(), 0x400100, Table::Dynsym, Bind::Global, false),
                ("f@@V2".to_string(), 0x400120, Table::Dynsym, Bind::Global, false),
                ("g".to_string(), 0x400140, Table::Dynsym, Bind::Global, true),
                ("helper".to_string(), 0x400180, Table::Symtab, Bind::Local, false),
            ]
        );
        let funcs = Functions::new(f);
        assert_eq!(funcs.named("f").count(), 2);
        assert_eq!(funcs.named("data").count(), 0);
    }

    #[test]
    fn maps_addresses_through_loaded_segments() {
        let data = sample();
        let elf = parse(Path::new("t.so"), &data[..], id()).unwrap();
        assert_eq!(elf.vaddr_to_offset(0x400100), Some(0x100));
        assert_eq!(elf.vaddr_to_offset(0x600410), Some(0x410));
        assert_eq!(elf.vaddr_to_offset(0x600400 + 0x100), None); // in memsz, not in the file
        assert_eq!(elf.vaddr_to_offset(0x10), None);
        assert!(elf.is_executable_vaddr(0x400100) && !elf.is_executable_vaddr(0x600410));
    }

    #[test]
    fn reads_sdt_notes_and_adjusts_for_a_moved_base() {
        let data = sample();
        let elf = parse(Path::new("t.so"), &data[..], id()).unwrap();
        let sec = elf.section(".note.stapsdt").unwrap().clone();
        let raw = &data[sec.offset as usize..(sec.offset + sec.size) as usize];
        let notes = parse_sdt_notes(raw, true, true, None);
        assert_eq!(notes.len(), 2);
        assert_eq!((notes[0].provider.as_str(), notes[0].name.as_str(), notes[0].pc), ("prov", "tick", 0x400110));
        assert_eq!(notes[0].args, "-4@%edi 8@%rax");
        assert_eq!((notes[1].semaphore, notes[1].args.as_str()), (0x600408, ""));
        // Prelinked 0x1000 higher: .stapsdt.base says where the base went.
        let moved = parse_sdt_notes(raw, true, true, Some(0x401300));
        assert_eq!((moved[0].pc, moved[0].semaphore), (0x401110, 0));
        assert_eq!(moved[1].semaphore, 0x601408);
        // A note cut anywhere yields the notes before it and never panics.
        for cut in 0..raw.len() {
            assert!(parse_sdt_notes(&raw[..cut], true, true, None).len() <= 2);
        }
    }

    #[test]
    fn truncated_or_corrupt_files_give_errors_never_panics() {
        let data = sample();
        for cut in 0..data.len() {
            let _ = functions_of(&data[..cut]);
        }
        // Flip every byte of the headers and tables, one at a time.
        for i in 0..0x380 {
            for v in [0x00, 0xff, 0x80] {
                let mut d = data.clone();
                d[i] = v;
                let _ = functions_of(&d);
                let _ = parse(Path::new("t.so"), &d[..], id()).map(|e| e.vaddr_to_offset(0x400100));
            }
        }
        let e = parse(Path::new("t.so"), &b"#!/bin/sh\nexit 0\n"[..], id()).unwrap_err();
        assert!(e.to_string().contains("t.so is not an ELF file"), "{e}");
        let mut d = data.clone();
        d[0x800 + 2 * 64 + 24..0x800 + 2 * 64 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = functions_of(&d).unwrap_err();
        assert!(matches!(e, Error::Attach { errno: libc::ENOEXEC, .. }), "{e:?}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("bpfkit-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = open(&fifo).unwrap_err();
        assert!(matches!(&e, Error::Attach { errno: libc::EINVAL, message, .. } if message.contains("is a FIFO, not a regular file")), "{e:?}");
        let e = open(&dir).unwrap_err();
        assert!(matches!(&e, Error::Attach { errno: libc::EISDIR, .. }), "{e:?}");
        let e = open(Path::new("/dev/null")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// blazesym's inspector, the other ELF reader linked in, is the reference for the function
    /// symbols of the libc this test runs on: names, addresses, sizes and file offsets.
    #[test]
    fn agrees_with_blazesym_on_libc() {
        use blazesym::inspect::{source, Inspector};
        use std::collections::BTreeSet;
        use std::ops::ControlFlow;

        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.contains("/libc.so")).unwrap();
        let mut src = source::Elf::new(libc);
        src.debug_syms = false;
        let mut theirs = BTreeSet::new();
        Inspector::new()
            .for_each(&source::Source::Elf(src), |s| {
                if s.sym_type == blazesym::SymType::Function {
                    theirs.insert((s.name.to_string(), s.addr, s.size.unwrap_or(0) as u64, s.file_offset));
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        let elf = open(Path::new(libc)).unwrap();
        let ours: BTreeSet<_> =
            elf.functions().unwrap().all.iter().map(|s| (s.name.clone(), s.value, s.size, elf.vaddr_to_offset(s.value))).collect();
        assert!(ours.len() > 1000, "{} functions in {libc}", ours.len());
        // blazesym reports untyped (STT_NOTYPE) symbols as functions too: ours must be among its.
        let missing: Vec<_> = ours.difference(&theirs).take(5).collect();
        assert!(missing.is_empty(), "not as blazesym has them: {missing:?}");
    }

    #[test]
    fn demangles_cxx_names() {
        assert_eq!(demangle("_ZN4bkns5Klass6methodEi").as_deref(), Some("bkns::Klass::method(int)"));
        assert_eq!(demangle("main"), None);
    }
}
