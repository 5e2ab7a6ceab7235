"""The IPython magics (``%%bpf``, ``%bpf_tool``, ``%bpf_watch``, ``%bpf_close``) and
``bpfkit.watch``, in an in-process IPython shell, against the live kernel: counts are those of the
syscalls this test makes, and every run is checked for the BPF fds it leaves."""

from __future__ import annotations

import html
import io
import os
import re
import signal
import threading

import pytest
from bpfkit import BPF, CompileError, LoadError, _magics, open_pinned, watch
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from .conftest import ROOT, run_py

#: Counts the getppid() calls of process TARGET into calls[0], STEP at a time (both set with
#: --cflags, so the cell also shows that every flag after --cflags reaches clang).
COUNTER = r"""
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    u32 zero = 0;
    u64 *n;

    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    n = bpf_map_lookup_elem(&calls, &zero);
    if (n)
        __sync_fetch_and_add(n, STEP);
    return 0;
}
"""

PID = os.getpid()


def counter_cell(name: str, step: int = 1) -> str:
    return f"%%bpf {name} --cflags -DTARGET={PID} -DSTEP={step}\n{COUNTER}"


def getppids(n: int) -> None:
    for _ in range(n):
        os.getppid()


def bpf_fds(kind: str) -> int:
    """How many fds of this process are BPF objects of ``kind`` (``bpf-prog``, ``bpf_link``)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == f"anon_inode:{kind}"
        except OSError:
            pass
    return n


@pytest.fixture(scope="module")
def ipython():
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    assert shell.run_cell("%load_ext bpfkit").success
    yield shell
    InteractiveShell.clear_instance()


@pytest.fixture
def shell(ipython):
    """The shell with the magics loaded; afterwards every object %%bpf made is closed."""
    yield ipython
    ipython.run_line_magic("bpf_close", "")
    ipython.user_ns.pop("_bpf_error", None)


class Published:
    """What the shell's display publisher was given: ``(data, display_id, update)`` per call.
    ``then`` runs after each one (the workload between two frames of a live view)."""

    def __init__(self, then=None) -> None:
        self.calls: list = []
        self.then = then

    def __call__(self, data, metadata=None, *, transient=None, update=False, **kw) -> None:
        self.calls.append((data, (transient or {}).get("display_id"), update))
        if self.then is not None:
            self.then()


def test_load_ext_registers_the_magics(ipython):
    assert ipython.find_cell_magic("bpf") is not None
    for name in ("bpf_tool", "bpf_watch", "bpf_close"):
        assert ipython.find_line_magic(name) is not None, name


# -- %%bpf -------------------------------------------------------------------------------------------
def test_cell_is_compiled_attached_and_bound(shell):
    r = shell.run_cell(counter_cell("counts", step=3))
    assert r.success and r.error_in_exec is None
    b = shell.user_ns["counts"]
    assert isinstance(b, BPF) and not b.closed
    assert [(lk.kind, lk.target) for lk in b.links()] == [("tracepoint", "syscalls:sys_enter_getppid")]
    getppids(250)
    assert b["calls"][0].value == 750


def test_cell_in_bcc_dialect(shell):
    cell = f"""%%bpf bcc_counts
