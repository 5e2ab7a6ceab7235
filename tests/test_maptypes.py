"""Every other map type round-trips with the semantics users expect: LPM trie, stack trace,
prog array (a real tail call), array/hash of maps, queue, stack, bloom filter, LRU per-CPU
hash, pinning across processes, and pandas."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from bpfkit import BPF, open_pinned

TYPES = r"""
struct lpm_key { u32 prefixlen; u8 addr[4]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 64); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, struct lpm_key); __type(value, u32); } routes SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 128); __uint(key_size, 4);
         __uint(value_size, 127 * 8); } stacks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 8); __type(value, u32); } q SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 8); __type(value, u64); } st SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 100); __type(value, u32); } bloom SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, 16); __type(key, u32); __type(value, u64); } lpc SEC(".maps");
struct inner_t { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, u32); __type(value, u64); };
struct inner_t inner_a SEC(".maps"), inner_b SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 2); __type(key, u32);
         __array(values, struct inner_t); } outer SEC(".maps") = { .values = { &inner_a } };
struct { __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 4); __type(key, u32);
         __array(values, struct inner_t); } houter SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __uint(key_size, 4); __uint(value_size, 4); } jump SEC(".maps");

s64 stack_id = -1;
u64 tail_ran = 0, tail_missed = 0, via_outer = 0;

