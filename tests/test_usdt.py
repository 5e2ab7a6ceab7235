"""USDT probes on a test program built here with sys/sdt.h (tests/targets/usdt_target.c): the
probes listed from its .note.stapsdt notes (checked against readelf), exact counts and argument
sums through BCC's bpf_usdt_readarg and libbpf's BPF_USDT, with a pid filter and binary-wide, a
probe found by name alone, a probe behind a semaphore, a probe in a library the process loaded,
and the errors for probes that are missing or ambiguous."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfkit import BPF, USDT, AttachError
from bpfkit.usdt import USDTProbeNotFoundError

from ._target import spawner

TARGETS = Path(__file__).resolve().parent / "targets"


@dataclass
class Built:
    exe: Path
    lib: Path


def _have_sdt_h(gcc: str) -> bool:
    r = subprocess.run([gcc, "-E", "-x", "c", "-"], input="#include <sys/sdt.h>\n", capture_output=True, text=True)
    return r.returncode == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    gcc = shutil.which("gcc")
    assert gcc, "gcc builds the test target (make deps installs it)"
    if not _have_sdt_h(gcc):
        pytest.skip("sys/sdt.h is missing: apt-get install systemtap-sdt-dev")
    d = tmp_path_factory.mktemp("usdt_targets")
    subprocess.run([gcc, "-O2", "-g", "-shared", "-fPIC", "-o", str(d / "libbkusdt.so"), str(TARGETS / "libbkusdt.c")],
                   check=True)
    subprocess.run([gcc, "-O2", "-g", "-o", str(d / "usdt_target"), str(TARGETS / "usdt_target.c"),
                    str(TARGETS / "usdt_gated.c"), f"-L{d}", "-lbkusdt", f"-Wl,-rpath,{d}"], check=True)
    return Built(d / "usdt_target", d / "libbkusdt.so")


@pytest.fixture
def spawn(built):
    for start in spawner():
        yield lambda start=start: start(built.exe)


PROGRAMS = r"""
struct stats {
    u64 n;
    s64 a, b, c;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, struct stats);
} bcc_style SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, struct stats);
} libbpf_style SEC(".maps");

u64 gated_n = 0, lib_n = 0, other_n = 0;
s64 lib_sum = 0;

static __always_inline void add(void *map, s64 a, s64 b, s64 c)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct stats zero = {}, *s = bpf_map_lookup_elem(map, &tgid);
    if (!s) {
        bpf_map_update_elem(map, &tgid, &zero, BPF_NOEXIST);
        s = bpf_map_lookup_elem(map, &tgid);
        if (!s)
            return;
    }
    __sync_fetch_and_add(&s->n, 1);
    __sync_fetch_and_add(&s->a, a);
    __sync_fetch_and_add(&s->b, b);
    __sync_fetch_and_add(&s->c, c);
}

/* BCC's way: arguments counted from 1, read into a variable of any integer type. */
SEC("usdt")
int tick_bcc(struct pt_regs *ctx)
{
    int i = 0;
    long t = 0, m = 0;
    bpf_usdt_readarg(1, ctx, &i);
    bpf_usdt_readarg(2, ctx, &t);
    bpf_usdt_readarg(3, ctx, &m);
    add(&bcc_style, i, t, m);
    return 0;
}

/* libbpf's way: the arguments as typed parameters. */
SEC("usdt")
int BPF_USDT(tick_libbpf, int i, long t, int m)
{
    add(&libbpf_style, i, t, m);
    return 0;
}

SEC("usdt")
int BPF_USDT(on_gated, long i)
{
    __sync_fetch_and_add(&gated_n, 1);
    return 0;
}

SEC("usdt")
int BPF_USDT(on_lib, long i)
{
    __sync_fetch_and_add(&lib_n, 1);
    __sync_fetch_and_add(&lib_sum, i);
    return 0;
}

