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
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 8); __type(key, struct key_t); __type(value, struct val_t); } phs SEC(".maps");

u64 g64 = 0;
u16 g16 = 0;
s8 gs8 = 0;

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



def test_out_of_range_ints_are_refused_not_wrapped(b):
    h, hs, a, ph = b["h"], b["hs"], b["a"], b["ph"]
    h.clear()
    hs.clear()
    with pytest.raises(OverflowError, match=r"^4294967301 does not fit the key of map `h`, an unsigned 32"):
        h[2**32 + 5] = 1
    with pytest.raises(OverflowError, match=r"^-1 does not fit the value of map `h`, an unsigned 64-bit"):
        h[7] = -1
    with pytest.raises(OverflowError, match=r"does not fit the value of map `h`"):
        h[7] = 2**200
    with pytest.raises(OverflowError, match=r"^-1 does not fit the key of map `h`"):
        h[-1]
    assert len(h) == 0, "nothing was stored under a wrapped key"
    h[2**32 - 1] = 2**64 - 1  # the limits themselves fit
    assert h[2**32 - 1].value == 2**64 - 1
    key = (7, 1, b"x")
    with pytest.raises(OverflowError, match=r"^70000 does not fit field `small` of the value of map `hs`, "
                                            r"an unsigned 16-bit integer \(0\.\.65535\)"):
        hs[key] = {"small": 70000}
    with pytest.raises(OverflowError, match=r"field `small` of the value of map `hs`"):
        hs[key] = {"small": -1}
    with pytest.raises(OverflowError, match=r"^-2147483649 does not fit field `neg` .* a signed 32-bit"):
        hs[key] = (0, 0, -2**31 - 1)
    with pytest.raises(OverflowError, match=r"^4294967296 does not fit field `arr\[2\]` of the value of map"):
        hs[key] = {"arr": [1, 2, 2**32]}
    with pytest.raises(OverflowError, match=r"field `flag` of the value"):
        hs[key] = {"flag": 256}
    with pytest.raises(OverflowError, match=r"field `cookie` of the key of map `hs`"):
        hs[(7, -1, b"x")] = {}
    assert len(hs) == 0
    hs[key] = {"flag": True, "small": 65535, "neg": -2**31, "big": 2**64 - 1, "arr": [0, True, 2**32 - 1]}
    v = hs[key]
    assert (v.flag, v.small, v.neg, v.big, list(v.arr)) == (1, 65535, -2**31, 2**64 - 1, [0, 1, 2**32 - 1])
    with pytest.raises(OverflowError, match=r"^9223372036854775808 does not fit the value of map `a`, a sig"):
        a[0] = 2**63
    a[0] = -2**63
    assert a[0].value == -2**63
    n = b._obj.ncpus
    with pytest.raises(OverflowError, match=r"the value of map `ph`"):
        ph[1] = [0] * (n - 1) + [2**32]
    with pytest.raises(OverflowError, match=r"the value of map `ph`"):
        ph[1] = -1
    assert 1 not in ph
    h.clear()
    hs.clear()
    a.clear()


def test_set_global_refuses_what_does_not_fit(b):
    b.set_global("g64", 41)
    with pytest.raises(OverflowError, match=r"^1180591620717411303427 does not fit the value of global "
                                            r"`g64`, an unsigned 64-bit integer"):
        b.set_global("g64", 2**70 + 3)
    with pytest.raises(OverflowError, match=r"global `g64`"):
        b.set_global("g64", -1)
    with pytest.raises(OverflowError, match=r"^70000 does not fit the value of global `g16`, an unsigned 16"):
        b.set_global("g16", 70000)
    with pytest.raises(OverflowError, match=r"^-129 does not fit the value of global `gs8`, a signed 8-bit"):
        b.set_global("gs8", -129)
    assert b.get_global("g64") == 41 and b.get_global("g16") == 0 and b.get_global("gs8") == 0
    b.set_global("gs8", -128)
    b.set_global("g16", 65535)
    assert b.get_global("gs8") == -128 and b.get_global("g16") == 65535


def test_array_indexes_out_of_range_never_wrap(b):
    a = b["a"]
    a.clear()
    for bad in (8, -9, 2**32, 2**32 + 3, 2**64, -2**64):
        with pytest.raises(IndexError, match=rf"index {bad} is out of range for `a`, an array of 8 entries"):
            a[bad] = 1
        with pytest.raises(IndexError):
            a[bad]
        assert bad not in a
    with pytest.raises(IndexError, match="out of range for `a`"):
        a[(2**32 - 1).to_bytes(4, "little")]
    assert [v.value for v in a.values()] == [0] * 8, "no index wrapped onto a real element"


class _SnapshotThen:
    """A map whose key walk returns a snapshot and then runs ``after`` on the real map: what
    happens when entries vanish between a walk and the updates that follow it."""

    def __init__(self, real, after):
        self._real, self._after = real, after

    def keys(self):
        ks = self._real.keys()
        self._after(self._real)
        return ks

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_zero_skips_keys_that_vanish_meanwhile(b):
    h = b["h"]
    h.clear()
    for i in range(10):
        h[i] = i + 100
    real = h._m
    h._m = _SnapshotThen(real, lambda m: [m.delete((i).to_bytes(4, "little")) for i in range(0, 10, 2)])
    try:
        h.zero()
    finally:
        h._m = real
    assert sorted((k.value, v.value) for k, v in h.items()) == [(i, 0) for i in range(1, 10, 2)], \
        "the rest zeroed, the deleted keys not created again"
    h.clear()


