"""The core's typed model as Python sees it: parsed sections, typed links with ids in one
process-wide registry, typed constants and feature records, and the typed errors for bad
arguments."""

from __future__ import annotations

import os

import pytest
from bpfkit import BPF, AttachError, NotSupportedError, _native, features
from bpfkit.table import BPF_MAP_TYPE

SRC = r"""
u64 hits;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("tracepoint")
int bare(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }
"""


def test_sections_are_parsed_once_into_typed_values() -> None:
    s = _native.Section("kretprobe/do_sys_openat2+0x10")
    assert (s.kind, s.is_return, s.feature, s.names_its_hook) == ("kretprobe", True, "kprobes", True)
    assert _native.Section("kprobe/do_sys_openat2+0x10").kprobe_function == ("do_sys_openat2", 16)
    t = _native.Section("tp/syscalls/sys_enter_openat")
    assert (t.kind, t.tracepoint, t.feature) == ("tracepoint", ("syscalls", "sys_enter_openat"), None)
    assert _native.Section("uretprobe.multi//lib/x.so:f*").is_multi
    assert _native.Section("xdp").names_its_hook is False
    assert _native.Section("fentry.s/do_unlinkat").sleepable
    assert _native.Section("no_such_kind/x").kind == "other"
    with BPF(text=SRC) as b:
        assert b._obj.section("bare").kind == "tracepoint" and not b._obj.section("bare").names_its_hook


def test_links_are_typed_values_with_ids_detached_by_id() -> None:
    with BPF(text=SRC) as b:
        links = b.links()
        assert sorted(lk.target for lk in links) == ["syscalls:sys_enter_getpgid", "syscalls:sys_enter_getppid"]
        assert all(isinstance(lk, _native.Link) and lk.kind == "tracepoint" for lk in links)
        assert len({lk.id for lk in links}) == 2
        # Still the (kind, target, program) tuple BCC scripts and older code unpack.
        first = next(lk for lk in links if lk.program == "on_getppid")
        kind, target, program = first
        assert (kind, target, program) == ("tracepoint", "syscalls:sys_enter_getppid", "on_getppid")
        assert first == ("tracepoint", "syscalls:sys_enter_getppid", "on_getppid") and first[-1] == "on_getppid"
        # Every object's links are in the process registry.
        assert {lk.id for lk in links} <= {lk.id for lk in _native.process_links()}
        before = b.get_global("hits")
        b.detach_link(first)
        os.getppid()
        assert b.get_global("hits") == before  # the getppid program no longer runs
        os.getpgid(0)
        assert b.get_global("hits") == before + 1  # the other one does
        assert [lk.program for lk in b.links()] == ["on_getpgid"]
        with pytest.raises(ValueError, match=f"no attachment with id {first.id}"):
            b.detach_link(first.id)
        with pytest.raises(TypeError):
            b.detach_link("on_getpgid")
        # Detaching through the registry, as BPF.remove_xdp(dev) does for XDP.
        assert _native.detach_links([lk.id for lk in b.links()]) == 1
        assert b.links() == []
    assert not [lk for lk in _native.process_links() if lk.program in ("on_getppid", "on_getpgid")]


def test_kernel_constants_and_features_come_from_one_table() -> None:
    names = {name: (num, since) for num, name, since in _native.map_types()}
    assert names["RINGBUF"] == (27, "5.8") and names["HASH"][0] == 1
    assert BPF_MAP_TYPE["ringbuf"] == 27 and BPF_MAP_TYPE["bloom_filter"] == 30
    assert BPF.XDP == 6 and BPF.SCHED_CLS == 3 and BPF.CGROUP_SKB == 8  # BCC's names, kernel numbers
    rust = {name: since for name, since, _d, _c in _native.feature_table()}
    assert {n: f.since for n, f in features.FEATURES.items()} == rust
    assert features.FEATURES["kprobe_multi"].config == ("CONFIG_FPROBE",)
    e = features.refusal("tcx", "no tcx here", program="p")
    assert isinstance(e, NotSupportedError) and (e.feature, e.since, e.program) == ("tcx", "6.6", "p")


def test_attach_errors_name_the_program_and_the_hook() -> None:
    with BPF(text=SRC, autoattach=False) as b:
        with pytest.raises(AttachError) as ei:
            b.attach_tracepoint(tp="syscalls:sys_enter_no_such_call", fn_name="bare")
        assert (ei.value.program, ei.value.target) == ("bare", "syscalls:sys_enter_no_such_call")
        assert "no tracepoint syscalls:sys_enter_no_such_call" in str(ei.value)


def test_bad_arguments_are_typed_and_named() -> None:
    with pytest.raises(TypeError, match="consts= takes a mapping"):
        BPF(text=SRC, consts=[("hits", 1)])
    with pytest.raises(TypeError, match="usdt_contexts= takes bpfkit.USDT objects, not int"):
        BPF(text=SRC, usdt_contexts=[5])
    with BPF(text=SRC, autoattach=False) as b:
        with pytest.raises(ValueError, match=r"tp_re='\(' is not a valid regular expression"):
            b.attach_tracepoint(tp_re="(", fn_name="bare")
        with pytest.raises(ValueError, match="event_re="):
            BPF.get_kprobe_functions("[")
        with pytest.raises(OverflowError, match=r"event_off=1180591620717411303424 is out of range"):
            b.attach_kprobe(event="vfs_read", event_off=2**70, fn_name="bare")
        with pytest.raises(OverflowError, match="maxactive=-1"):
            b.attach_kretprobe(event="vfs_read", fn_name="bare", maxactive=-1)
        with pytest.raises(OverflowError, match="sample_period="):
            b.attach_perf_event(ev_type=1, ev_config=0, fn_name="bare", sample_period=2**64)
        with pytest.raises(ValueError, match="needs ev_type= and ev_config="):
            b.attach_perf_event(fn_name="bare", sample_period=1)
        with pytest.raises(TypeError, match="pid must be an integer"):
            b.attach_perf_event(ev_type=1, ev_config=0, fn_name="bare", sample_period=1, pid="1")
    with pytest.raises(ValueError, match="interface index is a positive 32-bit number"):
        BPF.remove_xdp(2**64 - 1)
