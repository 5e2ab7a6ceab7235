"""kprobes, kretprobes (maxactive, offsets), regex kprobes through multi-kprobe links, and
fentry/fexit. This kernel has neither kprobes nor fentry: these tests skip here by probe, saying
why, and run for real inside the Debian kernels of tests/kernels/ (marker ``kernels``)."""

from __future__ import annotations

import os

import pytest
from bpfkit import BPF, NotSupportedError, features

from ._features import need

pytestmark = pytest.mark.kernels

N = 37

COUNT = r"""
u64 hits = 0;
long ret = -1;
SEC("kprobe")
int on_entry(struct pt_regs *ctx)
{
    if (BPFKIT_TGID() == TARGET)
        __sync_fetch_and_add(&hits, 1);
    return 0;
}
SEC("kretprobe")
int on_return(struct pt_regs *ctx)
{
    if (BPFKIT_TGID() == TARGET) {
        __sync_fetch_and_add(&hits, 1);
        ret = PT_REGS_RC(ctx);
    }
    return 0;
}
"""


def _count_src() -> dict:
    return dict(text=COUNT, cflags=[f"-DTARGET={os.getpid()}"])


def test_kprobe_counts_every_call():
    need("kprobes")
    fn = BPF.get_syscall_fnname("getppid")
    with BPF(**_count_src()) as b:
        b.attach_kprobe(event=fn, fn_name="on_entry")
        assert b.num_open_kprobes() == 1
        for _ in range(N):
            os.getppid()
        assert b.get_global("hits") == N
        b.detach_kprobe(event=fn)
        os.getppid()
        assert b.get_global("hits") == N and b.num_open_kprobes() == 0


def test_kprobe_at_an_offset():
    need("kprobes")
    fn = BPF.get_syscall_fnname("getppid")
    with BPF(**_count_src()) as b:
        # x86-64 kernels built with IBT start every function with a 4-byte endbr64; with or
        # without it, one of these is an instruction boundary past the entry.
        last = None
        for off in (4, 1, 5):
            try:
                b.attach_kprobe(event=fn, event_off=off, fn_name="on_entry")
                break
            except OSError as e:
                last = e
        else:
            raise AssertionError(f"no offset took a kprobe: {last}")
        assert b.links()[0][1] == fn
        for _ in range(N):
            os.getppid()
        assert b.get_global("hits") == N


@pytest.mark.parametrize("maxactive", [0, 8])
def test_kretprobe_sees_the_return_value(maxactive):
    need("kprobes")
    fn = BPF.get_syscall_fnname("getppid")
    with BPF(**_count_src()) as b:
        b.attach_kretprobe(event=fn, fn_name="on_return", maxactive=maxactive)
        for _ in range(N):
            os.getppid()
        assert b.get_global("hits") == N
        assert b.get_global("ret") == os.getppid()
        if maxactive:
            # Made through kprobe_events: the event is ours, and goes with the object.
            with open("/sys/kernel/tracing/kprobe_events") as f:
                events = f.read()
            assert f"r{maxactive}:bpfkit/p{os.getpid()}_" in events
    with open("/sys/kernel/tracing/kprobe_events") as f:
        assert f"bpfkit/p{os.getpid()}_" not in f.read()