BPF_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{{
    u32 zero = 0;
    u64 *n;

    if ((bpf_get_current_pid_tgid() >> 32) != {PID})
        return 0;
    n = calls.lookup(&zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}}
"""
    assert shell.run_cell(cell).success
    getppids(41)
    assert shell.user_ns["bcc_counts"]["calls"][0].value == 41


def test_no_attach_loads_without_attaching(shell):
    assert shell.run_cell(counter_cell("loaded").replace("%%bpf loaded", "%%bpf loaded --no-attach")).success
    b = shell.user_ns["loaded"]
    assert b.links() == []
    getppids(10)
    assert b["calls"][0].value == 0


def test_rerunning_a_cell_closes_the_previous_object(shell):
    progs, links = bpf_fds("bpf-prog"), bpf_fds("bpf_link")
    assert shell.run_cell(counter_cell("counts")).success
    first = shell.user_ns["counts"]
    assert (bpf_fds("bpf-prog"), bpf_fds("bpf_link")) == (progs + 1, links + 1)
    for _ in range(20):
        r = shell.run_cell(counter_cell("counts"))
        assert r.success and r.error_in_exec is None
    assert (bpf_fds("bpf-prog"), bpf_fds("bpf_link")) == (progs + 1, links + 1)
    assert first.closed
    last = shell.user_ns["counts"]
    getppids(33)
    assert last["calls"][0].value == 33  # one program attached: each call counted once


def test_compile_error_names_the_cell_lines_without_traceback(shell, capsys):
    cell = "%%bpf broken\n" + COUNTER.replace("u64 *n;", "u64 *n = nosuch;")
    r = shell.run_cell(cell.replace("%%bpf broken", "%%bpf broken --cflags -DTARGET=1 -DSTEP=1"))
    err = capsys.readouterr().err
    assert r.success and r.error_in_exec is None  # the message is printed; the cell does not fail
    line = COUNTER.splitlines().index("    u64 *n;") + 1  # the cell's line 1 is COUNTER's first (empty) line
    col = len("    u64 *n = ") + 1
    assert f"cell broken:{line}:{col}: error: use of undeclared identifier 'nosuch'" in err
    assert "<text>" not in err and "Traceback" not in err
    assert "broken" not in shell.user_ns
    assert isinstance(shell.user_ns["_bpf_error"], CompileError)


def test_failed_rerun_closes_and_unbinds_the_old_object(shell, capsys):
    progs = bpf_fds("bpf-prog")
    assert shell.run_cell(counter_cell("counts")).success
    old = shell.user_ns["counts"]
    assert shell.run_cell("%%bpf counts\nint f(void) { return undeclared; }\n").success
    assert "cell counts:1:" in capsys.readouterr().err
    assert old.closed and "counts" not in shell.user_ns
    assert bpf_fds("bpf-prog") == progs


def test_loading_again_keeps_the_objects_made(shell):
    """A second registration (``%reload_ext bpfkit``) takes over what the first made, so a
    re-run still closes the object the first registration bound."""
    assert shell.run_cell(counter_cell("counts")).success
    old = shell.user_ns["counts"]
    _magics.load(shell)
    assert shell.run_cell(counter_cell("counts")).success
    assert old.closed and not shell.user_ns["counts"].closed


def test_verifier_refusal_is_one_message(shell, capsys):
    cell = COUNTER.replace("__sync_fetch_and_add(n, STEP)", "n[100] += STEP")  # past the 8-byte value
    r = shell.run_cell(f"%%bpf unchecked --cflags -DTARGET=1 -DSTEP=1\n{cell}")
    err = capsys.readouterr().err
    assert r.success and "Traceback" not in err
    assert err.startswith("LoadError: ") and "count_getppid" in err
    assert "invalid access to map value" in err and "_bpf_error.verifier_log" in err
    e = shell.user_ns["_bpf_error"]
    assert isinstance(e, LoadError) and "invalid access to map value, value_size=8 off=800" in e.verifier_log
    assert "unchecked" not in shell.user_ns


def test_missing_hook_is_one_message(shell, capsys):
    cell = COUNTER.replace("syscalls/sys_enter_getppid", "nosuchcategory/nosuchevent")
    r = shell.run_cell(f"%%bpf nohook --cflags -DTARGET=1 -DSTEP=1\n{cell}")
    err = capsys.readouterr().err
    assert r.success and "Traceback" not in err
    assert re.match(r"(AttachError|NotSupportedError): .*nosuchcategory", err)
    assert err.count("\n") == 1
    assert "nohook" not in shell.user_ns


def test_usage_errors(shell, capsys):
    r = shell.run_cell("%%bpf 2counts\nint x;\n")
    assert isinstance(r.error_in_exec, Exception) and "not a Python name" in str(r.error_in_exec)
    r = shell.run_cell("%%bpf counts --cflags\nint x;\n")
    assert "--cflags: expected one argument" in str(r.error_in_exec)
    assert "Traceback" not in capsys.readouterr().err


# -- %bpf_close --------------------------------------------------------------------------------------
def test_close_detaches(shell):
    progs, links = bpf_fds("bpf-prog"), bpf_fds("bpf_link")
    assert shell.run_cell(counter_cell("counts")).success
    b = shell.user_ns["counts"]
    getppids(20)
    pin = "/sys/fs/bpf/bpfkit_test_magics_calls"
    b["calls"].pin(pin)  # the map outlives the object: its count after close is readable
    try:
        shell.run_line_magic("bpf_close", "counts")
        assert b.closed and "counts" not in shell.user_ns
        assert (bpf_fds("bpf-prog"), bpf_fds("bpf_link")) == (progs, links)
        calls = open_pinned(pin)
        assert calls[0].value == 20
        getppids(20)
        assert calls[0].value == 20  # nothing counts any more
        del calls
    finally:
        os.unlink(pin)


def test_close_without_name_closes_all(shell, capsys):
    assert shell.run_cell(counter_cell("one")).success
    assert shell.run_cell(counter_cell("two")).success
    objs = [shell.user_ns["one"], shell.user_ns["two"]]
    shell.run_line_magic("bpf_close", "")
    assert all(b.closed for b in objs)
    assert "one" not in shell.user_ns and "two" not in shell.user_ns
    shell.run_line_magic("bpf_close", "one")
    assert "made no object named 'one'" in capsys.readouterr().err


# -- %bpf_tool ---------------------------------------------------------------------------------------
@pytest.fixture
def when_attached(monkeypatch):
    """``when_attached(fn)``: runs ``fn`` once, the moment %bpf_tool judges the tool attached
    (before its time window starts), so a workload happens exactly while the tool traces."""
    fired: list = []

    def arm(fn):
        real = _magics._Attached.__call__

        def probe(self):
            ok = real(self)
            if ok and not fired:
                fired.append(fn())
            return ok

        monkeypatch.setattr(_magics._Attached, "__call__", probe)
        return fired

    return arm


def test_tool_syscount_counts_this_process(shell, when_attached):
    fired = when_attached(lambda: getppids(137))
    df = shell.run_line_magic("bpf_tool", f"syscount -p {PID} --syscall getppid --for 0.5")
    assert fired
    assert list(df.columns) == ["time", "syscall", "count"]
    assert df[["syscall", "count"]].values.tolist() == [["getppid", 137]]


def test_tool_without_for_runs_until_it_ends(shell, when_attached):
    when_attached(lambda: getppids(12))
    df = shell.run_line_magic("bpf_tool", f"syscount -p {PID} --syscall getppid -d 0.5")
    assert df[["syscall", "count"]].values.tolist() == [["getppid", 12]]


def test_tool_interrupted_returns_what_it_gathered(shell, when_attached):
    main = threading.get_ident()

    def workload():
        getppids(9)
        threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT)).start()

    fired = when_attached(workload)
    df = shell.run_line_magic("bpf_tool", f"syscount -p {PID} --syscall getppid")  # no end but Ctrl-C
    assert fired
    assert df[["syscall", "count"]].values.tolist() == [["getppid", 9]]


def test_tool_opensnoop_sees_the_marker(shell, when_attached, tmp_path):
    marker = tmp_path / "bpf_tool-marker"
    marker.write_text("x")

    def open_marker():
        fd = os.open(marker, os.O_RDONLY)
        os.close(fd)
        return fd

    fired = when_attached(open_marker)
    df = shell.run_line_magic("bpf_tool", f"opensnoop -p {PID} --for 0.5")
    rows = df[df["path"] == str(marker)]
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    assert rows[["pid", "comm", "fd", "err"]].values.tolist() == [[PID, comm, fired[0], 0]]


def test_tool_histogram_buckets_are_rows(shell, when_attached):
    when_attached(lambda: getppids(64))
    df = shell.run_line_magic("bpf_tool", f"funclatency -p {PID} sys_getppid --for 0.5")
    # One row per bucket: the interval's own `count` (calls) beside each bucket's `data.count`.
    assert {"ts", "val_type", "interval-start", "interval-end", "data.count", "count"} <= set(df.columns)
    assert df["data.count"].sum() == 64 and set(df["count"]) == {64}
    starts, ends = df["interval-start"].tolist(), df["interval-end"].tolist()
    assert starts[0] == 0 and all(s == e + 1 for s, e in zip(starts[1:], ends))


def test_tool_events_and_notes(shell, when_attached, capsys):
    when_attached(lambda: getppids(5))
    df = shell.run_line_magic(
        "bpf_tool", f"trace -I linux/sched.h -p {PID} 't:syscalls:sys_enter_getppid \"n=%d\", 7' --for 0.5")
    err = capsys.readouterr().err
    assert "bpfkit trace: note: -I linux/sched.h: not needed" in err  # the tool's own stderr, shown
    assert len(df) == 5 and set(df["pid"]) == {PID}
    assert "Traceback" not in err


def test_tool_raw_keeps_one_row_per_record(shell, when_attached):
    when_attached(lambda: getppids(3))
    df = shell.run_line_magic("bpf_tool", f"syscount -p {PID} --syscall getppid --raw --for 0.3")
    assert len(df) == 1 and df["syscalls"][0] == [{"syscall": "getppid", "count": 3}]


def test_tool_errors_are_one_message(shell, capsys):
    assert shell.run_line_magic("bpf_tool", "opensnop --for 1") is None
    err = capsys.readouterr().err
    assert err.startswith("%bpf_tool: there is no tool 'opensnop'; did you mean opensnoop") and err.count("\n") == 1
    assert shell.run_line_magic("bpf_tool", "syscount -p notapid --for 1") is None
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("bpfkit syscount: error: argument -p/--pid: 'notapid' is not a process id")
    assert "usage:" not in err and "Traceback" not in err
    r = shell.run_cell("%bpf_tool syscount --for soon")
    assert "positive number of seconds" in str(r.error_in_exec)


def test_tool_list(shell, capsys):
    assert shell.run_line_magic("bpf_tool", "") is None
    out = capsys.readouterr().out
    assert re.search(r"^opensnoop +Trace open\(\) syscalls$", out, re.M)


def test_records_frame_sections():
    rec = {"ts": "t1", "val_type": "usecs", "section": "disk", "histograms": [
        {"disk": "vda", "data": [{"interval-start": 0, "interval-end": 1, "count": 2},
                                 {"interval-start": 2, "interval-end": 3, "count": 5}]},
        {"disk": "vdb", "data": [{"interval-start": 0, "interval-end": 1, "count": 7}]}]}
    df = _magics.records_frame([rec, {**rec, "ts": "t2", "histograms": []}])
    assert list(df.columns) == ["ts", "val_type", "section", "disk", "interval-start", "interval-end", "count"]
    assert df[["disk", "interval-start", "count"]].values.tolist() == [["vda", 0, 2], ["vda", 2, 5], ["vdb", 0, 7]]
    events = _magics.records_frame([{"pid": 1, "stack": ["a", "b"], "t": {"s": 1, "ns": 2}}])
    assert list(events.columns) == ["pid", "stack", "t.s", "t.ns"] and events["stack"][0] == ["a", "b"]


# -- watch and %bpf_watch ----------------------------------------------------------------------------
def test_watch_updates_one_display_in_place(shell, monkeypatch):
    assert shell.run_cell(counter_cell("counts")).success
    getppids(100)
    published = Published(then=lambda: getppids(7))
    monkeypatch.setattr(shell.display_pub, "publish", published)
    assert watch(shell.user_ns["counts"]["calls"], interval=0.2, count=2) is None
    assert [u for _, _, u in published.calls] == [False, True, True]
    assert len({i for _, i, _ in published.calls}) == 1
    for n, (data, _, _) in enumerate(published.calls):
        text, page = data["text/plain"], data["text/html"]
        assert text.startswith("calls: top 1 of 1 entry (")
        assert text.splitlines()[1:] == ["KEY  VALUE", f"  0  {100 + 7 * n:>5}"]
        assert f"<td>0</td><td>{100 + 7 * n}</td>" in page
    assert "start" in published.calls[0][0]["text/plain"] and "update 2 of 2" in published.calls[2][0]["text/plain"]


def test_bpf_watch_log2_histogram(shell, monkeypatch):
    cell = """%%bpf hist --no-attach
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 65);
    __type(key, u32);
    __type(value, u64);
} dist SEC(".maps");
"""
    assert shell.run_cell(cell).success
    dist = shell.user_ns["hist"]["dist"]
    for slot, n in ((1, 3), (3, 40), (4, 9), (7, 1)):
        dist[slot] = n
    expected = io.StringIO()
    dist.print_log2_hist("usecs", file=expected)
    published = Published()
    monkeypatch.setattr(shell.display_pub, "publish", published)
    shell.run_line_magic("bpf_watch", "hist.dist --interval 0.1 --count 1 --val-type usecs")
    assert len(published.calls) == 2
    for data, _, _ in published.calls:
        assert data["text/plain"].startswith("dist: log2 histogram (")  # chosen from the name
        assert data["text/plain"].split("\n", 1)[1] == expected.getvalue().strip("\n")
        assert f"<pre style='font-family: monospace; line-height: 1.25'>{html.escape(expected.getvalue().strip(chr(10)))}</pre>" in data["text/html"]
    assert "         4 -> 7          : 40       |****************************************|" in expected.getvalue()


def test_watch_sections_and_linear(shell, monkeypatch):
    cell = """%%bpf sect --no-attach