SEC("usdt")
int on_other(struct pt_regs *ctx)
{
    __sync_fetch_and_add(&other_n, 1);
    return 0;
}
"""


def stats(b: BPF, table: str) -> dict:
    return {k.value: (v.n, v.a, v.b, v.c) for k, v in b[table].items()}


def expect(k: int) -> tuple:
    """What bkprov:tick, fired k times with (i, 3 * i, -7), sums to."""
    return (k, sum(range(k)), 3 * sum(range(k)), -7 * k)


def test_usdt_program_compiles_without_extra_flags():
    # libbpf's usdt.bpf.h includes <linux/errno.h>: bpfkit embeds one, so the host's (which
    # reaches for <asm/errno.h>, absent for -target bpf) is never needed.
    BPF(text=PROGRAMS, autoattach=False).close()


def test_enumerate_probes_of_a_binary_matches_readelf(built):
    probes = {p.full_name: p for p in USDT(path=str(built.exe)).enumerate_probes()}
    assert set(probes) == {"bkprov:tick", "bkother:tick", "bkprov:gated"}
    tick, gated = probes["bkprov:tick"], probes["bkprov:gated"]
    assert tick.bin_path == str(built.exe) and tick.provider == "bkprov" and tick.name == "tick"
    assert (tick.num_locations, tick.num_arguments) == (1, 3)
    assert tick.semaphore == 0 and gated.semaphore != 0
    u = USDT(path=str(built.exe))
    assert [u.get_probe_arg_ctype("bkprov:tick", i) for i in range(3)] == ["int32_t", "int64_t", "int32_t"]
    # readelf -n is the reference for locations, semaphores and argument specifications.
    notes = subprocess.run(["readelf", "-n", str(built.exe)], capture_output=True, text=True, check=True).stdout
    ref = {}
    for m in re.finditer(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: 0x[0-9a-f]+, "
                         r"Semaphore: (0x[0-9a-f]+)\s+Arguments: ([^\n]*)", notes):
        ref[f"{m[1]}:{m[2]}"] = (int(m[3], 16), int(m[4], 16), m[5].strip())
    assert {n: (p.locations[0].address, p.semaphore, p.locations[0].args) for n, p in probes.items()} == ref


def test_enumerate_probes_of_a_process_includes_its_libraries(built, spawn):
    t = spawn()
    probes = {(p.full_name, p.bin_path) for p in USDT(pid=t.pid).enumerate_probes()}
    assert ("bklib:libtick", str(built.lib)) in probes
    assert ("bkprov:tick", str(built.exe)) in probes


def test_pid_filtered_probe_counts_exact_arguments(built, spawn):
    t1, t2 = spawn(), spawn()
    u = USDT(pid=t1.pid)
    u.enable_probe(probe="bkprov:tick", fn_name="tick_bcc")
    u.enable_probe(probe="bkprov:tick", fn_name="tick_libbpf")
    with BPF(text=PROGRAMS, usdt_contexts=[u]) as b:
        assert [(k, tgt) for k, tgt, _p in b.links() if k == "usdt"] == [("usdt", f"{built.exe}:bkprov:tick")] * 2
        t1.cmd("tick 50")
        t2.cmd("tick 30")
        assert stats(b, "bcc_style") == {t1.pid: expect(50)}
        assert stats(b, "libbpf_style") == {t1.pid: expect(50)}


def test_attach_usdt_ignore_pid_counts_every_process(built, spawn):
    t1, t2 = spawn(), spawn()
    u = USDT(pid=t1.pid)
    u.enable_probe(probe="bkprov:tick", fn_name="tick_libbpf")
    with BPF(text=PROGRAMS, usdt_contexts=[u], attach_usdt_ignore_pid=True) as b:
        t1.cmd("tick 6")
        t2.cmd("tick 4")
        assert stats(b, "libbpf_style") == {t1.pid: expect(6), t2.pid: expect(4)}


def test_binary_wide_probe_counts_every_process(built, spawn):
    t1, t2 = spawn(), spawn()
    u = USDT(path=str(built.exe))
    u.enable_probe("bkprov:tick", "tick_libbpf")
    u.enable_probe("bkprov:tick", "tick_bcc")
    with BPF(text=PROGRAMS, usdt_contexts=[u]) as b:
        t1.cmd("tick 12")
        t2.cmd("tick 7")
        t1.cmd("other 5")  # the same name under another provider: not enabled
        assert stats(b, "libbpf_style") == {t1.pid: expect(12), t2.pid: expect(7)}
        assert stats(b, "bcc_style") == {t1.pid: expect(12), t2.pid: expect(7)}
        assert b.get_global("other_n") == 0


def test_probe_by_name_alone_and_its_semaphore(built, spawn):
    t = spawn()
    # Nobody attached: the semaphore is 0 and the target skips the probe.
    assert t.ask("gated 5") == "0"
    u = USDT(pid=t.pid)
    u.enable_probe("gated", "on_gated")  # the provider, bkprov, is found from the notes
    with BPF(text=PROGRAMS, usdt_contexts=[u]) as b:
        assert t.ask("gated 8") == "8"
        assert b.get_global("gated_n") == 8
    # Detached: the kernel counted the semaphore back down.
    assert t.ask("gated 3") == "0"


def test_probe_in_a_library_the_process_loaded(built, spawn):
    t = spawn()
    u = USDT(pid=t.pid)
    u.enable_probe("libtick", "on_lib")
    u.enable_probe("bkother:tick", "on_other")
    assert {(p, fn) for p, fn, _a, _pid in u.enumerate_active_probes()} == {
        (str(built.lib), "on_lib"), (str(built.exe), "on_other")}
    with BPF(text=PROGRAMS, usdt_contexts=[u]) as b:
        t.cmd("lib 6")
        t.cmd("other 4")
        assert (b.get_global("lib_n"), b.get_global("lib_sum")) == (6, sum(100 + i for i in range(6)))
        assert b.get_global("other_n") == 4


def test_missing_and_ambiguous_probes_say_what_there_is(built, spawn):
    u = USDT(path=str(built.exe))
    with pytest.raises(USDTProbeNotFoundError) as e:
        u.enable_probe("no_such_probe", "on_other")
    assert isinstance(e.value, AttachError) and isinstance(e.value, ValueError)
    msg = str(e.value)
    assert "no_such_probe" in msg and str(built.exe) in msg
    assert "bkprov:tick" in msg and "bkother:tick" in msg and "bkprov:gated" in msg
    with pytest.raises(USDTProbeNotFoundError, match=r"tick is ambiguous.*bkother:tick, bkprov:tick"):
        u.enable_probe("tick", "tick_bcc")
    with pytest.raises(USDTProbeNotFoundError, match="no USDT probe bkprov:libtick"):
        u.enable_probe("bkprov:libtick", "on_lib")
    with pytest.raises(USDTProbeNotFoundError, match=r"/bin/true.*no USDT probes"):
        USDT(path="/bin/true").enable_probe("x", "on_other")
    with pytest.raises(ValueError, match="pid= or path="):
        USDT()
    with pytest.raises(AttachError, match="no process"):
        USDT(pid=2**22 + 12345)
    with pytest.raises(OSError):
        USDT(path="/nonexistent/binary")


def test_enable_probe_or_bail_exits_with_the_reason(built, capsys):
    with pytest.raises(SystemExit) as e:
        USDT(path=str(built.exe)).enable_probe_or_bail("no_such_probe", "on_other")
    assert e.value.code == 1
    assert "no_such_probe" in capsys.readouterr().err


def test_unknown_program_fails_the_load_and_leaves_nothing(built):
    u = USDT(path=str(built.exe))
    u.enable_probe("bkprov:tick", "tick_bcc")
    u.enable_probe("bkprov:gated", "no_such_program")
    with pytest.raises((ValueError, AttachError), match="no_such_program"):
        BPF(text=PROGRAMS, usdt_contexts=[u])


BCC_DIALECT = r"""
#include <uapi/linux/ptrace.h>
struct sums_t { u64 n; s64 a; s64 b; s64 c; };
BPF_HASH(sums, u32, struct sums_t);

int on_tick(struct pt_regs *ctx)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    int i = 0;
    long t = 0, m = 0;
    struct sums_t zero = {}, *s;
    bpf_usdt_readarg(1, ctx, &i);
    bpf_usdt_readarg(2, ctx, &t);
    bpf_usdt_readarg(3, ctx, &m);
    s = sums.lookup_or_try_init(&tgid, &zero);
    if (s) {
        s->n += 1;
        s->a += i;
        s->b += t;
        s->c += m;
    }
    return 0;
}
"""


def test_a_bcc_dialect_usdt_program_reads_the_arguments(built, spawn):
    """BCC's own form: a function taking `struct pt_regs *ctx` that reads its arguments with
    bpf_usdt_readarg, enabled through a USDT context: the translator makes it a USDT program."""
    t = spawn()
    u = USDT(pid=t.pid)
    u.enable_probe(probe="bkprov:tick", fn_name="on_tick")
    with BPF(text=BCC_DIALECT, usdt_contexts=[u]) as b:
        t.cmd("tick 40")
        assert {k.value: (v.n, v.a, v.b, v.c) for k, v in b["sums"].items()} == {t.pid: expect(40)}