SEC("tracepoint")
int tail_target(void *ctx)
{
    tail_ran++;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int entry(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    stack_id = bpf_get_stackid(ctx, &stacks, 0);
    u32 zero = 0, one = 1;
    void *inner = bpf_map_lookup_elem(&outer, &zero);
    if (inner) {
        u64 *v = bpf_map_lookup_elem(inner, &one);
        if (v)
            via_outer = *v;
    }
    bpf_tail_call(ctx, &jump, 2);
    tail_missed++;
    return 0;
}
"""


@pytest.fixture
def b():
    with BPF(text=TYPES, cflags=[f"-DTARGET={os.getpid()}"]) as bpf:
        yield bpf


def test_lpm_trie_longest_prefix(b):
    r = b["routes"]
    r[(8, bytes([10, 0, 0, 0]))] = 1
    r[(24, bytes([10, 1, 2, 0]))] = 2
    assert r[(32, bytes([10, 1, 2, 3]))].value == 2
    assert r[(32, bytes([10, 9, 9, 9]))].value == 1
    assert (32, bytes([11, 0, 0, 0])) not in r
    assert sorted(k.prefixlen for k in r.keys()) == [8, 24]
    assert sorted(v.value for _k, v in r.items()) == [1, 2]


def test_queue_and_stack(b):
    q, s = b["q"], b["st"]
    for i in (1, 2, 3):
        q.push(i)
        s.push(i * 10)
    assert q.peek().value == 1 and s.peek().value == 30
    assert q.pop().value == 1 and s.pop().value == 30
    assert [v.value for v in q.values()] == [2, 3] and [v.value for v in s.values()] == [20, 10]
    with pytest.raises(KeyError, match="empty queue"):
        q.pop()
    for i in range(8):
        q.push(i)
    with pytest.raises(OSError):
        q.push(99)
    q.push(99, flags=2)  # BPF_EXIST: overwrite the oldest
    assert q.pop().value == 1


def test_bloom_filter(b):
    f = b["bloom"]
    for v in (3, 5, 8):
        f.push(v)
    assert 3 in f and 5 in f and 8 in f
    assert sum(v in f for v in range(1000, 1100)) < 20, "false positives are rare"


def test_lru_percpu_hash(b):
    t = b["lpc"]
    n = b._obj.ncpus
    for k in range(40):
        t[k] = [k] * n
    assert 0 < len(t) <= 16
    for k, v in t.items():
        assert v.tolist() == [k.value] * n


def test_prog_array_tail_call_and_stack_trace(b):
    os.getppid()
    assert b.get_global("tail_missed") == 1 and b.get_global("tail_ran") == 0
    b["jump"][2] = "tail_target"
    assert b["jump"][2].value > 0  # the program's kernel id
    os.getppid()
    assert b.get_global("tail_ran") == 1 and b.get_global("tail_missed") == 1
    with pytest.raises(KeyError, match="no loaded program named `nope`"):
        b["jump"][1] = "nope"
    sid = b.get_global("stack_id")
    assert sid >= 0
    addrs = list(b["stacks"].walk(sid))
    assert addrs and all(a >= 0xFFFF000000000000 for a in addrs), "kernel addresses"


def test_array_and_hash_of_maps(b):
    outer = b["outer"]
    a = outer[0]
    assert a.name == "inner_a" and len(a) == 4
    a[1] = 1234
    os.getppid()
    assert b.get_global("via_outer") == 1234
    outer[0] = b["inner_b"]
    b["inner_b"][1] = 77
    os.getppid()
    assert b.get_global("via_outer") == 77
    h = b["houter"]
    h[5] = b["inner_a"]
    assert h[5][1].value == 1234 and [k.value for k in h.keys()] == [5]
    del h[5]
    assert 5 not in h


def test_pin_and_open_from_another_process(b):
    path = f"/sys/fs/bpf/bpfkit-test-{uuid.uuid4().hex[:8]}"
    t = b["lpc"]
    b["routes"][(16, bytes([192, 168, 0, 0]))] = 9
    b["routes"].pin(path)
    try:
        code = ("import sys\nfrom bpfkit import open_pinned\nt = open_pinned(sys.argv[1])\n"
                "print(t.name, [(k.prefixlen, bytes(k.addr).hex(), v.value) for k, v in t.items()])")
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "routes [(16, 'c0a80000', 9)]"
        same = open_pinned(path)
        same[(8, bytes([1, 0, 0, 0]))] = 3
        assert b["routes"][(32, bytes([1, 2, 3, 4]))].value == 3
        del same
    finally:
        os.unlink(path)
    del t


def test_to_pandas(b):
    pd = pytest.importorskip("pandas", reason="to_pandas() is for where pandas is installed")
    r = b["routes"]
    r[(8, bytes([10, 0, 0, 0]))] = 1
    df = r.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["key.prefixlen", "key.addr", "value"]
    assert df["value"].tolist() == [1] and df["key.prefixlen"].tolist() == [8]


def test_index_out_of_range_names_the_index_and_size(b):
    jump, outer = b["jump"], b["outer"]
    for bad in (4, -5, 2**32 + 2, 2**64):
        with pytest.raises(IndexError, match=rf"^index {bad} is out of range for `jump`, an array of 4 ent"):
            jump[bad] = "tail_target"
        with pytest.raises(IndexError, match=rf"^index {bad} is out of range for `outer`, an array of 2"):
            outer[bad] = b["inner_b"]
    with pytest.raises(IndexError, match="for `jump`"):
        jump[bad]
    with pytest.raises(IndexError, match="for `jump`"):
        del jump[bad]
    os.getppid()
    assert (b.get_global("tail_missed"), b.get_global("tail_ran")) == (1, 0), "no index wrapped onto 2"
    jump[-2] = "tail_target"  # negative indexes count from the end, as in BCC
    os.getppid()
    assert b.get_global("tail_ran") == 1
    for fd in (-1, 2**32, 2**64 + 5):
        with pytest.raises(OverflowError, match=r"the program fd for `jump`\[0\]"):
            jump[0] = fd
        with pytest.raises(OverflowError, match=r"the map fd for `outer`\[1\]"):
            outer[1] = fd
    with pytest.raises(TypeError, match="must be an int"):
        outer[1] = 1.5
    h = b["houter"]
    h[2**32 - 1] = b["inner_a"]  # a hash of maps takes any u32 key
    with pytest.raises(OverflowError, match="the key of map `houter`"):
        h[2**32] = b["inner_a"]
    assert [k.value for k in h.keys()] == [2**32 - 1]
    del h[2**32 - 1]


def test_to_pandas_per_cpu_wide_and_long(b):
    pytest.importorskip("pandas", reason="to_pandas() is for where pandas is installed")
    t = b["lpc"]
    n = b._obj.ncpus
    t[3] = [c + 1 for c in range(n)]
    wide = t.to_pandas()
    assert list(wide.columns) == ["key"] + [f"value_cpu{c}" for c in range(n)]
    assert wide.iloc[0].tolist() == [3] + [c + 1 for c in range(n)]
    long = t.to_pandas(percpu="long")
    assert long.to_dict("list") == {"key": [3] * n, "cpu": list(range(n)), "value": [c + 1 for c in range(n)]}
