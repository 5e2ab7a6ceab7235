"""The last generic tools (trace, argdist, stackcount) and the generator pieces they are built on
(tools/_gen.py: tracepoint records, user expressions, their programs).

The tools run against a C program built here with frame pointers (tests/targets/
trace_target.c) that makes exactly the calls a test asks for over stdin: bpfkit_trace_me(V) for
each value given, N and M calls of bpfkit_leaf() from two callers, N reads of a given size, an
open() of a given path. Each test asserts the values the tool printed against those calls, with
``-p`` keeping the rest of the system out. The kprobe forms run in the qemu kernels
(``@pytest.mark.kernels``) and skip here, where the kernel has no kprobes, through the feature's
probe."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bpfkit.tools import _gen, _probes
from bpfkit.tools._probes import ProbeError, parse, resolve

from ._features import need
from ._target import Target, build
from .test_kit import start_quiet
from .test_tools import BPFKIT, finish, start_tool, wait_header
from .test_tools_stacks import folded_lines

TARGETS = Path(__file__).resolve().parent / "targets"
COMM = "trace_target"
TRACE_HEADER = r"^PID\s+TID\s+COMM\s+FUNC"


@pytest.fixture(scope="module")
def target_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Frame pointers, and no endbr64 before a function's push %rbp: the user stacks unwind
    # through every frame, the one a uprobe at the entry interrupts included.
    return build(TARGETS / "trace_target.c", tmp_path_factory.mktemp("trace") / COMM, "-O0", "-g",
                 "-fno-omit-frame-pointer", "-fcf-protection=none")


@pytest.fixture
def target(target_bin: Path):
    t = Target(str(target_bin))
    yield t
    t.stop()


def run_tool(args: list[str], header: str, *steps: str, t: Target | None = None) -> tuple[str, str]:
    """Runs a tool until it ends by itself, sending ``steps`` to the target once a line of its
    output matches ``header``; the output after that line, and its stderr."""
    p = start_tool(*args)
    wait_header(p, header)
    for s in steps:
        assert t is not None
        t.cmd(s)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return out, err


def trace_rows(out: str) -> list[list[str]]:
    """trace's event lines as ``[PID, TID, COMM, FUNC, MSG]``."""
    return [line.split(None, 4) + [""] * (5 - len(line.split(None, 4))) for line in out.splitlines() if line.strip()]


# -- the generator's pieces ----------------------------------------------------------------------------

def test_tracepoint_struct_puts_each_field_at_its_offset():
    fields = _gen.tracepoint_fields("syscalls:sys_enter_openat")
    by_name = {f.name: f for f in fields}
    assert by_name["filename"].pointer and by_name["filename"].ctype == "const char *"
    text = _gen.tracepoint_struct("syscalls:sys_enter_openat").text()
    assert text.startswith("/* the record of tracepoint syscalls:sys_enter_openat")
    assert "\tconst char * filename;\n" in text and text.rstrip().endswith("} __attribute__((packed));")
    # int dfd is 8 bytes in a syscall's record: an integer of the record's size.
    assert "\tu64 dfd;\n" in text
    # A __data_loc string is its u32 (offset | length << 16).
    exec_fields = {f.name: f for f in _gen.tracepoint_fields("sched:sched_process_exec")}
    assert exec_fields["filename"].data_loc and exec_fields["filename"].ctype == "u32"


