"""User-space attach points of :class:`bpfkit.BPF`: uprobes and uretprobes (USDT probes are in
:mod:`bpfkit.usdt`).

bpfkit resolves the target itself, from the binary's own ELF symbol tables (``.dynsym`` and
``.symtab``, read by the core's ELF reader, :func:`bpfkit._native.open_elf`), and gives libbpf a
file offset. That is what lets it take what libbpf alone does not: a name with several versions
(``memcpy`` means the default ``memcpy@@GLIBC_2.14``), a GNU indirect function (the
implementation the resolver picks, not the resolver), a C++ name written demangled
(``ns::Klass::method(int)``), BCC's ``sym_re=`` and BCC's ``addr=`` (a virtual address, turned
into a file offset through the program headers).
"""

from __future__ import annotations

import errno as _errno
import os

from . import _native
from ._attach_base import I32, U64, AttachBase, _int, _regex, _s
from ._attach_base import Str as _Str
from ._errors import AttachError
from ._native import ElfFile, ElfSymbol

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Optional

# -- finding the binary --------------------------------------------------------------------------

def resolve_binary(name: _Str, pid: Optional[int] = None) -> str:
    """The path of ``name``: a path as is, or a library's short name (``"c"``, ``"libfoo"``),
    looked up first in the mappings of process ``pid`` (so a library the process ``dlopen()``ed
    from anywhere is found), then in ``ld.so.cache``, the library directories and PATH. A path
    that exists only inside the process's mount namespace is reached through
    ``/proc/PID/root``."""
    live = pid if pid is not None and pid > 0 else None
    path = _native.resolve_binary(_s(name), live)
    if live is not None and not os.path.exists(path):
        alt = f"/proc/{live}/root{path}"
        if os.path.exists(alt):
            return alt
    return path


def _info(path: str) -> ElfFile:
    """The ELF file at ``path``, read (once per version of the file) by the core. Anything but a
    regular ELF file raises :class:`~bpfkit.AttachError` at once: a FIFO is never opened."""
    return _native.open_elf(path)


def _no_segment(info: ElfFile, vaddr: int) -> AttachError:
    return AttachError(f"address {vaddr:#x} is in no loaded segment of {info.path}", _errno.EINVAL)


# -- symbols -------------------------------------------------------------------------------------

def _split_version(sym: str) -> tuple[str, Optional[str]]:
    """``"f@@V2"`` -> ``("f", "V2")``; ``"f@V1"`` -> ``("f", "V1")``; ``"f"`` -> ``("f", None)``."""
    if "@" in sym[1:]:
        base, _, ver = sym.partition("@")
        return base, ver.lstrip("@")
    return sym, None


def _strip_params(d: str) -> Optional[str]:
    """``"ns::f(int) const"`` -> ``"ns::f"``; None when there is no parameter list."""
    s = d.rstrip()
    changed = True
    while changed:
        changed = False
        for q in (" const", " volatile", " &&", " &", " noexcept"):
            if s.endswith(q):
                s, changed = s[: -len(q)].rstrip(), True
    if not s.endswith(")"):
        return None
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ")":
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                return s[:i] or None
    return None


def _strip_return_type(d: str) -> Optional[str]:
    """``"int ns::f<int>(int)"`` -> ``"ns::f<int>(int)"`` (templates' demangled names carry one)."""
    depth = 0
    for i in range(len(d) - 1, -1, -1):
        c = d[i]
        if c in ">)":
            depth += 1
        elif c in "<(":
            depth -= 1
        elif c == " " and depth == 0:
            return d[i + 1:] or None
    return None


def _norm(s: str) -> str:
    return "".join(s.split())  # the whitespace re's \s matches, without importing re


_DM_INDEX: dict[tuple, dict[str, set]] = {}


