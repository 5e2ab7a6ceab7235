"""The generic tools (funccount, funclatency, funcslower) and what they are built on: the probe
specification parser (tools/_probes.py) and the C generator (tools/_gen.py).

The tools run against a C program built here (tests/targets/funcs_target.c) that makes exactly
the calls a test asks for over stdin: N calls of a function, K calls that sleep 20 ms, N
getppid() system calls, N USDT probes. Counts are asserted exactly, with ``-p`` keeping the rest
of the system out. The kprobe and fentry forms run in the qemu kernels (``@pytest.mark.kernels``)
and skip here, where the kernel has neither, through their feature probes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from bpfkit import features
from bpfkit._errors import BPFError, NotSupportedError
from bpfkit.tools import _gen, _probes
from bpfkit.tools._probes import ENTRY_KINDS, Probe, ProbeError, parse, resolve

from ._features import need
from ._target import Target, build
from .test_kit import start_quiet
from .test_tools import BPFKIT, finish, start_tool, wait_header

TARGETS = Path(__file__).resolve().parent / "targets"
HEADER = r'^Tracing \d+ functions for'


@pytest.fixture(scope="module")
def target_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(TARGETS / "funcs_target.c", tmp_path_factory.mktemp("generic") / "funcs_target", "-O2", "-g")


@pytest.fixture
def target(target_bin: Path):
    t = Target(str(target_bin))
    yield t
    t.stop()


def run(args: list[str], *steps: str, t: Target | None = None, header: str = HEADER, links: int = 0) -> str:
    """Runs a tool until it ends by itself (``-d``), sending ``steps`` to the target once the
    tool's output has a line matching ``header`` (it is attached then; in JSON mode, which prints
    no header: once it holds ``links`` BPF links); its whole standard output."""
    if links:
        p = start_quiet(links, *args)
        before = ""
    else:
        p = start_tool(*args)
        assert p.stdout is not None
        lines = []
        while not lines or not re.search(header, lines[-1]):
            line = p.stdout.readline()
            if not line:
                p.kill()
                raise AssertionError(f"no line matching {header!r} in {lines!r}; stderr: {p.communicate()[1]}")
            lines.append(line)
        before = "".join(lines)
    for s in steps:
        assert t is not None
        t.cmd(s)
    return before + finish(p)


def funccount_rows(out: str) -> list[dict]:
    """Each interval's ``{FUNC: COUNT}`` of funccount's text output."""
    tables: list[dict] = []
    rows: dict | None = None
    for line in out.splitlines():
        if line.split() == ["FUNC", "COUNT"]:
            rows = {}
            tables.append(rows)
        elif rows is not None and line.strip() and line != "Detaching...":
            name, n = line.rsplit(None, 1)
            rows[name.strip()] = int(n)
        elif not line.strip():
            rows = None
    return tables


# -- the parser ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, kind, library, pattern", [
    ("vfs_read", "kprobe", "", "vfs_read"),
    ("vfs_*", "kprobe", "", "vfs_*"),
    ("p::vfs_read", "kprobe", "", "vfs_read"),
    ("p:vfs_read", "kprobe", "", "vfs_read"),
    ("r::vfs_read", "kretprobe", "", "vfs_read"),
    ("f:vfs_read", "fentry", "", "vfs_read"),
    ("F::vfs_read", "fexit", "", "vfs_read"),
    ("t:sched:sched_fork", "tracepoint", "", "sched:sched_fork"),
    ("t:syscalls:sys_enter_*open*", "tracepoint", "", "syscalls:sys_enter_*open*"),
    ("c:malloc", "uprobe", "c", "malloc"),
    ("p:c:malloc", "uprobe", "c", "malloc"),
    ("r:c:malloc", "uretprobe", "c", "malloc"),
    ("u:c:malloc", "uprobe", "c", "malloc"),
    ("/bin/bash:readline", "uprobe", "/bin/bash", "readline"),
    ("./test:read*", "uprobe", "./test", "read*"),
    ("U:node:gc*", "usdt", "node", "gc*"),
    ("u:node:v8:gc__start", "usdt", "node", "v8:gc__start"),
    ("lib:ns::Klass::method", "uprobe", "lib", "ns::Klass::method"),
])
def test_parse_gives_the_kind_library_and_pattern(spec: str, kind: str, library: str, pattern: str):
    probe = parse(spec, pid=181)
    assert (probe.kind, probe.library, probe.pattern, probe.pid, probe.spec) == (kind, library, pattern, 181, spec)
    assert probe == Probe(kind, library, pattern, pid=181, spec=spec, usdt_alias=spec.startswith("u:c:"))
    assert probe.is_kernel == (kind in ("kprobe", "kretprobe", "fentry", "fexit", "tracepoint"))


@pytest.mark.parametrize("spec, words", [
    ("", "empty probe specification"),
    ("vfs_read x", "no spaces"),
    (":malloc", "a kind letter"),
    ("t:sched", "t:category:event"),
    ("t:a:b:c", "t:category:event"),
    ("f:c:malloc", "probes kernel functions"),
    ("U:probe", "needs a library"),
    ("U::probe", "needs its binary"),
    ("p::", "no function"),
    ("p::a:b", "too many"),
])
def test_parse_refuses_a_bad_spec_in_one_line(spec: str, words: str):
    with pytest.raises(ProbeError, match=re.escape(words)) as e:
        parse(spec)
    assert "\n" not in str(e.value)


def test_parse_takes_only_the_kinds_a_tool_takes():
    assert parse("u:c:read", kinds=ENTRY_KINDS).kind == "uprobe"
    for spec in ("t:sched:sched_fork", "r::vfs_read", "U:c:tick"):
        with pytest.raises(ProbeError, match="this tool takes kprobe, uprobe or fentry"):
            parse(spec, kinds=ENTRY_KINDS)
    assert parse("u:node:gc", kinds=("usdt",)).kind == "usdt"


def test_parse_checks_a_regex_at_once():
    assert parse("c:mem.*cpy", regex=True).matcher()("memcpy")
    assert not parse("c:mem.*cpy", regex=True).matcher()("wmemcpy")  # re.match: from the start, as BCC
    with pytest.raises(ProbeError, match="not a regular expression"):
        parse("c:(unclosed", regex=True)


@pytest.mark.parametrize("pattern, name, matches", [
    ("vfs_*", "vfs_read", True), ("vfs_*", "do_vfs_read", False), ("*open*", "do_sys_openat2", True),
    ("sys_enter_*open*", "sys_enter_openat", True), ("a*b*c", "abc", True), ("a*b*c", "acb", False),
    ("a*a", "a", False), ("read", "readv", False), ("*", "", True),
])
def test_wildcards_match_whole_names(pattern: str, name: str, matches: bool):
    assert _probes.wildcard(pattern)(name) is matches


def test_returning_and_syscall_names():
    assert parse("c:read").returning().kind == "uretprobe"
    assert parse("vfs_read").returning().kind == "kretprobe"
    assert parse("f:vfs_read").returning().kind == "fexit"
    with pytest.raises(ProbeError):
        parse("t:sched:sched_fork").returning()
    assert [_probes.syscall_of(f) for f in ("__x64_sys_getppid", "sys_read", "do_sys_openat2", "ksys_read")] == \
        ["getppid", "read", "", ""]


# -- resolution --------------------------------------------------------------------------------------

def test_resolve_tracepoint_wildcard_lists_what_tracefs_has():
    events = sorted(e for e in os.listdir("/sys/kernel/tracing/events/syscalls")
                    if e.startswith("sys_enter_getp") and e.endswith("id"))
    targets = resolve([parse("t:syscalls:sys_enter_getp*id")])
    assert [t.name for t in targets] == [f"syscalls:{e}" for e in events]
    assert "syscalls:sys_enter_getppid" in [t.name for t in targets]
    assert [t.index for t in targets] == list(range(len(targets)))
    assert {t.kind for t in targets} == {"tracepoint"}


def test_resolve_user_functions_from_the_binarys_symbols(target_bin: Path):
    nm = subprocess.run(["nm", str(target_bin)], capture_output=True, text=True, check=True).stdout
    addrs = {name: int(a, 16) for a, _t, name in (line.split() for line in nm.splitlines() if len(line.split()) == 3)}
    targets = resolve([parse(f"{target_bin}:bpfkit_count_*")])
    assert [(t.name, t.address, t.path, t.kind) for t in targets] == [
        ("bpfkit_count_me", addrs["bpfkit_count_me"], str(target_bin), "uprobe"),
        ("bpfkit_count_too", addrs["bpfkit_count_too"], str(target_bin), "uprobe")]
    regex = resolve([parse(f"{target_bin}:bpfkit_.*_me$", regex=True)])
    assert [t.name for t in regex] == ["bpfkit_count_me", "bpfkit_slow_me"]
    (one,) = resolve([parse(f"r:{target_bin}:bpfkit_slow_me")])
    assert (one.kind, one.name, one.address, one.is_return) == ("uretprobe", "bpfkit_slow_me", None, True)
    assert one.label == f"{target_bin}:bpfkit_slow_me"


def test_resolve_refuses_what_matches_nothing(target_bin: Path):
    with pytest.raises(ProbeError, match="no tracepoint matches 't:nosuchcat:\\*'") as e:
        resolve([parse("t:nosuchcat:*")])
    assert e.value.errno == 2
    with pytest.raises(ProbeError, match="no function matches"):
        resolve([parse(f"{target_bin}:nosuch_*")])
    with pytest.raises(BPFError, match="no function symbol nosuch in"):  # with the names it resembles
        resolve([parse(f"{target_bin}:nosuch")])
    with pytest.raises(BPFError, match="cannot find library or binary"):
        resolve([parse("nosuchlibbpfkit:f")])


def test_resolve_attaches_a_place_once_and_keeps_the_probe_limit(monkeypatch: pytest.MonkeyPatch):
    both = resolve([parse("t:syscalls:sys_enter_getppid"), parse("t:syscalls:sys_enter_getpp*")])
    assert [t.name for t in both] == ["syscalls:sys_enter_getppid"]
    monkeypatch.setenv("BCC_PROBE_LIMIT", "3")
    with pytest.raises(ProbeError, match="more than 3 probes to attach, the limit \\(BCC_PROBE_LIMIT"):
        resolve([parse("t:syscalls:sys_enter_*")])
    assert len(resolve([parse("t:syscalls:sys_enter_*")], limit=100000)) > 3


def test_syscall_kprobe_becomes_its_tracepoints_without_kprobes():
    if features.supported("kprobes"):
        pytest.skip("this kernel has kprobes: the syscall kprobe is a kprobe here")
    (enter,) = resolve([parse("p::sys_getppid")])
    assert (enter.kind, enter.event, enter.syscall) == ("tracepoint", "syscalls:sys_enter_getppid", "getppid")
    assert enter.name == _probes.syscall_prefix() + "getppid" and "stands in for the kprobe" in enter.via
    (ret,) = resolve([parse(f"r::{_probes.syscall_prefix()}getppid")])
    assert (ret.event, ret.is_return) == ("syscalls:sys_exit_getppid", True)
    with pytest.raises(NotSupportedError, match="kprobe on do_sys_openat2 is not possible: this kernel has no kpr") as e:
        resolve([parse("do_sys_openat2")])  # a helper, not a syscall: no tracepoint stands in
    assert e.value.feature == "kprobes" and "\n" not in str(e.value)


# -- the generator -----------------------------------------------------------------------------------

def test_counter_has_a_program_per_target_and_a_counter_each():
    targets = resolve([parse("t:syscalls:sys_enter_getp*id")])
    text = _gen.counter(targets).text()
    for t in targets:
        cat, ev = t.tracepoint
        assert f'SEC("tracepoint/{cat}/{ev}")\nint count_{t.index}(void *ctx)' in text
        assert f"count_at({t.index});" in text
    assert f"__uint(max_entries, {len(targets)});" in text
    assert text.count("SEC(\"tracepoint/") == len(targets)


def test_timed_programs_share_a_return_program_per_kind(target_bin: Path):
    targets = resolve([parse(f"{target_bin}:bpfkit_*_me")])
    prog = _gen.latency(targets)
    assert [f.name for f in prog.programs] == ["enter_0", "enter_1", "leave_uretprobe"]
    assert [t.kind for t in prog.programs[-1].targets] == ["uretprobe", "uretprobe"]
    assert [f.section for f in prog.programs] == ["uprobe", "uprobe", "uretprobe"]
    assert "return stop(ctx, (u64)PT_REGS_RC(ctx));" in prog.text()


def test_generated_pieces_refuse_what_is_not_c():
    with pytest.raises(ValueError, match="not a C identifier"):
        _gen.Struct("two words", [])
    with pytest.raises(ValueError, match="map kind"):
        _gen.Map("m", "queue")
    prog = _gen.Program("t")
    prog.add(_gen.Const("x", "u64"))
    with pytest.raises(ValueError, match="two pieces named x"):
        prog.add(_gen.Map("x", "array"))
    text = _gen.If("a", [_gen.Return("1")], [_gen.If("b", [_gen.Return("2")], [_gen.Return("3")])]).lines()
    assert text == ["if (a) {", "\treturn 1;", "} else if (b) {", "\treturn 2;", "} else {", "\treturn 3;", "}"]


# -- funccount -----------------------------------------------------------------------------------------

def test_funccount_counts_a_pids_getppid_calls_each_interval(target: Target):
    out = run(["funccount", "-T", "-i", "1", "-d", "2", "-p", str(target.pid), "t:syscalls:sys_enter_getppid"],
              "getppid 7", t=target)
    tables = funccount_rows(out)
    assert len(tables) == 2, out
    assert sum(t.get("syscalls:sys_enter_getppid", 0) for t in tables) == 7, out
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", out, re.M)) == 2, out  # -T: the time above each table
    assert out.rstrip().endswith("Detaching...")


def test_funccount_tracepoint_wildcard_counts_each_match(target: Target):
    out = run(["funccount", "-d", "2", "-p", str(target.pid), "t:syscalls:sys_enter_getp*id"],
              "getppid 5", "getpid 3", t=target)
    assert funccount_rows(out) == [{"syscalls:sys_enter_getpid": 3, "syscalls:sys_enter_getppid": 5}], out
    lines = out.splitlines()
    assert lines[lines.index("%-36s %8s" % ("FUNC", "COUNT")) + 1].startswith("syscalls:sys_enter_getpid ")


def test_funccount_user_function_of_a_binary(target: Target, target_bin: Path):
    out = run(["funccount", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_count_me"],
              "count 11 4", t=target)
    assert funccount_rows(out) == [{"bpfkit_count_me": 11}], out


def test_funccount_user_regex_with_json(target: Target, target_bin: Path):
    out = run(["funccount", "-j", "-r", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_count_.*"],
              "count 6 9", t=target, links=2)
    (obj,) = [json.loads(line) for line in out.splitlines()]
    assert obj["functions"] == [{"func": "bpfkit_count_me", "count": 6}, {"func": "bpfkit_count_too", "count": 9}]


def test_funccount_libc_function_by_short_name(target: Target):
    out = run(["funccount", "-d", "2", "-p", str(target.pid), "c:getpid"], "getpid 13", t=target)
    assert funccount_rows(out) == [{"getpid": 13}], out


def test_funccount_usdt_probe(target: Target, target_bin: Path):
    if target.header[1] != "1":
        pytest.skip("sys/sdt.h is missing: apt-get install systemtap-sdt-dev")
    for spec in (f"U:{target_bin}:tick", f"u:{target_bin}:bpfkit:tick"):
        out = run(["funccount", "-d", "1", "-p", str(target.pid), spec], "usdt 8", t=target)
        assert funccount_rows(out) == [{"tick": 8}], (spec, out)


def test_trace_and_argdist_read_a_usdt_probes_argument(target: Target, target_bin: Path):
    """The USDT forms of trace and argdist: ``arg1`` is the probe's first argument, read through
    libbpf's USDT argument specs (the target's loop counter, 0..N-1)."""
    if target.header[1] != "1":
        pytest.skip("sys/sdt.h is missing: apt-get install systemtap-sdt-dev")
    out = run(["trace", "-d", "2", "-p", str(target.pid), f'U:{target_bin}:tick "i=%d", arg1'], "usdt 4",
              t=target, header=r"^PID\s+TID\s+COMM\s+FUNC")
    rows = [line.split(None, 4) for line in out.splitlines()[1:] if line.strip()]
    assert [(r[0], r[3], r[4]) for r in rows] == [(str(target.pid), "tick", f"i={i}") for i in range(4)], out
    p = start_quiet(1, "argdist", "-i", "2", "-n", "1", "-p", str(target.pid), "-C",
                    f"u:{target_bin}:tick():u64:arg1%2")
    target.cmd("usdt 7")
    counts = [line.split(None, 1) for line in finish(p).splitlines()[3:] if line.strip()]
    assert counts == [["3", "arg1%2 = 1"], ["4", "arg1%2 = 0"]], counts


@pytest.mark.kernels
def test_funccount_syscall_function_spec(target: Target):
    """``p::sys_getppid``: a kprobe where the kernel has kprobes, else the syscall's tracepoint
    (said on stderr); the same exact count either way."""
    p = start_tool("funccount", "-d", "2", "-p", str(target.pid), "p::sys_getppid")
    wait_header(p, HEADER)
    target.cmd("getppid 4")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert funccount_rows(out) == [{f"{_probes.syscall_prefix()}getppid": 4}], out
    assert ("stands in for the kprobe" in err) == (not features.supported("kprobes")), err


def test_funccount_prints_its_c(target_bin: Path):
    r = subprocess.run([*BPFKIT, "funccount", "--ebpf", f"{target_bin}:bpfkit_count_*"], capture_output=True,
                       text=True, check=True)
    assert "tool_traced(void)" in r.stdout  # the kit's header first
    assert r.stdout.count('SEC("uprobe")') == 2 and "int count_1(struct pt_regs *ctx)" in r.stdout
    assert "Tracing" not in r.stdout


def test_funccount_debug_prints_its_c_then_counts(target: Target):
    out = run(["funccount", "-D", "-d", "1", "-p", str(target.pid), "t:syscalls:sys_enter_getppid"],
              "getppid 2", t=target)
    assert out.index('SEC("tracepoint/syscalls/sys_enter_getppid")') < out.index("Tracing 1 functions")
    assert funccount_rows(out) == [{"syscalls:sys_enter_getppid": 2}]


@pytest.mark.parametrize("args, status, words", [
    (["t:sched"], 2, "t:category:event"),
    (["t:nosuchcat:*"], 1, "no tracepoint matches 't:nosuchcat:*'"),
    (["-c", "x", "t:sched:sched_fork"], 2, "not a CPU number"),
])
def test_funccount_errors_are_one_line(args: list[str], status: int, words: str):
    r = subprocess.run([*BPFKIT, "funccount", *args], capture_output=True, text=True)
    assert r.returncode == status and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_funccount_refuses_a_kprobe_without_kprobes():
    if features.supported("kprobes"):
        pytest.skip("this kernel has kprobes")
    r = subprocess.run([*BPFKIT, "funccount", "vfs_read"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "kprobe on vfs_read is not possible: this kernel has no kprobes" in r.stderr


def test_funccount_probe_limit_is_one_line():
    r = subprocess.run([*BPFKIT, "funccount", "t:syscalls:sys_enter_*"], capture_output=True, text=True,
                       env={**os.environ, "BCC_PROBE_LIMIT": "5"})
    assert r.returncode == 1 and "more than 5 probes to attach" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.kernels
def test_funccount_kernel_wildcard_sees_a_pids_reads(target: Target):
    need("kprobes")
    out = run(["funccount", "-d", "2", "-p", str(target.pid), "vfs_read*"], "read 25", t=target)
    (rows,) = funccount_rows(out)
    assert rows.get("vfs_read", 0) >= 25, out  # and the reads of the commands themselves


@pytest.mark.kernels
def test_funccount_fentry_counts_a_pids_reads(target: Target):
    need("fentry")
    out = run(["funccount", "-d", "2", "-p", str(target.pid), "f:vfs_read"], "read 12", t=target)
    (rows,) = funccount_rows(out)
    assert rows["vfs_read"] >= 12, out


# -- funclatency -------------------------------------------------------------------------------------

def hist_rows(out: str) -> dict:
    """``{(low, high): count}`` of the histogram rows with a count."""
    rows = {}
    for m in re.finditer(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s*\|", out, re.M):
        if int(m.group(3)):
            rows[(int(m.group(1)), int(m.group(2)))] = int(m.group(3))
    return rows


def test_funclatency_user_function_lands_in_its_bucket(target: Target, target_bin: Path):
    out = run(["funclatency", "-u", "-d", "2", "-p", str(target.pid), f"u:{target_bin}:bpfkit_slow_me"],
              "slow 5 20000", t=target)
    assert hist_rows(out) == {(16384, 32767): 5}, out
    assert "usecs" in out and "Function =" not in out
    m = re.search(r"^avg = (\d+) usecs, total: (\d+) usecs, count: (\d+)$", out, re.M)
    assert m and int(m.group(3)) == 5 and 20000 <= int(m.group(1)) <= 32767, out
    assert 5 * 20000 <= int(m.group(2)) <= 5 * 32767


def test_funclatency_milliseconds_per_function(target: Target, target_bin: Path):
    out = run(["funclatency", "-m", "-F", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_*_me"],
              "slow 3 20000", "count 4", t=target)
    sections = re.split(r"^\nFunction = ", "\n" + out, flags=re.M)
    by_name = {s.splitlines()[0]: hist_rows(s) for s in sections[1:]}
    pid = target.pid
    assert by_name == {f"bpfkit_slow_me [{pid}]": {(16, 31): 3}, f"bpfkit_count_me [{pid}]": {(0, 1): 4}}, out
    assert re.search(r"^avg = \d+ msecs, total: \d+ msecs, count: 7$", out, re.M), out


def test_funclatency_json(target: Target, target_bin: Path):
    out = run(["funclatency", "-j", "-u", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_slow_me"],
              "slow 2 20000", t=target, links=2)
    (obj,) = [json.loads(line) for line in out.splitlines()]
    assert obj["val_type"] == "usecs" and obj["count"] == 2
    assert [d for d in obj["data"] if d["count"]] == [{"interval-start": 16384, "interval-end": 32767, "count": 2}]


@pytest.mark.kernels
def test_funclatency_kernel_function(target: Target):
    need("kprobes")
    out = run(["funclatency", "-u", "-d", "2", "-p", str(target.pid), "do_sys_openat2"], "open 9", t=target)
    m = re.search(r"^avg = \d+ usecs, total: \d+ usecs, count: (\d+)$", out, re.M)
    assert m and int(m.group(1)) == 9, out
    assert sum(hist_rows(out).values()) == 9


# -- funcslower ------------------------------------------------------------------------------------------

def test_funcslower_prints_only_the_slow_calls(target: Target, target_bin: Path):
    spec = f"{target_bin}:bpfkit_slow_me"
    out = run(["funcslower", "-m", "10", "-a", "1", "-d", "2", "-p", str(target.pid), spec],
              "slow 3 20000", "slow 3 100", "slow 1 0", t=target, header=r"^COMM\s+PID\s+LAT\(ms\)\s+RVAL FUNC ARGS$")
    assert out.startswith("Tracing function calls slower than 10 ms... Ctrl+C to quit.\n"), out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 3, out
    for comm, pid, lat, rval, func, args in rows:
        assert (comm, int(pid), rval, func, args) == ("funcs_target", target.pid, "4e20", spec, "0x4e20"), out
        assert 20.0 <= float(lat) < 1000, out


def test_funcslower_microseconds_and_timestamps(target: Target, target_bin: Path):
    out = run(["funcslower", "-u", "5000", "-t", "-d", "2", "-p", str(target.pid), f"{target_bin}:bpfkit_slow_me",
               f"{target_bin}:bpfkit_count_me"],
              "slow 2 8000", "count 3", t=target, header=r"^TIME\s+COMM\s+PID\s+LAT\(us\)\s+RVAL FUNC$")
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[5] for r in rows] == [f"{target_bin}:bpfkit_slow_me"] * 2, out
    assert float(rows[0][0]) == 0.0 and 0.008 <= float(rows[1][0]) < 1, out  # seconds since the first call
    assert all(float(r[3]) >= 8000 for r in rows), out


def test_funcslower_refuses_what_is_not_a_function():
    r = subprocess.run([*BPFKIT, "funcslower", "t:sched:sched_fork"], capture_output=True, text=True)
    assert r.returncode == 2 and "this tool takes kprobe, uprobe or fentry" in r.stderr, r.stderr


@pytest.mark.kernels
def test_funcslower_syscall_function(target: Target):
    """``sys_getppid``: a kprobe and kretprobe where there are kprobes, else its tracepoints,
    which hold only the syscall's own arguments (none: -a prints zeros, where a program reading
    more would not attach)."""
    out = run(["funcslower", "-u", "0.001", "-a", "2", "-d", "2", "-p", str(target.pid), "sys_getppid"],
              "getppid 3", t=target, header=r"^COMM\s+PID\s+LAT\(us\)\s+RVAL FUNC ARGS$")
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(r[1], int(r[3], 16), r[4]) for r in rows] == \
        [(str(target.pid), os.getpid(), f"{_probes.syscall_prefix()}getppid")] * 3, out
    if not features.supported("kprobes"):
        assert [r[5:] for r in rows] == [["0x0", "0x0"]] * 3, out
