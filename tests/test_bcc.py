"""BCC's C dialect (rust/core/bcc.rs, rust/bpf/bcc/helpers.h): programs written for BCC compile
on CO-RE and count, submit and histogram what a workload did, against the real kernel."""

from __future__ import annotations

import ctypes as ct
import io
import os
import tempfile
import time
import uuid

import pytest
from bpfkit import BPF, CompileError, _native

PID = os.getpid()


def test_a_bcc_program_is_recognised_and_a_libbpf_one_is_not():
    assert _native.is_bcc("#include <uapi/linux/ptrace.h>\nBPF_HASH(counts, u32);\n")
    assert not _native.is_bcc('SEC("tracepoint/syscalls/sys_enter_getppid")\nint f(void *c) { return 0; }\n')


STRING_KEYS = r"""
typedef struct { char op[16]; } op_key_t;
BPF_HASH(calls, op_key_t, u64);

/* As BCC's ext4dist does: a string literal copied whole into a fixed-size key. Inlined (as BCC's
 * helpers are), the copy is of a constant; called, it would read past the literal. */
static int count(const char *op)
{
    op_key_t key = {};
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    __builtin_memcpy(&key.op, op, sizeof(key.op));
    calls.increment(key);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return count("getppid"); }
TRACEPOINT_PROBE(syscalls, sys_enter_getpgid) { return count("getpgid"); }
"""


def test_static_helpers_are_inlined_so_string_literals_copy_into_keys():
    with BPF(text=STRING_KEYS, cflags=[f"-DTARGET={PID}"]) as b:
        for _ in range(3):
            os.getppid()
        for _ in range(2):
            os.getpgid(0)
        got: dict = {}
        for k, v in b["calls"].items():
            op = bytes(k.op).split(b"\0", 1)[0]
            got[op] = got.get(op, 0) + v.value
    assert got == {b"getppid": 3, b"getpgid": 2}


def test_maps_methods_and_tracepoint_probe_count_the_calls_made():
    """BPF_HASH with its defaults, increment() with a key by value and with a step, BPF_ARRAY's
    lookup() and BPF_TABLE("percpu_array"), in a TRACEPOINT_PROBE, includes as BCC writes them."""
    src = r"""
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

BPF_HASH(counts, u32);
BPF_HASH(steps);
BPF_ARRAY(last, u64, 1);
BPF_TABLE("percpu_array", int, u64, per_cpu, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    int zero = 0;
    u64 *slot;

    if (pid != TARGET)
        return 0;
    counts.increment(pid);
    steps.increment((u64)args->__syscall_nr, 10);
    slot = last.lookup(&zero);
    if (slot)
        *slot = bpf_ktime_get_ns();
    slot = per_cpu.lookup(&zero);
    if (slot)
        *slot += 1;
    return 0;
}
"""
    with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
        for _ in range(7):
            os.getppid()
        assert b["counts"][ct.c_uint32(PID)].value == 7
        (nr, total), = [(k.value, v.value) for k, v in b["steps"].items()]
        assert total == 70 and nr > 0
        assert b["last"][0].value > 0
        assert sum(b["per_cpu"][0]) == 7


def test_perf_output_submits_what_the_workload_opened():
    src = r"""
struct data_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
    char path[128];
};
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    struct data_t data = {};

    data.pid = bpf_get_current_pid_tgid() >> 32;
    if (data.pid != TARGET)
        return 0;
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    bpf_probe_read_user_str(&data.path, sizeof(data.path), args->filename);
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}
"""
    marker = os.path.join(tempfile.gettempdir(), f"bpfkit-bcc-{uuid.uuid4().hex[:8]}")
    seen: list = []
    with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
        b["events"].open_perf_buffer(lambda _cpu, data, _size: seen.append(b["events"].event(data)))
        for _ in range(3):
            try:
                open(marker).close()
            except FileNotFoundError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(e.path.decode() == marker for e in seen) < 3:
            b.perf_buffer_poll(100)
    hits = [e for e in seen if e.path.decode() == marker]
    assert len(hits) == 3 and all(e.pid == PID for e in hits)


def test_histogram_increment_and_print_log2_hist():
    """BPF_HISTOGRAM(dist) is an int-keyed array of 64 slots, as BCC makes it: bpf_log2l() of
    each getppid() number of calls so far lands in its slot."""
    src = r"""
BPF_HISTOGRAM(dist);
BPF_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    int zero = 0;
    u64 *n;

    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    n = calls.lookup(&zero);
    if (!n)
        return 0;
    *n += 1;
    dist.increment(bpf_log2l(*n));
    return 0;
}
"""
    with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
        for _ in range(10):
            os.getppid()
        slots = {k.value: v.value for k, v in b["dist"].items() if v.value}
        out = io.StringIO()
        b["dist"].print_log2_hist("calls", file=out)
    # 1 -> slot 1; 2,3 -> slot 2; 4..7 -> slot 3; 8..10 -> slot 4
    assert slots == {1: 1, 2: 2, 3: 4, 4: 3}
    assert "calls" in out.getvalue() and "|" in out.getvalue()


