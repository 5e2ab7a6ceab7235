"""Kernel attach points of :class:`bpfkit.BPF`: tracepoints (classic, raw, BTF), kprobes and
kretprobes (by name, by regex through multi-kprobe links, with ``maxactive``), fentry/fexit/LSM,
and perf events; with BCC's names and the kernel lookups that go with them."""

from __future__ import annotations

import os

from . import _native
from ._attach_base import I32, U32, U64, AttachBase, Str, _int, _once, _regex, _s
from ._errors import AttachError

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from typing import Callable, Iterable, Optional


class PerfType:
    """``perf_event_attr.type`` values (BCC's names)."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfHWConfig:
    """Hardware event numbers (``PERF_COUNT_HW_*``)."""

    CPU_CYCLES = 0
    INSTRUCTIONS = 1
    CACHE_REFERENCES = 2
    CACHE_MISSES = 3
    BRANCH_INSTRUCTIONS = 4
    BRANCH_MISSES = 5
    BUS_CYCLES = 6
    STALLED_CYCLES_FRONTEND = 7
    STALLED_CYCLES_BACKEND = 8
    REF_CPU_CYCLES = 9


class PerfSWConfig:
    """Software event numbers (``PERF_COUNT_SW_*``)."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10


class PerfEventSampleFormat:
    """``perf_event_attr.sample_type`` bits (``PERF_SAMPLE_*``, enum perf_event_sample_format of
    uapi/linux/perf_event.h), with BCC's names: what a sample record carries.

    >>> PerfEventSampleFormat.RAW | PerfEventSampleFormat.TIME
    1028
    """

    IP = 1 << 0
    TID = 1 << 1
    TIME = 1 << 2
    ADDR = 1 << 3
    READ = 1 << 4
    CALLCHAIN = 1 << 5
    ID = 1 << 6
    CPU = 1 << 7
    PERIOD = 1 << 8
    STREAM_ID = 1 << 9
    RAW = 1 << 10
    BRANCH_STACK = 1 << 11
    REGS_USER = 1 << 12
    STACK_USER = 1 << 13
    WEIGHT = 1 << 14
    DATA_SRC = 1 << 15
    IDENTIFIER = 1 << 16
    TRANSACTION = 1 << 17
    REGS_INTR = 1 << 18
    PHYS_ADDR = 1 << 19
    AUX = 1 << 20
    CGROUP = 1 << 21
    DATA_PAGE_SIZE = 1 << 22
    CODE_PAGE_SIZE = 1 << 23
    WEIGHT_STRUCT = 1 << 24


def _tracing_dir() -> str:
    _native.ensure_mounted("tracefs")
    return "/sys/kernel/tracing"


