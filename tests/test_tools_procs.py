"""The process tools (exitsnoop, killsnoop, sigsnoop, statsnoop, syncsnoop, mountsnoop, capable,
bashreadline, oomkill), each against a workload whose events are known: the values the tool
reports (pids, names, codes, paths, arguments) are checked in its text and in its JSON."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_kit import json_lines, start_quiet
from .test_tools import finish, start_tool, wait_header

MY_COMM = Path("/proc/self/comm").read_text().strip()


def waiting_child(code: str) -> subprocess.Popen:
    """A Python child that runs ``code`` once it reads a line: started before the tool, so that
    the tool can filter on its pid; go() lets it run."""
    return subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + code],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def go(child: subprocess.Popen) -> str:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.close()
    out = child.stdout.read() if child.stdout else ""
    child.wait(timeout=60)
    return out


def comm_of(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


# -- exitsnoop -------------------------------------------------------------------------------------

def test_exitsnoop_shows_exit_codes_and_signals():
    p = start_tool("exitsnoop", "-d", "3")
    header = wait_header(p, r"EXIT_CODE$")
    assert header.split() == ["PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE"]
    three = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 3"])
    killed = subprocess.Popen(["sleep", "30"])
    time.sleep(0.5)
    killed.kill()
    three.wait()
    killed.wait()
    lines = {int(line.split()[1]): line for line in finish(p).splitlines() if len(line.split()) >= 6}
    f = lines[three.pid].split()
    assert f[0] == "sh" and f[2] == str(os.getpid()) and f[3] == str(three.pid), lines[three.pid]
    assert 0.25 <= float(f[4]) < 5, "AGE(s) is how long the process lived (it slept 0.3 s)"
    assert lines[three.pid].endswith(" code 3")
    assert lines[killed.pid].split()[0] == "sleep" and lines[killed.pid].endswith(" signal 9 (SIGKILL)")


def test_exitsnoop_json_failed_only_and_label():
    p = start_quiet(1, "exitsnoop", "-j", "-x", "--label", "gone", "-d", "3")
    ok = subprocess.Popen(["true"])
    three = subprocess.Popen(["sh", "-c", "exit 3"])
    ok.wait()
    three.wait()
    rows = {r["pid"]: r for r in json_lines(finish(p))}
    assert ok.pid not in rows, "-x leaves out exit(0)"
    age = rows[three.pid].pop("age")
    assert rows[three.pid] == {"label": "gone", "pcomm": "sh", "pid": three.pid, "ppid": os.getpid(),
                               "tid": three.pid, "exit_code": 3, "sig": 0, "core_dumped": False}
    assert 0 <= age < 1, "seconds from fork to exit of a shell that only exits"


# -- killsnoop, sigsnoop ---------------------------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.kernels
def test_killsnoop_shows_kill_calls_with_their_result():
    target = subprocess.Popen(["sleep", "30"])
    gone = _dead_pid()
    try:
        p = start_tool("killsnoop", "-d", "2", "-p", str(os.getpid()))
        header = wait_header(p, r"RESULT$")
        assert header.split() == ["TIME", "PID", "COMM", "SIG", "TPID", "RESULT"]
        os.kill(target.pid, 0)
        with pytest.raises(ProcessLookupError):
            os.kill(gone, 0)
        rows = [line.split() for line in finish(p).splitlines()]
    finally:
        target.kill()
        target.wait()
    assert [r[1:] for r in rows] == [[str(os.getpid()), MY_COMM, "0", str(target.pid), "0"],
                                     [str(os.getpid()), MY_COMM, "0", str(gone), "-3"]], rows


def test_killsnoop_json_target_and_signal_filters():
    target = subprocess.Popen(["sleep", "30"])
    other = subprocess.Popen(["sleep", "30"])
    try:
        p = start_quiet(2, "killsnoop", "-j", "-T", str(target.pid), "-s", "SIGTERM", "-d", "2")
        os.kill(target.pid, 0)          # another signal: left out
        os.kill(other.pid, signal.SIGTERM)  # another target: left out
        os.kill(target.pid, signal.SIGTERM)
        target.wait()
        rows = json_lines(finish(p))
    finally:
        for c in (target, other):
            c.kill()
            c.wait()
    assert [{k: v for k, v in r.items() if k != "time"} for r in rows] == \
        [{"pid": os.getpid(), "comm": MY_COMM, "sig": 15, "tpid": target.pid, "result": 0}], rows


def test_sigsnoop_sees_sent_and_kernel_generated_signals():
    target = subprocess.Popen(["sleep", "30"])
    p = start_tool("sigsnoop", "-d", "2", "-n")
    header = wait_header(p, r"RESULT\s*$")
    assert header.split() == ["TIME", "PID", "COMM", "SIG", "TPID", "RESULT"]
    os.kill(target.pid, signal.SIGUSR1)
    target.wait()
    rows = [line.split() for line in finish(p).splitlines()]
    assert [str(os.getpid()), MY_COMM, "SIGUSR1", str(target.pid), "0"] in [r[1:] for r in rows], rows
    # The kernel told this process its child died: the sender is the dying child.
    assert [str(target.pid), "sleep", "SIGCHLD", str(os.getpid())] in [r[1:5] for r in rows], rows


def test_sigsnoop_kill_mode_json_has_signal_zero():
    target = subprocess.Popen(["sleep", "30"])
    try:
        p = start_quiet(6, "sigsnoop", "-k", "-j", "-p", str(os.getpid()), "-d", "2")
        os.kill(target.pid, 0)
        signal.pthread_kill(__import__("threading").get_ident(), 0)  # tgkill(me, me, 0)
        rows = json_lines(finish(p))
    finally:
        target.kill()
        target.wait()
    mine = [{k: r[k] for k in ("pid", "comm", "sig", "tpid", "result")} for r in rows]
    assert {"pid": os.getpid(), "comm": MY_COMM, "sig": 0, "tpid": target.pid, "result": 0} in mine, rows
    assert any(r["sig"] == 0 and r["tpid"] == __import__("threading").get_native_id() for r in mine), rows


# -- statsnoop -------------------------------------------------------------------------------------

@pytest.mark.kernels
def test_statsnoop_shows_the_marker_path(tmp_path: Path):
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    missing = tmp_path / f"missing-{uuid.uuid4().hex}"
    marker.write_text("x")
    p = start_tool("statsnoop", "-t", "-d", "2")
    header = wait_header(p, r"PATH$")
    assert header.split() == ["TIME(s)", "PID", "COMM", "FD", "ERR", "PATH"]
    w = subprocess.Popen(["stat", str(marker), str(missing)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w.wait()
    lines = finish(p).splitlines()
    hit = [line.split() for line in lines if line.endswith(str(marker))]
    miss = [line.split() for line in lines if line.endswith(str(missing))]
    assert hit and all(f[1:5] == [str(w.pid), "stat", "0", "0"] for f in hit), lines[-20:]
    assert miss and all(f[1:5] == [str(w.pid), "stat", "-1", "2"] for f in miss), lines[-20:]


def test_statsnoop_json_failed_of_one_pid(tmp_path: Path):
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    marker.write_text("x")
    child = waiting_child(f"import os\nos.stat({str(marker)!r})\ntry:\n    os.lstat({str(marker) + '.no'!r})\n"
                          "except OSError:\n    pass\n")
    p = start_quiet(10, "statsnoop", "-j", "-x", "-p", str(child.pid), "-d", "2")
    go(child)
    rows = json_lines(finish(p))
    assert rows == [{"pid": child.pid, "comm": comm_of_python(), "fd": -1, "err": 2, "path": str(marker) + ".no"}]


def comm_of_python() -> str:
    """The name a child started with sys.executable runs under."""
    r = subprocess.run([sys.executable, "-c", "print(open('/proc/self/comm').read().strip())"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


# -- syncsnoop -------------------------------------------------------------------------------------

SYNC_WORKLOAD = """
import ctypes, mmap, os
with open('/proc/self/comm', 'w') as f:
    f.write(NAME)
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(PATH, os.O_RDWR | os.O_CREAT)
os.write(fd, b'x' * 4096)
os.sync()
os.fsync(fd)
os.fdatasync(fd)
m = mmap.mmap(fd, 4096)
m.flush()
libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(4096), 2)
libc.syncfs(fd)
"""


@pytest.mark.parametrize("json", [pytest.param(False, marks=pytest.mark.kernels), True])
def test_syncsnoop_shows_each_sync_call(tmp_path: Path, json: bool):
    name = f"sync{uuid.uuid4().hex[:8]}"
    code = f"NAME, PATH = {name!r}, {str(tmp_path / 'f')!r}\n" + SYNC_WORKLOAD
    if json:
        p = start_quiet(6, "syncsnoop", "-j", "-d", "2")
    else:
        p = start_tool("syncsnoop", "-d", "2")
        assert wait_header(p, r"CALL$").split() == ["TIME(s)", "COMM", "CALL"]
    subprocess.run([sys.executable, "-c", code], check=True)
    out = finish(p)
    if json:
        calls = [r["call"] for r in json_lines(out) if r["comm"] == name]
        assert all(isinstance(r["time"], float) for r in json_lines(out))
    else:
        calls = [line.split()[2] for line in out.splitlines() if line.split()[1:2] == [name]]
    assert calls == ["sync", "fsync", "fdatasync", "msync", "sync_file_range", "syncfs"], out[-2000:]


# -- mountsnoop ------------------------------------------------------------------------------------

MOUNT_WORKLOAD = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000) != 0:  # CLONE_NEWNS: a private mount namespace
    sys.exit('unshare: ' + os.strerror(ctypes.get_errno()))
if libc.mount(b'none', b'/', None, 0x4000 | 0x40000, None) != 0:  # MS_REC | MS_PRIVATE
    sys.exit('private: ' + os.strerror(ctypes.get_errno()))
print(os.stat('/proc/self/ns/mnt').st_ino, flush=True)
sys.stdin.readline()
assert libc.mount(SOURCE, TARGET, b'tmpfs', 0x2 | 0x4, b'size=1m,mode=700') == 0  # MS_NOSUID | MS_NODEV
assert libc.umount2(TARGET, 2) == 0  # MNT_DETACH
assert libc.umount2(TARGET, 0) == -1
"""


