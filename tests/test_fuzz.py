"""A seeded, bounded fuzz test of bpfkit's Python surface: the reproducible part of issue 8's
fault and bad-input campaign, run by ``make test``.

Each kind of call in :data:`KINDS` (map reads and writes, globals, attach and detach calls, event
streams, histogram printers, symbol lookups, ``BPF()`` itself, Ctrl-C during a load, ``close()``
from another thread, the tools' command lines) is made with hostile arguments: integers at and past
the 8/16/32/64-bit boundaries, negatives, bools, floats with nan and inf, 2**200, str and bytes
with NUL bytes or not UTF-8, wrong types, regex metacharacters, and paths to a FIFO, a directory,
/dev/zero, a symlink loop or nothing. The oracle, for every call:

* it returns, or raises a typed error: a ``bpfkit.BPFError``, ``ValueError``, ``TypeError``,
  ``OverflowError``, ``KeyError``, ``IndexError`` or ``NotImplementedError`` (and, for calls that
  take a file path, an ``OSError`` with an errno such as ``FileNotFoundError``); never
  ``SystemError``, ``AttributeError``, ``UnicodeError``, ``re.error``, ``RecursionError``,
  ``MemoryError`` or an unasked-for ``KeyboardInterrupt``;
* an ``OverflowError`` names what did not fit (the argument, or the map's key/value, or the global);
  a ``ValueError`` for a bad regex names the argument; an index outside an array is an
  ``IndexError``; ``CompilerNotFoundError`` only when there is no compiler;
* a value that was accepted reads back equal: no silent wrap-around of keys, values, fields,
  globals or ``consts=``;
* it does not crash the interpreter and returns within its bound (5 s; 30 s for a compile).

Calls run in a worker process, in a network namespace of its own (XDP and tc calls there touch
nothing of the host), so a segfault or a hang is a reported failure and not the end of the run:
the worker is started again and the next case runs. A failure message gives the seed, the kind,
the case number, the call with its arguments, and what happened.

Knobs: ``BPFKIT_FUZZ_SEED`` (default 8008), ``BPFKIT_FUZZ_CASES`` (cases over all kinds,
spread by weight; default 400) and ``BPFKIT_FUZZ_VERBOSE=1`` (print every call and how it ended;
with ``-s``). Reproduce a failure with
``BPFKIT_FUZZ_SEED=<seed> pytest "tests/test_fuzz.py::test_fuzz[<kind>]"``: case ``i`` of a kind
draws its arguments from ``random.Random(f"{seed}/{kind}/{i}")`` alone. Adding a kind of call is one line
in :data:`KINDS`: a weight and a function ``(rng, env) -> Call``.
"""

from __future__ import annotations

import ctypes as ct
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ._fuzz import (
    ANY,
    BOOLS,
    BYTES,
    FLOATS,
    INTS,
    NAN,
    NUMPY,
    REGEXES,
    SELFTEST,
    SMALL_INTS,
    STRS,
    WRONG,
    BytesLike,
    Call,
    Index,
    Kind,
    NotBytes,
    Opaque,
    Worker,
    WorkerError,
    as_int,
    bad_regex,
    describe,
    fmt_args,
    pick,
    sr,
    worker_main,
)

SEED = int(os.environ.get("BPFKIT_FUZZ_SEED", "8008"))
CASES = int(os.environ.get("BPFKIT_FUZZ_CASES", "400"))

# -- the programs ----------------------------------------------------------------------------------

#: The worker's object, compiled once per run and loaded once per worker: one map of each kind the
#: surface has a wrapper for, globals of several widths, and a program of each attach type.
SRC = r"""
struct pair { u16 small; s32 neg; u64 big; };
struct skey { u32 disk; u32 slot; };
struct rec { u64 seq; u32 pid; char comm[16]; };

#define MAP(_name, _type, _n, _k, _v) \
    struct { __uint(type, _type); __uint(max_entries, _n); __type(key, _k); __type(value, _v); } \
    _name SEC(".maps")

MAP(h, BPF_MAP_TYPE_HASH, 64, u32, u64);
MAP(hs, BPF_MAP_TYPE_HASH, 16, u64, s64);
MAP(sh, BPF_MAP_TYPE_HASH, 16, u32, struct pair);
MAP(a, BPF_MAP_TYPE_ARRAY, 8, u32, u64);
MAP(ph, BPF_MAP_TYPE_PERCPU_HASH, 16, u32, u64);
MAP(pa, BPF_MAP_TYPE_PERCPU_ARRAY, 4, u32, u32);
MAP(lru, BPF_MAP_TYPE_LRU_HASH, 8, u32, u64);
MAP(hist, BPF_MAP_TYPE_HASH, 64, u32, u64);
MAP(shist, BPF_MAP_TYPE_HASH, 64, struct skey, u64);
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __uint(key_size, 4);
         __uint(value_size, 4); } progs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 8); __type(value, u64); } q SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 64); __type(value, u32); }
    bl SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 65536); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); }
    pe SEC(".maps");

u32 target_pid = 0;
u64 g64 = 0;
u32 g32 = 0;
s16 gs16 = 0;
u8 g8 = 0;
char gbuf[8] = {};
struct pair gpair = {};
const volatile u32 c32 = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct rec r = {};

    if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
        return 0;
    r.seq = g64++;
    r.pid = target_pid + c32;
    bpf_get_current_comm(r.comm, sizeof(r.comm));
    bpf_ringbuf_output(&rb, &r, sizeof(r), 0);
    bpf_perf_event_output(ctx, &pe, BPF_F_CURRENT_CPU, &r, sizeof(r));
    return 0;
}

SEC("raw_tp") int raw_prog(void *ctx) { return 0; }
SEC("uprobe") int up_prog(void *ctx) { return 0; }
SEC("uretprobe") int uret_prog(void *ctx) { return 0; }
SEC("kprobe") int kp_prog(void *ctx) { return 0; }
SEC("perf_event") int pe_prog(void *ctx) { return 0; }
SEC("xdp") int xdp_prog(struct xdp_md *ctx) { return XDP_PASS; }
SEC("tc") int tc_prog(struct __sk_buff *skb) { return 0; }
SEC("tracepoint") int tail_prog(void *ctx) { return 0; }
"""

#: A small object for the calls that make (and close) an object of their own.
SMALL = r"""
struct ev { u64 x; };
const volatile u32 c32 = 0;
const volatile s64 cs64 = 0;
const volatile u8 c8 = 0;
u64 g = 0;
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, u32); __type(value, u64); }
    m SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } r SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); }
    p SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int small_tp(void *ctx)
{
    struct ev e = { .x = c32 + cs64 + c8 };

    g++;
    if ((bpf_get_current_pid_tgid() >> 32) == 1)   /* never: the records are only for the types */
        bpf_ringbuf_output(&r, &e, sizeof(e), 0);
    return 0;
}
"""

PROGS = ["on_getppid", "raw_prog", "up_prog", "uret_prog", "kp_prog", "pe_prog", "xdp_prog", "tc_prog",
         "tail_prog"]

# -- the worker's environment --------------------------------------------------------------------

class Env:
    """What the calls run against: the worker's BPF object ``b`` and the hostile paths."""

    def __init__(self, cfg: dict) -> None:
        from bpfkit import BPF, _native

        self.cfg = cfg
        self.cache: str = cfg["cache"]
        self.paths: dict = cfg["paths"]
        self.elf: str = self.paths["elf"]
        self.pid = os.getpid()
        try:
            _native.find_compiler()
            self.have_compiler = True
        except Exception:  # noqa: BLE001 - only recorded
            self.have_compiler = False
        self.b = BPF(text=SRC, autoattach=False, cache_dir=self.cache)
        self.b.set_global("target_pid", self.pid)
        self.b["rb"].set_record("struct rec")
        self.b["pe"].set_record("struct rec")
        self.ncpus = self.b["ph"]._m.ncpus
        self.ring_open = self.perf_open = False
        self.received = 0

    def path(self, r: random.Random) -> Any:
        """A hostile path (or a good one, now and then)."""
        name = r.choice(list(self.paths))
        p = self.paths[name]
        x = r.random()
        if x < 0.1:
            return Path(p)
        if x < 0.15:
            return os.fsencode(p)
        return p

    def prog(self, r: random.Random, good: str) -> Any:
        x = r.random()
        if x < 0.6:
            return good
        if x < 0.75:
            return r.choice(PROGS)
        if x < 0.8:
            return good.encode()
        return pick(r, STRS, BYTES, WRONG, INTS)

    def produce(self, n: int = 3) -> None:
        """``n`` records in the ring and perf buffers (one per getppid() of this process)."""
        self.b._obj.attach_tracepoint("on_getppid", "syscalls", "sys_enter_getppid")
        for _ in range(n):
            os.getppid()
        self.detach_all()

    def _count(self, *_a: Any) -> None:
        self.received += 1

    def open_ring(self) -> None:
        if not self.ring_open:
            self.b["rb"].open_ring_buffer(self._count)
            self.ring_open = True

    def open_perf(self) -> None:
        if not self.perf_open:
            self.b["pe"].open_perf_buffer(self._count)
            self.perf_open = True

    def detach_all(self) -> None:
        ids = [lk.id for lk in self.b._obj.links()]
        if ids:
            self.b._obj.detach_ids(ids)

    def reset(self) -> None:
        """Back to the state every case starts from: nothing attached, the maps empty."""
        self.detach_all()
        for name in ("h", "hs", "sh", "a", "ph", "pa", "lru", "hist", "shist"):
            self.b[name]._m.clear()
        for i in range(4):
            self.b["progs"]._m.delete(i.to_bytes(4, "little"))
        while self.b["q"]._m.pop() is not None:
            pass
        self.b.set_global("target_pid", self.pid)

    def close(self) -> None:
        self.b.close()

    def small(self, **kw: Any) -> Any:
        from bpfkit import BPF

        return BPF(text=SMALL, cache_dir=self.cache, **kw)


