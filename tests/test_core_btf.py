"""CO-RE against a cached subset of the kernel's BTF gives the very instructions the whole BTF
gives: loading relocates each object against a small BTF of just the kernel types its
relocations name (rust/core/reloc.rs), and these tests load every bundled tool and a program full
of relocations both ways and compare what libbpf made of them, instruction by instruction."""

from __future__ import annotations

import glob
import os
import struct
from pathlib import Path

import pytest
from bpfkit import BPF, LoadError, _native, features

#: Tools checked again inside the qemu kernels (tests/kernels/run), where their kprobe and fentry
#: rungs load too: one of each kind of ladder, since every compile there is slow (TCG).
IN_KERNELS = {"vfsstat", "capable", "biosnoop", "tcpconnect", "opensnoop"}

ROOT = Path(__file__).resolve().parent.parent
TOOL_HEADER = ROOT / "tools" / "tool.bpf.h"

# Every kind of relocation a subset must answer as the whole BTF does: field offsets through
# nested and anonymous members and arrays, bitfields, a field that exists and one that does not
# (a flavoured type: task_struct's `state` became `__state` in 5.14), type existence and size,
# typedefs, enumerator existence and value.
RELOCATIONS = r"""
struct task_struct___old { long state; } __attribute__((preserve_access_index));
struct missing_type___x { int nope; } __attribute__((preserve_access_index));

__u64 out[16];

SEC("tracepoint/sched/sched_switch")
int relocations(void *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct sk_buff *skb = (void *)(long)bpf_get_prandom_u32();
    out[0] = BPF_CORE_READ(t, real_parent, tgid);
    out[1] = BPF_CORE_READ(t, mm, arg_start);
    out[2] = BPF_CORE_READ(t, comm[3]);
    out[3] = bpf_core_field_exists(t->pid);
    out[4] = bpf_core_field_exists(((struct task_struct___old *)t)->state);
    out[5] = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
    out[6] = BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
    out[7] = bpf_core_type_exists(struct bpf_map);
    out[8] = bpf_core_type_exists(struct missing_type___x);
    out[9] = bpf_core_type_size(struct task_struct);
    out[10] = bpf_core_type_size(pid_t);
    out[11] = bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
    out[12] = bpf_core_enum_value(enum bpf_func_id, BPF_FUNC_ktime_get_ns);
    out[13] = bpf_core_field_size(t->comm);
    out[14] = bpf_core_field_offset(struct sk_buff, len);
    out[15] = BPF_CORE_READ(t, signal, rlim[1].rlim_cur);
    return 0;
}
"""

BPF_LD_IMM64 = 0x18
PSEUDO_FD_KINDS = (1, 2, 5, 6)  # BPF_PSEUDO_MAP_FD, _MAP_VALUE, _MAP_IDX, _MAP_IDX_VALUE


def _masked(insns: bytes) -> list:
    """Instructions with the map fd of each map-loading ``ld_imm64`` zeroed: two loads of one
    object hold different fds, and everything else must be equal."""
    out = []
    words = [insns[i:i + 8] for i in range(0, len(insns), 8)]
    skip_next = False
    for i, w in enumerate(words):
        code, regs, off, imm = struct.unpack("<BBhi", w)
        if skip_next:
            skip_next = False
        elif code == BPF_LD_IMM64 and (regs >> 4) in PSEUDO_FD_KINDS:
            imm = 0
            skip_next = True  # the second half holds the value's offset: kept as it is
        out.append((i, code, regs, off, imm))
    return out


def _both_ways(src_file: str = "", text: str = "") -> dict:
    """``{program: (insns with the subset, insns with the whole BTF)}`` for one source. Programs
    this kernel cannot load (a tool's fentry rung of a fallback ladder) are left out of both."""
    # A tool's C follows the kit's header, as bpfkit.tools._kit's Tool.load() compiles it.
    source = (TOOL_HEADER.read_text() + "\n" + Path(src_file).read_text()) if src_file else text
    obj, *_ = _native.compile(source, source_dir=str(Path(src_file).parent) if src_file else None)
    programs = [(name, _native.Section(sec)) for name, sec in _native.object_programs(obj)]
    off = [name for name, sec in programs if sec.feature and not features.supported(sec.feature)]
    # A rung whose hook this kernel lacks (a tp_btf tracepoint added later) is refused at load,
    # naming the program, as a fallback ladder finds out: leave it out too, and load again.
    for _ in programs:
        try:
            _native.Object.load(obj, whole_kernel_btf=True, autoload_off=off).close()
            break
        except LoadError as e:
            if not e.program or e.program in off:
                raise
            off.append(e.program)
    sub = _native.Object.load(obj, autoload_off=off)
    whole = _native.Object.load(obj, whole_kernel_btf=True, autoload_off=off)
    try:
        names = [name for name, _sec in programs if name not in off]
        return {p: (_masked(sub.program_insns(p)), _masked(whole.program_insns(p))) for p in names}
    finally:
        sub.close()
        whole.close()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(d))
    return d


def _subsets(cache: Path) -> list:
    """The CO-RE subsets in a cache: the blobs its ``core-btf-*`` refs name."""
    out = []
    for ref in sorted((cache / "refs").glob("core-btf-*")):
        out.append((cache / "blobs" / f"{ref.read_text().strip()}.o").read_bytes())
    return out


@pytest.mark.kernels
def test_a_program_full_of_relocations_loads_as_with_the_whole_btf(fresh_cache):
    progs = _both_ways(text=RELOCATIONS)
    sub, whole = progs["relocations"]
    assert len(sub) > 40 and sub == whole
    (subset,) = _subsets(fresh_cache)
    kernel = os.path.getsize("/sys/kernel/btf/vmlinux")
    assert subset[:2] == b"\x9f\xeb" and 0 < len(subset) < kernel // 10, len(subset)


@pytest.mark.parametrize("tool", [
    pytest.param(t, marks=[pytest.mark.kernels] if t in IN_KERNELS else [])
    for t in sorted(Path(p).name.removesuffix(".bpf.c") for p in glob.glob(str(ROOT / "tools" / "*.bpf.c")))])
def test_every_tool_loads_as_with_the_whole_btf(tool, fresh_cache):
    progs = _both_ways(src_file=str(ROOT / "tools" / f"{tool}.bpf.c"))
    assert progs
    for name, (sub, whole) in progs.items():
        assert sub == whole, f"{tool}: program {name} differs"


@pytest.mark.kernels
def test_dump_func_gives_the_loaded_instructions():
    with BPF(text=RELOCATIONS, autoattach=False) as b:
        insns = b.dump_func("relocations")
        assert len(insns) % 8 == 0 and len(insns) > 40 * 8
        assert insns[-8] == 0x95  # BPF_JMP | BPF_EXIT
        with pytest.raises(ValueError, match="no program named"):
            b.dump_func("nothing")


@pytest.mark.kernels
def test_a_kernel_type_id_relocation_uses_the_whole_btf(fresh_cache):
    """bpf_core_type_id_kernel() answers with the kernel's own type id, which a renumbered subset
    would get wrong: such an object is relocated against the whole BTF (no subset is stored)."""
    text = RELOCATIONS.replace("out[15] =", "out[15] = bpf_core_type_id_kernel(struct task_struct) + ")
    sub, whole = _both_ways(text=text)["relocations"]
    assert sub == whole
    assert _subsets(fresh_cache) == []  # decided from the object alone: nothing stored
