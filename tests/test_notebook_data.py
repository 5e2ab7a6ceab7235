"""Maps for notebooks: a BPF object and its maps shown as HTML, ``to_pandas(decode=)`` naming
pids, kernel addresses, errnos and syscalls the programs recorded, and histograms as buckets
(``hist_frame()``) and bars (``plot()``), all from what real programs counted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bpfkit import BPF

from .conftest import leaked, run_py, snapshot

pd = pytest.importorskip("pandas", reason="the notebook helpers are for where pandas is installed")
pytest.importorskip("matplotlib", reason="plot() is for where matplotlib is installed")

SRC = r"""
struct call_key { u32 pid; char comm[16]; };
struct err_key { u32 pid; s32 ret; };
struct only_pid { u32 pid; };
struct sec_key { u32 disk; u32 slot; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, struct call_key); __type(value, u64); } calls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } by_pid SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, struct err_key); __type(value, u64); } errs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1024); __type(key, u32); __type(value, u64); } sys_calls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, u64); __type(value, u64); } kaddrs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, struct only_pid); __type(value, struct only_pid); } amb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 4); __type(key, u32); __type(value, s32); } pcerr SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 65); __type(key, u32); __type(value, u64); } hlog2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 128); __type(key, struct sec_key); __type(value, u64); } per_disk SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, u32); __type(value, u64); } lin SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, u32); __type(value, u64); } stray SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } many SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 8); __type(key, u32); __type(value, u64); } arr8 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, struct call_key); __type(value, u64); } shown SEC(".maps");

u32 armed = 0;
u32 hist_on = 0;
u64 value_in = 0;

static void add(void *map, void *key)
{
    u64 one = 1, *n = bpf_map_lookup_elem(map, key);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

/* getppid() of the children named nb-*, per pid (and command); and, from this test, the
   values of a histogram. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int count_calls(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct call_key k = {};
    bpf_get_current_comm(k.comm, sizeof(k.comm));
    if (k.comm[0] == 'n' && k.comm[1] == 'b' && k.comm[2] == '-') {
        k.pid = pid;
        add(&calls, &k);
        add(&by_pid, &pid);
    }
    if (pid != TARGET || !hist_on)
        return 0;
    u64 v = value_in;
    u32 slot = bpfkit_log2_slot(v, 64);
    u64 *n = bpf_map_lookup_elem(&hlog2, &slot);
    if (n)
        *n += 1;  /* per-CPU */
    struct sec_key sk = { .disk = v & 1, .slot = slot };
    add(&per_disk, &sk);
    u32 l = v & 15;
    n = bpf_map_lookup_elem(&lin, &l);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}

/* Failed openat() calls of this test, by error. */
SEC("tracepoint/syscalls/sys_exit_openat")
int count_errors(struct trace_event_raw_sys_exit *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET || !armed || ctx->ret >= 0)
        return 0;
    struct err_key k = { .pid = pid, .ret = ctx->ret };
    add(&errs, &k);
    return 0;
}

/* Every system call of this test, by number. */
SEC("raw_tp/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET || !armed)
        return 0;
    u32 id = ctx->args[1];
    u64 *n = bpf_map_lookup_elem(&sys_calls, &id);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}
