"""The BPF C of the generic tools, built from a small typed description and never by replacing
words in a template: a :class:`Program` holds :class:`Struct`, :class:`Const`, :class:`Map` and
:class:`Function` pieces, a function's body is a list of statements (:class:`Decl`,
:class:`Assign`, :class:`Do`, :class:`If`, :class:`Return`), and :meth:`Program.text` writes
the C. Each generated function carries the :class:`~._probes.Target` s it attaches to, and
:meth:`Program.load` compiles the C through bpfkit's normal path (libbpf dialect, CO-RE, the
compile cache: the text depends only on the targets, and every option is a ``const volatile``
global, so a second run with the same targets compiles nothing), loads it and attaches each
function to its targets.

What knows the probe kinds is here too: :func:`section` (the ``SEC()`` of a target),
:func:`params` (its context), :func:`arg` and :func:`retval` (an argument and the return value
as C expressions, from registers, a syscall tracepoint's record, a BPF trampoline's context or
a USDT probe's arguments), :func:`tracepoint_struct` (a tracepoint's record, from its tracefs
format), and :class:`Scope`, which maps the C a user types (trace's and argdist's filters and
values: ``arg2``, ``retval``, ``args->filename``, ``$pid``, ``STRCMP()``...) onto those for one
target, and reads the strings it points to from the right side (user or kernel memory).

Then the programs the tools run, each a function of their targets:
:func:`counter` (funccount), :func:`latency` (funclatency's histograms) and :func:`slow_calls`
(funcslower's events), both timing a call from its entry to its return with :func:`timed`;
:func:`tracer` (trace's events), :func:`summaries` (argdist's counts and histograms, with the
function's entry recorded for ``$entry()`` and ``$latency``) and :func:`stack_counter`
(stackcount's stacks).

>>> prog = counter(resolve([parse("t:syscalls:sys_enter_getpp*")]))
>>> print(prog.text())          # what -D / --ebpf print
>>> with prog.load(TOOL, args) as b:
...     counts = b["counts"]
"""

from __future__ import annotations

import os

from ._probes import USER_FUNCTION_KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from argparse import Namespace
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from ._kit import Tool
    from ._probes import Target

#: BPF map kinds by the name used here.
MAP_TYPES = {"hash": "BPF_MAP_TYPE_HASH", "lru_hash": "BPF_MAP_TYPE_LRU_HASH", "array": "BPF_MAP_TYPE_ARRAY",
             "percpu_array": "BPF_MAP_TYPE_PERCPU_ARRAY", "stack_trace": "BPF_MAP_TYPE_STACK_TRACE"}
#: Frames a stack trace keeps (the kernel's PERF_MAX_STACK_DEPTH).
STACK_DEPTH = 127
#: Arguments a function's entry records for funcslower's -a (six registers on x86-64).
MAX_ARGS = 6


def _check_name(name: str) -> str:
    if not name.isidentifier() or not name.isascii():
        raise ValueError(f"{name!r} is not a C identifier")
    return name


# -- pieces ---------------------------------------------------------------------------------------

class Struct:
    """``struct name { ctype field; ... };``: ``fields`` are ``(ctype, name)`` pairs, the name
    with its array bounds (``("u64", "args[6]")``); ``packed``: laid out at the offsets its
    fields give, with no padding added (a tracepoint's record, :func:`tracepoint_struct`)."""

    def __init__(self, name: str, fields: Sequence[tuple[str, str]], *, comment: str = "",
                 packed: bool = False) -> None:
        self.name, self.fields, self.comment, self.packed = _check_name(name), list(fields), comment, packed

    def text(self) -> str:
        body = "".join(f"\t{ctype} {field};\n" for ctype, field in self.fields)
        attr = " __attribute__((packed))" if self.packed else ""
        return _comment(self.comment) + f"struct {self.name} {{\n{body}}}{attr};\n"


class Const:
    """A ``const volatile`` global: an option set before load (``consts=``), so that no option
    changes the C and forces a compile."""

    def __init__(self, name: str, ctype: str, value: int = 0, *, comment: str = "") -> None:
        self.name, self.ctype, self.value, self.comment = _check_name(name), ctype, int(value), comment

    def text(self) -> str:
        tail = f" /* {self.comment} */" if self.comment else ""
        return f"const volatile {self.ctype} {self.name} = {self.value};{tail}\n"


class Map:
    """A BTF-defined map: ``kind`` is a key of :data:`MAP_TYPES`; ``key`` and ``value`` are C
    types (a stack trace map's value is its frames)."""

    def __init__(self, name: str, kind: str, *, key: str = "u32", value: str = "u64", max_entries: int = 10240,
                 comment: str = "") -> None:
        if kind not in MAP_TYPES:
            raise ValueError(f"map kind {kind!r} is not one of {', '.join(MAP_TYPES)}")
        if max_entries < 1:
            raise ValueError(f"map {name} needs at least one entry")
        self.name, self.kind, self.key, self.value = _check_name(name), kind, key, value
        self.max_entries, self.comment = max_entries, comment

    def text(self) -> str:
        lines = [f"__uint(type, {MAP_TYPES[self.kind]});", f"__uint(max_entries, {self.max_entries});"]
        if self.kind == "stack_trace":
            lines += ["__uint(key_size, sizeof(u32));", f"__uint(value_size, {STACK_DEPTH} * sizeof(u64));"]
        else:
            lines += [f"__type(key, {self.key});", f"__type(value, {self.value});"]
        body = "".join(f"\t{line}\n" for line in lines)
        return _comment(self.comment) + f"struct {{\n{body}}} {self.name} SEC(\".maps\");\n"


class Stmt:
    """A statement of a function's body."""

    def lines(self) -> list[str]:
        raise NotImplementedError


class Decl(Stmt):
    """``ctype name [= init];`` (a pointer: ``Decl("u64 *", "count")``)."""

    def __init__(self, ctype: str, name: str, init: str | None = None) -> None:
        self.ctype, self.name, self.init = ctype, name, init

    def lines(self) -> list[str]:
        sep = "" if self.ctype.endswith("*") else " "  # Decl("u64 *", "count"): u64 *count
        return [f"{self.ctype}{sep}{self.name}" + (f" = {self.init};" if self.init is not None else ";")]


class Assign(Stmt):
    """``target op value;`` (``op``: ``=``, ``+=``, ``/=``...)."""

    def __init__(self, target: str, value: str, op: str = "=") -> None:
        self.target, self.value, self.op = target, value, op

    def lines(self) -> list[str]:
        return [f"{self.target} {self.op} {self.value};"]


class Do(Stmt):
    """An expression evaluated for its effect (a call): ``expr;``."""

    def __init__(self, expr: str) -> None:
        self.expr = expr

    def lines(self) -> list[str]:
        return [f"{self.expr};"]


class Return(Stmt):
    """``return value;``"""

    def __init__(self, value: str = "0") -> None:
        self.value = value

    def lines(self) -> list[str]:
        return [f"return {self.value};"]


class If(Stmt):
    """``if (cond) { then } else { orelse }``."""

    def __init__(self, cond: str, then: Sequence[Stmt], orelse: Sequence[Stmt] = ()) -> None:
        self.cond, self.then, self.orelse = cond, list(then), list(orelse)

    def lines(self) -> list[str]:
        out = [f"if ({self.cond}) {{", *_indent(self.then), "}"]
        if len(self.orelse) == 1 and isinstance(self.orelse[0], If):
            chained = self.orelse[0].lines()
            out[-1] = "} else " + chained[0]
            out += chained[1:]
        elif self.orelse:
            out[-1] = "} else {"
            out += [*_indent(self.orelse), "}"]
        return out


def _indent(stmts: Sequence[Stmt]) -> list[str]:
    return ["\t" + line for s in stmts for line in s.lines()]


def _comment(text: str) -> str:
    if not text:
        return ""
    if "*/" in text:
        raise ValueError("a comment cannot hold */")
    return f"/* {text} */\n"