def _online_cpus() -> list:
    """The online CPUs, from /sys/devices/system/cpu/online ("0-3,5")."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


@_once
def _kprobe_blacklist() -> frozenset:
    """Functions the kernel refuses to kprobe (debugfs kprobes/blacklist)."""
    try:
        _native.ensure_mounted("debugfs")
        with open("/sys/kernel/debug/kprobes/blacklist") as f:
            return frozenset(line.split()[1] for line in f if len(line.split()) >= 2)
    except OSError:
        return frozenset()


def _ftrace_functions() -> Optional[set]:
    """The functions ftrace can hook (tracefs available_filter_functions): what multi-kprobe links
    (built on fprobe, hence ftrace) can attach to. None when tracefs does not show them."""
    try:
        with open(os.path.join(_tracing_dir(), "available_filter_functions")) as f:
            return {line.split()[0] for line in f if line.strip()}
    except OSError:
        return None


def tracepoints_matching(match: Callable[[str], object]) -> list:
    """Every tracepoint ``"category:event"`` for which ``match(name)`` is true, sorted: what
    :meth:`KernelAttachMixin.get_tracepoints` lists for a regex, for any test of the name (the
    probe specifications of the generic tools match ``*`` wildcards without ``re``)."""
    base = os.path.join(_tracing_dir(), "events")
    out = []
    for cat in sorted(os.listdir(base)):
        cdir = os.path.join(base, cat)
        if not os.path.isdir(cdir):
            continue
        for ev in sorted(os.listdir(cdir)):
            name = f"{cat}:{ev}"
            if match(name) and os.path.exists(os.path.join(cdir, ev, "id")):
                out.append(name)
    return sorted(out)


def kprobe_functions_matching(match: Callable[[str], object]) -> set:
    """The kernel functions that can be kprobed (see :meth:`KernelAttachMixin.get_kprobe_functions`)
    for which ``match(name)`` is true."""
    bad = _kprobe_blacklist()
    out = set()
    for fn in _native.kernel_functions():
        if fn in bad or ".cold" in fn or fn.startswith("_kbl_addr_") or fn.startswith("__pfx_"):
            continue
        if match(fn):
            out.add(fn)
    return out


class KernelAttachMixin(AttachBase):
    """Tracepoint, kprobe, fentry/LSM and perf event methods of :class:`bpfkit.BPF`."""

    # -- tracepoints ---------------------------------------------------------------------------
    @staticmethod
    def get_tracepoints(tp_re: Str = ".*") -> list:
        """Every tracepoint whose ``"category:event"`` matches regex ``tp_re`` (whole name), sorted."""
        return tracepoints_matching(_regex(tp_re, "tp_re").fullmatch)

    @staticmethod
    def tracepoint_exists(category: Str, event: Str) -> bool:
        """Whether tracepoint ``category:event`` exists on this kernel."""
        return _native.tracepoint_exists(_s(category), _s(event))

    def attach_tracepoint(self, tp: Str = "", tp_re: Str = "", fn_name: Str = "") -> None:
        """Attaches ``fn_name`` to tracepoint ``tp`` ("category:name"), or to every tracepoint
        matching regex ``tp_re``."""
        fn = self._typed(_s(fn_name), "tracepoint")
        if tp_re:
            matches = self.get_tracepoints(tp_re)
            if not matches:
                raise ValueError(f"no tracepoint matches {_s(tp_re)!r}")
            for name in matches:
                cat, _, ev = name.partition(":")
                self._obj.attach_tracepoint(fn, cat, ev)
            return
        cat, _, name = _s(tp).partition(":")
        if not name:
            raise ValueError(f"tracepoint must be 'category:name', got {_s(tp)!r}")
        self._obj.attach_tracepoint(fn, cat, name)

    def detach_tracepoint(self, tp: Str = "", fn_name: Optional[Str] = None) -> None:
        """Detaches what was attached to tracepoint ``tp``."""
        self._detach("tracepoint", _s(tp), _s(fn_name) if fn_name else None)

    def attach_raw_tracepoint(self, tp: Str = "", fn_name: Str = "") -> None:
        """Attaches ``fn_name`` to raw tracepoint ``tp`` (e.g. "sched_switch")."""
        self._obj.attach_raw_tracepoint(_s(fn_name), _s(tp))

    def detach_raw_tracepoint(self, tp: Str = "", fn_name: Optional[Str] = None) -> None:
        self._detach("raw_tracepoint", _s(tp), _s(fn_name) if fn_name else None)

    @staticmethod
    def support_raw_tracepoint() -> bool:
        """Whether the kernel has raw tracepoints (BCC's name)."""
        from . import features

        return features.supported("raw_tp")

    @staticmethod
    def support_kfunc() -> bool:
        """Whether fentry/fexit programs load and attach here (BCC's name: kfuncs)."""
        from . import features

        return features.supported("fentry") and features.supported("fexit")

    @staticmethod
    def support_lsm() -> bool:
        """Whether BPF LSM programs can be loaded and the BPF LSM is active."""
        from . import features

        return features.supported("lsm")

    # -- fentry / fexit / LSM ------------------------------------------------------------------
    def _attach_btf(self, fn_name: Str, kinds: tuple, feature: str) -> None:
        fn = _s(fn_name)
        sec = self._section(fn)
        if sec.kind not in kinds:
            allowed = ", ".join(k + "/..." for k in kinds)
            raise ValueError(f"program `{fn}` is in section {sec.raw!r}, not one of {allowed}")
        if any(lk.program == fn for lk in self._obj.links()):
            return  # attached on load
        from . import features

        features.require(feature)
        self._obj.attach_section(fn)

    def attach_kfunc(self, fn_name: Str = "") -> None:
        """Attaches fentry program ``fn_name`` (``SEC("fentry/FUNC")``) if it is not attached
        yet. Programs in fentry/fexit/lsm sections are loaded with the object; on a kernel that
        refuses them (lockdown) loading the object raises NotSupportedError saying so: give
        them alternatives (``BPF(alternatives=...)``) to run there too."""
        self._attach_btf(fn_name, ("fentry", "fmod_ret"), "fentry")

    def attach_kretfunc(self, fn_name: Str = "") -> None:
        """Attaches fexit program ``fn_name`` (``SEC("fexit/FUNC")``)."""
        self._attach_btf(fn_name, ("fexit",), "fexit")

    def attach_lsm(self, fn_name: Str = "") -> None:
        """Attaches LSM program ``fn_name`` (``SEC("lsm/HOOK")``)."""
        self._attach_btf(fn_name, ("lsm",), "lsm")

    def detach_kfunc(self, fn_name: Str = "") -> None:
        self._detach_program(_s(fn_name))

    detach_kretfunc = detach_kfunc
    detach_lsm = detach_kfunc

    def _detach_program(self, fn: str) -> None:
        self._detach_links([lk for lk in self._obj.links() if lk.program == fn], f"link of program `{fn}`")

    # -- kprobes -------------------------------------------------------------------------------
    @staticmethod
    def get_kprobe_functions(event_re: Str) -> set:
        """The kernel functions matching regex ``event_re`` (whole name) that can be kprobed: the
        text symbols of /proc/kallsyms, minus the kprobe blacklist, the ``.cold`` parts of split
        functions and the ``__pfx_`` padding symbols. As in BCC, a bytes ``event_re`` gives a
        set of bytes (``BPF.get_kprobe_functions(b"vfs_read")`` is ``{b"vfs_read"}``); a str
        one, a set of str. The list does not depend on kprobes being usable on this kernel
        (see :meth:`kprobes_supported`)."""
        if isinstance(event_re, (bytes, bytearray)):
            return {fn.encode() for fn in KernelAttachMixin.get_kprobe_functions(_s(event_re))}
        return kprobe_functions_matching(_regex(event_re, "event_re").fullmatch)

    @staticmethod
    def kernel_struct_has_field(struct_name: Str, field_name: Str) -> bool:
        """Whether the running kernel's ``struct struct_name`` has a member ``field_name``
        (from its BTF; members of anonymous structs and unions count), as BCC's tools ask
        before choosing their C (``BPF.kernel_struct_has_field(b"request", b"rq_disk")``)."""
        return _native.kernel_struct_has_field(_s(struct_name), _s(field_name))

    @staticmethod
    @_once
    def get_syscall_prefix() -> str:
        """The prefix of this kernel's syscall entry points: ``"__x64_sys_"`` on x86-64 since
        4.17, ``"__arm64_sys_"`` on arm64, else ``"sys_"``."""
        for prefix in ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "__ia32_sys_", "__se_sys_"):
            if _native.ksymname(prefix + "getppid") is not None:
                return prefix
        return "sys_"

    @classmethod
    def get_syscall_fnname(cls, name: Str) -> str:
        """The kernel function of syscall ``name``: ``get_syscall_fnname("open")`` is
        ``"__x64_sys_open"`` on x86-64."""
        return cls.get_syscall_prefix() + _s(name)

    def _require_kprobes(self, fn: str) -> None:
        why = _native.kprobes_unavailable()
        if why is not None:
            from . import features

            raise features.refusal("kprobes", why, program=fn)

    def _is_multi(self, fn: str) -> bool:
        return bool(self._section(fn).is_multi)

    def _attach_kprobe_re(self, fn: str, event_re: str, retprobe: bool) -> None:
        multi = self._is_multi(fn)
        if not multi:
            self._require_kprobes(fn)
        funcs = sorted(self.get_kprobe_functions(event_re))
        if not funcs:
            raise ValueError(f"no kprobe-able kernel function matches {event_re!r}")
        if multi:
            # A multi-kprobe hooks through ftrace: only functions ftrace can hook are taken.
            ftrace = _ftrace_functions()
            if ftrace is not None:
                funcs = [f for f in funcs if f in ftrace]
            self._obj.attach_kprobe_multi(fn, funcs, retprobe, label=event_re)
            return
        # Without multi-kprobe links: one kprobe per function, as BCC does. Functions that
        # refuse a probe (inlined, notrace) are skipped; none attaching is an error.
        failed = []
        for f in funcs:
            try:
                self._obj.attach_kprobe(fn, f, 0, retprobe)
            except AttachError as e:
                failed.append((f, e))
        if len(failed) == len(funcs):
            raise AttachError(f"no function matching {event_re!r} took a {'kretprobe' if retprobe else 'kprobe'}: "
                              f"{failed[0][0]}: {failed[0][1]}", failed[0][1].errno)

    def _syscall_tracepoint(self, fn: str, event: str, retprobe: bool) -> bool:
        """BCC's syscall kprobes on a kernel without kprobes: ``attach_kprobe(event=
        get_syscall_fnname("kill"), fn_name=F)`` attaches F's tracepoint form (made by the BCC
        dialect's translator, see rust/core/bcc.rs ``program_variants``) to
        ``syscalls:sys_enter_kill`` (``sys_exit_kill`` for a kretprobe). False when this is not
        such a case: the caller attaches a kprobe, or says why it cannot."""
        if not event or _native.kprobes_unavailable() is None:
            return False
        prefix = _s(self.get_syscall_prefix())
        name = event[len(prefix):] if event.startswith(prefix) else (event[4:] if event.startswith("sys_") else "")
        if not name:
            return False
        tp = f"sys_{'exit' if retprobe else 'enter'}_{name}"
        names = {p.name for p in self._obj.programs()}
        section = self._section(fn)
        if fn.startswith("syscall__") and section.kind == "tracepoint" and not section.target:
            if retprobe:
                raise ValueError(f"{fn} reads a syscall's arguments: it cannot probe {event}'s return")
            prog = fn
        else:
            # The copy that reads the tracepoint's registers, or an untyped function's.
            prog = next((p for p in (fn + ("__bcc_sys_exit" if retprobe else "__bcc_sys_enter"),
                                     fn + "__bcc_tracepoint") if p in names), "")
            if not prog:
                return False
        if not _native.tracepoint_exists("syscalls", tp):
            from . import features

            why = _native.kprobes_unavailable() or "no kprobes"
            raise features.refusal("kprobes", f"{why}; and syscall {name} has no syscalls:{tp} tracepoint "
                                              f"to stand in for the kprobe on {event}", program=fn)
        self._obj.attach_tracepoint(prog, "syscalls", tp)
        return True

    def attach_kprobe(self, event: Str = "", event_off: int = 0, fn_name: Str = "", event_re: Str = "") -> None:
        """Attaches ``fn_name`` to kernel function ``event`` (+``event_off``), or to every
        function matching regex ``event_re``. A program in ``SEC("kprobe")`` gets one kprobe per
        function (as BCC); one in ``SEC("kprobe.multi")`` gets a single multi-kprobe link for
        them all (5.18+, CONFIG_FPROBE), which attaches thousands of functions in milliseconds.
        Raises ``NotSupportedError`` naming CONFIG_KPROBES on a kernel without kprobes, except
        for a BCC-dialect program on a syscall function (``get_syscall_fnname(...)``), which is
        attached to the syscall's ``sys_enter`` tracepoint instead."""
        fn = _s(fn_name)
        event_off = _int(event_off, "event_off", *U64)
        if event_re:
            self._attach_kprobe_re(fn, _s(event_re), False)
        elif self._is_multi(fn):
            if event_off:
                raise ValueError("a multi-kprobe (kprobe.multi program) cannot take event_off")
            self._obj.attach_kprobe_multi(fn, [_s(event)], False, label=_s(event))
        elif not (event_off == 0 and self._syscall_tracepoint(fn, _s(event), False)):
            self._obj.attach_kprobe(fn, _s(event), event_off, False)

    def attach_kretprobe(self, event: Str = "", fn_name: Str = "", event_re: Str = "", maxactive: int = 0) -> None:
        """Attaches ``fn_name`` to the return of kernel function ``event`` (or of every function
        matching ``event_re``). ``maxactive`` sets how many calls may be pending at once (the
        probe is then made through tracefs's kprobe_events, the only interface that takes it).
        A BCC-dialect program on a syscall function, on a kernel without kprobes, is attached
        to the syscall's ``sys_exit`` tracepoint instead (see :meth:`attach_kprobe`)."""
        fn = _s(fn_name)
        maxactive = _int(maxactive, "maxactive", *U32)
        if event_re:
            if maxactive:
                raise ValueError("maxactive cannot be combined with event_re")
            self._attach_kprobe_re(fn, _s(event_re), True)
        elif self._is_multi(fn):
            if maxactive:
                raise ValueError("a multi-kprobe (kretprobe.multi program) cannot take maxactive")
            self._obj.attach_kprobe_multi(fn, [_s(event)], True, label=_s(event))
        elif not self._syscall_tracepoint(fn, _s(event), True):
            self._obj.attach_kprobe(fn, _s(event), 0, True, maxactive)

    def _detach_kprobes(self, kind: str, event: Str, fn_name: Optional[Str], event_re: Str) -> None:
        fn = _s(fn_name) if fn_name else None
        ours = [lk for lk in self._obj.links() if lk.kind == kind and (fn is None or lk.program == fn)]
        if not event_re:
            self._detach_links([lk for lk in ours if lk.target == _s(event)], f"{kind} on {_s(event)}")
            return
        # A multi-kprobe link is named by its pattern; one kprobe per function, by the function.
        names = self.get_kprobe_functions(event_re) | {_s(event_re)}
        self._detach_links([lk for lk in ours if lk.target in names], f"{kind} attached by {_s(event_re)!r}")

    def detach_kprobe(self, event: Str = "", fn_name: Optional[Str] = None, event_re: Str = "") -> None:
        """Detaches the kprobes on ``event``, or every one ``event_re`` attached."""
        self._detach_kprobes("kprobe", event, fn_name, event_re)

    def detach_kretprobe(self, event: Str = "", fn_name: Optional[Str] = None, event_re: Str = "") -> None:
        """Detaches the kretprobes on ``event``, or every one ``event_re`` attached."""
        self._detach_kprobes("kretprobe", event, fn_name, event_re)

    def num_open_kprobes(self) -> int:
        """How many kprobes and kretprobes this object has attached (a regex attachment
        through one multi-kprobe link counts once)."""
        return sum(1 for lk in self._obj.links() if lk.kind in ("kprobe", "kretprobe"))

    def num_open_tracepoints(self) -> int:
        """How many tracepoints (classic ones, not raw or BTF ones) this object has attached."""
        return sum(1 for lk in self._obj.links() if lk.kind == "tracepoint")

    @staticmethod
    def kprobes_supported() -> bool:
        """Whether this kernel can attach kprobes."""
        return _native.kprobes_unavailable() is None

    # -- perf events ---------------------------------------------------------------------------
    def attach_perf_event(self, ev_type: int = -1, ev_config: int = -1, fn_name: Str = "", sample_period: int = 0,
                          sample_freq: int = 0, pid: int = -1, cpu: int = -1, group_fd: int = -1) -> None:
        """Attaches ``fn_name`` to a perf event (``PerfType`` / ``PerfSWConfig`` /
        ``PerfHWConfig``), sampling every ``sample_period`` events or ``sample_freq`` times a
        second. With ``cpu`` >= 0, one event on that CPU; else, with ``pid`` >= 0, one event
        following that process on every CPU; else one event per online CPU. A hardware event
        on a machine without a PMU raises NotSupportedError."""
        if ev_type == -1 or ev_config == -1:
            raise ValueError("attach_perf_event needs ev_type= and ev_config= (PerfType, PerfSWConfig, PerfHWConfig)")
        ev_type, ev_config = _int(ev_type, "ev_type", *U32), _int(ev_config, "ev_config", *U64)
        sample_period, sample_freq = _int(sample_period, "sample_period", *U64), _int(sample_freq, "sample_freq", *U64)
        pid, cpu, group_fd = _int(pid, "pid", *I32), _int(cpu, "cpu", *I32), _int(group_fd, "group_fd", *I32)
        if (sample_period > 0) == (sample_freq > 0):
            raise ValueError("give exactly one of sample_period= and sample_freq=")
        if group_fd >= 0 and cpu < 0:
            raise ValueError("group_fd= needs cpu=: a group leader counts on one CPU")
        fn = self._typed(_s(fn_name), "perf_event")
        period, freq = (sample_freq, True) if sample_freq else (sample_period, False)
        if cpu >= 0 or pid >= 0:
            cpus: Iterable[int] = [cpu]
        else:
            cpus = _online_cpus()
        made = []
        try:
            for c in cpus:
                made.append(self._obj.attach_perf_event(fn, ev_type, ev_config, period, freq, pid, c, group_fd))
        except BaseException:
            for i in made:
                self._obj.detach_id(i)
            raise

    def detach_perf_event(self, ev_type: int = -1, ev_config: int = -1) -> None:
        """Detaches every perf event attachment of type ``ev_type`` and config ``ev_config``."""
        self._detach_links([lk for lk in self._obj.links() if lk.perf_event == (ev_type, ev_config)],
                           f"perf event of type {ev_type} config {ev_config}")