"""

#: Values the histogram program is fed, and the buckets they fill, worked out by hand.
VALUES = [0, 1, 1, 2, 3, 5, 7, 8, 100, 100, 1000]
LOG2_ROWS = [(0, 1, 3), (2, 3, 2), (4, 7, 2), (8, 15, 1), (16, 31, 0), (32, 63, 0), (64, 127, 2), (128, 255, 0),
             (256, 511, 0), (512, 1023, 1)]
# disk = value & 1: odd 1, 1, 3, 5, 7; even 0, 2, 8, 100, 100, 1000
DISK0 = [1, 1, 0, 1, 0, 0, 2, 0, 0, 1]
DISK1 = [2, 1, 2, 0, 0, 0, 0, 0, 0, 0]
# value & 15: 0, 1, 1, 2, 3, 5, 7, 8, 4, 4, 8
LINEAR = [1, 2, 1, 1, 2, 1, 0, 1, 2]


@pytest.fixture(scope="module")
def b():
    before = snapshot()
    bpf = BPF(text=SRC, cflags=[f"-DTARGET={os.getpid()}"])
    try:
        bpf.set_global("hist_on", 1)
        for v in VALUES:
            bpf.set_global("value_in", v)
            os.getppid()
        bpf.set_global("hist_on", 0)
        yield bpf
    finally:
        bpf.close()
    import gc

    gc.collect()
    assert not leaked(before), "the module's BPF object left kernel objects behind"


@pytest.fixture(autouse=True)
def no_leaks():
    # The module-scoped object outlives single tests; the fixture `b` checks its release.
    yield


def _labels(ax) -> list:
    return [t.get_text() for t in ax.get_xticklabels()]


def _heights(ax) -> list:
    return [int(p.get_height()) for p in ax.patches]


# -- rich display -----------------------------------------------------------------------------

def test_bpf_object_shows_its_programs_links_and_maps(b):
    page = b._repr_html_()
    for name, kind, section, target in (
            ("count_calls", "tracepoint", "tracepoint/syscalls/sys_enter_getppid", "syscalls:sys_enter_getppid"),
            ("count_errors", "tracepoint", "tracepoint/syscalls/sys_exit_openat", "syscalls:sys_exit_openat"),
            ("count_syscalls", "raw_tracepoint", "raw_tp/sys_enter", "sys_enter")):
        lk = next(lk for lk in b.links() if lk.program == name)
        assert (f"<tr><td>{name}</td><td>{kind}</td><td>{section}</td>"
                f"<td>{lk.kind} {target} (link {lk.id})</td></tr>") in page
    assert "<td>calls</td><td>hash</td><td>struct call_key</td><td>unsigned long long</td><td>64</td>" in page
    assert "<td>hlog2</td><td>percpu_array</td><td>unsigned int</td><td>unsigned long long</td><td>65</td>" in page
    assert "<td>amb</td><td>hash</td><td>struct only_pid</td><td>struct only_pid</td><td>4</td>" in page
    assert "3 programs, 14 maps" in page
    assert ".bss" not in page, "the object's internal maps (globals) are not listed as maps"


def test_hash_shows_type_size_and_first_rows_sorted(b):
    many = b["many"]
    many.clear()
    for i in range(13):
        many[i] = i * i
    page = many._repr_html_()
    assert ("<b>HashTable</b> <code>many</code>: hash, key <code>unsigned int</code>, value "
            "<code>unsigned long long</code>, 13 of 64 entries") in page
    assert "<tr><th>key</th><th>value</th></tr>" in page
    rows = "".join(f"<tr><td>{i}</td><td>{i * i}</td></tr>" for i in range(10))
    assert rows + "</tbody></table><p>... 3 more</p>" in page
    assert "<td>10</td>" not in page
    many.clear()
    assert "0 of 64 entries" in many._repr_html_() and "(empty)" in many._repr_html_()


def test_struct_keys_per_cpu_sums_arrays_and_escaping(b):
    shown = b["shown"]
    shown[(1, b"<b>&x")] = 4
    page = shown._repr_html_()
    assert "<tr><th>key.pid</th><th>key.comm</th><th>value</th></tr>" in page
    assert "<tr><td>1</td><td>&lt;b&gt;&amp;x</td><td>4</td></tr>" in page and "<b>&x" not in page
    shown.clear()

    n = b._obj.ncpus
    pcerr = b["pcerr"]
    pcerr[3] = list(range(1, n + 1))
    page = pcerr._repr_html_()
    assert f"<th>value (sum of {n} CPUs)</th>" in page
    assert f"<tr><td>3</td><td>{n * (n + 1) // 2}</td></tr>" in page
    pcerr.clear()

    arr = b["arr8"]
    arr.clear()
    arr[2], arr[6] = 5, 7
    page = arr._repr_html_()
    assert "<b>ArrayTable</b> <code>arr8</code>: array" in page and "8 elements, 2 not zero" in page
    assert "<tbody><tr><td>2</td><td>5</td></tr><tr><td>6</td><td>7</td></tr></tbody>" in page
    arr.clear()


def test_notebook_formatters_pick_up_html_and_png(b):
    formatters = pytest.importorskip("IPython.core.formatters")
    fmt = formatters.DisplayFormatter()
    data, _ = fmt.format(b["many"])
    assert "<code>many</code>" in data["text/html"]
    data, _ = fmt.format(b)
    assert "count_calls" in data["text/html"]
    data, _ = fmt.format(b["hlog2"].plot())
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_closed_objects_display_without_raising():
    with BPF(text=SRC, cflags=[f"-DTARGET={os.getpid()}"]) as other:
        table = other["many"]
        table[1] = 2
        assert "<td>1</td><td>2</td>" in table._repr_html_()
    assert "closed" in other._repr_html_() and "count_calls" not in other._repr_html_()
    page = table._repr_html_()
    assert "<code>many</code>" in page and "closed" in page and "<td>" not in page


def test_display_imports_neither_pandas_nor_matplotlib():
    code = (
        "import os, sys\n"
        "import bpfkit, bpfkit.table\n"
        "from bpfkit import BPF\n"
        "src = sys.argv[1]\n"
        "with BPF(text=src, cflags=['-DTARGET=1']) as b:\n"
        "    b['many'][1] = 1\n"
        "    assert '<td>1</td>' in b['many']._repr_html_() and 'count_calls' in b._repr_html_()\n"
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))\n")
    r = run_py(code, SRC)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# -- to_pandas(decode=) -----------------------------------------------------------------------

CHILD = ("import ctypes, os, sys\n"
         "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"  # PR_SET_NAME
         "for _ in range(int(sys.argv[2])):\n"
         "    os.getppid()\n"
         "print('ready', flush=True)\n"
         "sys.stdin.read()\n")


def test_pids_decode_to_the_commands_of_live_processes_then_exited(b):
    children = {}
    try:
        for name, n in (("nb-child-a", 3), ("nb-child-b", 5)):
            p = subprocess.Popen([sys.executable, "-c", CHILD, name, str(n)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            children[name] = (p, n)
            assert p.stdout.readline() == "ready\n"
        by_pid = b["by_pid"].to_pandas(decode={"key": "comm"})
        assert list(by_pid.columns) == ["key", "value"]
        assert sorted(zip(by_pid["key"], by_pid["value"])) == [("nb-child-a", 3), ("nb-child-b", 5)]

        calls = b["calls"].to_pandas(decode={"pid": "comm"}).sort_values("value")
        assert list(calls.columns) == ["key.pid", "key.comm", "value"]
        assert calls["key.pid"].tolist() == calls["key.comm"].tolist() == ["nb-child-a", "nb-child-b"], \
            "/proc's command of each pid is the one the program saw"
        assert calls["value"].tolist() == [3, 5]
        raw = b["by_pid"].to_pandas()
        assert sorted(raw["key"]) == sorted(p.pid for p, _ in children.values()), "no decode: the numbers"
    finally:
        for p, _ in children.values():
            p.stdin.close()
            p.wait(timeout=10)
    gone = b["by_pid"].to_pandas(decode={"key": "comm"})
    assert gone["key"].tolist() == ["[exited]", "[exited]"]
    b["by_pid"].clear()
    b["calls"].clear()


def test_errnos_the_kernel_returned_decode_to_their_names(b):
    b["errs"].clear()
    b.set_global("armed", 1)
    for _ in range(3):
        with pytest.raises(FileNotFoundError):
            os.open("/nonexistent-bpfkit-dir/x", os.O_RDONLY)
    for _ in range(2):
        with pytest.raises(IsADirectoryError):
            os.open("/", os.O_WRONLY)
    b.set_global("armed", 0)
    with open("/proc/self/comm") as f:
        me = f.read().strip()
    df = b["errs"].to_pandas(decode={"pid": "comm", "ret": "errno"})
    assert list(df.columns) == ["key.pid", "key.ret", "value"]
    assert sorted(zip(df["key.pid"], df["key.ret"], df["value"])) == [(me, "EISDIR", 2), (me, "ENOENT", 3)]
    raw = b["errs"].to_pandas()
    assert sorted(raw["key.ret"]) == [-21, -2]


def test_syscall_numbers_decode_to_names_on_an_arrays_index(b):
    from bpfkit.tools._syscalls import names as syscall_names

    names = syscall_names()
    if "getppid" not in names:
        pytest.skip(f"no syscall table for {os.uname().machine}")
    b["sys_calls"].clear()
    b.set_global("armed", 1)
    for _ in range(7):
        os.getppid()
    b.set_global("armed", 0)
    df = b["sys_calls"].to_pandas(decode={"key": "syscall"})
    assert df.loc["getppid", "value"] == 7
    assert df.index[names.index("getppid")] == "getppid"
    assert df.index[len(names) + 1] == f"[unknown: {len(names) + 1}]"
    by_value = b["sys_calls"].to_pandas(decode={"value": "syscall"})
    assert by_value["value"].iloc[names.index("getppid")] == names[7]
    b["sys_calls"].clear()


def test_kernel_addresses_decode_to_symbols(b):
    addr = BPF.ksymname("do_sys_openat2")
    assert addr > 0
    kaddrs = b["kaddrs"]
    kaddrs[addr] = 1
    kaddrs[addr + 0x10] = 2
    kaddrs[0] = 3
    df = kaddrs.to_pandas(decode={"key": "ksym"}).sort_values("value")
    assert df["key"].tolist() == ["do_sys_openat2", "do_sys_openat2", "[unknown]"]
    kaddrs.clear()


def test_per_cpu_columns_callables_and_errors(b):
    n = b._obj.ncpus
    pcerr = b["pcerr"]
    pcerr[1] = [-2 if c % 2 == 0 else 13 for c in range(n)]
    wide = pcerr.to_pandas(decode={"value": "errno"})
    assert [wide[f"value_cpu{c}"].iloc[0] for c in range(n)] == ["ENOENT" if c % 2 == 0 else "EACCES"
                                                                for c in range(n)]
    long = pcerr.to_pandas(percpu="long", decode={"value": "errno", "key": lambda k: f"k{k}"})
    assert long["value"].tolist() == ["ENOENT" if c % 2 == 0 else "EACCES" for c in range(n)]
    assert long["key"].tolist() == ["k1"] * n
    with pytest.raises(ValueError, match="is decoded twice"):
        pcerr.to_pandas(decode={"value": "errno", "value_cpu0": "errno"})
    pcerr.clear()

    amb = b["amb"]
    amb[(7,)] = (9,)
    with pytest.raises(ValueError, match="could be any of the columns key.pid, value.pid: name one"):
        amb.to_pandas(decode={"pid": "comm"})
    assert amb.to_pandas(decode={"value.pid": lambda v: v * 10})["value.pid"].tolist() == [90]
    amb.clear()
    with pytest.raises(ValueError, match=r"unknown decoder 'pid': decoders are 'comm', 'ksym', 'errno', "
                                         r"'syscall' or a callable"):
        b["many"].to_pandas(decode={"key": "pid"})
    with pytest.raises(ValueError, match="names no column: the columns are key, value"):
        b["many"].to_pandas(decode={"ip": "ksym"})


def test_missing_optional_packages_say_how_to_install_them(b, monkeypatch):
    from bpfkit import _frames

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"^to_pandas\(\) needs pandas: pip install bpfkit\[jupyter\]$"):
        b["many"].to_pandas()
    with pytest.raises(ImportError, match=r"^hist_frame\(\) needs pandas: pip install bpfkit\[jupyter\]$"):
        b["hlog2"].hist_frame()
    monkeypatch.setattr(_frames, "_FIGURE_CLASS", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"^plot\(\) needs matplotlib: pip install bpfkit\[jupyter\]$"):
        b["hlog2"].plot()


# -- histograms -------------------------------------------------------------------------------

def test_log2_buckets_as_frame_and_bars(b):
    df = b["hlog2"].hist_frame()
    assert list(df.columns) == ["low", "high", "count"]
    assert list(df.itertuples(index=False, name=None)) == LOG2_ROWS
    fig = b["hlog2"].plot(val_type="usecs", title="latency")
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert _heights(ax) == [c for _, _, c in LOG2_ROWS]
    assert _labels(ax) == ["0 -> 1", "2 -> 3", "4 -> 7", "8 -> 15", "16 -> 31", "32 -> 63", "64 -> 127",
                           "128 -> 255", "256 -> 511", "512 -> 1023"]
    assert ax.get_xlabel() == "usecs" and ax.get_ylabel() == "count" and fig.get_suptitle() == "latency"
    stripped = b["hlog2"].hist_frame(strip_leading_zero=True)
    assert len(stripped) == len(LOG2_ROWS), "slot 1 is used: nothing to strip"


def test_sectioned_log2_histogram_one_panel_per_section(b):
    df = b["per_disk"].hist_frame(section_print_fn=lambda d: "sd" + "ab"[d])
    assert list(df.columns) == ["section", "low", "high", "count"]
    assert df["section"].tolist() == ["sda"] * 10 + ["sdb"] * 10
    assert df["count"].tolist() == DISK0 + DISK1
    assert df[["low", "high"]].values.tolist() == [[lo, hi] for lo, hi, _ in LOG2_ROWS] * 2
    fig = b["per_disk"].plot(section_header="disk")
    assert len(fig.axes) == 2
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["disk = 0", "disk = 1"]
    assert [_heights(ax) for ax in fig.axes] == [DISK0, DISK1]
    assert _labels(fig.axes[0]) == _labels(fig.axes[1]) == [f"{lo} -> {hi}" for lo, hi, _ in LOG2_ROWS]
    merged = b["per_disk"].hist_frame(bucket_fn=lambda d: "all")
    assert merged["section"].unique().tolist() == ["all"]
    assert merged["count"].tolist() == [c for _, _, c in LOG2_ROWS]


def test_linear_histogram_frame_and_bars(b):
    df = b["lin"].hist_frame("linear")
    assert list(df.columns) == ["value", "count"]
    assert df["value"].tolist() == list(range(9)) and df["count"].tolist() == LINEAR
    fig = b["lin"].plot("linear", val_type="depth")
    ax = fig.axes[0]
    assert _heights(ax) == LINEAR and _labels(ax) == [str(i) for i in range(9)]
    assert ax.get_xlabel() == "depth"
    with pytest.raises(ValueError, match="kind is 'log2' or 'linear', not 'log10'"):
        b["lin"].plot("log10")


def test_stray_keys_and_empty_maps(b):
    stray = b["stray"]
    stray[3] = 2
    stray[70] = 5
    with pytest.raises(ValueError, match=r"slot 70 \(count 5\) is not a log2 slot"):
        stray.hist_frame()
    ax = stray.plot().axes[0]
    assert _heights(ax) == [0, 0, 2] and _labels(ax) == ["0 -> 1", "2 -> 3", "4 -> 7"]
    assert [t.get_text() for t in ax.texts] == ["(5 left out: 1 slot outside a log2 histogram's 0..64: 70)"]
    stray.clear()
    empty = stray.hist_frame()
    assert list(empty.columns) == ["low", "high", "count"] and len(empty) == 0
    ax = stray.plot().axes[0]
    assert len(ax.patches) == 0
    assert [t.get_text() for t in ax.texts] == ["no counts"]


OTHERS = r"""
struct lpm_key { u32 prefixlen; u8 addr[4]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 8); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, struct lpm_key); __type(value, u32); } routes SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 16); __uint(key_size, 4);
         __uint(value_size, 127 * 8); } stacks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 4); __type(value, u32); } q SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 4); __type(value, u64); } st SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 16); __type(value, u32); } bloom SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, 8); __type(key, u32); __type(value, u64); } lpc SEC(".maps");