class Function:
    """A C function: a BPF program when it has a ``section`` (``SEC("uprobe")``), else a static
    helper inlined into the programs that call it. ``targets``: where :meth:`Program.load`
    attaches the program (one function may serve many, as a kretprobe's does)."""

    def __init__(self, name: str, body: Sequence[Stmt], *, params: str = "void *ctx", section: str | None = None,
                 returns: str = "int", targets: Iterable[Target] = (), comment: str = "") -> None:
        self.name, self.body, self.params, self.section = _check_name(name), list(body), params, section
        self.returns, self.targets, self.comment = returns, list(targets), comment

    def text(self) -> str:
        head = f'SEC("{self.section}")\n{self.returns}' if self.section else f"static __always_inline {self.returns}"
        body = "\n".join(_indent(self.body))
        return _comment(self.comment) + f"{head} {self.name}({self.params})\n{{\n{body}\n}}\n"


class Program:
    """A whole generated program: its pieces in the order C needs them (structs, options, maps,
    the ``events`` buffer, helpers, programs). ``events``: the size in bytes of the kit's
    ``TOOL_EVENTS`` ring buffer (0: none)."""

    def __init__(self, title: str, *, events: int = 0) -> None:
        self.title = title
        self.events = events
        self.structs: list[Struct] = []
        self.consts: list[Const] = []
        self.maps: list[Map] = []
        self.helpers: list[Function] = []
        self.programs: list[Function] = []

    def add(self, *pieces: Any) -> None:
        """Adds structs, consts, maps and functions (a function with a section is a program)."""
        names = {p.name for p in (*self.structs, *self.consts, *self.maps, *self.helpers, *self.programs)}
        for p in pieces:
            if p.name in names:
                raise ValueError(f"{self.title}: two pieces named {p.name}")
            names.add(p.name)
            if isinstance(p, Struct):
                self.structs.append(p)
            elif isinstance(p, Const):
                self.consts.append(p)
            elif isinstance(p, Map):
                self.maps.append(p)
            elif isinstance(p, Function):
                (self.programs if p.section else self.helpers).append(p)
            else:
                raise TypeError(f"a Program holds Struct, Const, Map and Function pieces, not {type(p).__name__}")

    def has(self, name: str) -> bool:
        """Whether a piece of that name is in the program already."""
        return any(p.name == name for p in (*self.structs, *self.consts, *self.maps, *self.helpers, *self.programs))

    @property
    def targets(self) -> list[Target]:
        """Every target of every program, in order."""
        return [t for f in self.programs for t in f.targets]

    def text(self) -> str:
        """The C, compiled after the kit's ``tool.bpf.h`` (which gives ``tool_traced()`` and
        ``TOOL_EVENTS``)."""
        parts = [f"// SPDX-License-Identifier: GPL-2.0\n/* {self.title}: generated by bpfkit (tools/_gen.py) */\n"]
        parts += [s.text() for s in self.structs]
        if self.consts:
            parts.append("".join(c.text() for c in self.consts))
        parts += [m.text() for m in self.maps]
        if self.events:
            parts.append(f"TOOL_EVENTS({self.events});\n")
        parts += [f.text() for f in self.helpers]
        parts += [f.text() for f in self.programs]
        return "\n".join(parts)

    def load(self, tool: Tool, args: Namespace, *, consts: dict | None = None, **kwargs: Any) -> Any:
        """Compiles and loads the program with the tool's filters (``-p``: ``tool_traced()``)
        and ``consts``, and attaches each program to its targets: tracepoints and fentry/fexit
        by their sections when the object loads, USDT probes through ``bpfkit.USDT``, uprobes
        opened while the object loads (each limited to its probe's ``pid``), kprobes after. A
        pattern's kprobe that the kernel refuses (a function it cannot probe) is left out with a
        warning; every one refused is an error. Returns the ``BPF`` object."""
        from ._kit import Uprobes

        uprobes = Uprobes()
        contexts: dict = {}
        kprobes: list = []
        for f in self.programs:
            for t in f.targets:
                pid = t.probe.pid or -1
                if t.kind in USER_FUNCTION_KINDS:
                    uprobes.add(f.name, name=t.path, sym=t.function if t.address is None else "", addr=t.address,
                                retprobe=t.kind == "uretprobe", pid=pid)
                elif t.kind == "usdt":
                    ctx = contexts.get((t.path, t.probe.pid))
                    if ctx is None:
                        from bpfkit.usdt import USDT

                        ctx = contexts[(t.path, t.probe.pid)] = USDT(pid=t.probe.pid, path=t.path or None)
                    ctx.enable_probe(t.function, f.name)
                elif t.kind in ("kprobe", "kretprobe"):
                    kprobes.append((f.name, t))
        if contexts:
            kwargs["usdt_contexts"] = list(contexts.values())
        b = tool.load(args, text=self.text(), consts=consts, uprobes=uprobes if uprobes.wanted else None, **kwargs)
        try:
            _attach_kprobes(b, kprobes)
        except BaseException:
            b.close()
            raise
        return b


def _attach_kprobes(b: Any, kprobes: list) -> None:
    from bpfkit import AttachError

    failed: list = []
    for fn, t in kprobes:
        try:
            if t.kind == "kretprobe":
                b.attach_kretprobe(event=t.name, fn_name=fn)
            else:
                b.attach_kprobe(event=t.name, fn_name=fn)
        except AttachError as e:
            if t.probe.is_literal:
                raise
            failed.append((t, e))
    if failed:
        if len(failed) == len(kprobes):
            t, e = failed[0]
            raise AttachError(f"no function matching {t.probe.spec!r} took a {t.kind}: {t.name}: {e}", e.errno)
        from bpfkit import _logs

        _logs.warning("%d function(s) refused a kprobe and are not counted: %s", len(failed),
                      ", ".join(t.name for t, _ in failed[:5]) + (", ..." if len(failed) > 5 else ""))


# -- what the probe kinds need ----------------------------------------------------------------------

def section(target: Target) -> str:
    """The ``SEC()`` of a program for ``target``: one naming its hook where the hook is the
    program's own (a tracepoint, an fentry/fexit function: attached when the object loads), a
    bare kind where the tool attaches it (kprobes, uprobes, USDT: one program may serve many)."""
    if target.kind == "tracepoint":
        cat, ev = target.tracepoint
        return f"tracepoint/{cat}/{ev}"
    if target.kind in ("fentry", "fexit"):
        return f"{target.kind}/{target.name}"
    return target.kind


def shared_section(target: Target) -> bool:
    """Whether one program may serve several targets of this kind (its section names no hook)."""
    return target.kind in ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt")


def params(target: Target) -> str:
    """The parameter list of a program for ``target``."""
    if target.kind in ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt"):
        return "struct pt_regs *ctx"
    if target.kind in ("fentry", "fexit"):
        return "u64 *ctx"
    return "void *ctx"


#: Prefixes of the system call entry points that are wrappers taking the user's ``struct
#: pt_regs *`` (ARCH_HAS_SYSCALL_WRAPPER): their arguments are in those registers.
SYSCALL_WRAPPER_PREFIXES = ("__x64_sys_", "__ia32_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_")


def syscall_wrapper(target: Target) -> bool:
    """Whether ``target`` is a kprobe (or kretprobe) on a system call's wrapper
    (``__x64_sys_openat``), whose first register holds the user's registers."""
    return target.kind in ("kprobe", "kretprobe") and target.name.startswith(SYSCALL_WRAPPER_PREFIXES)


