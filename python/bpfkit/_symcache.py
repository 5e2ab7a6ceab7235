"""BCC's ``SymbolCache``: a process's (or the kernel's) symbols, both ways, as bytes.

Built on bpfkit's symbol code: ``/proc/kallsyms`` for the kernel, blazesym (ELF symbols, DWARF,
build ids) for a process, the core's ELF reader for names to addresses.
"""

from __future__ import annotations

import os

from . import _native
from ._attach_base import I32, U64, _int, _s

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SymbolCache"]


def _mappings(pid: int) -> list:
    """``[(start, end, file_offset, (dev, inode), path, executable)]`` of the file mappings of
    ``pid``."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            lo, _, hi = parts[0].partition("-")
            major, _, minor = parts[3].partition(":")
            dev = os.makedev(int(major, 16), int(minor, 16))
            out.append((int(lo, 16), int(hi, 16), int(parts[2], 16), (dev, int(parts[4])), parts[5].rstrip("\n"),
                        "x" in parts[1]))
    return out


class SymbolCache:
    """The symbols of process ``pid`` (any negative ``pid``: the kernel's), as BCC's
    ``SymbolCache``, with its bytes in and out.

    >>> libc = ctypes.CDLL("libc.so.6")
    >>> addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    >>> SymbolCache(os.getpid()).resolve(addr, True)
    (b'getpid', 0, b'/usr/lib/x86_64-linux-gnu/libc.so.6')
    >>> SymbolCache(os.getpid()).resolve_name(b"c", b"getpid") == addr
    True
    """

    def __init__(self, pid: int) -> None:
        self.pid = -1 if _int(pid, "pid", *I32) < 0 else pid

    def __repr__(self) -> str:
        return f"SymbolCache({'kernel' if self.pid < 0 else f'pid {self.pid}'})"

    def resolve(self, addr: int, demangle: bool = True) -> tuple:
        """``(symbol, offset, module)`` of the function containing ``addr``, as bytes:
        ``(b"start_thread", 0x202, b"/usr/lib/.../libc.so.6")``. When no symbol covers
        ``addr`` but a mapping of a file does, ``(None, offset in that file, path)``; when not
        even that, ``(None, addr, None)``. The kernel's module is ``b"kernel"`` for the core
        image. ``demangle=False`` keeps C++/Rust names as the ELF file has them."""
        addr = _int(addr, "addr", *U64)
        if self.pid < 0:
            r = _native.ksym(addr)
            if r is None:
                return (None, addr, None)
            name, off, module = r
            return (name.encode(), off, (module or "kernel").encode())
        r = _native.usym(addr, self.pid, bool(demangle))
        if r is not None:
            name, off, module = r
            return (name.encode(), off, os.fsencode(module) if module else None)
        try:
            maps = _mappings(self.pid)
        except OSError:
            return (None, addr, None)
        for lo, hi, pgoff, _ino, path, _x in maps:
            if lo <= addr < hi:
                return (None, addr - lo + pgoff, os.fsencode(path))
        return (None, addr, None)

    def resolve_name(self, module: Any, name: Any) -> int:
        """The address of function ``name`` in ``module`` (a path or a library's short name,
        ``b"c"``) as this process has it mapped, or -1 when the module has no such function or
        the process does not map it. For the kernel (``pid`` < 0), ``module`` is ignored and the
        address is ``/proc/kallsyms``'s."""
        sym = _s(name)
        if self.pid < 0:
            a = _native.ksymname(sym)
            return -1 if a is None else a
        if module is None:
            raise ValueError("resolve_name() needs the module (a path or a library name such as b'c') "
                             "for a process's symbols")
        from ._attach_user import resolve_binary
        from ._errors import BPFError

        try:
            path = resolve_binary(module, self.pid)
            info = _native.open_elf(path)
            st = os.stat(path)
        except (BPFError, OSError, ValueError):
            return -1
        cands = [s for s in info.functions_named(sym) if s.size] or info.functions_named(sym)
        # The default version of a versioned symbol (getpid@@GLIBC_2.2.5), as the dynamic
        # linker binds it.
        cands.sort(key=lambda s: (not s.default_version, s.table != "dynsym"))
        if not cands:
            return -1
        off = info.vaddr_to_offset(cands[0].value)
        if off is None:
            return -1
        try:
            maps = _mappings(self.pid)
        except OSError:
            return -1
        # Only executable mappings: the same file may also be mapped whole for reading (a
        # symbolizer's own view of it), at other addresses.
        for lo, hi, pgoff, ino, _path, executable in maps:
            if executable and ino == (st.st_dev, st.st_ino) and pgoff <= off < pgoff + (hi - lo):
                return lo + off - pgoff
        return -1
