"""Tracepoints three ways (classic, raw_tp, tp_btf), by name and by regex; the listing."""

from __future__ import annotations

import os

import pytest
from bpfkit import BPF

from ._features import need

N = 23
NR_GETPPID = 110  # x86-64

RAW = r"""
u64 raw_hits = 0, btf_hits = 0;
SEC("raw_tp/sys_enter")
int raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
    if (BPFKIT_TGID() == TARGET && ctx->args[1] == NR)
        __sync_fetch_and_add(&raw_hits, 1);
    return 0;
}
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter, struct pt_regs *regs, long id)
{
    if (BPFKIT_TGID() == TARGET && id == NR)
        __sync_fetch_and_add(&btf_hits, 1);
    return 0;
}
"""


def test_raw_and_btf_tracepoints_count_every_call():
    need("raw_tp", "tp_btf")
    assert BPF.support_raw_tracepoint()
    with BPF(text=RAW, cflags=[f"-DTARGET={os.getpid()}", f"-DNR={NR_GETPPID}"]) as b:
        assert sorted(k for k, _t, _p in b.links()) == ["raw_tracepoint", "tp_btf"]
        for _ in range(N):
            os.getppid()
        assert (b.get_global("raw_hits"), b.get_global("btf_hits")) == (N, N)


BARE = r"""
u64 hits = 0;
SEC("raw_tp")
int raw_any(struct bpf_raw_tracepoint_args *ctx)
{
    if (BPFKIT_TGID() == TARGET && ctx->args[1] == NR)
        __sync_fetch_and_add(&hits, 1);
    return 0;
}
SEC("tracepoint")
int tp_any(void *ctx)
{
    if (BPFKIT_TGID() == TARGET)
        __sync_fetch_and_add(&hits, 1);
    return 0;
}
"""


def test_raw_tracepoint_attached_by_name_and_detached():
    with BPF(text=BARE, cflags=[f"-DTARGET={os.getpid()}", f"-DNR={NR_GETPPID}"]) as b:
        b.attach_raw_tracepoint(tp="sys_enter", fn_name="raw_any")
        for _ in range(N):
            os.getppid()
        b.detach_raw_tracepoint(tp="sys_enter")
        os.getppid()
        assert b.get_global("hits") == N


def test_tracepoint_regex_attaches_each_match():
    # getppid, getpgid and getsid, entry and exit: six tracepoints, two hits per call.
    tp_re = r"syscalls:sys_(enter|exit)_get(ppid|pgid|sid)"
    names = BPF.get_tracepoints(tp_re)
    assert names == sorted(f"syscalls:sys_{d}_get{c}" for d in ("enter", "exit") for c in ("ppid", "pgid", "sid"))
    with BPF(text=BARE, cflags=[f"-DTARGET={os.getpid()}", f"-DNR={NR_GETPPID}"]) as b:
        b.attach_tracepoint(tp_re=tp_re, fn_name="tp_any")
        assert sorted(t for _k, t, _p in b.links()) == names
        os.getppid()
        os.getpgid(0)
        os.getsid(0)
        assert b.get_global("hits") == 6
        with pytest.raises(ValueError, match="no tracepoint matches"):
            b.attach_tracepoint(tp_re="nosuch:thing.*", fn_name="tp_any")


def test_tracepoint_listing_and_existence():
    every = BPF.get_tracepoints()
    assert "sched:sched_switch" in every and "syscalls:sys_enter_openat" in every
    assert len(every) > 500 and every == sorted(every)
    assert BPF.tracepoint_exists("sched", "sched_switch")
    assert not BPF.tracepoint_exists("sched", "no_such_event")
    assert BPF.get_tracepoints("sched:sched_switch") == ["sched:sched_switch"]


def test_many_attachments_detach_together():
    # More than one detach thread's share (8): bpfkit detaches them from several threads at once.
    tp_re = r"syscalls:sys_(enter|exit)_(get|set)\w*"
    names = BPF.get_tracepoints(tp_re)
    assert len(names) > 30
    with BPF(text=BARE, cflags=[f"-DTARGET={os.getpid()}", f"-DNR={NR_GETPPID}"]) as b:
        b.attach_tracepoint(tp_re=tp_re, fn_name="tp_any")
        assert len(b.links()) == len(names)
        before = b.get_global("hits")
        for _ in range(50):
            os.getpgid(0)  # sys_enter_getpgid and sys_exit_getpgid, and whatever else runs
        during = b.get_global("hits") - before
        assert during >= 100, during
        assert b._obj.detach("tracepoint") == len(names) and b.links() == []
        after = b.get_global("hits")
        for _ in range(50):
            os.getpgid(0)
        assert b.get_global("hits") == after  # every one of them detached
    # The leak check then confirms every link and perf event went.
