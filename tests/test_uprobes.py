"""uprobes and uretprobes on test programs built here (tests/targets/): exact call counts and
argument and return sums, per function for sym_re, BCC's addr= (a virtual address, in a non-PIE
binary where it differs from the file offset), sym_off, the pid filter, a library a running
process dlopen()ed from a directory the linker does not know, symbol versions, a GNU indirect
function, C++ by mangled and demangled name, and detaching each of those forms."""

from __future__ import annotations

import errno
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfkit import BPF, AttachError
from bpfkit._native import open_elf

from ._features import need
from ._target import perf_event_fds, spawner

TARGETS = Path(__file__).resolve().parent / "targets"


@dataclass
class Built:
    dir: Path
    exe: Path          # PIE, linked against libbkt.so
    exe_nopie: Path    # the same, non-PIE: virtual addresses and file offsets differ
    libbkt: Path       # versioned symbols, an IFUNC
    dlopen_exe: Path
    libbkdl: Path      # only ever dlopen()ed, from a directory outside ld.so.cache
    cxx: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    gcc, gxx = shutil.which("gcc"), shutil.which("g++")
    assert gcc and gxx, "gcc and g++ build the test targets (make deps installs them)"
    d = tmp_path_factory.mktemp("uprobe_targets")
    (d / "dl").mkdir()

    def cc(*args: str) -> None:
        subprocess.run(list(args), check=True, cwd=d)

    cc(gcc, "-O2", "-g", "-shared", "-fPIC", f"-Wl,--version-script={TARGETS / 'libbkt.map'}",
       "-Wl,-soname,libbkt.so", "-o", "libbkt.so", str(TARGETS / "libbkt.c"))
    for out, extra in (("uprobe_target", []), ("uprobe_target_nopie", ["-no-pie"])):
        cc(gcc, "-O2", "-g", *extra, "-o", out, str(TARGETS / "uprobe_target.c"), "-L.", "-lbkt",
           f"-Wl,-rpath,{d}")
    cc(gcc, "-O2", "-g", "-shared", "-fPIC", "-o", "dl/libbkdl.so", str(TARGETS / "libbkdl.c"))
    cc(gcc, "-O2", "-g", "-o", "dlopen_target", str(TARGETS / "dlopen_target.c"), "-ldl")
    cc(gxx, "-O2", "-g", "-o", "cxx_target", str(TARGETS / "cxx_target.cc"))
    return Built(d, d / "uprobe_target", d / "uprobe_target_nopie", d / "libbkt.so", d / "dlopen_target",
                 d / "dl" / "libbkdl.so", d / "cxx_target")


@pytest.fixture
def spawn():
    yield from spawner()


PROGRAMS = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u64);
    __type(value, u64);
} by_arg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, u64);
} by_pid SEC(".maps");

u64 hits[6] = {};
u64 arg_calls = 0, ret_calls = 0;
s64 arg_sum = 0, ret_sum = 0;

