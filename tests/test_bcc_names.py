"""BCC's public Python names on bpfkit (issue 10, item 2): constants checked against the running
kernel's BTF, the table calls (batches, the text notation, get_fd), the BPF helpers, the symbol
cache, and bcc.containers' filters, which must keep and drop real events."""

from __future__ import annotations

import ctypes as ct
import errno
import os
import re
import subprocess
import sys
import types

import pytest
from bpfkit import BPF, AttachError, BPFAttachType, BPFProgType, PerfEventSampleFormat, SymbolCache, _native
from bpfkit.bcc import containers

PID = os.getpid()


def _kernel_enum(enum: str) -> dict:
    """``{NAME: value}`` of ``enum`` as the running kernel's BTF defines it."""
    text = _native.minimal_vmlinux_h(f"enum {enum} x;")
    body = re.search(r"enum %s \{(.*?)\};" % enum, text, re.S)
    assert body, f"enum {enum} is not in the kernel's BTF"
    return {m[1]: int(m[2]) for m in re.finditer(r"(\w+) = (-?\d+)", body[1])}


def _consts(cls: type) -> dict:
    return {k: v for k, v in vars(cls).items() if k.isupper()}


def test_attach_prog_types_and_sample_format_are_the_running_kernels():
    kernel = {k[len("BPF_"):]: v for k, v in _kernel_enum("bpf_attach_type").items() if not k.startswith("__")}
    ours = _consts(BPFAttachType)
    # Every name we give has the kernel's number; every attach type this kernel has, we name.
    assert {k: kernel.get(k) for k in ours} == ours
    assert set(kernel) <= set(ours), set(kernel) - set(ours)

    kernel = {k[len("BPF_PROG_TYPE_"):]: v for k, v in _kernel_enum("bpf_prog_type").items() if not k.startswith("__")}
    ours = _consts(BPFProgType)
    assert ours and {k: kernel.get(k) for k in ours} == ours
    assert BPFProgType.XDP == BPF.XDP and BPFProgType.SOCKET_FILTER == BPF.SOCKET_FILTER

    kernel = {k[len("PERF_SAMPLE_"):]: v for k, v in _kernel_enum("perf_event_sample_format").items()
              if k != "PERF_SAMPLE_MAX"}
    assert _consts(PerfEventSampleFormat) == kernel


TABLES = r"""
struct sym { char name[16]; char path[16]; };
struct ev { u32 pid; s32 delta; struct sym syms[2]; };
BPF_HASH(stats, int, struct { u32 a[3]; u32 b; u64 c:36; u64 d:28; }, 16);
BPF_TABLE("array", int, struct ev, events, 1);
BPF_HASH(counts, u64, u64, 64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == TARGET)
        counts.increment(pid);
    return 0;
}
"""


def test_table_batch_calls_return_and_remove_exactly_what_is_there():
    with BPF(text=TABLES, cflags=[f"-DTARGET={PID}"]) as b:
        t = b["counts"]
        keys = (t.Key * 5)(*[10, 20, 30, 40, 50])
        values = (t.Leaf * 5)(*[1, 2, 3, 4, 5])
        t.items_update_batch(keys, values)
        got = sorted((k.value, v.value) for k, v in t.items_lookup_batch())
        assert got == [(10, 1), (20, 2), (30, 3), (40, 4), (50, 5)]

        t.items_delete_batch((t.Key * 2)(20, 40))
        assert sorted(k.value for k in t.keys()) == [10, 30, 50]
        with pytest.raises(KeyError):
            t.items_delete_batch([20])
        with pytest.raises(ValueError, match="2 keys and 1 values"):
            t.items_update_batch([1, 2], [1])
        assert len(t) == 3  # nothing was written

        # The program's own entry comes back, with the count it made, and is gone after.
        for _ in range(4):
            os.getppid()
        got = sorted((k.value, v.value) for k, v in t.items_lookup_and_delete_batch())
        assert got == sorted([(10, 1), (30, 3), (50, 5), (PID, 4)])
        assert len(t) == 0 and list(t.items_lookup_batch()) == []

        t.items_update_batch([7], [70])
        t.items_delete_batch()
        assert len(t) == 0

        assert t.get_fd() == t.fd
        assert os.readlink(f"/proc/self/fd/{t.get_fd()}") == "anon_inode:bpf-map"


