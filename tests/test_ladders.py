"""Fallback ladders: one hook written three ways (fentry, kprobe, tracepoint); bpfkit loads and
attaches the first the kernel supports. Here (no kprobes, fentry refused) that is the
tracepoint; inside the qemu kernels (marker ``kernels``) it is fentry, or the kprobe when the
ladder puts it first."""

from __future__ import annotations

import os
import tempfile

import pytest
from bpfkit import BPF, NotSupportedError, features

pytestmark = pytest.mark.kernels

LADDER = r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 3); __type(key, u32); __type(value, u64); } hits SEC(".maps");
const volatile u32 target_tgid = 0;
static __always_inline void bump(u32 k)
{
    if (BPFKIT_TGID() != target_tgid)
        return;
    u64 *v = bpf_map_lookup_elem(&hits, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
}
SEC("fentry/do_unlinkat") int BPF_PROG(unlink_fentry) { bump(0); return 0; }
SEC("kprobe/do_unlinkat") int BPF_KPROBE(unlink_kprobe) { bump(1); return 0; }
SEC("tracepoint/syscalls/sys_enter_unlinkat") int unlink_tp(void *ctx) { bump(2); return 0; }
"""
PROGS = ["unlink_fentry", "unlink_kprobe", "unlink_tp"]
FEATURE = {"unlink_fentry": "fentry", "unlink_kprobe": "kprobes", "unlink_tp": None}


def _unlink(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        dfd = os.open(d, os.O_RDONLY)
        try:
            for i in range(n):
                os.close(os.open(f"f{i}", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=dfd))
                os.unlink(f"f{i}", dir_fd=dfd)  # unlinkat(2)
        finally:
            os.close(dfd)


def _expected(order: list) -> str:
    required = {f for f in os.environ.get("BPFKIT_REQUIRE_FEATURES", "").split(",") if f}
    for p in order:
        f = FEATURE[p]
        if f is None or features.supported(f):
            return p
        assert f not in required, f"{f} is required here but its probe says no: {features.probe(f).reason}"
    raise AssertionError("the tracepoint always works")


@pytest.mark.parametrize("order", [PROGS, ["unlink_kprobe", "unlink_fentry", "unlink_tp"]],
                         ids=["fentry-first", "kprobe-first"])
def test_ladder_attaches_the_first_alternative_the_kernel_supports(order):
    want = _expected(order)
    with BPF(text=LADDER, consts={"target_tgid": os.getpid()}, alternatives=[order]) as b:
        alt = b.alternatives[order[0]]
        assert alt.program == want and b.chosen(order[-1]) == want
        # The alternatives passed over are exactly the better ones, each with its reason.
        assert [p for p, _ in alt.passed_over] == order[:order.index(want)]
        assert all(why for _, why in alt.passed_over)
        # Only the chosen program was loaded and attached.
        assert [p for _k, _t, p in b.links()] == [want]
        loaded = {p.name for p in b._obj.programs() if p.fd >= 0}
        assert loaded == {want}
        _unlink(9)
        counts = [b["hits"][i].value for i in range(3)]
        assert counts[PROGS.index(want)] == 9 and sum(counts) == 9


def test_ladder_without_a_working_alternative_says_why_for_each():
    src = LADDER.replace("sys_enter_unlinkat", "sys_enter_no_such_call")
    if features.supported("fentry") or features.supported("kprobes"):
        pytest.skip("this kernel has fentry or kprobes: the ladder has a working rung")
    with pytest.raises(NotSupportedError) as ei:
        BPF(text=src, alternatives=[PROGS])
    msg = str(ei.value)
    assert all(p in msg for p in PROGS) and "sys_enter_no_such_call does not exist" in msg


def test_ladder_names_must_be_programs():
    with pytest.raises(ValueError, match="not a program"):
        BPF(text=LADDER, alternatives=[["unlink_fentry", "nope"]])


def test_a_rung_the_kernel_refuses_at_load_passes_to_the_next():
    # The fentry rung names a function that does not exist: no probe can foresee that, so the
    # load is refused (where fentry works at all), the rung ruled out, and the object reloaded.
    src = LADDER.replace("fentry/do_unlinkat", "fentry/bpfkit_no_such_function")
    with BPF(text=src, consts={"target_tgid": os.getpid()}, alternatives=[PROGS]) as b:
        alt = b.alternatives["unlink_fentry"]
        assert alt.program == _expected(PROGS[1:])
        why = dict(alt.passed_over)["unlink_fentry"]
        if features.supported("fentry"):
            assert "bpfkit_no_such_function" in why or "ESRCH" in why or "No such process" in why, why
        _unlink(4)
        assert b["hits"][PROGS.index(alt.program)].value == 4


def test_a_failure_that_is_no_rungs_fault_is_raised_as_is():
    # A map the kernel cannot create fails the whole object: that error, not "no alternative".
    from bpfkit import LoadError

    src = LADDER + r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 0); __type(key, u32); __type(value, u32); } broken SEC(".maps");
"""
    with pytest.raises(LoadError) as ei:
        BPF(text=src, alternatives=[PROGS])
    assert ei.value.program is None and "no alternative" not in str(ei.value)
