"""The block, memory, file and library tools (biosnoop, biotop, bitesize, filelife, drsnoop,
memleak, gethostlatency, sslsniff), each against a workload it must see, in text and JSON."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_kit import json_lines, start_quiet
from .test_tools import BPFKIT, finish, start_tool, wait_header

TOOLS = ["biosnoop", "biotop", "bitesize", "filelife", "drsnoop", "memleak", "gethostlatency", "sslsniff"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_and_ebpf(tool: str):
    h = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0 and h.stdout.startswith(f"usage: bpfkit {tool}") and "examples:" in h.stdout, h
    src = subprocess.run([*BPFKIT, tool, "--ebpf"], capture_output=True, text=True, timeout=60)
    assert src.returncode == 0 and 'SEC("' in src.stdout and "tool.bpf.h" in src.stdout, src.stderr
    listed = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.search(rf"^{tool}\s+\S", listed, re.M), listed


def go(p: subprocess.Popen) -> None:
    assert p.stdin is not None
    p.stdin.write(b"go\n")
    p.stdin.flush()


def python_workload(code: str, **kw) -> subprocess.Popen:
    """A Python child that waits for a line on stdin (go()) before running ``code``."""
    return subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + textwrap.dedent(code)],
                            stdin=subprocess.PIPE, **kw)


def interrupt(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGINT)
    return finish(p)


# -- block I/O -------------------------------------------------------------------------------------

@pytest.fixture
def direct_file(tmp_path: Path) -> Path:
    """A 1 MiB file on a block-backed filesystem, read with O_DIRECT: one request per read."""
    f = tmp_path / "bio-workload"
    subprocess.run(["dd", "if=/dev/zero", f"of={f}", "bs=1M", "count=1", "oflag=direct", "conv=fsync"],
                   capture_output=True, check=True)
    src = subprocess.run(["findmnt", "-no", "SOURCE", "-T", str(f)], capture_output=True, text=True).stdout.strip()
    if not src.startswith("/dev/"):
        pytest.skip(f"{tmp_path} is not on a block device ({src or 'unknown'}): no block I/O to trace")
    return f


@pytest.fixture
def named_dd(tmp_path: Path) -> Path:
    """dd under a name of its own, so that no other dd on the machine is counted."""
    dd = tmp_path / f"dd{uuid.uuid4().hex[:8]}"
    shutil.copy(shutil.which("dd") or "/bin/dd", dd)
    return dd


def direct_reads(dd: Path, f: Path, bs: str, n: int) -> int:
    p = subprocess.Popen([str(dd), f"if={f}", "of=/dev/null", f"bs={bs}", f"count={n}", "iflag=direct"],
                         stderr=subprocess.DEVNULL)
    assert p.wait() == 0
    return p.pid


@pytest.mark.kernels  # 6.1: submissions from block_rq_insert; 6.12: block_io_start
def test_biosnoop_shows_each_direct_read(direct_file: Path, named_dd: Path):
    p = start_tool("biosnoop", "-Q", "-P", "4")
    header = wait_header(p, r"LAT\(ms\)$")
    assert header.split() == ["TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES", "P", "QUE(ms)", "LAT(ms)"]
    pid = direct_reads(named_dd, direct_file, "64k", 8)
    rows = [line.split() for line in finish(p).splitlines()]
    mine = [r for r in rows if r[2] == str(pid)]
    assert len(mine) == 8, rows[-30:]
    assert all(r[1] == named_dd.name and r[4] == "R" and r[6] == "65536" for r in mine), mine
    # One file read in order: eight different sectors, and requests that follow their disk's last
    # one are marked sequential (other I/O on the disk may come between some of them).
    assert len({r[5] for r in mine}) == 8 and {r[7] for r in mine} <= {"S", "R", "?"}, mine
    assert "S" in [r[7] for r in mine[1:]], mine
    assert all(float(r[8]) >= 0 and float(r[9]) > 0 for r in mine)
    src = subprocess.run(["findmnt", "-no", "SOURCE", "-T", str(direct_file)], capture_output=True,
                         text=True).stdout.strip()
    assert os.path.basename(src).startswith(mine[0][3]), (src, mine[0])


def test_biosnoop_json_and_disk_filter(direct_file: Path, named_dd: Path):
    src = subprocess.run(["findmnt", "-no", "SOURCE", "-T", str(direct_file)], capture_output=True,
                         text=True).stdout.strip()
    disk = re.sub(r"(?<=\d)p\d+$|(?<=[a-z])\d+$", "", os.path.basename(src))  # vda1 -> vda, nvme0n1p2 -> nvme0n1
    if not os.path.exists(f"/dev/{disk}"):
        pytest.skip(f"no whole-disk device for {src}")
    p = start_quiet(3, "biosnoop", "-j", "-d", disk, "3")
    pid = direct_reads(named_dd, direct_file, "32k", 6)
    rows = json_lines(finish(p))
    assert all(set(r) == {"time", "comm", "pid", "disk", "t", "sector", "bytes", "lat_ms"} for r in rows), rows[:3]
    assert all(r["disk"] == disk for r in rows), rows
    mine = [r for r in rows if r["pid"] == pid]
    assert len(mine) == 6 and all((r["comm"], r["t"], r["bytes"]) == (named_dd.name, "R", 32768) for r in mine), rows
    assert all(isinstance(r["lat_ms"], float) and r["lat_ms"] > 0 for r in mine)


@pytest.mark.kernels  # 6.1: submissions from block_rq_insert; 6.12: block_io_start
def test_biotop_sums_a_process_reads(direct_file: Path, named_dd: Path):
    p = start_tool("biotop", "-C", "3", "1")
    wait_header(p, r"^Tracing\.\.\. Output every 3 secs")
    pid = direct_reads(named_dd, direct_file, "64k", 8)
    out = finish(p)
    assert re.search(r"^\d\d:\d\d:\d\d loadavg: ", out, re.M), out
    assert "PID     COMM             D MAJ MIN DISK       I/O  Kbytes  AVGms" in out, out
    mine = [line.split() for line in out.splitlines() if line.split()[:2] == [str(pid), named_dd.name]]
    assert len(mine) == 1, out
    _, _, d, major, minor, disk, io, kbytes, avg = mine[0]
    assert (d, int(kbytes)) == ("R", 512) and int(io) >= 8 and float(avg) > 0, mine
    assert disk != "?" and int(major) > 0, mine


def test_biotop_json_with_pid_filter(direct_file: Path, named_dd: Path):
    w = subprocess.Popen(["sh", "-c", f'read x; exec {named_dd} if={direct_file} of=/dev/null bs=16k count=10 '
                          'iflag=direct 2>/dev/null'], stdin=subprocess.PIPE)
    p = start_quiet(3, "biotop", "-j", "-p", str(w.pid), "2", "1")
    go(w)
    assert w.wait() == 0
    objs = json_lines(finish(p))
    assert len(objs) == 1 and re.fullmatch(r"[\d.]+ [\d.]+ [\d.]+ \d+/\d+ \d+", objs[0]["loadavg"]), objs
    rows = objs[0]["rows"]
    assert [(r["pid"], r["comm"], r["d"], r["kbytes"]) for r in rows] == [(w.pid, named_dd.name, "R", 160)], rows
    assert rows[0]["io"] >= 10 and rows[0]["avg_ms"] > 0


def test_bitesize_histogram_of_one_command(direct_file: Path, named_dd: Path):
    p = start_tool("bitesize", "-c", named_dd.name, "3", "1")
    wait_header(p, r"Tracing block I/O")
    direct_reads(named_dd, direct_file, "16k", 10)
    direct_reads(named_dd, direct_file, "128k", 3)
    out = finish(p)
    assert f"Process Name = {named_dd.name}" in out and "Kbytes              : count     distribution" in out
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(\d+ -> \d+)\s+:\s+(\d+)\s+\|", out, re.M)}
    assert counts.get("16 -> 31") == 10 and counts.get("128 -> 255") == 3, out
    assert sum(counts.values()) == 13, out


def test_bitesize_json(direct_file: Path, named_dd: Path):
    p = start_quiet(1, "bitesize", "-j", "-c", named_dd.name, "2", "1")
    direct_reads(named_dd, direct_file, "8k", 5)
    objs = json_lines(finish(p))
    assert len(objs) == 1 and objs[0]["val_type"] == "Kbytes", objs
    hists = objs[0]["histograms"]
    assert len(hists) == 1, hists
    buckets = {(b["interval-start"], b["interval-end"]): b["count"] for b in hists[0]["data"] if b["count"]}
    assert buckets == {(8, 15): 5}, hists


# -- files -----------------------------------------------------------------------------------------

FILELIFE_WORKLOAD = """
    import os, time
    os.chdir(sys.argv[1])
    fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    time.sleep(0.4)
    os.unlink(sys.argv[2])
    # Opened with O_CREAT but not created: its deletion is no file's end of life here.
    os.close(os.open(sys.argv[3], os.O_CREAT | os.O_WRONLY))
    os.unlink(sys.argv[3])