def arg(target: Target, n: int, *, syscall_args: bool = False) -> str:
    """The C expression of argument ``n`` (from 1) of the function at ``target``'s entry, as a
    u64: a register, a syscall tracepoint's ``args[]``, ``bpf_get_func_arg()`` (5.17+) in a
    BPF trampoline, or a USDT probe's argument (``bpf_usdt_arg()``). On a syscall's kprobe the
    registers are the syscall wrapper's, whose first argument is the user's ``struct pt_regs *``
    (as funcslower's ``-a`` shows them, as in BCC); ``syscall_args`` reads the system call's
    own arguments from there instead (as BCC's trace and argdist do)."""
    if not 1 <= n <= MAX_ARGS:
        raise ValueError(f"argument {n}: functions have arguments 1 to {MAX_ARGS} here")
    if target.syscall:
        # Only the syscall's own: the kernel refuses a program that reads past the record.
        return f"((struct trace_event_raw_sys_enter *)ctx)->args[{n - 1}]" if n <= target.nargs else "0"
    if syscall_args and syscall_wrapper(target):
        return f"(u64)PT_REGS_PARM{n}_CORE_SYSCALL((struct pt_regs *)PT_REGS_PARM1(ctx))"
    if target.kind in ("fentry", "fexit"):
        return f"({{ u64 __a = 0; bpf_get_func_arg(ctx, {n - 1}, &__a); __a; }})"
    if target.kind in ("kprobe", "uprobe", "kretprobe", "uretprobe"):
        return f"(u64)PT_REGS_PARM{n}(ctx)"
    if target.kind == "usdt":
        return f"({{ long __a = 0; bpf_usdt_arg(ctx, {n - 1}, &__a); (u64)__a; }})"
    raise ValueError(f"a {target.kind} has no function arguments")


def retval(target: Target) -> str:
    """The C expression of the return value at a return ``target``, as a u64."""
    if target.syscall:
        return "(u64)((struct trace_event_raw_sys_exit *)ctx)->ret"
    if target.kind == "fexit":
        return "({ u64 __r = 0; bpf_get_func_ret(ctx, &__r); __r; })"
    if target.kind in ("kretprobe", "uretprobe"):
        return "(u64)PT_REGS_RC(ctx)"
    raise ValueError(f"a {target.kind} sees no return value")


def programs_for(name: str, targets: Sequence[Target], body: Callable[[Target], list[Stmt]], *,
                 comment: str = "") -> list[Function]:
    """Programs running ``body(target)`` at each of ``targets``: one per kind for the kinds whose
    section names no hook (``name_kprobe`` attached to every kprobe target), one per target for
    the others (``name_3``). ``body`` must then not depend on more than the target's kind."""
    out: list[Function] = []
    shared: dict[str, Function] = {}
    for t in targets:
        if shared_section(t):
            f = shared.get(t.kind)
            if f is None:
                f = shared[t.kind] = Function(f"{name}_{t.kind}", body(t), params=params(t), section=section(t),
                                              comment=comment)
                out.append(f)
            f.targets.append(t)
        else:
            out.append(Function(f"{name}_{t.index}", body(t), params=params(t), section=section(t), targets=[t],
                                comment=comment))
    return out


def program_per_target(name: str, targets: Sequence[Target], body: Callable[[Target], list[Stmt]], *,
                       comment: str = "") -> list[Function]:
    """One program per target, ``name_INDEX``, running ``body(target)`` (which may use the
    target's index: the counters of funccount, the start records of funclatency)."""
    return [Function(f"{name}_{t.index}", body(t), params=params(t), section=section(t), targets=[t],
                     comment=f"{t.kind} {t.name}" + (f" ({t.via})" if t.via else "") if not comment else comment)
            for t in targets]


def filter_pid_cpu() -> If:
    """``if (!tool_traced() || cpu filter) return 0;``: the kit's -p/-t/-u/-c filters and
    funccount's ``-c CPU`` (``targ_cpu``, -1: any)."""
    return If("!tool_traced() || (targ_cpu >= 0 && bpf_get_smp_processor_id() != (u32)targ_cpu)", [Return()])


def targ_cpu() -> Const:
    return Const("targ_cpu", "s32", -1, comment="-c CPU: only this CPU; -1: any")


# -- the tools' programs --------------------------------------------------------------------------

def counter(targets: Sequence[Target]) -> Program:
    """funccount: ``counts[i]``, the calls of target ``i``, in an array (one program per
    target, each adding 1 at its own index).

    >>> counter(resolve([parse("t:sched:sched_fork")])).text()
    """
    prog = Program("funccount: calls per probe")
    prog.add(targ_cpu(), Map("counts", "array", key="u32", value="u64", max_entries=max(1, len(targets)),
                             comment="calls of each probe, by its index"))
    prog.add(Function("count_at", [Decl("u64 *", "count", "bpf_map_lookup_elem(&counts, &index)"),
                                   If("count", [Do("__sync_fetch_and_add(count, 1)")])],
                      params="u32 index", returns="void"))
    prog.add(*program_per_target("count", targets, lambda t: [filter_pid_cpu(), Do(f"count_at({t.index})"),
                                                               Return()]))
    return prog


def timed(prog: Program, targets: Sequence[Target], record: Sequence[tuple[str, str]],
          on_entry: Callable[[Target], list[Stmt]], on_return: list[Stmt]) -> None:
    """Adds to ``prog`` the timing of each call from the entry of a function target to its
    return: ``struct start`` (``ts``, ``index`` and the ``record`` fields), kept in ``starts``
    by thread from the entry (one program per target, which sets the index and runs
    ``on_entry(target)`` on ``s``) to the return (programs shared where the kind allows, each
    calling the helper ``stop(ctx, ret)``, which finds ``s``, sets ``delta`` in ns and runs
    ``on_return``). A nested or recursive call replaces its caller's start: only the innermost
    calls are timed, as in BCC."""
    prog.add(Struct("start", [("u64", "ts"), ("u64", "index"), *record], comment="a call being timed"),
             Map("starts", "hash", key="u64", value="struct start", max_entries=10240,
                 comment="calls being timed, by thread (pid_tgid)"))
    prog.add(Function("stop", [
        Decl("u64", "id", "bpf_get_current_pid_tgid()"),
        Decl("struct start *", "s", "bpf_map_lookup_elem(&starts, &id)"),
        If("!s", [Return()]),
        Decl("u64", "delta", "bpf_ktime_get_ns() - s->ts"),
        *on_return,
        Do("bpf_map_delete_elem(&starts, &id)"),
        Return(),
    ], params="void *ctx, u64 ret"))

    def enter(t: Target) -> list[Stmt]:
        return [filter_pid_cpu(),
                Decl("u64", "id", "bpf_get_current_pid_tgid()"),
                Decl("struct start", "s", "{}"),
                Assign("s.index", str(t.index)),
                *on_entry(t),
                Assign("s.ts", "bpf_ktime_get_ns()"),  # last: the entry's own work is not timed
                Do("bpf_map_update_elem(&starts, &id, &s, BPF_ANY)"),
                Return()]

    returns = [_return_target(t) for t in targets]
    prog.add(targ_cpu())
    prog.add(*program_per_target("enter", targets, enter))
    prog.add(*programs_for("leave", returns, lambda t: [Return(f"stop(ctx, {retval(t)})")]))


def _return_target(t: Target) -> Target:
    """The target of the return of entry target ``t``: its kretprobe, uretprobe or fexit, or the
    ``sys_exit`` tracepoint where ``sys_enter`` stands in for a syscall's kprobe."""
    from ._probes import RETURN_OF, Target

    if t.syscall:
        r = Target(t.probe, "tracepoint", t.name, event=f"syscalls:sys_exit_{t.syscall}", syscall=t.syscall,
                   nargs=t.nargs, via=t.via.replace("sys_enter_", "sys_exit_").replace("kprobe", "kretprobe"))
    else:
        r = Target(t.probe, RETURN_OF[t.kind], t.name, function=t.function, path=t.path, address=t.address,
                   via=t.via)
    r.index = t.index
    return r