static __always_inline void bump(void *map, void *key)
{
    u64 one = 1, *n = bpf_map_lookup_elem(map, key);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

#define COUNTER(i) SEC("uprobe") int c##i(struct pt_regs *ctx) { __sync_fetch_and_add(&hits[i], 1); return 0; }
COUNTER(0)
COUNTER(1)
COUNTER(2)
COUNTER(3)
COUNTER(4)
COUNTER(5)

SEC("uprobe")
int sum_arg(struct pt_regs *ctx)
{
    __sync_fetch_and_add(&arg_calls, 1);
    __sync_fetch_and_add(&arg_sum, (s64)PT_REGS_PARM1(ctx));
    return 0;
}

SEC("uretprobe")
int sum_ret(struct pt_regs *ctx)
{
    __sync_fetch_and_add(&ret_calls, 1);
    __sync_fetch_and_add(&ret_sum, (s64)PT_REGS_RC(ctx));
    return 0;
}

static __always_inline int by_first_arg(struct pt_regs *ctx)
{
    u64 arg = (u32)PT_REGS_PARM1(ctx);
    bump(&by_arg, &arg);
    return 0;
}

SEC("uprobe")
int count_by_arg(struct pt_regs *ctx) { return by_first_arg(ctx); }

SEC("uprobe.multi")
int count_by_arg_multi(struct pt_regs *ctx) { return by_first_arg(ctx); }

SEC("uprobe")
int count_by_pid(struct pt_regs *ctx)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    bump(&by_pid, &tgid);
    return 0;
}
"""


def hits(b: BPF) -> list:
    return list(b.get_global("hits"))


def uprobe_links(b: BPF) -> list:
    return [lk for lk in b.links() if lk[0] in ("uprobe", "uretprobe")]


def test_uprobe_counts_calls_and_sums_an_argument(built, spawn):
    t = spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.exe), sym="bk_add", fn_name="sum_arg", pid=t.pid)
        t.cmd("add 100")
        assert b.get_global("arg_calls") == 100
        assert b.get_global("arg_sum") == sum(range(100))
        # The symbol libbpf would pick is the same: the link is named by it.
        assert uprobe_links(b) == [("uprobe", f"{built.exe}:bk_add", "sum_arg")]


def test_uretprobe_sees_every_return_value(built, spawn):
    t = spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        b.attach_uretprobe(name=str(built.exe), sym="bk_add", fn_name="sum_ret", pid=t.pid)
        t.cmd("add 64")
        assert b.get_global("ret_calls") == 64
        assert b.get_global("ret_sum") == sum(i + 1000 for i in range(64))


def test_sym_re_attaches_every_matching_function(built, spawn):
    t = spawn(built.exe)
    assert sorted(BPF.get_user_functions(str(built.exe), r"bk_re_")) == ["bk_re_alpha", "bk_re_beta", "bk_re_gamma"]
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.exe), sym_re=r"bk_re_", fn_name="count_by_arg", pid=t.pid)
        assert len(uprobe_links(b)) == 3
        assert b.num_open_uprobes() == 3
        # alpha is called with 1, beta with 2, gamma with 3, and bk_rx_delta (no match) with 4.
        t.cmd("re 3 5 7")
        assert {k.value: v.value for k, v in b["by_arg"].items()} == {1: 3, 2: 5, 3: 7}
        b.detach_uprobe(name=str(built.exe), sym_re=r"bk_re_")
        assert uprobe_links(b) == []
        t.cmd("re 1 1 1")
        assert {k.value: v.value for k, v in b["by_arg"].items()} == {1: 3, 2: 5, 3: 7}


def test_sym_re_with_a_multi_uprobe_program_makes_one_link(built, spawn):
    need("uprobe_multi")
    t = spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.exe), sym_re=r"bk_re_", fn_name="count_by_arg_multi", pid=t.pid)
        assert len(uprobe_links(b)) == 1 and b.num_open_uprobes() == 1
        t.cmd("re 3 5 7")
        assert {k.value: v.value for k, v in b["by_arg"].items()} == {1: 3, 2: 5, 3: 7}
        b.detach_uprobe(name=str(built.exe), sym_re=r"bk_re_")
        assert uprobe_links(b) == []
        t.cmd("re 1 1 1")
        assert {k.value: v.value for k, v in b["by_arg"].items()} == {1: 3, 2: 5, 3: 7}


def test_sym_re_matches_nothing():
    with BPF(text=PROGRAMS) as b:
        with pytest.raises(AttachError, match="matches /surely_no_such_fn_xyz/"):
            b.attach_uprobe(name="c", sym_re="surely_no_such_fn_xyz", fn_name="c0")


def test_addr_is_a_virtual_address_and_sym_off_an_offset_into_the_function(built, spawn):
    t = spawn(built.exe_nopie)
    add_vaddr, nops_vaddr = int(t.header[1], 16), int(t.header[2], 16)
    # In a non-PIE binary the virtual address is far from the file offset: using one for the
    # other would miss.
    add_offset = open_elf(built.exe_nopie).vaddr_to_offset(add_vaddr)
    assert add_offset is not None and add_offset != add_vaddr
    exe = str(built.exe_nopie)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=exe, addr=add_vaddr, fn_name="c0", pid=t.pid)
        # bk_nops starts with four one-byte nops: +2 is an instruction boundary inside it.
        b.attach_uprobe(name=exe, addr=nops_vaddr, sym_off=2, fn_name="c1", pid=t.pid)
        b.attach_uprobe(name=exe, sym="bk_nops", sym_off=2, fn_name="c2", pid=t.pid)
        b.attach_uprobe(name=exe, sym="bk_nops", fn_name="c3", pid=t.pid)
        t.cmd("add 25")
        t.cmd("nops 9")
        assert hits(b)[:4] == [25, 9, 9, 9]
        with pytest.raises(ValueError, match="past the end of bk_nops"):
            b.attach_uprobe(name=exe, sym="bk_nops", sym_off=4096, fn_name="c4")
        with pytest.raises(AttachError, match="not in an executable segment|no loaded segment"):
            b.attach_uprobe(name=exe, addr=0x10, fn_name="c4")
        b.detach_uprobe(name=exe, addr=add_vaddr, pid=t.pid)
        t.cmd("add 5")
        assert hits(b)[0] == 25


def test_uretprobe_refuses_a_place_inside_a_function(built):
    exe = str(built.exe_nopie)
    nops = next(s for s in open_elf(exe).functions() if s.name == "bk_nops")
    with BPF(text=PROGRAMS) as b:
        with pytest.raises(ValueError, match="function's entry"):
            b.attach_uretprobe(name=exe, sym="bk_nops", sym_off=2, fn_name="sum_ret")
        with pytest.raises(ValueError, match="inside bk_nops"):
            b.attach_uretprobe(name=exe, addr=nops.value + 2, fn_name="sum_ret")
        assert uprobe_links(b) == []


def test_pid_filter_leaves_other_processes_out(built, spawn):
    t1, t2 = spawn(built.exe), spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.exe), sym="bk_add", fn_name="c0", pid=t1.pid)
        b.attach_uprobe(name=str(built.exe), sym="bk_add", fn_name="count_by_pid")  # every process
        t1.cmd("add 10")
        t2.cmd("add 20")
        assert hits(b)[0] == 10
        assert {k.value: v.value for k, v in b["by_pid"].items()} == {t1.pid: 10, t2.pid: 20}


def test_library_a_running_process_dlopened_is_found_through_its_maps(built, spawn):
    t = spawn(built.dlopen_exe, built.libbkdl)
    with BPF(text=PROGRAMS) as b:
        # libbkdl is in no directory the dynamic linker knows: only the process's mappings have it.
        with pytest.raises(OSError, match="cannot find library"):
            b.attach_uprobe(name="bkdl", sym="bk_dl_fn", fn_name="sum_arg")
        b.attach_uprobe(name="libbkdl", sym="bk_dl_fn", fn_name="sum_arg", pid=t.pid)
        b.attach_uretprobe(name="bkdl", sym="bk_dl_fn", fn_name="sum_ret", pid=t.pid)
        assert {lk[1].split(":")[0] for lk in uprobe_links(b)} == {str(built.libbkdl)}
        t.cmd("call 40")
        assert (b.get_global("arg_calls"), b.get_global("arg_sum")) == (40, sum(range(40)))
        assert (b.get_global("ret_calls"), b.get_global("ret_sum")) == (40, sum(i + 3 for i in range(40)))
        b.detach_uprobe(name="bkdl", sym="bk_dl_fn", pid=t.pid)
        b.detach_uretprobe(name="bkdl", sym="bk_dl_fn", pid=t.pid)
        assert uprobe_links(b) == []


def test_versioned_symbols_pick_the_version_named_and_default_to_the_default_one(built, spawn):
    t = spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        for i, sym in enumerate(["bk_ver", "bk_ver@BKT_1", "bk_ver@@BKT_2", "bk_ver@BKT_2"]):
            b.attach_uprobe(name="bkt", sym=sym, fn_name=f"c{i}", pid=t.pid)
        # The target calls bk_ver (bound to the default, BKT_2) 11 times and bk_ver@BKT_1 4 times.
        t.cmd("ver 11 4")
        assert hits(b)[:4] == [11, 4, 11, 11]
        with pytest.raises(AttachError, match=r"no version BKT_9 of bk_ver.*bk_ver@@BKT_2.*bk_ver@BKT_1|"
                                              r"no version BKT_9 of bk_ver.*bk_ver@BKT_1.*bk_ver@@BKT_2"):
            b.attach_uprobe(name=str(built.libbkt), sym="bk_ver@BKT_9", fn_name="c4")


def test_indirect_function_is_probed_at_its_implementation(built, spawn):
    t = spawn(built.exe)
    functions = open_elf(built.libbkt).functions()
    impl = next(s for s in functions if s.name == "bk_ifunc_impl")
    resolver = next(s for s in functions if s.name == "bk_ifunc_resolver")
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.libbkt), sym="bk_ifunc", fn_name="sum_arg", pid=t.pid)
        (link,) = uprobe_links(b)
        assert link[1] == f"{built.libbkt}:{impl.value:#x}" != f"{built.libbkt}:{resolver.value:#x}"
        t.cmd("ifunc 17")
        assert (b.get_global("arg_calls"), b.get_global("arg_sum")) == (17, sum(range(17)))


def test_cxx_by_mangled_and_demangled_name(built, spawn):
    t = spawn(built.cxx)
    cxx = str(built.cxx)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=cxx, sym="_ZN4bkns5Klass6methodEi", fn_name="c0", pid=t.pid)
        b.attach_uprobe(name=cxx, sym="bkns::Klass::method(int)", fn_name="c1", pid=t.pid)
        b.attach_uprobe(name=cxx, sym="bkns::Klass::method( double )", fn_name="c2", pid=t.pid)
        b.attach_uprobe(name=cxx, sym_re=r"bkns::Klass::method\(", fn_name="c3", pid=t.pid)
        b.attach_uprobe(name=cxx, sym_re=r"_ZN4bkns5Klass6methodEd", fn_name="c4", pid=t.pid)
        t.cmd("int 9")
        t.cmd("dbl 4")
        assert hits(b)[:5] == [9, 9, 4, 13, 4]
        with pytest.raises(AttachError, match=r"ambiguous.*bkns::Klass::method\(double\).*bkns::Klass::method\(int\)"):
            b.attach_uprobe(name=cxx, sym="bkns::Klass::method", fn_name="c5")
        with pytest.raises(AttachError, match=r"no function symbol bkns::Klass::methd\(int\).*similar names: "
                                              r".*bkns::Klass::method\(int\)"):
            b.attach_uprobe(name=cxx, sym="bkns::Klass::methd(int)", fn_name="c5")


def test_avx_encoded_first_instruction_is_refused(built, caplog):
    exe = str(built.exe)
    evex = next(s for s in open_elf(exe).functions() if s.name == "bk_evex")
    with BPF(text=PROGRAMS) as b:
        for kw in (dict(sym="bk_evex"), dict(sym="bk_vex"), dict(addr=evex.value)):
            with pytest.raises(AttachError, match="AVX-encoded") as e:
                b.attach_uprobe(name=exe, fn_name="c0", **kw)
            assert e.value.errno == errno.EOPNOTSUPP
        # The instruction after it (vpbroadcastb is 6 bytes) is fine.
        b.attach_uprobe(name=exe, sym="bk_evex", sym_off=6, fn_name="c0")
        assert len(uprobe_links(b)) == 1
        # sym_re leaves such functions out, and says so.
        with caplog.at_level(logging.WARNING, logger="bpfkit"):
            b.attach_uprobe(name=exe, sym_re=r"bk_(evex|vex|add)$", fn_name="c1")
        assert len(uprobe_links(b)) == 2
        assert "bk_evex" in caplog.text and "bk_vex" in caplog.text
        with pytest.raises(AttachError, match="AVX-encoded first instruction: bk_evex"):
            b.attach_uprobe(name=exe, sym_re=r"bk_evex$", fn_name="c1")


def test_detach_works_for_every_attach_form(built, spawn):
    t = spawn(built.exe_nopie)
    d = spawn(built.dlopen_exe, built.libbkdl)
    c = spawn(built.cxx)
    exe, add_vaddr = str(built.exe_nopie), int(t.header[1], 16)
    forms = [
        ("uprobe", dict(name=exe, sym="bk_add", pid=t.pid)),
        ("uprobe", dict(name=exe, addr=add_vaddr, pid=t.pid)),
        ("uprobe", dict(name=exe, sym="bk_nops", sym_off=2, pid=t.pid)),
        ("uprobe", dict(name=exe, sym_re=r"bk_re_")),
        ("uprobe", dict(name=str(built.libbkt), sym="bk_ver@BKT_1")),
        ("uprobe", dict(name=str(built.libbkt), sym="bk_ifunc")),
        ("uprobe", dict(name="bkdl", sym="bk_dl_fn", pid=d.pid)),
        ("uprobe", dict(name=str(built.cxx), sym="bkns::Klass::method(int)")),
        ("uretprobe", dict(name=exe, sym="bk_add", pid=t.pid)),
        ("uretprobe", dict(name=str(built.cxx), sym="_ZN4bkns5Klass6methodEd")),
    ]
    with BPF(text=PROGRAMS) as b:
        for kind, kw in forms:
            fn = "sum_ret" if kind == "uretprobe" else "c0"
            getattr(b, f"attach_{kind}")(fn_name=fn, **kw)
            assert uprobe_links(b), (kind, kw)
            getattr(b, f"detach_{kind}")(**kw)
            assert uprobe_links(b) == [], (kind, kw)
            with pytest.raises(ValueError, match=f"no {kind} attached"):
                getattr(b, f"detach_{kind}")(**kw)
        # Detached means not called any more.
        t.cmd("add 3")
        t.cmd("re 1 1 1")
        t.cmd("ver 1 1")
        t.cmd("ifunc 1")
        t.cmd("nops 1")
        d.cmd("call 2")
        c.cmd("int 2")
        c.cmd("dbl 2")
        assert hits(b)[0] == 0 and b.get_global("ret_calls") == 0
        # A mangled attach is detached by the demangled name: both name one place.
        b.attach_uprobe(name=str(built.cxx), sym="_ZN4bkns5Klass6methodEi", fn_name="c0")
        b.detach_uprobe(name=str(built.cxx), sym="bkns::Klass::method(int)")
        assert uprobe_links(b) == []


def test_pid_specific_detach_leaves_other_pids_attached(built, spawn):
    t1, t2 = spawn(built.exe), spawn(built.exe)
    with BPF(text=PROGRAMS) as b:
        b.attach_uprobe(name=str(built.exe), sym="bk_add", fn_name="count_by_pid", pid=t1.pid)
        b.attach_uprobe(name=str(built.exe), sym="bk_add", fn_name="count_by_pid", pid=t2.pid)
        b.detach_uprobe(name=str(built.exe), sym="bk_add", pid=t1.pid)
        t1.cmd("add 5")
        t2.cmd("add 6")
        assert {k.value: v.value for k, v in b["by_pid"].items()} == {t2.pid: 6}


def test_argument_errors_name_what_is_missing(built):
    with BPF(text=PROGRAMS) as b:
        with pytest.raises(ValueError, match="fn_name"):
            b.attach_uprobe(name="c", sym="getpid")
        with pytest.raises(ValueError, match="sym=, sym_re= or addr="):
            b.attach_uprobe(name="c", fn_name="c0")
        with pytest.raises(AttachError, match="no function symbol bk_ad in .*similar names: bk_add"):
            b.attach_uprobe(name=str(built.exe), sym="bk_ad", fn_name="c0")
        with pytest.raises(ValueError, match="no uprobe attached"):
            b.detach_uprobe(name=str(built.exe), sym="bk_add")
        assert uprobe_links(b) == []


def test_elf_reader_agrees_with_readelf(built):
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is the reference"
    out = subprocess.run([readelf, "-W", "--dyn-syms", "--syms", str(built.libbkt)], capture_output=True,
                         text=True, check=True).stdout
    ref = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":") and f[3] in ("FUNC", "IFUNC") and f[6] != "UND":
            ref.add((f[7], int(f[1], 16), int(f[2], 0), f[3] == "IFUNC", f[4].lower()))
    mine = {(s.versioned_name, s.value, s.size, s.is_ifunc, s.bind) for s in open_elf(built.libbkt).functions()}
    assert mine == ref
    assert {m[0] for m in mine} >= {"bk_ver@BKT_1", "bk_ver@@BKT_2", "bk_ifunc@@BKT_2", "bk_ifunc_impl"}
    assert ("bk_ifunc@@BKT_2", True) in {(m[0], m[3]) for m in mine}
    # Segments: the same file offsets readelf shows for the non-PIE binary's loadable segments.
    out = subprocess.run([readelf, "-W", "-l", str(built.exe_nopie)], capture_output=True, text=True, check=True).stdout
    ref_loads = [(int(m[0], 16), int(m[1], 16)) for m in re.findall(r"LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", out)]
    assert [(s.offset, s.vaddr) for s in open_elf(built.exe_nopie).segments] == ref_loads



def test_uprobes_opened_before_the_program_loads_count_the_same(built, spawn):
    """open_uprobes() registers the probes before any program exists (what a tool does while its
    object loads); attach_opened_uprobes() then gives them to a program: the same links and
    counts as attach_uprobe(). Unused ones close; an opened uprobe is used once."""
    from bpfkit._attach_user import open_uprobes

    t = spawn(built.exe)
    before = perf_event_fds()
    enter = open_uprobes(str(built.exe), sym="bk_add", pid=t.pid)
    leave = open_uprobes(str(built.exe), sym="bk_add", pid=t.pid, retprobe=True)
    spare = open_uprobes(str(built.exe), sym_re=r"bk_re_", pid=t.pid)
    try:
        assert len(enter) == len(leave) == 1 and len(spare) == 3 and perf_event_fds() == before + 5
        with BPF(text=PROGRAMS) as b:
            b.attach_opened_uprobes("sum_arg", enter)
            b.attach_opened_uprobes("sum_ret", leave)
            t.cmd("add 50")
            assert (b.get_global("arg_calls"), b.get_global("arg_sum")) == (50, sum(range(50)))
            assert (b.get_global("ret_calls"), b.get_global("ret_sum")) == (50, sum(i + 1000 for i in range(50)))
            assert uprobe_links(b) == [("uprobe", f"{built.exe}:bk_add", "sum_arg"),
                                       ("uretprobe", f"{built.exe}:bk_add", "sum_ret")]
            with pytest.raises(ValueError, match="already attached or closed"):
                b.attach_opened_uprobes("c0", enter)
            for o in spare:
                o.close()
            assert perf_event_fds() == before + 2
        assert perf_event_fds() == before
    finally:
        for o in enter + leave + spare:
            o.close()


def test_an_opened_uprobe_of_a_missing_symbol_or_library_is_refused_before_anything_loads(built):
    from bpfkit._attach_user import open_uprobes

    with pytest.raises(AttachError):
        open_uprobes(str(built.exe), sym="no_such_function_here")
    with pytest.raises(OSError):
        open_uprobes("/no/such/library.so", sym="f")