def test_zero_on_an_lru_map_skips_evicted_entries(b):
    lru = b["lru"]
    lru.clear()
    for i in range(32):
        lru[i] = 1
    before = {k.value for k in lru.keys()}

    def evict(m):  # new keys into the full LRU map: the kernel evicts old ones
        for i in range(1000, 1064):
            m.update((i).to_bytes(8, "little"), (7).to_bytes(8, "little"), 0)

    real = lru._m
    lru._m = _SnapshotThen(real, evict)
    try:
        lru.zero()
    finally:
        lru._m = real
    after = {k.value: v.value for k, v in lru.items()}
    evicted = before - set(after)
    assert evicted, "the kernel evicted some of the walked keys"
    assert all(after[k] == 0 for k in before & set(after))
    assert all(after[k] == 7 for k in after if k >= 1000), "keys added after the walk keep their values"
    lru.clear()


def test_to_pandas_decodes_strings_and_spreads_per_cpu_values(b):
    pytest.importorskip("pandas", reason="to_pandas() is for where pandas is installed")
    hs, ph, pa, phs = b["hs"], b["ph"], b["pa"], b["phs"]
    n = b._obj.ncpus
    hs.clear()
    hs[(1, 2, b"ab\0cd")] = {"small": 3, "arr": [1, 2, 3]}
    hs[(4, 5, bytes([0x66, 0xFF, 0x6F]))] = {"small": 6}
    df = hs.to_pandas().sort_values("key.pid")
    assert list(df.columns) == ["key.pid", "key.cookie", "key.comm", "value.flag", "value.small", "value.neg",
                                "value.big", "value.arr"]
    assert df["key.comm"].tolist() == ["ab", "f\ufffdo"], "text up to the first NUL, invalid UTF-8 replaced"
    assert all(isinstance(x, str) for x in df["key.comm"])
    assert df["value.small"].tolist() == [3, 6] and df["value.arr"].iloc[0].tolist() == [1, 2, 3]
    hs.clear()

    ph.clear()
    ph[1] = list(range(n))
    ph[2] = [10 * c for c in range(n)]
    wide = ph.to_pandas().sort_values("key")
    assert list(wide.columns) == ["key"] + [f"value_cpu{c}" for c in range(n)]
    assert wide[f"value_cpu{n - 1}"].tolist() == [n - 1, 10 * (n - 1)]
    assert all(wide[c].dtype == "uint32" for c in wide.columns)
    long = ph.to_pandas(percpu="long")
    assert list(long.columns) == ["key", "cpu", "value"] and len(long) == 2 * n
    assert sorted(zip(long["key"], long["cpu"], long["value"])) == \
        sorted([(1, c, c) for c in range(n)] + [(2, c, 10 * c) for c in range(n)])
    assert long.groupby("key")["value"].sum().to_dict() == {1: sum(range(n)), 2: 10 * sum(range(n))}
    ph.clear()

    pa.clear()
    pa[2] = list(range(n))
    wide = pa.to_pandas()
    assert list(wide.columns) == [f"value_cpu{c}" for c in range(n)] and len(wide) == 4
    assert wide.loc[2].tolist() == list(range(n)), "an array's index is its key"
    long = pa.to_pandas(percpu="long")
    assert list(long.columns) == ["key", "cpu", "value"] and len(long) == 4 * n
    assert long[long["key"] == 2]["value"].tolist() == list(range(n))
    pa.clear()

    phs.clear()
    phs[(9, 9, b"zz")] = [{"small": c, "arr": [c, c, c]} for c in range(n)]
    wide = phs.to_pandas()
    assert wide["key.comm"].tolist() == ["zz"]
    assert [wide[f"value.small_cpu{c}"].iloc[0] for c in range(n)] == list(range(n))
    assert wide[f"value.arr_cpu{n - 1}"].iloc[0].tolist() == [n - 1] * 3
    long = phs.to_pandas(percpu="long")
    assert list(long.columns)[:4] == ["key.pid", "key.cookie", "key.comm", "cpu"]
    assert long["key.comm"].tolist() == ["zz"] * n and long["value.small"].tolist() == list(range(n))
    with pytest.raises(ValueError, match="percpu is 'wide' or 'long'"):
        phs.to_pandas(percpu="tall")
    phs.clear()


SIZED = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u64);
} sized SEC(".maps");
"""


def test_map_sizes_set_entries_before_load_without_another_compile():
    import errno as _errno

    with BPF(text=SIZED) as small, BPF(text=SIZED, map_sizes={"sized": 100}) as big:
        assert (small["sized"].max_entries, big["sized"].max_entries) == (4, 100)
        assert big.object_bytes == small.object_bytes  # one compiled object, sized at load
        t = big["sized"]
        for k in range(100):
            t[t.Key(k)] = t.Leaf(k)
        with pytest.raises(MapError) as e:
            t[t.Key(100)] = t.Leaf(100)
        assert e.value.errno == _errno.E2BIG
    with pytest.raises(ValueError, match="map_sizes: no map named `nope`"):
        BPF(text=SIZED, map_sizes={"nope": 8})
    with pytest.raises(ValueError, match="at least one entry"):
        BPF(text=SIZED, map_sizes={"sized": 0})
    with pytest.raises(TypeError, match="map_sizes= takes a mapping"):
        BPF(text=SIZED, map_sizes=[("sized", 8)])
