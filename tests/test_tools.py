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


def _open_marker(marker: Path, *flags: int, comm: str = "") -> subprocess.Popen:
    """A child Python that sets its comm (``comm``, by prctl) and then opens ``marker`` once with
    each of ``flags`` (``os.open``, which adds O_CLOEXEC), ignoring failures; waited for."""
    code = ("import ctypes, os, sys\n"
            "if sys.argv[2]: ctypes.CDLL(None).prctl(15, sys.argv[2].encode(), 0, 0, 0)\n"
            "for f in sys.argv[3:]:\n"
            "    try: os.close(os.open(sys.argv[1], int(f)))\n"
            "    except OSError: pass\n")
    w = subprocess.Popen([sys.executable, "-c", code, str(marker), comm, *map(str, flags)])
    w.wait()
    return w


def test_opensnoop_flag_filter_shows_only_opens_with_the_flag(tmp_path: Path):
    marker = tmp_path / f"flags-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_tool("opensnoop", "-d", "2", "-e", "-f", "O_WRONLY")
    header = wait_header(p, r"PATH$")
    assert header.split() == ["PID", "COMM", "FD", "ERR", "FLAGS", "PATH"]
    # Read-only, then write-only (appending), then read-write: O_RDWR does not hold the O_WRONLY bit.
    w = _open_marker(marker, os.O_RDONLY, os.O_WRONLY | os.O_APPEND, os.O_RDWR)
    out = finish(p)
    hit = [line.split() for line in out.splitlines() if line.endswith(str(marker))]
    assert len(hit) == 1, out[-2000:]
    assert hit[0][0] == str(w.pid) and int(hit[0][2]) >= 0 and hit[0][3] == "0", hit
    assert hit[0][4] == "%08o" % (os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC), hit


def test_opensnoop_extended_fields_show_each_opens_flags(tmp_path: Path):
    marker = tmp_path / f"extended-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_tool("opensnoop", "-d", "2", "-e")
    wait_header(p, r"FLAGS\s+PATH$")
    excl = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # fails: the marker exists
    w = _open_marker(marker, os.O_RDONLY, os.O_WRONLY | os.O_APPEND, excl)
    out = finish(p)
    hit = [line.split() for line in out.splitlines() if line.endswith(str(marker))]
    assert [h[0] for h in hit] == [str(w.pid)] * 3, out[-2000:]
    # FD, ERR and FLAGS (in octal, as BCC prints them) of each open in turn.
    assert [h[3:5] for h in hit] == [["0", "%08o" % os.O_CLOEXEC],
                                     ["0", "%08o" % (os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)],
                                     ["17", "%08o" % (excl | os.O_CLOEXEC)]], hit
    assert int(hit[0][2]) >= 0 and int(hit[1][2]) >= 0 and hit[2][2] == "-1", hit


def test_opensnoop_name_filter_matches_part_of_the_comm(tmp_path: Path):
    tag = uuid.uuid4().hex[:8]
    marker = tmp_path / f"name-{tag}"
    marker.write_text("x")
    p = start_tool("opensnoop", "-d", "2", "-n", tag)
    wait_header(p, r"PATH$")
    named = _open_marker(marker, os.O_RDONLY, comm=f"nm{tag}xyz")  # the tag inside the name, not at its start
    other = subprocess.Popen(["cat", str(marker)], stdout=subprocess.DEVNULL)
    other.wait()
    out = finish(p)
    rows = [line.split() for line in out.splitlines()]
    # The renamed child's open of the marker is shown; cat's (and python's before its rename) are not.
    hit = [r for r in rows if r[-1] == str(marker)]
    assert len(hit) == 1 and int(hit[0][2]) >= 0 and hit[0][3] == "0", out
    assert all(r[:2] == [str(named.pid), f"nm{tag}xyz"] for r in rows), out
    assert str(other.pid) not in [r[0] for r in rows]


def test_opensnoop_full_path_puts_the_working_directory_before_a_relative_path(tmp_path: Path):
    cwd = tmp_path / "deep" / "er"
    cwd.mkdir(parents=True)
    rel, absolute = f"relative-{uuid.uuid4().hex}", tmp_path / f"absolute-{uuid.uuid4().hex}"
    (cwd / rel).write_text("x")
    absolute.write_text("x")
    p = start_tool("opensnoop", "-d", "2", "-F")
    wait_header(p, r"PATH$")
    w = subprocess.Popen(["cat", rel, str(absolute)], cwd=cwd, stdout=subprocess.DEVNULL)
    w.wait()
    out = finish(p)
    paths = [line.split()[-1] for line in out.splitlines() if line.split()[:2] == [str(w.pid), "cat"]]
    assert str(cwd.resolve() / rel) in paths, out[-2000:]
    assert str(absolute) in paths, "an absolute path is shown as it was given"
    assert not [x for x in paths if x.endswith(rel) and x != str(cwd.resolve() / rel)], paths


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


