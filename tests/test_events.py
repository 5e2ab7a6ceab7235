"""Ring buffers and perf buffers: exact delivery, exact loss accounting, decoding from BTF,
batches as numpy, polling that behaves (threads, Ctrl-C, exceptions, asyncio)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time

import numpy as np
import pytest
from bpfkit import BPF

from .conftest import ROOT, run_py

PRODUCER = r"""
struct inner {
    u16 a;
    u8 b[3];
};

struct event {
    u64 seq;
    u32 pid;
    char comm[16];
    struct inner in;
    u32 arr[4];
    u32 flag : 1, kind : 3, rest : 28;
    s64 neg;
};

const volatile u32 targ_pid = 0;
const volatile bool use_perf = false;
u64 produced = 0;
u64 dropped = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RB_SIZE);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} pb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != targ_pid)
        return 0;
    struct event e = {};
    e.seq = __sync_fetch_and_add(&produced, 1);
    e.pid = targ_pid;
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    e.in.a = 0xbeef;
    e.in.b[0] = 1; e.in.b[1] = 2; e.in.b[2] = 3;
    for (int i = 0; i < 4; i++)
        e.arr[i] = e.seq * 10 + i;
    e.flag = 1;
    e.kind = 5;
    e.rest = 12345;
    e.neg = -(s64)e.seq;
    long err = use_perf ? bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e))
                        : bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
    if (err)
        __sync_fetch_and_add(&dropped, 1);
    return 0;
}
"""


def producer(perf: bool = False, rb_size: int = 1 << 22) -> BPF:
    return BPF(text=PRODUCER, cflags=[f"-DRB_SIZE={rb_size}"],
               consts={"targ_pid": os.getpid(), "use_perf": perf})


def produce(n: int) -> None:
    for _ in range(n):
        os.getppid()


def check_event(e, seq: int) -> None:
    assert e.seq == seq and e.pid == os.getpid()
    assert isinstance(e.comm, bytes) and e.comm == e.str("comm").encode()
    assert e.str("comm") == open("/proc/self/comm").read().strip()[:15]
    assert getattr(e, "in").a == 0xBEEF  # a field named like a Python keyword
    assert list(getattr(e, "in").b) == [1, 2, 3]
    assert list(e.arr) == [seq * 10 + i for i in range(4)]
    assert (e.flag, e.kind, e.rest) == (1, 5, 12345)
    assert e.neg == -seq


def test_ring_buffer_delivers_exactly_n_and_decodes_from_btf():
    with producer() as b:
        got = []
        table = b["rb"]
        table.open_ring_buffer(lambda ctx, data, size: got.append((ctx, table.event(data), size)), ctx="c")
        produce(3000)
        while len(got) < 3000 and b.ring_buffer_poll(timeout=1000):
            pass
        assert len(got) == 3000 and b.get_global("produced") == 3000 and b.get_global("dropped") == 0
        assert all(ctx == "c" and size == 64 for ctx, _e, size in got)
        for i, (_c, e, _s) in enumerate(got):
            check_event(e, i)
        assert b.ring_buffer_consume() == 0


def test_perf_buffer_delivers_exactly_n_with_cpu():
    with producer(perf=True) as b:
        got = []
        cpus = set()
        table = b["pb"]

        def cb(cpu, data, size):
            cpus.add(cpu)
            got.append(table.event(data).seq)

        table.open_perf_buffer(cb, page_cnt=64)
        produce(2000)
        deadline = time.monotonic() + 10
        while len(got) < 2000 and time.monotonic() < deadline:
            b.perf_buffer_poll(timeout=200)
        assert sorted(got) == list(range(2000))
        assert table.lost == 0 and all(0 <= c < os.cpu_count() for c in cpus)


def test_perf_buffer_losses_are_counted_exactly():
    with producer(perf=True) as b:
        lost_calls = []
        got = []
        table = b["pb"]
        table.open_perf_buffer(lambda cpu, data, size: got.append(1), page_cnt=1, lost_cb=lost_calls.append,
                               pump=False)
        produce(5000)  # a stalled consumer: one page per CPU holds a few dozen samples
        while b.perf_buffer_poll(timeout=100):
            pass
        # The kernel reports a loss with the next sample that fits, so produce one more.
        produce(1)
        while b.perf_buffer_poll(timeout=100):
            pass
        produced = b.get_global("produced")
        assert produced == 5001
        assert table.lost > 0 and len(got) + table.lost == produced
        assert sum(lost_calls) == table.lost
        assert b.get_global("dropped") == table.lost


def test_ring_buffer_losses_are_counted_by_the_program_exactly():
    with producer(rb_size=4096) as b:
        got = []
        b["rb"].open_ring_buffer(lambda ctx, data, size: got.append(1), pump=False)
        produce(1000)  # a stalled consumer
        while b.ring_buffer_poll(timeout=100):
            pass
        dropped = b.get_global("dropped")
        assert dropped > 0 and len(got) + dropped == 1000


def test_read_batches_as_numpy_with_btf_dtype():
    with producer() as b:
        t = b["rb"]
        assert len(t.read(max=10, timeout=0)) == 0
        produce(2500)
        batches = []
        while sum(len(x) for x in batches) < 2500:
            batch = t.read(max=1000, timeout=1000)
            assert 0 < len(batch) <= 1000
            batches.append(batch)
        arr = np.concatenate(batches)
        assert arr.dtype.names[:3] == ("seq", "pid", "comm") and batches[0].dtype.itemsize == 64  # BTF size
        assert arr["seq"].tolist() == list(range(2500))
        assert (arr["pid"] == os.getpid()).all() and (arr["neg"] == -arr["seq"].astype(np.int64)).all()
        assert arr["arr"][7].tolist() == [70, 71, 72, 73]
        assert arr["in"]["a"][0] == 0xBEEF and arr["in"]["b"][0].tolist() == [1, 2, 3]
        assert arr["comm"][0].decode() == open("/proc/self/comm").read().strip()[:15]


def test_perf_buffer_read_keeps_the_excess_for_the_next_read():
    with producer(perf=True) as b:
        t = b["pb"]
        t.open(page_cnt=64)  # a perf buffer collects from when it is opened
        produce(300)
        first = t.read(max=100, timeout=1000)
        rest = t.read(max=1000, timeout=100)
        while len(first) + len(rest) < 300:
            more = t.read(max=1000, timeout=1000)
            assert len(more)
            rest = np.concatenate([rest, more])
        assert len(first) == 100
        assert sorted(first["seq"].tolist() + rest["seq"].tolist()) == list(range(300))


def test_fileno_works_with_select():
    with producer() as b:
        t = b["rb"]
        fd = t.fileno()
        assert select.select([fd], [], [], 0)[0] == []
        produce(1)
        assert select.select([fd], [], [], 2)[0] == [fd]
        assert t.read(timeout=0)["seq"].tolist() == [0]


def test_asyncio_batches():
    with producer() as b:
        t = b["rb"]

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, produce, 40)
            seen = []
            async for batch in t:
                seen += batch["seq"].tolist()
                if len(seen) >= 40:
                    break
            return seen

        assert asyncio.run(asyncio.wait_for(main(), 10)) == list(range(40))


def test_callback_exception_propagates_and_keeps_the_rest():
    with producer() as b:
        seen = []

        def cb(ctx, data, size):
            e = b["rb"].event(data)
            if e.seq == 3 and not any(s == "boom" for s in seen):
                seen.append("boom")
                raise RuntimeError("boom at 3")
            seen.append(e.seq)

        b["rb"].open_ring_buffer(cb)
        produce(10)
        with pytest.raises(RuntimeError, match="boom at 3"):
            for _ in range(50):  # the records may arrive over several polls
                b.ring_buffer_poll(timeout=1000)
        assert seen == [0, 1, 2, "boom"]
        for _ in range(50):
            if len(seen) == 10:
                break
            b.ring_buffer_poll(timeout=1000)
        assert seen == [0, 1, 2, "boom", 4, 5, 6, 7, 8, 9]


def test_polling_from_another_thread():
    with producer() as b:
        got = []
        b["rb"].open_ring_buffer(lambda ctx, data, size: got.append(size))
        done = threading.Event()

        def poller():
            while not done.is_set():
                b.ring_buffer_poll(timeout=50)

        t = threading.Thread(target=poller)
        t.start()
        try:
            produce(500)
            deadline = time.monotonic() + 10
            while len(got) < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            done.set()
            t.join()
        assert len(got) == 500


def test_ctrl_c_interrupts_a_blocking_poll_at_once():
    with producer() as b:
        b["rb"].open_ring_buffer(lambda ctx, data, size: None)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            b.ring_buffer_poll(timeout=-1)
        assert time.monotonic() - t0 < 2
        timer.join()


def test_record_type_is_named_or_guessed():
    src = PRODUCER.replace("struct inner {", "struct other { u64 z; };\nstruct inner {")
    with BPF(text=src, cflags=["-DRB_SIZE=4096"], consts={"targ_pid": os.getpid()}, autoattach=False) as b:
        with pytest.raises(ValueError, match="pass record='struct NAME'"):
            _ = b["rb"].Event
        b["rb"].set_record("struct event")
        assert b["rb"].Event.__name__ == "event"
        with pytest.raises(ValueError, match="no struct nope"):
            b["rb"].set_record("struct nope")


def test_perf_wakeup_events_batches_wakeups_without_stranding_samples():
    with producer(perf=True) as b:
        got = []
        b["pb"].open_perf_buffer(lambda cpu, data, size: got.append(b["pb"].event(data).seq),
                                 page_cnt=64, wakeup_events=32)
        produce(5)  # fewer than the wake-up threshold: the pump still reads them
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            b.perf_buffer_poll(timeout=200)
        assert sorted(got) == [0, 1, 2, 3, 4]


def test_event_refuses_an_int_instead_of_reading_memory_at_it():
    # In a child: reading memory at an address given by the caller would kill the interpreter.
    code = """
