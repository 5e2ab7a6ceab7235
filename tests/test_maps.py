"""Maps as Python mappings: every operation, for hash, array, percpu_hash, percpu_array and
lru_hash, typed from BTF (struct layout with padding), with numpy snapshots."""

from __future__ import annotations

import ctypes as ct
import os
import threading

import numpy as np
import pytest

from bpfkit import BPF, MapError
from bpfkit.table import ArrayTable, HashTable, LruHash, PerCpuArray, PerCpuHash

MAPS = r"""
struct key_t {
    u32 pid;
    /* 4 bytes of padding here */
    u64 cookie;
    char comm[6];
    /* 2 bytes of tail padding */
};

struct val_t {
    u8 flag;
    u16 small;
    s32 neg;
    u64 big;
    u32 arr[3];
};

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } h SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, struct key_t); __type(value, struct val_t); } hs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 8); __type(key, u32); __type(value, s64); } a SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u32); } ph SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 4); __type(key, u32); __type(value, u64); } pa SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32); __type(key, u64); __type(value, u64); } lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, u32); __type(value, u32); } small SEC(".maps");

/* The program writes known values so decoding is checked against what the kernel side wrote. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int fill(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct key_t k = {};
    k.pid = 7;
    k.cookie = 0x1122334455667788ULL;
    __builtin_memcpy(k.comm, "abcde", 6);
    struct val_t v = {};
    v.flag = 1;
    v.small = 65535;
    v.neg = -5;
    v.big = 1ULL << 40;
    v.arr[0] = 10; v.arr[1] = 20; v.arr[2] = 30;
    bpf_map_update_elem(&hs, &k, &v, BPF_ANY);

    u32 zero = 0;
    u64 *c = bpf_map_lookup_elem(&pa, &zero);
    if (c)
        *c += 1;       /* per-CPU: no atomics needed */
    return 0;
}
"""


@pytest.fixture(scope="module")
def b():
    with BPF(text=MAPS, cflags=[f"-DTARGET={os.getpid()}"]) as bpf:
        yield bpf


@pytest.fixture(autouse=True)
def no_leaks():
    # The module-scoped object outlives single tests; its release is checked in test_core.
    yield


def test_types_by_map_kind(b):
    assert type(b["h"]) is HashTable and type(b["a"]) is ArrayTable
    assert type(b["ph"]) is PerCpuHash and type(b["pa"]) is PerCpuArray and type(b["lru"]) is LruHash
    assert b.get_table("h") is b["h"]


def test_hash_operations(b):
    h = b["h"]
    h.clear()
    assert len(h) == 0 and 1 not in h and h.get(1) is None and h.get(1, 9) == 9
    h[1] = 10
    h[ct.c_uint32(2)] = ct.c_uint64(20)
    h[(3).to_bytes(4, "little")] = (30).to_bytes(8, "little")
    assert h[1].value == 10 and h[2].value == 20 and h[3].value == 30
    assert isinstance(h[1], ct.c_uint64) and 2 in h and len(h) == 3
    assert sorted(k.value for k in h) == [1, 2, 3]
    assert sorted(k.value for k in h.keys()) == [1, 2, 3]
    assert sorted(v.value for v in h.values()) == [10, 20, 30]
    assert sorted((k.value, v.value) for k, v in h.items()) == [(1, 10), (2, 20), (3, 30)]
    del h[2]
    assert 2 not in h and len(h) == 2
    with pytest.raises(KeyError):
        h[2]
    with pytest.raises(KeyError):
        del h[2]
    h.zero()
    assert h[1].value == 0 and len(h) == 2
    h.insert(5, 1)
    with pytest.raises(MapError) as ei:
        h.insert(5, 2)
    assert ei.value.errno == 17  # EEXIST
    h.clear()
    assert len(h) == 0


def test_wrong_sizes_and_types_name_the_expected_size(b):
    h = b["h"]
    with pytest.raises(ValueError, match="4-byte keys"):
        h[b"\x01\x02"]
    with pytest.raises(ValueError, match="8-byte values"):
        h[1] = b"\x00"
    with pytest.raises(TypeError, match="4 bytes"):
        h["one"] = 1
    with pytest.raises(TypeError, match="4 bytes"):
        h[1.5]
    with pytest.raises(ValueError, match="4-byte keys"):
        h[ct.c_uint64(1)]


def test_full_map_reports_it(b):
    s = b["small"]
    for i in range(4):
        s[i] = i
    with pytest.raises(MapError, match="full"):
        s[99] = 1
    s.clear()


