"""argdist: Trace a function and display a summary of its parameter values.

BCC's flags, probe specifier and output: ``-C`` counts how often each value (or tuple of
values) of expressions over a function's arguments, return value or a tracepoint's fields
occurs; ``-H`` draws a log2 histogram of one expression. Every interval (1 s unless ``-i``)
until ``-n`` outputs, ``-d`` seconds or Ctrl-C. A specifier is::

    {p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...][:filter]][#label]

``p`` a function's entry (a kernel function with no library, else a user function), ``r`` its
return (``$retval``, and ``$entry(param)`` and ``$latency`` from its entry), ``t`` a tracepoint
(``args->field``), ``u`` a USDT probe (``arg1``...). The signature names the arguments; ``arg1``..
``arg6`` work too, as do ``$PID`` and trace's ``$pid $tgid $uid $cpu $task`` and ``STRCMP()``. A
``char *`` type counts the string the expression points to (``-z`` bytes of it). On a kernel
without kprobes, a system call's function is probed at its ``syscalls`` tracepoints. The BPF C
is generated (``-v`` prints it before starting, ``--ebpf`` instead); ``-j`` prints one JSON
object per interval.

Examples::

    bpfkit argdist -H 'p::__kmalloc(u64 size):u64:size'     # kmalloc sizes, as a histogram
    bpfkit argdist -p 1005 -C 'p:c:malloc(size_t size):size_t:size:size==16'   # malloc(16)s of 1005
    bpfkit argdist -C 'r:c:gets():char*:(char*)$retval#snooped strings'        # strings gets() returns
    bpfkit argdist -H 'r::__kmalloc(size_t size):u64:$latency/$entry(size)#ns per byte'
    bpfkit argdist -p 1005 -C 'p:c:write(int fd):int:fd' -T 5   # the 5 busiest fds of 1005
    bpfkit argdist -p 1005 -H 'r:c:read()'                      # read()'s return values
    bpfkit argdist -C 'r::__vfs_read():u32:$PID:$latency > 100000'   # reads over 0.1 ms, by process
    bpfkit argdist -H 'p:c:write(int fd, const void *buf, size_t count):size_t:count:fd==1'
    bpfkit argdist -C 'p:c:fork()#fork calls'                   # calls of fork() in libc
    bpfkit argdist -H 't:syscalls:sys_enter_read():size_t:args->count'   # read sizes asked for
    bpfkit argdist -C 't:irq:irq_handler_entry():int:args->irq'          # interrupts by IRQ
    bpfkit argdist -C 'u:pthread:pthread_start():u64:arg2' -p 1337       # a USDT probe's argument
    bpfkit argdist -p 2780 -z 120 -C 'p:c:write(int fd, char* buf, size_t len):char*:buf:fd==1'
    bpfkit argdist --prometheus 9100 -H 't:syscalls:sys_enter_read():size_t:args->count#read'
"""

from __future__ import annotations

import sys
import time

try:
    from ._kit import Tool, count, exporter, intervals, invalid, pid, print_hists, print_json, seconds
except ImportError:  # run as a script from tools/
    from _kit import Tool, count, exporter, intervals, invalid, pid, print_hists, print_json, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__, generated=True)
#: argdist's probe kinds, and the letter each is given to the probe parser with.
_LETTERS = {"p": "p", "r": "r", "t": "t", "u": "U", "f": "f", "F": "F"}


class Spec:
    """One ``-C``/``-H`` specifier, parsed: ``raw`` as written, ``label``, its :class:`Probe`,
    the signature's ``params``, the ``types`` and ``exprs`` (as the user wrote them: what the
    output shows), the ``filter``; ``default``: none given (``total calls``, or ``$retval``)."""

    def __init__(self, raw: str, hist: bool, probe: Any, params: list, types: list, exprs: list, filter: str,
                 label: str | None, default: bool) -> None:
        self.raw, self.hist, self.probe, self.params = raw, hist, probe, params
        self.types, self.exprs, self.filter, self.label, self.default = types, exprs, filter, label, default

    def key_text(self, key: Any) -> str:
        """A ``-C`` key as BCC shows it: ``expr = value, ...`` (``total calls`` without exprs)."""
        if self.default:
            return f"retval = {_value(key.v0)}" if self.probe.kind in ("kretprobe", "uretprobe", "fexit") \
                else "total calls"
        return ", ".join(f"{e} = {_value(getattr(key, f'v{i}'))}" for i, e in enumerate(self.exprs))

    def key_json(self, key: Any) -> dict:
        if self.default:
            return {"retval": _value(key.v0)} if self.probe.kind in ("kretprobe", "uretprobe", "fexit") else {}
        return {e: _value(getattr(key, f"v{i}")) for i, e in enumerate(self.exprs)}


