"""Each bundled tool, from the command line to the kernel, against a workload it must see."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .test_bcc_names import _own_cgroup_id
from .test_cgroup import _run_in, cgroup  # noqa: F401 (cgroup: a fixture)

BPFKIT = [sys.executable, "-m", "bpfkit"]
#: What a tool cannot run without, for the tests that run every tool: the generic tools' probe
#: (a syscall's function: a kprobe where there are kprobes, its tracepoints where not).
REQUIRED_ARGS = {"funccount": ["t:syscalls:sys_enter_getppid"], "funclatency": ["sys_getppid"],
                 "funcslower": ["sys_getppid"], "trace": ['t:syscalls:sys_enter_getppid "%d", $tgid'],
                 "argdist": ["-C", "t:syscalls:sys_enter_getppid():u32:$PID"],
                 "stackcount": ["t:syscalls:sys_enter_getppid"]}


def start_tool(*args: str) -> subprocess.Popen:
    p = subprocess.Popen([*BPFKIT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p


def wait_header(p: subprocess.Popen, pattern: str, timeout: float = 30) -> str:
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return line
    p.kill()
    raise AssertionError(f"no header matching {pattern!r}; got {lines!r}; stderr: {p.stderr.read() if p.stderr else ''}")


def finish(p: subprocess.Popen, timeout: float = 30) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return out


def test_list_names_the_tools_and_python_m_works():
    out = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, check=True).stdout
    for tool in ("opensnoop", "execsnoop", "biolatency"):
        assert re.search(rf"^{tool}\s+\S", out, re.M), out
    exe = shutil.which("bpfkit", path=os.path.dirname(sys.executable))
    assert exe, "pip install put a bpfkit command beside the interpreter"
    out2 = subprocess.run([exe, "list"], capture_output=True, text=True, check=True).stdout
    assert out2 == out


def test_unknown_tool_is_an_error():
    r = subprocess.run([*BPFKIT, "nosuchtool"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown tool" in r.stderr


def test_tools_print_their_bpf_source():
    out = subprocess.run([*BPFKIT, "opensnoop", "--ebpf"], capture_output=True, text=True, check=True).stdout
    assert 'SEC("tracepoint/syscalls/sys_enter_openat")' in out


def test_opensnoop_sees_the_marker_file(tmp_path: Path):
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    missing = tmp_path / f"missing-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_tool("opensnoop", "-d", "3", "-T", "-U")
    header = wait_header(p, r"PATH$")
    assert header.split() == ["TIME(s)", "UID", "PID", "COMM", "FD", "ERR", "PATH"]
    w = subprocess.Popen(["cat", str(marker), str(missing)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w.wait()
    out = finish(p)
    hit = [line for line in out.splitlines() if line.endswith(str(marker))]
    assert hit, out[-2000:]
    fields = hit[0].split()
    assert fields[2] == str(w.pid) and fields[3] == "cat" and int(fields[4]) >= 0 and fields[5] == "0"
    miss = [line for line in out.splitlines() if line.endswith(str(missing))]
    assert miss and miss[0].split()[4:6] == ["-1", "2"], "a failed open shows FD -1 and ERR 2 (ENOENT)"


def test_opensnoop_pid_and_failed_filters(tmp_path: Path):
    marker = tmp_path / f"only-mine-{uuid.uuid4().hex}"
    # The shell opens the missing marker itself (a builtin's redirection), and a child cat opens it too.
    w = subprocess.Popen(["sh", "-c", f"read x; {{ : < {marker}; }} 2>/dev/null; : < /etc/hostname; "
                          f"cat {marker} 2>/dev/null; true"], stdin=subprocess.PIPE)
    p = start_tool("opensnoop", "-x", "-p", str(w.pid), "-d", "3")
    wait_header(p, r"PATH$")
    assert w.stdin is not None
    w.stdin.write(b"go\n")
    w.stdin.close()
    w.wait()
    out = finish(p)
    lines = out.splitlines()  # the header was consumed by wait_header
    assert lines, "the shell's failed open of the missing marker is shown"
    # Only the shell itself (the pid filter is a process id; cat is a child with another pid)...
    assert all(line.split()[0] == str(w.pid) for line in lines), out
    # ...and only failures.
    assert all(line.split()[3] != "0" for line in lines), out
    assert [line.split()[-1] for line in lines] == [str(marker)], out


def test_opensnoop_cgroupmap_shows_the_cgroups_in_the_pinned_map_only(tmp_path: Path, pinned_set,
                                                                     cgroup: Path):  # noqa: F811
    path, cgset = pinned_set("u64")
    cgset[_own_cgroup_id()] = 1  # this process's cgroup, where `cat` runs; not the new one
    inside, outside = tmp_path / f"inside-{uuid.uuid4().hex}", tmp_path / f"outside-{uuid.uuid4().hex}"
    inside.write_text("x")
    outside.write_text("x")
    p = start_tool("opensnoop", "-d", "3", "--cgroupmap", path)
    wait_header(p, r"PATH$")
    w = subprocess.Popen(["cat", str(inside)], stdout=subprocess.DEVNULL)
    w.wait()
    _run_in(cgroup, f"open({str(outside)!r}).close(); print(open('/proc/self/cgroup').read())")
    out = finish(p)
    hit = [line.split() for line in out.splitlines() if line.endswith(str(inside))]
    assert len(hit) == 1 and hit[0][:2] == [str(w.pid), "cat"] and int(hit[0][2]) >= 0 and hit[0][3] == "0", out
    assert str(outside) not in out, "the open in a cgroup outside the map is filtered out"


def test_cgroupmap_and_mntnsmap_refuse_a_bad_map_in_one_line(tmp_path: Path, pinned_set):
    before = set(os.listdir("/sys/fs/bpf"))
    missing = "/sys/fs/bpf/bpfkit-test-no-such-map"
    r = subprocess.run([*BPFKIT, "opensnoop", "--cgroupmap", missing], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "does not exist" in r.stderr, r.stderr
    not_a_map = tmp_path / "file"
    not_a_map.write_text("x")
    narrow, _ = pinned_set("u64", key_type="u32")
    for flag, where, why in (("--mntnsmap", str(not_a_map), "no BPF map pinned there"),
                             ("--cgroupmap", narrow, "not a hash map with 8-byte keys")):
        r = subprocess.run([*BPFKIT, "opensnoop", flag, where], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and why in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert set(os.listdir("/sys/fs/bpf")) == before | {os.path.basename(narrow)}, "no pin is created"


def test_opensnoop_buffer_pages(tmp_path: Path):
    r = subprocess.run([*BPFKIT, "opensnoop", "-b", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "power of two" in r.stderr, r.stderr
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_tool("opensnoop", "-b", "4", "-d", "2")
    wait_header(p, r"PATH$")
    subprocess.run(["cat", str(marker)], stdout=subprocess.DEVNULL, check=True)
    assert any(line.endswith(str(marker)) for line in finish(p).splitlines())


def test_execsnoop_sees_the_marker_command():
    marker = f"marker-{uuid.uuid4().hex}"
    p = start_tool("execsnoop", "-d", "3", "-x")
    header = wait_header(p, r"ARGS$")
    assert header.split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]
    subprocess.run(["/bin/echo", marker, "second arg"], capture_output=True)
    try:
        subprocess.run([f"/nonexistent/{marker}"])
    except FileNotFoundError:
        pass
    out = finish(p)
    ok = [line for line in out.splitlines() if f"/bin/echo {marker} second arg" in line]
    assert ok, out[-2000:]
    f = ok[0].split()
    assert f[0] == "echo" and int(f[1]) > 0 and int(f[2]) == os.getpid() and f[3] == "0"
    failed = [line for line in out.splitlines() if f"/nonexistent/{marker}" in line]
    assert failed and failed[0].split()[3] == "-2", "-x shows failed exec()s with their error"


def test_execsnoop_name_filter_and_max_args():
    marker = f"nm-{uuid.uuid4().hex}"
    p = start_tool("execsnoop", "-d", "3", "-n", marker, "--max-args", "2")
    wait_header(p, r"ARGS$")
    subprocess.run(["/bin/true", "unrelated"])
    subprocess.run(["/bin/echo", marker, "b", "c", "d"], capture_output=True)
    out = finish(p)
    lines = out.splitlines()  # the header was consumed by wait_header
    assert len(lines) == 1, out
    assert lines[0].endswith(f"/bin/echo {marker} ..."), lines[0]


@pytest.fixture
def disk_file(tmp_path: Path) -> Path:
    """A 2 MiB file on a block-backed filesystem; reading it with O_DIRECT makes one block request
    per read. (Opening the raw disk is refused in some sandboxes, so the tests go through a file.)"""
    f = tmp_path / "bio-workload"
    subprocess.run(["dd", "if=/dev/zero", f"of={f}", "bs=1M", "count=2", "oflag=direct", "conv=fsync"],
                   capture_output=True, check=True)
    src = subprocess.run(["findmnt", "-no", "SOURCE", "-T", str(f)], capture_output=True, text=True).stdout.strip()
    if not src.startswith("/dev/"):
        pytest.skip(f"{tmp_path} is not on a block device ({src or 'unknown'}): no block I/O to trace")
    return f


def test_biolatency_counts_direct_reads(disk_file: Path):
    p = start_tool("biolatency", "-D", "3", "1")
    wait_header(p, r"Tracing block device I/O")
    subprocess.run(["dd", f"if={disk_file}", "of=/dev/null", "bs=4k", "count=300", "iflag=direct"],
                   capture_output=True, check=True)
    out = finish(p)
    disk = re.search(r"^disk = (\S+)", out, re.M)
    assert disk, out
    counts = [int(m.group(1)) for m in re.finditer(r"->\s+\d+\s+:\s+(\d+)\s+\|", out)]
    assert "usecs               : count     distribution" in out
    assert sum(counts) >= 300, out


def test_biolatency_milliseconds_and_interval_count(disk_file: Path):
    p = start_tool("biolatency", "-m", "-T", "1", "2")
    wait_header(p, r"Tracing block device I/O")
    subprocess.run(["dd", f"if={disk_file}", "of=/dev/null", "bs=4k", "count=50", "iflag=direct"],
                   capture_output=True, check=True)
    out = finish(p)
    assert len(re.findall(r"^\d\d:\d\d:\d\d\s*$", out, re.M)) == 2, out
    assert "msecs" in out


def test_examples_run():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "examples" / "count_opens.py")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.splitlines()[0] == "1000"
    out = subprocess.run([sys.executable, str(root / "examples" / "uprobe_latency.py"), "0.5"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "usecs               : count     distribution" in out
    assert sum(int(m) for m in re.findall(r":\s+(\d+)\s+\|", out)) > 10
