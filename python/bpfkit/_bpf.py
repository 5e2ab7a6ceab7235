"""The :class:`BPF` object: compile, load, attach, and reach the maps, with BCC's names."""

from __future__ import annotations

import errno as _errno
import math
import os
import stat
import sys
import time

# collections.abc is this module re-exported; importing the collections package would cost
# every tool's start ~3 ms, and os has already imported this one.
from _collections_abc import Mapping as _Mapping

from . import _logs as log
from . import _native
from ._attach_base import _s
from ._attach_kernel import KernelAttachMixin
from ._attach_net import NetAttachMixin
from ._attach_user import UserAttachMixin
from ._errors import AttachError, ClosedError, CompileError, LoadError, MapError, NotSupportedError

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator, Mapping, Optional, Union

__all__ = ["BPF", "DEBUG_LLVM_IR", "DEBUG_BPF", "DEBUG_PREPROCESSOR", "DEBUG_SOURCE", "DEBUG_BPF_REGISTER_STATE"]


# BCC's debug flags, with the same values.
DEBUG_LLVM_IR = 0x1  #: print the LLVM IR
DEBUG_BPF = 0x2  #: print the verifier log of every program
DEBUG_PREPROCESSOR = 0x4  #: print the preprocessed C
DEBUG_SOURCE = 0x8  #: print the BPF assembly
DEBUG_BPF_REGISTER_STATE = 0x10  #: print the verifier log with register state at each instruction

#: The names that tie a map slot to a pinned map (see ``BPF._bind_pinned``).
PINNED_PREFIX = "__bpfkit_pinned__"
PIN_PATH_PREFIX = "__bpfkit_pin_path__"

if TYPE_CHECKING:
    StrPath = Union[str, bytes, "os.PathLike[str]"]
else:
    StrPath = object



def _path(p: StrPath) -> str:
    """A path argument as str (bytes through the file system encoding, as ``open`` does). Plain
    ``os.path``, not pathlib: pathlib would cost every tool's start ~10 ms of imports."""
    return os.fsdecode(p) if isinstance(p, bytes) else os.fspath(p)


def _pins(source: str) -> list:
    """``[(table, path)]`` of a BCC program's BPF_TABLE_PINNED tables, as its translation lists
    them at its end (``/* bpfkit-pin NAME PATH */``)."""
    out = []
    for line in source[-4096:].splitlines()[::-1]:
        if line.startswith("/* bpfkit-pin ") and line.endswith(" */"):
            name, _, path = line[len("/* bpfkit-pin "):-3].partition(" ")
            out.append((name, path))
        elif not line.startswith("/* bpfkit-record "):
            break
    return out[::-1]


def _display(path: str) -> str:
    """A path as text for messages, whatever bytes it holds."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _read_source(path: str, what: str) -> bytes:
    """The bytes of source file ``path``, which must be a regular file: a FIFO or a device could
    block the read forever or never end. Checked before opening and again on the opened file
    (opened non-blocking, so even a FIFO swapped in between cannot block)."""

    def refuse(mode: int) -> ValueError:
        kind = next((k for test, k in _FILE_KINDS if test(mode)), "not a regular file")
        return ValueError(f"{what} {_display(path)!r} is {kind}: only a regular file can be read as source")

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise refuse(st.st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse(st.st_mode)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _source_text(data: str | bytes, display: str) -> str:
    """C source as text. Bytes must be UTF-8: otherwise CompileError says which byte, where."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as e:
            line = data.count("\n", 0, e.start) + 1
            col = e.start - (data.rfind("\n", 0, e.start) + 1) + 1
            raise CompileError(f"{display}: the source is not valid text: {e.reason} "
                               f"({data[e.start]!r}) at line {line}, column {col}") from None
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise CompileError(f"{display}: the source is not UTF-8: byte {data[e.start]:#04x} at line {line}, "
                           f"column {col} (offset {e.start})") from None


def _zig_path() -> Optional[str]:
    """The zig binary of the ``ziglang`` package, when installed (a BPF compiler of last resort).
    Found on ``sys.path`` as the import system would find the package, without importing
    ``importlib.util`` (which would cost every tool's start several milliseconds)."""
    for entry in sys.path:
        p = os.path.join(entry or ".", "ziglang", "zig")
        try:
            if os.path.isfile(p):
                return p
        except OSError:  # an unreadable entry (a directory of another user's, say)
            continue
    return None