def _value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.split(b"\0", 1)[0].decode(errors="replace")
    return int(v) if hasattr(v, "__index__") else v


def parse_spec(raw: str, *, hist: bool, pid: int | None) -> Spec:
    """A specifier (see the module's docstring) as a :class:`Spec`; a ``ValueError`` saying
    what is wrong otherwise."""
    from ._gen import signature
    from ._probes import parse, split_outside

    spec, hash_, label = raw.partition("#")
    parts = [p.strip() for p in split_outside(spec.strip(), ":")]
    if len(parts) < 3:
        raise ValueError("at least the probe type, library, and function signature must be specified")
    if len(parts) > 6:
        raise ValueError("extraneous ':'-separated parts detected")
    letter, library, func = parts[0], parts[1], parts[2]
    if letter not in _LETTERS:
        raise ValueError(f"probe type must be 'p', 'r', 't', or 'u' but got '{letter}'")
    name, paren, sig = func.partition("(")
    if not name.strip() or not paren or not sig.endswith(")"):
        raise ValueError(f"function signature '{func}' has an invalid format")
    name, sig = name.strip(), sig[:-1].strip()
    if letter in "tu" and sig:
        raise ValueError("USDT and tracepoint probes can't have a function signature; use arg1, arg2, ... or "
                         "args->field instead")
    params = signature(sig)
    probe = parse(f"t:{library}:{name}" if letter == "t" else f"{_LETTERS[letter]}:{library}:{name}", pid=pid)
    returns = probe.kind in ("kretprobe", "uretprobe", "fexit")
    default = len(parts) < 5
    if default:
        if hist and not returns:
            raise ValueError("histograms must have expr")
        types, exprs = (["int"], ["$retval"]) if returns else (["u64"], ["1"])
    else:
        types = [t.strip() for t in split_outside(parts[3], ",")]
        exprs = [e.strip() for e in split_outside(parts[4], ",")]
        if not all(types) or not all(exprs):
            raise ValueError("an empty type or expression")
        if len(exprs) != len(types):
            raise ValueError("mismatched # of exprs and types")
        if hist and len(exprs) > 1:
            raise ValueError("histograms can only have 1 expr")
    return Spec(raw, hist, probe, params, types, exprs, parts[5] if len(parts) == 6 else "",
                label if hash_ else None, default)