def latency(targets: Sequence[Target]) -> Program:
    """funclatency: a log2 histogram of call latency in ``dist`` (``struct hist_key``: the
    function's index with ``per_function``, the process with ``per_pid``, and the slot of the
    latency divided by ``unit``), and ``totals[0]``'s sum of ns and number of calls."""
    prog = Program("funclatency: call latency as log2 histograms")
    prog.add(Struct("hist_key", [("u32", "index"), ("u32", "pid"), ("u64", "slot")],
                    comment="a histogram's bucket: the function (-F), the process, the slot"),
             Struct("total", [("u64", "ns"), ("u64", "count")]),
             Const("unit", "u64", 1000, comment="ns per unit of the histogram: 1, 1000 (-u), 1000000 (-m)"),
             Const("per_function", "bool", 0, comment="-F: a histogram per function"),
             Const("per_pid", "bool", 0, comment="a histogram per process (user functions without -p, as BCC)"),
             Map("dist", "hash", key="struct hist_key", value="u64", max_entries=10240),
             Map("totals", "array", key="u32", value="struct total", max_entries=1))
    prog.add(Function("count_in", [
        Decl("u64", "one", "1"),
        Decl("u64 *", "n", "bpf_map_lookup_elem(&dist, key)"),
        If("n", [Do("__sync_fetch_and_add(n, 1)")],
           [If("bpf_map_update_elem(&dist, key, &one, BPF_NOEXIST) == -17 /* EEXIST: another CPU made it */",
               [Assign("n", "bpf_map_lookup_elem(&dist, key)"), If("n", [Do("__sync_fetch_and_add(n, 1)")])])]),
    ], params="struct hist_key *key", returns="void"))
    on_return = [
        Decl("u32", "zero", "0"),
        Decl("struct total *", "t", "bpf_map_lookup_elem(&totals, &zero)"),
        If("t", [Do("__sync_fetch_and_add(&t->ns, delta)"), Do("__sync_fetch_and_add(&t->count, 1)")]),
        Decl("struct hist_key", "key", "{}"),
        If("per_function", [Assign("key.index", "s->index")]),
        If("per_pid", [Assign("key.pid", "id >> 32")]),
        Assign("key.slot", "bpfkit_log2_slot(delta / unit, 64)"),
        Do("count_in(&key)"),
    ]
    timed(prog, targets, [], lambda t: [], on_return)
    return prog


def slow_calls(targets: Sequence[Target], *, args: bool = True) -> Program:
    """funcslower: a ``struct event`` in the ``events`` ring buffer for each call that took
    ``min_ns`` or more: the function's index, thread, start, duration, return value, comm, its
    first :data:`MAX_ARGS` arguments (``args``: recorded at the entry where the kind has them,
    funcslower's -a) and, with ``user_stacks``/``kernel_stacks``, its stacks at the entry."""
    prog = Program("funcslower: calls slower than a threshold", events=1 << 18)
    entry_stacks = [("s32", "user_stack"), ("s32", "kernel_stack")]
    record = [("u64", f"args[{MAX_ARGS}]"), *entry_stacks] if args else entry_stacks
    prog.add(Struct("event", [("u64", "index"), ("u64", "tgid_pid"), ("u64", "start_ns"), ("u64", "duration_ns"),
                              ("u64", "retval"), ("char", "comm[16]"), *record],
                    comment="a call slower than min_ns"),
             Const("min_ns", "u64", 1000000, comment="-m/-u: the calls this slow or slower"),
             Const("user_stacks", "bool", 0, comment="-U"),
             Const("kernel_stacks", "bool", 0, comment="-K"),
             Map("stacks", "stack_trace", max_entries=2048))
    on_return = [
        If("delta < min_ns", [Do("bpf_map_delete_elem(&starts, &id)"), Return()]),
        Decl("struct event *", "e", "tool_reserve(struct event)"),
        If("e", [
            Assign("e->index", "s->index"), Assign("e->tgid_pid", "id"), Assign("e->start_ns", "s->ts"),
            Assign("e->duration_ns", "delta"), Assign("e->retval", "ret"),
            Do("bpf_get_current_comm(e->comm, sizeof(e->comm))"),
            *([Do("__builtin_memcpy(e->args, s->args, sizeof(e->args))")] if args else []),
            Assign("e->user_stack", "s->user_stack"), Assign("e->kernel_stack", "s->kernel_stack"),
            Do("tool_submit(ctx, e)"),
        ]),
    ]

    def on_entry(t: Target) -> list[Stmt]:
        stmts: list[Stmt] = [
            Assign("s.user_stack", "user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1"),
            Assign("s.kernel_stack", "kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1"),
        ]
        if args and (t.syscall or t.kind in ("kprobe", "uprobe", "fentry")):
            stmts += [Assign(f"s.args[{i - 1}]", arg(t, i)) for i in range(1, MAX_ARGS + 1)]
        return stmts

    timed(prog, targets, record, on_entry, on_return)
    return prog


# -- tracepoint records ------------------------------------------------------------------------------

class TracepointField:
    """One field of a tracepoint's record, from its tracefs format: ``name``; ``ctype`` and
    ``decl`` (the name with its array bounds) as :func:`tracepoint_struct` declares it;
    ``offset`` and ``size`` in bytes; ``data_loc``: a ``__data_loc`` field (its low 16 bits are
    the offset of the data in the record, as ``__get_str()`` reads it); ``pointer``: a pointer."""

    __slots__ = ("name", "ctype", "decl", "offset", "size", "data_loc", "pointer")

    def __init__(self, name: str, ctype: str, decl: str, offset: int, size: int, *, data_loc: bool = False,
                 pointer: bool = False) -> None:
        self.name, self.ctype, self.decl, self.offset, self.size = name, ctype, decl, offset, size
        self.data_loc, self.pointer = data_loc, pointer


_PLAIN_WORDS = {"const", "volatile", "unsigned", "signed", "char", "short", "int", "long", "u8", "u16", "u32",
                "u64", "s8", "s16", "s32", "s64", "bool", "void"}
_NATURAL_SIZES = {(): 4, ("int",): 4, ("u32",): 4, ("s32",): 4, ("char",): 1, ("u8",): 1, ("s8",): 1,
                  ("bool",): 1, ("short",): 2, ("short", "int"): 2, ("u16",): 2, ("s16",): 2, ("long",): 8,
                  ("long", "int"): 8, ("long", "long"): 8, ("long", "long", "int"): 8, ("u64",): 8, ("s64",): 8}
_INTS = {(1, True): "s8", (1, False): "u8", (2, True): "s16", (2, False): "u16", (4, True): "s32",
         (4, False): "u32", (8, True): "s64", (8, False): "u64"}


def _format_field(decl: str, offset: int, size: int, signed: bool) -> TracepointField:
    """A format line's field as C: pointers and plain C types of the format's size keep their
    type; a kernel typedef (``pid_t``), or a plain type the format widens (a syscall
    tracepoint's ``int dfd`` is 8 bytes), is an integer of the field's size and sign; a
    ``__data_loc`` field is its ``u32`` (as the Rust translator of BCC's ``TRACEPOINT_PROBE``)."""
    decl = decl.strip()
    i = len(decl)
    while i > 0 and (decl[i - 1].isalnum() or decl[i - 1] in "_[]"):
        i -= 1
    ty, name = decl[:i].strip(), decl[i:].strip()
    base, bracket, rest = name.partition("[")
    array = bracket + rest
    bound = rest.rstrip("]")
    n = int(bound) if bound.isdigit() and int(bound) > 0 else 1
    if "__data_loc" in ty:
        return TracepointField(base, "u32", base, offset, size, data_loc=True)
    if "*" in ty:
        return TracepointField(base, ty, base + array, offset, size, pointer=True)
    words = tuple(w for w in ty.split() if w not in ("const", "volatile", "signed", "unsigned"))
    if ty and all(w in _PLAIN_WORDS for w in ty.split()) and _NATURAL_SIZES.get(words, 0) * n == size:
        return TracepointField(base, ty, base + array, offset, size)
    elem = size // n if array else size
    if array and size % n == 0 and elem in (1, 2, 4, 8):
        return TracepointField(base, _INTS[(elem, signed)], f"{base}[{n}]", offset, size)
    if size in (1, 2, 4, 8):
        return TracepointField(base, _INTS[(size, signed)], base, offset, size)
    return TracepointField(base, "u8", f"{base}[{size}]", offset, size)


_FORMATS: dict = {}


