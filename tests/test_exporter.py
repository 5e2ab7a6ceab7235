"""``bpfkit exporter`` and ``bpfkit.exporter``: BPF maps as Prometheus metrics.

The exporter runs as the command does (``python -m bpfkit exporter``) and a real Prometheus
(Debian's ``/usr/bin/prometheus``) scrapes it every second; a child process makes an exact
number of ``getppid()`` calls and ``getpgid()`` calls with known arguments, and Prometheus's
query API must then give exactly those counts, and the histogram of the arguments its
cumulative buckets. The text and OpenMetrics forms are fetched by content negotiation, bad
configuration files must each give one line naming the file, line and key, SIGINT and SIGTERM
must end the exporter with status 0, and the Python API is read through prometheus_client's own
parser.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
pytest.importorskip("yaml")

from bpfkit import BPF  # noqa: E402
from bpfkit.tools import _syscalls  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from .test_cli import child_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "exporter"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NR_GETPGID = _syscalls.names().index("getpgid")
#: The histogram's values are getpgid(BASE + x) calls: no process has such a pid (pid_max is at
#: most 2^22), so they fail with ESRCH, and nothing else on the machine makes them.
BASE = 1_000_000_000

#: A program counting system calls by process and call, and a log2 histogram of the x of
#: getpgid(BASE + x), with the total of the x at slot bucket_max + 1 (ebpf_exporter's _sum).
CONFIG = """\
programs:
  - name: syscalls
    cflags: ["-DNR_GETPGID={nr}", "-DBASE={base}"]
    metrics:
      counters:
        - name: test_syscalls_total
          help: System calls by process and call
          table: calls
          labels:
            - name: pid
              size: 4
              decoders:
                - name: uint
            - name: syscall
              size: 4
              decoders:
                - name: uint
                - name: syscall
      histograms:
        - name: test_getpgid_arg
          help: log2 histogram of x in getpgid(BASE + x)
          table: arg_dist
          bucket_type: exp2
          bucket_min: 0
          bucket_max: 10
          labels:
            - name: bucket
              size: 4
              decoders:
                - name: uint
    code: |
      struct call_key {{
          u32 pid;
          u32 nr;
      }};

      struct {{
          __uint(type, BPF_MAP_TYPE_HASH);
          __uint(max_entries, 65536);
          __type(key, struct call_key);
          __type(value, u64);
      }} calls SEC(".maps");

      struct {{
          __uint(type, BPF_MAP_TYPE_ARRAY);
          __uint(max_entries, 12);
          __type(key, u32);
          __type(value, u64);
      }} arg_dist SEC(".maps");

      static __always_inline void add(void *map, void *key, u64 n)
      {{
          u64 *v = bpf_map_lookup_elem(map, key);

          if (v)
              __sync_fetch_and_add(v, n);
          else
              bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
      }}

      SEC("tracepoint/raw_syscalls/sys_enter")
      int on_enter(struct trace_event_raw_sys_enter *ctx)
      {{
          struct call_key k = {{ .pid = bpf_get_current_pid_tgid() >> 32, .nr = ctx->id }};
          u64 x = ctx->args[0] - BASE;
          u32 slot;

          add(&calls, &k, 1);
          if (ctx->id == NR_GETPGID && ctx->args[0] >= BASE && x < (1 << 20)) {{
              slot = bpf_log2l(x);
              slot = slot < 10 ? slot : 10;
              add(&arg_dist, &slot, 1);
              slot = 11;
              add(&arg_dist, &slot, x);
          }}
          return 0;
      }}
"""

N_GETPPID = 1234
#: Powers of two among them: bpf_log2l puts 2^k in slot k + 1, whose bound is 2^(k+1), so a
#: bucket counts the values below its bound.
VALUES = [1, 2, 3, 5, 8, 8, 100, 1000, 1000, 1023]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, text: str, name: str = "exporter.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


class Running:
    """A ``bpfkit exporter`` child process, started and waited for until it serves."""

    def __init__(self, config: Path, listen: str = "127.0.0.1:0", timeout: float = 120) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bpfkit", "exporter", "--config", str(config),
                                      "--listen", listen], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=child_env())
        self.stderr = ""
        deadline = time.monotonic() + timeout
        assert self.proc.stderr is not None
        while "serving" not in self.stderr:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            if not ready:
                self.stop()
                pytest.fail(f"the exporter did not start in {timeout} s: {self.stderr}")
            chunk = os.read(self.proc.stderr.fileno(), 65536).decode()
            if not chunk:
                self.proc.wait()
                pytest.fail(f"the exporter ended with status {self.proc.returncode}: {self.stderr}")
            self.stderr += chunk
        #: "bpfkit exporter: serving 2 metrics of 1 program on http://127.0.0.1:PORT/metrics"
        self.url = self.stderr.split(" on ", 1)[1].split()[0]

    def get(self, accept: str | None = None) -> tuple[str, str]:
        req = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.headers["Content-Type"], r.read().decode()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> tuple[int, str]:
        """Sends ``sig``; the status and the rest of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
            pytest.fail(f"the exporter did not end within {timeout} s of signal {sig}")
        self.stderr += err.decode()
        return self.proc.returncode, self.stderr