def test_execsnoop_name_filter_and_max_args(tmp_path: Path):
    """-n matches the command's name (its comm after exec), not its arguments, as BCC's does;
    --max-args 2 keeps the program's path and its first argument."""
    marker = f"nm{uuid.uuid4().hex[:10]}"
    named = tmp_path / marker
    shutil.copy("/bin/echo", named)
    p = start_tool("execsnoop", "-d", "3", "-n", marker[2:8], "--max-args", "2")
    wait_header(p, r"ARGS$")
    subprocess.run(["/bin/true", "unrelated"])
    subprocess.run(["/bin/echo", marker, "b", "c", "d"], capture_output=True)  # the marker as an argument only
    done = subprocess.run([str(named), "b", "c", "d"], capture_output=True)
    out = finish(p)
    lines = out.splitlines()  # the header was consumed by wait_header
    assert len(lines) == 1, out
    assert lines[0].split()[0] == marker and lines[0].endswith(f"{named} b ..."), lines[0]
    assert done.returncode == 0


def test_execsnoop_quote_puts_each_argument_in_quotes():
    marker = f"quote-{uuid.uuid4().hex}"
    # -l sees the arguments as given, unquoted (as BCC's): its match spans two of them.
    p = start_tool("execsnoop", "-d", "2", "-q", "-l", f"{marker} two")
    wait_header(p, r"ARGS$")
    w = subprocess.Popen(["/bin/echo", marker, "two words", 'say "hi"'], stdout=subprocess.DEVNULL)
    w.wait()
    out = finish(p)
    lines = out.splitlines()
    assert len(lines) == 1, out
    f = lines[0].split(None, 4)
    assert f[:4] == ["echo", str(w.pid), str(os.getpid()), "0"], lines
    assert f[4] == f'"/bin/echo" "{marker}" "two words" "say \\"hi\\""', lines


def test_execsnoop_line_filter_shows_commands_whose_arguments_match():
    marker = f"line-{uuid.uuid4().hex}"
    p = start_tool("execsnoop", "-d", "2", "-l", f"{marker}-[0-9]+$")
    wait_header(p, r"ARGS$")
    for argv in (["/bin/echo", "a", f"{marker}-42"], ["/bin/echo", f"{marker}-x"], ["/bin/echo", marker, "7"],
                 ["/bin/true", f"{marker}-42", "b"]):
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    out = finish(p)
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].split()[0] == "echo" and lines[0].endswith(f" /bin/echo a {marker}-42"), lines


def test_execsnoop_ppid_filter_shows_only_that_parents_children():
    marker, grandchild = f"ppid-{uuid.uuid4().hex}", f"grandchild-{uuid.uuid4().hex}"
    p = start_tool("execsnoop", "-d", "2", "-P", str(os.getpid()))
    wait_header(p, r"ARGS$")
    child = subprocess.Popen(["/bin/echo", marker], stdout=subprocess.DEVNULL)
    child.wait()
    # The shell is this process's child too; the echo it runs is its own child, not ours. (The
    # marker is in its environment, not its arguments; a second command keeps it from exec'ing
    # the echo in its own place.)
    sh = subprocess.run(["/bin/sh", "-c", '/bin/echo "$M"; true'], env={**os.environ, "M": grandchild},
                        capture_output=True, text=True, check=True)
    assert sh.stdout == f"{grandchild}\n", "the grandchild ran"
    out = finish(p)
    rows = [line.split() for line in out.splitlines()]
    assert ["echo", str(child.pid), str(os.getpid()), "0", "/bin/echo", marker] in rows, out
    assert any(r[0] == "sh" and r[4:6] == ["/bin/sh", "-c"] for r in rows), out
    assert all(r[2] == str(os.getpid()) for r in rows), out
    assert grandchild not in out, out