def tracepoint_fields(event: str) -> list[TracepointField]:
    """The fields of tracepoint ``event`` (``category:event``) by offset, the common ones first,
    as the running kernel's tracefs format gives them (read once)."""
    fields = _FORMATS.get(event)
    if fields is not None:
        return fields
    from bpfkit._attach_kernel import _tracing_dir

    from ._probes import ProbeError

    cat, _, ev = event.partition(":")
    path = os.path.join(_tracing_dir(), "events", cat, ev, "format")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ProbeError(f"t:{event}: its format cannot be read ({path}: {e.strerror})") from None
    fields = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl, offset, size, signed = "", None, None, False
        for part in line[len("field:"):].split(";"):
            part = part.strip()
            if part.startswith("offset:"):
                offset = int(part[7:])
            elif part.startswith("size:"):
                size = int(part[5:])
            elif part.startswith("signed:"):
                signed = part[7:].strip() == "1"
            elif part and not decl:
                decl = part
        if offset is not None and size is not None:
            fields.append(_format_field(decl, offset, size, signed))
    fields.sort(key=lambda f: f.offset)
    _FORMATS[event] = fields
    return fields


def tracepoint_struct_name(event: str) -> str:
    """The name of :func:`tracepoint_struct`'s struct for ``category:event``."""
    return "tp__" + "".join(c if c.isalnum() else "_" for c in event.replace(":", "__"))


def tracepoint_struct(event: str) -> Struct:
    """The record of tracepoint ``event`` as a packed struct, each field at its format's offset:
    what ``args`` points to in trace's and argdist's expressions (``args->filename``)."""
    out: list[tuple[str, str]] = []
    at = 0
    for i, f in enumerate(tracepoint_fields(event)):
        if f.offset < at:
            continue  # overlapping: a union the format flattens
        if f.offset > at:
            out.append(("char", f"__pad_{i}[{f.offset - at}]"))
        out.append((f.ctype, f.decl))
        at = f.offset + f.size
    return Struct(tracepoint_struct_name(event), out, packed=True,
                  comment=f"the record of tracepoint {event}, from its tracefs format")


# -- user expressions: trace's and argdist's filters, arguments and keys -----------------------------

#: BCC's aliases of the current task in trace and argdist expressions (``$pid`` is the thread, as
#: in BCC's trace; argdist's ``$PID`` the process).
TASK_ALIASES = {
    "$pid": "(u32)bpf_get_current_pid_tgid()",
    "$tgid": "(u32)(bpf_get_current_pid_tgid() >> 32)",
    "$PID": "(u32)(bpf_get_current_pid_tgid() >> 32)",
    "$uid": "(u32)bpf_get_current_uid_gid()",
    "$gid": "(u32)(bpf_get_current_uid_gid() >> 32)",
    "$cpu": "bpf_get_smp_processor_id()",
    "$task": "((struct task_struct *)bpf_get_current_task())",
}


def _tokens(text: str) -> list[str]:
    """C tokens of ``text``, whitespace kept (joined, they are the text again)."""
    import re

    return re.findall(r'\s+|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\$?[A-Za-z_]\w*|\d[\w.]*|->|.', text, re.S)


def signature(text: str) -> list[tuple[str, str]]:
    """A function's parameters as BCC's trace and argdist take them (``int fd, const char
    *buf``): ``[(ctype, name)]``, argument 1 first. Empty or ``void``: none.

    >>> signature("int fd, const char *buf, size_t count")
    [('int', 'fd'), ('const char *', 'buf'), ('size_t', 'count')]
    """
    from ._probes import ProbeError

    out: list[tuple[str, str]] = []
    if text.strip() in ("", "void"):
        return out
    for param in text.split(","):
        param = param.strip()
        cut = max(param.rfind("*"), param.rfind(" "))
        ctype, name = param[:cut + 1].strip(), param[cut + 1:].strip()
        if not ctype or not name.isidentifier():
            raise ProbeError(f"({text}): {param!r} is not a parameter (a type, then a name)")
        out.append((ctype, name))
    if len(out) > MAX_ARGS:
        raise ProbeError(f"({text}): at most {MAX_ARGS} parameters are read")
    return out