def _format_sym(r: Optional[tuple], show_module: bool, show_offset: bool, default_module: str) -> str:
    if r is None:
        return "[unknown]"
    name, offset, module = r
    out = name
    if show_offset:
        out += f"+{offset:#x}"
    if show_module:
        out += f" [{module or default_module}]"
    return out


def _hook_function(sec: Any) -> Optional[str]:
    """The kernel function that a kprobe, fentry, fexit, fmod_ret or ksyscall section (a
    ``_native.Section``) hooks, or None: other kinds, and functions of modules (``mod:func``)."""
    if sec.kind in ("ksyscall", "kretsyscall"):
        return KernelAttachMixin.get_syscall_prefix() + sec.target
    if sec.kind in ("kprobe", "kretprobe", "fentry", "fexit", "fmod_ret"):
        func = sec.kprobe_function[0] if sec.kprobe_function is not None else sec.target
        return func if func and ":" not in func else None
    return None


def _check_required(alternatives: dict, sections: dict) -> None:
    """Where ``BPFKIT_REQUIRE_FEATURES`` names the features this kernel must have (the qemu
    kernels of the tests), a ladder may not pass over a rung that needs one of them, whatever the
    reason but one: the rung's function does not exist in this kernel (renamed, or inlined), which
    no kernel feature can change. A tool that falls back otherwise would hide a broken kprobe or
    fentry rung behind its tracepoint. Raises NotSupportedError naming the rung, its feature and
    why it was passed over."""
    required = os.environ.get("BPFKIT_REQUIRE_FEATURES")
    if not required:
        return
    need = {f.strip() for f in required.split(",") if f.strip()}
    for alt in alternatives.values():
        for q, why in alt.passed_over:
            sec = _native.Section(sections[q])
            f = sec.feature
            func = _hook_function(sec)
            if f in need and (func is None or _native.ksymname(func) is not None):
                raise NotSupportedError(
                    f"fallback ladder passed over `{q}` ({sections[q]}) for `{alt.program}`, but {f} is required "
                    f"here (BPFKIT_REQUIRE_FEATURES): {why}", _errno.EOPNOTSUPP)


class Alternative:
    """What a fallback ladder chose: ``program``; ``passed_over``, ``[(program, why)]`` for each
    better alternative the kernel does not support; and ``candidates``, the whole ladder."""

    def __init__(self, program: str, passed_over: list, candidates: Optional[list] = None) -> None:
        self.program = program
        self.passed_over = passed_over
        self.candidates = list(candidates or [program])

    def __repr__(self) -> str:
        return f"Alternative({self.program!r}, passed_over={[p for p, _ in self.passed_over]!r})"


def _predict(section: str) -> Optional[str]:
    """Why a program in ``section`` cannot work on this kernel, by the feature probes and the
    hook's existence, or None when it may (loading and attaching have the last word)."""
    sec = _native.Section(section)
    need = sec.feature
    if need and need != "uprobes":
        # The probe's answer earlier in this boot, if any (a prediction: a load that the kernel
        # then refuses still rules the rung out); `bpfkit.features` is not imported for this.
        ok, _errno_, reason = _native.probe_feature(need, remembered=True)
        if not ok:
            return f"{need}: {reason}"
    # A kprobe's function only. A lookup scans kallsyms up to the name (5-70 ms here): an
    # fentry or ksyscall rung, the first rung of most tools, is not checked, so that a tool does
    # not pay that on every start; a missing function is refused at load or attach instead, and
    # the ladder moves on. (_check_required, in the tests, does look them up.)
    if sec.kprobe_function is not None:
        func = sec.kprobe_function[0]
        if _native.ksymname(func) is None:
            return f"kernel function {func} does not exist here"
    if sec.tracepoint is not None:
        cat, ev = sec.tracepoint
        if not _native.tracepoint_exists(cat, ev):
            return f"tracepoint {cat}:{ev} does not exist here"
    return None


def _import_map_classes() -> None:
    """Imports the map classes (``bpfkit.table``, with ctypes) after the object loads and before
    anything is attached: lazily, for what does not use them, yet never while a program of this
    process is attached, where the files the import opens would be among what it sees. (A tool
    imports them in another thread while its object loads: see ``tools/_kit.py``.)"""
    from . import table  # noqa: F401


