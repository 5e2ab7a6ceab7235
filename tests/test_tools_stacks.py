"""The stack tools (profile, offcputime, wakeuptime) against a C workload compiled here with frame
pointers, whose functions have names found nowhere else: a busy loop in ``bpfkit_spin_marker``,
sleeps made by a system call in ``bpfkit_sleep_marker``, pipe reads in ``bpfkit_read_marker``
that the test itself wakes. Each test checks the function names in the stacks (named through
blazesym and /proc/kallsyms) and the counts or times against what the workload did: BCC's text,
folded (``-f``), JSON (``-j``) and the SVG flame graph (``--flamegraph``, parsed as XML)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bpfkit import BPF
from bpfkit.tools import _kit

from ._features import need
from ._target import build
from .test_kit import json_lines, start_quiet
from .test_tools import BPFKIT, finish, start_tool, wait_header

STACK_TOOLS = ["profile", "offcputime", "wakeuptime"]
#: The workload's name, as the kernel gives it (its file name, at most 15 characters).
COMM = "stackwl"
HZ = 99

WORKLOAD_C = r"""
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) void bpfkit_spin_marker(double secs)
{
    volatile unsigned long n = 0;
    double end = now() + secs;

    do {
        for (int i = 0; i < 200000; i++)
            n++;
    } while (now() < end);
}

/* The system call is made here, not in libc: libc, built without frame pointers, would hide the
   function that called it from a frame-pointer unwind. */
__attribute__((noinline)) void bpfkit_sleep_marker(int n, long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    for (int i = 0; i < n; i++) {
#if defined(__x86_64__)
        long ret;
        __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
                         : "rcx", "r11", "memory");
#else
        nanosleep(&ts, NULL);
#endif
    }
}

/* getppid() as fast as it goes, for secs: the time is mostly the kernel's. */
__attribute__((noinline)) void bpfkit_syscall_marker(double secs)
{
    double end = now() + secs;

    do {
        for (int i = 0; i < 1000; i++)
            syscall(SYS_getppid);
    } while (now() < end);
}

__attribute__((noinline)) void bpfkit_read_marker(int n)
{
    char c;

    for (int i = 0; i < n; i++)
        if (read(0, &c, 1) != 1)
            exit(3);
}

int main(int argc, char **argv)
{
    char c = 0;

    if (argc < 3)
        return 2;
    if (write(1, "ready\n", 6) != 6)
        return 3;
    while (c != '\n')    /* byte by byte: stdio would read ahead what later reads are for */
        if (read(0, &c, 1) != 1)
            return 3;
    if (!strcmp(argv[1], "spin"))
        bpfkit_spin_marker(atof(argv[2]));
    else if (!strcmp(argv[1], "sleep"))
        bpfkit_sleep_marker(atoi(argv[2]), atol(argv[3]));
    else if (!strcmp(argv[1], "syscalls"))
        bpfkit_syscall_marker(atof(argv[2]));
    else if (!strcmp(argv[1], "read"))
        bpfkit_read_marker(atoi(argv[2]));
    return 0;
}
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    """The workload, built with frame pointers so that its user stacks unwind."""
    d = tmp_path_factory.mktemp("stacks")
    (d / "wl.c").write_text(WORKLOAD_C)
    return build(d / "wl.c", d / COMM, "-O0", "-g", "-fno-omit-frame-pointer")


