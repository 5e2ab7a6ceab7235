"""The scheduler, interrupt and syscall tools (runqlat, cpudist, runqslower, runqlen, hardirqs,
softirqs, syscount, llcstat) against workloads whose figures the kernel also keeps: a child's run
queue wait and CPU time in /proc/PID/schedstat, interrupt counts in /proc/interrupts and
/proc/softirqs, and system calls the test makes a known number of times. Text and ``--json``
output are both checked."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from bpfkit import BPF
from bpfkit.tools import _kit

from .test_kit import json_lines, start_quiet
from .test_tools import BPFKIT, disk_file, finish, start_tool, wait_header  # noqa: F401 (disk_file: a fixture)

SCHED_TOOLS = ["runqlat", "cpudist", "runqslower", "runqlen", "hardirqs", "softirqs", "syscount", "llcstat"]


def steal_us(cpu: int | None) -> int:
    """Microseconds the hypervisor has taken from ``cpu`` (all CPUs if None), in /proc/stat's
    ticks: while a vCPU is stolen between the scheduler's stamp and a tracepoint's, the two
    measures of one wait differ by that time, which no tool can see."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] == name:
                return int(fields[8]) * 1_000_000 // os.sysconf("SC_CLK_TCK")
    raise AssertionError(f"{name} not in /proc/stat")


class Child:
    """A Python child that says ``ready``, blocks reading stdin until the test says go, runs
    ``body`` and exits. The test reads the kernel's own account of it (/proc/PID/schedstat)
    while it blocks and after it exits, before reaping it."""

    def __init__(self, body: str, cpu: int | None = None) -> None:
        # On a CPU shared with a busy loop, as a SCHED_IDLE task: each wakeup waits for the loop to
        # give up the CPU (at nice 19 the scheduler lets some wakeups preempt the loop at once, and
        # a run may then wait not at all).
        compete = (f"os.sched_setaffinity(0, {{{cpu}}})\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
                   if cpu is not None else "")
        code = "import os, sys, time\n" + compete + "print('ready', flush=True)\nsys.stdin.readline()\n" + body
        self.cpu = cpu
        self.stolen_us = 0
        self.p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert self.p.stdout is not None and self.p.stdout.readline() == "ready\n"
        self.pid = self.p.pid
        with open(f"/proc/{self.pid}/comm") as f:
            self.comm = f.read().strip()

    def schedstat(self) -> tuple[int, int]:
        """(ns on a CPU, ns waiting on a run queue) so far."""
        with open(f"/proc/{self.pid}/schedstat") as f:
            on_cpu, waited, _ = (int(x) for x in f.read().split())
        return on_cpu, waited

    def run(self) -> tuple[int, int]:
        """Lets the body run; returns what it spent, (ns on a CPU, ns waiting), once it has exited.
        Sets ``stolen_us``: the time the hypervisor took from the child's CPU meanwhile."""
        stolen = steal_us(self.cpu)
        before = self.schedstat()
        assert self.p.stdin is not None
        self.p.stdin.write("go\n")
        self.p.stdin.close()
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc/PID stays
        after = self.schedstat()
        self.stolen_us = steal_us(self.cpu) - stolen
        assert self.p.wait() == 0
        return after[0] - before[0], after[1] - before[1]

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def child_factory():
    made: list = []

    def make(body: str, cpu: int | None = None) -> Child:
        c = Child(body, cpu)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()


SLEEPS = "for _ in range(20):\n    time.sleep(0.02)\n"
#: SLEEPS, each timed by the child, which prints the 20 lengths (seconds) at the end.
TIMED_SLEEPS = ("took = []\nfor _ in range(20):\n    t = time.perf_counter()\n    time.sleep(0.02)\n"
                "    took.append(time.perf_counter() - t)\nprint(*took, flush=True)\n")