def test_sprintf_and_scanf_use_bccs_notation_and_round_trip():
    with BPF(text=TABLES, cflags=[f"-DTARGET={PID}"]) as b:
        t = b["stats"]
        assert t.key_sprintf(t.Key(2)) == b"0x2"
        assert t.key_sprintf(-1) == b"0xffffffff"
        assert t.key_scanf(b"0xffffffff").value == -1
        leaf = t.Leaf((ct.c_uint * 3)(1, 2, 3), 4, 2**36 - 1, 5)
        s = t.leaf_sprintf(leaf)
        assert s == b"{ [ 0x1 0x2 0x3 ] 0x4 0xfffffffff 0x5 }"
        back = t.leaf_scanf(s)
        assert list(back.a) == [1, 2, 3] and (back.b, back.c, back.d) == (4, 2**36 - 1, 5)
        assert bytes(back) == bytes(leaf)

        ev = b["events"]
        assert ev.leaf_sprintf(ev[0]) == b'{ 0x0 0x0 [ { "" "" } { "" "" } ] }'
        v = ev.Leaf(7, -2)
        v.syms[1].name = b'a "q" \\'
        v.syms[1].path = b"/usr/lib/x.so"
        s = ev.leaf_sprintf(v)
        assert s == b'{ 0x7 0xfffffffe [ { "" "" } { "a \\"q\\" \\\\" "/usr/lib/x.so" } ] }'
        back = ev.leaf_scanf(s.decode())
        assert (back.pid, back.delta) == (7, -2)
        assert back.syms[1].name == b'a "q" \\' and back.syms[1].path == b"/usr/lib/x.so"
        ev[0] = back
        assert bytes(ev[0]) == bytes(v)

        with pytest.raises(ValueError, match="expected '}'"):
            t.leaf_scanf(b"{ [ 0x1 0x2 0x3 ] 0x4 0x1 0x1 0x9 }")
        with pytest.raises(OverflowError):
            t.key_scanf(b"0x100000000")


def test_bpf_helpers_count_what_is_attached():
    assert BPF.free_bcc_memory() == 0
    assert BPF.tracepoint_exists("syscalls", "sys_enter_getppid")
    assert BPF.tracepoint_exists(b"syscalls", b"sys_enter_getppid")
    assert not BPF.tracepoint_exists("syscalls", "sys_enter_no_such_call")
    with BPF(text=TABLES, cflags=[f"-DTARGET={PID}"]) as b:
        assert b.num_open_tracepoints() == 1
        assert b.num_open_uprobes() == 0 and b.num_open_kprobes() == 0
        b.detach_tracepoint("syscalls:sys_enter_getppid")
        assert b.num_open_tracepoints() == 0
        assert len(b.dump_func("tracepoint__syscalls__sys_enter_getppid")) % 8 == 0
        with pytest.raises(AttachError) as e:
            b.attach_func("tracepoint__syscalls__sys_enter_getppid", 0, BPFAttachType.SK_MSG_VERDICT)
        # A tracepoint program has no business on a sockmap: the kernel's EINVAL, with both named.
        assert e.value.errno == errno.EINVAL
        assert "tracepoint__syscalls__sys_enter_getppid" in str(e.value) and "SK_MSG_VERDICT" in str(e.value)
        with pytest.raises(ValueError, match="not a BPFAttachType"):
            b.attach_func("tracepoint__syscalls__sys_enter_getppid", 0, 9999)


def _kallsyms(name: str) -> int:
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, sym = line.split()[:3]
            if sym == name and kind in "tT":
                return int(addr, 16)
    raise AssertionError(f"{name} is not in /proc/kallsyms")


def test_kprobe_functions_and_kernel_symbols_are_kallsyms():
    assert BPF.get_kprobe_functions(b"vfs_read") == {b"vfs_read"}
    assert BPF.get_kprobe_functions("vfs_read") == {"vfs_read"}
    found = BPF.get_kprobe_functions(b"vfs_(read|write)")
    assert {b"vfs_read", b"vfs_write"} <= found and all(isinstance(f, bytes) for f in found)
    assert BPF.get_kprobe_functions(b"no_such_function_here_x") == set()
    addr = _kallsyms("vfs_read")
    assert BPF.ksymname("vfs_read") == addr and BPF.ksymname(b"no_such_function_here_x") == -1
    k = SymbolCache(-1)
    assert k.resolve_name(None, b"vfs_read") == addr
    assert k.resolve(addr + 3) == (b"vfs_read", 3, b"kernel")


def test_symbol_cache_resolves_libc_in_this_process_both_ways():
    libc = ct.CDLL("libc.so.6")
    addr = ct.cast(libc.getpid, ct.c_void_p).value
    cache = SymbolCache(PID)
    assert cache.resolve_name(b"c", b"getpid") == addr
    name, off, module = cache.resolve(addr + 2, True)
    assert name in (b"getpid", b"__getpid", b"__GI_getpid", b"__GI___getpid") and off == 2
    assert os.path.samefile(module, "/proc/self/map_files/" + _mapping_of(addr))
    assert cache.resolve_name(b"c", b"no_such_function_here_x") == -1
    assert cache.resolve(8) == (None, 8, None)


def _mapping_of(addr: int) -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return line.split()[0]
    raise AssertionError(f"{addr:#x} is in no mapping")


# -- bcc.containers ----------------------------------------------------------------------------