struct lat_key { u32 cpu; u32 slot; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, struct lat_key);
    __type(value, u64);
} lat SEC(".maps");
"""
    assert shell.run_cell(cell).success
    lat = shell.user_ns["sect"]["lat"]
    lat[(0, 2)] = 5
    lat[(1, 3)] = 7
    for kind, printer in (("log2", lat.print_log2_hist), ("linear", lat.print_linear_hist)):
        expected = io.StringIO()
        printer(section_header="cpu", file=expected)
        out = io.StringIO()
        watch(lat, interval=0.05, count=0, kind=None if kind == "log2" else kind, file=out)
        assert out.getvalue().split("\n", 1)[1] == expected.getvalue().strip("\n") + "\n\n"
        assert out.getvalue().startswith(f"lat: {kind} histogram (")


def test_watch_stops_on_interrupt(shell, monkeypatch):
    assert shell.run_cell(counter_cell("counts")).success
    published = Published()
    monkeypatch.setattr(shell.display_pub, "publish", published)
    main = threading.get_ident()
    timer = threading.Timer(0.35, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        assert watch(shell.user_ns["counts"]["calls"], interval=0.1) is None
    finally:
        timer.cancel()
    last = published.calls[-1][0]["text/plain"]
    assert published.calls[-1][2] and re.search(r", stopped after [2-4] updates, every 0.1 s\)", last)


def test_bpf_watch_errors(shell):
    r = shell.run_cell("%bpf_watch nothing.calls --count 1")
    assert "no 'nothing' in the namespace" in str(r.error_in_exec)
    assert shell.run_cell(counter_cell("counts")).success
    r = shell.run_cell("%bpf_watch counts.nosuch --count 1")
    assert "counts has no map 'nosuch'; its maps: calls" in str(r.error_in_exec)
    r = shell.run_cell("%bpf_watch counts.calls --interval 0")
    assert "interval must be a positive number" in str(r.error_in_exec)
    shell.user_ns["five"] = 5
    r = shell.run_cell("%bpf_watch five")
    assert "watch() takes a map with keys and values, such as b['counts'], not int" in str(r.error_in_exec)
    del shell.user_ns["five"]


def test_watch_prints_text_outside_ipython():
    code = r"""
import sys
from bpfkit import BPF, watch
with BPF(text='''
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8);
         __type(key, u32); __type(value, u64); } counts SEC(".maps");
''') as b:
    for k, v in ((1, 10), (2, 30), (3, 20)):
        b["counts"][k] = v
    watch(b["counts"], interval=0.05, count=1, top=2)
print("IPython imported:", "IPython" in sys.modules)
"""
    r = run_py(code, cwd=str(ROOT), env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    frames = r.stdout.split("\n\n")
    assert len(frames) == 3 and frames[2] == "IPython imported: False\n"
    for frame, state in zip(frames, ("start", "update 1 of 1")):
        title, *rows = frame.splitlines()
        assert re.fullmatch(rf"counts: top 2 of 3 entries \(\d\d:\d\d:\d\d, {state}, every 0.05 s\)", title)
        assert rows == ["KEY  VALUE", "  2     30", "  3     20"]