def test_scope_maps_aliases_for_each_kind(target_bin: Path):
    prog = _gen.Program("t")
    (up,) = resolve([parse(f"{target_bin}:bpfkit_trace_me")])
    s = _gen.Scope(prog, up, params=_gen.signature("long v"))
    assert s.c("arg1 > 5 && $pid != 0") == "((u64)PT_REGS_PARM1(ctx)) > 5 && (u32)bpf_get_current_pid_tgid() != 0"
    assert s.c('"arg1 stays"') == '"arg1 stays"' and s.c("myarg1 + arg10x") == "myarg1 + arg10x"
    assert s.c("v * 2") == "v * 2" and [d.lines() for d in s.prologue()] == [["long v = (long)((u64)PT_REGS_PARM1(ctx));"]]
    assert s.memory("arg1") == "user"
    with pytest.raises(ProbeError, match="retval is the value a function returns"):
        s.c("retval")
    (ret,) = resolve([parse(f"r:{target_bin}:bpfkit_trace_me")])
    assert _gen.Scope(prog, ret).c("$retval == 3") == "((u64)PT_REGS_RC(ctx)) == 3"
    (tp,) = resolve([parse("t:syscalls:sys_enter_openat")])
    st = _gen.Scope(prog, tp)
    assert st.c("args->flags & 1") == "args->flags & 1" and st.memory("args->filename") == "user"
    assert [d.lines() for d in st.prologue()] == [["struct tp__syscalls__sys_enter_openat *args = ctx;"]]
    with pytest.raises(ProbeError, match="a tracepoint has no arg1: its fields are args->NAME"):
        st.c("arg1")
    (sched,) = resolve([parse("t:sched:sched_process_exec")])
    reads = [line for stmt in _gen.Scope(prog, sched).read_str("d", "8", "args->filename") for line in stmt.lines()]
    assert reads == ["bpf_probe_read_kernel_str(d, 8, (const void *)((char *)ctx + (args->filename & 0xffff)));"]
    with pytest.raises(ProbeError, match=r"no alias \$nosuch"):
        st.c("$nosuch")


def test_strcmp_is_a_whole_string_comparison():
    prog = _gen.Program("t")
    (tp,) = resolve([parse("t:syscalls:sys_enter_openat")])
    expr = _gen.Scope(prog, tp).c('STRCMP("ab", args->filename) && 1')
    assert expr == "streq_0((u64)(const void *)(long)(args->filename)) && 1"
    (fn,) = prog.helpers
    text = fn.text()
    # "ab" and its NUL, read from the user's memory (a syscall's argument), at most 3 bytes + NUL.
    assert "char got[4] = {};" in text and "bpf_probe_read_user_str(got, sizeof(got)" in text
    assert "return (u8)got[0] == 97 && (u8)got[1] == 98 && (u8)got[2] == 0;" in text


def test_kernel_function_strings_are_read_from_either_side():
    """A kernel function's pointer may be the kernel's or the user's (``const char __user *``):
    the kernel's is tried first; a syscall wrapper's arguments are the user's registers."""
    prog = _gen.Program("t")
    fn = _probes.Target(parse("p::do_sys_openat2"), "kprobe", "do_sys_openat2")
    s = _gen.Scope(prog, fn)
    lines = [line for stmt in s.read_str("d", "8", "arg2") for line in stmt.lines()]
    assert lines[0] == "const void *__str1 = (const void *)(long)(((u64)PT_REGS_PARM2(ctx)));"
    assert lines[1:] == ["if (bpf_probe_read_kernel_str(d, 8, __str1) < 0) {", "\tbpf_probe_read_user_str(d, 8, __str1);",
                         "}"]
    assert s.memory("arg2@user") == "user" and s.c("arg2@user") == "((u64)PT_REGS_PARM2(ctx))"
    wrapper = _gen.Scope(prog, _probes.Target(parse("p::__x64_sys_openat"), "kprobe", "__x64_sys_openat"))
    assert wrapper.c("arg2") == "((u64)PT_REGS_PARM2_CORE_SYSCALL((struct pt_regs *)PT_REGS_PARM1(ctx)))"
    assert wrapper.memory("arg2") == "user"


# -- trace ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, sig, filt, fmt, values", [
    ('do_sys_open "%s", arg2@user', None, "", "%s", ["arg2@user"]),
    ("sys_read (arg3 > 20000) \"read %d bytes\", arg3", None, "arg3 > 20000", "read %d bytes", ["arg3"]),
    ('p:c:write (arg1 == 1) "writing %d bytes, %s", arg3, STRCMP("a,b", arg2)', None, "arg1 == 1",
     "writing %d bytes, %s", ["arg3", 'STRCMP("a,b", arg2)']),
    ('p:c:open(const char *path, int flags) (flags > 1)', [("const char *", "path"), ("int", "flags")],
     "flags > 1", None, []),
    ("r::vfs_read", None, "", None, []),
])
def test_trace_parses_bccs_probes(spec: str, sig: list | None, filt: str, fmt: str | None, values: list):
    from bpfkit.tools.trace import parse_probe

    tp = parse_probe(spec, pid=None)
    assert (tp.params, tp.filter, tp.format, tp.values) == (sig or [], filt, fmt, values)


