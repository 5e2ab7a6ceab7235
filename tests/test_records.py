"""What a per-record callback receives as ``data``: a Record valid during the call, never an
address as an int (an int taken for an address let a slip such as ``event(size)`` crash the
interpreter)."""

from __future__ import annotations

import ctypes as ct
import os
import time

import pytest
from bpfkit import BPF, _native

from .test_events import PRODUCER, produce


def producer(perf: bool) -> BPF:
    return BPF(text=PRODUCER, cflags=[f"-DRB_SIZE={1 << 22}"],
               consts={"targ_pid": os.getpid(), "use_perf": perf})


def poll_until(b: BPF, perf: bool, done, timeout: float = 10) -> None:
    poll = b.perf_buffer_poll if perf else b.ring_buffer_poll
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        poll(200)


@pytest.mark.parametrize("perf", [False, True], ids=["ring", "perf"])
def test_data_is_a_record_readable_as_bytes_and_through_ctypes(perf):
    with producer(perf) as b:
        t = b["pb" if perf else "rb"]
        seen = []

        def cb(first, data, size):
            assert type(data) is _native.Record and not isinstance(data, int)
            # A perf sample's size is padded (64 bytes of event in 68), as in BCC.
            assert data.valid and len(data) == size == (68 if perf else 64)
            raw = bytes(data)
            e = t.event(data)  # the decoder takes the record itself
            # BCC's idioms: a ctypes pointer cast, and string_at, both through _as_parameter_.
            p = ct.cast(data, ct.POINTER(t.Event)).contents
            assert ct.string_at(data, size) == raw
            assert p.seq == e.seq == int.from_bytes(raw[:8], "little")
            assert bytes(p) == raw[:64] and bytes(e) == raw[:64]
            seen.append(e.seq)

        if perf:
            t.open_perf_buffer(cb, page_cnt=64)
        else:
            t.open_ring_buffer(cb)
        produce(500)
        poll_until(b, perf, lambda: len(seen) >= 500)
        assert sorted(seen) == list(range(500))


@pytest.mark.parametrize("perf", [False, True], ids=["ring", "perf"])
def test_a_record_kept_past_its_callback_refuses_to_be_read(perf):
    with producer(perf) as b:
        t = b["pb" if perf else "rb"]
        kept, copies = [], []

        def cb(first, data, size):
            if t.event(data).seq % 3 == 0:  # keep some, so later callbacks get fresh Records
                kept.append(data)
            copies.append(bytes(data))

        if perf:
            t.open_perf_buffer(cb, page_cnt=64)
        else:
            t.open_ring_buffer(cb)
        produce(300)
        poll_until(b, perf, lambda: len(copies) >= 300)
        assert sorted(int.from_bytes(c[:8], "little") for c in copies) == list(range(300))
        assert len(kept) == 100 and len({id(r) for r in kept}) == 100
        for r in kept:
            assert not r.valid and len(r) == (68 if perf else 64) and "released" in repr(r)
            with pytest.raises(ValueError, match="only valid during the callback"):
                bytes(r)
            with pytest.raises(ValueError, match="only valid during the callback"):
                getattr(r, "_as_parameter_")  # noqa: B009 - the property is what is tested
            with pytest.raises(ct.ArgumentError, match="only valid during the callback"):
                ct.cast(r, ct.POINTER(t.Event))
            with pytest.raises(ValueError, match="only valid during the callback"):
                t.event(r)


def test_record_is_a_native_class():
    assert _native.Record.__module__ == "bpfkit._native"
    with pytest.raises(TypeError):
        _native.Record()  # only the streams make them
