"""Probe specifications in BCC's syntax, parsed once into a typed :class:`Probe` and resolved to
the concrete places to attach (:class:`Target`): what the generic tools (funccount,
funclatency, funcslower; trace, argdist and stackcount next) share.

The syntax, one spec a word (``[kind:][library:]pattern``)::

    vfs_read            kernel function (kprobe)        p::vfs_read, p:vfs_read
    r::vfs_read         its return (kretprobe)          r:vfs_read
    f::vfs_read         fentry (F:: fexit)              f:vfs_read, F:vfs_read
    t:sched:sched_fork  tracepoint category:event
    c:malloc            user function of a library      p:c:malloc, u:c:malloc
    /bin/bash:readline  user function of a binary       (r:/bin/bash:readline: its return)
    U:node:gc__start    USDT probe (provider:name also) u:node:gc__start, as BCC, when the
                                                        binary has a USDT probe of that name

A pattern may hold ``*`` wildcards (``vfs_*``, ``t:syscalls:sys_enter_*open*``), matched against
the whole name; with ``regex=True`` (the tools' ``-r``) it is a regular expression matched from
the start of the name, as BCC's ``re.match``. A library is a path or a short name (``c``,
``pthread``), looked up in process ``pid``'s mappings first.

``u:`` is a uprobe, as bpftrace and issue 11 spell it; but BCC's funccount, trace and argdist
mean a USDT probe by ``u:``, so where the binary has a USDT probe matching the pattern, that is
what ``u:`` counts (``U:`` is always USDT).

Fallbacks (see :func:`resolve`): fentry/fexit become kprobes where the kernel has no BPF
trampolines; a kprobe on a system call (``p::sys_getppid``, ``__x64_sys_getppid``) becomes the
``syscalls:sys_enter_X`` tracepoint (``sys_exit_X`` for a kretprobe) where it has no kprobes.
Anything else the kernel lacks is refused in one line naming the missing feature.

>>> probe = parse("c:malloc", pid=181)
>>> probe.kind, probe.library, probe.pattern
('uprobe', 'c', 'malloc')
>>> targets = resolve([probe])          # [Target(uprobe /lib/x86_64-linux-gnu/libc.so.6:malloc)]

Only light modules are imported here: ``re`` only for ``regex=True``, the attach modules only
when resolving.
"""

from __future__ import annotations

import errno as _errno
import os

from bpfkit._errors import AttachError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

#: The probe kinds, with the kind letter each is written with.
KINDS = ("kprobe", "kretprobe", "tracepoint", "uprobe", "uretprobe", "usdt", "fentry", "fexit")
#: Kinds of a kernel function; of a user function; that run at a function's return.
KERNEL_FUNCTION_KINDS = ("kprobe", "kretprobe", "fentry", "fexit")
USER_FUNCTION_KINDS = ("uprobe", "uretprobe")
RETURN_KINDS = ("kretprobe", "uretprobe", "fexit")
#: Kinds that are the entry of a function (funclatency, funcslower time from there to its return).
ENTRY_KINDS = ("kprobe", "uprobe", "fentry")
#: The return counterpart of each entry kind.
RETURN_OF = {"kprobe": "kretprobe", "uprobe": "uretprobe", "fentry": "fexit"}
#: How many probes a tool may attach at once unless ``BCC_PROBE_LIMIT`` says otherwise (BCC's).
DEFAULT_PROBE_LIMIT = 1000

_LETTERS = {"p": "kprobe", "r": "kretprobe", "t": "tracepoint", "u": "uprobe", "U": "usdt",
            "f": "fentry", "F": "fexit"}
#: Prefixes of the kernel's system call entry points (the running kernel's own is asked too).
_SYSCALL_PREFIXES = ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "__se_sys_", "__do_sys_", "sys_")


class ProbeError(AttachError, ValueError):
    """A probe specification that cannot be parsed, or that matches nothing: one line saying
    which and why. Both an :class:`~bpfkit.AttachError` (the command line prints it as one line,
    status 1) and a ``ValueError``."""

    def __init__(self, message: str, errno: int = _errno.EINVAL) -> None:
        super().__init__(message, errno)


