"""trace: Attach to functions and print trace messages.

BCC's flags and output (PID TID COMM FUNC and the message): each probe is a BCC probe
specification, an optional function signature, an optional filter in parentheses and an
optional printf-style format with its values. The values are C expressions over BCC's aliases:
``arg1``..``arg6``, ``retval`` (at a return probe, ``r:``), a tracepoint's ``args->field``, the
signature's parameter names, ``$pid $tgid $uid $gid $cpu $task``, ``STRCMP("text", expr)``.
Every probe kind: kernel functions (kprobes; on a kernel without kprobes a system call's
function is traced at its ``syscalls`` tracepoints), tracepoints, user functions (uprobes),
USDT probes, fentry/fexit (``f:``/``F:``). ``%s`` prints the string a value points to, read
from the user's memory for system call arguments and user-space probes (``args->filename`` of
``sys_enter_openat`` prints the file name) and from the kernel's, else the user's, for kernel
functions. ``-U``/``-K`` print the stacks under each event; ``-j`` one JSON object per event.
The BPF C is generated (``-v`` prints it before starting, ``--ebpf`` instead of starting).

Examples::

    bpfkit trace do_sys_openat2                        # a line per call of do_sys_openat2
    bpfkit trace 'p::do_sys_openat2 "%s", arg2'        # with the file name opened
    bpfkit trace 't:syscalls:sys_enter_openat "%s", args->filename'   # at the syscall's tracepoint
    bpfkit trace 'sys_read (arg3 > 20000) "read %d bytes", arg3'     # reads of more than 20000 bytes
    bpfkit trace 'r::do_sys_openat2 "%d", retval'      # the value it returned
    bpfkit trace 'c:open (arg2 == 42) "%s %d", arg1, arg2'   # libc's open() with flags 42
    bpfkit trace 'c:malloc "size = %d", arg1'          # malloc() sizes
    bpfkit trace 'p:c:write (arg1 == 1) "writing %d bytes to STDOUT", arg3'
    bpfkit trace 'r:c:malloc (retval) "allocated = %x", retval'
    bpfkit trace 't:block:block_rq_complete "sectors=%d", args->nr_sector'
    bpfkit trace 'u:pthread:pthread_create (arg4 != 0)'   # a USDT probe, with a filter
    bpfkit trace 'p:c:open(const char *path) (STRCMP("/etc/passwd", path)) "opened"'
    bpfkit trace -p 181 -M 10 -T 'c:write "%d", arg3'  # process 181, ten events, with the time
    bpfkit trace -U 'c:malloc "%d", arg1'              # each event's user stack
    bpfkit trace -j 'r::vfs_read "%d", retval'         # JSON lines
"""

from __future__ import annotations

import os
import sys
import time

try:
    from ._kit import Tool, event_loop, invalid, pid, uid
except ImportError:  # run as a script from tools/
    from _kit import Tool, event_loop, invalid, pid, uid  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__, generated=True)

#: The C type of each printf conversion's value (its length modifier, then its letter); a
#: string (``s``) has none. ``K`` and ``U`` are BCC's: a kernel or user address, printed as its
#: symbol.
_SIGNED = {"": "int", "hh": "char", "h": "short", "l": "long", "ll": "long long", "z": "long", "j": "long long",
           "t": "long"}
_UNSIGNED = {"": "unsigned int", "hh": "unsigned char", "h": "unsigned short", "l": "unsigned long",
             "ll": "unsigned long long", "z": "unsigned long", "j": "unsigned long long", "t": "unsigned long"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "?": "?"}


class Conversion:
    """One conversion of a format: its Python format (``%-5d``), the C type of its value (None:
    a string), and how the value is shown (``int``, ``char``, ``str``, ``ptr``, ``ksym``, ``usym``)."""

    __slots__ = ("pyfmt", "ctype", "show", "signed")

    def __init__(self, pyfmt: str, ctype: str | None, show: str, signed: bool = False) -> None:
        self.pyfmt, self.ctype, self.show, self.signed = pyfmt, ctype, show, signed


class TraceProbe:
    """One probe of the command line, parsed: the ``spec`` as written, its :class:`Probe`, the
    signature's ``params``, the ``filter`` (C, or ""), the ``format`` (the text between the
    quotes; None without one) with its ``conversions`` and ``values`` (C expressions)."""

    def __init__(self, text: str, probe: Any, params: list, filter: str, fmt: str | None, conversions: list,
                 values: list) -> None:
        self.text, self.probe, self.params, self.filter = text, probe, params, filter
        self.format, self.conversions, self.values = fmt, conversions, values
        self.pieces: list = []  # the format split around its conversions (see message())

    def message(self, values: list) -> str:
        """The format with ``values`` (already shown as each conversion says) in place."""
        if self.format is None:
            return ""
        out = [self.pieces[0]]
        for conv, v, tail in zip(self.conversions, values, self.pieces[1:]):
            out.append(conv.pyfmt % v + tail)
        return "".join(out)