@pytest.mark.parametrize("json", [pytest.param(False, marks=pytest.mark.kernels), True])
def test_mountsnoop_sees_a_tmpfs_mount_in_a_private_namespace(tmp_path: Path, json: bool):
    source = f"bpfkit-{uuid.uuid4().hex[:8]}"
    target = tmp_path / "mnt"
    target.mkdir()
    code = f"SOURCE, TARGET = {source.encode()!r}, {str(target).encode()!r}\n" + MOUNT_WORKLOAD
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    ns = int(child.stdout.readline())
    assert ns != os.stat("/proc/self/ns/mnt").st_ino
    if json:
        p = start_quiet(4, "mountsnoop", "-j", "-P", "-p", str(child.pid), "-d", "2")
    else:
        p = start_tool("mountsnoop", "-P", "-d", "2")
        header = wait_header(p, r"CALL$")
        assert header.split() == ["COMM", "PID", "TID", "PCOMM", "PPID", "MNT_NS", "CALL"]
    child.stdin.write("go\n")
    child.stdin.close()
    assert child.wait(timeout=30) == 0
    out = finish(p)
    calls = [f'mount("{source}", "{target}", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m,mode=700") = 0',
             f'umount("{target}", MNT_DETACH) = 0', f'umount("{target}", 0x0) = -EINVAL']
    comm = comm_of_python()
    if json:
        rows = json_lines(out)
        assert rows == [{"comm": comm, "pid": child.pid, "tid": child.pid, "pcomm": MY_COMM, "ppid": os.getpid(),
                         "mnt_ns": ns, "call": c} for c in calls], rows
    else:
        mine = [line for line in out.splitlines() if line.split()[1:2] == [str(child.pid)]]
        want = ["%-16s %-7d %-7d %-16s %-7d %-11d %s" % (comm, child.pid, child.pid, MY_COMM, os.getpid(), ns, c)
                for c in calls]
        assert mine == want, out[-2000:]