def string_size(text: str) -> int:
    """-z: a string size, 1 to 4096 bytes."""
    if not text.isdigit() or not 1 <= int(text) <= 4096:
        raise invalid(f"{text!r} is not a string size from 1 to 4096")
    return int(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-p", "--pid", type=pid, help="id of the process to trace (optional)")
    p.add_argument("-t", "--tid", type=pid, help="id of the thread to trace (optional)")
    TOOL.groups += ["pid", "tid"]  # the kit sets their filters
    p.add_argument("-z", "--string-size", type=string_size, default=80,
                   help="maximum string size to read from char* arguments")
    p.add_argument("-i", "--interval", type=seconds, default=1.0, help="output interval, in seconds (default 1 second)")
    p.add_argument("-d", "--duration", type=seconds, help="total duration of trace, in seconds")
    p.add_argument("-n", "--number", type=count, dest="count", help="number of outputs")
    p.add_argument("-v", "--verbose", action="store_true", help="print resulting BPF program code before executing")
    p.add_argument("-c", "--cumulative", action="store_true",
                   help="do not clear histograms and freq counts at each interval")
    p.add_argument("-T", "--top", type=count, help="number of top results to show (not applicable to histograms)")
    p.add_argument("-H", "--histogram", action="append", dest="histspecifier", metavar="specifier",
                   help="probe specifier to capture histogram of (see examples below)")
    p.add_argument("-C", "--count", action="append", dest="countspecifier", metavar="specifier",
                   help="probe specifier to capture count of (see examples below)")
    p.add_argument("-I", "--include", action="append", metavar="header",
                   help="accepted for BCC's command lines: the kernel's types come from its BTF here")
    TOOL.add_groups(p, "json", "prometheus")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    args = p.parse_args(argv)
    from ._probes import ProbeError

    args.specs = []
    for raw, hist in [(s, False) for s in args.countspecifier or ()] + [(s, True) for s in args.histspecifier or ()]:
        try:
            args.specs.append(parse_spec(raw, hist=hist, pid=args.pid))
        except (ProbeError, ValueError) as e:
            p.error(f"error parsing probe '{raw}': {e}")
    if not args.specs:
        p.error("at least one specifier is required (-C or -H)")
    # -d: as BCC, the last output is the one at or past the duration.
    limit = 99999999 if args.duration is None else max(1, -int(-args.duration // args.interval))
    args.count = min(args.count or 99999999, limit)
    if args.prometheus:  # served: every count since the start
        args.cumulative, args.top = True, None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import Summed, before_load, summaries
    from ._probes import resolve

    args = parse_args(argv)
    summed = []
    index = 0
    for s in args.specs:
        targets = resolve([s.probe])
        for t in targets:
            t.index = index
            index += 1
        summed.append(Summed(s.raw, targets, params=s.params, exprs=s.exprs, types=s.types, filter=s.filter,
                             hist=s.hist))
    prog = summaries(summed, string_size=args.string_size)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.verbose, include=args.include or ()):
        return 0
    with prog.load(TOOL, args) as b:
        for _ in intervals(args):
            if exporter(args) is not None:
                serve(exporter(args), b, args)
                continue
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"),
                            "probes": [_json(b, j, s, args) for j, s in enumerate(args.specs)]})
                continue
            print("[%s]" % time.strftime("%H:%M:%S"))
            for j, s in enumerate(args.specs):
                _display(b, j, s, args)
            sys.stdout.flush()
    return 0


def serve(serving: Any, b: Any, args: Any) -> None:
    """The probes' histograms (``bpfkit_argdist_value{probe=}``, the expression's own values as
    bounds) and counts (``bpfkit_argdist_events_total{probe=, event=}``) since the start."""
    hists: dict = {}
    counts: dict = {}
    for j, s in enumerate(args.specs):
        if s.hist:
            hists[s.label or s.raw] = _slots(b, j, True)
        else:
            counts.update({(s.label or s.raw, s.key_text(k)): n for k, n in _counts(b, j, s, args)})
    if hists:
        serving.histogram("value", hists, "value", section="probe", help="argdist -H: each probe's values")
    if counts:
        serving.counter("events_total", "argdist -C: events, by probe and the values of its expressions",
                        ("probe", "event"), counts)


def _slots(b: Any, j: int, cumulative: bool) -> dict:
    table = b[f"dist_{j}"]
    slots = {i: int(v.value) for i, v in enumerate(table.values()) if v.value}
    if not cumulative:
        table.clear()
    return slots


def _counts(b: Any, j: int, s: Spec, args: Any) -> list:
    table = b[f"counts_{j}"]
    rows = sorted(((k, int(v.value)) for k, v in table.items()), key=lambda kv: kv[1])
    if not args.cumulative:
        table.clear()
    return rows[-args.top:] if args.top else rows


def _label(s: Spec) -> str:
    return s.label or ("retval" if s.default else s.exprs[0])


def _display(b: Any, j: int, s: Spec, args: Any) -> None:
    if s.hist:
        print_hists({None: _slots(b, j, args.cumulative)}, args, _label(s))
        return
    print(s.label or s.raw)
    print("\t%-10s %s" % ("COUNT", "EVENT"))
    for k, n in _counts(b, j, s, args):
        print("\t%-10s %s" % (n, s.key_text(k)))


def _json(b: Any, j: int, s: Spec, args: Any) -> dict:
    if s.hist:
        from bpfkit._hist import hist_json

        return {"probe": s.label or s.raw, **hist_json({None: _slots(b, j, args.cumulative)}, _label(s))}
    return {"probe": s.label or s.raw, "counts": [{"count": n, "values": s.key_json(k)}
                                                  for k, n in _counts(b, j, s, args)]}


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("argdist", main))
