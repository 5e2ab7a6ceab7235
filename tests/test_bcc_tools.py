"""BCC's own tools, as Debian's bpfcc-tools installs them (``/usr/sbin/*-bpfcc``, never copied
into this repository), run unchanged through ``python -m bpfkit.bcc`` against a workload the test
makes, and what they print checked against it. On this kernel (no kprobes) their syscall kprobes
run as syscall tracepoints; their kernel struct reads are CO-RE reads of the running kernel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .test_tools_sched import busy_cpu  # noqa: F401 (a fixture)

PID = os.getpid()
SBIN = "/usr/sbin"
# BCC's programs print with print(): into a pipe, Python holds their lines until its buffer
# fills unless told otherwise (as BCC's own tools would be run into a pipe).
UNBUFFERED = dict(os.environ, PYTHONUNBUFFERED="1")


def tool(name: str) -> str:
    path = f"{SBIN}/{name}-bpfcc"
    assert os.path.exists(path), "make deps installs bpfcc-tools (APT_TEST), whose tools these are"
    return path


def waiting(p: subprocess.Popen, timeout: float = 60) -> None:
    """Waits until the tool's main thread blocks waiting for events or for its interval: BCC's
    tools open their perf buffers after printing their header, and an event sent before that is
    lost (as with BCC itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{p.pid}/wchan") as f:
            if re.search(r"epoll|ep_poll|nanosleep|poll_schedule|do_select|do_sys_poll", f.read()):
                return
        time.sleep(0.01)
    p.kill()
    p.wait()
    raise AssertionError("the tool never waited for events")


def start(name: str, *args: str, header: str) -> subprocess.Popen:
    """Starts BCC's tool ``name`` through bpfkit, waits for the line matching ``header``, then
    until the tool waits for events."""
    p = subprocess.Popen([sys.executable, "-m", "bpfkit.bcc", tool(name), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=UNBUFFERED)
    assert p.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise AssertionError(f"{name} ended before its header: {p.communicate(timeout=10)[1][-3000:]}")
        if re.search(header, line):
            waiting(p)
            return p
    p.kill()
    raise AssertionError(f"{name} printed no {header!r} in 30 s")


def stop(p: subprocess.Popen, settle: float = 0.3) -> str:
    """Ctrl-C after ``settle`` seconds; what the tool printed after its header."""
    time.sleep(settle)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode in (0, -signal.SIGINT), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return out


@pytest.mark.kernels  # in kernels with kprobes, the syscall kprobes themselves
def test_killsnoop_reports_each_kill_with_its_signal_target_and_result():
    """killsnoop's syscall__kill (entry, the syscall's arguments) and its kretprobe on the same
    syscall function (the result) run as sys_enter_kill and sys_exit_kill here: a kill that
    succeeds shows 0, one at a pid that is gone shows -ESRCH."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    p = start("killsnoop", header=r"^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT")
    try:
        os.kill(child.pid, signal.SIGUSR2)
        try:
            os.kill(gone.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    finally:
        out = stop(p)
        child.kill()
        child.wait()
    rows = [line.split() for line in out.splitlines() if line.split()[1:2] == [str(PID)]]
    assert [r[3:] for r in rows] == [[str(int(signal.SIGUSR2)), str(child.pid), "0"],
                                     [str(int(signal.SIGUSR1)), str(gone.pid), "-3"]], out


def test_exitsnoop_reports_the_childs_exit_code_and_parent():
    """exitsnoop (sched_process_exit's tracepoint; task_struct read through CO-RE): a child that
    exits with status 7 shows its pid, this process as its parent, and `code 7`."""
    p = start("exitsnoop", header=r"^PCOMM\s+PID\s+PPID\s+TID\s+AGE\(s\)\s+EXIT_CODE")
    child = subprocess.Popen([sys.executable, "-c", "import os; os._exit(7)"])
    assert child.wait() == 7
    out = stop(p)
    rows = [line.split() for line in out.splitlines() if line.split()[1:2] == [str(child.pid)]]
    assert len(rows) == 1, out
    pcomm, pid, ppid, tid, age, *code = rows[0]
    assert (pid, ppid, tid, code) == (str(child.pid), str(PID), str(child.pid), ["code", "7"]), rows
    assert 0 <= float(age) < 30


def test_tcplife_reports_the_bytes_each_end_sent_and_received():
    """tcplife (sock:inet_sock_set_state; its struct sock and tcp_sock reads are CO-RE reads of
    this kernel's layout, where BCC with mismatched headers printed TX_KB 100663450): each end
    of a loopback connection with its ports and the kilobytes it sent and received."""
    from .test_tools_net import LOCAL, RECV, SEND, Session

    s = Session(SEND, RECV)
    try:
        p = start("tcplife", header=r"^PID\s+COMM\s+LADDR\s+LPORT\s+RADDR\s+RPORT\s+TX_KB\s+RX_KB\s+MS")
        s.run()
        out = stop(p)
    finally:
        s.close()
    rows = [line.split() for line in out.splitlines() if len(line.split()) == 9]
    client = [r for r in rows if r[3] == str(s.port) and r[5] == str(s.listen_port)]
    server = [r for r in rows if r[3] == str(s.listen_port) and r[5] == str(s.port)]
    assert len(client) == 1 and len(server) == 1, out
    assert client[0][:3] == [str(s.pid), s.comm[:10], LOCAL] and client[0][4] == LOCAL, out
    assert client[0][6:8] == [str(SEND // 1024), str(RECV // 1024)], out
    # BCC's tcplife names the process in context at the socket's last opening state: on
    # loopback the client's packets carry the server end to ESTABLISHED, so the client again
    # (bpfkit's own tcplife names the server, which closed it).
    assert server[0][:3] == [str(s.pid), s.comm[:10], LOCAL], out
    assert server[0][6:8] == [str(RECV // 1024), str(SEND // 1024)], out
    assert float(client[0][8]) > 0 and float(server[0][8]) > 0


def test_runqlat_histogram_has_the_childs_waits(busy_cpu):  # noqa: F811 (the fixture imported above)
    """runqlat -p (its sched_wakeup/sched_switch probes, raw tracepoints here): a child that sleeps
    20 times on a CPU shared with a busy loop waits on the run queue after each wakeup, and the
    kernel's own sum of those waits (/proc/PID/schedstat) lies within the histogram's bounds."""
    from .test_tools_sched import SLEEPS, Child, text_hists

    c = Child(SLEEPS, busy_cpu)
    try:
        p = start("runqlat", "-p", str(c.pid), header=r"Tracing run queue latency")
        _, waited_ns = c.run()
        out = stop(p)
    finally:
        c.kill()
    hists = text_hists(out)
    assert list(hists) == [None], out
    h = hists[None]
    n = sum(h.values())
    assert 21 <= n <= 60, out
    low = sum(lo * k for lo, k in h.items())
    high = sum((2 * lo if lo else 1) * k for lo, k in h.items())
    slack = 10 * n + c.stolen_us
    assert low - slack <= waited_ns / 1000 <= high + slack, (low, waited_ns / 1000, high, out)


# -- BCC's examples (Debian's bpfcc-tools documentation) -------------------------------------------

EXAMPLES = "/usr/share/doc/bpfcc-tools/examples"


def example(path: str, header: str) -> subprocess.Popen:
    script = f"{EXAMPLES}/{path}"
    assert os.path.exists(script), "make deps installs bpfcc-tools (APT_TEST), whose examples these are"
    p = subprocess.Popen([sys.executable, "-m", "bpfkit.bcc", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=UNBUFFERED)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert re.search(header, line), line + (p.communicate(timeout=10)[1][-3000:] if p.poll() is not None else "")
    waiting(p)
    return p


def forks(n: int) -> list:
    """Forks ``n`` children that exit at once (each fork is a clone(2) of this process)."""
    kids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        kids.append(pid)
        os.waitpid(pid, 0)
    return kids


def test_hello_fields_prints_a_line_per_clone_of_this_process():
    """The tutorial's hello_fields.py: a function with no BCC markings, bpf_trace_printk with a
    format and no argument, attached with attach_kprobe to get_syscall_fnname("clone") (the
    syscall's tracepoint here) and read back with trace_fields() as bytes."""
    p = example("tracing/hello_fields.py", r"^TIME\(s\)\s+COMM\s+PID\s+MESSAGE")
    forks(3)
    out = stop(p)
    mine = [line.split(None, 3) for line in out.splitlines() if line.split()[2:3] == [str(PID)]]
    assert len(mine) == 3 and all(r[3] == "Hello, World!" for r in mine), out[-2000:]


def test_hello_perf_output_submits_an_event_per_clone():
    """hello_perf_output.py: BPF_PERF_OUTPUT, perf_submit of a struct, event() decoding it."""
    p = example("tracing/hello_perf_output.py", r"^TIME\(s\)\s+COMM\s+PID\s+MESSAGE")
    forks(2)
    out = stop(p)
    mine = [line.split(None, 3) for line in out.splitlines() if line.split()[2:3] == [str(PID)]]
    assert len(mine) == 2 and all(r[3] == "Hello, perf_output!" for r in mine), out[-2000:]


def test_sync_timing_reports_the_gap_between_two_syncs():
    """sync_timing.py: a BPF_HASH keeping the last sync's time; a second sync within a second
    prints how long ago the first was, which the test chose."""
    p = example("tracing/sync_timing.py", r"Tracing for quick sync")
    os.sync()
    time.sleep(0.25)
    os.sync()
    out = stop(p)
    gaps = [int(m) for m in re.findall(r"multiple syncs detected, last (\d+) ms ago", out)]
    assert len(gaps) == 1 and 250 <= gaps[0] < 1000, out


@pytest.mark.kernels
def test_opensnoop_reports_the_fd_and_errno_of_each_open(tmp_path):
    """opensnoop -p (its syscall kprobes on open/openat, syscall tracepoints here; the path read
    from user memory): an open that succeeds shows its fd, one that fails its errno."""
    marker = tmp_path / "bpfkit-opensnoop-marker"
    missing = tmp_path / "bpfkit-opensnoop-missing"
    p = start("opensnoop", "-p", str(PID), header=r"^PID\s+COMM\s+FD\s+ERR\s+PATH")
    fd = os.open(marker, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        os.open(missing, os.O_RDONLY)
    except FileNotFoundError:
        pass
    out = stop(p)
    rows = {r[-1]: r for r in (line.split() for line in out.splitlines()) if r and r[-1].startswith(str(tmp_path))}
    assert rows[str(marker)][:1] + rows[str(marker)][2:4] == [str(PID), str(fd), "0"], out
    assert rows[str(missing)][:1] + rows[str(missing)][2:4] == [str(PID), "-1", "2"], out


def test_profile_samples_a_busy_child_at_the_rate_asked_with_its_user_stacks():
    """BCC's profile (a perf_event program on the CPU clock, stacks in a BPF_STACK_TRACE, its
    kernel-address test against PAGE_OFFSET) at 99 Hz for 2 s of a child that only spins: about
    198 samples, all the child's (-p), its user stacks named through the interpreter's symbols."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        r = subprocess.run([sys.executable, "-m", "bpfkit.bcc", tool("profile"), "-F", "99", "-p", str(child.pid), "2"],
                           capture_output=True, text=True, timeout=120, env=UNBUFFERED)
    finally:
        child.kill()
        child.wait()
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    # Blocks: frames, then "    -    comm (pid)", then the count, then a blank line.
    blocks = [b.strip("\n").splitlines() for b in r.stdout.split("\n\n")[1:] if b.strip()]
    owners = {re.sub(r".*\((\d+)\)$", r"\1", b[-2].strip()) for b in blocks}
    assert owners == {str(child.pid)}, r.stdout[-3000:]
    samples = sum(int(b[-1]) for b in blocks)
    # A spinning process is on a CPU the whole time, bar the hypervisor's steal.
    assert 0.5 * 99 * 2 <= samples <= 99 * 2.6, samples
    frames = {f.strip() for b in blocks for f in b[:-2]}
    assert "_PyEval_EvalFrameDefault" in frames, sorted(frames)[:40]


def test_funccount_counts_a_tracepoint_pattern_for_this_process():
    """BCC's funccount over a tracepoint wildcard (its `t:` mode), limited to this process: the
    exact number of getpgid calls made."""
    p = start("funccount", "-p", str(PID), "-d", "3", "t:syscalls:sys_enter_getpgi*", header=r"^Tracing 1 functions")
    for _ in range(37):
        os.getpgid(0)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert re.search(r"^syscalls:sys_enter_getpgid\s+37$", out, re.M), out


def test_trace_filters_with_strcmp_and_prints_the_fields_asked(tmp_path):
    """BCC's trace with a STRCMP filter (bpfkit.bcc's StrcmpRewrite): one line per open of the
    marker file by this process, with the flags it passed, and none for another file; -M 3 ends
    it after three events (BCC's trace exits 1 on Ctrl-C)."""
    marker = tmp_path / "bpfkit-trace-marker"
    marker.write_text("x")
    spec = f't:syscalls:sys_enter_openat (STRCMP("{marker}", args->filename)) "flags %x", args->flags'
    p = start("trace", "-M", "3", "-p", str(PID), spec, header=r"^PID\s+TID\s+COMM\s+FUNC")
    os.close(os.open(os.devnull, os.O_RDONLY))
    flags = (os.O_RDONLY, os.O_RDONLY | os.O_NONBLOCK, os.O_RDWR)
    for f in flags:
        os.close(os.open(marker, f))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
    got = [line.split()[-1] for line in out.splitlines() if "sys_enter_openat" in line]
    # Python opens every file close-on-exec.
    assert got == [f"{f | os.O_CLOEXEC:x}" for f in flags], out


def attached(p: subprocess.Popen, timeout: float = 60) -> None:
    """Waits until the tool holds a BPF link or perf event (its probes are attached), for tools
    that print nothing before their first interval."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert p.poll() is None, p.communicate(timeout=10)[1][-3000:]
        fds = f"/proc/{p.pid}/fd"
        for fd in os.listdir(fds):
            try:
                if re.search(r"bpf_link|\[perf_event\]", os.readlink(f"{fds}/{fd}")):
                    return
            except OSError:
                pass
        time.sleep(0.02)
    p.kill()
    raise AssertionError("the tool attached nothing")


def test_argdist_counts_the_values_of_a_tracepoint_field():
    """BCC's argdist -C over a tracepoint field: how many times each pid argument was passed."""
    p = subprocess.Popen([sys.executable, "-m", "bpfkit.bcc", tool("argdist"), "-p", str(PID), "-i", "3", "-n", "1",
                          "-C", "t:syscalls:sys_enter_getpgid():int:args->pid"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=UNBUFFERED)
    attached(p)
    for arg, n in ((0, 5), (1, 3)):
        for _ in range(n):
            os.getpgid(arg)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
    counts = {int(m[2]): int(m[1]) for m in re.finditer(r"^\s+(\d+)\s+args->pid = (\d+)$", out, re.M)}
    assert counts == {0: 5, 1: 3}, out
