"""clear() removes every entry of every kind of hash map: through batch lookup-and-delete where
the map type has it (hash, per-CPU hash, LRU hash; 5.6+), key by key where it does not (LPM
trie), and zeroes arrays. Its speed is measured in bench/clear.py."""

from __future__ import annotations

import os

import pytest
from bpfkit import BPF

N = 40_000

MAPS = r"""
#define MAP(kind, n, name) struct { \
    __uint(type, kind); __uint(max_entries, n); __type(key, u32); __type(value, u64); } name SEC(".maps")
MAP(BPF_MAP_TYPE_HASH, 50000, h);
MAP(BPF_MAP_TYPE_PERCPU_HASH, 50000, ph);
MAP(BPF_MAP_TYPE_LRU_HASH, 50000, lh);
MAP(BPF_MAP_TYPE_ARRAY, 100, arr);
struct lpm_key { u32 prefixlen; u32 addr; };
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 50000); __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key); __type(value, u64);
} trie SEC(".maps");

/* A program that writes key 7 of `h`. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int touch(void *ctx)
{
    u32 k = 7; u64 v = 1;
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        bpf_map_update_elem(&h, &k, &v, BPF_ANY);
    return 0;
}
"""


@pytest.fixture
def maps():
    with BPF(text=MAPS, cflags=[f"-DTARGET={os.getpid()}"]) as b:
        yield b


def fill(t, n: int, key) -> None:
    vs = t._m.value_buf_size
    for i in range(n):
        t.update_raw(key(i), (i + 1).to_bytes(8, "little").ljust(vs, b"\1"))


@pytest.mark.parametrize("name", ["h", "ph", "lh"])
def test_clear_empties_a_hash_map_and_it_stays_usable(maps, name):
    t = maps[name]
    fill(t, N, lambda i: i.to_bytes(4, "little"))
    assert len(t) == N
    t.clear()
    assert len(t) == 0 and t.keys() == []
    t.clear()  # an empty map
    fill(t, 10, lambda i: i.to_bytes(4, "little"))
    raw = t._m.keys()
    assert sorted(int.from_bytes(k, "little") for k in raw) == list(range(10))


def test_clear_of_a_map_without_batch_operations_goes_key_by_key(maps):
    t = maps["trie"]
    fill(t, 5000, lambda i: (32).to_bytes(4, "little") + i.to_bytes(4, "big"))
    assert len(t) == 5000
    t.clear()
    assert len(t) == 0


def test_clear_zeroes_an_array(maps):
    t = maps["arr"]
    fill(t, 100, lambda i: i.to_bytes(4, "little"))
    t.clear()
    assert len(t) == 100 and all(t[i].value == 0 for i in range(100))


def test_a_program_writes_to_a_cleared_map(maps):
    t = maps["h"]
    fill(t, N, lambda i: (i + 100).to_bytes(4, "little"))
    os.getppid()  # the program adds key 7
    assert len(t) == N + 1
    t.clear()
    assert len(t) == 0
    os.getppid()
    raw = t._m.keys()
    assert [int.from_bytes(k, "little") for k in raw] == [7]