class BPF(KernelAttachMixin, UserAttachMixin, NetAttachMixin):
    """A BPF program compiled from C, loaded, and attached.

    >>> from bpfkit import BPF
    >>> with BPF(text='''
    ... struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
    ...          __type(key, u32); __type(value, u64); } calls SEC(".maps");
    ... SEC("tracepoint/syscalls/sys_enter_getppid")
    ... int count(void *ctx) { u32 k = 0; u64 *v = bpf_map_lookup_elem(&calls, &k);
    ...                        if (v) __sync_fetch_and_add(v, 1); return 0; }
    ... ''') as b:
    ...     os.getppid()
    ...     print(b["calls"][0].value)

    The C needs no includes: the kernel's types (from its BTF), libbpf's ``bpf_helpers.h``,
    ``bpf_tracing.h``, ``bpf_core_read.h``, ``bpf_endian.h`` and ``bpfkit.h`` are all there.
    Programs whose ``SEC()`` names a hook are attached on load unless ``autoattach=False``.

    ``consts`` sets ``const volatile`` globals before load (no recompile), and ``map_sizes``
    (``{"stacks": 16384}``) maps' entries (no recompile either); ``debug`` takes BCC's
    ``DEBUG_*`` flags.

    BCC's C dialect is translated first (``dialect="auto"`` recognises it; ``"bcc"`` or
    ``"libbpf"`` says which it is): ``BPF_HASH(counts, u32); ... counts.increment(key);``,
    ``TRACEPOINT_PROBE(random, urandom_read) { ... args->got_bits ... }``, ``kprobe__fn``
    functions, ``#include <linux/sched.h>`` (the kernel's types come from its BTF).

    ``alternatives`` names fallback ladders: each a sequence of programs that implement the same
    hook in different ways, best first (say an fentry, a kprobe and a tracepoint program).
    bpfkit loads and attaches the first one this kernel supports, leaving the others unloaded,
    and records what it chose and why in :attr:`alternatives`. A tool written once thus runs on
    kernels with fentry, kernels with only kprobes, and kernels with neither. The chosen programs
    are attached even with ``autoattach=False``: attaching is part of proving a rung works.
    """

    def __init__(self, src_file: StrPath = "", hdr_file: StrPath = "", text: Union[str, bytes, None] = None,
                 debug: int = 0, cflags: Optional[Iterable[str]] = None, usdt_contexts: Optional[list] = None,
                 allow_rlimit: bool = True, device: Any = None, attach_usdt_ignore_pid: bool = False, *,
                 consts: Optional[Mapping[str, Any]] = None, autoattach: bool = True,
                 name: Optional[str] = None, cache_dir: Optional[StrPath] = None,
                 alternatives: Optional[Iterable[Iterable[str]]] = None, dialect: str = "auto",
                 map_sizes: Optional[Mapping[str, int]] = None) -> None:
        self._obj: Any = None
        self._tables: dict[str, Any] = {}
        self._streams: list = []  # event tables with an open stream
        self.debug = debug
        if consts is not None and not isinstance(consts, _Mapping):
            raise TypeError(f"consts= takes a mapping of global names to values, not {type(consts).__name__}")
        usdts = list(usdt_contexts or ())
        bad = [c for c in usdts if not hasattr(c, "_attach")]
        if bad:
            raise TypeError(f"usdt_contexts= takes bpfkit.USDT objects, not {type(bad[0]).__name__}")
        src_dir: Optional[str] = None
        if text is not None:
            display = "<text>"
            source = _source_text(text if isinstance(text, (str, bytes)) else _s(text), display)
        elif src_file:
            path = _path(src_file)
            if not os.path.isabs(path) and not os.path.exists(path) and sys.argv and sys.argv[0]:
                # As BCC: a relative src_file is also looked for beside the running script.
                beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), path)
                if os.path.exists(beside):
                    path = beside
            display = _display(path)
            source = _source_text(_read_source(path, "src_file"), display)
            src_dir = os.path.dirname(os.path.realpath(path))
        else:
            raise ValueError("BPF() needs text= or src_file=")
        if hdr_file:
            hdr = _path(hdr_file)
            source = _source_text(_read_source(hdr, "hdr_file"), _display(hdr)) + "\n" + source
        flags = [_s(f) for f in (cflags or [])]
        zig = _zig_path()
        if dialect not in ("auto", "bcc", "libbpf"):
            raise ValueError(f"dialect= is 'auto', 'bcc' or 'libbpf', not {dialect!r}")
        if dialect == "bcc" or (dialect == "auto" and _native.is_bcc(source)):
            # BCC's C (BPF_HASH, counts.increment(k), TRACEPOINT_PROBE, kprobe__fn, ...) as
            # libbpf C on CO-RE; the user's lines keep their numbers (see rust/core/bcc.rs).
            source = _native.bcc_translate(source, display, cflags=flags, zig=zig, source_dir=src_dir,
                                           cache_dir=_s(cache_dir) if cache_dir else None)
        for bit, emit in ((DEBUG_PREPROCESSOR, "preprocessed"), (DEBUG_LLVM_IR, "llvm-ir"), (DEBUG_SOURCE, "asm")):
            if debug & bit:
                print(_native.compile_text(source, emit, display_name=display, cflags=flags, zig=zig,
                                           source_dir=src_dir), file=sys.stderr)
        obj, cached, header, warnings, _key = _native.compile(
            source, display_name=display, cflags=flags, zig=zig, source_dir=src_dir,
            cache_dir=_s(cache_dir) if cache_dir else None)
        if warnings.strip():
            log.debug("clang warnings:\n%s", warnings)
        log.debug("compiled %s (%s)", display, "cached" if cached else f"{header} header")
        self.object_bytes: bytes = obj
        self._source = source
        log_level = 2 if debug & DEBUG_BPF_REGISTER_STATE else (1 if debug & DEBUG_BPF else 0)
        load_args = dict(name=name or "bpfkit", consts=list((consts or {}).items()), log_level=log_level,
                         cache_dir=_s(cache_dir) if cache_dir else None)
        if map_sizes:
            if not isinstance(map_sizes, _Mapping):
                raise TypeError(f"map_sizes= takes a mapping of map names to entries, not {type(map_sizes).__name__}")
            load_args["map_sizes"] = [(_s(k), int(v)) for k, v in map_sizes.items()]
        pins = _pins(source)
        if pins:
            # BCC's BPF_TABLE_PINNED: maps pinned where the program says, on the BPF file system.
            _native.ensure_mounted("bpffs")
            load_args["pins"] = pins
        #: for each fallback ladder, keyed by its first program: the program chosen and
        #: ``[(program, why not)]`` for the alternatives passed over.
        self.alternatives: dict[str, Alternative] = {}
        if alternatives:
            self._load_ladders(obj, [[_s(p) for p in group] for group in alternatives], load_args, autoattach)
        else:
            self._obj = _native.Object.load(obj, **load_args)
            _import_map_classes()
        try:
            self._bind_pinned()
            if autoattach and not alternatives:
                self._obj.autoattach()
            # BCC's USDT contexts: each attaches the probes it enabled (USDT.enable_probe).
            for ctx in usdts:
                ctx._attach(self, ignore_pid=attach_usdt_ignore_pid)
        except BaseException:
            self.close()
            raise

    # -- fallback ladders ----------------------------------------------------------------------
    def _load_ladders(self, obj: bytes, groups: list, load_args: dict, autoattach: bool) -> None:
        """Loads the object with one program per ladder, the first the kernel takes: programs
        the feature probes rule out are skipped before loading; a chosen program the kernel then
        refuses (load, verifier, or attach) is ruled out and the object loaded again."""
        sections = dict(_native.object_programs(obj))
        members = [p for g in groups for p in g]
        for p in members:
            if p not in sections:
                raise ValueError(f"alternatives name `{p}`, which is not a program of the object "
                                 f"(programs: {', '.join(sections)})")
        if len(set(members)) != len(members):
            raise ValueError("a program appears in more than one place in alternatives")
        rejected: dict[str, str] = {}
        while True:
            chosen = []
            for g in groups:
                for p in g:
                    if p in rejected:
                        continue
                    why = _predict(sections[p])
                    if why is None:
                        chosen.append(p)
                        break
                    rejected[p] = why
                else:
                    raise NotSupportedError(
                        f"no alternative for `{g[0]}` works on this kernel ({os.uname().release}): "
                        + "; ".join(f"{p}: {rejected[p]}" for p in g), _errno.EOPNOTSUPP)
            off = [p for p in members if p not in chosen]
            try:
                self._obj = _native.Object.load(obj, autoload_off=off, **load_args)
            except (LoadError, NotSupportedError) as e:
                if e.program in chosen:
                    rejected[e.program] = str(e)
                    continue
                raise
            failed = None
            _import_map_classes()
            try:
                if autoattach:
                    self._obj.autoattach(skip=members)
                for p in chosen:
                    try:
                        self._obj.attach_section(p)
                    except (AttachError, NotSupportedError) as e:
                        failed = (p, str(e))
                        break
            except BaseException:
                self._obj.close()
                raise
            if failed:
                self._obj.close()
                rejected[failed[0]] = failed[1]
                continue
            for g, p in zip(groups, chosen):
                self.alternatives[g[0]] = Alternative(p, [(q, rejected[q]) for q in g if q in rejected], g)
            try:
                _check_required(self.alternatives, sections)
            except BaseException:
                self._obj.close()
                raise
            for g, p in zip(groups, chosen):
                passed = self.alternatives[g[0]].passed_over
                log.info("alternatives for %s: using %s%s", g[0], p,
                         "".join(f"; not {q}: {why}" for q, why in passed))
            return

    def chosen(self, program: str) -> str:
        """The program a fallback ladder chose, given any program of the ladder."""
        for alt in self.alternatives.values():
            if program in alt.candidates:
                return alt.program
        raise KeyError(f"`{program}` is in no fallback ladder")

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Detaches every program and releases every fd, at once. Idempotent."""
        self._close_net()  # the raw sockets attach_raw_socket() opened
        if self._obj is not None:
            self._obj.close()
        self._tables.clear()
        self._streams.clear()
        tf = getattr(self, "_trace_file", None)
        if tf is not None:
            tf.close()
            self._trace_file = None

    cleanup = close  # BCC's name

    @property
    def closed(self) -> bool:
        return self._obj is None or self._obj.closed

    def __enter__(self) -> "BPF":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- maps --------------------------------------------------------------------------------
    def get_table(self, name: Union[str, bytes], keytype: Any = None, leaftype: Any = None, reducer: Any = None) -> Any:
        """The map ``name`` as a mapping (see :mod:`bpfkit.table`)."""
        n = _s(name)
        t = self._tables.get(n)
        if t is None or keytype is not None or leaftype is not None:
            try:
                m = self._obj.map(n)
            except ValueError as e:
                raise KeyError(str(e)) from None
            from .table import make_table  # here: the map classes (and ctypes) cost a start ~5 ms

            t = make_table(self, m, keytype, leaftype)
            if keytype is None and leaftype is None:
                self._tables[n] = t
        return t

    def __getitem__(self, name: Union[str, bytes]) -> Any:
        return self.get_table(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, (str, bytes)) and _s(name) in self._map_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._map_names())

    def __len__(self) -> int:
        return len(self._map_names())

    def _map_names(self) -> list:
        return [m.name for m in self._obj.maps() if not m.internal]

    # -- globals -----------------------------------------------------------------------------
    def get_global(self, name: str) -> Any:
        """The current value of a global: an int for integers, else a ctypes object."""
        from ._btftypes import ctype_of

        _sec, desc = self._obj.global_info(name)
        raw = self._obj.read_global(name)
        v = ctype_of(desc).from_buffer_copy(raw)
        return v.value if hasattr(v, "value") and not hasattr(v, "_length_") else v

    def set_global(self, name: str, value: Any) -> None:
        """Writes a ``.data``/``.bss`` global (``const volatile`` ones are set with ``consts=``)."""
        from ._btftypes import ctype_of
        from ._values import to_bytes

        _sec, desc = self._obj.global_info(name)
        self._obj.write_global(name, to_bytes(ctype_of(desc), value, "value", f"global `{name}`"))

    # -- programs and attachments ------------------------------------------------------------
    def programs(self) -> list:
        """``[(name, section)]`` of every program."""
        return [(p.name, p.section.raw) for p in self._obj.programs()]

    def dump_func(self, func_name: Union[str, bytes]) -> bytes:
        """The instructions of program ``func_name`` as loaded (8 bytes each, as BCC's
        ``dump_func``): CO-RE-relocated for this kernel, subprograms appended, map fds in place.

        >>> len(b.dump_func("count_opens")) % 8
        0
        """
        return self._obj.program_insns(_s(func_name))

    def links(self) -> list:
        """Every attachment, as typed ``Link`` values: ``id``, ``kind``, ``target``, ``program``
        and the hook's own fields (``path``, ``offsets``, ``pid``, ``ifindex``, ...). Each is
        also the tuple ``(kind, target, program)``.

        >>> [(lk.kind, lk.target) for lk in b.links()]
        [('tracepoint', 'syscalls:sys_enter_openat')]
        """
        return list(self._obj.links())

    def detach_link(self, link: Any) -> None:
        """Detaches one attachment, given as a ``Link`` from :meth:`links` or its id."""
        lid = link if isinstance(link, int) and not isinstance(link, bool) else getattr(link, "id", None)
        if not isinstance(lid, int):
            raise TypeError(f"detach_link() takes a Link or its id, not {type(link).__name__}")
        if not self._obj.detach_id(lid):
            raise ValueError(f"no attachment with id {lid} in this object")

    def _detach(self, kind: str, target: str, fn_name: Optional[str]) -> None:
        n = self._obj.detach(kind, target, _s(fn_name) if fn_name else None)
        if n == 0:
            raise ValueError(f"no {kind} attached to {target}")

    # -- events ------------------------------------------------------------------------------
    def _poll(self, kind: str, timeout: int) -> int:
        if self.closed:
            raise ClosedError(f"{'ring' if kind == 'ring' else 'perf'}_buffer_poll() on a closed BPF object",
                              _errno.EBADF)
        tables = [t for t in self._streams if t._kind == kind and t._callback is not None]
        if not tables:
            raise ValueError(f"no {'ring' if kind == 'ring' else 'perf'} buffer is open: call "
                             f"{'open_ring_buffer' if kind == 'ring' else 'open_perf_buffer'}() first")
        streams = [t._stream for t in tables]
        # The streams' pump threads drain the kernel buffers into queues; wait (GIL released) for
        # one to have records, then run the callbacks for what is queued, until the deadline.
        deadline = time.monotonic() + timeout / 1000 if timeout > 0 else None
        if timeout == 0:
            for st in streams:
                st.fill(0)  # what is in the kernel buffer now, not only what was pumped
        else:
            while not any(st.queued for st in streams):
                for st in streams:
                    if st.pumped:
                        st.rearm()
                left = -1 if deadline is None else math.ceil((deadline - time.monotonic()) * 1000)
                if deadline is not None and left <= 0:
                    break
                # Raises ClosedError at once when close() runs meanwhile, from any thread.
                _native.wait_streams(streams, left)
                for st in streams:
                    if not st.pumped:
                        st.fill(0)
        n = 0
        for t in tables:
            if t._stream.queued:
                # dispatch() stops at the deadline; what is left stays queued for the next poll.
                t._stream.deadline = deadline
                try:
                    n += t._dispatch()
                finally:
                    t._stream.deadline = None
        return n

    def ring_buffer_poll(self, timeout: int = -1) -> int:
        """Waits up to ``timeout`` ms (-1: forever) for ring buffer records and runs the callbacks,
        returning within about ``timeout`` even with a backlog (records not handled by then stay
        queued for the next poll). The GIL is released while waiting; Ctrl-C raises
        KeyboardInterrupt at once; ``close()`` from another thread makes it raise
        :class:`ClosedError` at once, as does polling a closed object; a callback's exception
        propagates (the records after it stay queued). Returns the records handled.

        A callback's ``data`` is a :class:`bpfkit._native.Record`, valid during the call only:
        decode it with ``table.event(data)`` or copy it with ``bytes(data)`` there."""
        return self._poll("ring", timeout)

    def ring_buffer_consume(self) -> int:
        """Runs the ring buffer callbacks for every record available now (at most what the
        stream's queue holds: see ``max_queued_bytes``)."""
        return self._poll("ring", 0)

    def perf_buffer_poll(self, timeout: int = -1) -> int:
        """As :meth:`ring_buffer_poll`, for perf buffers; lost samples reach ``lost_cb``."""
        return self._poll("perf", timeout)

    def perf_buffer_consume(self) -> int:
        """Runs the perf buffer callbacks for every sample available now."""
        return self._poll("perf", 0)

    def _guess_record(self, table: str) -> str:
        """The record type of an event map, when the source makes it unambiguous: the one struct
        the source defines that is neither a map's key or value nor a part of another struct.
        The structs are those the compiler's scanner finds (it also anchors them in BTF)."""
        # A BCC program's translation names the struct each event map's calls submit.
        marked = f"/* bpfkit-record {table} "
        for line in self._source.splitlines()[::-1]:
            if line.startswith(marked) and self._obj.find_struct(line[len(marked):-3]) is not None:
                return line[len(marked):-3]
            if not line.startswith("/* bpfkit-"):
                break
        # (tracepoint__cat__event: the `args` of a BCC TRACEPOINT_PROBE, a context, not a record;
        # NAME___flavour: CO-RE's view of a kernel struct, read from the kernel, never sent)
        defined = [n for n in _native.defined_structs(self._source)
                   if self._obj.find_struct(n) is not None and not n.startswith("tracepoint__") and "___" not in n]
        used = set()
        for m in self._obj.maps():
            for tid in (m.key_type_id, m.value_type_id):
                if tid:
                    d = self._obj.describe_type(tid)
                    if d.get("name"):
                        used.add(d["name"])
        cands = [n for n in defined if n not in used] or defined
        # A struct nested in another candidate is a part, not the record.
        nested: set = set()

        def walk(d: dict) -> None:
            for m in d.get("members", ()):
                t = m["type"]
                while t["kind"] == "array":
                    t = t["elem"]
                if t["kind"] in ("struct", "union"):
                    nested.add(t.get("name"))
                    walk(t)

        for n in cands:
            walk(self._obj.describe_type(self._obj.find_struct(n)))
        cands = [n for n in cands if n not in nested] or cands
        if len(cands) == 1:
            return cands[0]
        raise ValueError(
            f"cannot tell the record type of `{table}`: the source defines "
            f"{', '.join('struct ' + n for n in cands) or 'no struct'}; pass record='struct NAME'")

    # -- trace_pipe (bpf_printk output) --------------------------------------------------------
    _TRACE_RE = None

    def trace_open(self) -> Any:
        """Opens the kernel's trace_pipe (mounting tracefs if needed), where ``bpf_printk``
        writes. Reading it consumes the lines: only one reader on the machine sees each."""
        tf = getattr(self, "_trace_file", None)
        if tf is None:
            _native.ensure_mounted("tracefs")
            fd = os.open("/sys/kernel/tracing/trace_pipe", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            tf = self._trace_file = os.fdopen(fd, "rb", buffering=0)
            self._trace_buf = b""
        return tf

    def trace_readline(self, nonblocking: bool = False, timeout: Optional[float] = None) -> Optional[str]:
        """The next line of trace_pipe, without its newline. With ``nonblocking``, None when
        none is waiting; otherwise waits, up to ``timeout`` seconds if given (then None), with
        the GIL released and Ctrl-C working."""
        import select

        tf = self.trace_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._trace_buf:
            try:
                chunk = tf.read(65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                self._trace_buf += chunk
                continue
            if nonblocking or (deadline is not None and time.monotonic() >= deadline):
                return None
            select.select([tf], [], [], 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
        line, _, self._trace_buf = self._trace_buf.partition(b"\n")
        return line.decode(errors="replace")

    def trace_fields(self, nonblocking: bool = False, timeout: Optional[float] = None) -> Optional[tuple]:
        """The next ``bpf_printk`` line split as BCC does: ``(task, pid, cpu, flags, ts, msg)``.
        Lines that are not in the trace format are skipped."""
        import re

        if BPF._TRACE_RE is None:
            BPF._TRACE_RE = re.compile(
                r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?P<flags>\S+)\s+"
                r"(?P<ts>\d+\.\d+):\s+(?:[^:]+:\s)?(?P<msg>.*)$")
        while True:
            line = BPF.trace_readline(self, nonblocking, timeout)
            if line is None:
                return None
            m = BPF._TRACE_RE.match(line)
            if m:
                return (m["task"], int(m["pid"]), int(m["cpu"]), m["flags"], float(m["ts"]), m["msg"])

    def trace_print(self, fmt: Optional[str] = None) -> None:
        """Prints trace_pipe lines until Ctrl-C; ``fmt`` formats the fields as BCC's does
        (``"{0} {5}"``: task and message; fields are task, pid, cpu, flags, ts, msg)."""
        try:
            while True:
                if fmt:
                    fields = BPF.trace_fields(self)
                    if fields is None:
                        continue
                    print(fmt.format(*fields), flush=True)
                else:
                    print(BPF.trace_readline(self), flush=True)
        except KeyboardInterrupt:
            pass

    # -- symbols -------------------------------------------------------------------------------
    @staticmethod
    def ksym(addr: int, show_module: bool = False, show_offset: bool = False) -> str:
        """The kernel symbol containing ``addr`` (from /proc/kallsyms, read once), as BCC's:
        ``"name"``, ``"name+0x1a"`` with ``show_offset``, ``"name [module]"`` with ``show_module``;
        ``"[unknown]"`` when none."""
        from ._attach_base import U64, _int

        r = _native.ksym(_int(addr, "addr", *U64))
        return _format_sym(r, show_module, show_offset, "kernel")

    @staticmethod
    def ksymname(name: Union[str, bytes]) -> int:
        """The address of kernel symbol ``name``, or -1 (as BCC)."""
        a = _native.ksymname(_s(name))
        return -1 if a is None else a

    @staticmethod
    def sym(addr: int, pid: int, show_module: bool = False, show_offset: bool = False,
            demangle: bool = True) -> str:
        """The symbol containing ``addr`` in process ``pid`` (ELF symbols, DWARF, build ids,
        through blazesym), demangled unless ``demangle=False``; ``"[unknown]"`` when none. A
        process that has exited is named through the mappings :meth:`remember_process` saw
        while it lived, and is ``"[unknown]"`` without them.
        A negative ``pid`` means the kernel, as in BCC."""
        from ._attach_base import I32, U64, _int

        addr = _int(addr, "addr", *U64)
        pid = -1 if pid is None else _int(pid, "pid", *I32)
        if pid < 0:
            return BPF.ksym(addr, show_module, show_offset)
        try:
            r = _native.usym(addr, pid, demangle)
        except ValueError:
            if os.path.exists(f"/proc/{pid}"):
                raise
            r = None  # the process is gone with its mappings (BCC prints the same)
        return _format_sym(r, show_module, show_offset, "")

    @staticmethod
    def remember_process(pid: int) -> bool:
        """Remembers where process ``pid``'s executable files are mapped, so that :meth:`sym`
        still names its addresses after it exits (a stack tool calls this for the pids it sees
        while it samples). False when the process is already gone."""
        from ._attach_base import I32, _int

        return _native.remember_process(_int(pid, "pid", 0, I32[1]))

    # -- BCC compatibility helpers -----------------------------------------------------------
    def _bind_pinned(self) -> None:
        """Fills the pinned-map slots of the object (see :mod:`bpfkit.bcc.containers`): an
        array of maps named ``__bpfkit_pinned__NAME`` whose one slot is given the map pinned at
        the path the ``.rodata`` string ``__bpfkit_pin_path__NAME`` holds. The programs then
        read the pinned map itself, live, as BCC's ``BPF_TABLE_PINNED`` does. An empty path
        leaves the slot empty (the bundled tools' ``--cgroupmap`` and ``--mntnsmap`` when not
        given: the program does not read it then). A missing pin, or a map the kernel will not
        put in the slot (another key or value size or flags than the slot's template), raises
        :class:`~bpfkit.MapError` (the object is closed)."""
        for m in self._obj.maps():
            if not m.name.startswith(PINNED_PREFIX):
                continue
            name = m.name[len(PINNED_PREFIX):]
            path = os.fsdecode(self._obj.read_global(PIN_PATH_PREFIX + name).split(b"\0", 1)[0])
            if not path:
                continue
            inner = _native.open_pinned_map(path)
            # The outer map keeps its own reference to the inner map: the fd can close.
            try:
                self._obj.map(m.name).update(bytes(4), inner.fd.to_bytes(4, sys.byteorder), 0)
            except MapError as e:
                raise MapError(f"the map pinned at {_display(path)} does not fit {name} (a {inner.map_type}-type map "
                               f"with {inner.key_size}-byte keys, {inner.value_size}-byte values and flags "
                               f"{inner.flags:#x}): {e}", e.errno) from None

    @staticmethod
    def free_bcc_memory() -> int:
        """BCC frees the memory its in-process LLVM and clang hold once the programs are loaded;
        bpfkit compiles with a clang process that has already exited, and keeps no compiler in
        this one, so there is nothing to free. Returns 0, as BCC does on success."""
        return 0

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._obj.programs())} programs"
        return f"<bpfkit.BPF {state}>"

    def _repr_html_(self) -> str:
        """The object in a notebook: its programs (type, section, what each is attached to) and
        maps (type, key and value types, max entries), or that it is closed."""
        from ._html import bpf_html

        return bpf_html(self)