# -- maps ----------------------------------------------------------------------------------------

def _entries(t: Any) -> dict:
    """``{key as int: value}`` of an int-keyed table, read with items() (what is really stored)."""
    out = {}
    for k, v in t.items():
        out[int(getattr(k, "value", k))] = v
    return out


def _scalar_equal(stored: Any, want: int) -> bool:
    if hasattr(stored, "shape"):  # per-CPU: one value per CPU
        return bool((stored == want).all())
    return getattr(stored, "value", stored) == want


def _index_rule(t: Any, k: Any) -> Callable[[BaseException], list]:
    """For maps indexed 0..max_entries-1: an int index outside [-n, n) is an IndexError."""
    def rule(exc: BaseException) -> list:
        i = as_int(k)
        if i is None or isinstance(k, bool) or -t.max_entries <= i < t.max_entries:
            return []
        if not isinstance(exc, IndexError):
            return [f"index {i} is outside `{t.name}` (0..{t.max_entries - 1}): expected IndexError, "
                    f"got {describe(exc)}"]
        return []
    return rule


def _readback(t: Any, k: Any, v: Any, indexed: bool) -> list:
    """Problems with what ``t[k] = v`` stored, read back with items()."""
    ik, iv = as_int(k), as_int(v)
    if ik is None or isinstance(k, bytes):
        return []
    if indexed and ik < 0:
        ik += t.max_entries
    got = _entries(t)
    if ik not in got:
        return [f"accepted key {ik}, but the map holds keys {sorted(got)[:8]} (wrapped?)"]
    if iv is not None and not _scalar_equal(got[ik], iv):
        return [f"accepted value {iv}, but key {ik} reads back {sr(got[ik])} (wrapped?)"]
    return []


def map_names(t: Any) -> tuple:
    return ("key", "value", "index", f"`{t.name}`")


def g_setitem(m: str, keys: tuple, values: tuple) -> Callable[[random.Random, Env], Call]:
    def gen(r: random.Random, e: Env) -> Call:
        from bpfkit.table import ArrayTable, PerCpuArray, ProgArray

        t = e.b[m]
        k = pick(r, INTS, SMALL_INTS) if r.random() < 0.5 else pick(r, *keys)
        v = pick(r, INTS, SMALL_INTS) if r.random() < 0.5 else pick(r, *values)
        indexed = isinstance(t, (ArrayTable, PerCpuArray, ProgArray))

        def fn() -> None:
            t[k] = v

        return Call(f"b[{m!r}][{sr(k)}] = {sr(v)}", fn, names=map_names(t),
                    check=lambda _: _readback(t, k, v, indexed), judge=_index_rule(t, k) if indexed else None)
    return gen


def g_map_op(m: str, op: str, keys: tuple) -> Callable[[random.Random, Env], Call]:
    def gen(r: random.Random, e: Env) -> Call:
        from bpfkit.table import ArrayTable, PerCpuArray, ProgArray

        t = e.b[m]
        k = pick(r, *keys)
        indexed = isinstance(t, (ArrayTable, PerCpuArray, ProgArray))
        if r.random() < 0.5 and as_int(k) is not None:  # often, something is there
            try:
                t._m.update((as_int(k) % 2**32).to_bytes(4, "little"), bytes(t._m.value_buf_size), 0)
            except Exception:  # noqa: BLE001 - a full or typed map: the call still runs
                pass
        fns = {"get": (lambda: t[k], f"b[{m!r}][{sr(k)}]"),
               "del": (lambda: t.__delitem__(k), f"del b[{m!r}][{sr(k)}]"),
               "in": (lambda: k in t, f"{sr(k)} in b[{m!r}]")}
        fn, desc = fns[op]
        return Call(desc, fn, names=map_names(t), judge=_index_rule(t, k) if indexed and op != "in" else None)
    return gen


def g_struct_set(r: random.Random, e: Env) -> Call:
    t = e.b["sh"]
    k = pick(r, SMALL_INTS, INTS)
    fields = {"small": pick(r, INTS, [70000, 65535, 65536]), "neg": pick(r, INTS, [-1, -2**31 - 1]),
              "big": pick(r, INTS, FLOATS)}
    shape = r.random()
    if shape < 0.4:
        v: Any = tuple(fields.values())
    elif shape < 0.8:
        v = {n: fields[n] for n in fields if r.random() < 0.8}
    else:
        v = pick(r, ANY)

    def fn() -> None:
        t[k] = v

    def check(_: Any) -> list:
        got = _entries(t).get(as_int(k) or 0)
        given = dict(zip(fields, v)) if isinstance(v, tuple) else (v if isinstance(v, dict) else {})
        out = []
        for name, want in given.items():
            iw = as_int(want)
            if iw is not None and got is not None and getattr(got, name) != iw:
                out.append(f"field {name} accepted {iw} but reads back {getattr(got, name)} (wrapped?)")
        return out + (_readback(t, k, None, False) if as_int(k) is not None else [])

    return Call(f"b['sh'][{sr(k)}] = {sr(v)}", fn, names=("small", "neg", "big", "key", "value", "field"),
                check=check)


def g_percpu_set(m: str) -> Callable[[random.Random, Env], Call]:
    def gen(r: random.Random, e: Env) -> Call:
        from bpfkit.table import PerCpuArray

        t = e.b[m]
        k = pick(r, SMALL_INTS, INTS, WRONG)
        x = r.random()
        if x < 0.5:
            v: Any = pick(r, INTS, SMALL_INTS)
        elif x < 0.8:
            v = [pick(r, INTS, SMALL_INTS)] * (e.ncpus if r.random() < 0.8 else e.ncpus + 1)
        else:
            v = pick(r, ANY)
        indexed = isinstance(t, PerCpuArray)

        def fn() -> None:
            t[k] = v

        def check(_: Any) -> list:
            if isinstance(v, list) and v:
                return _readback(t, k, v[0], indexed)
            return _readback(t, k, v, indexed)

        return Call(f"b[{m!r}][{sr(k)}] = {sr(v)}", fn, names=map_names(t), check=check,
                    judge=_index_rule(t, k) if indexed else None)
    return gen


def g_prog_array_set(r: random.Random, e: Env) -> Call:
    t = e.b["progs"]
    k = pick(r, SMALL_INTS, [3, 4, 5, -4, -5], INTS, WRONG)
    x = r.random()
    if x < 0.5:
        v: Any = r.choice(["tail_prog", "on_getppid", "xdp_prog"])
    elif x < 0.6:
        v = e.b._obj.program_fd("tail_prog")[0]
    else:
        v = pick(r, INTS, STRS, WRONG, FLOATS, ["nope"])

    def fn() -> None:
        t[k] = v

    def check(_: Any) -> list:
        i = as_int(k)
        if i is None:
            return []
        i = i + 4 if i < 0 else i
        return [] if i in _entries(t) else [f"accepted index {as_int(k)}, but the prog array holds "
                                             f"{sorted(_entries(t))} (wrapped?)"]

    def rule(exc: BaseException) -> list:
        out = _index_rule(t, k)(exc)
        if "full" in str(exc).lower():
            out.append(f"a prog array says {describe(exc)}: it is never full")
        return out

    return Call(f"b['progs'][{sr(k)}] = {sr(v)}", fn, check=check, judge=rule,
                names=("index", "fd", "`progs`", "key", "value", "program"))