FILTERED = r"""
BPF_HASH(counts, u64, u64, 64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    if (container_should_be_filtered())
        return 0;
    counts.increment(pid);
    return 0;
}
"""


def _count(b: BPF, n: int) -> int:
    for _ in range(n):
        os.getppid()
    v = b["counts"].get(ct.c_uint64(PID))
    return 0 if v is None else v.value


def _own_cgroup_id() -> int:
    with open("/proc/self/cgroup") as f:
        rel = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    return os.stat(BPF.cgroup2_mountpoint() + rel).st_ino


def test_containers_cgroupmap_keeps_the_cgroups_in_the_pinned_map_live(pinned_set):
    path, cgset = pinned_set("u64")
    cgid = _own_cgroup_id()
    cgset[cgid] = 1
    text = containers.filter_by_containers(types.SimpleNamespace(cgroupmap=path, mntnsmap=None)) + FILTERED
    with BPF(text=text, cflags=[f"-DTARGET={PID}"]) as b:
        assert _count(b, 5) == 5          # our cgroup is in the set: kept
        del cgset[cgid]
        assert _count(b, 5) == 5          # removed from the set, live: dropped
        cgset[cgid + 1] = 1
        assert _count(b, 3) == 5          # another cgroup in the set: still dropped
        cgset[cgid] = 1
        assert _count(b, 2) == 7          # back in: kept again


def test_containers_mntnsmap_keeps_the_mount_namespaces_in_the_pinned_map(pinned_set):
    path, nsset = pinned_set("u32")
    mntns = os.stat("/proc/self/ns/mnt").st_ino
    text = containers.filter_by_containers(types.SimpleNamespace(mntnsmap=path)) + FILTERED
    with BPF(text=text, cflags=[f"-DTARGET={PID}"]) as b:
        assert _count(b, 4) == 0          # the set is empty: everything dropped
        nsset[mntns] = 1
        assert _count(b, 4) == 4


def test_containers_without_maps_filters_nothing_and_refuses_a_misshapen_map(pinned_set):
    text = containers.filter_by_containers(types.SimpleNamespace(cgroupmap=None, mntnsmap=None)) + FILTERED
    with BPF(text=text, cflags=[f"-DTARGET={PID}"]) as b:
        assert _count(b, 3) == 3
    path, _ = pinned_set("u32")  # a mount-namespace set is not a cgroup set (8-byte values)
    with pytest.raises(ValueError, match="4-byte values"):
        containers.filter_by_containers(types.SimpleNamespace(cgroupmap=path))


def test_a_bcc_program_imports_the_names_through_the_runner(tmp_path):
    script = tmp_path / "names.py"
    script.write_text(r'''
from bcc import BPF, BPFAttachType, BPFProgType, PerfEventSampleFormat, SymbolCache
from bcc.containers import filter_by_containers
from bcc.table import Array, HashTable, BPF_MAP_TYPE_HASH
from bcc.syscall import syscall_name
import argparse

b = BPF(text=filter_by_containers(argparse.Namespace(cgroupmap=None, mntnsmap=None)) + """
BPF_ARRAY(a, u64, 2);
BPF_HASH(h, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { if (container_should_be_filtered()) return 0; return 0; }
""")
print(isinstance(b["a"], Array), isinstance(b["h"], HashTable), BPF_MAP_TYPE_HASH,
      BPFProgType.XDP, BPFAttachType.CGROUP_INET_EGRESS, PerfEventSampleFormat.RAW, b.free_bcc_memory())
''')
    r = subprocess.run([sys.executable, "-m", "bpfkit.bcc", str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "1", str(BPF.XDP), "1", "1024", "0"]


def test_strcmp_rewrite_makes_one_function_per_call_and_reads_user_strings_when_told():
    from bpfkit.bcc.utils import StrcmpRewrite

    r = StrcmpRewrite.rewrite_expr('STRCMP("bash", arg1) && !STRCMP("a\\"b", f(x, (y)))', False, False,
                                   {"arg1"}, "/* before */", 4)
    assert r["expr"] == 'streq_4("bash", arg1) && !streq_5("a\\"b", f(x, (y)))'
    assert r["probeid"] == 6 and r["streq_functions"].startswith("/* before */")
    fns = r["streq_functions"]
    # The whole string, its NUL included: "bash" does not match "bashful".
    assert "const char needle[5] = {98, 97, 115, 104, 0};" in fns
    assert "const char needle[4] = {97, 34, 98, 0};" in fns
    assert fns.count("bpf_probe_read_user(") == 1 and fns.count("bpf_probe_read(") == 1  # arg1 is @user
    binary = StrcmpRewrite.rewrite_expr('STRCMP("\\x01\\x02", arg2)', True, True, [], "", 0)
    assert "const char needle[2] = {1, 2};" in binary["streq_functions"]
    assert "bpf_probe_read_user(" in binary["streq_functions"]