def test_trace_format_conversions():
    from bpfkit.tools.trace import parse_format

    text, convs, pieces = parse_format(r'"%-5d|%llu|%lx|%c|%s|100%%|%hd\n"')
    assert [c.ctype for c in convs] == ["int", "unsigned long long", "unsigned long", "char", None, "short"]
    assert [c.pyfmt for c in convs] == ["%-5d", "%d", "%x", "%c", "%s", "%d"]
    assert pieces == ["", "|", "|", "|", "|", "|100%|", "\n"]
    with pytest.raises(ValueError, match="not a conversion trace prints"):
        parse_format('"%q"')


@pytest.mark.parametrize("args, words", [
    (['c:malloc "%d %d", arg1'], "the format has 2 conversion(s) but 1 value(s)"),
    (["c:malloc (arg1 > 2"], "unmatched end of predicate"),
    (['t:sched:sched_switch(int x) "%d", x'], "can't have a function signature"),
    (["-A", "c:malloc"], "-M/--max-events should be specified with -A"),
    (["-p", "1", "-L", "1", "c:malloc"], "not allowed with"),
])
def test_trace_usage_errors_are_one_line(args: list[str], words: str):
    r = subprocess.run([*BPFKIT, "trace", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_trace_prints_the_filename_a_child_opened(target: Target, tmp_path: Path):
    """BCC's trace prints an empty string here: the filename is the user's memory."""
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    marker.write_text("x")
    # -Z: pytest's directory makes paths longer than the 80 bytes read by default.
    out, _ = run_tool(["trace", "-Z", "256", "-d", "2", "-p", str(target.pid),
                       't:syscalls:sys_enter_openat "%s", args->filename'],
                      TRACE_HEADER, f"open {marker}", f"open {marker}.missing", t=target)
    assert trace_rows(out) == [[str(target.pid), str(target.pid), COMM, "sys_enter_openat", str(marker)],
                               [str(target.pid), str(target.pid), COMM, "sys_enter_openat", f"{marker}.missing"]], out


def test_trace_uprobe_arguments_and_return_values(target: Target, target_bin: Path):
    fn = f"{target_bin}:bpfkit_trace_me"
    out, _ = run_tool(["trace", "-d", "2", "-p", str(target.pid), f'{fn} "v=%d", arg1', f'r:{fn} "%ld", retval'],
                      r"^PID\s+TID\s+COMM\s+FUNC\s+-$", "values 3 -7 9", t=target)
    rows = trace_rows(out)
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (str(target.pid), COMM, "bpfkit_trace_me", m) for m in ("v=3", "103", "v=-7", "93", "v=9", "109")], out


def test_trace_filter_keeps_only_matching_calls(target: Target, target_bin: Path):
    out, _ = run_tool(["trace", "-d", "2", "-p", str(target.pid), f'{target_bin}:bpfkit_trace_me (arg1 > 5) "%d", arg1'],
                      TRACE_HEADER, "values 1 6 5 12 0 7", t=target)
    assert [r[4] for r in trace_rows(out)] == ["6", "12", "7"], out
    # arg1 is a register, unsigned as in BCC: a signed comparison says so.
    out, _ = run_tool(["trace", "-d", "2", "-p", str(target.pid),
                       f'{target_bin}:bpfkit_trace_me ((long)arg1 < 0) "%d", arg1'],
                      TRACE_HEADER, "values 1 -6 5 -12", t=target)
    assert [r[4] for r in trace_rows(out)] == ["-6", "-12"], out


@pytest.mark.parametrize("transport", ["ring", "perf"])
def test_trace_max_events_exits_after_them(target: Target, target_bin: Path, transport: str):
    import os

    p = subprocess.Popen([*BPFKIT, "trace", "-M", "3", "-p", str(target.pid), f'{target_bin}:bpfkit_trace_me "%d", arg1'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "BPFKIT_TOOL_EVENTS": transport})
    wait_header(p, TRACE_HEADER)
    target.cmd("values 1 2 3 4 5 6")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert [r[4] for r in trace_rows(out)] == ["1", "2", "3"], out


def test_trace_timestamps_names_and_json(target: Target, target_bin: Path):
    fn = f"{target_bin}:bpfkit_trace_me"
    out, _ = run_tool(["trace", "-t", "-C", "-d", "2", "-n", "trace_tar", "-p", str(target.pid), f'{fn} "%x", arg1'],
                      r"^TIME\s+CPU\s+PID\s+TID\s+COMM\s+FUNC\s+-$", "values 255 16", t=target)
    rows = [line.split() for line in out.splitlines()]
    assert [r[5:] for r in rows] == [["bpfkit_trace_me", "ff"], ["bpfkit_trace_me", "10"]], out
    assert 0 < float(rows[0][0]) <= float(rows[1][0]) < 5, out  # -t: seconds since the start
    # -n: a name the target's does not contain shows nothing.
    out, _ = run_tool(["trace", "-d", "1", "-n", "nosuchname", "-p", str(target.pid), f'{fn} "%x", arg1'],
                      TRACE_HEADER, "values 1", t=target)
    assert out == ""
    p = start_quiet(1, "trace", "-j", "-d", "2", "-p", str(target.pid), f"{fn} \"%d %c\", arg1, 'x'")
    target.cmd("values 42")
    objs = [json.loads(line) for line in finish(p).splitlines()]
    assert objs == [{"pid": target.pid, "tid": target.pid, "comm": COMM, "func": "bpfkit_trace_me", "msg": "42 x",
                     "values": [42, "x"]}], objs


def test_trace_user_stack_under_each_event(target: Target, target_bin: Path):
    out, _ = run_tool(["trace", "-U", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_leaf"],
                      TRACE_HEADER, "callers 1 1", t=target)
    blocks = out.strip("\n").split("\n\n")
    assert len(blocks) == 2, out
    for block, caller in zip(blocks, ("bpfkit_caller_one", "bpfkit_caller_two")):
        head, *frames = block.split("\n")
        assert head.split() == [str(target.pid), str(target.pid), COMM, "bpfkit_leaf"], block
        names = [re.split(r"[+ ]", f.strip())[0] for f in frames]
        assert names[0] == "bpfkit_leaf" and caller in names and names.index(caller) < names.index("main"), block


@pytest.mark.kernels
def test_trace_kprobe_reads_a_user_string_without_at_user(target: Target, tmp_path: Path):
    need("kprobes")
    marker = tmp_path / f"kmarker-{uuid.uuid4().hex}"
    out, _ = run_tool(["trace", "-Z", "256", "-d", "2", "-p", str(target.pid), 'p::do_sys_openat2 "%s", arg2'],
                      TRACE_HEADER,
                      f"open {marker}", t=target)
    assert [str(target.pid), str(target.pid), COMM, "do_sys_openat2", str(marker)] in trace_rows(out), out


@pytest.mark.kernels
def test_trace_syscall_function_with_its_arguments(target: Target, tmp_path: Path):
    """``sys_openat``'s second argument: through the wrapper's registers where there are kprobes,
    from its tracepoint's record where not: the same file name either way."""
    marker = tmp_path / f"smarker-{uuid.uuid4().hex}"
    out, err = run_tool(["trace", "-Z", "256", "-d", "2", "-p", str(target.pid),
                         f'r::{_probes.syscall_prefix()}openat "%d", retval',
                         f'p::{_probes.syscall_prefix()}openat "%s", arg2'], TRACE_HEADER, f"open {marker}", t=target)
    rows = trace_rows(out)
    assert [r[4] for r in rows] == [str(marker), "-2"], (out, err)


# -- argdist ---------------------------------------------------------------------------------------------

def hist_rows(out: str) -> dict:
    """``{(low, high): count}`` of the histogram rows with a count."""
    return {(int(m.group(1)), int(m.group(2))): int(m.group(3))
            for m in re.finditer(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s*\|", out, re.M) if int(m.group(3))}


def test_argdist_histogram_of_read_sizes(target: Target):
    p = start_quiet(1, "argdist", "-i", "2", "-n", "1", "-p", str(target.pid),
                    "-H", "t:syscalls:sys_enter_read():size_t:args->count")
    target.cmd("read 10 100")
    target.cmd("read 5 5000")
    out = finish(p)
    assert re.match(r"^\[\d\d:\d\d:\d\d\]\n\s+args->count\s+: count\s+distribution\n", out), out
    # The target reads its commands a byte at a time: of the first, all but the byte its read
    # entered before the tool started waited for; then one read blocked for the next command,
    # and one after the last. 0 -> 1 counts those.
    assert hist_rows(out) == {(0, 1): len("read 10 100\n") + len("read 5 5000\n"), (64, 127): 10,
                              (4096, 8191): 5}, out


def test_argdist_counts_of_a_uprobe_argument(target: Target, target_bin: Path):
    spec = f"p:{target_bin}:bpfkit_trace_me(long v):long:v"
    p = start_quiet(1, "argdist", "-i", "2", "-n", "1", "-p", str(target.pid), "-C", spec)
    target.cmd("values 3 7 3 9 3 7")
    out = finish(p)
    lines = out.splitlines()
    assert lines[1:3] == [spec, "\tCOUNT      EVENT"], out
    assert [line.split(None, 1) for line in lines[3:]] == [["1", "v = 9"], ["2", "v = 7"], ["3", "v = 3"]], out


def test_argdist_filter_label_top_and_json(target: Target, target_bin: Path):
    spec = f"p:{target_bin}:bpfkit_trace_me():long:arg1:(long)arg1 >= 0#non-negative"
    p = start_quiet(1, "argdist", "-j", "-T", "2", "-i", "2", "-n", "1", "-p", str(target.pid), "-C", spec)
    target.cmd("values 1 -1 2 2 4 4 4 -5")
    (obj,) = [json.loads(line) for line in finish(p).splitlines()]
    assert obj["probes"] == [{"probe": "non-negative", "counts": [{"count": 2, "values": {"arg1": 2}},
                                                                   {"count": 3, "values": {"arg1": 4}}]}], obj


def test_argdist_return_values_and_latency(target: Target, target_bin: Path):
    spec = f"r:{target_bin}:bpfkit_trace_me(long v):long,long:$retval,$entry(v):$latency < 1000000000"
    p = start_quiet(2, "argdist", "-i", "2", "-n", "1", "-p", str(target.pid), "-C", spec)
    target.cmd("values 5 6 5")
    lines = finish(p).splitlines()
    assert [line.split(None, 1) for line in lines[3:]] == [["1", "$retval = 106, $entry(v) = 6"],
                                                           ["2", "$retval = 105, $entry(v) = 5"]], lines


@pytest.mark.parametrize("spec, words", [
    ("p:c", "at least the probe type, library, and function signature"),
    ("p:c:malloc", "function signature 'malloc' has an invalid format"),
    ("x:c:malloc()", "probe type must be 'p', 'r', 't', or 'u'"),
    ("p:c:malloc():int,int:arg1", "mismatched # of exprs and types"),
    ("p:c:malloc(size_t size)", "histograms must have expr"),
])
def test_argdist_usage_errors_are_one_line(spec: str, words: str):
    r = subprocess.run([*BPFKIT, "argdist", "-H", spec], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


# -- stackcount ------------------------------------------------------------------------------------------

def test_stackcount_user_stacks_of_two_callers(target: Target, target_bin: Path):
    out, _ = run_tool(["stackcount", "-U", "-D", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_leaf"],
                      r'^Tracing 1 functions for ".*bpfkit_leaf"\.\.\. Hit Ctrl-C to end\.$', "callers 3 5", t=target)
    assert out.startswith("\n") and out.endswith("Detaching...\n"), out
    blocks = out.strip("\n").removesuffix("Detaching...").strip("\n").split("\n\n")
    assert len(blocks) == 2, out
    got = []
    for block in blocks:
        lines = block.split("\n")
        frames = [line[2:] for line in lines[:-1]]
        assert all(line.startswith("  ") and not line.startswith("   ") for line in lines[:-1]), block
        assert frames[0] == "bpfkit_leaf" and "main" in frames, block
        caller = next(f for f in frames if f.startswith("bpfkit_caller_"))
        assert frames.index(caller) < frames.index("main"), block
        got.append((caller, int(lines[-1].strip())))
    assert got == [("bpfkit_caller_one", 3), ("bpfkit_caller_two", 5)], out  # least first


def test_stackcount_folded_and_flamegraph(target: Target, target_bin: Path, tmp_path: Path):
    svg = tmp_path / "leaf.svg"
    p = start_quiet(1, "stackcount", "-U", "-f", "--flamegraph", str(svg), "-D", "2", "-p", str(target.pid),
                    f"{target_bin}:bpfkit_leaf")
    target.cmd("callers 4 2")
    rows = folded_lines(finish(p))
    assert [(f[0], f[-1], n) for f, n in rows] == [(COMM, "bpfkit_leaf", 2), (COMM, "bpfkit_leaf", 4)], rows
    for (frames, _), caller in zip(rows, ("bpfkit_caller_two", "bpfkit_caller_one")):
        assert frames.index("main") < frames.index(caller) < len(frames) - 1, frames
    root = ET.parse(svg).getroot()
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    for caller, n in (("bpfkit_caller_one", 4), ("bpfkit_caller_two", 2)):
        (title,) = [t for t in titles if t.startswith(caller + " ")]
        assert re.match(rf"{caller} \({n} samples", title), title


def test_stackcount_per_process_json_and_tracepoints(target: Target):
    p = start_quiet(1, "stackcount", "-j", "-K", "-D", "2", "-p", str(target.pid), "t:syscalls:sys_enter_openat")
    target.cmd("open /nonexistent-bpfkit-a")
    target.cmd("open /nonexistent-bpfkit-b")
    objs = [json.loads(line) for line in finish(p).splitlines()]
    assert sum(o["count"] for o in objs) == 2, objs
    assert all(set(o) == {"comm", "pid", "kernel_stack", "count"} and o["pid"] == target.pid and o["comm"] == COMM
               for o in objs), objs
    # A syscall tracepoint's kernel stack: the system call's entry, before the call itself.
    assert all("do_syscall_64" in o["kernel_stack"] for o in objs), objs


def test_stackcount_refuses_what_matches_nothing(target_bin: Path):
    r = subprocess.run([*BPFKIT, "stackcount", f"{target_bin}:nosuch_*"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no function matches" in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.kernels
def test_stackcount_kernel_stacks_of_vfs_read(target: Target):
    need("kprobes")
    p = start_quiet(1, "stackcount", "-K", "-f", "-D", "2", "-p", str(target.pid), "vfs_read")
    target.cmd("read 7 100")
    rows = folded_lines(finish(p))
    assert rows and all(f[0] == COMM and f[-1] == "vfs_read" for f, _ in rows), rows
    assert sum(n for f, n in rows if "ksys_read" in f) >= 7, rows


# -- every tool: -h, --ebpf, list ----------------------------------------------------------------------------

@pytest.mark.parametrize("tool, args", [("trace", ['t:sched:sched_process_exec "%s", args->filename']),
                                        ("argdist", ["-C", "t:sched:sched_process_exec():int:args->pid"]),
                                        ("stackcount", ["t:sched:sched_process_exec"])])
def test_help_ebpf_and_list(tool: str, args: list[str]):
    r = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: bpfkit {tool}") and "examples:" in r.stdout, r
    r = subprocess.run([*BPFKIT, tool, "--ebpf", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "tool_traced(void)" in r.stdout, r.stderr
    assert 'SEC("tracepoint/sched/sched_process_exec")' in r.stdout
    listed = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, timeout=30).stdout
    assert re.search(rf"^{tool}\s+\S", listed, re.M), listed
