"""The compile cache: content-addressed, private, checked before every use, and fast on a hit."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from bpfkit import BPF, CacheError, CompileError, _native

SRC = 'SEC("tracepoint/syscalls/sys_enter_getppid")\nint g(void *ctx) { return 0; }\n'


@pytest.fixture
def counting_clang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BPFKIT_CLANG pointing at a wrapper that logs each run, so tests see when clang ran."""
    log = tmp_path / "clang-runs"
    wrapper = tmp_path / "clang-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho run >> {log}\nexec {shutil.which("clang")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("BPFKIT_CLANG", str(wrapper))
    return log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_second_compile_skips_clang(counting_clang, cache_dir):
    obj1, cached1, header1, _, key1 = _native.compile(SRC, cache_dir=str(cache_dir))
    assert (cached1, header1) == (False, "minimal") and runs(counting_clang) == 1
    obj2, cached2, header2, _, key2 = _native.compile(SRC, cache_dir=str(cache_dir))
    assert (cached2, header2) == (True, "cache") and runs(counting_clang) == 1
    assert obj1 == obj2 and key1 == key2
    with BPF(text=SRC, cache_dir=cache_dir) as b:
        assert b.programs() == [("g", "tracepoint/syscalls/sys_enter_getppid")]
    assert runs(counting_clang) == 1


def test_key_covers_flags_and_source(counting_clang, cache_dir):
    k1 = _native.compile(SRC, cache_dir=str(cache_dir))[4]
    k2 = _native.compile(SRC, cflags=["-DX=1"], cache_dir=str(cache_dir))[4]
    k3 = _native.compile(SRC + "\n", cache_dir=str(cache_dir))[4]
    assert len({k1, k2, k3}) == 3 and runs(counting_clang) == 3


def test_an_edited_header_recompiles(counting_clang, cache_dir, tmp_path):
    """The key covers the source text; the headers it includes are recorded with their hashes
    beside the object and checked on every hit, so editing one recompiles rather than loading a
    stale object."""
    (tmp_path / "limits.h").write_text("#define LIMIT 7\n")
    src = tmp_path / "prog.bpf.c"
    src.write_text('#include "limits.h"\nconst volatile int limit = LIMIT;\n' + SRC)
    # A header modified within a clock tick of the compile's start is not trusted to the cache
    # (it may have changed under clang): let the tick pass, as any edit before a run does.
    time.sleep(0.05)
    with BPF(src_file=src, cache_dir=cache_dir) as b:
        assert b.get_global("limit") == 7
    with BPF(src_file=src, cache_dir=cache_dir) as b:
        assert b.get_global("limit") == 7
    assert runs(counting_clang) == 1
    (tmp_path / "limits.h").write_text("#define LIMIT 8\n")
    time.sleep(0.05)
    with BPF(src_file=src, cache_dir=cache_dir) as b:
        assert b.get_global("limit") == 8
    assert runs(counting_clang) == 2
    (tmp_path / "limits.h").unlink()
    with pytest.raises(CompileError, match="limits.h"):
        BPF(src_file=src, cache_dir=cache_dir)