"""


def test_filelife_reports_a_short_lived_file(tmp_path: Path):
    marker, old = f"short-{uuid.uuid4().hex}", tmp_path / f"old-{uuid.uuid4().hex}"
    old.write_text("x")
    w = subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.readline()\n" +
                          textwrap.dedent(FILELIFE_WORKLOAD), str(tmp_path), marker, str(old)], stdin=subprocess.PIPE)
    p = start_tool("filelife", "-d", "4")
    header = wait_header(p, r"FILE$")
    assert header.split() == ["TIME", "PID", "COMM", "AGE(s)", "FILE"]
    go(w)
    assert w.wait() == 0
    rows = [line.split() for line in finish(p).splitlines()]
    hit = [r for r in rows if r[-1] == marker]
    assert len(hit) == 1, rows
    assert hit[0][1:3] == [str(w.pid), os.path.basename(sys.executable)[:15]], hit
    assert 0.35 <= float(hit[0][3]) < 3, hit
    assert not [r for r in rows if r[-1] == str(old)], rows


def test_filelife_json_with_pid_filter(tmp_path: Path):
    marker, old = f"short-{uuid.uuid4().hex}", tmp_path / f"old-{uuid.uuid4().hex}"
    old.write_text("x")
    w = subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.readline()\n" +
                          textwrap.dedent(FILELIFE_WORKLOAD), str(tmp_path), marker, str(old)], stdin=subprocess.PIPE)
    p = start_quiet(12, "filelife", "-j", "-p", str(w.pid), "-d", "3")
    go(w)
    assert w.wait() == 0
    # A file of this test's own, created and deleted outside the -p process: not shown.
    other = tmp_path / f"other-{uuid.uuid4().hex}"
    other.write_text("x")
    other.unlink()
    rows = json_lines(finish(p))
    assert [(r["pid"], r["file"]) for r in rows] == [(w.pid, marker)], rows
    assert set(rows[0]) == {"time", "pid", "comm", "age_s", "file"} and 0.35 <= rows[0]["age_s"] < 3, rows


# -- memory ----------------------------------------------------------------------------------------

@pytest.fixture
def memory_cgroup() -> Iterator[tuple[Path, str]]:
    """A memory cgroup limited to 16 MiB: ``(directory, file to write a pid to)``, on cgroup v2
    where the memory controller is there, else on the v1 memory hierarchy."""
    from bpfkit import BPF

    name = f"bpfkit-blkmem-{uuid.uuid4().hex[:8]}"
    v2 = Path(BPF.cgroup2_mountpoint())
    if "memory" in (v2 / "cgroup.controllers").read_text().split():
        d, limit = v2 / name, "memory.max"
    elif (Path("/sys/fs/cgroup/memory") / "memory.limit_in_bytes").exists():
        d, limit = Path("/sys/fs/cgroup/memory") / name, "memory.limit_in_bytes"
    else:
        pytest.skip("no memory cgroup controller (neither cgroup v2's memory nor a v1 memory hierarchy)")
    d.mkdir()
    try:
        (d / limit).write_text(str(16 << 20))
        yield d, "cgroup.procs"
    finally:
        deadline = time.monotonic() + 10
        while d.exists():
            try:
                d.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _reclaim_workload(tmp_path: Path, cgroup: Path) -> subprocess.Popen:
    """cat of a 64 MiB file, out of the page cache, inside the 16 MiB cgroup: its page cache
    charges make it reclaim the cgroup's memory itself, again and again."""
    big = tmp_path / "big"
    subprocess.run(["dd", "if=/dev/zero", f"of={big}", "bs=1M", "count=64", "oflag=direct"], capture_output=True,
                   check=True)
    fd = os.open(big, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    return subprocess.Popen(["sh", "-c", f'read x; echo $$ > {cgroup}/cgroup.procs; exec cat {big}'],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)


def test_drsnoop_sees_a_cgroup_reclaiming(tmp_path: Path, memory_cgroup: tuple[Path, str]):
    w = _reclaim_workload(tmp_path, memory_cgroup[0])
    p = start_tool("drsnoop", "-T", "-U", "-e", "-d", "4")
    header = wait_header(p, r"MEMCG$")
    assert header.split() == ["TIME(s)", "UID", "COMM", "PID", "LAT(ms)", "PAGES", "MEMCG"]
    go(w)
    assert w.wait() == 0
    rows = [line.split() for line in finish(p).splitlines()]
    mine = [r for r in rows if r[3] == str(w.pid)]
    assert mine, rows[-20:]
    assert all(r[1] == str(os.getuid()) and r[2] == "cat" and r[6] == "yes" for r in mine), mine
    assert sum(int(r[5]) for r in mine) > 0 and all(float(r[4]) >= 0 for r in mine), mine


def test_drsnoop_json_with_pid_filter(tmp_path: Path, memory_cgroup: tuple[Path, str]):
    w = _reclaim_workload(tmp_path, memory_cgroup[0])
    p = start_quiet(4, "drsnoop", "-j", "-e", "-p", str(w.pid), "-d", "3")
    go(w)
    assert w.wait() == 0
    rows = json_lines(finish(p))
    assert rows and all(set(r) == {"comm", "pid", "lat_ms", "pages", "memcg"} for r in rows), rows[:3]
    assert all((r["pid"], r["comm"], r["memcg"]) == (w.pid, "cat", True) for r in rows), rows
    assert sum(r["pages"] for r in rows) > 0


LEAKER = """
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    kept = [libc.malloc(54321) for _ in range(3)]   # never freed
    libc.free(libc.malloc(65432))                    # freed at once
    print("allocated", flush=True)
    sys.stdin.readline()
"""


def test_memleak_reports_the_allocations_never_freed():
    w = python_workload(LEAKER, stdout=subprocess.PIPE)
    p = start_tool("memleak", "-p", str(w.pid), "-o", "0", "3", "1")
    wait_header(p, rf"^Attaching to pid {w.pid}, Ctrl\+C to quit\.")
    go(w)
    assert w.stdout is not None and w.stdout.readline() == b"allocated\n"
    out = finish(p)
    go(w)
    w.wait()
    assert re.search(r"^\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:$", out, re.M), out
    assert re.search(r"^\t162963 bytes in 3 allocations from stack$", out, re.M), out
    assert "65432 bytes" not in out, out


def test_memleak_json_and_show_allocs():
    w = python_workload(LEAKER, stdout=subprocess.PIPE)
    # -z/-Z: only the size of the kept allocations (the interpreter maps arenas of its own).
    p = start_quiet(20, "memleak", "-j", "-a", "-p", str(w.pid), "-o", "0", "-z", "50000", "-Z", "60000", "2", "1")
    go(w)
    assert w.stdout is not None and w.stdout.readline() == b"allocated\n"
    objs = json_lines(finish(p))
    go(w)
    w.wait()
    assert len(objs) == 1, objs
    assert [(s["size"], s["count"]) for s in objs[0]["stacks"]] == [(162963, 3)], objs
    assert objs[0]["stacks"][0]["stack"], "the stack has frames"
    assert sorted(a["size"] for a in objs[0]["allocs"]) == [54321] * 3, objs


def test_memleak_kernel_mode_sees_pipes_held_open():
    p = start_quiet(6, "memleak", "-j", "-o", "0", "-T", "100000", "3", "1")
    fds = [os.pipe() for _ in range(300)]
    try:
        objs = json_lines(finish(p))
    finally:
        for r, w in fds:
            os.close(r)
            os.close(w)
    assert len(objs) == 1, objs
    pipe_stacks = [s for s in objs[0]["stacks"] if any("alloc_pipe_info" in f for f in s["stack"])]
    # Each pipe allocates its pipe_inode_info and its array of buffers in alloc_pipe_info().
    assert sum(s["count"] for s in pipe_stacks) >= 600, pipe_stacks


# -- libraries -------------------------------------------------------------------------------------

def test_gethostlatency_times_getaddrinfo():
    """The latency shown lies within the time the workload measured around its own call."""
    w = python_workload("import socket, time\nt = time.perf_counter()\nsocket.getaddrinfo('localhost', 80)\n"
                        "print((time.perf_counter() - t) * 1000, flush=True)\n", stdout=subprocess.PIPE)
    p = start_tool("gethostlatency", "-d", "3")
    header = wait_header(p, r"HOST$")
    assert header.split() == ["TIME", "PID", "COMM", "LATms", "HOST"]
    go(w)
    assert w.stdout is not None
    outer_ms = float(w.stdout.read())
    assert w.wait() == 0
    rows = [line.split() for line in finish(p).splitlines()]
    mine = [r for r in rows if r[1] == str(w.pid)]
    assert len(mine) == 1 and mine[0][4] == "localhost", rows
    assert 0 < float(mine[0][3]) <= outer_ms + 0.005, (mine, outer_ms)  # LATms is printed to 0.01 ms
    assert re.fullmatch(r"\d\d:\d\d:\d\d", mine[0][0])


def test_gethostlatency_json_with_pid_filter():
    w = python_workload("import socket\nsocket.getaddrinfo('localhost', 80)\nsocket.gethostbyname('localhost')\n")
    decoy = python_workload("import socket\nsocket.getaddrinfo('localhost', 80)\n")
    p = start_quiet(6, "gethostlatency", "-j", "-p", str(w.pid), "-d", "3")
    go(w)
    go(decoy)
    assert w.wait() == 0 and decoy.wait() == 0
    rows = json_lines(finish(p))
    assert [(r["pid"], r["host"]) for r in rows] == [(w.pid, "localhost")] * 2, rows
    assert all(set(r) == {"time", "pid", "comm", "lat_ms", "host"} and r["lat_ms"] >= 0 for r in rows)


TLS_WORKLOAD = """
    import os, socket, ssl, subprocess, threading
    d = sys.argv[1]
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    def serve():
        c, _ = srv.accept()
        with sctx.wrap_socket(c, server_side=True) as s:
            s.sendall(b"pong:" + s.recv(100))
    t = threading.Thread(target=serve)
    t.start()
    cctx = ssl.create_default_context()
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    with cctx.wrap_socket(socket.create_connection(srv.getsockname())) as s:
        s.sendall(sys.argv[2].encode())
        assert s.recv(100) == b"pong:" + sys.argv[2].encode()
    t.join()
"""


@pytest.fixture
def tls_workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A process that, once told to go, sends a marker over TLS on 127.0.0.1 to a thread of its
    own, which answers "pong:" and the marker. The certificate is made here by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test's certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / "k.pem",
                    "-out", tmp_path / "c.pem", "-days", "1", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    marker = f"ping-{uuid.uuid4().hex[:10]}"
    w = subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + textwrap.dedent(TLS_WORKLOAD),
                          str(tmp_path), marker], stdin=subprocess.PIPE)
    try:
        yield w, marker
    finally:
        if w.poll() is None:
            w.kill()
        w.wait()