def g_queue(r: random.Random, e: Env) -> Call:
    t = e.b["q"]
    v = pick(r, INTS, SMALL_INTS, SMALL_INTS, FLOATS, WRONG, BYTES)
    flags = pick(r, [0, 0, 0, 2], INTS, WRONG) if r.random() < 0.3 else None

    def fn() -> Any:
        if flags is None:
            t.push(v)
        else:
            t.push(v, flags)
        return t.pop().value

    def check(got: Any) -> list:
        iv = as_int(v)
        return [] if iv is None or got == iv else [f"pushed {iv}, popped {got} (wrapped?)"]

    desc = f"b['q'].push({fmt_args(v) if flags is None else fmt_args(v, flags)}); b['q'].pop()"
    return Call(desc, fn, names=("value", "flags", "`q`"), check=check)


def g_bloom(r: random.Random, e: Env) -> Call:
    t = e.b["bl"]
    v = pick(r, INTS, SMALL_INTS, FLOATS, WRONG, BYTES)

    def fn() -> Any:
        t.push(v)
        return v in t

    def check(found: Any) -> list:
        return [] if found is True else [f"pushed {sr(v)}, then `in` said {found!r}"]

    return Call(f"b['bl'].push({sr(v)}); {sr(v)} in b['bl']", fn, names=("value", "`bl`"), check=check)


def g_update_raw(r: random.Random, e: Env) -> Call:
    t = e.b["h"]
    k = pick(r, BYTES, [b"\x07\x00\x00\x00"], WRONG, INTS)
    v = pick(r, BYTES, [b"\x09" * 8], WRONG, INTS)
    flags = pick(r, [0, 1, 2], INTS, FLOATS, WRONG)

    def fn() -> None:
        t.update_raw(k, v, flags)

    def check(_: Any) -> list:
        got = t._m.lookup(bytes(k))
        return [] if got == bytes(v) else [f"update_raw accepted {sr(v)}, the map holds {sr(got)}"]

    return Call(f"b['h'].update_raw({fmt_args(k, v, flags)})", fn, names=("flags", "key", "value"),
                check=check)


def g_churn(m: str, churn: str) -> Callable[[random.Random, Env], Call]:
    """A method over the whole map while another thread inserts new keys (an LRU evicts) or
    deletes them: it must succeed."""
    def gen(r: random.Random, e: Env) -> Call:
        t = e.b[m]
        method = r.choice(["zero", "items", "values", "keys", "clear", "to_numpy", "__len__"])

        def fn() -> None:
            for i in range(t.max_entries):
                t[i] = i + 1
            stop = threading.Event()

            def other() -> None:
                j = 1000
                while not stop.is_set():
                    try:
                        if churn == "insert":
                            t[j] = j
                        else:
                            t._m.delete((j % t.max_entries).to_bytes(4, "little"))
                            t[j % t.max_entries] = j
                    except Exception:  # noqa: BLE001 - the other thread only makes churn
                        pass
                    j += 1

            th = threading.Thread(target=other)
            th.start()
            try:
                for _ in range(30):
                    getattr(t, method)()
            finally:
                stop.set()
                th.join()

        what = "inserts new keys" if churn == "insert" else "deletes and re-adds keys"
        return Call(f"b[{m!r}].{method}() x30 while another thread {what}", fn, must_succeed=True)
    return gen


def g_table_method(r: random.Random, e: Env) -> Call:
    m = r.choice(["h", "hs", "sh", "a", "ph", "pa", "lru", "hist", "shist", "progs"])
    methods = ["items", "keys", "clear", "__len__", "__iter__", "__repr__"]
    if m != "progs":  # a prog array's values are program fds: zero() would write fd 0
        methods += ["values", "zero", "to_numpy"]
    method = r.choice(methods)

    def fn() -> None:
        t = e.b[m]
        if m in ("h", "a", "ph", "pa", "lru", "hist"):
            for i in range(3):
                t[i] = i + 1
        res = getattr(t, method)()
        if method == "__iter__":
            list(res)

    return Call(f"b[{m!r}].{method}()", fn, must_succeed=True)


def g_get_table(r: random.Random, e: Env) -> Call:
    name = pick(r, [r.choice(["h", "a", "rb", "q"])], STRS, BYTES, WRONG, INTS, [b"h", "H", "h\x00"])
    kt = pick(r, [None, None, None, ct.c_uint32, ct.c_uint64, ct.c_char * 3], WRONG, INTS)

    def fn() -> Any:
        return e.b.get_table(name, keytype=kt) if kt is not None else e.b[name]

    return Call(f"b.get_table({fmt_args(name, keytype=kt)})", fn)


# -- globals ---------------------------------------------------------------------------------------

GLOBALS = ["g64", "g32", "gs16", "g8", "gbuf", "gpair", "c32"]


def g_set_global(r: random.Random, e: Env) -> Call:
    bad_names = ["nope", "target_pid\x00", "G64"]
    name = r.choice(GLOBALS) if r.random() < 0.7 else pick(r, STRS, BYTES, WRONG, bad_names)
    if name == "gbuf":
        v: Any = pick(r, BYTES, STRS, [b"abc", "abc", b"x" * 9], WRONG, INTS)
    elif name == "gpair":
        v = pick(r, [(70000, -1, 2**64), (1, 2, 3), {"small": 65536}, {"neg": 2**31}, {"big": -1},
                     (1, 2, 3, 4)], WRONG, INTS)
    else:
        v = pick(r, INTS, SMALL_INTS, *ANY)

    def fn() -> None:
        e.b.set_global(name, v)

    def check(_: Any) -> list:
        if name == "c32":
            return ["set_global() wrote the const volatile `c32` after load"]
        got = e.b.get_global(name)
        iv = as_int(v)
        if name in ("g64", "g32", "gs16", "g8") and iv is not None and got != iv:
            return [f"set_global({name!r}) accepted {iv}, get_global() reads {got} (wrapped?)"]
        if name == "gpair":
            given = (dict(zip(("small", "neg", "big"), v)) if isinstance(v, tuple)
                     else v if isinstance(v, dict) else {})
            bad = [f"{f}={getattr(got, f)} (set {w})" for f, w in given.items()
                   if as_int(w) is not None and getattr(got, f) != as_int(w)]
            return [f"set_global('gpair', {sr(v)}) reads back {', '.join(bad)} (wrapped?)"] if bad else []
        return []

    gname = name if isinstance(name, str) else ""
    return Call(f"b.set_global({fmt_args(name, v)})", fn, names=("global", f"`{gname}`", "value", "field"),
                check=check)


def g_get_global(r: random.Random, e: Env) -> Call:
    name = pick(r, GLOBALS, STRS, BYTES, WRONG, INTS, ["nope", "rb", "on_getppid", ".bss", ".rodata"])
    return Call(f"b.get_global({sr(name)})", lambda: e.b.get_global(name))


# -- event streams ---------------------------------------------------------------------------------

def _data_pool() -> list:
    import numpy as np

    return [0, 16, -1, True, False, 2**64, 2**200, 0.0, NAN, bytes(40), bytes(100), b"", b"\x01" * 3,
            bytearray(32), memoryview(bytes(32)), np.zeros(4, np.uint64), np.uint64(16), ct.c_uint64(5),
            (ct.c_uint8 * 32)(), "abc", "\udcff", None, Opaque(), [1, 2], BytesLike(b"x" * 40), NotBytes(),
            Index(16), (16, 40), 1j]


DATA = _data_pool()


def g_event(table: str) -> Callable[[random.Random, Env], Call]:
    def gen(r: random.Random, e: Env) -> Call:
        d = r.choice(DATA)
        return Call(f"b[{table!r}].event({sr(d)})", lambda: e.b[table].event(d))
    return gen


TIMEOUTS = [0, 1, 10, 100, -1, -1, 2**31 - 1, 2**31, -2**31, 2**63, 2**64, 2**200, -2**200]


def g_read(r: random.Random, e: Env) -> Call:
    table = r.choice(["rb", "pe"])
    mx = pick(r, [1, 16, 4096], INTS, FLOATS, WRONG) if r.random() < 0.7 else None
    timeout = pick(r, TIMEOUTS, FLOATS, WRONG, BOOLS) if r.random() < 0.8 else None
    kw = {k: v for k, v in (("max", mx), ("timeout", timeout)) if v is not None}

    def fn() -> Any:
        e.produce()
        return len(e.b[table].read(**kw))

    return Call(f"(3 records waiting) b[{table!r}].read({fmt_args(**kw)})", fn, names=("max", "timeout"))