def test_execsnoop_json_has_the_commands_values():
    from .test_kit import json_lines, start_quiet  # test_kit imports this module: not at the top

    marker = f"json-{uuid.uuid4().hex}"
    p = start_quiet(4, "execsnoop", "-j", "-x", "-d", "2")
    w = subprocess.Popen(["/bin/echo", marker, "two words"], stdout=subprocess.DEVNULL)
    w.wait()
    with pytest.raises(FileNotFoundError):
        subprocess.run([f"/nonexistent/{marker}", "arg"])
    rows = json_lines(finish(p))
    assert all(set(r) == {"pcomm", "pid", "ppid", "ret", "args"} for r in rows), rows[:3]
    hit = [r for r in rows if marker in r["args"]]
    assert len(hit) == 2, hit
    ok, failed = sorted(hit, key=lambda r: r["ret"], reverse=True)
    assert ok == {"pcomm": "echo", "pid": w.pid, "ppid": os.getpid(), "ret": 0,
                  "args": f"/bin/echo {marker} two words"}, ok
    # The failed exec() is the forked child's, still named after its parent, with ENOENT.
    assert failed["ppid"] == os.getpid() and failed["ret"] == -2, failed
    assert failed["args"] == f"/nonexistent/{marker} arg", failed


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


def _direct_reads(disk_file: Path, count: int) -> None:
    subprocess.run(["dd", f"if={disk_file}", "of=/dev/null", "bs=4k", f"count={count}", "iflag=direct"],
                   capture_output=True, check=True)


def _hist_counts(out: str) -> dict:
    """A text histogram output's counts, added up per section (``disk = vda``, ``flags = Read``;
    None without sections)."""
    counts: dict = {}
    section = None
    for line in out.splitlines():
        m = re.match(r"^(?:disk|flags) = (.*)$", line)
        if m:
            section = m.group(1)
        m = re.search(r"->\s+\d+\s+:\s+(\d+)\s+\|", line)
        if m:
            counts[section] = counts.get(section, 0) + int(m.group(1))
    return counts


def _whole_disk(path: Path) -> str:
    """The name of the disk (not the partition) a file's filesystem is on, as under /dev."""
    src = subprocess.run(["findmnt", "-no", "SOURCE", "-T", str(path)], capture_output=True, text=True).stdout.strip()
    rdev = os.stat(src).st_rdev
    sysfs = Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}").resolve()
    if (sysfs / "partition").exists():
        sysfs = sysfs.parent
    if any((sysfs / "slaves").glob("*")):
        pytest.skip(f"{src} is a stacked device (its requests are its members')")
    return sysfs.name


def test_biolatency_queued_still_counts_the_direct_reads(disk_file: Path):
    p = start_tool("biolatency", "-Q", "2", "1")
    wait_header(p, r"Tracing block device I/O")
    _direct_reads(disk_file, 200)
    counts = _hist_counts(finish(p))
    assert list(counts) == [None] and counts[None] >= 200, counts


def test_biolatency_flags_has_a_section_per_request_flags(disk_file: Path):
    p = start_tool("biolatency", "-F", "2", "1")
    wait_header(p, r"Tracing block device I/O")
    _direct_reads(disk_file, 200)
    # A buffered read of the file, out of the page cache: the kernel reads it ahead.
    fd = os.open(disk_file, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 16):
            pass
    finally:
        os.close(fd)
    counts = _hist_counts(finish(p))
    assert None not in counts, counts
    # The direct reads have the same flags (e.g. Idle-Sync-Read): one read section holds them.
    assert max(n for name, n in counts.items() if re.fullmatch(r"(\w+-)*Read", name)) >= 200, counts
    assert counts.get("ReadAhead-Read", 0) >= 1, counts


def test_biolatency_disk_filter_counts_that_disk_only(disk_file: Path):
    r = subprocess.run([*BPFKIT, "biolatency", "-d", "no-such-disk", "1", "1"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "no such disk" in r.stderr, r.stderr
    disk = _whole_disk(disk_file)
    others = sorted(d.name for d in Path("/sys/block").iterdir()
                    if d.name != disk and os.path.exists(f"/dev/{d.name}"))
    mine = start_tool("biolatency", "-D", "-d", disk, "2", "1")
    wait_header(mine, r"Tracing block device I/O")
    other = start_tool("biolatency", "-d", others[0], "2", "1") if others else None
    if other:
        wait_header(other, r"Tracing block device I/O")
    _direct_reads(disk_file, 200)
    counts = _hist_counts(finish(mine))
    assert list(counts) == [disk] and counts[disk] >= 200, counts
    if other:
        assert sum(_hist_counts(finish(other)).values()) < 200, f"-d {others[0]} counted the reads on {disk}"


def test_examples_run():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "examples" / "count_opens.py")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.splitlines()[0] == "1000"
    out = subprocess.run([sys.executable, str(root / "examples" / "uprobe_latency.py"), "0.5"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "usecs               : count     distribution" in out
    assert sum(int(m) for m in re.findall(r":\s+(\d+)\s+\|", out)) > 10