def test_sslsniff_shows_the_plaintext(tls_workload: tuple[subprocess.Popen, str]):
    w, marker = tls_workload
    p = start_tool("sslsniff", "-x", "-l", "-p", str(w.pid))
    header = wait_header(p, r"LAT\(ms\)$")
    assert header.split() == ["FUNC", "TIME(s)", "COMM", "PID", "LEN", "UID", "TID", "LAT(ms)"]
    go(w)
    assert w.wait() == 0
    time.sleep(0.3)  # the last records reach the tool
    out = interrupt(p)
    blocks = re.findall(r"^(\S+)\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+|N/A) *\n"
                        r"----- DATA -----\n(.*)\n----- END DATA -----$", out, re.M)
    calls = sorted((func, int(n), data) for func, _comm, pid, n, uid, _tid, _lat, data in blocks
                   if pid == str(w.pid) and uid == str(os.getuid()))
    pong = "pong:" + marker
    # Each side's write and the other side's read, with the exact lengths and bytes.
    assert calls == sorted([("WRITE/SEND", len(marker), marker), ("READ/RECV", len(marker), marker),
                            ("WRITE/SEND", len(pong), pong), ("READ/RECV", len(pong), pong)]), out


def test_sslsniff_json_and_hexdump(tls_workload: tuple[subprocess.Popen, str]):
    w, marker = tls_workload
    p = start_quiet(8, "sslsniff", "-j", "--hexdump", "-g", "-n", "-p", str(w.pid))
    go(w)
    assert w.wait() == 0
    time.sleep(0.3)
    rows = json_lines(interrupt(p))
    assert all(set(r) == {"func", "time", "comm", "pid", "len", "data", "truncated"} for r in rows), rows
    writes = sorted((r["len"], bytes.fromhex(r["data"].replace("\n", ""))) for r in rows if r["func"] == "WRITE/SEND")
    assert writes == [(len(marker), marker.encode()), (len(marker) + 5, b"pong:" + marker.encode())], rows
    assert all(r["pid"] == w.pid and r["truncated"] == 0 for r in rows), rows


def test_sslsniff_refuses_without_a_library():
    r = subprocess.run([*BPFKIT, "sslsniff", "-o", "-g", "-n"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("bpfkit sslsniff: error: no TLS library to probe"), r.stderr


def test_the_block_rq_insert_rungs_load_and_attach_here():
    """Kernels with neither block_io_start (6.5+) nor a blk_account_io_start to probe (Debian's
    6.1 inlines it) take submissions from block_rq_insert: both of its rungs must pass the
    verifier and attach, beside the rest of biosnoop's and biotop's programs."""
    from bpfkit import BPF
    from bpfkit.tools import _kit, biosnoop, biotop

    start = biosnoop.LADDERS[0]
    inserts = [p for p in start if p.startswith("start_insert_")]
    assert biotop.LADDERS[0] == start and len(inserts) == 2
    ladders = [[p] for p in inserts] + [[p for p in start if p not in inserts]] + biosnoop.LADDERS[1:]
    for tool in (biosnoop, biotop):
        with BPF(src_file=tool.SOURCE, hdr_file=_kit.HEADER, alternatives=ladders) as b:
            attached = {link.program for link in b.links()}
            assert set(inserts) <= attached and len(attached) == len(ladders), attached