def test_increment_loses_no_count_when_two_cpus_make_the_same_key_at_once():
    """map.increment(key) on a key not yet in the map, from two CPUs at the same moment: both
    find it missing, one inserts it first, and the other's count must still be added (BCC's
    increment inserts a zero and adds atomically). Two children pinned to different CPUs call
    getppid() in a loop; the key is the time in 16-microsecond windows, so their calls meet on a
    fresh key thousands of times. The counts must add up to the calls made."""
    import subprocess
    import sys

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: two increments cannot meet on a fresh key")
    calls = 30000
    src = r"""
BPF_HASH(counts, u64, u64, 1000000);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    if (bpf_get_current_uid_gid() >> 32 != MARK)
        return 0;
    counts.increment(bpf_ktime_get_ns() >> 14);
    return 0;
}
"""
    mark = 424242  # the children's gid: only their calls count
    child = ("import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nos.setgid(%d)\n"
             "sys.stdin.readline()\nfor _ in range(%d):\n    os.getppid()\n" % (mark, calls))
    with BPF(text=src, cflags=[f"-DMARK={mark}"]) as b:
        kids = [subprocess.Popen([sys.executable, "-c", child, str(cpu)], stdin=subprocess.PIPE, text=True)
                for cpu in cpus[:2]]
        time.sleep(0.3)  # both have started and wait
        for k in kids:
            assert k.stdin is not None
            k.stdin.write("go\n")
            k.stdin.flush()
        assert all(k.wait(timeout=60) == 0 for k in kids)
        values = [v.value for v in b["counts"].values()]
    assert sum(values) == 2 * calls, (sum(values), len(values))


def test_a_function_taking_registers_attaches_as_a_uprobe_by_name():
    """BCC loads any function whose context is `struct pt_regs *` as a program for
    attach_uprobe(fn_name=...); arguments named after ctx are read from the registers."""
    src = r"""
BPF_ARRAY(seen, u64, 2);

int on_atoi(struct pt_regs *ctx, const char *s)
{
    int zero = 0;
    u64 *n = seen.lookup(&zero);
    char first = 0;

    bpf_probe_read_user(&first, 1, s);
    if (n && first == 'Q')
        __sync_fetch_and_add(n, 1);
    return 0;
}
"""
    libc = ct.CDLL(None)
    with BPF(text=src) as b:
        b.attach_uprobe(name="c", sym="atoi", fn_name="on_atoi", pid=PID)
        for _ in range(5):
            libc.atoi(b"Quick")
        libc.atoi(b"12")
        assert b["seen"][0].value == 5


def test_what_cannot_be_translated_names_the_users_line():
    with pytest.raises(CompileError, match=r"<text>:4: error: counts\.frobnicate\(\)"):
        BPF(text="BPF_HASH(counts);\n\nint kprobe__x(struct pt_regs *ctx) {\n  counts.frobnicate(1);\n  return 0;\n}\n")
    with pytest.raises(CompileError, match=r"no such tracepoint"):
        BPF(text="TRACEPOINT_PROBE(nosuch, event) { return 0; }\n")
    with pytest.raises(CompileError, match=r"<text>:3:\d+: error: use of undeclared identifier 'nope'"):
        BPF(text="BPF_HASH(counts);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n  return nope;\n}\n")
    with pytest.raises(CompileError, match=r"'nosuch/header\.h' file not found"):
        BPF(text="#include <nosuch/header.h>\nBPF_HASH(counts);\n")