import os, sys
from bpfkit import BPF
from tests.test_events import PRODUCER
with BPF(text=PRODUCER, cflags=["-DRB_SIZE=4096"], consts={"targ_pid": os.getpid()}, autoattach=False) as b:
    for t in (b["rb"], b["pb"]):
        for bad in (16, 0, -1, True, 2**64, 64):
            try:
                t.event(bad)
            except TypeError as e:
                print(t.name, repr(bad), "TypeError:", e)
        for bad in (None, "abc", 1.5, [1, 2]):
            try:
                t.event(bad)
            except TypeError as e:
                print(t.name, type(bad).__name__, "TypeError:", e)
print("alive")
"""
    r = run_py(code, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[-1] == "alive" and len(lines) == 2 * 10 + 1
    assert all("TypeError: event() takes a record (what the callback received, or its bytes), not" in ln
               for ln in lines[:-1])
    assert ("rb 16 TypeError: event() takes a record (what the callback received, or its bytes), "
            "not an int (16): bpfkit never reads memory at an address") in lines
    assert any(ln.startswith("pb NoneType TypeError:") and ln.endswith("not NoneType") for ln in lines)


def test_event_takes_the_records_bytes_in_any_buffer_form():
    with producer() as b:
        t = b["rb"]
        produce(1)
        [rec] = t.read(max=1, timeout=1000)

        class Record:
            def __init__(self, raw):
                self.raw = raw

            def __bytes__(self):
                return self.raw

        raw = rec.tobytes()
        assert len(raw) == 64
        for data in (raw, bytearray(raw), memoryview(raw), rec, Record(raw), t.event(raw)):
            check_event(t.event(data), 0)
        short = t.event(raw[:8])  # a short record is zero-padded
        assert short.seq == 0 and short.pid == 0


def test_callbacks_receive_the_record_not_an_address():
    for perf in (False, True):
        with producer(perf=perf) as b:
            t = b["pb" if perf else "rb"]
            seen = []

            def cb(_first, data, size, t=t, seen=seen):
                assert not isinstance(data, int)
                seen.append((bytes(data), size))

            (t.open_perf_buffer if perf else t.open_ring_buffer)(cb)
            produce(3)
            deadline = time.monotonic() + 10
            while len(seen) < 3 and time.monotonic() < deadline:
                (b.perf_buffer_poll if perf else b.ring_buffer_poll)(timeout=200)
            assert len(seen) == 3
            for i, (raw, size) in enumerate(sorted(seen, key=lambda x: t.event(x[0]).seq)):
                assert len(raw) == size and size >= 64
                check_event(t.event(raw), i)


def test_dtype_is_an_attribute_like_numpys():
    with producer() as b:
        for t in (b["rb"], b["pb"]):
            assert isinstance(t.dtype, np.dtype) and t.dtype.itemsize == 64
            assert t.dtype.names[:3] == ("seq", "pid", "comm")
            assert np.zeros(2, dtype=t.dtype).dtype == t.dtype
        produce(1)
        assert b["rb"].read(max=1, timeout=1000).dtype == b["rb"].dtype