class Prometheus:
    """Debian's Prometheus server, scraping ``target`` every second into a temporary TSDB."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        self.port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(textwrap.dedent(f"""\
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: bpfkit
                scrape_interval: 1s
                scrape_timeout: 1s
                static_configs:
                  - targets: ["{target}"]
            """))
        self.log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.logpath = tmp_path / "prometheus.log"

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus ended: {self.logpath.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"prometheus was not ready in {timeout} s: {self.logpath.read_text()[-2000:]}")

    def query(self, q: str) -> list:
        """The instant vector ``q``: ``[(labels, value)]``."""
        out = self.api("/api/v1/query", query=q)
        assert out["status"] == "success", out
        return [(r["metric"], float(r["value"][1])) for r in out["data"]["result"]]

    def wait_for(self, q: str, done, timeout: float = 30) -> list:
        """Queries ``q`` until ``done(result)`` holds; the last result either way."""
        deadline = time.monotonic() + timeout
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(q)
            if done(result):
                break
            time.sleep(0.3)
        return result

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


WORKLOAD = """\
import os, sys
n, values = int(sys.argv[1]), [int(v) for v in sys.argv[2].split(",")]
for _ in range(n):
    os.getppid()
for x in values:
    try:
        os.getpgid({base} + x)
    except ProcessLookupError:
        pass