MULTI = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u64); __type(value, u64); } calls SEC(".maps");
static __always_inline int count(void *ctx)
{
    if (BPFKIT_TGID() != TARGET)
        return 0;
    u64 ip = bpf_get_func_ip(ctx), one = 1;
    u64 *v = bpf_map_lookup_elem(&calls, &ip);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&calls, &ip, &one, BPF_NOEXIST);
    return 0;
}
SEC("kprobe.multi")
int on_multi(struct pt_regs *ctx) { return count(ctx); }
SEC("kprobe")
int on_each(struct pt_regs *ctx) { return count(ctx); }
"""


@pytest.mark.parametrize("prog,feature", [("on_multi", "kprobe_multi"), ("on_each", "kprobes")])
def test_kprobe_by_regex_counts_each_function(prog, feature):
    need("kprobes", feature)
    # Syscalls with arguments: on some kernels the argument-less ones (getppid) are aliases that
    # ftrace, hence a multi-kprobe, cannot hook.
    fns = [BPF.get_syscall_fnname(n) for n in ("getpgid", "getsid", "getpriority")]
    event_re = "|".join(fns)
    assert BPF.get_kprobe_functions(event_re) == set(fns)
    with BPF(text=MULTI, cflags=[f"-DTARGET={os.getpid()}"]) as b:
        b.attach_kprobe(event_re=event_re, fn_name=prog)
        # One multi-kprobe link, or one kprobe per function.
        assert len(b.links()) == (1 if prog == "on_multi" else 3)
        for _ in range(5):
            os.getpgid(0)
        for _ in range(7):
            os.getsid(0)
        for _ in range(11):
            os.getpriority(os.PRIO_PROCESS, 0)
        by_name = {BPF.ksym(k.value): v.value for k, v in b["calls"].items()}
        assert by_name == {fns[0]: 5, fns[1]: 7, fns[2]: 11}
        # Detaching by the same pattern takes them all, multi-kprobe link or one per function.
        b.detach_kprobe(event_re=event_re)
        assert b.links() == []
        os.getpgid(0)
        assert {BPF.ksym(k.value): v.value for k, v in b["calls"].items()} == by_name


def test_kprobe_needs_the_kernel_to_have_kprobes():
    st = features.probe("kprobes")
    if st.supported:
        pytest.skip("this kernel has kprobes: nothing to refuse")
    with BPF(**_count_src()) as b:
        with pytest.raises(NotSupportedError, match="CONFIG_KPROBES"):
            b.attach_kprobe(event_re="^" + BPF.get_syscall_fnname("getppid") + "$", fn_name="on_entry")
        with pytest.raises(NotSupportedError, match="CONFIG_KPROBES"):
            b.attach_kretprobe(event=BPF.get_syscall_fnname("getppid"), fn_name="on_return", maxactive=4)


FENTRY = r"""
u64 entries = 0, exits = 0;
long ret = -1;
SEC("fentry/FN")
int BPF_PROG(enter_getpgid)
{
    if (BPFKIT_TGID() == TARGET)
        __sync_fetch_and_add(&entries, 1);
    return 0;
}
SEC("fexit/FN")
int BPF_PROG(exit_getpgid, const struct pt_regs *regs, long rc)
{
    if (BPFKIT_TGID() == TARGET) {
        __sync_fetch_and_add(&exits, 1);
        ret = rc;
    }
    return 0;
}
"""


def _fentry_src() -> str:
    # getpgid, not getppid: syscalls without arguments have no BTF function to attach to.
    return FENTRY.replace("FN", BPF.get_syscall_fnname("getpgid"))


def test_fentry_and_fexit_fire():
    need("fentry", "fexit")
    assert BPF.support_kfunc()
    with BPF(text=_fentry_src(), cflags=[f"-DTARGET={os.getpid()}"]) as b:
        kinds = sorted(k for k, _t, _p in b.links())
        assert kinds == ["fentry", "fexit"]
        for _ in range(N):
            os.getpgid(0)
        assert (b.get_global("entries"), b.get_global("exits")) == (N, N)
        assert b.get_global("ret") == os.getpgid(0)
        b.detach_kfunc("enter_getpgid")
        os.getpgid(0)
        # N, then one more for the `ret` check, then only fexit sees the last call.
        assert (b.get_global("entries"), b.get_global("exits")) == (N + 1, N + 2)


def test_fentry_refused_under_lockdown_says_so():
    st = features.probe("fentry")
    if st.supported:
        pytest.skip("fentry works on this kernel")
    assert not BPF.support_kfunc()
    with pytest.raises(NotSupportedError) as ei:
        BPF(text=_fentry_src(), cflags=[f"-DTARGET={os.getpid()}"])
    e = ei.value
    assert e.program == "enter_getpgid"
    if st.known_config and "lockdown" in st.known_config:
        assert "lockdown" in str(e) and "EPERM" in str(e)


KILLED = r"""
import os, sys
from bpfkit import BPF
b = BPF(text='SEC("kretprobe") int r(void *ctx) { return 0; }')
b.attach_kretprobe(event=BPF.get_syscall_fnname("getppid"), fn_name="r", maxactive=4)
print("attached", flush=True)
sys.stdin.read()
"""


def test_kprobe_event_of_a_killed_process_is_removed_by_the_next():
    import signal
    import subprocess
    import sys

    need("kprobes")
    p = subprocess.Popen([sys.executable, "-c", KILLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "attached"
        p.send_signal(signal.SIGKILL)
        p.wait()
        with open("/sys/kernel/tracing/kprobe_events") as f:
            assert f"bpfkit/p{p.pid}_" in f.read()  # tracefs events outlive their process
        with BPF(**_count_src()) as b:
            b.attach_kretprobe(event=BPF.get_syscall_fnname("getppid"), fn_name="on_return", maxactive=2)
            with open("/sys/kernel/tracing/kprobe_events") as f:
                assert f"bpfkit/p{p.pid}_" not in f.read()  # removed: its process is gone
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


LSM = r"""
const volatile u64 target_ino = 0;
const volatile u32 target_tgid = 0;
u64 denied = 0;
SEC("lsm/file_open")
int BPF_PROG(deny_marker, struct file *file, int ret)
{
    if (ret)
        return ret;
    if (BPFKIT_TGID() != target_tgid || BPF_CORE_READ(file, f_inode, i_ino) != target_ino)
        return 0;
    __sync_fetch_and_add(&denied, 1);
    return -1; /* -EPERM */
}
"""


def test_lsm_program_denies_opening_one_file(tmp_path):
    need("lsm")
    assert BPF.support_lsm()
    marker, other = tmp_path / "marker", tmp_path / "other"
    marker.write_text("x")
    other.write_text("y")
    consts = {"target_ino": marker.stat().st_ino, "target_tgid": os.getpid()}
    with BPF(text=LSM, consts=consts) as b:
        assert [k for k, _t, _p in b.links()] == ["lsm"]
        for _ in range(3):
            with pytest.raises(PermissionError):
                marker.open().close()
        assert other.read_text() == "y"
        assert b.get_global("denied") == 3
    assert marker.read_text() == "x"  # detached with the object