def g_poll(kind: str) -> Callable[[random.Random, Env], Call]:
    def gen(r: random.Random, e: Env) -> Call:
        timeout = pick(r, TIMEOUTS, FLOATS, WRONG, BOOLS)
        consume = r.random() < 0.2

        def fn() -> Any:
            e.open_ring() if kind == "ring" else e.open_perf()
            e.produce()
            if consume:
                return getattr(e.b, f"{kind}_buffer_consume")()
            return getattr(e.b, f"{kind}_buffer_poll")(timeout)

        call = f"b.{kind}_buffer_consume()" if consume else f"b.{kind}_buffer_poll({sr(timeout)})"
        return Call(f"(3 records waiting) {call}", fn, names=("timeout",))
    return gen


RECORDS = [None, None, "struct ev", "ev", "struct nope", 5, b"ev", Opaque(), ct.c_uint64, "\x00", "",
           "struct ev\x00"]


def g_open_stream(r: random.Random, e: Env) -> Call:
    how = r.choice(["open_ring_buffer", "open_perf_buffer", "open_r", "open_p", "set_record"])
    cb = r.choice([lambda *a: None, lambda *a: None, None, 5, "x", Opaque()])
    record = r.choice(RECORDS)
    page_cnt = pick(r, [8, 1, 64], INTS, FLOATS, WRONG)
    wakeup = pick(r, [1, 32], INTS, FLOATS, WRONG)
    pump = r.choice([True, False, 0, None, "x"])

    def fn() -> None:
        with e.small(autoattach=False) as b:
            if how == "open_ring_buffer":
                b["r"].open_ring_buffer(cb, ctx=None, record=record, pump=pump)
                b.ring_buffer_poll(0)
            elif how == "open_perf_buffer":
                b["p"].open_perf_buffer(cb, page_cnt=page_cnt, lost_cb=cb, wakeup_events=wakeup,
                                        record=record)
                b.perf_buffer_poll(0)
            elif how == "open_r":
                b["r"].open(page_cnt=page_cnt)
                b["r"].read(timeout=0)
            elif how == "open_p":
                b["p"].open(page_cnt=page_cnt)
                b["p"].read(timeout=0)
            else:
                b["r"].set_record(record)
                b["r"].event(bytes(8))

    desc = {"open_ring_buffer": f"b['r'].open_ring_buffer({fmt_args(cb, record=record, pump=pump)}); poll(0)",
            "open_perf_buffer": f"b['p'].open_perf_buffer({fmt_args(cb, page_cnt=page_cnt, lost_cb=cb)}, "
                                f"wakeup_events={sr(wakeup)}, record={sr(record)}); poll(0)",
            "open_r": f"b['r'].open(page_cnt={sr(page_cnt)}); read(timeout=0)",
            "open_p": f"b['p'].open(page_cnt={sr(page_cnt)}); read(timeout=0)",
            "set_record": f"b['r'].set_record({sr(record)}); event(bytes(8))"}[how]
    return Call(f"(fresh object) {desc}", fn, names=("page_cnt", "wakeup_events", "record"), creates=True)


# -- histograms ------------------------------------------------------------------------------------

class TooMuchOutput(Exception):
    """A histogram printer printed far more lines than a histogram has."""