def test_python_m_bpfkit_bcc_runs_a_bcc_program_as_it_is(tmp_path):
    """A program written for BCC (import bcc, bcc.utils.printb) runs unchanged through the
    runner, and nothing named bcc is importable outside it."""
    import subprocess
    import sys

    script = tmp_path / "count_getppid.py"
    script.write_text(r'''
import os
from bcc import BPF
from bcc.utils import printb
import bcc.table

b = BPF(text="""
#include <uapi/linux/ptrace.h>
BPF_HASH(calls, u32);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    calls.increment(pid);
    return 0;
}
""")
for _ in range(9):
    os.getppid()
printb(b"calls %d" % b["calls"][b["calls"].Key(os.getpid())].value)
''')
    r = subprocess.run([sys.executable, "-m", "bpfkit.bcc", str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "calls 9"
    # Outside the runner, `bcc` is not bpfkit's (it is BCC's own where BCC is installed, or none).
    code = "import importlib.util as u; s = u.find_spec('bcc'); print(s.origin if s else None)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "bpfkit" not in r.stdout, r.stdout


BCC_EXAMPLES = "/usr/share/doc/bpfcc-tools/examples"


def test_bccs_own_strlen_count_example_runs_unchanged_and_counts_the_calls(tmp_path):
    """examples/tracing/strlen_count.py as Debian's bpfcc-tools installs it (never copied here),
    run through python -m bpfkit.bcc: a uprobe on libc's strlen (an indirect function, probed at
    the implementation this machine picks) counts this process's calls by string."""
    import signal
    import subprocess
    import sys

    example = f"{BCC_EXAMPLES}/tracing/strlen_count.py"
    assert os.path.exists(example), "make deps installs bpfcc-tools (APT_TEST), whose examples these are"
    p = subprocess.Popen([sys.executable, "-m", "bpfkit.bcc", example], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert "Tracing strlen()" in first, first + (p.stderr.read() if p.poll() is not None else "")
        marker = f"bpfkit-strlen-{uuid.uuid4().hex[:12]}".encode()
        # The example reads 80 bytes from each string: a buffer that long keeps the read in bounds.
        buf = ct.create_string_buffer(marker, 128)
        libc = ct.CDLL(None)
        for _ in range(6):
            libc.strlen(buf)
        time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    rows = [line.split(None, 1) for line in out.splitlines() if marker.decode() in line]
    assert rows == [["6", f'"{marker.decode()}"']], out[-2000:]


IMPLICIT_READS = r"""
#include <linux/sched.h>

struct seen_t { u32 ppid; u32 tgid; u32 tgid2; u32 reset_on_fork; char leader[TASK_COMM_LEN]; };
BPF_HASH(seen, u32, struct seen_t);
BPF_HASH(parents, u32, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct seen_t s = {};

    if (task->real_parent->tgid != TARGET)   /* a chain of two reads, in a condition */
        return 0;
    s.ppid = task->real_parent->tgid;
    s.tgid = task->tgid;
    s.reset_on_fork = task->sched_reset_on_fork;   /* a bitfield */
    bpf_probe_read(&s.tgid2, sizeof(s.tgid2), &task->tgid);   /* the legacy helper on kernel memory */
    bpf_probe_read_kernel_str(&s.leader, sizeof(s.leader), task->group_leader->comm);
    seen.update(&pid, &s);
    parents.increment(task->real_parent->tgid);   /* a read in a method's argument */
    return 0;
}
"""


def test_implicit_kernel_reads_become_probe_reads_and_read_the_right_fields():
    """BCC's `task->real_parent->tgid` in a program that was handed a kernel pointer: each load
    through it is rewritten (from clang's AST) into a CO-RE-relocated bpf_probe_read_kernel, so
    the verifier accepts it and the values are the kernel's: the children's parent (this
    process), their own pid (also through the legacy bpf_probe_read, which becomes its kernel
    form), the reset-on-fork bit one of them set (a bitfield) and the name of their thread
    group's leader."""
    import subprocess
    import sys

    translated = _native.bcc_translate(IMPLICIT_READS, "<text>", cflags=[f"-DTARGET={PID}"])
    assert "__bcc_rd(__bcc_rd(task->real_parent)->tgid)" in translated
    assert "__bcc_rdbf(task, sched_reset_on_fork)" in translated
    assert "__bcc_rd(task->group_leader)->comm" in translated  # an array member's address: no load
    assert "bpf_probe_read_kernel(&s.tgid2, sizeof(s.tgid2), &task->tgid)" in translated
    child = ("import os, sys\n"
             "if sys.argv[1] == 'reset':\n"
             "    os.sched_setscheduler(0, os.SCHED_BATCH | 0x40000000, os.sched_param(0))\n"
             "os.getppid()\n")
    with BPF(text=IMPLICIT_READS, cflags=[f"-DTARGET={PID}"]) as b:
        kids = {mode: subprocess.Popen([sys.executable, "-c", child, mode]) for mode in ("reset", "plain")}
        assert all(p.wait() == 0 for p in kids.values())
        seen = {k.value: v for k, v in b["seen"].items()}
        assert set(seen) == {p.pid for p in kids.values()}
        for mode, p in kids.items():
            s = seen[p.pid]
            assert (s.ppid, s.tgid, s.tgid2) == (PID, p.pid, p.pid)
            assert s.reset_on_fork == (mode == "reset"), mode
            # A single-threaded child leads its own group: its name is the executable's.
            assert s.leader == os.path.basename(sys.executable)[:15].encode(), s.leader
        assert {k.value: v.value for k, v in b["parents"].items()} == {PID: 2}


def test_a_translation_is_cached_and_a_compile_error_names_the_users_line(tmp_path):
    """The translation (with its clang pass) is kept in the cache: the second time, nothing
    runs, and a C error in a BCC program is clang's message on the user's own line."""
    src = IMPLICIT_READS.replace("TARGET", "1")
    cache = str(tmp_path / "cache")
    t0 = time.perf_counter()
    first = _native.bcc_translate(src, "prog.c", cache_dir=cache)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert _native.bcc_translate(src, "prog.c", cache_dir=cache) == first
    assert time.perf_counter() - t0 < cold  # no clang the second time
    blobs = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.read_bytes() == first.encode()]
    assert blobs, "the translation is a cache entry"
    bad = src.replace("s.tgid = task->tgid;", "s.tgid = task->no_such_field;")
    with pytest.raises(CompileError) as e:
        _native.bcc_translate(bad, "prog.c", cache_dir=cache)
    line = 1 + src.splitlines().index("    s.tgid = task->tgid;")
    assert f"prog.c:{line}:" in str(e.value) and "no_such_field" in str(e.value), str(e.value)


def test_kprobe_on_a_syscall_function_runs_as_its_tracepoint_without_kprobes():
    """`kprobe__sys_getppid` and `kretprobe__sys_getppid`, BCC's names for kprobes on the
    kernel's syscall function: with kprobes they attach there; on a kernel without them (this
    one) they become the syscall's sys_enter and sys_exit tracepoints, and PT_REGS_RC reads the
    return value from sys_exit."""
    src = r"""
#include <uapi/linux/ptrace.h>
BPF_HASH(calls, u32);
BPF_HASH(rets, u32);
int kprobe__sys_getppid(struct pt_regs *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == TARGET)
        calls.increment(pid);
    return 0;
}
int kretprobe__sys_getppid(struct pt_regs *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 ret = PT_REGS_RC(ctx);
    if (pid == TARGET)
        rets.increment(pid, ret);
    return 0;
}
"""
    kprobes = _native.kprobes_unavailable() is None
    with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
        kinds = sorted(lk.kind for lk in b._obj.links())
        assert kinds == (["kprobe", "kretprobe"] if kprobes else ["tracepoint", "tracepoint"]), kinds
        for _ in range(3):
            os.getppid()
        assert b["calls"][ct.c_uint32(PID)].value == 3
        assert b["rets"][ct.c_uint32(PID)].value == 3 * os.getppid()


def test_table_pinned_is_pinned_where_asked_and_shared_by_the_next_program(tmp_path):
    """BPF_TABLE_PINNED: the table is pinned at the program's path and stays pinned after
    close (as the program asked); a second program with the same declaration uses the pinned
    map, so it sees what the first counted. BPF_ARRAY_OF_MAPS names its inner map by string."""
    path = f"/sys/fs/bpf/bpfkit-test-{uuid.uuid4().hex[:12]}"
    src = r"""
BPF_TABLE_PINNED("hash", u32, u64, counts, 64, "PATH");
BPF_ARRAY(inner, u64, 4);
BPF_ARRAY_OF_MAPS(outer, "inner", 2);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == TARGET)
        counts.increment(pid);
    return 0;
}
""".replace("PATH", path)
    try:
        with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
            for _ in range(4):
                os.getppid()
            assert b["counts"][ct.c_uint32(PID)].value == 4
            b["outer"][1] = b["inner"]  # an array of maps whose values are maps like `inner`
            assert [k.value for k, _ in b["outer"].items()] == [1]
        assert os.path.exists(path), "the pin stays after close"
        with BPF(text=src, cflags=[f"-DTARGET={PID}"]) as b:
            os.getppid()
            assert b["counts"][ct.c_uint32(PID)].value == 5, "the second program uses the pinned map"
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_kernel_struct_has_field_reads_the_kernels_btf():
    """BPF.kernel_struct_has_field, as BCC's biosnoop asks it: a member of the running kernel's
    struct, one only reachable through an anonymous member, one it does not have, and a struct
    it does not have; bytes or str."""
    from bpfkit.bcc import BPF as BccBPF

    assert BPF.kernel_struct_has_field("task_struct", "pid")
    assert BccBPF.kernel_struct_has_field(b"sock", b"__sk_common")
    assert BPF.kernel_struct_has_field("sk_buff", "len")
    # struct sk_buff's `next` sits inside an anonymous union of anonymous structs.
    assert BPF.kernel_struct_has_field("sk_buff", "next")
    assert not BPF.kernel_struct_has_field("sock", "no_such_member")
    assert not BPF.kernel_struct_has_field("no_such_struct_bpfkit", "pid")