""".format(base=BASE)


def run_workload(n: int, values: list) -> int:
    """A child that makes ``n`` getppid() calls and one getpgid(BASE + x) per value; its pid."""
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(n), ",".join(map(str, values))])
    assert p.wait(timeout=60) == 0
    return p.pid


def expected_buckets(values: list, top: int = 10) -> dict:
    """le -> how many values fall below it: what bucket i of a bpf_log2l histogram counts."""
    out = {float(2 ** i): float(sum(v < 2 ** i for v in values)) for i in range(top + 1)}
    out[float("inf")] = float(len(values))
    return out


@pytest.mark.skipif(not os.path.exists(PROMETHEUS), reason="Prometheus is not installed (apt install prometheus)")
def test_prometheus_scrapes_exact_counts_and_histogram(tmp_path: Path):
    cfg = write_config(tmp_path, CONFIG.format(nr=NR_GETPGID, base=BASE))
    port = free_port()
    ex = Running(cfg, listen=f"127.0.0.1:{port}")
    prom = Prometheus(tmp_path, f"127.0.0.1:{port}")
    try:
        prom.wait_ready()
        pid = run_workload(N_GETPPID, VALUES)
        q = f'test_syscalls_total{{pid="{pid}",syscall="getppid"}}'
        got = prom.wait_for(q, lambda r: r and r[0][1] >= N_GETPPID)
        assert [v for _, v in got] == [N_GETPPID], (q, got)
        assert got[0][0]["job"] == "bpfkit"

        count = prom.wait_for("test_getpgid_arg_count", lambda r: r and r[0][1] >= len(VALUES))
        assert [v for _, v in count] == [len(VALUES)]
        total = prom.query("test_getpgid_arg_sum")
        assert [v for _, v in total] == [sum(VALUES)]
        buckets = {float(m["le"]): v for m, v in prom.query("test_getpgid_arg_bucket")}
        assert buckets == expected_buckets(VALUES)
        bounds = sorted(buckets)
        assert all(buckets[a] <= buckets[b] for a, b in zip(bounds, bounds[1:]))  # cumulative
        # The exporter's own metrics reached Prometheus too.
        errors = prom.query('bpfkit_exporter_scrape_errors_total{program="syscalls"}')
        assert sorted((m["metric"], v) for m, v in errors) == [("test_getpgid_arg", 0.0),
                                                                ("test_syscalls_total", 0.0)]
    finally:
        prom.stop()
        status, err = ex.stop()
    assert status == 0, err
    assert "Traceback" not in err


def test_text_and_openmetrics_by_accept_header(tmp_path: Path):
    cfg = write_config(tmp_path, CONFIG.format(nr=NR_GETPGID, base=BASE))
    ex = Running(cfg)
    try:
        pid = run_workload(N_GETPPID, VALUES)
        ctype, text = ex.get()
        om_type, om = ex.get("application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5")
    finally:
        status, err = ex.stop()
    assert status == 0 and "Traceback" not in err, err

    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
    assert om_type.startswith("application/openmetrics-text")
    assert om.endswith("# EOF\n") and not text.endswith("# EOF\n")
    line = f'test_syscalls_total{{pid="{pid}",syscall="getppid"}} {float(N_GETPPID)}'
    assert line in text.splitlines()
    assert "# TYPE test_syscalls_total counter" in text
    assert "# TYPE test_syscalls counter" in om  # OpenMetrics names the family without _total
    assert line in om.splitlines()

    for body, parse in ((text, text_string_to_metric_families), (om, _openmetrics)):
        fams = {f.name: f for f in parse(body)}
        hist = fams["test_getpgid_arg"]
        assert hist.type == "histogram"
        got = {float(s.labels["le"]): s.value for s in hist.samples if s.name.endswith("_bucket")}
        assert got == expected_buckets(VALUES)
        assert [s.value for s in hist.samples if s.name.endswith("_count")] == [len(VALUES)]
        # Self metrics: one scrape duration, entries and error count per metric.
        for fam in ("bpfkit_exporter_scrape_duration_seconds", "bpfkit_exporter_map_entries"):
            metrics = {(s.labels["program"], s.labels["metric"]): s.value for s in fams[fam].samples}
            assert set(metrics) == {("syscalls", "test_syscalls_total"), ("syscalls", "test_getpgid_arg")}
            assert all(v > 0 for v in metrics.values())
        errors = fams["bpfkit_exporter_scrape_errors"]
        assert errors.type == "counter"
        assert [s.value for s in errors.samples if s.name.endswith("_total")] == [0.0, 0.0]
        assert "process_cpu_seconds" in fams or "process_cpu_seconds_total" in fams


def _openmetrics(text: str) -> list:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse

    return list(parse(text))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_ends_quietly_and_detaches(tmp_path: Path, sig: int):
    cfg = write_config(tmp_path, CONFIG.format(nr=NR_GETPGID, base=BASE))
    ex = Running(cfg)
    # While it runs, its programs are attached: its process holds BPF link fds.
    links = [os.readlink(f"/proc/{ex.proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{ex.proc.pid}/fd")]
    assert "anon_inode:bpf_link" in links
    t0 = time.monotonic()
    status, err = ex.stop(sig)
    assert status == 0, err
    assert time.monotonic() - t0 < 5
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bpfkit exporter: serving 2 metrics of 1 program on "), err
    # (The leak check of conftest.py then finds none of its programs, maps or links in the kernel.)


# -- bad configuration files: one line, file:line: key: what -------------------------------------------

GOOD_METRIC = """\
programs:
  - name: bio
    metrics:
      counters:
        - name: c_total
          help: h
          table: counts
          labels:
            - name: k
              size: 4
              decoders:
                - name: uint
    code: |
      struct {
          __uint(type, BPF_MAP_TYPE_HASH);
          __uint(max_entries, 16);
          __type(key, u32);
          __type(value, u64);
      } counts SEC(".maps");