class _Lines(io.StringIO):
    """A stdout that counts lines and gives up past ``limit`` (a printer that prints billions)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.lines = limit, 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        if self.lines > self.limit + 1000:
            raise TooMuchOutput(f"more than {self.limit + 1000} lines")
        return len(s)


def _printed(limit: int, fn: Callable[[], Any]) -> tuple:
    import contextlib

    out = _Lines(limit)
    with contextlib.redirect_stdout(out):
        res = fn()
    return out.lines, res


HIST_METHODS = ["print_log2_hist", "print_linear_hist", "print_json_hist", "log2_buckets"]
SLOTS_U32 = [0, 1, 2, 3, 5, 10, 31, 32, 33, 63, 64, 65, 100, 999, 1000, 1001, 2**16, 2**31, 2**32 - 1]
COUNTS = [0, 1, 7, 2**32, 2**63, 2**64 - 1]
MAX_ROWS = [1, 2, 10, 1000, 0, -1, 1.5, NAN, None, "x", True]


def _hist_check(method: str, max_rows: Any, sections: int) -> Callable[[Any], list]:
    def check(res: tuple) -> list:
        lines, value = res
        rows = max_rows if isinstance(max_rows, int) and max_rows > 0 else 1000
        limit = {"print_log2_hist": 70, "print_linear_hist": rows + 4, "print_json_hist": 1,
                 "log2_buckets": 0}[method]
        limit = (limit + 3) * max(sections, 1)
        out = []
        if lines > limit:
            out.append(f"{method} printed {lines} lines (at most {limit} expected)")
        if method == "log2_buckets":
            arrays = value.values() if isinstance(value, dict) else [value]
            out += [f"log2_buckets gave {len(a)} buckets (a log2 histogram has 65 slots)"
                    for a in arrays if len(a) > 65]
        return out
    return check


def _hist_call(method: str, max_rows: Any, call: Callable[..., Any]) -> Callable[[], Any]:
    def fn() -> Any:
        if method == "print_linear_hist" and max_rows is not None:
            return call(max_rows=max_rows)
        return call()
    return fn


def g_hist_map(r: random.Random, e: Env) -> Call:
    m = r.choice(["hist", "shist"])
    method = r.choice(HIST_METHODS)
    max_rows = r.choice(MAX_ROWS) if r.random() < 0.4 else None
    if m == "hist":
        entries: list = [(r.choice(SLOTS_U32), r.choice(COUNTS)) for _ in range(r.randint(1, 4))]
    else:
        entries = [((r.choice([0, 1, 2**32 - 1]), r.choice(SLOTS_U32)), r.choice(COUNTS))
                   for _ in range(r.randint(1, 4))]
    sections = len({k[0] for k, _ in entries}) if m == "shist" else 1
    limit = 100 if method != "print_linear_hist" else 2000

    def fn() -> Any:
        t = e.b[m]
        for k, c in entries:
            t[k] = c
        return _printed(limit * sections, _hist_call(method, max_rows, getattr(t, method)))

    extra = f"max_rows={sr(max_rows)}" if max_rows is not None and method == "print_linear_hist" else ""
    return Call(f"b[{m!r}] = {dict(entries)}; b[{m!r}].{method}({extra})", fn,
                names=("slot", "max_rows", "count"), check=_hist_check(method, max_rows, sections))


def g_hist_dict(r: random.Random, e: Env) -> Call:
    from bpfkit import table

    method = r.choice(HIST_METHODS)
    max_rows = r.choice(MAX_ROWS) if r.random() < 0.4 else None
    val_type = pick(r, ["usecs", "usecs"], STRS, WRONG) if r.random() < 0.3 else "value"
    if r.random() < 0.7 or method == "log2_buckets":
        hists: dict = {None: {pick(r, INTS, SLOTS_U32): r.choice(COUNTS) for _ in range(r.randint(1, 4))}}
    else:
        hists = {pick(r, ["sda", 0, b"x", 2**64], STRS): {pick(r, INTS, SLOTS_U32): r.choice(COUNTS)}
                 for _ in range(r.randint(1, 3))}
    limit = 100 if method != "print_linear_hist" else 2000
    fns = {"print_log2_hist": lambda **kw: table.print_log2_hist(hists, val_type, **kw),
           "print_linear_hist": lambda **kw: table.print_linear_hist(hists, val_type, **kw),
           "print_json_hist": lambda **kw: table.print_json_hist(hists, val_type, **kw),
           "log2_buckets": lambda **kw: table.log2_buckets(hists[None])}

    def fn() -> Any:
        return _printed(limit * len(hists), _hist_call(method, max_rows, fns[method]))

    extra = f", max_rows={sr(max_rows)}" if max_rows is not None and method == "print_linear_hist" else ""
    arg = sr(hists[None]) if method == "log2_buckets" else f"{sr(hists)}, {sr(val_type)}{extra}"
    return Call(f"bpfkit.table.{method}({arg})", fn, names=("slot", "max_rows", "count"),
                check=_hist_check(method, max_rows, len(hists)))


# -- attach and detach ---------------------------------------------------------------------------

TP_NAMES = ["syscalls:sys_enter_getppid", "syscalls:sys_enter_nope", "nope:nope", "syscalls", "syscalls:",
            ":sys_enter_getppid", "../../..:x", "syscalls/sys_enter_getppid",
            "syscalls:sys_enter_getppid\x00x", b"syscalls:sys_enter_getppid", "syscalls:sys_enter_getppid:x"]
TP_RES = ["syscalls:sys_enter_getpp.d", "nomatch_[0-9]+:x", ""]


def _method_call(e: Env, method: str, kw: dict, *, regex: tuple = (), paths: bool = False,
                 on: Any = None, prefix: str = "") -> Call:
    target = e.b if on is None else on
    who = "b" if on is None else "BPF"

    def fn() -> Any:
        return getattr(target, method)(**kw)

    also = ((ValueError, regex),) if regex else ()
    return Call(f"{prefix}{who}.{method}({fmt_args(**kw)})", fn, names=tuple(kw), also_named=also,
                paths=paths)


def g_attach_tracepoint(r: random.Random, e: Env) -> Call:
    kw: dict = {}
    if r.random() < 0.75:
        kw["tp"] = pick(r, ["syscalls:sys_enter_getppid"], TP_NAMES, STRS, BYTES, WRONG, INTS)
    else:
        kw["tp_re"] = pick(r, REGEXES, TP_RES, STRS, WRONG)
    kw["fn_name"] = e.prog(r, "on_getppid")
    regex = ("tp_re",) if bad_regex(kw.get("tp_re")) and kw["fn_name"] == "on_getppid" else ()
    return _method_call(e, "attach_tracepoint", kw, regex=regex)


def g_attach_raw_tracepoint(r: random.Random, e: Env) -> Call:
    kw = {"tp": pick(r, ["sys_enter"], ["sched_switch", "nope", "sys_enter\x00x"], STRS, BYTES, WRONG, INTS),
          "fn_name": e.prog(r, "raw_prog")}
    return _method_call(e, "attach_raw_tracepoint", kw)


def g_attach_kprobe(r: random.Random, e: Env) -> Call:
    kw: dict = {}
    ret = r.random() < 0.3
    if r.random() < 0.7:
        kw["event"] = pick(r, ["do_sys_openat2", "nope_function", "do_sys_openat2\x00"], STRS, BYTES, WRONG)
    else:
        kw["event_re"] = pick(r, REGEXES, ["nomatch_[0-9]+"], STRS)
    if ret:
        if r.random() < 0.6:
            kw["maxactive"] = pick(r, INTS, FLOATS, WRONG)
    elif r.random() < 0.6:
        kw["event_off"] = pick(r, INTS, FLOATS, WRONG)
    kw["fn_name"] = e.prog(r, "kp_prog")
    return _method_call(e, "attach_kretprobe" if ret else "attach_kprobe", kw)


def g_attach_uprobe(r: random.Random, e: Env) -> Call:
    ret = r.random() < 0.3
    kw: dict = {}
    x = r.random()
    # The ELF is a private copy of libc that no process maps: a probe anywhere in it, even in the
    # middle of an instruction, cannot hurt anyone. The system's libc ("c") only gets probes at
    # function entries, and only in this process.
    safe = False
    if x < 0.65:
        kw["name"] = e.elf
    elif x < 0.75:
        kw["name"], safe = "c", True
    else:
        kw["name"] = pick(r, [e.path(r)], STRS, BYTES, WRONG)
    if safe:
        kw["sym"] = r.choice(["getpid", "getppid", "nope", "getpid@GLIBC_2.2.5"])
        kw["pid"] = e.pid
    else:
        y = r.random()
        if y < 0.6:
            kw["sym"] = pick(r, ["getpid", "getpid@GLIBC_2.2.5", "getpid@@GLIBC_2.2.5", "nope", "memcpy"],
                             STRS, BYTES, WRONG)
        elif y < 0.8:
            kw["sym_re"] = pick(r, REGEXES, ["getpi.", "nomatch_[0-9]+"], STRS)
        else:
            kw["addr"] = pick(r, INTS, FLOATS, WRONG)
        if r.random() < 0.4:
            kw["pid"] = pick(r, [-1, e.pid, 1], INTS, FLOATS, WRONG)
        if r.random() < 0.3:
            kw["sym_off"] = pick(r, INTS, FLOATS, WRONG)
    kw["fn_name"] = e.prog(r, "uret_prog" if ret else "up_prog")
    return _method_call(e, "attach_uretprobe" if ret else "attach_uprobe", kw, paths=True)


PERF_TYPES = [1, 1, 1, 0, 2, 3, 4, 5, 6, 99, -1]


def g_attach_perf_event(r: random.Random, e: Env) -> Call:
    kw: dict = {"ev_type": pick(r, [1], PERF_TYPES, INTS, FLOATS, WRONG),
                "ev_config": pick(r, [0, 9, 10], INTS, WRONG), "fn_name": e.prog(r, "pe_prog")}
    if r.random() < 0.5:
        kw["sample_period"] = pick(r, [1000000, 10**9], [0], INTS, FLOATS, WRONG)
    else:
        kw["sample_freq"] = pick(r, [1, 99], INTS, FLOATS, WRONG)
    for name, pool in (("pid", [-1, 0, e.pid]), ("cpu", [-1, 0, 1]), ("group_fd", [-1, 0])):
        if r.random() < 0.4:
            kw[name] = pick(r, pool, INTS, FLOATS, WRONG)
    return _method_call(e, "attach_perf_event", kw)


DEVS = ["lo", "lo", "nope0", "", "lo\x00", b"lo", 1, 0, -1, 2**31, 2**32 + 1, 2**64 - 1, 2**64, 99999, True,
        1.5, None, "a" * 20, "\udcff", "../lo", Index(1)]
XDP_FLAGS = [0, 0, 2, 4, 8, 1, 16, 6, 32, 2**31, 2**32, 2**64 - 1, 2**64, -1, True, 1.5, NAN, None, "2"]


def g_attach_xdp(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    x = r.random()
    fn_: Any = e.b.load_func("xdp_prog", BPF.XDP) if x < 0.3 else e.prog(r, "xdp_prog")
    kw = {"dev": pick(r, ["lo"], DEVS), "fn": fn_, "flags": pick(r, [0, 2, 4], XDP_FLAGS)}
    static = isinstance(fn_, BPF.Function) and r.random() < 0.5
    return _method_call(e, "attach_xdp", kw, on=BPF if static else None)


def g_remove_xdp(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    kw = {"dev": pick(r, ["lo"], DEVS)}
    if r.random() < 0.7:
        kw["flags"] = pick(r, [0, 2], XDP_FLAGS)
    attached = r.random() < 0.5
    call = _method_call(e, "remove_xdp", kw, on=BPF if r.random() < 0.4 else None,
                        prefix="(xdp_prog on lo) " if attached else "")
    if attached:
        inner = call.fn

        def fn() -> Any:
            e.b.attach_xdp("lo", "xdp_prog", BPF.XDP_FLAGS_SKB_MODE)
            return inner()

        call.fn = fn
    return call


def g_attach_tc(r: random.Random, e: Env) -> Call:
    kw = {"dev": pick(r, ["lo"], DEVS), "fn": e.prog(r, "tc_prog")}
    if r.random() < 0.6:
        kw["direction"] = pick(r, ["ingress", "egress", "INGRESS", "in"], STRS, WRONG, INTS)
    if r.random() < 0.6:
        kw["mode"] = pick(r, ["auto", "tcx", "clsact", "tc"], STRS, WRONG, INTS)
    return _method_call(e, "attach_tc", kw)


def g_detach(r: random.Random, e: Env) -> Call:
    which = r.choice(["detach_tracepoint", "detach_raw_tracepoint", "detach_kprobe", "detach_kretprobe",
                      "detach_uprobe", "detach_uretprobe", "detach_perf_event", "detach_link", "detach_tc",
                      "detach_kfunc"])
    kw: dict = {}
    paths = False
    if which in ("detach_tracepoint", "detach_raw_tracepoint"):
        kw["tp"] = pick(r, TP_NAMES, ["sys_enter"], STRS, BYTES, WRONG, INTS)
        if r.random() < 0.5:
            kw["fn_name"] = e.prog(r, "on_getppid")
    elif which in ("detach_kprobe", "detach_kretprobe"):
        if r.random() < 0.6:
            kw["event"] = pick(r, ["do_sys_openat2"], STRS, BYTES, WRONG)
        else:
            kw["event_re"] = pick(r, REGEXES, ["nomatch_[0-9]+"], STRS)
    elif which in ("detach_uprobe", "detach_uretprobe"):
        kw["name"] = pick(r, [e.elf, e.elf, "c"], [e.path(r)], STRS, WRONG)
        kw["sym"] = pick(r, ["getpid", "nope"], STRS, BYTES, WRONG)
        for name, pool in (("addr", INTS), ("pid", [-1, e.pid] + INTS), ("sym_off", INTS)):
            if r.random() < 0.3:
                kw[name] = pick(r, pool, FLOATS, WRONG)
        paths = True
    elif which == "detach_perf_event":
        kw = {"ev_type": pick(r, PERF_TYPES, INTS, WRONG), "ev_config": pick(r, [0], INTS, WRONG)}
    elif which == "detach_link":
        kw["link"] = pick(r, INTS, FLOATS, WRONG, STRS)
    elif which == "detach_tc":
        kw = {"dev": r.choice(DEVS), "direction": pick(r, ["ingress", "egress"], STRS, WRONG)}
    else:
        kw["fn_name"] = e.prog(r, "on_getppid")
    attached = r.random() < 0.5
    call = _method_call(e, which, kw, paths=paths, prefix="(on_getppid attached) " if attached else "")
    if attached:
        inner = call.fn

        def fn() -> Any:
            e.b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_getppid")
            return inner()

        call.fn = fn
    return call


def g_load_func(r: random.Random, e: Env) -> Call:
    kw = {"func_name": e.prog(r, r.choice(PROGS)), "prog_type": pick(r, [6, 1, 5, 3], INTS, FLOATS, WRONG)}
    if r.random() < 0.1:
        kw["device"] = pick(r, STRS, WRONG)
    return _method_call(e, "load_func", kw)


# -- lookups ---------------------------------------------------------------------------------------

def g_get_tracepoints(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    v = pick(r, REGEXES, TP_RES, STRS, BYTES, WRONG)
    return _method_call(e, "get_tracepoints", {"tp_re": v}, on=BPF, regex=("tp_re",) if bad_regex(v) else ())


def g_tracepoint_exists(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    kw = {"category": pick(r, ["syscalls", "..", "../..", "syscalls/sys_enter_getppid"], STRS, BYTES, WRONG),
          "event": pick(r, ["sys_enter_getppid", "..", "id", "sys_enter_getppid/../../syscalls"],
                        STRS, BYTES, WRONG)}
    return _method_call(e, "tracepoint_exists", kw, on=BPF)


def g_get_kprobe_functions(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    v = pick(r, REGEXES, ["nomatch_[0-9]+", "do_sys_openat."], STRS, BYTES, WRONG)
    return _method_call(e, "get_kprobe_functions", {"event_re": v}, on=BPF,
                        regex=("event_re",) if bad_regex(v) else ())


def g_get_user_functions(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    method = r.choice(["get_user_functions_and_addresses", "get_user_functions", "get_user_addresses"])
    name = pick(r, [e.elf, "c"], [e.path(r)], STRS, WRONG)
    sym_re = pick(r, REGEXES, ["getpi.", "nomatch_[0-9]+"], STRS, BYTES, WRONG)
    good = name in (e.elf, "c")
    return _method_call(e, method, {"name": name, "sym_re": sym_re}, on=BPF, paths=True,
                        regex=("sym_re",) if good and bad_regex(sym_re) else ())


def g_open_pinned(r: random.Random, e: Env) -> Call:
    from bpfkit import open_pinned

    bpffs = ["/sys/fs/bpf", "/sys/fs/bpf/nope", "/sys/fs/bpf/../../etc/passwd"]
    path = pick(r, [e.path(r)], bpffs, STRS, WRONG)
    return Call(f"bpfkit.open_pinned({sr(path)})", lambda: open_pinned(path), paths=True)


def g_ksym(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    which = r.choice(["ksym", "ksym", "sym", "ksymname"])
    if which == "ksymname":
        kw: dict = {"name": pick(r, ["do_sys_openat2", "nope"], STRS, BYTES, WRONG, INTS)}
    else:
        kw = {"addr": pick(r, INTS, FLOATS, WRONG, NUMPY, [BPF.ksymname("do_sys_openat2")])}
        if which == "sym":
            kw["pid"] = pick(r, [e.pid, -1, 1], INTS, FLOATS, WRONG)
        for flag in ("show_module", "show_offset"):
            if r.random() < 0.3:
                kw[flag] = pick(r, BOOLS, WRONG, INTS)
    return _method_call(e, which, kw, on=BPF)


def g_usdt(r: random.Random, e: Env) -> Call:
    from bpfkit import USDT

    kw: dict = {}
    if r.random() < 0.6:
        kw["path"] = pick(r, [e.elf, "c"], [e.path(r)], STRS, BYTES, WRONG)
    if r.random() < 0.5 or not kw:
        kw["pid"] = pick(r, [e.pid, 1, None], INTS, FLOATS, WRONG)
    probe = pick(r, ["setjmp", "libc:setjmp", "nope", "a:b:c"], STRS, BYTES, WRONG)
    fn_name = e.prog(r, "up_prog")
    idx = pick(r, [0, 1], INTS, WRONG)

    def fn() -> Any:
        u = USDT(**kw)
        u.enumerate_probes()
        u.enable_probe(probe, fn_name)
        return u.get_probe_arg_ctype(probe, idx)

    return Call(f"u = USDT({fmt_args(**kw)}); u.enable_probe({fmt_args(probe, fn_name)}); "
                f"u.get_probe_arg_ctype({fmt_args(probe, idx)})", fn,
                names=("pid", "path", "probe", "index", "arg"), paths=True)


# -- whole objects ---------------------------------------------------------------------------------

CFLAGS = [None, [], ["-DX=1"], ["-DFOO"], ["-D\x00"], ["a\x00b"], "-DX", [5], [None], [b"-DX=1"], [b"\xff"],
          ["-I/nonexistent"], ["\udcff"], ["-DX=1"] * 3, ["-Werror"], [""], ("-DY=2",), {"-DX": 1}]
USDTS = [[5], 5, "abc", [None], [Opaque()], (), [], None, [Index(1)]]
DEBUGS = [0, -1, 2**64, 2**200, 1.5, None, "x", True, 2]
ALTERNATIVES = [[["small_tp"]], [["nope"]], "abc", [5], [[5]], [["small_tp", "small_tp"]], [[]], [None]]
CONST_NAMES = ["c32", "c32", "cs64", "c8", "nope", "g", "", 5, b"c32", "\udcff", "c32\x00"]


def g_ctor(r: random.Random, e: Env) -> Call:
    from bpfkit import BPF

    kw: dict = {"cache_dir": e.cache, "autoattach": r.random() < 0.5}
    x = r.random()
    if x < 0.6:
        kw["text"] = pick(r, [SMALL] * 4 + [SMALL.encode(), b"// \xff\xfe\n" + SMALL.encode(), SMALL + "\x00",
                                           "", "int x = ;", "\udcff" + SMALL], STRS, BYTES, WRONG)
    elif x < 0.9:
        kw["src_file"] = e.path(r)
    if r.random() < 0.15:
        kw["hdr_file"] = e.path(r)
    if r.random() < 0.35:
        kw["cflags"] = r.choice(CFLAGS)
    if r.random() < 0.35:
        y = r.random()
        if y < 0.7:
            kw["consts"] = {r.choice(CONST_NAMES): pick(r, *ANY) for _ in range(r.randint(1, 2))}
        else:
            kw["consts"] = r.choice([[("c32", 1)], "c32", 5, [5], {"c32"}, (("c32", 1),)])
    if r.random() < 0.2:
        kw["usdt_contexts"] = r.choice(USDTS)
    if r.random() < 0.1:
        kw["debug"] = r.choice(DEBUGS)
    if r.random() < 0.1:
        kw["cache_dir"] = e.path(r)
    if r.random() < 0.1:
        kw["name"] = pick(r, STRS, WRONG)
    if r.random() < 0.1:
        kw["alternatives"] = r.choice(ALTERNATIVES)
    consts = kw.get("consts") if isinstance(kw.get("consts"), dict) else {}

    def fn() -> dict:
        b = BPF(**kw)
        try:
            return {n: b.get_global(n) for n in consts if n in ("c32", "cs64", "c8")}
        finally:
            b.close()

    def check(got: dict) -> list:
        out = []
        for n, v in got.items():
            want = as_int(consts[n])
            if want is not None and v != want:
                out.append(f"consts={{{n!r}: {want}}} was accepted, get_global({n!r}) reads {v} (wrapped?)")
        return out

    shown = []
    for k, v in kw.items():
        if k == "cache_dir" and isinstance(v, str) and v == e.cache:
            continue
        shown.append(f"{k}=SMALL" if k == "text" and isinstance(v, str) and v == SMALL else f"{k}={sr(v)}")
    names = ("consts", "debug", "cflags", "c32", "cs64", "c8")
    names += tuple(n for n in consts if isinstance(n, str) and n)
    return Call(f"BPF({', '.join(shown)})", fn, names=names, check=check, paths=True, creates=True,
                bound=30.0)


SAFE_MODES = [0o700, 0o755, 0o750, 0o711]
UNSAFE_MODES = [0o720, 0o702, 0o770, 0o777, 0o1777, 0o722, 0o730, 0o706]


def g_cache_dir(r: random.Random, e: Env) -> Call:
    """A cache directory (and maybe one of its subdirectories, made beforehand) of some owner and
    mode: every unsafe one (another owner, group or others may write) is refused with
    CacheError; a safe one is used."""
    from bpfkit import CacheError

    d = Path(e.cfg["tmp"]) / f"cache-{r.randrange(10**9)}"
    mode, owner = r.choice(SAFE_MODES + UNSAFE_MODES), r.choice([0, 0, 65534])
    sub = r.choice([None, None, "blobs", "btf", "headers"])
    sub_mode, sub_owner = r.choice(SAFE_MODES + UNSAFE_MODES), r.choice([0, 0, 65534])
    unsafe = bool(mode & 0o022 or owner or (sub and (sub_mode & 0o022 or sub_owner)))

    def fn() -> None:
        from bpfkit import BPF

        shutil.rmtree(d, ignore_errors=True)
        try:
            for path, m, o in ((d, mode, owner),) + (((d / sub, sub_mode, sub_owner),) if sub else ()):
                path.mkdir()
                os.chmod(path, m)
                os.chown(path, o, o)
            with BPF(text=SMALL, cache_dir=str(d), autoattach=False):
                pass
        finally:
            shutil.rmtree(d, ignore_errors=True)

    what = f"cache_dir of mode {mode:o}, uid {owner}"
    what += f", its {sub}/ of mode {sub_mode:o}, uid {sub_owner}" if sub else ""
    return Call(f"BPF(text=SMALL, {what})", fn, expect=CacheError if unsafe else None,
                must_succeed=not unsafe, creates=True, bound=30.0)


CLOSED_OPS: dict = {
    "b.ring_buffer_poll(0)": lambda b: b.ring_buffer_poll(0),
    "b.ring_buffer_poll()": lambda b: b.ring_buffer_poll(),
    "b.ring_buffer_consume()": lambda b: b.ring_buffer_consume(),
    "b.perf_buffer_poll(10)": lambda b: b.perf_buffer_poll(10),
    "b['m']": lambda b: b["m"],
    "m[1]": lambda b: b.m[1],
    "m[1] = 2": lambda b: b.m.__setitem__(1, 2),
    "del m[1]": lambda b: b.m.__delitem__(1),
    "m.items()": lambda b: b.m.items(),
    "m.clear()": lambda b: b.m.clear(),
    "m.zero()": lambda b: b.m.zero(),
    "len(m)": lambda b: len(b.m),
    "b.get_global('g')": lambda b: b.get_global("g"),
    "b.set_global('g', 1)": lambda b: b.set_global("g", 1),
    "b.attach_tracepoint(tp='syscalls:sys_enter_getppid', fn_name='small_tp')":
        lambda b: b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="small_tp"),
    "b['r'].read(timeout=0)": lambda b: b.r.read(timeout=0),
    "b['r'].read()": lambda b: b.r.read(),
    "b['p'].read(timeout=10)": lambda b: b.p.read(timeout=10),
}


def g_closed(r: random.Random, e: Env) -> Call:
    from bpfkit import ClosedError

    op = r.choice(sorted(CLOSED_OPS))
    streams = r.random() < 0.7

    def fn() -> Any:
        b = e.small(autoattach=False)
        try:
            b.m, b.r, b.p = b["m"], b["r"], b["p"]
            if streams:
                b.r.open_ring_buffer(lambda *a: None)
                b.p.open_perf_buffer(lambda *a: None)
            b.close()
            return CLOSED_OPS[op](b)
        finally:
            b.close()

    what = "streams open, " if streams else ""
    return Call(f"(fresh object, {what}closed) {op}", fn, expect=ClosedError, creates=True)


def g_close_while_waiting(r: random.Random, e: Env) -> Call:
    from bpfkit import ClosedError

    how = r.choice(["ring_buffer_poll", "perf_buffer_poll", "read"])
    delay = r.choice([0.0, 0.001, 0.01, 0.05, 0.2])

    def fn() -> Any:
        b = e.small(autoattach=False)
        timer = None
        try:
            if how == "ring_buffer_poll":
                b["r"].open_ring_buffer(lambda *a: None)
                wait: Callable[[], Any] = b.ring_buffer_poll
            elif how == "perf_buffer_poll":
                b["p"].open_perf_buffer(lambda *a: None)
                wait = b.perf_buffer_poll
            else:
                r_ = b["r"]
                r_.open()

                def wait() -> Any:
                    return r_.read(timeout=-1)
            timer = threading.Timer(delay, b.close)
            timer.start()
            return wait()
        finally:
            if timer is not None:
                timer.join()
            b.close()

    call = {"read": "b['r'].read(timeout=-1)"}.get(how, f"b.{how}()")
    return Call(f"(fresh object, no records) {call} while another thread calls b.close() after {delay} s",
                fn, expect=ClosedError, creates=True)


def g_sigint(r: random.Random, e: Env) -> Call:
    delay = r.choice([0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2])
    fresh = r.random() < 0.3
    cflags = [f"-DFUZZ_NONCE={r.randrange(10**9)}"] if fresh else []

    def fn() -> tuple:
        sent: list = []

        def interrupt() -> None:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(delay, interrupt)
        objs: list = []
        outcome = "returned"
        try:
            timer.start()
            try:
                objs.append(e.small(cflags=cflags))
            except Exception as ex:  # noqa: BLE001 - judged below: Ctrl-C must not become an error
                outcome = f"raised {describe(ex)}"
            timer.join()
            end = sent[0] + 1.0
            while time.monotonic() < end:
                time.sleep(0.005)
            return outcome, None
        except KeyboardInterrupt:
            return "KeyboardInterrupt", time.monotonic() - sent[0] if sent else 0.0
        finally:
            timer.join()
            for b in objs:
                b.close()

    def check(res: tuple) -> list:
        outcome, latency = res
        if outcome != "KeyboardInterrupt":
            return [f"Ctrl-C lost: SIGINT sent {delay} s into BPF() (which {outcome}) raised no "
                    "KeyboardInterrupt, in the call or in the second after it"]
        if latency is not None and latency > 2.0:
            return [f"KeyboardInterrupt came {latency:.1f} s after SIGINT"]
        return []

    what = "an uncached compile and " if fresh else ""
    return Call(f"BPF(text=SMALL) ({what}load and attach) with SIGINT after {delay} s", fn, check=check,
                creates=True)


TOOL_CASES = [("opensnoop", "-p"), ("opensnoop", "-t"), ("opensnoop", "-u"), ("opensnoop", "-d"),
              ("opensnoop", "-n"), ("execsnoop", "-n"), ("execsnoop", "-l"), ("execsnoop", "-u"),
              ("execsnoop", "--max-args"), ("execsnoop", "-d"), ("vfsstat", ""), ("vfsstat", "1"),
              ("biolatency", ""), ("biolatency", "1")]
TOOL_VALUES = ["-5", "-1", "0", "inf", "nan", "-inf", "1e300", "18446744073709551616", "4294967296", "(", "[",
               "abc", "", "0x10", "1.5", "-0"]


def g_tool(r: random.Random, e: Env) -> Call:
    tool, opt = r.choice(TOOL_CASES)
    val = r.choice(TOOL_VALUES)
    argv = [tool] + ([opt] if opt else []) + [val]
    sigint_after = r.choice([0.5, 1.0, 2.0])

    def fn() -> tuple:
        p = subprocess.Popen([sys.executable, "-m", "bpfkit", *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        interrupted = False
        try:
            _, err = p.communicate(timeout=sigint_after)
        except subprocess.TimeoutExpired:
            interrupted = True
            p.send_signal(signal.SIGINT)
            try:
                _, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                return p.returncode, err, interrupted, "did not end within 5 s of SIGINT"
        return p.returncode, err, interrupted, ""

    def check(res: tuple) -> list:
        rc, err, interrupted, stuck = res
        out = [stuck] if stuck else []
        tail = " | ".join(err.strip().splitlines()[-3:])
        if "Traceback" in err:
            out.append(f"printed a traceback: ...{tail}")
        if rc < 0:
            out.append(f"died of signal {signal.Signals(-rc).name}")
        # argparse's usage lines aside, an error is one line.
        said = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
        if len(said) > 1 and "Traceback" not in err:
            out.append(f"said {len(said)} lines on stderr, not one: {tail}")
        if interrupted and rc not in (0,) and not out:
            out.append(f"Ctrl-C ended it with status {rc}, not 0")
        if not interrupted and rc == 0 and said:
            out.append(f"status 0 after an error: {tail}")
        if not interrupted and rc != 0 and not said:
            out.append(f"status {rc} and nothing on stderr")
        return out

    return Call(f"bpfkit {' '.join(repr(a) if not a or ' ' in a else a for a in argv)} (SIGINT after "
                f"{sigint_after} s if still running)", fn, check=check, bound=15.0)


# -- the table of call kinds ---------------------------------------------------------------------

# About half integers (in range or just past it), so that accepted values are read back often.
KEYS = (INTS, INTS, SMALL_INTS, SMALL_INTS, FLOATS, BOOLS, WRONG, NUMPY, BYTES, STRS)
VALUES = (INTS, INTS, SMALL_INTS, SMALL_INTS, FLOATS, BOOLS, WRONG, NUMPY, BYTES)

#: Every kind of call: a weight (its share of the cases) and ``(rng, env) -> Call``.
KINDS: dict = {
    "hash_setitem": Kind(4, g_setitem("h", KEYS, VALUES)),
    "hash_getitem": Kind(2, g_map_op("h", "get", KEYS)),
    "hash_delitem": Kind(1, g_map_op("h", "del", KEYS)),
    "hash_contains": Kind(1, g_map_op("h", "in", KEYS)),
    "signed_hash_setitem": Kind(2, g_setitem("hs", KEYS, VALUES)),
    "struct_setitem": Kind(3, g_struct_set),
    "array_setitem": Kind(3, g_setitem("a", KEYS, VALUES)),
    "array_getitem": Kind(2, g_map_op("a", "get", KEYS)),
    "array_delitem": Kind(1, g_map_op("a", "del", KEYS)),
    "percpu_hash_setitem": Kind(2, g_percpu_set("ph")),
    "percpu_array_setitem": Kind(2, g_percpu_set("pa")),
    "lru_setitem": Kind(1, g_setitem("lru", KEYS, VALUES)),
    "lru_whole_map_churn": Kind(2, g_churn("lru", "insert")),
    "hash_whole_map_churn": Kind(1, g_churn("h", "delete")),
    "prog_array_setitem": Kind(3, g_prog_array_set),
    "prog_array_getdel": Kind(1, g_map_op("progs", r"del", KEYS)),
    "queue_push_pop": Kind(2, g_queue),
    "bloom_push_contains": Kind(1, g_bloom),
    "update_raw": Kind(2, g_update_raw),
    "table_methods": Kind(2, g_table_method),
    "get_table": Kind(1, g_get_table),
    "set_global": Kind(4, g_set_global),
    "get_global": Kind(1, g_get_global),
    "ringbuf_event": Kind(3, g_event("rb")),
    "perfbuf_event": Kind(2, g_event("pe")),
    "stream_read": Kind(2, g_read),
    "ring_buffer_poll": Kind(2, g_poll("ring")),
    "perf_buffer_poll": Kind(2, g_poll("perf")),
    "open_streams": Kind(2, g_open_stream),
    "hist_from_map": Kind(3, g_hist_map),
    "hist_from_dict": Kind(3, g_hist_dict),
    "attach_tracepoint": Kind(3, g_attach_tracepoint),
    "attach_raw_tracepoint": Kind(2, g_attach_raw_tracepoint),
    "attach_kprobe": Kind(2, g_attach_kprobe),
    "attach_uprobe": Kind(4, g_attach_uprobe),
    "attach_perf_event": Kind(3, g_attach_perf_event),
    "attach_xdp": Kind(3, g_attach_xdp),
    "remove_xdp": Kind(2, g_remove_xdp),
    "attach_tc": Kind(2, g_attach_tc),
    "detach": Kind(3, g_detach),
    "load_func": Kind(1, g_load_func),
    "get_tracepoints": Kind(1, g_get_tracepoints),
    "tracepoint_exists": Kind(1, g_tracepoint_exists),
    "get_kprobe_functions": Kind(1, g_get_kprobe_functions),
    "get_user_functions": Kind(2, g_get_user_functions),
    "ksym_sym": Kind(2, g_ksym),
    "open_pinned": Kind(1, g_open_pinned),
    "usdt": Kind(2, g_usdt),
    "bpf_constructor": Kind(5, g_ctor),
    "cache_dir_safety": Kind(2, g_cache_dir),
    "use_after_close": Kind(3, g_closed),
    "close_while_waiting": Kind(3, g_close_while_waiting),
    "sigint_during_load": Kind(3, g_sigint),
    "tool_command_line": Kind(1, g_tool),
}


def _make_paths(d: Path) -> dict:
    """The paths the calls are given: a FIFO, a directory, devices, a loop, a missing file, good
    and non-UTF-8 sources, and a private copy of libc (probes in it touch no running process)."""
    (d / "dir").mkdir()
    os.mkfifo(d / "fifo")
    os.symlink(d / "loop", d / "loop")
    (d / "small.bpf.c").write_text(SMALL)
    (d / "nonutf8.bpf.c").write_bytes(b"// \xff\xfe not UTF-8\n" + SMALL.encode())
    from bpfkit import _native

    libc = _native.resolve_binary("c", None)
    shutil.copy(libc, d / "libc-copy.so.6")
    return {"fifo": str(d / "fifo"), "dir": str(d / "dir"), "devzero": "/dev/zero", "devnull": "/dev/null",
            "procmem": "/proc/self/mem", "loop": str(d / "loop"), "missing": str(d / "missing.bpf.c"),
            "source": str(d / "small.bpf.c"), "nonutf8": str(d / "nonutf8.bpf.c"),
            "elf": str(d / "libc-copy.so.6"), "empty": "", "nul": str(d / "a\x00b")}


ENTRY = "import tests.test_fuzz as t; t.main()"


def main() -> None:
    """The worker process's entry point."""
    worker_main(KINDS, Env)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """The worker process, for every test of the module."""
    if shutil.which("unshare") is None:
        pytest.fail("the fuzz test runs its calls in a network namespace of their own: it needs `unshare` "
                    "(util-linux)")
    d = tmp_path_factory.mktemp("fuzz")
    cfg = {"selftest": False, "cache": str(d / "cache"), "tmp": str(d), "paths": _make_paths(d)}
    w = Worker(ENTRY, cfg, d / "worker.err")
    try:
        w.start()
    except WorkerError as e:
        pytest.fail(str(e))
    yield w
    w.stop()


