"""The whole path: compile embedded C, load, attach, count exactly what a workload did."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from bpfkit import BPF, AttachError, NotSupportedError, _native

from .conftest import leaked, snapshot

COUNT_OPENS = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""


def test_issue_example_counts_exactly_1000_opens():
    with BPF(text=COUNT_OPENS) as b:
        for _ in range(1000):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert b["counts"][os.getpid()].value == 1000
        items = {k.value: v.value for k, v in b["counts"].items()}
        assert items[os.getpid()] == 1000
        assert b.links() == [("tracepoint", "syscalls:sys_enter_openat", "count_opens")]


def test_source_that_includes_headers_itself_still_compiles():
    src = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n' + COUNT_OPENS
    with BPF(text=src) as b:
        os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert b["counts"][os.getpid()].value >= 1


def test_src_file_and_bytes_text(tmp_path):
    p = tmp_path / "probe.bpf.c"
    p.write_text(COUNT_OPENS)
    with BPF(src_file=str(p)) as b:
        os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert b["counts"][os.getpid()].value == 1
    with BPF(text=COUNT_OPENS.encode()) as b:
        assert "counts" in b and list(b) == ["counts"]


def test_explicit_tracepoint_attach_and_detach():
    src = COUNT_OPENS.replace('SEC("tracepoint/syscalls/sys_enter_openat")', 'SEC("tracepoint")')
    with BPF(text=src) as b:
        assert b.links() == []
        os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert os.getpid() not in b["counts"]
        b.attach_tracepoint(tp="syscalls:sys_enter_openat", fn_name="count_opens")
        for _ in range(7):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        b.detach_tracepoint(tp="syscalls:sys_enter_openat")
        for _ in range(5):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert b["counts"][os.getpid()].value == 7
        with pytest.raises(ValueError, match="no tracepoint attached"):
            b.detach_tracepoint(tp="syscalls:sys_enter_openat")
        with pytest.raises(AttachError, match="no tracepoint syscalls:sys_enter_nonexistent"):
            b.attach_tracepoint(tp="syscalls:sys_enter_nonexistent", fn_name="count_opens")


def test_autoattach_false_attaches_nothing():
    with BPF(text=COUNT_OPENS, autoattach=False) as b:
        os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert len(b["counts"]) == 0
        assert b.links() == []


def test_raw_tracepoint_counts_getppid_exactly():
    src = r"""
    const volatile u32 targ_pid = 0;
    u64 calls = 0;
    SEC("raw_tp/sys_enter")
    int on_enter(struct bpf_raw_tracepoint_args *ctx)
    {
        /* args[1] is the syscall number on sys_enter */
        if ((bpf_get_current_pid_tgid() >> 32) != targ_pid)
            return 0;
        if (ctx->args[1] == 110 /* __NR_getppid on x86-64 */)
            __sync_fetch_and_add(&calls, 1);
        return 0;
    }
    """
    if os.uname().machine != "x86_64":
        pytest.skip("syscall number in the test is x86-64's")
    with BPF(text=src, consts={"targ_pid": os.getpid()}) as b:
        for _ in range(321):
            os.getppid()
        assert b.get_global("calls") == 321


def test_tp_btf_program_attaches():
    src = r"""
    u64 switches = 0;
    SEC("tp_btf/sched_switch")
    int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
    {
        __sync_fetch_and_add(&switches, 1);
        return 0;
    }
    """
    with BPF(text=src) as b:
        time.sleep(0.05)
        assert b.get_global("switches") > 0
        assert b.links()[0][:2] == ("tp_btf", "sched_switch")


def _libc_getpid():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return libc.getpid


UPROBE_COUNT = r"""
/* Calls per process, so the test can tell whose calls were counted. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, u64);
} hits SEC(".maps");
u64 returns = 0;

SEC("uprobe")
int on_getpid(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&hits, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&hits, &pid, &one, BPF_NOEXIST);
    return 0;
}

SEC("uretprobe")
int on_getpid_ret(struct pt_regs *ctx)
{
    if (PT_REGS_RC(ctx) == (bpf_get_current_pid_tgid() >> 32))
        __sync_fetch_and_add(&returns, 1);
    return 0;
}
"""


def test_uprobe_on_libc_getpid_counts_exactly_with_pid_filter():
    getpid = _libc_getpid()
    # Another process calling getpid while the probe is attached must not be counted.
    other = subprocess.Popen(
        [sys.executable, "-c", "import ctypes, sys\nf = ctypes.CDLL('libc.so.6').getpid\nsys.stdin.readline()\n"
         "for _ in range(50): f()\nprint('done', flush=True)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    me = os.getpid()
    with BPF(text=UPROBE_COUNT) as b:
        b.attach_uprobe(name="c", sym="getpid", fn_name="on_getpid", pid=me)
        b.attach_uretprobe(name="c", sym="getpid", fn_name="on_getpid_ret", pid=me)
        out, _ = other.communicate("go\n", timeout=30)
        assert out.strip() == "done"
        hits = b["hits"]
        # Python itself may call getpid() (os.getpid); count from here.
        h0 = hits[me].value if me in hits else 0
        r0 = b.get_global("returns")
        for _ in range(500):
            getpid()
        assert hits[me].value - h0 == 500
        assert b.get_global("returns") - r0 == 500
        assert [k.value for k in hits.keys()] == [me], "another process's calls were counted"
        b.detach_uprobe(name="c", sym="getpid", pid=me)
        for _ in range(10):
            getpid()
        assert hits[me].value - h0 == 500
        assert b.get_global("returns") - r0 == 510


def test_uprobe_unknown_library_and_symbol():
    with BPF(text=UPROBE_COUNT) as b:
        with pytest.raises(OSError, match="cannot find library"):
            b.attach_uprobe(name="surely_not_a_lib_xyz", sym="f", fn_name="on_getpid")
        with pytest.raises(AttachError, match="no_such_symbol_xyz"):
            b.attach_uprobe(name="c", sym="no_such_symbol_xyz", fn_name="on_getpid")


KPROBE = r"""
u64 hits = 0;
SEC("kprobe")
int on_call(struct pt_regs *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET_PID)
        __sync_fetch_and_add(&hits, 1);
    return 0;
}
"""


def test_kprobe_attaches_where_the_kernel_has_kprobes():
    why = _native.kprobes_unavailable()
    with BPF(text=KPROBE, cflags=[f"-DTARGET_PID={os.getpid()}"]) as b:
        if why is not None:
            # This kernel has none: the error must say so, and name CONFIG_KPROBES.
            assert "CONFIG_KPROBES" in why
            with pytest.raises(NotSupportedError, match="CONFIG_KPROBES") as ei:
                b.attach_kprobe(event="__x64_sys_getppid", fn_name="on_call")
            assert "CONFIG_KPROBES" in ei.value.feature and ei.value.errno is not None
            with pytest.raises(NotSupportedError, match="CONFIG_KPROBES"):
                b.attach_kretprobe(event="__x64_sys_getppid", fn_name="on_call")
            pytest.skip(f"kprobes unavailable (probe says: {why}); NotSupportedError checked")
        b.attach_kprobe(event="__x64_sys_getppid", fn_name="on_call")
        for _ in range(100):
            os.getppid()
        assert b.get_global("hits") == 100


def test_consts_set_before_load_and_globals_after():
    src = r"""
    const volatile u32 targ_pid = 0;
    const volatile char label[8] = {};
    u64 counter = 0;
    u32 seen_pid = 0;
    SEC("tracepoint/syscalls/sys_enter_getppid")
    int tick(void *ctx)
    {
        if ((bpf_get_current_pid_tgid() >> 32) != targ_pid)
            return 0;
        seen_pid = targ_pid;
        counter += 1;
        return 0;
    }
    """
    with BPF(text=src, consts={"targ_pid": os.getpid(), "label": b"abc"}) as b:
        os.getppid()
        assert b.get_global("seen_pid") == os.getpid()
        assert b.get_global("targ_pid") == os.getpid()
        assert bytes(b.get_global("label")).rstrip(b"\0") == b"abc"
        b.set_global("counter", 41)
        os.getppid()
        assert b.get_global("counter") == 42
        with pytest.raises(ValueError, match="read-only once loaded"):
            b.set_global("targ_pid", 1)
    with pytest.raises(ValueError, match="no global variable `nope`"):
        BPF(text=src, consts={"nope": 1})
    with pytest.raises(ValueError, match="does not fit"):
        BPF(text=src, consts={"targ_pid": -1})
    with pytest.raises(TypeError, match="must be an int or bytes"):
        BPF(text=src, consts={"targ_pid": 1.5})


def test_close_releases_everything_at_once_and_is_idempotent():
    before = snapshot()
    b = BPF(text=COUNT_OPENS)
    m = b["counts"]
    assert snapshot()["prog"] - before["prog"]
    b.close()
    b.close()
    assert not leaked(before)
    assert b.closed
    with pytest.raises(OSError, match="closed"):
        m[1]


def test_dropping_the_object_releases_everything():
    import gc

    before = snapshot()
    b = BPF(text=COUNT_OPENS)
    t = b["counts"]
    del b
    gc.collect()
    # The table keeps the object alive: still loaded.
    assert snapshot()["prog"] - before["prog"]
    del t
    gc.collect()
    assert not leaked(before)


def test_sigkill_leaves_nothing_behind():
    before = snapshot()
    code = textwrap.dedent(f"""
        import sys, time
        from bpfkit import BPF
        b = BPF(text={COUNT_OPENS!r})
        print("ready", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        assert snapshot()["link"] - before["link"], "the child attached a link"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not leaked(before, timeout=5)


def test_gil_is_released_while_compiling(cache_dir):
    import threading

    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        n0 = len(ticks)
        _native.compile(COUNT_OPENS + "\n// gil test\n", cache_dir=str(cache_dir))
        n1 = len(ticks)
    finally:
        stop.set()
        t.join()
    assert n1 - n0 >= 5, "another thread could not run while clang ran"


def test_bpffs_and_tracefs_are_mounted_on_demand():
    # tracefs was needed (and mounted) by the tracepoint tests; bpffs is mounted on request.
    _native.ensure_mounted("tracefs")
    assert os.path.ismount("/sys/kernel/tracing")
    _native.ensure_mounted("bpffs")
    assert os.path.ismount("/sys/fs/bpf")


def test_the_leak_check_sees_a_leak():
    """The autouse fixture must be able to fail: an object kept open is reported."""
    before = snapshot()
    b = BPF(text=COUNT_OPENS)
    try:
        extra = leaked(before, timeout=0.2)
        assert extra.get("prog") and extra.get("map") and extra.get("link") and extra.get("fd"), extra
    finally:
        b.close()
    assert not leaked(before)