def sleeps_in_the_16ms_bucket(printed: str) -> tuple[int, int]:
    """Of the sleeps a TIMED_SLEEPS child printed: how many are surely in the off-CPU histogram's
    16-32 ms bucket, and how many lie so near its upper bound (32.768 ms) that either side may
    hold them. A sleep is off the CPU for at least the 20 ms asked and at most the time the child
    measured around it; on a busy machine a wakeup can come late enough to cross the bound."""
    took = [float(x) for x in printed.split()]
    assert len(took) == 20, printed
    bound, near = 0.032768, 0.0001
    return sum(t < bound - near for t in took), sum(abs(t - bound) <= near for t in took)


@pytest.fixture
def busy_cpu():
    """A busy loop pinned to the last CPU, for a child to wait behind."""
    cpu = max(os.sched_getaffinity(0))
    q = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    yield cpu
    q.kill()
    q.wait()


def interrupt(p: subprocess.Popen) -> str:
    """Ctrl-C to a tool, once what it traced has had time to arrive; its output."""
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    return finish(p)


def log2_bounds(data: list) -> tuple[int, int, int]:
    """From a JSON histogram's buckets: (samples, least possible sum, greatest possible sum) of the
    values (each value v was truncated to whole units, so it lies in [start, end + 1))."""
    n = sum(b["count"] for b in data)
    return n, sum(b["count"] * b["interval-start"] for b in data), sum(b["count"] * (b["interval-end"] + 1) for b in data)