@pytest.fixture
def fuzz(worker: Worker) -> Iterator[Worker]:
    """The worker, for one test: it loads its object at the test's first case and closes it at
    the end (before the leak check), so the object is no part of what the test leaves behind."""
    yield worker
    left = worker.release()
    assert not left, f"the worker still has BPF fds open after closing its object: {left}"


def _cases(kind: str) -> int:
    total = sum(k.weight for k in KINDS.values())
    return max(2, round(CASES * KINDS[kind].weight / total))


def _report(kind: str, n: int, failures: list) -> str:
    node = f"tests/test_fuzz.py::test_fuzz[{kind}]"
    rerun = f"BPFKIT_FUZZ_SEED={SEED} BPFKIT_FUZZ_CASES={CASES} pytest '{node}'"
    head = f"fuzz seed {SEED}, kind {kind}: {len(failures)} of {n} cases failed (rerun: {rerun})"
    shown = failures[:30]
    more = [f"... and {len(failures) - len(shown)} more"] if len(failures) > len(shown) else []
    return "\n".join([head, *shown, *more])


@pytest.mark.parametrize("kind", list(KINDS))
def test_fuzz(kind: str, fuzz: Worker) -> None:
    n = _cases(kind)
    failures = []
    fuzz.outcomes.clear()
    for i in range(n):
        desc, problems = fuzz.run(kind, SEED, i)
        failures += [f"  case {i}: {desc}\n      -> {p}" for p in problems]
    print(f"{kind}: {n} cases:", ", ".join(f"{v} {k}" for k, v in sorted(fuzz.outcomes.items())))
    assert not failures, _report(kind, n, failures)


def test_fuzz_harness_sees_crashes_hangs_untyped_errors_and_wraparound(tmp_path: Path) -> None:
    """The oracle is not vacuous: a call that segfaults, hangs, raises SystemError, raises an
    OverflowError naming nothing, or reads back another value is reported, with the call."""
    w = Worker(ENTRY, {"selftest": True}, tmp_path / "worker.err")
    w.start()
    try:
        seen = {b: w.run(b, SEED, 0) for b in SELFTEST}
    finally:
        w.stop()
    assert seen["fine"] == ("selftest fine", [])
    expect = {"segfault": "CRASH: the worker died during the call (signal SIGSEGV)",
              "hang": "HANG: no answer within 4 s",
              "untyped": "raised SystemError: error return without exception set",
              "unnamed_overflow": "which names none of key", "wrap": "reads back 5 (wrapped?)"}
    for b, phrase in expect.items():
        desc, problems = seen[b]
        assert desc == f"selftest {b}" and len(problems) == 1 and phrase in problems[0], (b, problems)
    assert "Fatal Python error: Segmentation fault" in seen["segfault"][1][0]
    assert "time.sleep" in seen["hang"][1][0] or "in fn" in seen["hang"][1][0], seen["hang"]