def probe_limit() -> int:
    """How many probes a tool may attach at once: ``BCC_PROBE_LIMIT``, else 1000 (BCC's)."""
    text = os.environ.get("BCC_PROBE_LIMIT", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_PROBE_LIMIT


def wildcard(pattern: str) -> Callable[[str], bool]:
    """A test of a whole name against a pattern with ``*`` wildcards, without ``re`` (which costs
    a tool's start ~10 ms). No ``*``: the name itself.

    >>> wildcard("vfs_*")("vfs_read"), wildcard("*open*")("do_sys_openat2"), wildcard("a*b")("ab_")
    (True, True, False)
    """
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern.__eq__
    head, mid, tail = parts[0], [m for m in parts[1:-1] if m], parts[-1]
    least = len(head) + len(tail)

    def match(name: str) -> bool:
        if len(name) < least or not name.startswith(head) or not name.endswith(tail):
            return False
        pos, end = len(head), len(name) - len(tail)
        for m in mid:  # each piece as early as it fits: with `*` only, that finds a match if any
            i = name.find(m, pos, end)
            if i < 0:
                return False
            pos = i + len(m)
        return True

    return match


class Probe:
    """One parsed probe specification.

    * ``kind``: one of :data:`KINDS`;
    * ``library``: for a user-space kind, the binary as written (a path, or a library's short
      name such as ``"c"``); ``""`` for the kernel's, and for USDT probes of process ``pid``;
    * ``pattern``: the function, ``category:event`` or USDT probe (``name`` or ``provider:name``),
      with ``*`` wildcards, or a regular expression when ``regex``;
    * ``pid``: the process the probe is for (None: every process);
    * ``spec``: the text as written; ``usdt_alias``: written ``u:``, which means USDT where the
      binary has such a USDT probe (see the module's docstring).

    A plain class (neither dataclasses nor typing: their imports cost every tool's start);
    instances compare and hash by value and are not changed after parsing.
    """

    __slots__ = ("kind", "library", "pattern", "regex", "pid", "spec", "usdt_alias")

    def __init__(self, kind: str, library: str, pattern: str, *, regex: bool = False, pid: int | None = None,
                 spec: str = "", usdt_alias: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(f"probe kind {kind!r} is not one of {', '.join(KINDS)}")
        self.kind, self.library, self.pattern, self.regex, self.pid = kind, library, pattern, regex, pid
        self.spec = spec or _format(kind, library, pattern)
        self.usdt_alias = usdt_alias

    def _key(self) -> tuple:
        return (self.kind, self.library, self.pattern, self.regex, self.pid, self.spec, self.usdt_alias)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Probe) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = "".join((", regex=True" if self.regex else "", f", pid={self.pid}" if self.pid else "",
                         ", usdt_alias=True" if self.usdt_alias else ""))
        return f"Probe({self.kind!r}, {self.library!r}, {self.pattern!r}{extra})"

    @property
    def is_kernel(self) -> bool:
        """Whether it probes the kernel (a kernel function or a tracepoint)."""
        return self.kind in KERNEL_FUNCTION_KINDS or self.kind == "tracepoint"

    @property
    def is_literal(self) -> bool:
        """Whether the pattern names one thing (no wildcard, no regex)."""
        return not self.regex and "*" not in self.pattern

    def matcher(self) -> Callable[[str], object]:
        """The test of a name: the wildcard pattern against the whole name, or the regex
        ``re.match``ed (from the start, as BCC)."""
        if self.regex:
            return _compile(self.pattern, self.spec).match
        return wildcard(self.pattern)

    def replace(self, **changes: Any) -> Probe:
        """A copy with some fields changed (``probe.replace(kind="kretprobe")``)."""
        fields = {k: getattr(self, k) for k in self.__slots__}
        fields.update(changes)
        kind, library, pattern = fields.pop("kind"), fields.pop("library"), fields.pop("pattern")
        return Probe(kind, library, pattern, **fields)

    def returning(self) -> Probe:
        """The probe of the same function's return: kprobe -> kretprobe, uprobe -> uretprobe,
        fentry -> fexit (funclatency and funcslower attach both)."""
        if self.kind not in RETURN_OF:
            raise ProbeError(f"{self.spec}: a {self.kind} is not a function's entry, so it has no return to time")
        return self.replace(kind=RETURN_OF[self.kind])


def split_outside(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside parentheses, brackets and quoted literals: the parts of a
    trace or argdist specifier (``p:c:write(int fd, char *buf):size_t:count``, a format's
    arguments ``arg1, f(x, y)``), which are C the user wrote."""
    parts, depth, start, i, quote = [], 0, 0, 0, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _format(kind: str, library: str, pattern: str) -> str:
    letter = {v: k for k, v in _LETTERS.items()}.get(kind, "p")
    if kind == "uretprobe":
        letter = "r"
    if kind == "tracepoint":
        return f"t:{pattern}"
    return f"{letter}:{library}:{pattern}"


def _compile(pattern: str, spec: str) -> Any:
    import re

    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as e:
        raise ProbeError(f"{spec}: {pattern!r} is not a regular expression: {e}") from None


def parse(spec: str, *, regex: bool = False, pid: int | None = None,
          kinds: Sequence[str] = KINDS) -> Probe:
    """``spec`` as a :class:`Probe` (see the module's docstring for the syntax). ``kinds``: the
    kinds the caller takes (``ENTRY_KINDS`` for funclatency); another is a :class:`ProbeError`,
    as is a spec that cannot be parsed. No file or kernel is looked at.

    >>> parse("t:syscalls:sys_enter_getpp*")
    Probe('tracepoint', '', 'syscalls:sys_enter_getpp*')
    >>> parse("/bin/bash:readline", pid=181)
    Probe('uprobe', '/bin/bash', 'readline', pid=181)
    """
    text = spec.strip()
    if not text:
        raise ProbeError("empty probe specification")
    if any(c.isspace() for c in text):
        raise ProbeError(f"{spec!r}: a probe specification has no spaces")
    parts = text.split(":")
    letter = parts[0] if len(parts) >= 2 and parts[0] in _LETTERS else None
    if letter is None:
        if len(parts) == 1:                            # vfs_read
            kind, library, pattern = "kprobe", "", text
        else:                                          # c:malloc, /bin/bash:readline, lib:ns::f
            library, _, pattern = text.partition(":")
            kind = "uprobe"
            if not library:
                raise ProbeError(f"{spec}: a kind letter ({', '.join(_LETTERS)}) or a library goes before "
                                 "the first ':'")
    else:
        kind = _LETTERS[letter]
        rest = parts[1:]
        if kind == "tracepoint":
            # t:category:event (t::category:event is accepted too: an empty library)
            if len(rest) == 3 and rest[0] == "":
                rest = rest[1:]
            if len(rest) != 2 or not rest[0] or not rest[1]:
                raise ProbeError(f"{spec}: a tracepoint is t:category:event (t:sched:sched_switch)")
            library, pattern = "", ":".join(rest)
        elif len(rest) == 1:                           # p:vfs_read, f:vfs_read
            if kind in ("uprobe", "usdt"):
                raise ProbeError(f"{spec}: {letter}: needs a library or binary: {letter}:LIB:NAME")
            library, pattern = "", rest[0]
        else:                                          # p:lib:fn, p::fn, U:lib:provider:name
            library, pattern = rest[0], ":".join(rest[1:])
        if kind in ("kprobe", "kretprobe") and library:
            kind = "uprobe" if kind == "kprobe" else "uretprobe"
        if kind in ("fentry", "fexit") and library:
            raise ProbeError(f"{spec}: {letter}: probes kernel functions ({letter}::FUNC); "
                             f"for a function of {library}, use p:{library}:...")
    if not pattern:
        raise ProbeError(f"{spec}: no function, event or probe name")
    if ":" in pattern and kind not in ("tracepoint", "usdt", "uprobe", "uretprobe"):
        raise ProbeError(f"{spec}: too many ':'-separated parts for a {kind}")
    if kind == "uprobe" and letter == "u" and ":" in pattern:
        kind = "usdt"  # u:LIB:provider:name can only be a USDT probe
    usdt_alias = letter == "u" and kind == "uprobe"
    if kind == "usdt" and not library and not pid:
        raise ProbeError(f"{spec}: a USDT probe needs its binary ({letter}:LIB:NAME) or a process (-p PID)")
    if usdt_alias and "usdt" in kinds and "uprobe" not in kinds:
        kind, usdt_alias = "usdt", False
    if kind not in kinds and not (usdt_alias and "usdt" in kinds):
        raise ProbeError(f"{spec}: a {kind} probe, but this tool takes {_kinds_text(kinds)}")
    if regex:
        _compile(pattern, spec)
    return Probe(kind, library, pattern, regex=regex, pid=pid, spec=text, usdt_alias=usdt_alias)


def _kinds_text(kinds: Sequence[str]) -> str:
    return ", ".join(kinds[:-1]) + (" or " if len(kinds) > 1 else "") + kinds[-1]


# -- resolution ---------------------------------------------------------------------------------

class Target:
    """One concrete place a probe attaches to, after wildcards, library lookup and fallbacks.

    * ``probe``: the :class:`Probe` it came from; ``kind``: how it attaches, which differs from
      ``probe.kind`` after a fallback (a syscall's kprobe on a kernel without kprobes is a
      ``tracepoint``), and ``via`` then says why, in a line;
    * ``name``: what the tools print (the kernel function, even where a tracepoint stands in for
      it; ``category:event``; the user function; ``provider:name``); ``function``: the user
      symbol to attach to by name (an IFUNC's versioned name), else ``name``;
    * ``event``: the tracepoint ``category:event`` a ``tracepoint`` target attaches to;
    * ``path``: the binary (user kinds); ``address``: a user function's virtual address (None: by
      its symbol, ``function``);
    * ``syscall``: the system call's name when the target is its ``sys_enter``/``sys_exit``
      tracepoint (generated code then reads arguments and return value from the tracepoint), and
      ``nargs`` how many arguments it has (the kernel refuses to attach a program that reads
      past a tracepoint's record);
    * ``index``: its place among the targets of one :func:`resolve`, from 0 (the generated code's
      probe index, which maps counts back to names).
    """

    __slots__ = ("probe", "kind", "name", "function", "event", "path", "address", "syscall", "nargs", "via", "index")

    def __init__(self, probe: Probe, kind: str, name: str, *, function: str = "", event: str = "", path: str = "",
                 address: int | None = None, syscall: str = "", nargs: int = 6, via: str = "") -> None:
        self.probe, self.kind, self.name, self.function = probe, kind, name, function or name
        self.event = event or (name if kind == "tracepoint" else "")
        self.path, self.address, self.syscall, self.nargs, self.via = path, address, syscall, nargs, via
        self.index = -1

    @property
    def tracepoint(self) -> tuple[str, str]:
        """``(category, event)`` of a tracepoint target."""
        cat, _, ev = self.event.partition(":")
        return cat, ev

    @property
    def is_return(self) -> bool:
        """Whether it runs at a function's return (a kretprobe, uretprobe, fexit, or a syscall's
        ``sys_exit`` tracepoint standing in for a kretprobe)."""
        return self.kind in RETURN_KINDS or self.event.startswith("syscalls:sys_exit_")

    @property
    def label(self) -> str:
        """The name with the library as the spec wrote it, for a user function (``c:malloc``),
        as funcslower prints it; the name otherwise."""
        if self.probe.library and self.kind in USER_FUNCTION_KINDS:
            return f"{self.probe.library}:{self.name}"
        return self.name

    def __repr__(self) -> str:
        where = f" {self.path}:" if self.path else " "
        via = f" via {self.event}" if self.via and self.event else ""
        return f"Target({self.kind}{where}{self.name}{via})"


def resolve(probes: Iterable[Probe], *, limit: int | None = None) -> list[Target]:
    """The targets of ``probes``, in order, indexed from 0: each pattern resolved (kernel
    functions from kallsyms less the kprobe blacklist, tracepoints from tracefs, user functions
    from the binary's ELF symbols, USDT probes from its notes), with the fallbacks of the
    module's docstring. A probe matching nothing, or more than ``limit`` targets in all
    (:func:`probe_limit` by default), is a :class:`ProbeError`; a kind the kernel lacks, with
    no fallback, a :class:`~bpfkit.NotSupportedError`.

    Where several specs reach the same place (``vfs_read 'vfs_*'``) it is attached once, for
    the first."""
    limit = probe_limit() if limit is None else limit
    out: list[Target] = []
    seen: set = set()
    for probe in probes:
        found = _resolve_one(probe)
        if not found:
            raise ProbeError(f"no {_what(probe)} matches {probe.spec!r}", _errno.ENOENT)
        for t in found:
            key = (t.kind, t.path, t.function, t.address, t.event)
            if key in seen:
                continue
            seen.add(key)
            t.index = len(out)
            out.append(t)
            if len(out) > limit:
                raise ProbeError(f"{probe.spec!r}: more than {limit} probes to attach, the limit (BCC_PROBE_LIMIT "
                                 "raises it); narrow the pattern", _errno.E2BIG)
    return out


def _what(probe: Probe) -> str:
    if probe.kind == "tracepoint":
        return "tracepoint"
    if probe.kind == "usdt":
        return "USDT probe"
    return "kernel function" if probe.is_kernel else "function"


def _resolve_one(probe: Probe) -> list[Target]:
    if probe.kind == "tracepoint":
        return _tracepoints(probe)
    if probe.kind in KERNEL_FUNCTION_KINDS:
        return _kernel_functions(probe)
    if probe.kind == "usdt":
        return _usdt(probe)
    if probe.usdt_alias:
        usdt = _usdt(probe, quiet=True)
        if usdt:
            return usdt
    return _user_functions(probe)


def _tracepoints(probe: Probe) -> list[Target]:
    from bpfkit import _native

    if probe.is_literal:
        cat, _, ev = probe.pattern.partition(":")
        return [Target(probe, "tracepoint", probe.pattern)] if _native.tracepoint_exists(cat, ev) else []
    from bpfkit._attach_kernel import tracepoints_matching

    return [Target(probe, "tracepoint", name) for name in tracepoints_matching(probe.matcher())]


def syscall_prefix() -> str:
    """This kernel's prefix of system call entry points (``__x64_sys_`` on x86-64)."""
    from bpfkit._attach_kernel import KernelAttachMixin

    return str(KernelAttachMixin.get_syscall_prefix())


def syscall_of(function: str) -> str:
    """The system call a kernel function is the entry point of (``__x64_sys_getppid``,
    ``sys_getppid`` -> ``getppid``), or ``""``: ``do_sys_openat2`` is a helper, not an entry
    point, and ``ksys_read`` neither.

    >>> syscall_of("__x64_sys_getppid"), syscall_of("sys_read"), syscall_of("do_sys_openat2")
    ('getppid', 'read', '')
    """
    for prefix in _SYSCALL_PREFIXES:
        if function.startswith(prefix) and len(function) > len(prefix):
            return function[len(prefix):]
    return ""


def syscall_arg_count(call: str) -> int:
    """How many arguments system call ``call`` has, from its ``sys_enter`` tracepoint's format
    (6, the most, when the format cannot be read).

    >>> syscall_arg_count("getppid"), syscall_arg_count("read")
    (0, 3)
    """
    from bpfkit._attach_kernel import _tracing_dir

    try:
        with open(os.path.join(_tracing_dir(), "events", "syscalls", f"sys_enter_{call}", "format")) as f:
            fields = [line for line in f if line.strip().startswith("field:")]
    except OSError:
        return 6
    return sum(1 for line in fields if " common_" not in line and "__syscall_nr;" not in line)


def _kernel_functions(probe: Probe) -> list[Target]:
    from bpfkit import _native

    if probe.is_literal:
        fn = probe.pattern
        if fn.startswith("sys_") and syscall_prefix() != "sys_":
            # BCC's fix_syscall_fnname: sys_getppid means this kernel's __x64_sys_getppid
            # (looked up first: a name kallsyms lacks costs a read of all of it).
            fixed = syscall_prefix() + syscall_of(fn)
            if _native.ksymname(fixed) is not None:
                fn = fixed
        elif _native.ksymname(fn) is None and syscall_of(fn):
            fixed = syscall_prefix() + syscall_of(fn)
            if _native.ksymname(fixed) is not None:
                fn = fixed
        if _native.ksymname(fn) is None:
            return []
        names = [fn]
    else:
        from bpfkit._attach_kernel import kprobe_functions_matching

        names = sorted(kprobe_functions_matching(probe.matcher()))
    if not names:
        return []
    kind = probe.kind
    via = ""
    if kind in ("fentry", "fexit"):
        # The core's probe, not bpfkit.features (which imports dataclasses, typing and re).
        ok, _errno, reason = _native.probe_feature(kind)
        if not ok:
            # Without BPF trampolines, a kprobe sees the same entry and return.
            kind = "kretprobe" if kind == "fexit" else "kprobe"
            via = f"{probe.kind} unavailable ({reason}): a {kind} instead"
    if kind in ("kprobe", "kretprobe"):
        why = _native.kprobes_unavailable()
        if why is not None:
            return _syscall_tracepoints(probe, names, kind, why)
    return [Target(probe, kind, fn, via=via) for fn in names]


def _syscall_tracepoints(probe: Probe, names: list[str], kind: str, why: str) -> list[Target]:
    """The kernel has no kprobes: each system call entry point among ``names`` is reached
    through its ``syscalls`` tracepoint; anything else is refused, naming the feature."""
    from bpfkit import _native

    out: list[Target] = []
    refused: list[str] = []
    for fn in names:
        call = syscall_of(fn)
        event = f"sys_{'exit' if kind == 'kretprobe' else 'enter'}_{call}" if call else ""
        if event and _native.tracepoint_exists("syscalls", event):
            via = f"no kprobes here: syscalls:{event} stands in for the {kind} on {fn}"
            out.append(Target(probe, "tracepoint", fn, event=f"syscalls:{event}", syscall=call,
                              nargs=syscall_arg_count(call), via=via))
        else:
            refused.append(fn)
    if refused and not out:
        from bpfkit import features

        which = refused[0] if len(refused) == 1 else f"{len(refused)} kernel functions ({refused[0]}, ...)"
        raise features.refusal("kprobes", f"{probe.spec}: a {kind} on {which} is not possible: {why}")
    if refused:
        from bpfkit import _logs

        _logs.warning("%s: %d kernel function(s) left out, kprobes being unavailable: %s", probe.spec,
                      len(refused), ", ".join(refused[:5]) + (", ..." if len(refused) > 5 else ""))
    return out


def binary_path(probe: Probe) -> str:
    """The file of a user-space probe's library (a path, or a short name looked up in the
    process's mappings, ld.so.cache, the library directories and PATH)."""
    from bpfkit._attach_user import resolve_binary

    return resolve_binary(probe.library, probe.pid)


def _user_functions(probe: Probe) -> list[Target]:
    from bpfkit import _native
    from bpfkit._attach_user import _avx_encoded, _symbol_targets

    path = binary_path(probe)
    info = _native.open_elf(path)
    kind = "uretprobe" if probe.kind == "uretprobe" else "uprobe"
    if probe.is_literal:
        # The attach call resolves it again (versions, IFUNCs, C++ names): here it is checked, so
        # that an unknown name is refused before anything is compiled, with the names it resembles.
        _symbol_targets(info, probe.pattern, 0)
        return [Target(probe, kind, probe.pattern, path=path)]
    match = probe.matcher()
    demangled = info.demangled()
    by_address: dict[int, Any] = {}
    skipped: list[str] = []
    # Every sized function whose name (or demangled name) matches, one probe per address (a
    # symbol in both tables, or an alias, is one function), .dynsym names first.
    for s in sorted(info.functions(), key=lambda s: (s.table != "dynsym", s.bind != "global", s.value)):
        if s.size == 0 or s.value in by_address:
            continue
        d = demangled.get(s.base_name)
        if not (match(s.base_name) or (d is not None and match(d))):
            continue
        if not s.is_ifunc:
            off = info.vaddr_to_offset(s.value)
            if off is None:
                continue
            if _avx_encoded(info, off):
                skipped.append(s.base_name)  # the kernel mis-steps these (see _attach_user)
                continue
        by_address[s.value] = s
    if skipped:
        from bpfkit import _logs

        _logs.warning("%s: not probing %d function(s) whose first instruction is AVX-encoded (uprobes mis-step "
                      "those): %s", probe.spec, len(skipped), ", ".join(skipped[:5]))
    names: dict[str, int] = {}
    for s in by_address.values():
        names[s.base_name] = names.get(s.base_name, 0) + 1
    out = []
    for addr, s in sorted(by_address.items()):
        # Two addresses of one name (memcpy@GLIBC_2.2.5 and memcpy@@GLIBC_2.14): the versions
        # tell them apart. An IFUNC goes by its name: the attach call runs its resolver.
        name = s.versioned_name if names[s.base_name] > 1 else s.base_name
        out.append(Target(probe, kind, name, function=s.versioned_name if s.is_ifunc else name, path=path,
                          address=None if s.is_ifunc else addr))
    return out


def _usdt(probe: Probe, *, quiet: bool = False) -> list[Target]:
    """The USDT probes of the probe's binary (or of every binary process ``pid`` maps) whose
    ``name`` (or ``provider:name``, when the pattern has a ``:``) matches."""
    from bpfkit.usdt import USDT

    try:
        ctx = USDT(pid=probe.pid, path=binary_path(probe) if probe.library else None)
        found = ctx.enumerate_probes()
    except AttachError:
        if quiet:
            return []
        raise
    match = probe.matcher()
    by_name = ":" in probe.pattern
    out: list[Target] = []
    seen: set = set()
    for p in found:
        if p.full_name in seen or not match(p.full_name if by_name else p.name):
            continue
        seen.add(p.full_name)
        # Named as BCC's funccount names it (the probe's name); attached by provider:name.
        out.append(Target(probe.replace(kind="usdt", usdt_alias=False) if probe.usdt_alias else probe, "usdt",
                          p.name, path=ctx.path or "", function=p.full_name))
    return out