"""

#: (name, the file, its line, the key, a part of the message). Every case loads nothing into the
#: kernel, or fails before it could attach anything.
BAD = [
    ("yaml syntax", "programs:\n  - name: [x\n", 3, "", "not valid YAML"),
    ("empty", "", 1, "programs", "the file is empty"),
    ("no programs key", "program: []\n", 1, "program", "unknown key"),
    ("unknown key", GOOD_METRIC.replace("      counters:", "      countres:"), 4, "programs[0].metrics.countres",
     "unknown key"),
    ("size not a number", GOOD_METRIC.replace("size: 4", "size: four"), 10,
     "programs[0].metrics.counters[0].labels[0].size", "expected an integer"),
    ("missing help", GOOD_METRIC.replace("          help: h\n", ""), 5, "programs[0].metrics.counters[0]",
     "missing key 'help'"),
    ("unknown decoder", GOOD_METRIC.replace("name: uint", "name: uint65"), 12,
     "programs[0].metrics.counters[0].labels[0].decoders[0]", "unknown decoder 'uint65'"),
    ("code and file", GOOD_METRIC.replace("    code: |", "    file: x.bpf.c\n    code: |"), 2, "programs[0]",
     "one of the two"),
    ("missing file", GOOD_METRIC.split("    code: |")[0] + "    file: nothere.bpf.c\n", 13,
     "programs[0].file", "no such file"),
    ("bad bucket_type", GOOD_METRIC.replace("      counters:", "      histograms:").replace(
        "          table: counts\n", "          table: counts\n          bucket_type: exp3\n          bucket_max: 3\n"),
     8, "programs[0].metrics.histograms[0].bucket_type", "expected exp2 or linear"),
    ("bad metric name", GOOD_METRIC.replace("name: c_total", "name: c-total"), 5,
     "programs[0].metrics.counters[0].name", "not a valid metric name"),
    ("repeated key", GOOD_METRIC.replace("          help: h\n", "          help: h\n          help: i\n"), 7,
     "programs[0].metrics.counters[0].help", "repeated key"),
    # These compile and load the program, then find that the file does not fit it.
    ("no such map", GOOD_METRIC.replace("table: counts", "table: foo"), 7,
     "programs[0].metrics.counters[0].table", 'no map "foo" in program "bio"'),
    ("sizes do not add up", GOOD_METRIC.replace("size: 4", "size: 8"), 8,
     "programs[0].metrics.counters[0].labels", "the labels take 8 bytes (8); map 'counts' has 4-byte keys"),
    ("compile error", GOOD_METRIC.replace("__type(value, u64);", "__type(value, u64_t_nope);"), 18,
     "programs[0].code", "column"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_config_is_one_line_with_file_line_and_key(tmp_path: Path, case: tuple):
    _name, text, line, key, part = case
    cfg = write_config(tmp_path, text)
    r = subprocess.run([sys.executable, "-m", "bpfkit", "exporter", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=120, env=child_env())
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1, r.stderr
    assert len(lines) == 1, r.stderr
    where = f"{cfg}:{line}: {key}: " if key else f"{cfg}:{line}: "
    assert lines[0].startswith(f"bpfkit exporter: error: {where}"), lines[0]
    assert part in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_compile_error_names_the_line_of_the_file(tmp_path: Path):
    text = GOOD_METRIC + "      int f(void) { return nope; }\n"
    cfg = write_config(tmp_path, text)
    r = subprocess.run([sys.executable, "-m", "bpfkit", "exporter", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120, env=child_env())
    line = text.splitlines().index("      int f(void) { return nope; }") + 1
    column = "int f(void) { return nope; }".index("nope") + 1
    assert r.returncode == 1
    assert r.stderr.startswith(f"bpfkit exporter: error: {cfg}:{line}: programs[0].code: column {column}: error: "), \
        r.stderr
    assert "nope" in r.stderr


@pytest.mark.parametrize("argv, part", [
    (["--listen", "127.0.0.1:99999", "--config", "x.yaml"], "--listen"),
    (["--listen", "::1:80", "--config", "x.yaml"], "--listen"),
    ([], "--config"),
])
def test_usage_errors_are_one_line_status_2(argv: list, part: str):
    r = subprocess.run([sys.executable, "-m", "bpfkit", "exporter", *argv], capture_output=True, text=True,
                       timeout=60, env=child_env())
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("bpfkit exporter: error: ") and part in lines[0], r.stderr


def test_missing_file_and_busy_port_are_one_line(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "bpfkit", "exporter", "--config", str(tmp_path / "none.yaml")],
                       capture_output=True, text=True, timeout=60, env=child_env())
    assert r.returncode == 1
    assert r.stderr.strip() == f"bpfkit exporter: error: No such file or directory: '{tmp_path / 'none.yaml'}'"
    cfg = write_config(tmp_path, GOOD_METRIC)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "bpfkit", "exporter", "--config", str(cfg), "--listen",
                            f"127.0.0.1:{busy}"], capture_output=True, text=True, timeout=120, env=child_env())
    assert r.returncode == 1
    assert r.stderr.strip() == f"bpfkit exporter: error: --listen 127.0.0.1:{busy}: Address already in use"


# -- the examples ---------------------------------------------------------------------------------------------

def _samples(text: str, family: str) -> list:
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert family in fams, sorted(fams)
    return fams[family].samples


def test_examples_serve_their_metrics(tmp_path: Path):
    # syscount: this process's getppid() calls are among those counted.
    ex = Running(EXAMPLES / "syscount.yaml")
    try:
        before = {s.labels["syscall"]: s.value for s in _samples(ex.get()[1], "syscalls")}
        for _ in range(500):
            os.getppid()
        after = {s.labels["syscall"]: s.value for s in _samples(ex.get()[1], "syscalls")}
        assert after["getppid"] - before.get("getppid", 0) >= 500
        try:
            os.getpgid(BASE)
        except ProcessLookupError:
            pass
        errors = _samples(ex.get()[1], "syscall_errors")
        assert any(s.labels == {"syscall": "getpgid", "errno": "ESRCH"} and s.value >= 1 for s in errors)
    finally:
        assert ex.stop()[0] == 0

    # runqlat: the scheduler always has waits to count; the buckets are cumulative.
    ex = Running(EXAMPLES / "runqlat.yaml")
    try:
        time.sleep(0.5)
        samples = _samples(ex.get()[1], "runqueue_latency_seconds")
    finally:
        assert ex.stop()[0] == 0
    buckets = [s.value for s in samples if s.name.endswith("_bucket")]
    assert len(buckets) == 28 and buckets == sorted(buckets)
    count = [s.value for s in samples if s.name.endswith("_count")][0]
    assert count > 0 and count == buckets[-1]
    assert [s.value for s in samples if s.name.endswith("_sum")][0] > 0
    assert {s.labels["le"] for s in samples if s.name.endswith("_bucket")} >= {"1e-06", "0.000512", "+Inf"}

    # biolatency: a write of this file's, made durable, is a block request of the root disk.
    ex = Running(EXAMPLES / "biolatency.yaml")
    try:
        disk_file = ROOT / f".exporter-test-{os.getpid()}"
        try:
            with open(disk_file, "wb") as f:
                for _ in range(4):
                    f.write(os.urandom(1 << 16))
                    f.flush()
                    os.fsync(f.fileno())
        finally:
            disk_file.unlink()
        deadline = time.monotonic() + 10
        while True:
            samples = _samples(ex.get()[1], "bio_latency_seconds")
            writes = [s for s in samples if s.name.endswith("_count") and s.labels.get("operation") == "write"]
            if writes or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        assert ex.stop()[0] == 0
    assert writes and writes[0].value >= 1 and writes[0].labels["device"], samples


# -- the Python API ---------------------------------------------------------------------------------------------

API_SRC = r"""
const volatile u32 targ_tgid = 0;
const volatile u32 nr_getppid = 0;
const volatile u32 nr_getpgid = 0;