def _literal_end(text: str) -> int:
    """The index after the C string literal ``text`` starts with (-1: none)."""
    if not text.startswith('"'):
        return -1
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return -1


def _unescape(body: str) -> str:
    """A C string literal's text (between its quotes) with its escapes made characters."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e == "x":
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise ValueError("\\x without hex digits")
            out.append(chr(int(body[i + 2:j], 16) & 0xFF))
            i = j
        elif e in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(chr(int(body[i + 1:j], 8) & 0xFF))
            i = j
        elif e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        else:
            raise ValueError(f"unknown escape \\{e}")
    return "".join(out)


def parse_format(literal: str) -> tuple[str, list, list]:
    """A C string literal's format: ``(text, [Conversion], pieces)``, ``pieces`` the text around
    the conversions with ``%%`` made ``%``. (Parsed by hand: ``re`` stays off a tool's start.)

    >>> text, convs, pieces = parse_format('"%s opened %d"')
    >>> [c.ctype for c in convs], pieces
    ([None, 'int'], ['', ' opened ', ''])
    """
    if _literal_end(literal) != len(literal):
        raise ValueError(f"{literal} is not a C string literal")
    text = _unescape(literal[1:-1])
    convs: list = []
    pieces = [""]
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            pieces[-1] += c
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] in "-+ #0":
            j += 1
        flags = text[i + 1:j]
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        width = text[j:k]
        prec = ""
        if k < len(text) and text[k] == ".":
            m = k + 1
            while m < len(text) and text[m].isdigit():
                m += 1
            prec, k = text[k:m], m
        length = next((x for x in ("hh", "ll", "h", "l", "z", "j", "t") if text.startswith(x, k)), "")
        k += len(length)
        if k >= len(text):
            raise ValueError(f"{text[i:]!r}: a conversion without its letter")
        letter = text[k]
        i = k + 1
        if letter == "%":
            pieces[-1] += "%"
            continue
        spec = f"%{flags}{width}{prec}"
        if letter in "di":
            conv = Conversion(spec + "d", _SIGNED[length], "int", signed=True)
        elif letter in "uxXo":
            conv = Conversion(spec + ("d" if letter == "u" else letter), _UNSIGNED[length], "int")
        elif letter == "c":
            conv = Conversion(spec + "c", "char", "char")
        elif letter == "s":
            conv = Conversion(spec + "s", None, "str")
        elif letter == "p":
            conv = Conversion(spec + "s", "unsigned long long", "ptr")
        elif letter == "K":
            conv = Conversion(spec + "s", "unsigned long long", "ksym")
        elif letter == "U":
            conv = Conversion(spec + "s", "unsigned long long", "usym")
        else:
            raise ValueError(f"%{length}{letter}: not a conversion trace prints (d i u x X o c s p K U, "
                             "with h hh l ll)")
        convs.append(conv)
        pieces.append("")
    return text, convs, pieces


def parse_probe(text: str, *, pid: int | None) -> TraceProbe:
    """One probe of the command line: ``spec[(signature)] [(filter)] ["format"[, value...]]``,
    as BCC's trace takes it."""
    from ._gen import signature
    from ._probes import parse, split_outside

    text = text.strip()
    i = 0
    while i < len(text) and text[i] not in " \t(":
        i += 1
    spec, sig, rest = text[:i], "", text[i:]
    if not spec:
        raise ValueError("no probe specification")
    if rest.startswith("("):
        close = rest.find(")")
        if close > 0 and "(" not in rest[1:close]:
            sig, rest = rest[:close + 1], rest[close + 1:]
    rest = rest.lstrip()
    probe = parse(spec, pid=pid)
    if sig and probe.kind in ("tracepoint", "usdt"):
        raise ValueError("USDT and tracepoint probes can't have a function signature; use arg1, arg2, ... or "
                         "args->field instead")
    params = signature(sig[1:-1]) if sig else []
    filt = ""
    if rest.startswith("("):
        depth, end = 0, 0
        for end, c in enumerate(rest):  # noqa: B007 - end is used after the loop
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth == 0:
                break
        if depth:
            raise ValueError("unmatched end of predicate")
        filt, rest = rest[1:end].strip(), rest[end + 1:].lstrip()
    fmt = None
    convs: list = []
    values: list = []
    pieces = [""]
    if rest:
        end = _literal_end(rest)
        if end < 0:
            raise ValueError(f'expected a format string in "s, got {rest!r}')
        fmt, convs, pieces = parse_format(rest[:end])
        after = rest[end:].strip()
        if after and not after.startswith(","):
            raise ValueError(f"expected a ',' after the format, got {after!r}")
        values = [v.strip() for v in split_outside(after[1:])] if after else []
        if any(not v for v in values):
            raise ValueError("an empty value after the format")
        if len(values) != len(convs):
            raise ValueError(f"the format has {len(convs)} conversion(s) but {len(values)} value(s) follow it")
    tp = TraceProbe(text, probe, params, filt, fmt, convs, values)
    tp.pieces = pieces
    return tp


def string_size(text: str) -> int:
    """-Z: a string size, 1 to 4096 bytes."""
    if not text.isdigit() or not 1 <= int(text) <= 4096:
        raise invalid(f"{text!r} is not a string size from 1 to 4096")
    return int(text)


def positive(text: str) -> int:
    """A count of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise invalid(f"{text!r} is not a positive integer")
    return int(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-b", "--buffer-pages", type=positive, default=64,
                   help="number of pages to use for perf_events ring buffer (default: 64)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=pid, metavar="PID", help="id of the process to trace (optional)")
    who.add_argument("-L", "--tid", type=pid, metavar="TID", help="id of the thread to trace (optional)")
    p.add_argument("--uid", type=uid, metavar="UID", help="id of the user to trace (optional)")
    TOOL.groups += ["pid", "tid", "uid"]  # the kit sets their filters
    p.add_argument("-v", "--verbose", action="store_true", help="print resulting BPF program code before executing")
    p.add_argument("-Z", "--string-size", type=string_size, default=80, help="maximum size to read from strings")
    p.add_argument("-S", "--include-self", action="store_true", help="do not filter trace's own pid from the trace")
    p.add_argument("-M", "--max-events", type=positive, help="number of events to print before quitting")
    p.add_argument("-t", "--timestamp", action="store_true", help="print timestamp column (offset from trace start)")
    p.add_argument("-u", "--unix-timestamp", action="store_true",
                   help="print UNIX timestamp instead of offset from trace start, requires -t")
    p.add_argument("-T", "--time", action="store_true", help="print time column")
    p.add_argument("-C", "--print_cpu", action="store_true", help="print CPU id")
    TOOL.add_groups(p, "cgroup")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-f", "--msg-filter", dest="msg_filter", help="only print the msg of event containing this string")
    p.add_argument("-B", "--bin_cmp", action="store_true", help="allow to use STRCMP with binary values")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-a", "--address", action="store_true", help="print virtual address in stacks")
    p.add_argument("-I", "--include", action="append", metavar="header",
                   help="accepted for BCC's command lines: the kernel's types come from its BTF here")
    p.add_argument("-A", "--aggregate", action="store_true", help="aggregate amount of each trace")
    TOOL.add_groups(p, "duration", "json")
    p.add_argument("--ebpf", action="store_true", help="==SUPPRESS==")
    p.add_argument("probes", metavar="probe", nargs="+", help="probe specifier (see examples)")
    args = p.parse_args(argv)
    if args.aggregate and args.max_events is None:
        p.error("-M/--max-events should be specified with -A/--aggregate")
    if args.unix_timestamp and not args.timestamp:
        p.error("-u/--unix-timestamp requires -t")
    from ._probes import ProbeError

    args.parsed = []
    for text in args.probes:
        try:
            args.parsed.append(parse_probe(text, pid=args.pid))
        except (ProbeError, ValueError) as e:
            p.error(f"error in probe '{text}': {e}")
    return args


def display_function(t: Any) -> str:
    """FUNC, as BCC's trace shows it: the function, the tracepoint's event, the USDT probe."""
    if t.kind == "tracepoint" and not t.syscall:
        return t.event.partition(":")[2]
    return t.name


def main(argv: Sequence[str] | None = None) -> int:
    from ._gen import Printed, before_load, tracer
    from ._kit import StopEvents
    from ._probes import resolve

    args = parse_args(argv)
    printed: list = []
    by_index: list = []
    for tp in args.parsed:
        targets = resolve([tp.probe])
        for t in targets:
            t.index = len(by_index)
            by_index.append((t, tp))
        printed.append(Printed(tp.text, targets, params=tp.params, filter=tp.filter,
                               values=list(zip(tp.values, [c.ctype for c in tp.conversions]))))
    prog = tracer(printed, string_size=args.string_size, bin_cmp=args.bin_cmp)
    if before_load(prog, TOOL.name, ebpf=args.ebpf, verbose=args.verbose, include=args.include or ()):
        return 0
    consts = {"user_stacks": args.user_stack, "kernel_stacks": args.kernel_stack,
              "skip_tgid": 0 if args.include_self else os.getpid()}
    name = os.fsencode(args.name) if args.name else None
    trivial = all(tp.format is None for tp in args.parsed)
    first_ns = time.monotonic_ns()
    first_real = time.time()
    seen = [0]
    aggregate: dict = {}
    out = sys.stdout

    def stamp(e: Any) -> str:
        if args.time and not args.timestamp:
            return "%-8s " % time.strftime("%H:%M:%S")
        offset = (e.ts - first_ns) / 1e9
        if args.unix_timestamp:
            return "%-17s " % ("%.6f" % (offset + first_real))
        return "%-8s " % ("%.6f" % offset)

    def frames(b: Any, stack_id: int, tgid: int, kernel: bool) -> list:
        if stack_id < 0:
            return [] if stack_id == -14 else [f"[Missed {'Kernel' if kernel else 'User'} Stack]"]
        try:
            addrs = list(b["stacks"].walk(stack_id))
        except KeyError:
            return []
        names = [b.ksym(a, show_offset=True) if kernel else b.sym(a, tgid, show_module=True, show_offset=True)
                 for a in addrs]
        return [("%16x " % a if args.address else "") + n for a, n in zip(addrs, names)]

    def on_event(e: Any) -> None:
        comm = bytes(e.comm)
        if name is not None and name not in comm:
            return
        t, tp = by_index[e.index]
        shown: list = []
        k = s = 0
        for conv in tp.conversions:
            if conv.ctype is None:
                v: Any = bytes(e.str[s]).split(b"\0", 1)[0].decode(errors="replace")
                s += 1
            else:
                v = int(e.num[k])
                k += 1
                if conv.signed and v >= 1 << 63:
                    v -= 1 << 64
                if conv.show == "char":
                    v = chr(v & 0xFF)
                elif conv.show == "ptr":
                    v = "0x%x" % v
                elif conv.show == "ksym":
                    v = b.ksym(v, show_offset=True)
                elif conv.show == "usym":
                    v = b.sym(v, e.tgid, show_module=True, show_offset=True)
            shown.append(v)
        msg = tp.message(shown)
        if args.msg_filter and args.msg_filter not in msg:
            return
        kstack = frames(b, e.kernel_stack, -1, True) if args.kernel_stack else []
        ustack = frames(b, e.user_stack, e.tgid, False) if args.user_stack else []
        text_comm = comm.split(b"\0", 1)[0].decode(errors="replace")
        if args.json:
            from ._kit import print_json

            obj: dict = {}
            if args.timestamp:
                obj["ts"] = (e.ts - first_ns) / 1e9 + (first_real if args.unix_timestamp else 0)
            elif args.time:
                obj["time"] = time.strftime("%H:%M:%S")
            if args.print_cpu:
                obj["cpu"] = e.cpu
            obj.update(pid=e.tgid, tid=e.pid, comm=text_comm, func=display_function(t), msg=msg, values=shown)
            if args.kernel_stack:
                obj["kernel_stack"] = kstack
            if args.user_stack:
                obj["user_stack"] = ustack
            print_json(obj)
        else:
            line = stamp(e) if (args.timestamp or args.time) else ""
            if args.print_cpu:
                line += "%-3s " % e.cpu
            line += "%-7d %-7d %-15s %-16s %s\n" % (e.tgid, e.pid, text_comm, display_function(t), msg)
            line += "".join(f"        {f}\n" for f in kstack + ustack)
            if args.kernel_stack or args.user_stack:
                line += "\n"
            if args.aggregate:
                aggregate[line] = aggregate.get(line, 0) + 1
            else:
                out.write(line)
                out.flush()
        seen[0] += 1
        if args.max_events is not None and seen[0] >= args.max_events:
            raise StopEvents

    def ready() -> None:
        if args.json:
            return
        head = ""
        if args.timestamp or args.time:
            head += ("%-17s " if args.unix_timestamp else "%-8s ") % "TIME"
        if args.print_cpu:
            head += "%-3s " % "CPU"
        out.write(head + "%-7s %-7s %-15s %-16s %s\n" % ("PID", "TID", "COMM", "FUNC", "" if trivial else "-"))
        out.flush()

    with prog.load(TOOL, args, consts=consts) as b:
        b["events"].set_record("event")
        event_loop(b, on_event, duration=args.duration, ready=ready, page_cnt=_power_of_two(args.buffer_pages))
    if args.aggregate:
        for line, n in sorted(aggregate.items(), key=lambda item: item[1], reverse=True):
            out.write("%s-->COUNT %d\n\n" % (line, n))
        out.flush()
    return 0


def _power_of_two(n: int) -> int:
    """The perf buffer's pages: ``n``, rounded up to a power of two (as the kernel needs)."""
    p = 1
    while p < n:
        p <<= 1
    return p


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("trace", main))
