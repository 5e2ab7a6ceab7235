"""USDT probes (user-level statically defined tracing: the SystemTap SDT notes that ``sys/sdt.h``,
``DTRACE_PROBE*()`` and ``dtrace -G`` put into a binary), with BCC's :class:`USDT` class.

>>> from bpfkit import BPF, USDT
>>> u = USDT(pid=1234)                    # the process's binary and every library it has loaded
>>> u.enable_probe(probe="query__start", fn_name="on_query")
>>> b = BPF(text='''
... SEC("usdt")
... int on_query(struct pt_regs *ctx)
... {
...     long n = 0;
...     bpf_usdt_readarg(2, ctx, &n);     /* BCC's helper: arguments counted from 1 */
...     bpf_printk("query %ld", n);
...     return 0;
... }
... ''', usdt_contexts=[u])

The probe's programs are ``SEC("usdt")`` programs. They read the arguments with BCC's
``bpf_usdt_readarg(n, ctx, &v)`` (from 1), libbpf's ``bpf_usdt_arg(ctx, i, &v)`` (from 0) or
libbpf's ``BPF_USDT(fn, a, b)`` wrapper; bpfkit includes libbpf's ``usdt.bpf.h`` when the source
mentions USDT. libbpf attaches the probes (one BPF link per probe and binary, covering every
location), decodes the argument specifications and, for probes with a semaphore, has the kernel
count the semaphore up while attached (``ref_ctr_offset``, kernel 4.20+). USDT needs uprobes
(4.1+); libbpf uses BPF cookies where the kernel has them (5.15+) and an IP-to-spec map before.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

from . import _native
from ._attach_base import Str as _Str
from ._attach_base import _s
from ._attach_user import resolve_binary
from ._errors import AttachError

__all__ = ["USDT", "USDTProbe", "USDTProbeLocation", "USDTProbeNotFoundError"]




class USDTProbeNotFoundError(AttachError, ValueError):
    """The USDT probe named is not in the binaries searched (or the name is ambiguous). The
    message names the probe and the binaries and lists the probes they have. It is both an
    :class:`~bpfkit.AttachError` and a ``ValueError``."""


@dataclass(frozen=True)
class USDTProbeLocation:
    """One site of a probe: its virtual ``address`` in ``bin_path`` and its argument
    specification (``args``, e.g. ``"-4@%edi 8@-16(%rbp) -4@$-7"``: size in bytes, negative
    for signed, then the operand)."""

    address: int
    bin_path: str
    args: str

    @property
    def arguments(self) -> list[str]:
        return self.args.split()


@dataclass(frozen=True)
class USDTProbe:
    """A USDT probe ``provider:name`` of ``bin_path``, with every location it has there. As in
    BCC: ``provider``, ``name``, ``bin_path``, ``semaphore`` (its virtual address, 0 when it has
    none), ``num_locations``, ``num_arguments``, ``get_location(i)``."""

    provider: str
    name: str
    bin_path: str
    semaphore: int
    locations: tuple[USDTProbeLocation, ...]

    @property
    def num_locations(self) -> int:
        return len(self.locations)

    @property
    def num_arguments(self) -> int:
        return len(self.locations[0].arguments) if self.locations else 0

    def get_location(self, index: int) -> USDTProbeLocation:
        return self.locations[index]

    @property
    def full_name(self) -> str:
        return f"{self.provider}:{self.name}"

    def __str__(self) -> str:
        sema = f" [sema {self.semaphore:#x}]" if self.semaphore else ""
        return (f"{self.bin_path} {self.provider}:{self.name}{sema} "
                f"({self.num_locations} location(s), {self.num_arguments} argument(s))")


_CTYPES = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}


def _probes_of(path: str) -> list[USDTProbe]:
    """The USDT probes of one binary, from its ``.note.stapsdt`` notes (read by the core's ELF
    reader, which refuses at once anything but a regular ELF file)."""
    notes = _native.open_elf(path).sdt_notes()
    grouped: dict[tuple[str, str], list] = {}
    for n in notes:
        grouped.setdefault((n.provider, n.name), []).append(n)
    out = []
    for (prov, name), ns in grouped.items():
        sema = next((n.semaphore for n in ns if n.semaphore), 0)
        out.append(USDTProbe(prov, name, path, sema, tuple(USDTProbeLocation(n.pc, path, n.args) for n in ns)))
    return out


class USDT:
    """The USDT probes of a process (``pid=``: its executable and every library it has mapped) or
    of a binary (``path=``: a path or a library's short name; with ``pid`` too, the probes fire
    only in that process). As BCC's: enable probes, then hand the context to ``BPF``:

    >>> u = USDT(path="/usr/sbin/mysqld")
    >>> u.enable_probe("mysql:query__start", "on_query")   # or just "query__start"
    >>> b = BPF(text=src, usdt_contexts=[u])
    """

    def __init__(self, pid: Optional[int] = None, path: Optional[_Str] = None) -> None:
        if pid is None and not path:
            raise ValueError("USDT needs pid= or path=")
        if pid is not None and pid > 0 and not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"USDT: no process with pid {pid}", _errno.ESRCH)
        self.pid = pid if pid is not None and pid > 0 else None
        self.path: Optional[str] = resolve_binary(path, self.pid) if path else None
        self._enabled: list[tuple[list[USDTProbe], str]] = []
        self._probes: Optional[list[USDTProbe]] = None

    # -- what there is ---------------------------------------------------------------------------
    def _binaries(self) -> list[str]:
        if self.path is not None:
            return [self.path]
        pid = self.pid
        paths: list[str] = []
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError as e:
            raise AttachError(f"USDT: cannot read /proc/{pid}/exe: {e.strerror}", e.errno) from None
        candidates = [exe]
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    parts = line.split(maxsplit=5)
                    if len(parts) == 6 and parts[5].startswith("/"):
                        candidates.append(parts[5].rstrip("\n"))
        except OSError as e:
            raise AttachError(f"USDT: cannot read /proc/{pid}/maps: {e.strerror}", e.errno) from None
        for p in candidates:
            if p.endswith(" (deleted)") or p.startswith("/dev/") or p.startswith("/memfd:"):
                continue
            if not os.path.isfile(p) and os.path.isfile(f"/proc/{pid}/root{p}"):
                p = f"/proc/{pid}/root{p}"
            if p not in paths and os.path.isfile(p):
                paths.append(p)
        return paths

    def enumerate_probes(self) -> list[USDTProbe]:
        """Every probe of the binaries this context covers, in file order."""
        if self._probes is None:
            probes: list[USDTProbe] = []
            for path in self._binaries():
                try:
                    probes.extend(_probes_of(path))
                except AttachError as e:
                    # A binary named by path must be read; of a process's mappings, those that
                    # cannot be (gone, not ELF) simply have no probes.
                    if self.path is not None:
                        raise AttachError(f"USDT: {e}", e.errno) from None
            self._probes = probes
        return list(self._probes)

    def _where(self) -> str:
        if self.path is not None:
            return self.path + (f" (pid {self.pid})" if self.pid else "")
        return f"process {self.pid} (its executable and loaded libraries)"

    def _find(self, probe: _Str) -> list[USDTProbe]:
        spec = _s(probe)
        provider, _, name = spec.rpartition(":")
        probes = self.enumerate_probes()
        found = [p for p in probes if p.name == name and (not provider or p.provider == provider)]
        have = sorted({p.full_name for p in probes})
        listing = f"it has: {', '.join(have)}" if have else "it has no USDT probes (no .note.stapsdt section)"
        if not found:
            raise USDTProbeNotFoundError(f"no USDT probe {spec} in {self._where()}; {listing}", _errno.ENOENT)
        providers = sorted({p.provider for p in found})
        if len(providers) > 1:
            raise USDTProbeNotFoundError(
                f"USDT probe name {name} is ambiguous in {self._where()}: "
                f"{', '.join(f'{pr}:{name}' for pr in providers)}; give provider:name", _errno.EINVAL)
        return found

    # -- enabling --------------------------------------------------------------------------------
    def enable_probe(self, probe: _Str, fn_name: _Str) -> None:
        """Asks that program ``fn_name`` run at probe ``probe`` (``"name"`` or
        ``"provider:name"``) once this context is given to ``BPF(usdt_contexts=[...])``.
        Raises :class:`USDTProbeNotFoundError` at once when there is no such probe."""
        fn = _s(fn_name)
        if not fn:
            raise ValueError("enable_probe needs fn_name=")
        self._enabled.append((self._find(probe), fn))

    def enable_probe_or_bail(self, probe: _Str, fn_name: _Str) -> None:
        """:meth:`enable_probe`, or print why not and exit with status 1 (as BCC's tools do)."""
        try:
            self.enable_probe(probe, fn_name)
        except (AttachError, ValueError) as e:
            print(f"Error attaching USDT probes: {e}", file=sys.stderr)
            sys.exit(1)

    def get_probe_arg_ctype(self, probe_name: _Str, arg_index: int) -> str:
        """The C type of argument ``arg_index`` (from 0) of a probe, from its specification's
        size and sign: ``"int32_t"``, ``"uint64_t"``..."""
        probe = self._find(probe_name)[0]
        args = probe.locations[0].arguments
        if not 0 <= arg_index < len(args):
            raise IndexError(f"{probe.full_name} has {len(args)} argument(s), not {arg_index + 1}")
        m = re.match(r"(-?)(\d+)@", args[arg_index])
        if not m:
            return "int64_t"
        ctype = _CTYPES.get(int(m.group(2)), "int64_t")
        return ctype if m.group(1) else "u" + ctype

    def get_text(self) -> str:
        """BCC generates C to read the arguments; bpfkit has libbpf's ``bpf_usdt_arg()`` and
        BCC's ``bpf_usdt_readarg()`` instead, so there is no extra text: ``""``."""
        return ""

    def enumerate_active_probes(self) -> list[tuple[str, str, int, int]]:
        """``[(bin_path, fn_name, address, pid)]`` of every location of every enabled probe
        (pid -1 when not limited to one)."""
        return [(p.bin_path, fn, loc.address, self.pid or -1)
                for probes, fn in self._enabled for p in probes for loc in p.locations]

    # -- attaching (called by BPF.__init__) ------------------------------------------------------
    def _attach(self, bpf: Any, ignore_pid: bool = False) -> None:
        """Attaches the enabled probes to ``bpf``'s programs; with ``ignore_pid`` (BCC's
        ``attach_usdt_ignore_pid``) in every process running the binary, not only ``pid``."""
        made: list[int] = []
        pid = -1 if ignore_pid or not self.pid else self.pid
        try:
            for probes, fn in self._enabled:
                for p in probes:
                    made.append(bpf._obj.attach_usdt(fn, p.bin_path, p.provider, p.name, pid, 0))
        except BaseException:
            for lid in made:
                bpf._obj.detach_id(lid)
            raise

    def __repr__(self) -> str:
        return f"<bpfkit.USDT {self._where()}, {len(self._enabled)} probe(s) enabled>"