def test_a_relative_include_of_text_is_checked_too(counting_clang, cache_dir, tmp_path, monkeypatch):
    """``BPF(text=)`` with ``#include "x.h"`` finds x.h through the working directory (clang's
    dependency list names it relatively): it is recorded and checked the same way."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.h").write_text("#define LIMIT 1\n")
    text = '#include "x.h"\nconst volatile int limit = LIMIT;\n' + SRC
    time.sleep(0.05)
    with BPF(text=text, cflags=["-I."], cache_dir=cache_dir) as b:
        assert b.get_global("limit") == 1
    (tmp_path / "x.h").write_text("#define LIMIT 2\n")
    time.sleep(0.05)
    with BPF(text=text, cflags=["-I."], cache_dir=cache_dir) as b:
        assert b.get_global("limit") == 2
    assert runs(counting_clang) == 2


def test_cache_is_created_private(cache_dir):
    _native.open_cache(str(cache_dir))
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    for sub in cache_dir.iterdir():
        assert stat.S_IMODE(sub.stat().st_mode) == 0o700, sub


def test_group_or_world_writable_cache_is_refused(cache_dir):
    _native.open_cache(str(cache_dir))
    os.chmod(cache_dir, 0o777)
    with pytest.raises(CacheError, match="lets group or others write it") as ei:
        BPF(text=SRC, cache_dir=cache_dir)
    assert ei.value.errno == 1
    os.chmod(cache_dir, 0o720)
    with pytest.raises(CacheError, match="chmod 700"):
        _native.compile(SRC, cache_dir=str(cache_dir))


def test_cache_owned_by_another_user_is_refused(cache_dir, monkeypatch):
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 65534, 65534)
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(cache_dir))
    with pytest.raises(CacheError, match="owned by uid 65534"):
        BPF(text=SRC)


def test_a_subdirectory_swapped_by_another_user_is_refused(cache_dir):
    _native.open_cache(str(cache_dir))
    os.chown(cache_dir / "blobs", 65534, 65534)
    with pytest.raises(CacheError, match="owned by uid 65534"):
        _native.compile(SRC, cache_dir=str(cache_dir))


def test_tampered_object_is_recompiled(counting_clang, cache_dir):
    obj = _native.compile(SRC, cache_dir=str(cache_dir))[0]
    blobs = [b for b in (cache_dir / "blobs").iterdir() if b.read_bytes() == obj]
    assert len(blobs) == 1
    blobs[0].write_bytes(obj.replace(b"GPL", b"XXX"))
    obj2, cached, *_ = _native.compile(SRC, cache_dir=str(cache_dir))
    assert not cached and obj2 == obj and runs(counting_clang) == 2


def test_default_location_order(monkeypatch, tmp_path):
    monkeypatch.delenv("BPFKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _native.open_cache() == str(tmp_path / "xdg" / "bpfkit")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _native.open_cache() == str(tmp_path / "home" / ".cache" / "bpfkit")
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "explicit"))
    assert _native.open_cache() == str(tmp_path / "explicit")


def test_minimal_header_names_only_what_the_source_uses():
    h = _native.minimal_vmlinux_h("struct task_struct *t; u32 x = BPF_ANY;")
    assert "struct task_struct {" in h and "BPF_ANY = 0" in h
    assert "struct xdp_md {" not in h and "struct tcp_sock {" not in h
    assert len(h) < 2_000_000, "far smaller than the full vmlinux.h"


def test_a_struct_named_only_through_a_macro_is_added_to_the_minimal_header(cache_dir):
    # The type is named only through token pasting, which the source scan cannot see: clang says
    # which struct is incomplete, and the minimal header is made again with it.
    src = r"""
    #define TAGGED(x) struct x
    u32 seen_pid = 0;
    SEC("tp_btf/sched_switch")
    int BPF_PROG(on_switch, bool preempt, TAGGED(task_struct) *prev)
    {
        seen_pid = BPF_CORE_READ(prev, pid);
        return 0;
    }
    """
    _obj, cached, header, _, _ = _native.compile(src, cache_dir=str(cache_dir))
    assert (cached, header) == (False, "minimal")


def test_falls_back_to_the_full_header_when_the_minimal_one_is_not_enough(cache_dir):
    # An enumerator named only through token pasting: neither the scan nor clang's "incomplete
    # type" messages name it, so the full header decides.
    src = r"""
    #define CA(x) TCP_CA_##x
    u32 state = CA(Loss);
    SEC("tracepoint/syscalls/sys_enter_getppid")
    int g(void *ctx) { return state; }
    """
    _obj, cached, header, _, _ = _native.compile(src, cache_dir=str(cache_dir))
    assert (cached, header) == (False, "full")
    assert (cache_dir / "btf").is_dir()


def _sections(image: bytes) -> dict:
    """{name: (type, size)} of a 64-bit little-endian ELF image."""
    import struct

    shoff, = struct.unpack_from("<Q", image, 40)
    shnum, shstrndx = struct.unpack_from("<HH", image, 60)
    heads = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + 64 * i) for i in range(shnum)]
    names = image[heads[shstrndx][4]:heads[shstrndx][4] + heads[shstrndx][5]]
    return {names[h[0]:names.index(b"\0", h[0])].decode(): (h[1], h[5]) for h in heads}


def test_objects_are_kept_without_dwarf_and_still_carry_btf_and_line_info(cache_dir):
    """clang's DWARF (most of an object) is dropped before caching: a warm start reads, hashes
    and hands libbpf a few KiB. The BTF, and the line information the verifier's messages use,
    stay: a verifier error still places the faulting instruction on its source line."""
    src = ('struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); '
           '__type(value, u64); } counts SEC(".maps");\n' + SRC.replace(
               "{ return 0; }", "{ u32 k = 0; u64 *v = bpf_map_lookup_elem(&counts, &k);\n"
               "  if (v) __sync_fetch_and_add(v, 1); return 0; }"))
    with BPF(text=src, cache_dir=cache_dir) as b:
        sections = _sections(b.object_bytes)
        os.getppid()
        assert b["counts"][0].value >= 1
    assert {n: s for n, (_, s) in sections.items() if n.startswith((".debug_", ".rel.debug_"))}
    assert all(size == 0 for n, (_, size) in sections.items() if n.startswith((".debug_", ".rel.debug_")))
    assert sections[".BTF"][1] > 0 and sections[".BTF.ext"][1] > 0
    assert len(b.object_bytes) < 8192
    # (a hash map: a lookup of a constant key of an array is known not to be NULL)
    bad = src.split("SEC(\"tracepoint")[0].replace("ARRAY", "HASH") + SRC.replace(
        "{ return 0; }", "{ u32 k = 0; u64 *v = bpf_map_lookup_elem(&counts, &k);\n  return *v + 0x5a5a; }")
    from bpfkit import LoadError

    with pytest.raises(LoadError) as e:
        BPF(text=bad, cache_dir=cache_dir)
    assert "@ <stdin>:4\n7: (79) r0 = *(u64 *)(r0 +0)" in e.value.verifier_log  # line 4, from .BTF.ext


def test_kernel_names_in_a_header_beside_the_source_reach_the_minimal_header(cache_dir, tmp_path):
    """An enumerator named only in a header included from the source's own directory (as the
    tools' hist.bpf.h names BPF_NOEXIST) is in the minimal header: no fall back to the full one."""
    (tmp_path / "mine.bpf.h").write_text("static __always_inline long put(void *m, u32 *k, u64 *v)\n"
                                         "{ return bpf_map_update_elem(m, k, v, BPF_NOEXIST); }\n")
    src = ('#include <mine.bpf.h>\nstruct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); '
           '__type(key, u32); __type(value, u64); } m SEC(".maps");\n'
           'SEC("tracepoint/syscalls/sys_enter_getppid")\nint g(void *ctx) { u32 k = 1; u64 v = 2; '
           'put(&m, &k, &v); return 0; }\n')
    _obj, cached, header, _, _ = _native.compile(src, cache_dir=str(cache_dir), source_dir=str(tmp_path))
    assert (cached, header) == (False, "minimal")