def test_struct_keys_and_values_have_btf_layout_and_decode_what_the_kernel_wrote(b):
    hs = b["hs"]
    K, V = hs.Key, hs.Leaf
    assert ct.sizeof(K) == 24 and K.cookie.offset == 8 and K.comm.offset == 16
    assert ct.sizeof(V) == 32 and V.small.offset == 2 and V.neg.offset == 4 and V.big.offset == 8 and V.arr.offset == 16
    hs.clear()
    os.getppid()
    [(k, v)] = hs.items()
    assert (k.pid, k.cookie, k.comm) == (7, 0x1122334455667788, b"abcde")
    assert (v.flag, v.small, v.neg, v.big, list(v.arr)) == (1, 65535, -5, 1 << 40, [10, 20, 30])
    # Keys by tuple and by instance, values by tuple.
    assert hs[(7, 0x1122334455667788, b"abcde")].neg == -5
    hs[K(pid=8, cookie=1, comm=b"x")] = (0, 1, -1, 2, (1, 2, 3))
    assert hs[(8, 1, b"x")].neg == -1
    keys, vals = hs.to_numpy()
    assert keys.dtype.names == ("pid", "cookie", "comm") and keys.dtype.itemsize == 24
    assert sorted(keys["pid"].tolist()) == [7, 8]
    assert sorted(vals["neg"].tolist()) == [-5, -1]
    assert vals.dtype.fields["big"][1] == 8
    hs.clear()


def test_array_operations(b):
    a = b["a"]
    assert len(a) == 8 and 7 in a and 8 not in a and -1 in a
    a.clear()
    a[0] = -3
    a[-1] = 99
    assert a[0].value == -3 and a[7].value == 99 and a[-1].value == 99
    with pytest.raises(IndexError):
        a[8]
    with pytest.raises(IndexError):
        a[-9] = 1
    del a[0]
    assert a[0].value == 0
    assert [v.value for v in a.values()] == [0] * 7 + [99]
    assert [k.value for k in a] == list(range(8))
    vals = a.to_numpy()  # an array's keys are its indexes
    assert vals.tolist() == [0] * 7 + [99]
    a.zero()
    assert all(v.value == 0 for v in a.values())
    with pytest.raises(TypeError):
        a["x"]


def test_percpu_hash_values_are_numpy_arrays_of_ncpu(b):
    ph = b["ph"]
    n = b._obj.ncpus
    ph[1] = list(range(n))
    v = ph[1]
    assert isinstance(v, np.ndarray) and v.shape == (n,) and v.tolist() == list(range(n))
    ph[2] = 5  # one value: every CPU
    assert ph[2].tolist() == [5] * n
    assert ph.sum(1) == sum(range(n)) and ph.max(1) == n - 1
    with pytest.raises(ValueError, match=f"takes {n} values"):
        ph[3] = [1] * (n + 1)
    keys, vals = ph.to_numpy()
    assert vals.shape == (2, n)
    assert sorted(vals.sum(axis=1).tolist()) == sorted([sum(range(n)), 5 * n])
    ph.clear()
    assert len(ph) == 0


def test_percpu_array_counts_exactly(b):
    pa = b["pa"]
    pa.clear()
    for _ in range(250):
        os.getppid()
    v = pa[0]
    assert v.shape == (b._obj.ncpus,) and int(v.sum()) == 250
    vals = pa.to_numpy()
    assert vals.shape == (4, b._obj.ncpus) and int(vals[0].sum()) == 250


def test_lru_hash_evicts_instead_of_failing(b):
    lru = b["lru"]
    lru.clear()
    for i in range(200):
        lru[i] = i * 2
    assert 0 < len(lru) <= 32
    assert all(v.value == k.value * 2 for k, v in lru.items())
    lru.clear()


def test_iteration_survives_concurrent_deletion(b):
    h = b["h"]
    h.clear()
    for i in range(60):
        h[i] = i
    seen = []
    for k in h:
        seen.append(k.value)
        if len(seen) == 10:
            for j in range(30):
                if j in h:
                    del h[j]
    assert len(seen) == len(set(seen)) == 60, "every key exactly once: iteration is over a snapshot"
    remaining = sorted(k.value for k in h)
    assert remaining == list(range(30, 60))
    # And deletion racing a keys() walk from another thread never yields a key twice.
    for i in range(60):
        h[i] = i
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for i in range(0, 60, 3):
                try:
                    del h[i]
                except KeyError:
                    pass
                h[i] = i

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(20):
            ks = [k.value for k in h.keys()]
            assert len(ks) == len(set(ks))
    finally:
        stop.set()
        t.join()
    h.clear()


def test_to_numpy_on_an_empty_map(b):
    b["h"].clear()
    k, v = b["h"].to_numpy()
    assert k.shape == (0,) and v.shape == (0,) and k.dtype == np.uint32 and v.dtype == np.uint64

