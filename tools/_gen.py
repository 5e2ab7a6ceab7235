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
as C expressions, from registers, a syscall tracepoint's record, or a BPF trampoline's context).

Then the programs the tools run, each a function of their targets:
:func:`counter` (funccount; stackcount and argdist's ``-C`` count by other keys on the same
pieces), :func:`latency` (funclatency's histograms) and :func:`slow_calls` (funcslower's events),
both timing a call from its entry to its return with :func:`timed`.

>>> prog = counter(resolve([parse("t:syscalls:sys_enter_getpp*")]))
>>> print(prog.text())          # what -D / --ebpf print
>>> with prog.load(TOOL, args) as b:
...     counts = b["counts"]
"""

from __future__ import annotations

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
    with its array bounds (``("u64", "args[6]")``)."""

    def __init__(self, name: str, fields: Sequence[tuple[str, str]], *, comment: str = "") -> None:
        self.name, self.fields, self.comment = _check_name(name), list(fields), comment

    def text(self) -> str:
        body = "".join(f"\t{ctype} {field};\n" for ctype, field in self.fields)
        return _comment(self.comment) + f"struct {self.name} {{\n{body}}};\n"


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


def arg(target: Target, n: int) -> str:
    """The C expression of argument ``n`` (from 1) of the function at ``target``'s entry, as a
    u64: a register, a syscall tracepoint's ``args[]``, or ``bpf_get_func_arg()`` (5.17+) in a
    BPF trampoline. (On a syscall's kprobe, the registers are the syscall wrapper's: its first
    argument is the user's ``struct pt_regs *``, as in BCC.)"""
    if not 1 <= n <= MAX_ARGS:
        raise ValueError(f"argument {n}: functions have arguments 1 to {MAX_ARGS} here")
    if target.syscall:
        # Only the syscall's own: the kernel refuses a program that reads past the record.
        return f"((struct trace_event_raw_sys_enter *)ctx)->args[{n - 1}]" if n <= target.nargs else "0"
    if target.kind in ("fentry", "fexit"):
        return f"({{ u64 __a = 0; bpf_get_func_arg(ctx, {n - 1}, &__a); __a; }})"
    if target.kind in ("kprobe", "uprobe", "kretprobe", "uretprobe"):
        return f"(u64)PT_REGS_PARM{n}(ctx)"
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