class Scope:
    """The C a user typed (a filter, a value to print or count) at one ``target``, with BCC's
    aliases mapped for the target's kind: ``arg1``..``arg6`` (:func:`arg`; ``argN@user``
    says its memory is the user's), ``retval`` and ``$retval`` (:func:`retval`), ``$pid``-style
    task aliases (:data:`TASK_ALIASES`), a tracepoint's ``args->field`` (its record,
    :func:`tracepoint_struct`), the names of a function's ``params`` (from a :func:`signature`),
    ``$entry(name)`` and ``$latency`` at a return (argdist's: the argument at the entry, and ns
    since it), and ``STRCMP("literal", expr)`` (a whole-string comparison, as bpfkit's
    ``bcc.utils.StrcmpRewrite``; ``bin_cmp``: the literal's bytes as a prefix). A chain of
    ``->`` from a parameter or ``$task`` becomes a CO-RE read (``BPF_CORE_READ``, or
    ``BPF_CORE_READ_USER`` in a user-space probe). The rest is C, inserted as it is.

    :meth:`c` rewrites an expression; :meth:`read_str` the statements that copy the string an
    expression points to (from the user's memory for syscall arguments and user-space probes,
    from the kernel's for a ``__data_loc`` field, else the kernel's, then the user's where that
    faults: a kernel function's ``const char __user *`` is read without an ``@user``);
    :meth:`prologue` the declarations the rewritten C needs, which go first in the program.
    Helpers (``STRCMP``'s) are added to ``prog``. A name that cannot be had at this target
    (``retval`` at an entry, ``arg1`` at a tracepoint) is a :class:`~._probes.ProbeError`."""

    def __init__(self, prog: Program, target: Target, *, params: Sequence[tuple[str, str]] = (), spec: str = "",
                 bin_cmp: bool = False) -> None:
        self.prog, self.target, self.params, self.bin_cmp = prog, target, list(params), bin_cmp
        self.spec = spec or target.probe.spec
        self.uses_args = False
        self.used_params: set = set()
        #: ``$entry()``'s parameters and whether ``$latency`` was named: the entry must record them.
        self.entry_params: set = set()
        self.latency = False
        self._temps = 0

    # -- what the target's kind gives ------------------------------------------------------------
    def _fail(self, why: str) -> Exception:
        from ._probes import ProbeError

        return ProbeError(f"{self.spec}: {why}")

    @property
    def user_space(self) -> bool:
        """Whether the probe runs in a user-space function or USDT probe."""
        return self.target.kind in ("uprobe", "uretprobe", "usdt")

    @property
    def syscall_record(self) -> bool:
        """Whether the values are a system call's own (its tracepoints, its wrapper's kprobe):
        their pointers point into the user's memory."""
        t = self.target
        return bool(t.syscall) or t.event.startswith("syscalls:") or syscall_wrapper(t)

    def arg(self, n: int) -> str:
        t = self.target
        if t.kind == "tracepoint" and not t.syscall:
            raise self._fail(f"a tracepoint has no arg{n}: its fields are args->NAME (its format: "
                             f"/sys/kernel/tracing/events/{t.event.replace(':', '/')}/format)")
        if not 1 <= n <= MAX_ARGS:
            raise self._fail(f"arg{n}: the arguments are arg1 to arg{MAX_ARGS}")
        return arg(t, n, syscall_args=True)

    def retval(self) -> str:
        t = self.target
        if not t.is_return:
            raise self._fail(f"retval is the value a function returns: a return probe's (r:), not a {t.kind}'s")
        if t.kind == "tracepoint" and not t.syscall:
            return "(u64)((struct trace_event_raw_sys_exit *)ctx)->ret"
        return retval(t)

    def _need_return(self, what: str) -> None:
        if not self.target.is_return or (self.target.kind == "tracepoint" and not self.target.syscall):
            raise self._fail(f"{what} is for a function's return probe (r:)")

    def _param(self, name: str) -> int:
        for i, (_ctype, pname) in enumerate(self.params):
            if pname == name:
                return i
        raise self._fail(f"$entry({name}): no parameter {name} in the function's signature")

    # -- rewriting --------------------------------------------------------------------------------
    def c(self, text: str) -> str:
        """``text`` with the aliases replaced (see the class's docstring)."""
        toks = _tokens(text)
        out: list[str] = []
        names = {name for _ctype, name in self.params}
        n = len(toks)

        def next_tok(j: int) -> int:
            while j < n and toks[j].isspace():
                j += 1
            return j

        def at(j: int) -> str:
            return toks[j] if j < n else ""

        i = 0
        while i < n:
            t = toks[i]
            if t == "STRCMP":
                j = next_tok(i + 1)
                k = next_tok(j + 1)
                c = next_tok(k + 1)
                if at(j) != "(" or not at(k).startswith('"') or at(c) != ",":
                    raise self._fail('STRCMP takes a string literal and an expression: STRCMP("bash", arg1)')
                depth, m = 1, c + 1
                while m < n:
                    depth += {"(": 1, ")": -1}.get(toks[m], 0)
                    if depth == 0:
                        break
                    m += 1
                if m >= n:
                    raise self._fail(f"STRCMP without its closing parenthesis in {text!r}")
                out.append(self._streq(toks[k], "".join(toks[c + 1:m]).strip()))
                i = m + 1
                continue
            if t.startswith("arg") and t[3:].isdigit() and not t[3:].startswith("0"):
                j = next_tok(i + 1)
                if at(j) == "@" and at(next_tok(j + 1)) == "user":
                    i = next_tok(j + 1)
                out.append(f"({self.arg(int(t[3:]))})")
            elif t in ("retval", "$retval"):
                out.append(f"({self.retval()})")
            elif t == "$entry":
                j = next_tok(i + 1)
                k = next_tok(j + 1)
                m = next_tok(k + 1)
                if at(j) != "(" or not at(k).isidentifier() or at(m) != ")":
                    raise self._fail("$entry takes a parameter's name: $entry(count)")
                self._need_return("$entry()")
                p = self._param(toks[k])
                self.entry_params.add(p)
                out.append(f"(({self.params[p][0]})__entry.args[{p}])")
                i = m
            elif t == "$latency":
                self._need_return("$latency")
                self.latency = True
                out.append("(bpf_ktime_get_ns() - __entry.ts)")
            elif (t == "$task" or t in names) and at(next_tok(i + 1)) == "->":
                fields, j = [], next_tok(i + 1)
                while at(j) == "->":
                    k = next_tok(j + 1)
                    if not at(k).isidentifier():
                        raise self._fail(f"-> without a field name in {text!r}")
                    field, j = toks[k], next_tok(k + 1)
                    while at(j) == "." and at(next_tok(j + 1)).isidentifier():
                        field += "." + toks[next_tok(j + 1)]
                        j = next_tok(next_tok(j + 1) + 1)
                    fields.append(field)
                base = TASK_ALIASES["$task"] if t == "$task" else self._use_param(t)
                read = "BPF_CORE_READ_USER" if self.user_space and t != "$task" else "BPF_CORE_READ"
                out.append(f"{read}({base}, {', '.join(fields)})")
                # the token after the chain is handled by the loop
                i = j
                continue
            elif t in TASK_ALIASES:
                out.append(TASK_ALIASES[t])
            elif t.startswith("$"):
                raise self._fail(f"no alias {t} (there are {', '.join(sorted(TASK_ALIASES))}, $retval, "
                                 "$entry(name) and $latency)")
            elif t in names:
                out.append(self._use_param(t))
            elif t == "args" and self.target.kind == "tracepoint" and not self.target.syscall:
                self.uses_args = True
                out.append(t)
            else:
                out.append(t)
            i += 1
        return "".join(out)

    def _use_param(self, name: str) -> str:
        if self.target.is_return:
            raise self._fail(f"{name}: at a return probe an argument is $entry({name}), its value at the entry")
        self.used_params.add(name)
        return name

    # -- strings ------------------------------------------------------------------------------------
    def _data_loc(self, text: str) -> TracepointField | None:
        t = self.target
        toks = [x for x in _tokens(text) if not x.isspace()]
        if t.kind != "tracepoint" or t.syscall or len(toks) != 3 or toks[:2] != ["args", "->"]:
            return None
        return next((f for f in tracepoint_fields(t.event) if f.name == toks[2] and f.data_loc), None)

    def memory(self, text: str) -> str:
        """Where the string ``text`` points to is: ``user``, ``kernel`` or ``either`` (the
        kernel's, else the user's)."""
        toks = [x for x in _tokens(text) if not x.isspace()]
        if any(toks[i].startswith("arg") and toks[i + 1:i + 3] == ["@", "user"] for i in range(len(toks))):
            return "user"
        if self.user_space or self.syscall_record:
            return "user"
        if self._data_loc(text) is not None:
            return "kernel"
        return "either"

    def _source(self, text: str) -> str:
        """The address of the string ``text`` names, as C."""
        field = self._data_loc(text)
        if field is not None:
            self.uses_args = True
            return f"(const void *)((char *)ctx + (args->{field.name} & 0xffff))"
        return f"(const void *)(long)({self.c(text)})"

    @staticmethod
    def _read(dst: str, size: str, src: str, memory: str) -> list[Stmt]:
        user = Do(f"bpf_probe_read_user_str({dst}, {size}, {src})")
        if memory == "user":
            return [user]
        kernel = f"bpf_probe_read_kernel_str({dst}, {size}, {src})"
        if memory == "kernel":
            return [Do(kernel)]
        return [If(f"{kernel} < 0", [user])]

    def read_str(self, dst: str, size: str, text: str) -> list[Stmt]:
        """Statements copying the NUL-terminated string at ``text`` into ``dst`` (``size``
        bytes; all zero where it cannot be read)."""
        memory = self.memory(text)
        src = self._source(text)
        if memory == "either":
            self._temps += 1
            tmp = f"__str{self._temps}"
            return [Decl("const void *", tmp, src), *self._read(dst, size, tmp, memory)]
        return self._read(dst, size, src, memory)

    def _streq(self, literal: str, text: str) -> str:
        import ast

        try:
            data = ast.literal_eval("b" + literal) if literal.isascii() else ast.literal_eval(literal).encode()
        except (ValueError, SyntaxError):
            raise self._fail(f"STRCMP: {literal} is not a C string literal") from None
        needle = data if self.bin_cmp else data + b"\0"
        n = len(needle)
        name = "streq_%d" % sum(1 for f in self.prog.helpers if f.name.startswith("streq_"))
        memory = self.memory(text)
        same = " && ".join(f"(u8)got[{i}] == {b}" for i, b in enumerate(needle)) or "1"
        self.prog.add(Function(name, [Decl("char", f"got[{n + 1}]", "{}"),
                                      *self._read("got", "sizeof(got)", "(const void *)str", memory),
                                      Return(same)],
                               params="u64 str", returns="bool",
                               comment=f"STRCMP({literal}, ...): the {'start' if self.bin_cmp else 'whole string'}"))
        return f"{name}((u64){self._source(text)})"

    def prologue(self) -> list[Stmt]:
        """The declarations the rewritten C uses: the tracepoint's ``args``, the parameters."""
        out: list[Stmt] = []
        if self.uses_args:
            struct = tracepoint_struct(self.target.event)
            if not self.prog.has(struct.name):
                self.prog.add(struct)
            out.append(Decl(f"struct {struct.name} *", "args", "ctx"))
        for i, (ctype, name) in enumerate(self.params):
            if name in self.used_params:
                out.append(Decl(ctype, name, f"({ctype})({self.arg(i + 1)})"))
        return out


