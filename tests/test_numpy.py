"""numpy views: a BPF_F_MMAPABLE array maps into memory; the view is live both ways and
survives close() without keeping the kernel map alive (the leak check verifies that)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from bpfkit import BPF

from .test_maps import MAPS

MMAP = r"""
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1 << 20);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, u32);
    __type(value, u64);
} big SEC(".maps");
u64 seen = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int bump(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 0, one = 1;
    u64 *v = bpf_map_lookup_elem(&big, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    u64 *w = bpf_map_lookup_elem(&big, &one);
    if (w)
        seen = *w;
    return 0;
}
"""


def test_mmapable_array_to_numpy_is_a_live_zero_copy_view():
    with BPF(text=MMAP, cflags=[f"-DTARGET={os.getpid()}"]) as b:
        t = b["big"]
        assert t.mmapable
        vals = t.to_numpy()
        assert vals.shape == (1 << 20,) and vals.dtype == np.uint64
        assert not vals.flags.owndata
        for _ in range(5):
            os.getppid()
        assert vals[0] == 5, "a kernel update is seen without re-reading"
        vals[1] = 77
        os.getppid()
        assert b.get_global("seen") == 77, "a numpy write is seen by the program"
        assert t[1].value == 77
        assert t.to_numpy() is vals
    assert vals[0] == 0, "after close the view stays valid memory, reading zeros"


def test_non_mmapable_array_refuses_mmap():
    with BPF(text=MAPS, cflags=["-DTARGET=0"], autoattach=False) as b:
        with pytest.raises(TypeError, match="BPF_F_MMAPABLE"):
            b["a"]._m.mmap()
