"""A small, read-only ELF reader for what attaching to user space needs: the function symbols of
``.symtab`` and ``.dynsym`` (with their GNU symbol versions), the program headers (to turn a
virtual address into the file offset a uprobe takes) and the SystemTap SDT notes that describe
USDT probes. Pure Python, no dependencies; ELF32 and ELF64, either byte order.

>>> from bpfkit._elf import ElfFile
>>> with ElfFile("/bin/true") as elf:
...     [s.name for s in elf.symbols() if s.is_function][:3]
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Iterator, Optional

__all__ = ["ElfError", "ElfFile", "Symbol", "Segment", "SdtNote", "BinaryInfo", "binary_info"]

# e_type
ET_EXEC = 2
ET_DYN = 3
# e_machine
EM_X86_64 = 62
# sh_type
SHT_SYMTAB = 2
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERSYM = 0x6FFFFFFF
# p_type / p_flags
PT_LOAD = 1
PF_X = 1
# st_info
STT_OBJECT = 1
STT_FUNC = 2
STT_GNU_IFUNC = 10
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
SHN_UNDEF = 0
SHN_XINDEX = 0xFFFF
VERSYM_HIDDEN = 0x8000
NT_STAPSDT = 3


class ElfError(ValueError):
    """The file is not an ELF file, or is truncated or malformed where we had to read it."""


@dataclass(frozen=True)
class Symbol:
    """One symbol. ``version`` is the GNU symbol version of a ``.dynsym`` entry (``None`` when
    unversioned); ``default_version`` is True for ``name@@VER`` and False for ``name@VER``.
    ``.symtab`` entries carry their version in the name itself (``f@V1``), as the linker wrote it."""

    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int
    table: str  # "dynsym" or "symtab"
    version: Optional[str] = None
    default_version: bool = True

    @property
    def is_function(self) -> bool:
        """A defined function (STT_FUNC or STT_GNU_IFUNC)."""
        return self.type in (STT_FUNC, STT_GNU_IFUNC) and self.shndx != SHN_UNDEF

    @property
    def is_ifunc(self) -> bool:
        return self.type == STT_GNU_IFUNC

    @property
    def versioned_name(self) -> str:
        """``name@@VER``/``name@VER`` for a versioned ``.dynsym`` entry, else the name."""
        if self.version is None:
            return self.name
        return f"{self.name}{'@@' if self.default_version else '@'}{self.version}"


@dataclass(frozen=True)
class Segment:
    """A ``PT_LOAD`` program header."""

    offset: int
    vaddr: int
    filesz: int
    memsz: int
    flags: int


@dataclass(frozen=True)
class SdtNote:
    """One ``.note.stapsdt`` entry: a USDT probe site. ``pc`` and ``semaphore`` are virtual
    addresses, already adjusted for prelinking through ``.stapsdt.base``; ``args`` is the
    argument specification (``"-4@%eax 8@-16(%rbp)"``)."""

    provider: str
    name: str
    pc: int
    semaphore: int
    args: str


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


class ElfFile:
    """An ELF file opened read-only and memory-mapped. Use it as a context manager, or ``close()``."""

    def __init__(self, path: "str | os.PathLike[str]") -> None:
        self.path = os.fspath(path)
        self._f = open(self.path, "rb")
        try:
            size = os.fstat(self._f.fileno()).st_size
            if size < 16:
                raise ElfError(f"{self.path} is not an ELF file (too short)")
            self._m: "mmap.mmap | bytes" = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
            self._parse_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        m = getattr(self, "_m", None)
        if isinstance(m, mmap.mmap):
            m.close()
        self._m = b""
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "ElfFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- layout ---------------------------------------------------------------------------------
    def _read(self, off: int, n: int) -> bytes:
        if off < 0 or n < 0 or off + n > len(self._m):
            raise ElfError(f"{self.path}: truncated ELF (wanted {n} bytes at {off:#x})")
        return self._m[off:off + n]

    def _parse_header(self) -> None:
        ident = self._read(0, 16)
        if ident[:4] != b"\x7fELF":
            raise ElfError(f"{self.path} is not an ELF file")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError(f"{self.path}: unknown ELF class or byte order")
        self.is64 = ident[4] == 2
        e = "<" if ident[5] == 1 else ">"
        self._e = e
        if self.is64:
            hdr = struct.unpack(e + "HHIQQQIHHHHHH", self._read(16, 48))
            self._shdr = struct.Struct(e + "IIQQQQIIQQ")
            self._phdr = struct.Struct(e + "IIQQQQQQ")
            self._sym = struct.Struct(e + "IBBHQQ")
        else:
            hdr = struct.unpack(e + "HHIIIIIHHHHHH", self._read(16, 36))
            self._shdr = struct.Struct(e + "IIIIIIIIII")
            self._phdr = struct.Struct(e + "IIIIIIII")
            self._sym = struct.Struct(e + "IIIBBH")
        (self.type, self.machine, _ver, self.entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = hdr
        # Program headers.
        self.segments: list[Segment] = []
        for i in range(phnum):
            raw = self._read(phoff + i * phentsize, self._phdr.size)
            if self.is64:
                p_type, p_flags, p_off, p_vaddr, _pa, p_filesz, p_memsz, _al = self._phdr.unpack(raw)
            else:
                p_type, p_off, p_vaddr, _pa, p_filesz, p_memsz, p_flags, _al = self._phdr.unpack(raw)
            if p_type == PT_LOAD:
                self.segments.append(Segment(p_off, p_vaddr, p_filesz, p_memsz, p_flags))
        # Section headers (with the extended numbering of files with >= 0xff00 sections).
        self.sections: list[_Section] = []
        if not shoff:
            return
        raw_secs = []
        first = self._unpack_shdr(self._read(shoff, self._shdr.size))
        if shnum == 0:
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        for i in range(shnum):
            raw_secs.append(self._unpack_shdr(self._read(shoff + i * shentsize, self._shdr.size)))
        strtab = raw_secs[shstrndx] if shstrndx < len(raw_secs) else None
        for name_off, sh_type, flags, addr, off, size, link, info, _al, entsize in raw_secs:
            name = self._cstr(strtab[4] + name_off) if strtab else ""
            self.sections.append(_Section(name, sh_type, flags, addr, off, size, link, info, entsize))

    def _unpack_shdr(self, raw: bytes) -> tuple:
        return self._shdr.unpack(raw)

    def _cstr(self, off: int) -> str:
        end = self._m.find(b"\0", off)
        if end < 0:
            raise ElfError(f"{self.path}: unterminated string at {off:#x}")
        return self._m[off:end].decode("utf-8", "replace")

    def section(self, name: str) -> Optional[_Section]:
        """The first section called ``name``, or None."""
        return next((s for s in self.sections if s.name == name), None)

    @property
    def is_shared_object(self) -> bool:
        return self.type == ET_DYN

    def vaddr_to_offset(self, vaddr: int) -> int:
        """The file offset holding virtual address ``vaddr`` (what a uprobe takes), through the
        ``PT_LOAD`` program headers. Raises ``ElfError`` if no loaded segment holds it."""
        for s in self.segments:
            if s.vaddr <= vaddr < s.vaddr + s.filesz:
                return vaddr - s.vaddr + s.offset
        raise ElfError(f"address {vaddr:#x} is in no loaded segment of {self.path}")

    def offset_to_vaddr(self, offset: int) -> int:
        """The virtual address of file offset ``offset`` (the inverse of :meth:`vaddr_to_offset`)."""
        for s in self.segments:
            if s.offset <= offset < s.offset + s.filesz:
                return offset - s.offset + s.vaddr
        raise ElfError(f"file offset {offset:#x} is in no loaded segment of {self.path}")

    def is_executable_vaddr(self, vaddr: int) -> bool:
        return any(s.vaddr <= vaddr < s.vaddr + s.filesz and s.flags & PF_X for s in self.segments)

    # -- symbols --------------------------------------------------------------------------------
    def _versions(self, dynsym_index: int) -> tuple[Optional[list], dict]:
        """(``.gnu.version`` entries, {version index: name}) for the dynamic symbol table."""
        versym = next((s for s in self.sections if s.type == SHT_GNU_VERSYM and s.link == dynsym_index), None)
        if versym is None:
            return None, {}
        n = versym.size // 2
        entries = list(struct.unpack(f"{self._e}{n}H", self._read(versym.offset, n * 2)))
        names: dict = {}
        verdef = next((s for s in self.sections if s.type == SHT_GNU_VERDEF), None)
        if verdef is not None and verdef.link < len(self.sections):
            strtab = self.sections[verdef.link]
            off = verdef.offset
            for _ in range(verdef.info or 0xFFFF):  # sh_info is the number of entries
                _v, flags, ndx, cnt, _hash, aux, nxt = struct.unpack(self._e + "HHHHIII", self._read(off, 20))
                if cnt:
                    name_off, _anext = struct.unpack(self._e + "II", self._read(off + aux, 8))
                    names[ndx] = self._cstr(strtab.offset + name_off)
                if not nxt:
                    break
                off += nxt
        return entries, names

    def symbols(self) -> Iterator[Symbol]:
        """Every named symbol of ``.dynsym`` then ``.symtab``."""
        for index, sec in enumerate(self.sections):
            if sec.type not in (SHT_DYNSYM, SHT_SYMTAB) or sec.entsize == 0:
                continue
            if sec.link >= len(self.sections):
                continue
            strtab = self.sections[sec.link]
            table = "dynsym" if sec.type == SHT_DYNSYM else "symtab"
            versions, vernames = self._versions(index) if sec.type == SHT_DYNSYM else (None, {})
            data = self._read(sec.offset, sec.size - sec.size % sec.entsize)
            for i, raw in enumerate(self._sym.iter_unpack(data) if sec.entsize == self._sym.size else ()):
                if self.is64:
                    name_off, info, _other, shndx, value, size = raw
                else:
                    name_off, value, size, info, _other, shndx = raw
                if name_off == 0:
                    continue
                version, default = None, True
                if versions is not None and i < len(versions):
                    v = versions[i]
                    idx = v & 0x7FFF
                    if idx >= 2 and idx in vernames:
                        version, default = vernames[idx], not (v & VERSYM_HIDDEN)
                yield Symbol(self._cstr(strtab.offset + name_off), value, size, info & 0xF, info >> 4, shndx,
                             table, version, default)

    # -- SDT notes ------------------------------------------------------------------------------
    def sdt_notes(self) -> list[SdtNote]:
        """The USDT probe sites of ``.note.stapsdt`` (empty when the file has none)."""
        sec = self.section(".note.stapsdt")
        if sec is None or sec.type != SHT_NOTE:
            return []
        base_sec = self.section(".stapsdt.base")
        asz = 8 if self.is64 else 4
        afmt = self._e + ("QQQ" if self.is64 else "III")
        out = []
        off, end = sec.offset, sec.offset + sec.size
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack(self._e + "III", self._read(off, 12))
            name_at = off + 12
            desc_at = name_at + ((namesz + 3) & ~3)
            nxt = desc_at + ((descsz + 3) & ~3)
            if nxt > end:
                break
            owner = bytes(self._read(name_at, namesz)).rstrip(b"\0")
            if ntype == NT_STAPSDT and owner == b"stapsdt" and descsz >= 3 * asz:
                desc = bytes(self._read(desc_at, descsz))
                pc, base, sema = struct.unpack(afmt, desc[:3 * asz])
                strs = desc[3 * asz:].split(b"\0")
                if len(strs) >= 3:
                    # A prelinked file moved its sections: .stapsdt.base's address tells by how much.
                    if base_sec is not None and base:
                        delta = base_sec.addr - base
                        pc += delta
                        if sema:
                            sema += delta
                    out.append(SdtNote(strs[0].decode(errors="replace"), strs[1].decode(errors="replace"),
                                       pc, sema, strs[2].decode(errors="replace")))
            off = nxt
        return out


# -- a per-file cache of what attaching needs --------------------------------------------------------

class BinaryInfo:
    """What bpfkit needs from one binary, read once per file version (see :func:`binary_info`):
    its type and loaded segments at once; its symbols, SDT notes and demangled names on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        with ElfFile(path) as elf:
            self.type = elf.type
            self.machine = elf.machine
            self.segments = list(elf.segments)
        self._symbols: Optional[list[Symbol]] = None
        self._notes: Optional[list[SdtNote]] = None
        self._demangled: Optional[dict[str, str]] = None

    @property
    def symbols(self) -> list[Symbol]:
        """Every named symbol, ``.dynsym`` first."""
        if self._symbols is None:
            with ElfFile(self.path) as elf:
                self._symbols = list(elf.symbols())
        return self._symbols

    @property
    def functions(self) -> list[Symbol]:
        """Defined STT_FUNC and STT_GNU_IFUNC symbols."""
        return [s for s in self.symbols if s.is_function]

    @property
    def sdt_notes(self) -> list[SdtNote]:
        if self._notes is None:
            with ElfFile(self.path) as elf:
                self._notes = elf.sdt_notes()
        return self._notes

    def vaddr_to_offset(self, vaddr: int) -> int:
        for s in self.segments:
            if s.vaddr <= vaddr < s.vaddr + s.filesz:
                return vaddr - s.vaddr + s.offset
        raise ElfError(f"address {vaddr:#x} is in no loaded segment of {self.path}")

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the file at ``offset`` (fewer at its end)."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def demangled(self) -> Optional[dict[str, str]]:
        """``{mangled: demangled}`` for the C++ (``_Z``) function names, demangled by binutils'
        ``c++filt`` in one run; None when ``c++filt`` is not installed."""
        if self._demangled is None:
            import shutil
            import subprocess

            names = sorted({s.name.split("@", 1)[0] for s in self.functions if s.name.startswith("_Z")})
            if not names:
                self._demangled = {}
                return self._demangled
            tool = shutil.which("c++filt")
            if tool is None:
                return None
            out = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True,
                                 check=True).stdout.splitlines()
            self._demangled = {m: d for m, d in zip(names, out) if d != m}
        return self._demangled


_CACHE: "dict[tuple, BinaryInfo]" = {}


def binary_info(path: str) -> BinaryInfo:
    """The :class:`BinaryInfo` of ``path``, cached while the file (device, inode, size, mtime)
    stays the same."""
    st = os.stat(path)
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    info = _CACHE.get(key)
    if info is None:
        info = BinaryInfo(path)
        if len(_CACHE) >= 64:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = info
    return info