def entry_target(t: Target) -> Target:
    """The entry of return target ``t``: its kprobe, uprobe or fentry, or the ``sys_enter``
    tracepoint where ``sys_exit`` stands in for a syscall's kretprobe (same index)."""
    from ._probes import Target

    if t.syscall:
        e = Target(t.probe, "tracepoint", t.name, event=f"syscalls:sys_enter_{t.syscall}", syscall=t.syscall,
                   nargs=t.nargs, via=t.via.replace("sys_exit_", "sys_enter_").replace("kretprobe", "kprobe"))
    else:
        kind = {"kretprobe": "kprobe", "uretprobe": "uprobe", "fexit": "fentry"}[t.kind]
        e = Target(t.probe, kind, t.name, function=t.function, path=t.path, address=t.address, via=t.via)
    e.index = t.index
    return e


def _entry_pieces(prog: Program) -> None:
    """``entries``: what a return probe's ``$entry()`` and ``$latency`` read, kept by thread and
    probe from the function's entry."""
    if prog.has("entries"):
        return
    prog.add(Struct("call_start", [("u64", "ts"), ("u64", f"args[{MAX_ARGS}]")], comment="a call's start"),
             Struct("call_key", [("u64", "id"), ("u64", "index")], comment="thread (pid_tgid) and probe"),
             Map("entries", "hash", key="struct call_key", value="struct call_start", max_entries=10240,
                 comment="calls started, for $entry() and $latency at their return"))


def _entry_program(prog: Program, scope: Scope, name: str) -> None:
    """The program at the entry of ``scope``'s return target that records what its ``$entry()``
    and ``$latency`` need."""
    _entry_pieces(prog)
    e = entry_target(scope.target)
    body: list[Stmt] = [If("!tool_traced()", [Return()]),
                        Decl("struct call_key", "k", "{}"),
                        Assign("k.id", "bpf_get_current_pid_tgid()"), Assign("k.index", str(e.index)),
                        Decl("struct call_start", "s", "{}")]
    body += [Assign(f"s.args[{p}]", arg(e, p + 1, syscall_args=True)) for p in sorted(scope.entry_params)]
    body += [Assign("s.ts", "bpf_ktime_get_ns()"), Do("bpf_map_update_elem(&entries, &k, &s, BPF_ANY)"), Return()]
    prog.add(Function(name, body, params=params(e), section=section(e), targets=[e],
                      comment=f"the entry of {e.name}, for $entry() and $latency"))


def _entry_lookup(index: int) -> list[Stmt]:
    """At a return: ``__entry``, the call's start recorded at its entry (no entry seen: the
    program ends)."""
    return [Decl("struct call_key", "__ek", "{}"), Assign("__ek.id", "bpf_get_current_pid_tgid()"),
            Assign("__ek.index", str(index)),
            Decl("struct call_start *", "__ep", "bpf_map_lookup_elem(&entries, &__ek)"),
            If("!__ep", [Return()]),
            Decl("struct call_start", "__entry", "*__ep"),
            Do("bpf_map_delete_elem(&entries, &__ek)")]


def add_one() -> Function:
    """``add_one(map, key)``: adds 1 to the u64 at ``key`` of a hash map, inserting it at 1 (a
    static inline helper: each call names its map, which the verifier needs constant)."""
    return Function("add_one", [
        Decl("u64", "one", "1"),
        Decl("u64 *", "n", "bpf_map_lookup_elem(map, key)"),
        If("n", [Do("__sync_fetch_and_add(n, 1)")],
           [If("bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == -17 /* EEXIST: another CPU made it */",
               [Assign("n", "bpf_map_lookup_elem(map, key)"), If("n", [Do("__sync_fetch_and_add(n, 1)")])])]),
    ], params="void *map, void *key", returns="void")


# -- trace: a message per event ------------------------------------------------------------------------

class Printed:
    """One of trace's probes, as :func:`tracer` takes it: its ``targets`` (resolved, indexed
    across the run), the function's ``params`` (a :func:`signature`), the ``filter`` (C, or
    ""), and the ``values`` its format prints: ``(expression, ctype)`` each, ``ctype`` None for
    a string (``%s``)."""

    __slots__ = ("spec", "targets", "params", "filter", "values")

    def __init__(self, spec: str, targets: Sequence[Target], *, params: Sequence[tuple[str, str]] = (),
                 filter: str = "", values: Sequence[tuple[str, str | None]] = ()) -> None:
        self.spec, self.targets, self.params = spec, list(targets), list(params)
        self.filter, self.values = filter, list(values)


def tracer(probes: Sequence[Printed], *, string_size: int = 80, bin_cmp: bool = False) -> Program:
    """trace: for each event that passes its probe's filter, a ``struct event`` in the ``events``
    ring buffer: the probe target's ``index``, the task (``tgid``, ``pid``: the thread, ``uid``,
    ``comm``), ``ts``, ``cpu``, its stacks with ``user_stacks``/``kernel_stacks``, and the values
    of the probe's format, numbers in ``num[]`` (each cast to its C type, then widened to 64 bits)
    and strings in ``str[]`` (``string_size`` bytes each). One program per target."""
    nums = max((sum(1 for _e, ct in p.values if ct is not None) for p in probes), default=0)
    strs = max((sum(1 for _e, ct in p.values if ct is None) for p in probes), default=0)
    prog = Program("trace: a message per event", events=1 << 20)
    fields = [("u64", "ts"), ("u32", "index"), ("u32", "tgid"), ("u32", "pid"), ("u32", "uid"), ("u32", "cpu"),
              ("s32", "user_stack"), ("s32", "kernel_stack"), ("char", "comm[16]")]
    if nums:
        fields.append(("u64", f"num[{nums}]"))
    if strs:
        fields.append(("char", f"str[{strs}][{string_size}]"))
    prog.add(Struct("event", fields, comment="an event: the task, its stacks, the format's values"),
             Const("user_stacks", "bool", 0, comment="-U"), Const("kernel_stacks", "bool", 0, comment="-K"),
             Const("skip_tgid", "u32", 0, comment="trace's own process, left out unless -S"),
             Map("stacks", "stack_trace", max_entries=1024))
    for p in probes:
        for t in p.targets:
            scope = Scope(prog, t, params=p.params, spec=p.spec, bin_cmp=bin_cmp)
            cond = scope.c(p.filter) if p.filter.strip() else ""
            values: list[Stmt] = []
            k = s = 0
            for text, ctype in p.values:
                if ctype is None:
                    values += scope.read_str(f"e->str[{s}]", f"sizeof(e->str[{s}])", text)
                    s += 1
                else:
                    values.append(Assign(f"e->num[{k}]", f"(u64)({ctype})({scope.c(text)})"))
                    k += 1
            body: list[Stmt] = [
                Decl("u64", "__id", "bpf_get_current_pid_tgid()"),
                If("!tool_traced() || (skip_tgid && (u32)(__id >> 32) == skip_tgid)", [Return()]),
                *scope.prologue(),
                *([If(f"!({cond})", [Return()])] if cond else []),
                Decl("struct event *", "e", "tool_reserve(struct event)"),
                If("!e", [Return()]),
                Assign("e->ts", "bpf_ktime_get_ns()"), Assign("e->index", str(t.index)),
                Assign("e->tgid", "__id >> 32"), Assign("e->pid", "(u32)__id"),
                Assign("e->uid", "(u32)bpf_get_current_uid_gid()"), Assign("e->cpu", "bpf_get_smp_processor_id()"),
                Do("bpf_get_current_comm(e->comm, sizeof(e->comm))"),
                Assign("e->user_stack", "user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1"),
                Assign("e->kernel_stack", "kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1"),
                *values,
                Do("tool_submit(ctx, e)"),
                Return(),
            ]
            prog.add(Function(f"probe_{t.index}", body, params=params(t), section=section(t), targets=[t],
                              comment=f"{p.spec}: {t.kind} {t.name}" + (f" ({t.via})" if t.via else "")))
    return prog


# -- argdist: counts and histograms of expressions --------------------------------------------------

#: Slots of argdist's log2 histograms: bpf_log2l() of a u64 is at most 64.
HIST_SLOTS = 65