def _demangled_index(info: ElfFile) -> dict[str, set]:
    """``{normalised spelling: {mangled names}}``, each demangled name spelt with and without
    its parameter list and return type; built once per version of the file."""
    try:
        st = os.stat(info.path)
        key: tuple | None = (info.path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None  # gone since it was read: build the index, keep it nowhere
    idx = _DM_INDEX.get(key) if key is not None else None
    if idx is None:
        idx = {}
        for mangled, d in info.demangled().items():
            forms = {d}
            p = _strip_params(d)
            if p:
                forms.add(p)
            for f in list(forms):
                r = _strip_return_type(f)
                if r:
                    forms.add(r)
            for f in forms:
                idx.setdefault(_norm(f), set()).add(mangled)
        if key is not None:
            if len(_DM_INDEX) >= 16:
                _DM_INDEX.pop(next(iter(_DM_INDEX)))
            _DM_INDEX[key] = idx
    return idx


def _pick(cands: list[ElfSymbol]) -> list[ElfSymbol]:
    """Narrows symbols of one name to one address: the default version (``@@``) first, then
    global over weak, then non-local. Returns every candidate when that still leaves several."""
    for keep in (lambda s: True, lambda s: s.default_version, lambda s: s.bind == "global",
                 lambda s: s.bind != "local"):
        narrowed = [s for s in cands if keep(s)]
        if narrowed and len({s.value for s in narrowed}) == 1:
            return [narrowed[0]]
        if narrowed:
            cands = narrowed
    return cands


def _libbpf_symbol_offset(info: ElfFile, sym: str) -> Optional[int]:
    """The file offset libbpf itself would resolve ``sym`` to (its rules: ``.dynsym`` then
    ``.symtab``, STT_FUNC only, ``f`` also matching ``f@...``), or None if it would refuse."""
    base, ver = _split_version(sym)
    named = info.functions_named(base)
    for table in ("dynsym", "symtab"):
        values = set()
        for s in named:
            if s.table != table or s.is_ifunc:
                continue
            if ver is not None and (s.version != ver if table == "dynsym" else s.name != sym):
                continue
            values.add(s.value)
        if values:
            if len(values) > 1:
                return None
            return info.vaddr_to_offset(values.pop())
    return None


def _ifunc_offset(info: ElfFile, s: ElfSymbol, name: str, version: Optional[str]) -> int:
    """The file offset of the implementation a GNU indirect function resolves to on this machine.
    As BCC does, the library is loaded into this process (``dlopen``) and the dynamic linker runs
    the resolver; the address it returns is mapped back to the file through /proc/self/maps."""
    def refuse(why: str) -> AttachError:
        return AttachError(f"{name} in {info.path} is a GNU indirect function (IFUNC) and {why}; attach to the "
                           "implementation by its own name or with addr=", _errno.EINVAL)

    if not info.is_shared_object or s.bind == "local":
        raise refuse("only an exported IFUNC of a shared library can be resolved")
    import ctypes

    try:
        lib = ctypes.CDLL(info.path)
    except OSError as e:
        raise refuse(f"its library could not be loaded to run the resolver ({e})") from None
    if version is None:
        try:
            addr = ctypes.cast(lib[name], ctypes.c_void_p).value
        except AttributeError:
            addr = None
    else:
        dlvsym = ctypes.CDLL(None).dlvsym
        dlvsym.restype = ctypes.c_void_p
        dlvsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        addr = dlvsym(lib._handle, name.encode(), version.encode())
    if not addr:
        raise refuse("the dynamic linker did not resolve it")
    st = os.stat(info.path)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                if len(parts) < 6 or int(parts[4]) != st.st_ino:
                    raise refuse(f"its resolver returned an address outside {info.path} ({parts[-1].strip()})")
                return addr - lo + int(parts[2], 16)
    raise refuse("the address its resolver returned is not mapped")


# x86-64 prefixes that may come before a VEX/EVEX one: segment overrides and address size.
_X86_PASSIVE_PREFIXES = frozenset(b"\x26\x2e\x36\x3e\x64\x65\x67")


def _avx_encoded(info: ElfFile, offset: int) -> bool:
    """Whether the x86-64 instruction at file ``offset`` is VEX- or EVEX-encoded (AVX, AVX-512).

    The kernel's uprobe code decodes such an instruction to its one opcode byte, without the map
    its prefix selects, and then judges that byte as if it were a legacy instruction. Depending on
    the byte it refuses the probe (ENOTSUPP) or, where the byte is that of a jump, emulates a jump
    instead of running the instruction: the probed function then computes garbage. On this
    project's 6.18 VM, glibc's AVX-512 ``strchr`` (``vpbroadcastb``, opcode byte 0x7a,
    which is ``jp``) returned NULL for every call while probed. In 64-bit code 0xc4, 0xc5 and 0x62
    can only start a VEX or EVEX prefix."""
    if not info.is_x86_64:
        return False
    code = info.read(offset, 8)
    i = 0
    while i < len(code) and code[i] in _X86_PASSIVE_PREFIXES:
        i += 1
    return i < len(code) and code[i] in (0xC4, 0xC5, 0x62)


def _avx_refusal(info: ElfFile, label: str, offset: int) -> AttachError:
    return AttachError(
        f"refusing a uprobe on {info.path}:{label} (file offset {offset:#x}): its first instruction is AVX-encoded "
        "(VEX/EVEX), which the kernel's uprobes do not single-step correctly (the probed code can compute "
        "wrong results); probe a later instruction (sym_off=, addr=) or the caller", _errno.EOPNOTSUPP)


#: Where one uprobe goes: a file offset (``offset``), a ``label`` for messages, and the
#: ``symbol`` (+``symbol_offset``) to hand libbpf when libbpf would resolve it to the same place
#: (so ``links()`` names it). A plain class: namedtuple, dataclasses and typing would cost every
#: tool's start their imports.
class _Target:
    __slots__ = ("offset", "label", "symbol", "symbol_offset")

    def __init__(self, offset: int, label: str, symbol: Optional[str] = None, symbol_offset: int = 0) -> None:
        self.offset, self.label, self.symbol, self.symbol_offset = offset, label, symbol, symbol_offset

    def __repr__(self) -> str:
        return f"_Target({self.offset:#x}, {self.label!r}, {self.symbol!r}, {self.symbol_offset})"


def _not_found(info: ElfFile, sym: str) -> AttachError:
    names = sorted({s.name for s in info.functions()})
    dm = info.demangled()
    pool = names + sorted(set(dm.values()))
    import difflib

    close = difflib.get_close_matches(sym, pool, n=5, cutoff=0.6)
    hint = f"; similar names: {', '.join(close)}" if close else ""
    if not names:
        hint = "; the file has no function symbols (stripped?): use addr="
    return AttachError(f"no function symbol {sym} in {info.path}{hint}", _errno.ENOENT)


def _symbol_targets(info: ElfFile, sym: str, sym_off: int) -> list[_Target]:
    base, ver = _split_version(sym)
    named = info.functions_named(base)  # every f, f@V1, f@@V2 of either table, .dynsym first
    if ver is None:
        # .symtab spells a versioned definition "f@@V2"/"f@V1"; plain "f" means the default one.
        cands = [s for s in named if s.name == base or (s.table == "symtab" and s.name.startswith(base + "@@"))]
    else:
        cands = [s for s in named
                 if (s.table == "dynsym" and s.name == base and s.version == ver)
                 or (s.table == "symtab" and s.name in (f"{base}@{ver}", f"{base}@@{ver}"))]
        if not cands and any(s.name == base for s in named):
            have = sorted({s.versioned_name for s in named if s.name == base and s.version}
                          | {s.name for s in named if s.name.startswith(base + "@")})
            versions = ", ".join(have) or "no versions"
            raise AttachError(f"{info.path} has no version {ver} of {base} (it has: {versions})",
                              _errno.ENOENT)
    demangled = False
    if not cands and ver is None:
        mangled = _demangled_index(info).get(_norm(sym), set())
        cands = sorted((s for m in sorted(mangled) for s in info.functions_named(m)), key=lambda s: s.table != "dynsym")
        demangled = bool(cands)
    if not cands:
        raise _not_found(info, sym)
    chosen = _pick(cands)
    if len({s.value for s in chosen}) > 1:
        dm = info.demangled()
        full = {dm.get(s.base_name, s.name) for s in chosen}
        # One demangled name at several addresses is one source function compiled more than once
        # (a C++ constructor's C1/C2 variants): probe every copy. Different names are ambiguous.
        if not (demangled and len(full) == 1):
            listing = ", ".join(sorted(f"{dm.get(s.base_name, s.versioned_name)} at {s.value:#x}"
                                       for s in chosen))
            raise AttachError(f"{sym} is ambiguous in {info.path}: {listing}; give the full name (parameters or "
                              "@VERSION) or addr=", _errno.EINVAL)
        chosen = sorted({s.value: s for s in chosen}.values(), key=lambda s: s.value)
    out = []
    for s in chosen:
        if s.size and sym_off >= s.size:
            raise ValueError(f"sym_off {sym_off:#x} is past the end of {sym} ({s.size} bytes) in {info.path}")
        if s.is_ifunc:
            off = _ifunc_offset(info, s, s.base_name, s.version or ver) + sym_off
            if _avx_encoded(info, off):
                raise _avx_refusal(info, sym, off)
            out.append(_Target(off, sym))
            continue
        found = info.vaddr_to_offset(s.value)
        if found is None:
            raise _no_segment(info, s.value)
        off = found
        if _avx_encoded(info, off + sym_off):
            raise _avx_refusal(info, sym if not sym_off else f"{sym}+{sym_off:#x}", off + sym_off)
        symbol = None
        if len(chosen) == 1 and not demangled and _libbpf_symbol_offset(info, sym) == off:
            symbol = sym
        out.append(_Target(off + sym_off, sym, symbol, sym_off))
    return out


def _regex_targets(info: ElfFile, sym_re: str, skipped: Optional[list] = None) -> list[_Target]:
    """Every sized function whose name, or demangled name, ``re.match``es ``sym_re`` (as BCC),
    one probe per address. Functions that start with an AVX-encoded instruction (see
    :func:`_avx_encoded`) are left out, and their names added to ``skipped``."""
    rx = _regex(sym_re, "sym_re")
    dm = info.demangled()
    by_offset: dict[int, _Target] = {}
    for s in sorted(info.functions(), key=lambda s: (s.table != "dynsym", s.bind != "global")):
        if s.size == 0:
            continue
        d = dm.get(s.base_name)
        if not (rx.match(s.name) or (d is not None and rx.match(d))):
            continue
        if s.is_ifunc:
            try:
                off = _ifunc_offset(info, s, s.base_name, s.version)
            except AttachError:
                continue  # a resolver that cannot be run: probing it would never fire
        else:
            found = info.vaddr_to_offset(s.value)
            if found is None:
                continue
            off = found
        if off in by_offset:
            continue
        if _avx_encoded(info, off):
            if skipped is not None and s.versioned_name not in skipped:
                skipped.append(s.versioned_name)
            continue
        by_offset[off] = _Target(off, s.versioned_name)
    return sorted(by_offset.values(), key=lambda t: t.offset)


def get_user_functions_and_addresses(name: _Str, sym_re: _Str) -> list[tuple[str, int]]:
    """``[(name, address)]`` of the functions of ``name`` matching ``sym_re`` (BCC's static
    method): addresses are the symbols' virtual addresses, as ``addr=`` takes them."""
    info = _info(resolve_binary(name))
    rx = _regex(sym_re, "sym_re")
    dm = info.demangled()
    seen: dict[int, str] = {}
    for s in info.functions():
        d = dm.get(s.base_name)
        if s.size and (rx.match(s.name) or (d is not None and rx.match(d))):
            seen.setdefault(s.value, s.name)
    return sorted(((n, a) for a, n in seen.items()), key=lambda t: t[1])


# -- the mixin -----------------------------------------------------------------------------------

def _uprobe_places(name: _Str, sym: _Str, sym_re: _Str, addr: Optional[int], pid: Optional[int], sym_off: int,
                   retprobe: bool) -> tuple:
    """``(path, pid, targets)`` of a uprobe request as ``attach_uprobe()`` takes it."""
    pid = -1 if pid is None else _int(pid, "pid", *I32)
    sym_off = _int(sym_off, "sym_off", *U64)
    addr = None if addr is None else _int(addr, "addr", *U64)
    path = resolve_binary(name, pid)
    return path, pid, UserAttachMixin._user_targets(path, _s(sym), _s(sym_re), addr, sym_off, retprobe)


def open_uprobes(name: _Str, sym: _Str = "", sym_re: _Str = "", addr: Optional[int] = None, pid: int = -1,
                 retprobe: bool = False, sym_off: int = 0) -> list:
    """The uprobes ``attach_uprobe()`` (``attach_uretprobe()`` with ``retprobe``) would make,
    opened now, before the program that will run on them is loaded (``_native.OpenedUprobe``):
    the kernel registers a uprobe when it is opened, and the first registration on a quiet system
    waits for an RCU grace period (15-18 ms on a small VM). A tool opens its uprobes in another
    thread while its object loads, then gives them to its programs with
    :meth:`UserAttachMixin.attach_opened_uprobes`. All or none: on an error those opened are
    closed. The same as :func:`uprobe_places` then :func:`open_places`."""
    path, pid, targets = uprobe_places(name, sym, sym_re, addr, pid, retprobe, sym_off)
    return open_places(path, pid, targets, retprobe)


def uprobe_places(name: _Str, sym: _Str = "", sym_re: _Str = "", addr: Optional[int] = None, pid: int = -1,
                  retprobe: bool = False, sym_off: int = 0) -> tuple:
    """``(path, pid, places)``: where :func:`open_uprobes` would open its uprobes, found (the
    binary and its symbols read) but nothing opened."""
    if not name:
        raise ValueError("open_uprobes needs name= (a path, or a library's short name such as \"c\")")
    return _uprobe_places(name, sym, sym_re, addr, pid, sym_off, retprobe)


def open_places(path: str, pid: int, places: list, retprobe: bool) -> list:
    """The uprobes at ``places`` (of :func:`uprobe_places`), opened; all or none."""
    opened: list = []
    try:
        for t in places:
            opened.append(_native.open_uprobe(path, t.offset, pid, retprobe, symbol=t.symbol,
                                              offset=t.symbol_offset if t.symbol is not None else t.offset))
    except BaseException:
        for o in opened:
            o.close()
        raise
    return opened


class UserAttachMixin(AttachBase):
    """uprobe and uretprobe methods of :class:`bpfkit.BPF` (which provides ``_obj`` and ``_detach``)."""

    @staticmethod
    def _user_targets(path: str, sym: str, sym_re: str, addr: Optional[int], sym_off: int,
                      retprobe: bool) -> list[_Target]:
        info = _info(path)
        if sym_re:
            if sym_off:
                raise ValueError("sym_off= cannot be combined with sym_re=")
            skipped: list = []
            targets = _regex_targets(info, sym_re, skipped)
            if skipped:
                from . import _logs

                _logs.warning(
                    "sym_re=%r: not probing %d function(s) of %s whose first instruction is AVX-encoded "
                    "(uprobes mis-step those): %s", sym_re, len(skipped), path, ", ".join(skipped))
            if not targets:
                extra = f" (left out, AVX-encoded first instruction: {', '.join(skipped)})" if skipped else ""
                raise AttachError(f"no function in {path} matches /{sym_re}/{extra}", _errno.ENOENT)
            return targets
        if addr:
            # BCC: addr is a virtual address (as in the symbol table or `nm`), and wins over sym.
            vaddr = addr + sym_off
            off = info.vaddr_to_offset(vaddr)
            if off is None:
                raise _no_segment(info, vaddr)
            if not info.is_executable_vaddr(vaddr):
                raise AttachError(f"address {vaddr:#x} is not in an executable segment of {path}", _errno.EINVAL)
            if _avx_encoded(info, off):
                raise _avx_refusal(info, f"{vaddr:#x}", off)
            if retprobe:
                inside = [s for s in info.functions() if s.value < vaddr < s.value + s.size]
                if inside:
                    raise ValueError(f"a uretprobe must be at a function's entry; {vaddr:#x} is inside "
                                     f"{inside[0].name} (at {inside[0].value:#x})")
            return [_Target(off, f"{vaddr:#x}")]
        if not sym:
            raise ValueError("give sym=, sym_re= or addr=")
        if retprobe and sym_off:
            raise ValueError("a uretprobe must be at a function's entry: sym_off= is for uprobes")
        return _symbol_targets(info, sym, sym_off)

    def _attach_user(self, retprobe: bool, name: _Str, sym: _Str, sym_re: _Str, addr: Optional[int],
                     fn_name: _Str, pid: Optional[int], sym_off: int) -> None:
        kind = "uretprobe" if retprobe else "uprobe"
        fn = _s(fn_name)
        if not fn:
            raise ValueError(f"attach_{kind} needs fn_name=")
        if not name:
            raise ValueError(f"attach_{kind} needs name= (a path, or a library's short name such as \"c\")")
        path, pid, targets = _uprobe_places(name, sym, sym_re, addr, pid, sym_off, retprobe)
        if self._section(fn).is_multi:
            # A SEC("uprobe.multi") program: one multi-uprobe link (6.6+) for every place.
            self._obj.attach_uprobe_multi(fn, path, [t.offset for t in targets], pid, retprobe,
                                          label=_s(sym_re) or _s(sym) or f"{addr:#x}")
            return
        made: list[int] = []
        try:
            for t in targets:
                if t.symbol is not None:
                    made.append(self._obj.attach_uprobe(fn, path, t.symbol, t.symbol_offset, pid, retprobe,
                                                        file_offset=t.offset))
                else:
                    made.append(self._obj.attach_uprobe(fn, path, None, t.offset, pid, retprobe))
        except BaseException:
            self._obj.detach_ids(made)  # all or nothing, also for sym_re
            raise

    def attach_uprobe(self, name: _Str = "", sym: _Str = "", sym_re: _Str = "", addr: Optional[int] = None,
                      fn_name: _Str = "", pid: int = -1, sym_off: int = 0) -> None:
        """Attaches program ``fn_name`` (a ``SEC("uprobe")`` program) to a user-space function.
        Needs a kernel with uprobes (4.1+; BPF links for them, 4.17+).

        ``name`` is a path, or a library's short name (``"c"``, ``"libfoo"``): with ``pid`` the
        process's own mappings are searched first, so a library it ``dlopen()``ed from anywhere is
        found. The place is one of:

        * ``sym="getpid"``: a function symbol of ``.dynsym`` or ``.symtab``. ``"memcpy@GLIBC_2.2.5"``
          picks a version; a plain name means the default version (``@@``). A GNU indirect function
          is probed at the implementation its resolver picks on this machine (as in BCC, the
          library is loaded into this process to run it). A C++ function is named mangled
          (``_ZN2ns5Klass6methodEi``) or demangled (``ns::Klass::method(int)``, or without the
          parameter list when there is one overload).
          ``sym_off`` adds an offset into the function.
        * ``sym_re=r"str.*cmp"``: every function whose name (or demangled name) ``re.match``es,
          one probe per address, all or none.
        * ``addr=0x401136``: a virtual address as ``nm`` shows it (it wins over ``sym``, as in BCC).

        ``pid`` limits the probe to one process (-1: every process that maps the file).

        >>> b.attach_uprobe(name="c", sym="getaddrinfo", fn_name="enter", pid=1234)
        >>> b.attach_uprobe(name="./server", sym_re=r"handle_.*", fn_name="count")
        """
        self._attach_user(False, name, sym, sym_re, addr, fn_name, pid, sym_off)

    def attach_opened_uprobes(self, fn_name: _Str, opened: list) -> None:
        """Gives program ``fn_name`` (a ``SEC("uprobe")`` or ``SEC("uretprobe")`` program) the
        uprobes :func:`open_uprobes` opened before this object loaded, all or none (on an error
        those attached are detached, and the rest closed)."""
        fn = _s(fn_name)
        if self._section(fn).is_multi:
            raise ValueError(f"`{fn}` is a uprobe.multi program: attach it with attach_uprobe()")
        made: list[int] = []
        try:
            for o in opened:
                made.append(self._obj.attach_opened_uprobe(fn, o))
        except BaseException:
            self._obj.detach_ids(made)
            for o in opened:
                o.close()
            raise

    def attach_uretprobe(self, name: _Str = "", sym: _Str = "", sym_re: _Str = "", addr: Optional[int] = None,
                         fn_name: _Str = "", pid: int = -1, sym_off: int = 0) -> None:
        """Attaches program ``fn_name`` (a ``SEC("uretprobe")`` program; ``PT_REGS_RC(ctx)`` is the
        return value) to the return of a user-space function, chosen as in :meth:`attach_uprobe`.
        A uretprobe must sit at a function's entry, so ``sym_off`` must be 0 and an ``addr`` inside
        a known function is refused (the kernel would take a saved register for the return address).

        >>> b.attach_uretprobe(name="c", sym="getaddrinfo", fn_name="leave")
        """
        self._attach_user(True, name, sym, sym_re, addr, fn_name, pid, sym_off)

    def _detach_user(self, retprobe: bool, name: _Str, sym: _Str, sym_re: _Str, addr: Optional[int],
                     pid: Optional[int], sym_off: int) -> None:
        kind = "uretprobe" if retprobe else "uprobe"
        pid = -1 if pid is None else int(pid)
        path = resolve_binary(name, pid)
        s_sym, s_re = _s(sym), _s(sym_re)
        try:
            targets = self._user_targets(path, s_sym, s_re, addr, sym_off, retprobe)
        except AttachError:
            targets = []
        st = os.stat(path)
        here = [lk for lk in self._obj.links()
                if lk.kind == kind and lk.file_id == (st.st_dev, st.st_ino) and (pid == -1 or lk.pid == pid)]
        # The probes attached for exactly this pid; with pid=-1 and none for every pid, those of
        # each pid there. A multi-uprobe link covers other places too: they go with it.
        offsets = {t.offset for t in targets}
        here = [lk for lk in here if offsets & set(lk.offsets)]
        chosen = [lk for lk in here if lk.pid == pid] or here
        if chosen and self._obj.detach_ids([lk.id for lk in chosen]):
            return
        # Attached some other way (a SEC("uprobe/path:sym") program): libbpf's own target name.
        where = s_sym if s_sym else (f"{addr:#x}" if addr else s_re)
        if s_sym and not s_re and not addr:
            n = self._obj.detach(kind, f"{path}:{s_sym}" if not sym_off else f"{path}:{s_sym}+{sym_off:#x}", None)
            if n:
                return
        raise ValueError(f"no {kind} attached to {path}:{where}" + (f" for pid {pid}" if pid != -1 else ""))

    def detach_uprobe(self, name: _Str = "", sym: _Str = "", addr: Optional[int] = None, pid: int = -1,
                      sym_off: int = 0, *, sym_re: _Str = "") -> None:
        """Detaches the uprobes at the place that :meth:`attach_uprobe` would pick for the same
        arguments (``sym_re=`` detaches every match). With ``pid=-1`` the probes of every pid there
        go. Raises ``ValueError`` when nothing was attached there."""
        self._detach_user(False, name, sym, sym_re, addr, pid, sym_off)

    def detach_uretprobe(self, name: _Str = "", sym: _Str = "", addr: Optional[int] = None, pid: int = -1,
                         sym_off: int = 0, *, sym_re: _Str = "") -> None:
        """Detaches uretprobes, as :meth:`detach_uprobe` does uprobes."""
        self._detach_user(True, name, sym, sym_re, addr, pid, sym_off)

    def num_open_uprobes(self) -> int:
        """How many uprobes and uretprobes are attached (BCC's name)."""
        return sum(1 for lk in self._obj.links() if lk.kind in ("uprobe", "uretprobe"))

    @staticmethod
    def get_user_functions_and_addresses(name: _Str, sym_re: _Str) -> list[tuple[str, int]]:
        """``[(function, virtual address)]`` of the functions of ``name`` matching ``sym_re``."""
        return get_user_functions_and_addresses(name, sym_re)

    @staticmethod
    def get_user_functions(name: _Str, sym_re: _Str) -> list[str]:
        """The names of the functions of ``name`` matching ``sym_re``."""
        return [n for n, _a in get_user_functions_and_addresses(name, sym_re)]

    @staticmethod
    def get_user_addresses(name: _Str, sym_re: _Str) -> list[int]:
        """The virtual addresses of the functions of ``name`` matching ``sym_re``."""
        return [a for _n, a in get_user_functions_and_addresses(name, sym_re)]