struct call_key {
    u32 pid;
    u32 nr;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 1024);
    __type(key, struct call_key);
    __type(value, u64);
} calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, u64);
} linear SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
    struct call_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .nr = ctx->id };
    u64 one = 1, *v;
    u32 x;

    if (k.pid != targ_tgid)
        return 0;
    if (ctx->id == nr_getppid) {
        v = bpf_map_lookup_elem(&calls, &k);
        if (v)
            *v += 1;   /* per-CPU: no other CPU writes this copy */
        else
            bpf_map_update_elem(&calls, &k, &one, BPF_NOEXIST);
    }
    if (ctx->id == nr_getpgid && ctx->args[0] >= BASE && ctx->args[0] < BASE + 20) {
        x = ctx->args[0] - BASE;
        v = bpf_map_lookup_elem(&linear, &x);
        if (v)
            __sync_fetch_and_add(v, 1);
        else
            bpf_map_update_elem(&linear, &x, &one, BPF_NOEXIST);
    }
    return 0;
}
"""


def test_python_api_counter_and_linear_histogram():
    from bpfkit.exporter import Label, SelfMetrics, counter, gauge, histogram
    from prometheus_client import CollectorRegistry, generate_latest

    linear_values = [0, 1, 1, 4, 7, 7, 7, 19]
    n = 777
    me = os.getpid()
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    with BPF(text=API_SRC, cflags=[f"-DBASE={BASE}"],
             consts={"targ_tgid": me, "nr_getppid": _syscalls.names().index("getppid"),
                     "nr_getpgid": NR_GETPGID}) as b:
        # Half the calls on each of two CPUs: the per-CPU counts must be summed to give n.
        cpus = sorted(os.sched_getaffinity(0))
        try:
            for i in range(n):
                if i in (0, n // 2):
                    os.sched_setaffinity(0, {cpus[0] if i == 0 else cpus[-1]})
                os.getppid()
        finally:
            os.sched_setaffinity(0, cpus)
        for x in linear_values:
            try:
                os.getpgid(BASE + x)
            except ProcessLookupError:
                pass
        reg = CollectorRegistry()
        # No sizes: the key's BTF struct gives them (pid, then nr: 4 bytes each).
        calls = counter(b["calls"], "api_calls_total", "getppid calls by process",
                        labels=[Label("comm", decoders=["comm"]), Label("syscall", decoders=["syscall"])],
                        registry=reg, program="api")
        hist = histogram(b["linear"], "api_linear", "x of getpgid(BASE + x)", labels=[Label("x")],
                         bucket_type="linear", bucket_min=0, bucket_max=20, registry=reg, program="api")
        total = gauge(b["linear"], "api_linear_calls", "getpgid calls, all x", registry=reg, program="api")
        reg.register(SelfMetrics([calls, hist, total]))
        fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}

        assert [(s.name, s.labels, s.value) for s in fams["api_calls"].samples] == [
            ("api_calls_total", {"comm": comm, "syscall": "getppid"}, float(n))]
        buckets = {float(s.labels["le"]): s.value for s in fams["api_linear"].samples if s.name.endswith("_bucket")}
        want = {float(i): float(sum(v <= i for v in linear_values)) for i in range(21)}
        want[float("inf")] = float(len(linear_values))
        assert buckets == want
        assert [s.value for s in fams["api_linear"].samples if s.name.endswith("_count")] == [len(linear_values)]
        assert [s.value for s in fams["api_linear"].samples if s.name.endswith("_sum")] == [0.0]  # no sum key
        assert fams["api_linear_calls"].type == "gauge"
        assert [(s.labels, s.value) for s in fams["api_linear_calls"].samples] == [({}, float(len(linear_values)))]
        entries = {s.labels["metric"]: s.value for s in fams["bpfkit_exporter_map_entries"].samples}
        assert entries == {"api_calls_total": 1.0, "api_linear": float(len(set(linear_values))),
                           "api_linear_calls": float(len(set(linear_values)))}

        # A label set that does not fit the key is refused when the metric is made.
        with pytest.raises(ValueError, match="the labels take 12 bytes"):
            counter(b["calls"], "bad_total", "h", labels=[Label("a", 8), Label("b", 4)], registry=reg)
        with pytest.raises(ValueError, match="bucket number is 3 bytes"):
            histogram(b["calls"], "bad_hist", "h", labels=[Label("x", 5), Label("slot", 3)], bucket_max=3,
                      registry=reg)
    # A closed program: the metric leaves the scrape and counts an error; the rest are served.
    text = generate_latest(reg).decode()
    assert "api_calls_total{" not in text
    errors = {s.labels["metric"]: s.value for s in
              next(f for f in text_string_to_metric_families(text) if f.name == "bpfkit_exporter_scrape_errors").samples}
    assert errors == {"api_calls_total": 1.0, "api_linear": 1.0, "api_linear_calls": 1.0}


def test_parse_listen_and_serve():
    from bpfkit.exporter import parse_listen, serve
    from prometheus_client import CollectorRegistry, Gauge

    assert parse_listen("9435") == ("", 9435)
    assert parse_listen(":9435") == ("", 9435)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)
    assert parse_listen("[::1]:9435") == ("::1", 9435)
    for bad in ("", "x", "1.2.3.4:", "1.2.3.4:65536", "::1:80", "[::1]", "host:-1"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    reg = CollectorRegistry()
    Gauge("api_up", "up", registry=reg).set(1)
    with serve("127.0.0.1:0", registry=reg) as server:
        with urllib.request.urlopen(server.url, timeout=10) as r:
            assert "api_up 1.0" in r.read().decode()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_import_bpfkit_loads_neither_prometheus_client_nor_yaml():
    r = subprocess.run([sys.executable, "-c", "import sys, bpfkit; bpfkit.BPF; import bpfkit.table; "
                        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'yaml')))"],
                       capture_output=True, text=True, timeout=60, env=child_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