class Summed:
    """One of argdist's probes, as :func:`summaries` takes it: its ``targets`` (indexed across the
    run), the function's ``params``, the ``exprs`` to count (``-C``: a key of their values) or
    the one to histogram (``hist``), each with its C ``types`` (``char *``: a string), and the
    ``filter`` (C, or "")."""

    __slots__ = ("spec", "targets", "params", "exprs", "types", "filter", "hist")

    def __init__(self, spec: str, targets: Sequence[Target], *, params: Sequence[tuple[str, str]] = (),
                 exprs: Sequence[str] = ("1",), types: Sequence[str] = ("u64",), filter: str = "",
                 hist: bool = False) -> None:
        self.spec, self.targets, self.params = spec, list(targets), list(params)
        self.exprs, self.types, self.filter, self.hist = list(exprs), list(types), filter, hist


def is_string_type(ctype: str) -> bool:
    """Whether argdist's ``ctype`` is a string (``char*``, ``char *``, ``const char *``)."""
    return ctype.replace(" ", "") in ("char*", "constchar*")


def summaries(probes: Sequence[Summed], *, string_size: int = 80) -> Program:
    """argdist: for probe ``j``, ``dist_j`` (a log2 histogram: an array of :data:`HIST_SLOTS`
    counts by ``bpf_log2l`` slot) or ``counts_j`` (a hash of ``struct key_j``, the expressions'
    values ``v0``.., to the number of events). A return probe whose expressions name
    ``$entry()`` or ``$latency`` gets a program at its function's entry too."""
    prog = Program("argdist: counts and histograms of expressions")
    prog.add(add_one())
    for j, p in enumerate(probes):
        if p.hist:
            prog.add(Map(f"dist_{j}", "array", key="u32", value="u64", max_entries=HIST_SLOTS,
                         comment=f"{p.spec}: a log2 histogram"))
        else:
            fields = [("char", f"v{i}[{string_size}]") if is_string_type(ct) else (ct, f"v{i}")
                      for i, ct in enumerate(p.types)]
            prog.add(Struct(f"key_{j}", fields, comment=f"{p.spec}: the values counted"),
                     Map(f"counts_{j}", "hash", key=f"struct key_{j}", value="u64", max_entries=10240))
        for t in p.targets:
            scope = Scope(prog, t, params=p.params, spec=p.spec)
            key: list[Stmt] = []
            if p.hist:
                key.append(Decl("u64", "__v", f"(u64)({p.types[0]})({scope.c(p.exprs[0])})"))
            else:
                key += [Decl(f"struct key_{j}", "__key"), Do("__builtin_memset(&__key, 0, sizeof(__key))")]
                for i, (text, ctype) in enumerate(zip(p.exprs, p.types)):
                    if is_string_type(ctype):
                        key += scope.read_str(f"__key.v{i}", f"sizeof(__key.v{i})", text)
                    else:
                        key.append(Assign(f"__key.v{i}", f"({ctype})({scope.c(text)})"))
            cond = scope.c(p.filter) if p.filter.strip() else ""
            if p.hist:
                collect: list[Stmt] = [
                    Decl("u32", "__slot", f"bpfkit_log2_slot(__v, {HIST_SLOTS})"),
                    Decl("u64 *", "__n", f"bpf_map_lookup_elem(&dist_{j}, &__slot)"),
                    If("__n", [Do("__sync_fetch_and_add(__n, 1)")]),
                ]
            else:
                collect = [Do(f"add_one(&counts_{j}, &__key)")]
            entry = bool(scope.entry_params or scope.latency)
            body: list[Stmt] = [
                If("!tool_traced()", [Return()]),
                *(_entry_lookup(t.index) if entry else []),
                *scope.prologue(),
                *key,
                *([If(f"!({cond})", [Return()])] if cond else []),
                *collect,
                Return(),
            ]
            if entry:
                _entry_program(prog, scope, f"entry_{t.index}")
            prog.add(Function(f"probe_{t.index}", body, params=params(t), section=section(t), targets=[t],
                              comment=f"{p.spec}: {t.kind} {t.name}" + (f" ({t.via})" if t.via else "")))
    return prog


# -- stackcount: counts of stacks ------------------------------------------------------------------------

def stack_counter(targets: Sequence[Target], *, storage: int = 1024) -> Program:
    """stackcount: ``counts``, the events at ``targets`` by ``struct stack_key`` (the process,
    its user and kernel stack ids in ``stacks`` (``user_stacks``, ``kernel_stacks``: -1 when not
    asked for), its name), and ``stack_pids``, the processes whose user stacks were taken since
    the Python last looked (``_stacks.Symbols.watch_map``)."""
    prog = Program("stackcount: events counted by stack")
    prog.add(Struct("stack_key", [("u32", "tgid"), ("s32", "user_stack_id"), ("s32", "kernel_stack_id"),
                                  ("char", "name[16]")], comment="a process and its stacks"),
             targ_cpu(),
             Const("user_stacks", "bool", 1, comment="false with -K"),
             Const("kernel_stacks", "bool", 1, comment="false with -U"),
             Map("stacks", "stack_trace", max_entries=storage),
             Map("counts", "hash", key="struct stack_key", value="u64", max_entries=10240),
             Map("stack_pids", "hash", key="u32", value="u8", max_entries=1024,
                 comment="processes whose user stacks were taken, for their names after they exit"))
    prog.add(add_one())

    def body(t: Target) -> list[Stmt]:
        return [
            filter_pid_cpu(),
            Decl("struct stack_key", "key"),
            Do("__builtin_memset(&key, 0, sizeof(key))"),
            Assign("key.tgid", "bpf_get_current_pid_tgid() >> 32"),
            Do("bpf_get_current_comm(key.name, sizeof(key.name))"),
            Assign("key.user_stack_id", "user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1"),
            Assign("key.kernel_stack_id", "kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1"),
            If("key.user_stack_id >= 0", [Decl("u8", "seen", "1"),
                                          Do("bpf_map_update_elem(&stack_pids, &key.tgid, &seen, BPF_NOEXIST)")]),
            Do("add_one(&counts, &key)"),
            Return(),
        ]

    prog.add(*programs_for("count", targets, body))
    return prog


# -- what the generic tools share on the command line ------------------------------------------------

def source_text(prog: Program) -> str:
    """The whole C of ``prog`` as ``--ebpf`` prints it: the kit's ``tool.bpf.h``, then the
    generated text."""
    from ._kit import HEADER

    with open(HEADER) as f:
        return f.read() + "\n" + prog.text()


def show_source(prog: Program, *, ebpf: bool, verbose: bool) -> bool:
    """BCC's ``--ebpf`` (print the C, then exit: returns True) and ``-D``/``-v`` (print it, then
    run)."""
    if ebpf or verbose:
        import sys

        sys.stdout.write(source_text(prog))
        sys.stdout.flush()
    return ebpf


def before_load(prog: Program, tool: str, *, ebpf: bool, verbose: bool, include: Sequence[str] = ()) -> bool:
    """What every generic tool does between building its program and loading it: prints the C
    for ``--ebpf`` (then returns True: the tool is done) or ``-v``/``-D``, then says on stderr
    which fallbacks its probes took and that BCC's ``-I`` headers are not needed."""
    if show_source(prog, ebpf=ebpf, verbose=verbose):
        return True
    report_fallbacks(tool, prog.targets)
    if include:
        import sys

        print(f"bpfkit {tool}: note: -I {' '.join(include)}: not needed, the kernel's types come from its BTF",
              file=sys.stderr)
    return False


def report_fallbacks(tool: str, targets: Sequence[Target]) -> None:
    """One line on stderr for each fallback taken (a tracepoint standing in for a kprobe...), so
    that what was traced is never a surprise."""
    import sys

    seen: set = set()
    for t in targets:
        if t.via and t.via not in seen:
            seen.add(t.via)
            if len(seen) > 3:
                print(f"bpfkit {tool}: note: and more fallbacks ({sum(1 for x in targets if x.via)} probes in all)",
                      file=sys.stderr)
                break
            print(f"bpfkit {tool}: note: {t.via}", file=sys.stderr)
