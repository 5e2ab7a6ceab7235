"""``--prometheus [ADDR:]PORT``: the summary tools serve their data as Prometheus metrics instead of
printing it. Each tool is started on a free port of 127.0.0.1 (port 0: the tool prints its URL
once its loop runs, so once it is attached), a workload whose figures are known runs, and
/metrics is scraped with urllib and parsed with prometheus_client's own parsers: the counts must be exactly the workload's, cumulative across scrapes, in base units;
the command line refuses a bad value in one line; SIGINT and SIGTERM end the tool with status 0."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfkit.tools import _kit

from .test_tools import BPFKIT, disk_file, wait_header  # noqa: F401 (disk_file: a fixture)
from .test_tools_blkmem import direct_file, direct_reads, named_dd  # noqa: F401 (fixtures)
from .test_tools_net import session_factory  # noqa: F401 (a fixture)
from .test_tools_sched import CALLS, delta, loopback_traffic, proc_interrupts, proc_softirqs
from .test_tools_sched import direct_reads as sched_direct_reads

prometheus_client = pytest.importorskip("prometheus_client", reason="pip install bpfkit[exporter]")
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families as parse_text  # noqa: E402

#: The tools that take --prometheus: every one that prints a summary per interval (memleak's is of
#: stacks, which are not metrics), and tcplife's totals.
PROM_TOOLS = ["argdist", "biolatency", "biotop", "bitesize", "cpudist", "funccount", "funclatency", "hardirqs",
              "runqlat", "runqlen", "softirqs", "syscount", "tcplife", "tcptop", "vfsstat"]
#: Summary tools without it, and why.
WITHOUT = {"memleak": "outstanding allocations by stack, not metrics",
           "llcstat": "prints once after its duration, and this machine has no PMU to test it on"}
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class Served:
    """A tool started with ``--prometheus 127.0.0.1:0`` (a free port), returned once it says where
    it serves: it says so once its loop runs, attached."""

    def __init__(self, *args: str, timeout: float = 60) -> None:
        self.p = subprocess.Popen([*BPFKIT, *args, "--prometheus", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = wait_header(self.p, r"^Serving Prometheus metrics on ", timeout)
        m = re.fullmatch(r"Serving Prometheus metrics on (http://127\.0\.0\.1:(\d+)/metrics)\n", line)
        assert m, line
        self.url, self.port = m.group(1), int(m.group(2))

    def get(self, accept: str | None = None) -> tuple[str, str]:
        """(Content-Type, body) of one scrape."""
        req = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.headers["Content-Type"], r.read().decode()

    def scrape(self) -> dict:
        """{sample name: {frozenset of labels: value}} of one scrape, in Prometheus' text format."""
        ctype, body = self.get()
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        return samples(parse_text(body))

    def stop(self, sig: int = signal.SIGINT) -> tuple[str, str]:
        """Ends the tool with ``sig``: it must exit with status 0, without a traceback. Its
        ``(stdout, stderr)``."""
        self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=30)
        assert self.p.returncode == 0 and "Traceback" not in err, (self.p.returncode, err)
        return out, err

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


