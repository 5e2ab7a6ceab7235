"""The tool kit (tools/_kit.py, tools/tool.bpf.h): JSON lines checked against a known workload,
the cgroup filter against a real cgroup, the perf buffer path, discovery for `bpfkit list`, the
column spec and the docstring parser, and compile errors that name the tool's own file and line."""

from __future__ import annotations

import errno
import importlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfkit import BPF, CompileError
from bpfkit.tools import _kit

from ._target import perf_event_fds
from .test_tools import BPFKIT, disk_file, finish, start_tool, wait_header  # noqa: F401 (disk_file: a fixture)

TOOLS_DIR = Path(_kit.HERE)


def json_lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def start_quiet(links: int, *args: str) -> subprocess.Popen:
    """A tool started in JSON mode, which prints no header to wait for: returned once it holds
    ``links`` BPF links (its hooks are attached)."""
    p = start_tool(*args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            fds = [os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.pid}/fd")]
        except OSError:  # an fd closed between the listing and the readlink
            continue
        if sum(t == "anon_inode:bpf_link" for t in fds) >= links:
            time.sleep(0.05)  # the tool opens its buffer or starts its interval just after
            return p
        time.sleep(0.01)
    p.kill()
    raise AssertionError(f"{args} did not attach {links} hooks: {p.communicate()}")


def test_opensnoop_json_has_the_workloads_values(tmp_path: Path):
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    missing = tmp_path / f"missing-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_quiet(2, "opensnoop", "-j", "-U", "-e", "-d", "3")
    w = subprocess.Popen(["cat", str(marker), str(missing)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w.wait()
    rows = json_lines(finish(p))
    assert all(set(r) == {"uid", "pid", "comm", "fd", "err", "flags", "path"} for r in rows), rows[:3]
    hit = [r for r in rows if r["path"] == str(marker)]
    assert len(hit) == 1, rows[-20:]
    assert hit[0]["pid"] == w.pid and hit[0]["comm"] == "cat" and hit[0]["uid"] == os.getuid()
    assert hit[0]["fd"] >= 3 and hit[0]["err"] == 0
    assert hit[0]["flags"] & 0o3 == os.O_RDONLY, "cat opens read-only"
    miss = [r for r in rows if r["path"] == str(missing)]
    assert len(miss) == 1 and (miss[0]["fd"], miss[0]["err"]) == (-1, 2), miss


def test_biolatency_json_is_one_object_per_interval_with_numeric_buckets(disk_file: Path):  # noqa: F811
    p = start_quiet(3, "biolatency", "-j", "-D", "-e", "2", "2")
    subprocess.run(["dd", f"if={disk_file}", "of=/dev/null", "bs=4k", "count=300", "iflag=direct"],
                   capture_output=True, check=True)
    objs = json_lines(finish(p))
    assert len(objs) == 2, objs
    for o in objs:
        assert o["val_type"] == "usecs" and o["section"] == "disk"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", o["ts"])
        for h in o["histograms"]:
            for b in h["data"]:
                assert all(isinstance(b[k], int) for k in ("interval-start", "interval-end", "count")), b
    counts = [sum(b["count"] for b in h["data"]) for o in objs for h in o["histograms"]]
    assert sum(counts) >= 300, objs
    ext = [o["extension"] for o in objs]
    assert sum(e["count"] for e in ext) >= 300, ext
    assert all(e["avg"] == (e["total"] / e["count"] if e["count"] else 0) for e in ext), ext


def test_vfsstat_json_counts_the_reads_of_one_pid():
    reader = subprocess.Popen([sys.executable, "-c", "import os, sys\nsys.stdin.readline()\n"
                               "fd = os.open('/dev/zero', os.O_RDONLY)\n[os.read(fd, 1) for _ in range(3000)]"],
                              stdin=subprocess.PIPE)
    p = start_quiet(5, "vfsstat", "-j", "-p", str(reader.pid), "1", "3")
    assert reader.stdin is not None
    reader.stdin.write(b"go\n")
    reader.stdin.close()
    reader.wait()
    objs = json_lines(finish(p, timeout=60))
    assert len(objs) == 3 and all(set(o) == {"time", "read", "write", "fsync", "open", "create"} for o in objs)
    # Only that process: its 3000 reads (and the interpreter's few of its own start-up, at most).
    assert 3000 <= sum(o["read"] for o in objs) < 3300, objs


# -- -c: a real cgroup v2 directory ----------------------------------------------------------------

@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    root = Path(BPF.cgroup2_mountpoint())
    path = root / f"bpfkit-kit-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            try:
                (root / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while path.exists():
            try:
                path.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_opensnoop_cgroup_filter_shows_only_the_cgroups_tasks(tmp_path: Path, cgroup_dir: Path):
    inside = tmp_path / f"inside-{uuid.uuid4().hex}"
    outside = tmp_path / f"outside-{uuid.uuid4().hex}"
    inside.write_text("x")
    outside.write_text("x")
    script = f"read x; cat {inside} >/dev/null; cat {outside} >/dev/null"
    w_in = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE)
    (cgroup_dir / "cgroup.procs").write_text(str(w_in.pid))
    w_out = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE)
    p = start_tool("opensnoop", "-c", str(cgroup_dir), "-d", "3")
    wait_header(p, r"PATH$")
    for w in (w_in, w_out):
        assert w.stdin is not None
        w.stdin.write(b"go\n")
        w.stdin.close()
        w.wait()
    open(outside).close()  # this test's own process is not in the cgroup either
    lines = finish(p).splitlines()
    paths = [line.split()[-1] for line in lines]
    # The workload inside opened both files (through its cat children, in the cgroup too); the
    # one outside and this process opened the same files and must not show.
    assert paths.count(str(inside)) == 1 and paths.count(str(outside)) == 1, lines
    assert all(line.split()[1] in ("sh", "cat") for line in lines), lines
    assert str(os.getpid()) not in [line.split()[0] for line in lines]


def test_cgroup_flag_refuses_a_directory_that_is_not_a_cgroup(tmp_path: Path):
    r = subprocess.run([*BPFKIT, "opensnoop", "-c", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is not a cgroup directory" in r.stderr, r.stderr


# -- the perf buffer path, taken where a kernel has no ring buffers --------------------------------

def test_opensnoop_over_a_perf_buffer_sees_the_marker(tmp_path: Path):
    marker = tmp_path / f"perf-{uuid.uuid4().hex}"
    marker.write_text("x")
    env = dict(os.environ, **{_kit.EVENTS_ENV: "perf"})
    p = subprocess.Popen([*BPFKIT, "opensnoop", "-d", "3", "-F"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    wait_header(p, r"PATH$")
    w = subprocess.Popen(["cat", marker.name], cwd=tmp_path, stdout=subprocess.DEVNULL)
    w.wait()
    out = finish(p)
    # -F: the relative name comes back with the cat's working directory in front.
    hit = [line for line in out.splitlines() if line.endswith(str(marker))]
    assert len(hit) == 1 and hit[0].split()[:2] == [str(w.pid), "cat"], out[-2000:]


# -- lost records, reported as they happen --------------------------------------------------------

LOST_LINE = re.compile(r"WARNING: (\d+) events lost \((ring|perf) buffer full\)")


@pytest.mark.parametrize("transport", ["ring", "perf"])
def test_lost_records_are_reported_while_the_tool_runs_and_add_up(tmp_path: Path, transport: str):
    """opensnoop with a one-page buffer and a child that opens a marker file 20000 times at
    once: its records outrun the buffer (13 fit; the pump lingers 1 ms after a small batch).
    Every open is either printed or counted in a WARNING line, and the first WARNING comes while
    the tool still runs. The child stays on one CPU and, once the buffer is drained, opens the
    marker once more: a perf buffer's lost count reaches the reader only in the lost record the
    kernel writes before the next sample that fits on that CPU."""
    opens = 20000
    marker = tmp_path / f"lost-{uuid.uuid4().hex}"
    marker.write_text("x")
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(flush=True)\n"
        "sys.stdin.read(1)\n"
        f"for _ in range({opens - 1}):\n"
        f"    os.close(os.open({str(marker)!r}, os.O_RDONLY))\n"
        "time.sleep(0.3)\n"
        f"os.close(os.open({str(marker)!r}, os.O_RDONLY))\n"
        "os._exit(0)\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    child.stdout.readline()  # started: its own opens (imports) are done before the tool attaches
    env = dict(os.environ, **{_kit.EVENTS_ENV: transport})
    p = subprocess.Popen([*BPFKIT, "opensnoop", "-b", "1", "-p", str(child.pid), "-d", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(60, p.kill)  # a tool that hangs fails the test instead of holding it
    watchdog.start()
    err_lines: list = []  # (line, whether the tool was still running when it came)

    def read_stderr() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            err_lines.append((line, p.poll() is None))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        wait_header(p, r"PATH$")
        child.stdin.write(b"g")
        child.stdin.close()
        assert child.wait(timeout=30) == 0
        assert p.stdout is not None
        out = p.stdout.read()  # unread until now: the tool blocks on writing, the buffer overflows
        p.wait(timeout=30)
    finally:
        watchdog.cancel()
        for proc in (child, p):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=30)
    err = "".join(line for line, _ in err_lines)
    assert p.returncode == 0, err
    assert err_lines and err_lines[0][1], ("no loss reported while the tool ran", err)
    warnings = [LOST_LINE.fullmatch(line) for line in err.splitlines()]
    assert all(warnings), err  # nothing else on stderr
    assert {m[2] for m in warnings if m} == {transport}
    lost = sum(int(m[1]) for m in warnings if m)
    printed = sum(line.endswith(str(marker)) for line in out.splitlines())
    assert lost > 0 and printed > 0, (printed, lost)
    assert printed + lost == opens, (printed, lost, err)


def test_losses_are_reported_once_each_and_at_most_once_a_period(capsys):
    totals = iter([0, 5, 5, 12])
    reads = []
    now = [100.0]
    losses = _kit._Losses(lambda: reads.append(1) or next(totals), "ring", clock=lambda: now[0])
    for step in (0.5, 0.4, 0.2, 0.5, 0.6, 1.0):  # checks at 0.5 0.9 1.1 1.6 2.2 3.2 s
        now[0] += step
        losses.check()
    assert len(reads) == 3  # at 1.1 (0), 2.2 (5) and 3.2 (5): at most once a second
    assert losses.report() == 12
    assert capsys.readouterr().err == ("WARNING: 5 events lost (ring buffer full)\n"
                                       "WARNING: 7 events lost (ring buffer full)\n")


# -- discovery: `bpfkit list` ----------------------------------------------------------------------

def test_list_shows_every_tool_module_with_its_docstring_summary():
    out = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, check=True, timeout=60).stdout
    listed = dict(line.split(None, 1) for line in out.splitlines())
    modules = sorted(f.stem for f in TOOLS_DIR.glob("*.py") if not f.name.startswith("_"))
    assert sorted(listed) == modules and len(modules) >= 4
    assert listed["opensnoop"] == "Trace open() syscalls"
    assert listed["biolatency"] == "Summarize block device I/O latency as a histogram"
    for name in modules:
        generated = importlib.import_module(f"bpfkit.tools.{name}").TOOL.source is None  # funccount: see _gen.py
        assert (TOOLS_DIR / f"{name}.bpf.c").is_file() != generated, f"{name} has its C beside it, or generates it"


def test_running_a_tool_imports_no_other_tool():
    code = ("import sys\nfrom bpfkit import cli\nsys.argv = ['bpfkit', 'opensnoop', '-h']\n"
            "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(m for m in sys.modules if m.startswith('bpfkit.tools')), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # The kit, its command-line modules (-h is argparse's) and the tool: no other tool.
    assert set(r.stderr.split()) == {"bpfkit.tools", "bpfkit.tools._kit", "bpfkit.tools._args",
                                     "bpfkit.tools._argparse", "bpfkit.tools.opensnoop"}, r.stderr


@pytest.mark.parametrize("name", ["_kit", "../opensnoop", "tool.bpf", "os"])
def test_what_is_not_a_tool_is_refused(name: str):
    r = subprocess.run([*BPFKIT, name], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown tool" in r.stderr, r.stderr


def test_ebpf_prints_the_shared_header_then_the_tools_c():
    out = subprocess.run([*BPFKIT, "vfsstat", "--ebpf"], capture_output=True, text=True, check=True).stdout
    header, source = (TOOLS_DIR / "tool.bpf.h").read_text(), (TOOLS_DIR / "vfsstat.bpf.c").read_text()
    assert out == header + source


def test_ebpf_puts_the_tools_own_headers_in_place_of_their_includes():
    """runqlat includes hist.bpf.h and sched.bpf.h (sched.bpf.h includes hist.bpf.h again):
    --ebpf prints each once where it is first included, so the output is the whole program."""
    out = subprocess.run([*BPFKIT, "runqlat", "--ebpf"], capture_output=True, text=True, check=True).stdout
    assert "#include <hist.bpf.h>" not in out and "#include <sched.bpf.h>" not in out
    assert out.count("/* hist.bpf.h */") == 1 and out.count("/* sched.bpf.h */") == 1
    assert (TOOLS_DIR / "hist.bpf.h").read_text() in out


# -- the kit's parts, in process -----------------------------------------------------------------

def test_columns_print_the_header_rows_and_json():
    spec = [("time", "TIME(s)", "%-14.9f", False), ("pid", "PID", "%-6d "), ("fd", "FD", "%4d "),
            ("flags", "FLAGS", "%08o "), ("path", "PATH", "%s")]
    buf = io.StringIO()
    cols = _kit.Columns(spec, file=buf)
    cols.header()
    cols.row(time=1.5, pid=181, fd=-1, flags=0o2000000, path="/etc/hostname")
    assert buf.getvalue().splitlines() == ["PID      FD FLAGS    PATH", "181      -1 02000000 /etc/hostname"]
    buf = io.StringIO()
    cols = _kit.Columns(spec, json=True, file=buf)
    cols.header()
    cols.row(time=1.5, pid=181, fd=-1, flags=0o2000000, path="/etc/hostname")
    assert json_lines(buf.getvalue()) == [{"pid": 181, "fd": -1, "flags": 0o2000000, "path": "/etc/hostname"}]


def test_intervals_count_and_timestamp_lines():
    import argparse

    buf = io.StringIO()
    args = argparse.Namespace(interval=0.01, count=3, timestamp=True, json=False)
    slept = list(_kit.intervals(args, gap=True, file=buf))
    assert len(slept) == 3 and all(s >= 0.01 for s in slept)
    assert re.fullmatch(r"(\n\d\d:\d\d:\d\d\s*\n){3}", buf.getvalue()), repr(buf.getvalue())


def test_print_hists_json_and_text():
    import argparse

    hists = {"sda": {1: 2, 3: 5}, "vdb": {2: 1}}
    buf = io.StringIO()
    _kit.print_hists(hists, argparse.Namespace(json=True), "usecs", section_header="disk", file=buf)
    (obj,) = json_lines(buf.getvalue())
    assert [h["disk"] for h in obj["histograms"]] == ["sda", "vdb"]
    assert obj["histograms"][0]["data"][2] == {"interval-start": 4, "interval-end": 7, "count": 5}
    buf = io.StringIO()
    _kit.print_hists(hists, argparse.Namespace(json=False), "usecs", section_header="disk", file=buf)
    assert "disk = sda" in buf.getvalue() and "         4 -> 7          : 5" in buf.getvalue()


@pytest.mark.parametrize("doc,want", [
    (None, ("", "", "")),
    ("", ("", "", "")),
    ("mytool: does things.", ("mytool", "Does things", "")),
    ("A tool with no name line", ("", "A tool with no name line", "")),
    ("t: x.\n\nExamples::\n", ("t", "X", "")),
    ("t: x.\n\nExamples::\n\n    bpfkit t -a   # a\n", ("t", "X", "    bpfkit t -a   # a")),
])
def test_parse_doc_never_fails(doc, want):
    assert _kit.parse_doc(doc) == want


def test_a_compile_error_names_the_tools_file_and_line(tmp_path: Path):
    (tmp_path / "broken.bpf.c").write_text('SEC("tracepoint/syscalls/sys_enter_getppid")\n'
                                          "int f(void *ctx) { return not_declared; }\n")
    tool = _kit.Tool(str(tmp_path / "broken.py"), "broken: Breaks.")
    args = tool.parser("pid").parse_args([])
    with pytest.raises(CompileError, match=r"broken\.bpf\.c:2:\d+: error: use of undeclared identifier"):
        tool.load(args)



def test_uprobes_are_opened_while_the_tool_loads_and_attached_after(tmp_path: Path):
    """Tool.load(args, uprobes=): the uprobes open in another thread while the object loads,
    then attach; an optional one that cannot open is left out with its error; a required one
    ends the load, leaving no perf event open."""
    (tmp_path / "getppids.bpf.c").write_text(
        'u64 calls = 0;\nSEC("uprobe")\nint enter(struct pt_regs *ctx)\n'
        "{ if (tool_traced()) __sync_fetch_and_add(&calls, 1); return 0; }\n")
    tool = _kit.Tool(str(tmp_path / "getppids.py"), "getppids: Counts getppid().")
    args = tool.parser("pid").parse_args(["-p", str(os.getpid())])
    before = perf_event_fds()
    u = _kit.Uprobes()
    u.add("enter", name="c", sym="getppid", pid=os.getpid())
    u.add("enter", name="c", sym="no_such_function_in_libc", optional=True)
    with tool.load(args, uprobes=u) as b:
        for _ in range(7):
            os.getppid()
        assert b.get_global("calls") == 7
        assert [kw["sym"] for kw, _e in u.failed] == ["no_such_function_in_libc"]
        assert [lk[0] for lk in b.links()] == ["uprobe"]
    assert perf_event_fds() == before
    u = _kit.Uprobes()
    u.add("enter", name="c", sym="getppid")
    u.add("enter", name="c", sym="no_such_function_in_libc")
    with pytest.raises(OSError, match="no_such_function_in_libc"):
        tool.load(args, uprobes=u)
    assert perf_event_fds() == before


def test_the_first_uprobe_opened_ahead_is_left_out_kept_or_closed_as_the_rest(tmp_path: Path):
    """The first uprobe opens in a thread of its own while the other places are read: when it
    cannot open and is optional it is left out like any other; when it matched several places
    the rest are opened after it; and a load that fails closes it with the others."""
    (tmp_path / "getpids.bpf.c").write_text(
        'u64 calls = 0;\nSEC("uprobe")\nint enter(struct pt_regs *ctx)\n'
        "{ if (tool_traced()) __sync_fetch_and_add(&calls, 1); return 0; }\n")
    tool = _kit.Tool(str(tmp_path / "getpids.py"), "getpids: Counts getpid() and getppid().")
    args = tool.parser("pid").parse_args(["-p", str(os.getpid())])
    dead = subprocess.Popen(["true"])
    dead.wait()
    before = perf_event_fds()
    for dead_first in (True, False):
        u = _kit.Uprobes()
        wanted = [dict(sym="getppid", pid=dead.pid, optional=True),  # ESRCH: no such process
                  dict(sym_re=r"getp?pid$", pid=os.getpid())]  # two places
        for kw in wanted if dead_first else wanted[::-1]:
            u.add("enter", name="c", **kw)
        with tool.load(args, uprobes=u) as b:
            for _ in range(3):
                os.getppid()
                os.getpid()
            assert b.get_global("calls") == 6
            assert [(kw["pid"], e.errno) for kw, e in u.failed] == [(dead.pid, errno.ESRCH)]
            assert len(b.links()) == 2
        assert perf_event_fds() == before
    (tmp_path / "getpids.bpf.c").write_text('SEC("uprobe")\nint enter(struct pt_regs *ctx) { return nope; }\n')
    u = _kit.Uprobes()
    u.add("enter", name="c", sym_re=r"getp?pid$", pid=os.getpid())
    u.add("enter", name="c", sym="getuid", pid=os.getpid())
    with pytest.raises(CompileError, match="nope"):
        tool.load(args, uprobes=u)
    assert perf_event_fds() == before