class Workload:
    """The workload, started and waiting for the test's go (a line on its stdin)."""

    def __init__(self, exe: Path, *args: str) -> None:
        self.p = subprocess.Popen([str(exe), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.p.stdout is not None and self.p.stdout.readline() == b"ready\n"
        self.pid = self.p.pid
        self.started = 0.0

    def go(self) -> None:
        self.write(b"\n")
        self.started = time.monotonic()

    def write(self, data: bytes) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait(self) -> float:
        """Waits for the workload to end well; the seconds since go."""
        assert self.p.wait(timeout=30) == 0
        return time.monotonic() - self.started

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def start(workload: Path):
    made: list = []

    def make(*args: str) -> Workload:
        w = Workload(workload, *args)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill()


def folded_lines(out: str) -> list:
    """``[(frames, count)]`` of folded output, in its order."""
    rows = []
    for line in out.splitlines():
        stack, _, n = line.rpartition(" ")
        assert stack and n.isdigit(), line
        rows.append((stack.split(";"), int(n)))
    return rows


def text_stacks(out: str) -> list:
    """BCC's stack blocks (profile, offcputime) as ``[(frames, comm, pid, count)]``: frames as
    printed, innermost first, ``--`` for -d's delimiter."""
    blocks = []
    for block in out.strip("\n").split("\n\n"):
        lines = block.split("\n")
        m = re.fullmatch(r"    -                (.+) \((\d+)\)", lines[-2])
        assert m and re.fullmatch(r"        \d+", lines[-1]), block
        assert all(line.startswith("    ") and line.strip() for line in lines[:-2]), block
        blocks.append(([line[4:] for line in lines[:-2]], m.group(1), int(m.group(2)), int(lines[-1])))
    return blocks


def body_after_header(out: str, header: str) -> str:
    """The output after the header line and its blank line (the header was read already)."""
    assert out.startswith("\n"), out
    return out[1:]


# -- every tool: -h, --ebpf, list, and every rung of the ladders ---------------------------------

@pytest.mark.parametrize("tool", STACK_TOOLS)
def test_help_ebpf_and_list(tool: str):
    r = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: bpfkit {tool}") and "examples:" in r.stdout, r
    for flag in ("-f, --folded", "--flamegraph FILE.svg", "--stack-storage-size", "-m MIN_BLOCK_TIME"
                 if tool != "profile" else "-F FREQUENCY"):
        assert flag in r.stdout, (flag, r.stdout)
    r = subprocess.run([*BPFKIT, tool, "--ebpf"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "BPF_MAP_TYPE_STACK_TRACE" in r.stdout and 'SEC("' in r.stdout, r.stderr
    listed = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, timeout=30).stdout
    assert re.search(rf"^{tool}\s+\S", listed, re.M), listed


@pytest.mark.parametrize("tool", ["offcputime", "wakeuptime"])
def test_every_rung_of_the_ladders_loads_and_attaches_here(tool: str):
    """The raw tracepoints, below the BTF tracepoints this kernel picks, must pass the verifier and
    attach too, for the kernels that will pick them."""
    import importlib

    need("tp_btf", "raw_tp")
    mod = importlib.import_module(f"bpfkit.tools.{tool}")
    with BPF(src_file=mod.SOURCE, hdr_file=_kit.HEADER) as b:
        attached = {link.program for link in b.links()}
    assert {p for ladder in mod.LADDERS for p in ladder} <= attached, attached


@pytest.mark.parametrize("argv, message", [
    (["profile", "-F", "0"], "not a positive integer"),
    (["profile", "-p", "1,x"], "not a process id"),
    (["profile", "-C", "4096"], "not a CPU number"),
    (["profile", "-U", "-K"], "not allowed with"),
    (["offcputime", "-k", "-U"], "doesn't make sense"),
    (["offcputime", "--state", "-1"], "not a task state mask"),
    (["wakeuptime", "--stack-storage-size", "0"], "not a positive integer"),
    (["wakeuptime", "--flamegraph", "/nonexistent-dir/x.svg"], "not a file name in an existing directory"),
])
def test_bad_arguments_are_one_line_errors(argv: list, message: str):
    r = subprocess.run([*BPFKIT, *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


# -- profile -------------------------------------------------------------------------------------

def profile_links() -> int:
    """profile's links: one perf event per online CPU."""
    return len(os.sched_getaffinity(0))


def test_profile_folded_puts_the_busy_loop_on_top(start):
    need("perf_event_sw")
    w = start("spin", "4")
    p = start_quiet(profile_links(), "profile", "-F", str(HZ), "-p", str(w.pid), "-f", "2")
    w.go()
    rows = folded_lines(finish(p))
    w.kill()
    assert rows and all(frames[0] == COMM for frames, _ in rows), rows
    # BCC's order, least sampled first: the heaviest stack is the last line.
    assert [n for _, n in rows] == sorted(n for _, n in rows)
    frames, n = rows[-1]
    assert frames[-1] == "bpfkit_spin_marker" and frames[-2] == "main", rows[-1]
    # 99 samples a second for 2 s while it has a CPU to itself, and it spins throughout.
    assert HZ * 2 * 0.5 <= n <= HZ * 2.6, rows
    assert sum(n for _, n in rows) <= HZ * 2.6


def test_profile_text_with_delimiter_shows_kernel_then_user_frames(start):
    need("perf_event_sw")
    w = start("spin", "4")
    p = start_tool("profile", "-F", str(HZ), "-p", str(w.pid), "-d", "2")
    header = wait_header(p, r"^Sampling at")
    assert header == f"Sampling at {HZ} Hertz of PID {w.pid} by user + kernel stack for 2 secs.\n"
    w.go()
    blocks = text_stacks(body_after_header(finish(p), header))
    w.kill()
    assert all(comm == COMM and pid == w.pid for _, comm, pid, _ in blocks), blocks
    assert [n for *_, n in blocks] == sorted(n for *_, n in blocks)
    # Each sample taken in the loop has its own leaf address: the loop's stacks are several.
    spins = [b for b in blocks if b[0][:2] == ["bpfkit_spin_marker", "main"]]
    assert HZ * 2 * 0.5 <= sum(n for *_, n in spins) <= HZ * 2.6, blocks
    # A sample taken in the kernel (an interrupt, the timer's signal) shows its kernel frames, the
    # delimiter, then the user frames; one taken in user mode has no kernel frames to delimit.
    for frames, *_ in blocks:
        if "--" in frames:
            k = frames.index("--")
            assert k > 0 and frames[k + 1:] and "bpfkit_spin_marker" not in frames[:k], frames


def test_profile_kernel_stacks_of_system_calls_as_json(start):
    need("perf_event_sw")
    # System calls as fast as they go: most samples of the workload land in the kernel.
    w = start("syscalls", "4")
    p = start_quiet(profile_links(), "profile", "-K", "-F", str(HZ), "-p", str(w.pid), "-j", "2")
    w.go()
    out, err = p.communicate(timeout=30)
    w.kill()
    assert p.returncode == 0, err
    objs = json_lines(out)
    assert objs and all(set(o) == {"comm", "pid", "kernel_stack", "count"} and o["pid"] == w.pid for o in objs), objs
    # Every kernel stack of the workload is that of a system call (or an interrupt in one).
    with_frames = [o for o in objs if o["kernel_stack"]]
    assert with_frames, objs
    assert all({"entry_SYSCALL_64_after_hwframe", "do_syscall_64"} & set(o["kernel_stack"]) or
               any(f.startswith(("asm_", "irq", "__sysvec")) for f in o["kernel_stack"]) for o in with_frames), objs
    assert any("__x64_sys_getppid" in o["kernel_stack"] for o in with_frames), objs
    # 99 samples a second for 2 s, most of them in the kernel (a system call's user part is a few
    # instructions).
    total = sum(o["count"] for o in objs)
    assert HZ * 2 * 0.5 <= total <= HZ * 2.6, objs
    assert sum(o["count"] for o in with_frames) >= total / 2, objs
    # Samples taken in user mode have no kernel stack: shown with the name alone, and counted.
    empty = sum(o["count"] for o in objs if not o["kernel_stack"])
    if empty:
        assert re.search(rf"^WARNING: \d+ stacks? ha(s|ve) no frames \({empty} samples\)", err, re.M), err
    else:
        assert "have no frames" not in err


def test_profile_names_the_frames_of_a_process_that_exited(start):
    """The workload exits a second before the report: its user frames are named from the
    mappings the tool noted while it ran (blazesym can no longer read them)."""
    need("perf_event_sw")
    w = start("spin", "1.5")
    p = start_quiet(profile_links(), "profile", "-U", "-F", str(HZ), "-p", str(w.pid), "-f", "3")
    w.go()
    w.wait()
    assert not os.path.exists(f"/proc/{w.pid}")
    rows = folded_lines(finish(p))
    frames, n = rows[-1]
    assert frames[0] == COMM and frames[-2:] == ["main", "bpfkit_spin_marker"], rows
    assert HZ * 1.5 * 0.5 <= n <= HZ * 1.5 * 1.3, rows


def test_profile_flamegraph_svg_has_the_busy_loop(start, tmp_path: Path):
    need("perf_event_sw")
    svg = tmp_path / "cpu.svg"
    w = start("spin", "3")
    p = start_quiet(profile_links(), "profile", "-F", str(HZ), "-p", str(w.pid), "-f", "--flamegraph", str(svg), "1")
    w.go()
    rows = folded_lines(finish(p))
    w.kill()
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    (spin,) = [t for t in titles if t.startswith("bpfkit_spin_marker ")]
    # Its title gives the samples of the frame: those of the folded lines through it.
    m = re.match(r"bpfkit_spin_marker \(([\d,]+) samples", spin)
    assert m and int(m.group(1).replace(",", "")) == sum(n for f, n in rows if "bpfkit_spin_marker" in f), (spin, rows)
    assert any(t.startswith(f"{COMM} (") for t in titles), titles
    assert "CPU Flame Graph" in ET.tostring(root, encoding="unicode")


# -- offcputime ----------------------------------------------------------------------------------

def test_offcputime_text_shows_the_sleep_path_and_its_time(start):
    if platform.machine() != "x86_64":
        pytest.skip("the workload makes its system call itself (so that a frame-pointer unwind sees "
                    "bpfkit_sleep_marker) on x86_64 only")
    need("raw_tp")
    w = start("sleep", "10", "100")
    p = start_tool("offcputime", "-d", "-p", str(w.pid), "3")
    header = wait_header(p, r"^Tracing off-CPU time")
    assert header == f"Tracing off-CPU time (us) of PID {w.pid} by user + kernel stack for 3 secs.\n"
    w.go()
    slept = w.wait()
    blocks = text_stacks(body_after_header(finish(p), header))
    assert all(comm == COMM and pid == w.pid for _, comm, pid, _ in blocks), blocks
    sleeps = [b for b in blocks if "do_nanosleep" in b[0]]
    assert sleeps, blocks
    for frames, *_ in sleeps:
        # Kernel frames from the scheduler down to the system call, the delimiter, then the
        # workload's own function: the tracing machinery's frames are not shown.
        assert frames[0] in ("__schedule", "schedule"), frames
        k = frames.index("--")
        assert "do_nanosleep" in frames[:k] and frames[k + 1:k + 3] == ["bpfkit_sleep_marker", "main"], frames
    # Ten sleeps of 100 ms: at least 1 s off the CPU (a sleep ends no sooner; the tool times it
    # from the switch away, microseconds after the timer is set), at most the workload's run.
    total = sum(n for *_, n in sleeps)
    assert 10 * 100_000 - 10 * 100 <= total <= slept * 1e6, (total, slept)


def test_offcputime_folded_kernel_stacks_over_a_minimum(start):
    need("raw_tp")
    w = start("sleep", "10", "100")
    p = start_quiet(1, "offcputime", "-K", "-f", "-m", "50000", "-p", str(w.pid), "3")
    w.go()
    slept = w.wait()
    rows = folded_lines(finish(p))
    # Only the sleeps last 50 ms or more: every stack counted is theirs, kernel frames only.
    assert rows and all(f[0] == COMM and "do_nanosleep" in f and "bpfkit_sleep_marker" not in f for f, _ in rows)
    assert all(f[-1] in ("__schedule", "schedule") for f, _ in rows), rows
    assert 10 * 100_000 - 10 * 100 <= sum(n for _, n in rows) <= slept * 1e6, rows
    # Under a maximum below them, no sleep is counted.
    w = start("sleep", "5", "100")
    p = start_quiet(1, "offcputime", "-K", "-f", "-M", "50000", "-p", str(w.pid), "2")
    w.go()
    w.wait()
    assert not [f for f, _ in folded_lines(finish(p)) if "do_nanosleep" in f]


# -- wakeuptime ----------------------------------------------------------------------------------

def pipe_write(frames: list) -> int:
    """The index of the pipe's write function in ``frames`` (``anon_pipe_write`` in newer kernels), or 0."""
    return next((i for i, f in enumerate(frames) if f in ("pipe_write", "anon_pipe_write")), 0)


def own_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def test_wakeuptime_folded_names_the_test_as_the_waker(start):
    need("raw_tp")
    w = start("read", "10")
    p = start_quiet(2, "wakeuptime", "-f", "-p", str(w.pid), "3")
    w.go()  # its first read blocked before the tool started: that wakeup is not counted
    t0 = time.monotonic()
    for _ in range(10):
        time.sleep(0.1)
        w.write(b"x")
    wall = time.monotonic() - t0
    w.wait()
    rows = folded_lines(finish(p))
    # folded: the waker, its kernel frames from the innermost, the woken task.
    ours = [(f, n) for f, n in rows if f[0] == own_comm() and f[-1] == COMM and pipe_write(f)]
    assert ours, rows
    assert all(f[-1] == COMM for f, _ in rows), "-p: only the workload's wakeups"
    for f, _ in ours:
        assert "try_to_wake_up" in f[1:pipe_write(f)], f
    # Ten blocks of about 100 ms, each from the workload's switch away to the test's write: less
    # the time the workload takes to read a byte and block again, at most the loop's time.
    total = sum(n for _, n in ours)
    assert 0.8 * 10 * 100_000 <= total <= wall * 1e6, (total, wall)


def test_wakeuptime_text_and_json(start):
    need("raw_tp")
    w = start("read", "5")
    p = start_tool("wakeuptime", "-p", str(w.pid), "2")
    header = wait_header(p, r"^Tracing blocked time")
    assert header == "Tracing blocked time (us) by kernel stack for 2 secs.\n"
    w.go()
    for _ in range(5):
        time.sleep(0.05)
        w.write(b"x")
    w.wait()
    out = body_after_header(finish(p), header)
    blocks = out.strip("\n").split("\n\n")
    total = 0
    for block in blocks:
        lines = block.split("\n")
        assert lines[0] == "    target:          " + COMM, block
        assert re.fullmatch(r"    waker:           \S.*", lines[-2]) and re.fullmatch(r"        \d+", lines[-1])
        assert all(re.fullmatch(r"    [0-9a-f]{16} \S+", line) for line in lines[1:-2]), block
        if lines[-2].endswith(own_comm()) and pipe_write([line.split()[-1] for line in lines]):
            total += int(lines[-1])
    assert 0.8 * 5 * 50_000 <= total <= 5 * 50_000 * 2, out
    # JSON: one object per stack, the waker's frames innermost first.
    w = start("read", "2")
    p = start_quiet(2, "wakeuptime", "-j", "-p", str(w.pid), "1")
    w.go()
    for _ in range(2):
        time.sleep(0.05)
        w.write(b"x")
    w.wait()
    objs = json_lines(finish(p))
    assert objs and all(set(o) == {"target", "waker", "waker_stack", "count"} and o["target"] == COMM for o in objs)
    (ours,) = [o for o in objs if o["waker"] == own_comm() and pipe_write(o["waker_stack"])]
    stack = ours["waker_stack"]
    assert stack.index("try_to_wake_up") < pipe_write(stack), stack
    assert 0.8 * 2 * 50_000 <= ours["count"] <= 2 * 50_000 * 2, ours