@pytest.fixture
def serve() -> Iterator:
    started: list = []

    def start(*args: str) -> Served:
        s = Served(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def samples(families: object) -> dict:
    out: dict = {}
    for fam in families:  # type: ignore[attr-defined]
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def value(got: dict, name: str, **labels: str) -> float:
    """A sample's value; 0 when the scrape does not have it (a series not yet seen)."""
    return got.get(name, {}).get(frozenset(labels.items()), 0)


def buckets(got: dict, name: str, **labels: str) -> list:
    """A histogram's ``[(le, cumulative count)]``, in order of ``le``."""
    rows = []
    for key, v in got.get(f"{name}_bucket", {}).items():
        d = dict(key)
        le = d.pop("le")
        if d == labels:
            rows.append((float(le), v))
    return sorted(rows)


def check_histogram(got: dict, name: str, **labels: str) -> list:
    """The histogram's buckets, once checked: cumulative, ending at +Inf, which is its _count."""
    rows = buckets(got, name, **labels)
    assert rows and rows[-1][0] == float("inf"), rows
    assert all(a[1] <= b[1] for a, b in zip(rows, rows[1:])), f"buckets not cumulative: {rows}"
    assert rows[-1][1] == value(got, f"{name}_count", **labels), rows
    return rows


def in_bucket(rows: list, upper: float) -> float:
    """The count of the bucket whose bound is ``upper`` alone (less the bucket below it)."""
    at = [i for i, (le, _) in enumerate(rows) if le == upper]
    assert at, (upper, rows)
    return rows[at[0]][1] - (rows[at[0] - 1][1] if at[0] else 0)


def sum_bounds(rows: list) -> tuple[float, float]:
    """The least and greatest sum of a log2 histogram's values: each bucket's count at the bound
    below it (half its own) and at its own bound."""
    low = high = 0.0
    below = 0.0
    for i, (le, n) in enumerate(rows[:-1]):
        low, high = low + (n - below) * (le / 2 if i else 0.0), high + (n - below) * le  # slot 1: 0 and 1
        below = n
    assert rows[-1][1] == below, "a count beyond the last bound has no greatest value"
    return low, high


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def child(body: str) -> subprocess.Popen:
    """A Python child that says ``ready`` (its imports done), then runs ``body``; ``body`` waits
    for the test with ``go()``, which reads a line of stdin."""
    code = "import os, sys, time\ndef go():\n    sys.stdin.readline()\nprint('ready', flush=True)\n" + body
    c = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert c.stdout is not None and c.stdout.readline() == "ready\n"
    return c


def go(c: subprocess.Popen, last: bool = False) -> None:
    assert c.stdin is not None
    c.stdin.write("go\n")
    c.stdin.flush()
    if last:
        c.stdin.close()
        assert c.wait(timeout=60) == 0


# -- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("tool", PROM_TOOLS)
def test_help_shows_the_flag(tool: str):
    r = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and re.search(r"^\s+--prometheus \[ADDR:\]PORT\s", r.stdout, re.M), r.stdout


def _tool_text(f: Path) -> str:
    """A tool's Python with that of the tools' own modules it imports (hardirqs: ``_irqs``), but
    not the kit's, which every tool imports."""
    text = f.read_text()
    for mod in sorted(set(re.findall(r"^\s*from \.?(_\w+) import|^\s*from \. import (_\w+)", text, re.M))):
        name = next(m for m in mod if m)
        if name not in ("_kit", "_args") and (f.parent / f"{name}.py").exists():
            text += (f.parent / f"{name}.py").read_text()
    return text


def test_every_summary_tool_has_the_flag():
    """A tool that runs the interval loop has the flag, or is named in WITHOUT with the reason."""
    tools = {f.stem: _tool_text(f) for f in Path(_kit.HERE).glob("*.py") if not f.name.startswith("_")}
    looping = sorted(name for name, text in tools.items() if "intervals(args" in text)
    flagged = sorted(name for name, text in tools.items() if '"prometheus"' in text)
    assert sorted(set(looping) - set(WITHOUT)) == sorted(set(flagged) - {"tcplife"}), (looping, flagged)
    assert flagged == PROM_TOOLS


@pytest.mark.parametrize("text", ["65536", "-1", "port", "127.0.0.1:", "::1:9100", "[::1]", "300.1.1.1:9100",
                                  "[127.0.0.1]:9100", "my_host:9100", ""])
def test_a_bad_address_is_a_one_line_usage_error(text: str):
    r = subprocess.run([*BPFKIT, "runqlat", "--prometheus", text], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r
    assert "argument --prometheus" in r.stderr and "is not [ADDR:]PORT" in r.stderr, r.stderr


def test_address_forms():
    """As ``bpfkit exporter --listen``: a port alone on every interface, as exporters do."""
    assert _kit.listen_address("9100") == _kit.listen_address(":9100") == ("", 9100)
    assert _kit.listen_address("127.0.0.1:9100") == ("127.0.0.1", 9100)  # this machine only
    assert _kit.listen_address("[::1]:65535") == ("::1", 65535)
    assert _kit.listen_address("localhost:0") == ("localhost", 0)  # a free port: the tool prints it


def test_without_prometheus_client_the_tool_says_how_to_install_it():
    code = ("import sys\nsys.modules['prometheus_client'] = None  # import prometheus_client: ImportError\n"
            "from bpfkit import cli\nsys.exit(cli.main(['runqlat', '--prometheus', '9100']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == "bpfkit runqlat: --prometheus needs prometheus_client: pip install bpfkit[exporter]\n"


def test_a_port_in_use_is_a_one_line_error():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = subprocess.run([*BPFKIT, "syscount", "-d", "1", "--prometheus", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r
    assert r.stderr == f"bpfkit syscount: error: --prometheus 127.0.0.1:{port}: Address already in use\n", r.stderr


# -- what is served --------------------------------------------------------------------------------

def test_syscount_serves_the_exact_calls_of_a_process(serve):
    c = child("go()\n" + CALLS + "print('done', flush=True)\ngo()\nfor _ in range(234):\n    os.getppid()\n")
    s = serve("syscount", "-L", "-p", str(c.pid))
    before = s.scrape()
    go(c)
    assert c.stdout is not None and c.stdout.readline() == "done\n"
    first = s.scrape()
    go(c, last=True)
    got = s.scrape()
    calls = "bpfkit_syscount_calls_total"
    assert value(before, calls, syscall="getppid") == 0, before
    assert value(first, calls, syscall="getppid") == 1000, first
    # Cumulative: the second scrape has both phases' calls (the map is not cleared between them).
    assert value(got, calls, syscall="getppid") == 1234 and value(got, calls, syscall="chdir") == 500, got
    assert value(got, calls, syscall="clock_nanosleep") == 5, got
    # Five sleeps of 50 ms, in seconds; every syscall of the child shown, not a top 10.
    assert 0.25 <= value(got, "bpfkit_syscount_seconds_total", syscall="clock_nanosleep") < 0.5, got
    assert set(got[calls]) == set(got["bpfkit_syscount_seconds_total"])
    # The child is gone: a later scrape has the same counts.
    assert s.scrape() == got
    s.stop()


def test_syscount_per_process_labels_and_duration(serve):
    c = child("go()\nfor _ in range(321):\n    os.getppid()\n")
    comm = comm_of(c.pid)
    s = serve("syscount", "-P", "--syscall", "getppid", "-p", str(c.pid), "-d", "2")
    go(c, last=True)
    got = s.scrape()
    ((labels, n),) = got["bpfkit_syscount_calls_total"].items()
    assert n == 321 and dict(labels) == {"pid": str(c.pid), "comm": comm}, got
    # -d: the tool serves for that long, then ends by itself with status 0.
    out, err = s.p.communicate(timeout=30)
    assert s.p.returncode == 0 and err == "", err
    assert out == "Detaching...\n", out  # nothing printed while serving


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[str]:
    """A loop device over a 4 MiB file: a disk no one else reads, so its requests are the test's."""
    backing = tmp_path / "loop-backing"
    backing.write_bytes(b"\0" * (4 << 20))
    r = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device: losetup says {r.stderr.strip() or r.returncode}")
    dev = r.stdout.strip()
    try:
        yield os.path.basename(dev)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def read_disk(name: str, n: int) -> None:
    subprocess.run(["dd", f"if=/dev/{name}", "of=/dev/null", "bs=4k", f"count={n}", "iflag=direct"],
                   capture_output=True, check=True)


@pytest.mark.parametrize("sections", [False, True], ids=["one-disk", "per-disk"])
def test_biolatency_counts_each_direct_read_in_seconds(serve, loop_disk: str, sections: bool):
    s = serve("biolatency", *(["-D"] if sections else ["-d", loop_disk]))
    labels = {"disk": loop_disk} if sections else {}
    name = "bpfkit_biolatency_seconds"
    assert value(s.scrape(), f"{name}_count", **labels) == 0
    read_disk(loop_disk, 37)
    first = s.scrape()
    rows1 = check_histogram(first, name, **labels)
    assert rows1[-1][1] == 37, rows1
    read_disk(loop_disk, 11)
    second = s.scrape()
    rows2 = check_histogram(second, name, **labels)
    assert rows2[-1][1] == 48, rows2
    # Cumulative across scrapes: no bucket goes down, and the bounds only grow.
    les1 = dict(rows1)
    assert all(v >= les1.get(le, 0) for le, v in rows2) and set(les1) <= {le for le, _ in rows2}, (rows1, rows2)
    # The bounds are powers of two of microseconds, in seconds.
    assert all(le == float("inf") or round(le * 1e6) in {2 ** i for i in range(1, 27)} for le, _ in rows2), rows2
    # _sum lies within what the buckets allow: exact (the program's total) for one disk, an
    # estimate at each bucket's middle per disk.
    low, high = sum_bounds(rows2)
    total = value(second, f"{name}_sum", **labels)
    assert low <= total <= high, (low, total, high)
    if sections:
        assert "estimated" in s.get()[1].split("# HELP bpfkit_biolatency_seconds ")[1].split("\n")[0]
    # OpenMetrics, when asked for: the same samples (its parser checks a histogram's structure).
    ctype, body = s.get(accept=OPENMETRICS)
    assert ctype.startswith("application/openmetrics-text") and body.endswith("# EOF\n"), (ctype, body[-200:])
    om = samples(parse_openmetrics(body))
    assert {k: om[k] for k in (f"{name}_bucket", f"{name}_count")} == \
        {k: second[k] for k in (f"{name}_bucket", f"{name}_count")}
    s.stop(signal.SIGTERM)


def test_bitesize_sizes_per_command_in_bytes(serve, direct_file: Path, named_dd: Path):  # noqa: F811
    s = serve("bitesize", "-c", named_dd.name)
    direct_reads(named_dd, direct_file, "8k", 5)
    direct_reads(named_dd, direct_file, "64k", 3)
    got = s.scrape()
    rows = check_histogram(got, "bpfkit_bitesize_bytes", comm=named_dd.name)
    # 8 KiB: the slot of 8..15 Kbytes, whose bound is 16 KiB; 64 KiB: 64..127 Kbytes, bound 128 KiB.
    assert in_bucket(rows, 16384) == 5 and in_bucket(rows, 131072) == 3 and rows[-1][1] == 8, rows
    assert list(got["bpfkit_bitesize_bytes_count"]) == [frozenset({("comm", named_dd.name)})], got
    s.stop()


def test_runqlat_histogram_grows_with_each_phase(serve):
    phase = "go()\nfor _ in range(20):\n    time.sleep(0.01)\nprint('done', flush=True)\n"
    c = child(phase + phase)
    s = serve("runqlat", "-p", str(c.pid))
    name = "bpfkit_runqlat_seconds"
    go(c)
    assert c.stdout is not None and c.stdout.readline() == "done\n"
    first = s.scrape()
    rows1 = check_histogram(first, name)
    go(c, last=True)
    second = s.scrape()
    rows2 = check_histogram(second, name)
    n1, n2 = rows1[-1][1], rows2[-1][1]
    # Each phase: the wakeup that read "go" and one per sleep; preemptions add a few.
    assert 21 <= n1 <= 60 and 21 <= n2 - n1 <= 60, (rows1, rows2)
    les1 = dict(rows1)
    assert all(v >= les1.get(le, 0) for le, v in rows2), (rows1, rows2)
    assert value(second, f"{name}_sum") >= value(first, f"{name}_sum") > 0
    s.stop()


def test_cpudist_off_cpu_sleeps_in_their_bucket(serve):
    from .test_tools_sched import TIMED_SLEEPS, sleeps_in_the_16ms_bucket

    c = child("go()\n" + TIMED_SLEEPS)
    s = serve("cpudist", "-O", "-p", str(c.pid))
    go(c, last=True)
    assert c.stdout is not None
    sure, near = sleeps_in_the_16ms_bucket(c.stdout.read())
    got = s.scrape()
    rows = check_histogram(got, "bpfkit_cpudist_offcpu_seconds")
    # Each sleep of 20 ms and a little: 16384 to 32767 us, the bucket bounded by 32768 us (unless
    # the child measured one late past 32 ms).
    assert sure <= in_bucket(rows, 0.032768) <= sure + near, (sure, near, rows)
    assert "bpfkit_cpudist_oncpu_seconds_count" not in got
    s.stop()


def test_vfsstat_counts_one_processs_reads_and_open(serve):
    c = child("go()\nfd = os.open('/dev/zero', os.O_RDONLY)\nfor _ in range(1000):\n    os.read(fd, 1)\n"
              "print('done', flush=True)\ngo()\nfor _ in range(2000):\n    os.read(fd, 1)\n")
    s = serve("vfsstat", "-p", str(c.pid))
    go(c)
    assert c.stdout is not None and c.stdout.readline() == "done\n"
    first = s.scrape()["bpfkit_vfsstat_calls_total"]
    go(c, last=True)
    got = s.scrape()["bpfkit_vfsstat_calls_total"]
    # The first phase's reads (and perhaps the start of the read that waits for the second go).
    assert {dict(k)["op"]: v for k, v in first.items()}["read"] in (1000, 1001), first
    # Both phases' reads and the read of the second go (the first began before the tool attached),
    # the one open, and the interpreter's writes of "done".
    ops = {dict(k)["op"]: v for k, v in got.items()}
    assert ops.pop("write") >= 1 and ops == {"read": 3001, "fsync": 0, "open": 1, "create": 0}, got
    s.stop()


def test_funccount_counts_a_tracepoint(serve):
    c = child("go()\nfor _ in range(777):\n    os.getppid()\n")
    s = serve("funccount", "-p", str(c.pid), "t:syscalls:sys_enter_getppid")
    # Every function matched is served from the start, at 0.
    assert value(s.scrape(), "bpfkit_funccount_calls_total", function="syscalls:sys_enter_getppid") == 0
    go(c, last=True)
    got = s.scrape()
    assert got["bpfkit_funccount_calls_total"] == {frozenset({("function", "syscalls:sys_enter_getppid")}): 777}
    s.stop()


def test_softirqs_counts_lie_within_proc_softirqs(serve):
    outer0 = proc_softirqs()
    s = serve("softirqs", "-C")
    inner0 = proc_softirqs()
    loopback_traffic()
    inner = delta(proc_softirqs(), inner0)
    got = s.scrape()
    outer = delta(proc_softirqs(), outer0)
    counts = {dict(k)["softirq"]: v for k, v in got["bpfkit_softirqs_total"].items()}
    assert inner["net_rx"] >= 200 and counts["net_rx"] >= inner["net_rx"], (counts, inner)
    for name, n in counts.items():
        assert inner.get(name, 0) <= n <= outer[name], (name, n, inner, outer)
    s.stop()


def test_tcplife_serves_a_sessions_bytes_and_lifespan(serve, session_factory):  # noqa: F811
    sess = session_factory(3172, 10247)
    s = serve("tcplife", "-p", str(sess.pid))
    sess.run()
    deadline = time.monotonic() + 10
    got = s.scrape()
    while "bpfkit_tcplife_sessions_total" not in got and time.monotonic() < deadline:
        time.sleep(0.1)  # the record arrives with the tool's next poll of its ring buffer
        got = s.scrape()
    who = {"comm": sess.comm}
    assert value(got, "bpfkit_tcplife_sessions_total", **who) == 1, got
    assert value(got, "bpfkit_tcplife_sent_bytes_total", **who) == 3172
    assert value(got, "bpfkit_tcplife_received_bytes_total", **who) == 10247
    rows = check_histogram(got, "bpfkit_tcplife_duration_seconds", **who)
    assert rows[-1][1] == 1 and 0 < value(got, "bpfkit_tcplife_duration_seconds_sum", **who) < 10, rows
    # The lifespan is exact (every span is known), and lies in the one bucket that counts it.
    first = next(le for le, n in rows if n == 1)
    assert first / 2 <= value(got, "bpfkit_tcplife_duration_seconds_sum", **who) < first
    s.stop()


def test_sigterm_ends_quietly_and_frees_the_port(serve):
    s = serve("runqlen")
    time.sleep(0.3)  # 99 samples a second on each CPU
    got = s.scrape()
    check_histogram(got, "bpfkit_runqlen_tasks")
    out, err = s.stop(signal.SIGTERM)
    assert err == "", err
    assert out == "", out  # nothing printed while serving (the lines before were read by Served)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=5).close()


def test_metrics_conversions_without_a_kernel():
    """The conversions alone: log2 slots to le bounds in base units, the clamped slot in +Inf
    only, linear sums exact, added counts, and a counter that never goes down."""
    from bpfkit.tools._prom import Metrics

    m = Metrics("bpfkit_t_", "t: test")
    m.histogram(None, {None: {1: 2, 3: 1, 19: 4}}, "Kbytes", top_slot=19)
    m.histogram("tasks", {0: {0: 5, 2: 3}}, "runqlen", section="cpu", linear=True)
    m.histogram("duration_seconds", {"a": {4: 1}}, "usecs", section="comm", sums={"a": 9}, add=True)
    m.histogram("duration_seconds", {"a": {4: 1}}, "usecs", section="comm", sums={"a": 10}, add=True)
    m.counter("calls_total", "calls", ("syscall",), {("read",): 3, ("write",): 1})
    m.counter("calls_total", "calls", ("syscall",), {("read",): 5})
    fams = samples(m.families())
    assert buckets(fams, "bpfkit_t_bytes") == [(2048.0, 2), (4096.0, 2), (8192.0, 3), (float("inf"), 7)]
    assert value(fams, "bpfkit_t_bytes_sum") == 2 * 1024 + 0.75 * 8 * 1024 + 4 * 2 ** 18 * 1024
    assert buckets(fams, "bpfkit_t_tasks", cpu="0") == [(0.0, 5), (2.0, 8), (float("inf"), 8)]
    assert value(fams, "bpfkit_t_tasks_sum", cpu="0") == 6
    assert buckets(fams, "bpfkit_t_duration_seconds", comm="a")[-1] == (float("inf"), 2)
    assert value(fams, "bpfkit_t_duration_seconds_sum", comm="a") == 19 / 1e6
    assert value(fams, "bpfkit_t_calls_total", syscall="read") == 5
    assert value(fams, "bpfkit_t_calls_total", syscall="write") == 1  # not dropped: it would go down


def test_a_scrape_runs_one_pass_of_the_tools_loop():
    """The interval loop, served: it yields once per scrape (not per interval), and the scrape
    is answered with what that pass gave."""
    import threading

    from bpfkit.tools._prom import Exporter

    e = Exporter("t", "test", ("127.0.0.1", 0))
    passes = []

    def loop() -> None:
        for _ in e.passes(seconds=5):
            passes.append(1)
            e.counter("passes_total", "passes", (), {(): len(passes)})
            if len(passes) == 3:
                break
        e.close()

    t = threading.Thread(target=loop)
    t.start()
    try:
        seen = []
        for _ in range(3):
            deadline = time.monotonic() + 10
            while True:
                try:
                    with urllib.request.urlopen(e.url, timeout=10) as r:
                        seen.append(samples(parse_text(r.read().decode()))["bpfkit_t_passes_total"][frozenset()])
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        assert seen == [1, 2, 3]
    finally:
        t.join(10)
        e.close()


def test_hardirqs_histograms_per_handler_lie_within_proc_interrupts(serve, disk_file: Path):  # noqa: F811
    outer0 = proc_interrupts()
    s = serve("hardirqs", "-d")
    inner0 = proc_interrupts()
    sched_direct_reads(disk_file)
    inner = delta(proc_interrupts(), inner0)
    got = s.scrape()
    outer = delta(proc_interrupts(), outer0)
    counts = {dict(k)["hardirq"]: v for k, v in got["bpfkit_hardirqs_seconds_count"].items()}
    for name in counts:
        check_histogram(got, "bpfkit_hardirqs_seconds", hardirq=name)
        assert inner.get(name, 0) <= counts[name] <= outer[name], (name, counts, inner, outer)
    disk_irq = max(inner, key=inner.get)
    assert inner[disk_irq] >= 250 and disk_irq in counts, (inner, counts)
    s.stop()


def test_biotop_adds_up_a_commands_reads(serve, direct_file: Path, named_dd: Path):  # noqa: F811
    s = serve("biotop")
    s.scrape()  # a pass before the reads: what it read is added, not replaced, by the next
    direct_reads(named_dd, direct_file, "16k", 10)
    first = s.scrape()
    direct_reads(named_dd, direct_file, "16k", 6)
    got = s.scrape()
    mine = {k: v for k, v in got["bpfkit_biotop_bytes_total"].items() if dict(k)["comm"] == named_dd.name}
    assert len(mine) == 1 and list(mine.values()) == [16 * 16384], got
    ((labels, _),) = mine.items()
    assert dict(labels)["op"] == "read" and dict(labels)["disk"] not in ("", "?"), labels
    assert value(got, "bpfkit_biotop_requests_total", **dict(labels)) >= 16
    assert value(got, "bpfkit_biotop_seconds_total", **dict(labels)) > \
        value(first, "bpfkit_biotop_seconds_total", **dict(labels)) > 0
    s.stop()


def test_tcptop_adds_up_a_processs_bytes(serve):
    c = child(textwrap.dedent("""
        import socket, threading
        srv = socket.create_server(("127.0.0.1", 0))
        def echo():
            conn, _ = srv.accept()
            with conn:
                for _ in range(30):
                    conn.sendall(conn.recv(1) * 3)
        go()
        t = threading.Thread(target=echo)
        t.start()
        with socket.create_connection(srv.getsockname()) as s:
            for _ in range(30):
                s.sendall(b"x")
                got = b""
                while len(got) < 3:
                    got += s.recv(3 - len(got))
        t.join()
    """))
    comm = comm_of(c.pid)
    s = serve("tcptop", "-p", str(c.pid))
    go(c, last=True)
    got = s.scrape()
    # Both ends are the child's: 30 bytes one way and 90 the other, sent and received.
    sent, received = got["bpfkit_tcptop_sent_bytes_total"], got["bpfkit_tcptop_received_bytes_total"]
    assert list(sent.values()) == [120] and list(received.values()) == [120], got
    assert [dict(k) for k in sent] == [dict(k) for k in received] == [{"comm": comm}], got
    s.stop()


def test_funclatency_counts_a_syscalls_calls_with_an_exact_sum(serve):
    c = child("go()\nfor _ in range(50):\n    os.getppid()\n")
    s = serve("funclatency", "-p", str(c.pid), "sys_getppid")
    go(c, last=True)
    got = s.scrape()
    rows = check_histogram(got, "bpfkit_funclatency_seconds")
    assert rows[-1][1] == 50, rows
    # The program's own total, in ns, converted: within what the buckets allow.
    low, high = sum_bounds(rows)
    assert low <= value(got, "bpfkit_funclatency_seconds_sum") <= high, (low, high, rows)
    assert "estimated" not in s.get()[1]
    s.stop()


def test_argdist_histogram_of_a_probes_values(serve):
    c = child("go()\nfor _ in range(40):\n    os.getppid()\n")
    s = serve("argdist", "-p", str(c.pid), "-H", "t:syscalls:sys_enter_getppid():u32:$PID#pids")
    go(c, last=True)
    got = s.scrape()
    rows = check_histogram(got, "bpfkit_argdist_value", probe="pids")
    # Every value is the child's pid: all 40 in the one bucket whose bound is the power of two above it.
    assert rows[-1][1] == 40 and in_bucket(rows, float(2 ** c.pid.bit_length())) == 40, rows
    s.stop()


def test_interval_and_count_bound_how_long_it_serves():
    r = subprocess.run([*BPFKIT, "runqlat", "1", "1", "--prometheus", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "" and "Serving Prometheus metrics" in r.stdout, r