struct inner_t { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, u32); __type(value, u64); };
struct inner_t inner_a SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 2); __type(key, u32);
         __array(values, struct inner_t); } outer SEC(".maps") = { .values = { &inner_a } };
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __uint(key_size, 4); __uint(value_size, 4); } jump SEC(".maps");

s64 stack_id = -1;

SEC("tracepoint")
int tail_target(void *ctx)
{
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int take_stack(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        stack_id = bpf_get_stackid(ctx, &stacks, 0);
    return 0;
}
"""


def test_every_map_class_shows_what_it_holds():
    before = snapshot()
    with BPF(text=OTHERS, cflags=[f"-DTARGET={os.getpid()}"]) as o:
        os.getppid()
        sid = o.get_global("stack_id")
        assert sid >= 0
        page = o["stacks"]._repr_html_()
        assert "<b>StackTrace</b> <code>stacks</code>: stack_trace" in page and "1 of 16 stacks" in page
        frames = list(o["stacks"].walk(sid))
        assert f"<tr><td>{sid}</td><td>{len(frames)}</td><td>{BPF.ksym(frames[0])} &lt;- " in page

        o["jump"][2] = "tail_target"
        page = o["jump"]._repr_html_()
        assert "1 of 4 slots set" in page and f"<td>2</td><td>{o['jump'][2].value}</td>" in page

        q, st = o["q"], o["st"]
        q.push(5)
        q.push(6)
        st.push(8)
        st.push(9)
        assert "<b>QueueStack</b> <code>q</code>: queue, value <code>u32</code>, 4 max entries, next value 5" \
            in q._repr_html_()
        assert ": stack, value <code>u64</code>, 4 max entries, next value 9" in st._repr_html_()
        q.values()
        assert "4 max entries, empty" in q._repr_html_()
        o["bloom"].push(3)
        assert "a Bloom filter cannot list what it holds" in o["bloom"]._repr_html_()

        page = o["outer"]._repr_html_()
        assert "1 of 2 entries" in page and "<tr><td>0</td><td>inner_a (array, 4 max entries)</td></tr>" in page

        o["routes"][(8, bytes([10, 0, 0, 0]))] = 1
        page = o["routes"]._repr_html_()
        assert "<b>LpmTrie</b>" in page and "key <code>struct lpm_key</code>" in page
        assert "<tr><td>8</td><td>[10, 0, 0, 0]</td><td>1</td></tr>" in page

        n = o._obj.ncpus
        o["lpc"][3] = [2] * n
        page = o["lpc"]._repr_html_()
        assert "<b>LruPerCpuHash</b>" in page and f"<tr><td>3</td><td>{2 * n}</td></tr>" in page
        queue = q
    assert "closed" in queue._repr_html_()
    import gc

    gc.collect()
    assert not leaked(before)