# -- capable ---------------------------------------------------------------------------------------

@pytest.mark.kernels
def test_capable_sees_the_nice_check():
    child = waiting_child("import os\nos.nice(-1)\n")  # raising priority needs CAP_SYS_NICE (23)
    p = start_tool("capable", "-x", "-p", str(child.pid), "-d", "2")
    header = wait_header(p, r"INSETID$")
    assert header.split() == ["TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "AUDIT", "INSETID"]
    comm = comm_of(child.pid)
    go(child)
    rows = [line.split() for line in finish(p).splitlines()]
    nice = [r for r in rows if r[5] == "23"]
    assert nice, rows
    # nice() asks capable(CAP_SYS_NICE): an audited check (AUDIT 1), not one made while setting
    # ids (INSETID 0). fentry and kprobe read them from cap_capable()'s options; the tracepoint
    # (6.18's hook) does not say them.
    audit = ["1", "0"] if _reads_kernel_functions() else ["N/A", "N/A"]
    assert nice[-1][1:] == ["0", str(child.pid), str(child.pid), comm, "23", "CAP_SYS_NICE"] + audit, nice[-1]


def _reads_kernel_functions() -> bool:
    """Whether a tool's fentry or kprobe rung can attach here (the qemu kernels), where it reads
    what a tracepoint rung cannot (capable's AUDIT, oomkill's pages)."""
    from bpfkit import features

    return features.supported("fentry") or features.supported("kprobes")


def test_capable_json():
    child = waiting_child("import os\nos.nice(-1)\n")
    p = start_quiet(1, "capable", "-j", "-p", str(child.pid), "-d", "2")
    comm = comm_of(child.pid)
    go(child)
    rows = json_lines(finish(p))
    nice = [r for r in rows if r["cap"] == 23]
    assert nice and {k: v for k, v in nice[-1].items() if k != "time"} == \
        {"uid": 0, "pid": child.pid, "comm": comm, "cap": 23, "name": "CAP_SYS_NICE",
         "audit": 1 if _reads_kernel_functions() else None}, rows
    assert all(r["pid"] == child.pid for r in rows)


# -- bashreadline ----------------------------------------------------------------------------------

def _type_in_bash(line: str) -> int:
    """Types ``line`` into an interactive bash on a pseudo-terminal; returns bash's pid."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "PS1": "$ ", "HOME": "/"}
    bash = subprocess.Popen(["/bin/bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    try:
        os.write(master, (line + "\nexit\n").encode())
        deadline = time.monotonic() + 30
        while bash.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    os.read(master, 4096)
                except OSError:
                    break
        assert bash.wait(timeout=30) == 0
    finally:
        os.close(master)
    return bash.pid


@pytest.mark.parametrize("json", [False, True])
def test_bashreadline_sees_a_typed_command(json: bool):
    if not os.path.exists("/bin/bash"):
        pytest.skip("no /bin/bash here")
    marker = f"echo bpfkit-{uuid.uuid4().hex}"
    if json:
        p = start_quiet(1, "bashreadline", "-j", "-d", "3")
    else:
        p = start_tool("bashreadline", "-d", "3")
        assert wait_header(p, r"COMMAND$").split() == ["TIME", "PID", "COMMAND"]
    pid = _type_in_bash(marker)
    out = finish(p)
    if json:
        rows = [r for r in json_lines(out) if r["pid"] == pid]
        assert [r["command"] for r in rows] == [marker, "exit"], out
    else:
        rows = [line for line in out.splitlines() if line.split()[1:2] == [str(pid)]]
        assert [line.split(None, 2)[2] for line in rows] == [marker, "exit"], out
        assert re.fullmatch(r"\d\d:\d\d:\d\d {2}%-7d %s" % (pid, re.escape(marker)), rows[0]), rows[0]


# -- oomkill ---------------------------------------------------------------------------------------

@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A new memory cgroup limited to 64 MiB (cgroup v2's memory.max, else v1's limit_in_bytes);
    the test skips where neither hierarchy has the memory controller. A v2 root that has the
    controller but does not give it to its children (the qemu kernels' fresh hierarchy) is made
    to for the test, and put back after."""
    from bpfkit import BPF

    v2 = Path(BPF.cgroup2_mountpoint())
    enabled = False
    if "memory" in (v2 / "cgroup.controllers").read_text().split() and \
            "memory" not in (v2 / "cgroup.subtree_control").read_text().split():
        (v2 / "cgroup.subtree_control").write_text("+memory")
        enabled = True
    if "memory" in (v2 / "cgroup.controllers").read_text().split() and \
            "memory" in (v2 / "cgroup.subtree_control").read_text().split():
        root, limits = v2, {"memory.max": "64M", "memory.swap.max": "0"}
    elif Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        root, limits = Path("/sys/fs/cgroup/memory"), {"memory.limit_in_bytes": str(64 << 20)}
    else:
        pytest.skip("no cgroup hierarchy here has the memory controller: no cgroup to OOM in")
    path = root / f"bpfkit-oom-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        for f, v in limits.items():
            if (path / f).exists():
                (path / f).write_text(v)
        yield path
    finally:
        deadline = time.monotonic() + 10
        while path.exists():
            try:
                path.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if enabled:
            try:
                (v2 / "cgroup.subtree_control").write_text("-memory")
            except OSError:  # another cgroup uses it now: leave it on
                pass


def _oom_pages(cgroup: Path) -> int | None:
    """The pages a memory cgroup's OOM is judged against (the kernel's oc->totalpages, from
    mem_cgroup_get_max()): its 64 MiB limit, plus the machine's swap unless the cgroup's swap
    limit is 0; None where the tool's hook does not know them (the tracepoint rung)."""
    if not _reads_kernel_functions():
        return None
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    swap_max = cgroup / "memory.swap.max"
    if not (swap_max.exists() and swap_max.read_text().strip() == "0"):
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        pages += int(meminfo["SwapTotal"].split()[0]) * 1024 // os.sysconf("SC_PAGE_SIZE")
    return pages


@pytest.mark.parametrize("json", [pytest.param(False, marks=pytest.mark.kernels), True])
def test_oomkill_sees_a_kill_in_a_small_cgroup(memory_cgroup: Path, json: bool):
    hog = waiting_child("x = b'1' * (512 << 20)\n")  # touches every page of 512 MiB
    (memory_cgroup / "cgroup.procs").write_text(str(hog.pid))
    comm = comm_of(hog.pid)
    if json:
        p = start_quiet(1, "oomkill", "-j", "-d", "3")
    else:
        p = start_tool("oomkill", "-d", "3")
        wait_header(p, r"^Tracing OOM kills\.\.\. Ctrl-C to stop\.$")
    go(hog)
    assert hog.returncode == -signal.SIGKILL, "the OOM killer ended it"
    out = finish(p)
    if json:
        rows = [r for r in json_lines(out) if r["tpid"] == hog.pid]
        assert len(rows) == 1, out
        r = rows[0]
        assert (r["fpid"], r["fcomm"], r["tcomm"]) == (hog.pid, comm, comm), r
        assert r["pages"] == _oom_pages(memory_cgroup), r
        assert re.fullmatch(r"[\d.]+ [\d.]+ [\d.]+ \d+/\d+ \d+", r["loadavg"]), r
    else:
        pages = _oom_pages(memory_cgroup)
        want = (r'\d\d:\d\d:\d\d Triggered by PID %d \("%s"\), OOM kill of PID %d \("%s"\), %s pages, '
                r"loadavg: [\d.]+ [\d.]+ [\d.]+ \d+/\d+ \d+" % (hog.pid, comm, hog.pid, comm,
                                                              r"\?" if pages is None else pages))
        assert len([line for line in out.splitlines() if re.fullmatch(want, line)]) == 1, out