def text_hists(out: str) -> dict:
    """BCC's printed log2 histograms as {section line or None: {low: count}}."""
    hists: dict = {}
    section = None
    for line in out.splitlines():
        m = re.match(r"^(\S+ = .*)$", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|", line)
        if m:
            hists.setdefault(section, {})[int(m.group(1))] = int(m.group(3))
    return hists


# -- every tool: -h and --ebpf, and every rung of every ladder loads here -------------------------

@pytest.mark.parametrize("tool", SCHED_TOOLS)
def test_help_and_ebpf(tool: str):
    r = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: bpfkit {tool}") and "examples:" in r.stdout, r
    r = subprocess.run([*BPFKIT, tool, "--ebpf"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "tool.bpf.h" in r.stdout and 'SEC("' in r.stdout, r.stderr
    listed = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, timeout=30).stdout
    assert re.search(rf"^{tool}\s+\S", listed, re.M), listed


@pytest.mark.parametrize("tool", ["runqlat", "cpudist", "runqslower", "hardirqs", "softirqs"])
def test_every_rung_of_the_ladders_loads_and_attaches_here(tool: str):
    """The rungs this kernel does not pick (the raw tracepoints, below the BTF tracepoints) must
    still pass the verifier and attach, for the kernels that will pick them."""
    import importlib

    mod = importlib.import_module(f"bpfkit.tools.{tool}")
    with BPF(src_file=mod.SOURCE, hdr_file=_kit.HEADER) as b:
        attached = {link.program for link in b.links()}
    assert {p for ladder in mod.LADDERS for p in ladder} <= attached, attached


# -- runqlat ---------------------------------------------------------------------------------------

def test_runqlat_waits_agree_with_schedstat(child_factory, busy_cpu: int):
    c = child_factory(SLEEPS, busy_cpu)
    p = start_quiet(3, "runqlat", "-j", "-L", "-p", str(c.pid), "60", "1")
    _, waited_ns = c.run()
    objs = json_lines(interrupt(p))
    assert len(objs) == 1 and objs[0]["val_type"] == "usecs" and objs[0]["section"] == "tid", objs
    hists = objs[0]["histograms"]
    assert [h["tid"] for h in hists] == [c.pid], "-p shows only the child's thread"
    n, low, high = log2_bounds(hists[0]["data"])
    # The wakeup that read "go" and one per sleep; preemptions by the busy loop add some.
    assert 21 <= n <= 60, hists
    # The kernel's own sum of the child's waits (milliseconds each, behind the busy loop) lies
    # within the buckets' bounds, give or take a few microseconds a wait (the scheduler's clock
    # and its points of measure are not exactly the tracepoints') and the time the hypervisor
    # stole from the CPU meanwhile.
    waited_us = waited_ns / 1000
    assert waited_us > 20 * 100  # behind the busy loop: a wait is far longer than the slack
    slack = 10 * n + c.stolen_us
    assert low - slack <= waited_us <= high + slack, (low, waited_us, high, c.stolen_us)


def test_runqlat_text_per_process(child_factory):
    c = child_factory(SLEEPS)
    p = start_tool("runqlat", "-P", "-p", str(c.pid), "2", "1")
    wait_header(p, r"Tracing run queue latency\.\.\. Hit Ctrl-C to end\.")
    c.run()
    out = finish(p)
    hists = text_hists(out)
    assert list(hists) == [f"pid = {c.pid}"], out
    assert "     usecs               : count     distribution" in out
    assert 21 <= sum(hists[f"pid = {c.pid}"].values()) <= 30, out


# -- cpudist ---------------------------------------------------------------------------------------

def test_cpudist_offcpu_sees_each_20ms_sleep(child_factory):
    c = child_factory(TIMED_SLEEPS)
    p = start_tool("cpudist", "-O", "-m", "-P", "-p", str(c.pid), "2", "1")
    wait_header(p, r"Tracing off-CPU time\.\.\. Hit Ctrl-C to end\.")
    c.run()
    assert c.p.stdout is not None
    sure, near = sleeps_in_the_16ms_bucket(c.p.stdout.read())
    out = finish(p)
    hists = text_hists(out)
    assert list(hists) == [f"pid = {c.pid}"] or list(hists) == [f"pid = {c.pid} {c.comm}"], out
    h = next(iter(hists.values()))
    # Each sleep of 20 ms is 20 ms and a little off the CPU: the 16 -> 31 msecs bucket (unless the
    # child measured one late past 32 ms).
    assert sure <= h.get(16, 0) <= sure + near, (sure, near, out)
    assert "     msecs               : count     distribution" in out


def test_cpudist_on_cpu_total_is_the_kernels_cpu_time(child_factory):
    spin = "t = time.process_time()\nwhile time.process_time() - t < 0.2:\n    pass\n"
    c = child_factory(spin)
    p = start_quiet(1, "cpudist", "-j", "-e", "-p", str(c.pid), "2", "1")
    on_cpu_ns, _ = c.run()
    objs = json_lines(finish(p))
    assert len(objs) == 1, objs
    ext = objs[0]["extension"]
    n, low, high = log2_bounds(objs[0]["data"])
    assert ext["count"] == n and low <= ext["total"] <= high, objs
    # Each run on the CPU, from switch in to switch out, is what the kernel adds to the task's
    # sum_exec_runtime, less the time interrupts and the hypervisor took from it (its task clock
    # leaves those out; BCC's measure, wall time on the CPU, keeps them: a few percent at most).
    # The tool truncates each run to whole microseconds.
    on_cpu_us = on_cpu_ns / 1000
    assert on_cpu_us >= 200_000
    assert on_cpu_us - n - 50 <= ext["total"] <= on_cpu_us * 1.05 + 50, (ext, on_cpu_us)


# -- runqslower ------------------------------------------------------------------------------------

def test_runqslower_reports_every_wait_of_the_child_and_they_sum_to_schedstat(child_factory, busy_cpu: int):
    c = child_factory(SLEEPS, busy_cpu)
    p = start_tool("runqslower", "-P", "-p", str(c.pid), "0")
    header = wait_header(p, r"^TIME\s+COMM")
    assert header.split() == ["TIME", "COMM", "TID", "LAT(us)", "PREV", "COMM", "PREV", "TID"]
    _, waited_ns = c.run()
    rows = [line.split() for line in interrupt(p).splitlines() if line.strip()]
    assert rows and all(r[1] == c.comm and r[2] == str(c.pid) for r in rows), rows
    assert 21 <= len(rows) <= 60
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", r[0]) and r[-1].isdigit() for r in rows), rows
    # Behind the busy loop: it is the task the child waited for, most of the time.
    assert sum(r[-2] == "python3" or r[-2].startswith("python") for r in rows) >= len(rows) // 2, rows
    total_us = sum(int(r[3]) for r in rows)
    # Milliseconds of waits, summed as the kernel sums them, give or take a few microseconds a
    # wait (truncation to whole microseconds; the scheduler's clock is not the tracepoints'),
    # and the time the hypervisor stole from the CPU meanwhile.
    waited_us = waited_ns / 1000
    assert waited_us > 20 * 100  # behind the busy loop: a wait is far longer than the slack
    assert abs(total_us - waited_us) <= 10 * len(rows) + c.stolen_us, (total_us, waited_us, c.stolen_us)


def test_runqslower_json_and_threshold(child_factory):
    c = child_factory(SLEEPS)
    p = start_quiet(3, "runqslower", "-j", "-t", str(c.pid), "-d", "3", "0")
    c.run()
    rows = json_lines(finish(p))
    assert 21 <= len(rows) <= 30, rows
    assert all(set(r) == {"time", "comm", "tid", "lat_us"} and r["tid"] == c.pid and r["comm"] == c.comm
               for r in rows), rows
    # A threshold above every wait of a 0.4 s workload: nothing to report.
    c = child_factory(SLEEPS)
    p = start_tool("runqslower", "-p", str(c.pid), "-d", "2", "1000000")
    wait_header(p, r"^TIME\s+COMM")
    c.run()
    assert finish(p).strip() == ""


# -- runqlen ---------------------------------------------------------------------------------------

@pytest.fixture
def three_spinners_on_one_cpu():
    """Three busy loops pinned to the last CPU: two of them are always waiting there."""
    cpu = max(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
             for _ in range(3)]
    time.sleep(0.3)
    yield cpu
    for q in procs:
        q.kill()
        q.wait()


def test_runqlen_sees_two_tasks_waiting_behind_the_third(three_spinners_on_one_cpu: int):
    cpu = three_spinners_on_one_cpu
    out = subprocess.run([*BPFKIT, "runqlen", "-C", "1", "1"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("Sampling run queue length... Hit Ctrl-C to end.\n"), out.stdout
    sections = re.split(r"^cpu = (\d+)$", out.stdout, flags=re.M)
    hists = {int(sections[i]): {int(a): int(b) for a, b in re.findall(r"^\s+(\d+)\s+: (\d+)\s+\|", sections[i + 1], re.M)}
             for i in range(1, len(sections), 2)}
    h = hists[cpu]
    samples = sum(h.values())
    # 99 samples a second on each CPU.
    assert 60 <= samples <= 130, out.stdout
    assert sum(v for k, v in h.items() if k >= 2) >= 0.8 * samples, out.stdout


def test_runqlen_json_and_occupancy(three_spinners_on_one_cpu: int):
    cpu = three_spinners_on_one_cpu
    out = subprocess.run([*BPFKIT, "runqlen", "-C", "-j", "1", "1"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    (obj,) = json_lines(out)
    assert obj["val_type"] == "runqlen" and obj["section"] == "cpu"
    (h,) = [h for h in obj["histograms"] if h["cpu"] == cpu]
    samples = sum(d["count"] for d in h["data"])
    assert 60 <= samples <= 130 and sum(d["count"] for d in h["data"] if d["value"] >= 2) >= 0.8 * samples, obj
    out = subprocess.run([*BPFKIT, "runqlen", "-C", "-O", "1", "1"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    occ = dict(re.findall(r"^runqocc, CPU (\d+)\s+([\d.]+)%$", out, re.M))
    assert float(occ[str(cpu)]) >= 90.0, out
    (obj,) = json_lines(subprocess.run([*BPFKIT, "runqlen", "-O", "-j", "1", "1"], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    # One CPU of the machine's is always busy with a queue: at least that share of the samples.
    assert obj["runqocc"] >= 80.0 / len(os.sched_getaffinity(0)), obj


# -- hardirqs --------------------------------------------------------------------------------------

def proc_interrupts(cpu: int | None = None) -> dict:
    """{handler name: count} from /proc/interrupts (one CPU's column with ``cpu``)."""
    with open("/proc/interrupts") as f:
        ncpu = len(f.readline().split())
        out = {}
        for line in f:
            parts = line.split()
            if not parts or not parts[0].rstrip(":").isdigit() or len(parts) < ncpu + 2:
                continue
            counts = [int(x) for x in parts[1:1 + ncpu]]
            out[parts[-1]] = counts[cpu] if cpu is not None else sum(counts)
    return out


def delta(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items()}


def direct_reads(path: Path, n: int = 300) -> None:
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=4k", f"count={n}", "iflag=direct"], capture_output=True,
                   check=True)


def test_hardirqs_counts_agree_with_proc_interrupts(disk_file: Path):  # noqa: F811
    outer0 = proc_interrupts()
    # One long interval, ended by Ctrl-C once the workload is done: however slow the machine, the
    # tool's interval covers the whole workload.
    p = start_tool("hardirqs", "-C", "60", "1")
    wait_header(p, r"Tracing hard irq events\.\.\. Hit Ctrl-C to end\.")
    inner0 = proc_interrupts()
    direct_reads(disk_file)
    inner = delta(proc_interrupts(), inner0)
    p.send_signal(signal.SIGINT)
    out = finish(p)
    outer = delta(proc_interrupts(), outer0)
    assert re.search(r"^HARDIRQ\s+TOTAL_count$", out, re.M), out
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)$", out, re.M)}
    disk_irq = max(inner, key=inner.get)
    assert inner[disk_irq] >= 250, inner  # one completion interrupt per direct read, about
    # The tool ran from before the first read to after the last: it saw every interrupt of the
    # workload and none from outside its own run.
    for name, n in counts.items():
        assert inner.get(name, 0) <= n <= outer[name], (name, n, inner, outer)
    assert disk_irq in counts


def test_hardirqs_json_nanosecond_histograms(disk_file: Path):  # noqa: F811
    outer0 = proc_interrupts()
    p = start_quiet(2, "hardirqs", "-d", "-N", "-j", "60", "1")
    inner0 = proc_interrupts()
    direct_reads(disk_file)
    inner = delta(proc_interrupts(), inner0)
    p.send_signal(signal.SIGINT)
    (obj,) = json_lines(finish(p))
    outer = delta(proc_interrupts(), outer0)
    assert obj["val_type"] == "nsecs" and obj["section"] == "hardirq", obj
    counts = {h["hardirq"]: sum(d["count"] for d in h["data"]) for h in obj["histograms"]}
    disk_irq = max(inner, key=inner.get)
    assert disk_irq in counts
    for name, n in counts.items():
        assert inner.get(name, 0) <= n <= outer[name], (name, n, inner, outer)
    # Nanoseconds: a handler takes more than 64 ns, so the first buckets (up to 63) are empty.
    assert all(d["count"] == 0 for h in obj["histograms"] for d in h["data"] if d["interval-end"] < 64), obj


# -- softirqs --------------------------------------------------------------------------------------

def proc_softirqs(cpu: int | None = None) -> dict:
    """{vector name in lower case: count} from /proc/softirqs (one CPU's column with ``cpu``)."""
    with open("/proc/softirqs") as f:
        f.readline()
        out = {}
        for line in f:
            name, *counts = line.split()
            nums = [int(x) for x in counts]
            out[name.rstrip(":").lower()] = nums[cpu] if cpu is not None else sum(nums)
    return out


def loopback_traffic(n: int = 200) -> None:
    """n request/response exchanges over TCP on 127.0.0.1: each packet is a NET_RX softirq."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            for _ in range(n):
                conn.sendall(conn.recv(1))

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            s.sendall(b"x")
            assert s.recv(1) == b"x"
    t.join()
    srv.close()


def test_softirqs_counts_agree_with_proc_softirqs():
    outer0 = proc_softirqs()
    p = start_tool("softirqs", "-C", "60", "1")  # ended by Ctrl-C once the workload is done
    wait_header(p, r"Tracing soft irq events\.\.\. Hit Ctrl-C to end\.")
    inner0 = proc_softirqs()
    loopback_traffic()
    inner = delta(proc_softirqs(), inner0)
    p.send_signal(signal.SIGINT)
    out = finish(p)
    outer = delta(proc_softirqs(), outer0)
    assert re.search(r"^SOFTIRQ\s+TOTAL_count$", out, re.M), out
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    assert inner["net_rx"] >= 200 and counts["net_rx"] >= inner["net_rx"], (counts, inner)
    for name, n in counts.items():
        assert inner.get(name, 0) <= n <= outer[name], (name, n, inner, outer)


def test_softirqs_json_on_one_cpu_and_histograms():
    cpu = min(os.sched_getaffinity(0))
    outer0 = proc_softirqs(cpu)
    p = start_quiet(2, "softirqs", "-C", "-c", str(cpu), "-j", "60", "1")
    inner0 = proc_softirqs(cpu)
    loopback_traffic()
    inner = delta(proc_softirqs(cpu), inner0)
    p.send_signal(signal.SIGINT)
    (obj,) = json_lines(finish(p))
    outer = delta(proc_softirqs(cpu), outer0)
    assert obj["val_type"] == "count" and obj["totals"], obj
    for row in obj["totals"]:
        assert inner.get(row["softirq"], 0) <= row["total"] <= outer[row["softirq"]], (row, inner, outer)
    # -d: time histograms, one per vector, counting the same runs.
    outer0 = proc_softirqs()
    out = subprocess.run([*BPFKIT, "softirqs", "-d", "-j", "1", "1"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    outer = delta(proc_softirqs(), outer0)
    (obj,) = json_lines(out)
    assert obj["val_type"] == "usecs" and obj["section"] == "softirq", obj
    for h in obj["histograms"]:
        assert 0 < sum(d["count"] for d in h["data"]) <= outer[h["softirq"]], (h, outer)


# -- syscount --------------------------------------------------------------------------------------

MISSING = f"/nonexistent-{uuid.uuid4().hex}"
CALLS = (f"for _ in range(1000):\n    os.getppid()\n"
         f"for _ in range(500):\n    try:\n        os.chdir({MISSING!r})\n    except FileNotFoundError:\n        pass\n"
         f"for _ in range(5):\n    time.sleep(0.05)\n")


def test_syscount_counts_the_calls_made(child_factory):
    c = child_factory(CALLS)
    p = start_tool("syscount", "-p", str(c.pid), "-T", "50", "-d", "3")
    wait_header(p, r"Tracing syscalls, printing top 50\.\.\. Ctrl\+C to quit\.")
    c.run()
    out = finish(p)
    assert re.search(r"^\[\d\d:\d\d:\d\d\]\nSYSCALL\s+COUNT$", out, re.M) and out.rstrip().endswith("Detaching..."), out
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    assert counts["getppid"] == 1000 and counts["chdir"] == 500 and counts["clock_nanosleep"] == 5, out


def test_syscount_latency_failures_and_json(child_factory):
    c = child_factory(CALLS)
    p = start_tool("syscount", "-L", "-p", str(c.pid), "-d", "3")
    wait_header(p, r"Tracing syscalls")
    c.run()
    out = finish(p)
    assert re.search(r"^SYSCALL\s+COUNT\s+TIME \(us\)$", out, re.M), out
    rows = {m.group(1): (int(m.group(2)), float(m.group(3))) for m in re.finditer(r"^(\w+)\s+(\d+)\s+([\d.]+)$", out, re.M)}
    n, us = rows["clock_nanosleep"]
    assert n == 5 and 250_000 <= us < 500_000, out  # five sleeps of 50 ms, each at least that long
    # -x: failures only, in JSON.
    c = child_factory(CALLS)
    p = start_quiet(2, "syscount", "-x", "-j", "-p", str(c.pid), "-d", "3")
    c.run()
    (obj,) = json_lines(finish(p))
    counts = {r["syscall"]: r["count"] for r in obj["syscalls"]}
    assert re.fullmatch(r"\d\d:\d\d:\d\d", obj["time"]) and counts.get("chdir") == 500 and "getppid" not in counts, obj
    # -e ENOENT -P: by process, only the calls that failed with ENOENT.
    c = child_factory(CALLS)
    p = start_quiet(2, "syscount", "-e", "ENOENT", "-P", "-j", "-p", str(c.pid), "-d", "3")
    c.run()
    (obj,) = json_lines(finish(p))
    assert obj["processes"] == [{"pid": c.pid, "comm": c.comm, "count": 500}], obj


def test_syscount_one_syscall_and_children_of_a_parent(child_factory):
    c = child_factory(CALLS)
    p = start_quiet(2, "syscount", "--syscall", "getppid", "-c", str(os.getpid()), "-P", "-j", "-d", "3")
    c.run()
    (obj,) = json_lines(finish(p))
    # Only this test's children, and only getppid: the child's 1000 calls.
    assert [(r["pid"], r["count"]) for r in obj["processes"]] == [(c.pid, 1000)], obj
    listed = subprocess.run([*BPFKIT, "syscount", "-l"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert {"getppid", "chdir", "clock_nanosleep"} <= set(listed.split())
    r = subprocess.run([*BPFKIT, "syscount", "--syscall", "nosuchcall"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nosuchcall" in r.stderr, r


# -- llcstat ---------------------------------------------------------------------------------------

def has_hardware_cache_counters() -> bool:
    """Whether perf_event_open() gives a hardware cache-miss counter (a PMU)."""
    nr = {"x86_64": 298, "aarch64": 241, "riscv64": 241}.get(os.uname().machine)
    if nr is None:
        pytest.skip(f"no perf_event_open number known for {os.uname().machine}")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint32.from_buffer(attr, 0).value = 0  # PERF_TYPE_HARDWARE
    ctypes.c_uint32.from_buffer(attr, 4).value = 128  # size
    ctypes.c_uint64.from_buffer(attr, 8).value = 3  # PERF_COUNT_HW_CACHE_MISSES
    ctypes.c_uint64.from_buffer(attr, 40).value = 1  # disabled
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), attr, ctypes.c_int(-1), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_ulong(0))
    if fd >= 0:
        os.close(fd)
        return True
    err = ctypes.get_errno()
    assert err in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV), os.strerror(err)
    return False


def test_llcstat_refuses_in_one_line_without_a_pmu():
    if has_hardware_cache_counters():
        pytest.skip("this machine has hardware cache counters: llcstat runs (test_llcstat_counts_a_workload)")
    r = subprocess.run([*BPFKIT, "llcstat", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("bpfkit llcstat: error: no hardware PMU:"), r.stderr
    r = subprocess.run([*BPFKIT, "llcstat", "-j", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1, r


def test_llcstat_counts_a_workload():
    if not has_hardware_cache_counters():
        pytest.skip("no hardware PMU (perf_event_open of PERF_COUNT_HW_CACHE_MISSES: not provided here)")
    w = subprocess.Popen([sys.executable, "-c", "b = bytearray(64 << 20)\nfor _ in range(20):\n    b[::4096] = b'x' * (len(b) // 4096)"])
    r = subprocess.run([*BPFKIT, "llcstat", "-j", "2"], capture_output=True, text=True, timeout=60, check=True)
    w.wait()
    (obj,) = json_lines(r.stdout)
    assert obj["total_references"] > 0 and any(row["pid"] == w.pid for row in obj["rows"]), obj
