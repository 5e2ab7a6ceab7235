"""The ``bpfkit`` command line as a Unix tool: one line and a non-zero status for every error the
user can cause, status 0 and silence for a closed pipe and for Ctrl-C, the privilege message
before anything else, the compiler actually used, and nothing loaded that a tool does not need
before its first event."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import bpfkit
import pytest

BPFKIT = [sys.executable, "-m", "bpfkit"]
#: The directory holding the bpfkit package under test, for child interpreters.
PKG_PARENT = str(Path(bpfkit.__file__).resolve().parent.parent)
TOOL_NAMES = ["opensnoop", "execsnoop", "vfsstat", "biolatency"]


def child_env(**extra: str) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([PKG_PARENT, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def stderr_lines(err: str) -> list:
    return [line for line in err.splitlines() if line.strip()]


# -- usage errors: one line, status 2 ---------------------------------------------------------

BAD_ARGS = [
    ["opensnoop", "-p", "-5"],
    ["opensnoop", "-p", "0"],
    ["opensnoop", "-p", "99999999999"],
    ["opensnoop", "-p", "12abc"],
    ["opensnoop", "-t", "-1"],
    ["opensnoop", "-u", "-1"],
    ["opensnoop", "-u", str(2**32 - 1)],
    ["opensnoop", "-u", f"no-such-user-{uuid.uuid4().hex[:8]}"],
    ["opensnoop", "-d", "inf"],
    ["opensnoop", "-d", "nan"],
    ["opensnoop", "-d", "0"],
    ["opensnoop", "-d", "-3"],
    ["opensnoop", "-d", "1e300"],
    ["opensnoop", "--no-such-flag"],
    ["execsnoop", "-n", "("],
    ["execsnoop", "-l", "["],
    ["execsnoop", "-n", "a{99999999999}"],
    ["execsnoop", "-u", "-1"],
    ["execsnoop", "-d", "inf"],
    ["execsnoop", "--max-args", "0"],
    ["execsnoop", "--max-args", "-3"],
    ["vfsstat", "0"],
    ["vfsstat", "-1"],
    ["vfsstat", "nan"],
    ["vfsstat", "inf"],
    ["vfsstat", "1", "0"],
    ["vfsstat", "1", "nan"],
    ["vfsstat", "1", "2", "3"],
    ["biolatency", "-1"],
    ["biolatency", "0"],
    ["biolatency", "nan"],
    ["biolatency", "1", "-1"],
    ["nosuchtool"],
    [],
]


@pytest.mark.parametrize("argv", BAD_ARGS, ids=lambda a: " ".join(a) or "(no command)")
def test_bad_values_are_one_line_and_status_2(argv: list):
    r = subprocess.run([*BPFKIT, *argv], capture_output=True, text=True, timeout=60)
    lines = stderr_lines(r.stderr)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and "error:" in lines[0], r.stderr
    assert r.stdout == ""


def test_a_usage_error_names_the_argument_and_the_value():
    r = subprocess.run([*BPFKIT, "opensnoop", "-p", "-5"], capture_output=True, text=True, timeout=60)
    assert r.stderr.startswith("bpfkit opensnoop: error: argument -p/--pid: '-5' is not a process id")


def test_good_values_parse():
    from bpfkit.tools import execsnoop, opensnoop, vfsstat

    a = opensnoop.parse_args(["-p", "181", "-t", "182", "-u", "root", "-d", "0.5", "-n", "ma"])
    assert (a.pid, a.tid, a.uid, a.duration, a.name) == (181, 182, 0, 0.5, "ma")
    a = execsnoop.parse_args(["-n", "ma.n", "-l", "x+", "-u", "0", "--max-args", "100"])
    assert a.name.search(b"domain") and a.line.search(b"axxb") and a.uid == 0 and a.max_args == 100
    a = vfsstat.parse_args(["0.25", "3"])
    assert (a.interval, a.count) == (0.25, 3)


def test_tool_parser_without_examples_section():
    from bpfkit.tools._kit import tool_parser

    for doc in ("a tool with no examples", None, "Examples::"):
        p = tool_parser("x", "does x", doc)
        assert p.epilog is None
        assert p.parse_args([]).ebpf is False
    p = tool_parser("x", "does x", "x: does x.\n\nExamples::\n\n    bpfkit x -a   # with a\n")
    assert "bpfkit x -a   # with a" in p.format_help()


# -- a closed pipe and a closed stdout ----------------------------------------------------------

#: The event tools ("snoops") that run on this kernel, each as it prints a header (capable's -v:
#: without it, on the tracepoint this kernel has, it says on stderr that it shows every check).
EVENT_TOOLS = [["opensnoop"], ["execsnoop"], ["exitsnoop"], ["killsnoop"], ["sigsnoop"], ["statsnoop"],
               ["tcpconnect"], ["tcpaccept"], ["tcplife"], ["tcpstates"], ["tcpretrans"], ["mountsnoop"],
               ["capable", "-v"], ["filelife"], ["drsnoop"], ["biosnoop"], ["runqslower"], ["oomkill"],
               ["bashreadline"], ["gethostlatency"], ["syncsnoop"]]
#: The interval tools, each for one short interval.
INTERVAL_TOOLS = [["vfsstat", "0.1", "3"], ["biolatency", "0.1", "1"], ["runqlat", "0.1", "1"],
                  ["syscount", "-i", "0.1", "-d", "0.1"], ["tcptop", "0.1", "1"], ["biotop", "0.1", "1"],
                  ["softirqs", "0.1", "1"], ["hardirqs", "0.1", "1"], ["cpudist", "0.1", "1"],
                  ["bitesize", "0.1", "1"], ["runqlen", "0.1", "1"]]
#: In JSON there is no header: a snoop notices the closed pipe itself, an interval tool at its
#: first object.
JSON_TOOLS = [["exitsnoop", "-j"], ["tcpstates", "-j"], ["statsnoop", "-j"], ["runqlat", "-j", "0.1", "1"],
              ["syscount", "-j", "-i", "0.1", "-d", "0.1"], ["softirqs", "-j", "0.1", "1"]]


@pytest.mark.parametrize("argv", [
    *EVENT_TOOLS, *INTERVAL_TOOLS, *JSON_TOOLS,
    ["list"], ["version"], ["features"], ["opensnoop", "-h"], ["opensnoop", "--ebpf"], ["-h"],
], ids=" ".join)
def test_a_closed_pipe_ends_quietly(argv: list):
    """The reader is gone before the first write (`bpfkit ... | true`): nothing on stderr."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([*BPFKIT, *argv], stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert p.stderr == "", p.stderr
    assert p.returncode == 0, p.returncode


def test_opensnoop_into_head_ends_quietly(tmp_path: Path):
    """`bpfkit opensnoop | head -3`: the reader leaves while events are flowing."""
    p = subprocess.Popen([*BPFKIT, "opensnoop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert "PATH" in p.stdout.readline()
    marker = tmp_path / "m"
    marker.write_text("x")
    opener = subprocess.Popen([sys.executable, "-c", (f"import time\nfor _ in range(3000):\n"
                                                      f"    open({str(marker)!r}).close(); time.sleep(0.001)")])
    try:
        lines = [p.stdout.readline() for _ in range(2)]
        assert all(lines), lines
        p.stdout.close()
        err = p.stderr.read() if p.stderr else ""
        p.wait(timeout=30)
    finally:
        opener.kill()
        opener.wait()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and err == "", (p.returncode, err)


#: Each event tool with a filter that a sleeping process (its pid for PID) makes match nothing.
#: Left out: those without a filter (tcpstates, tcpretrans, biosnoop, oomkill).
QUIET_FILTERS = {"opensnoop": ["-p", "PID"], "execsnoop": ["-n", "^$"], "exitsnoop": ["-p", "PID"],
                 "killsnoop": ["-p", "PID"], "sigsnoop": ["-p", "PID"], "statsnoop": ["-p", "PID"],
                 "tcpconnect": ["-p", "PID"], "tcpaccept": ["-p", "PID"], "tcplife": ["-p", "PID"],
                 "mountsnoop": ["-p", "PID"], "capable": ["-v", "-p", "PID"], "filelife": ["-p", "PID"],
                 "drsnoop": ["-p", "PID"], "runqslower": ["-p", "PID"], "bashreadline": ["-p", "PID"],
                 "gethostlatency": ["-p", "PID"], "syncsnoop": ["-p", "PID"]}


@pytest.mark.parametrize("tool", QUIET_FILTERS)
def test_a_snoop_ends_when_its_reader_leaves_even_with_no_events(tool: str):
    """The reader leaves after the header while no event comes (a filter matching a sleeping
    process): the tool notices the closed pipe itself instead of waiting for a write to fail."""
    sleeper = subprocess.Popen(["sleep", "60"])
    argv = [str(sleeper.pid) if a == "PID" else a for a in QUIET_FILTERS[tool]]
    p = subprocess.Popen([*BPFKIT, tool, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        header = p.stdout.readline()
        assert header.strip() and not header.startswith("{"), header  # its header (or "Tracing ...")
        p.stdout.close()
        t = time.monotonic()
        p.wait(timeout=10)
        waited = time.monotonic() - t
    finally:
        sleeper.kill()
        sleeper.wait()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and p.stderr is not None and p.stderr.read() == ""
    assert waited < 5, f"{tool} noticed its reader had gone only after {waited:.1f} s"


@pytest.mark.parametrize("argv", [["opensnoop"], ["list"], ["vfsstat", "1", "1"]], ids=" ".join)
def test_a_closed_stdout_is_one_line(argv: list):
    r = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *BPFKIT, *argv], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert stderr_lines(r.stderr) == ["bpfkit: error: standard output is closed"]


# -- Ctrl-C during start-up -----------------------------------------------------------------------

@pytest.mark.parametrize("tool,trials", [("opensnoop", 30), ("execsnoop", 8), ("vfsstat", 8), ("biolatency", 8)])
def test_ctrl_c_during_start_up_ends_quietly(tool: str, trials: int):
    """SIGINT at a random moment 0.05-0.3 s after exec, while the interpreter imports, the program
    loads and attaches, or the first events arrive: status 0, no traceback, and no hang (a lost
    Ctrl-C leaves the tool running)."""
    rng = random.Random(8)
    failures = []
    for _ in range(trials):
        p = subprocess.Popen([*BPFKIT, tool], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        delay = rng.uniform(0.05, 0.3)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            failures.append((round(delay, 3), "still running 10 s after Ctrl-C"))
            continue
        if p.returncode != 0 or "Traceback" in err or len(stderr_lines(err)) > 1:
            failures.append((round(delay, 3), p.returncode, err[-500:]))
    assert not failures, failures


def test_a_ctrl_c_python_drops_still_ends_the_command(tmp_path):
    """Python runs a signal handler wherever the main thread is; in a ``__del__`` or a weakref
    callback (importlib frees a module lock that way after each import) the KeyboardInterrupt
    cannot propagate and CPython drops it ("Exception ignored"), so a tool kept running 10 s
    after a Ctrl-C in one start-up of ~300. The command's frame must make it land anyway."""
    prog = tmp_path / "prog.py"
    prog.write_text(
        "import sys, time\n"
        "from bpfkit.cli import run\n"
        "class Dropped:\n"
        "    def __del__(self):\n"
        "        raise KeyboardInterrupt  # as a handler run here would\n"
        "def body():\n"
        "    Dropped()\n"
        "    time.sleep(5)  # a tool's blocking wait: only a real signal interrupts it\n"
        "    return 3\n"
        "sys.exit(run('prog', body))\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=PKG_PARENT))
    assert (r.returncode, r.stderr) == (0, "")
    assert time.monotonic() - t0 < 4


def test_a_ctrl_c_cpython_swallowed_at_start_up_ends_the_command(tmp_path):
    """A Ctrl-C while CPython checks whether a script's path is an import path entry is printed
    and dropped by CPython ("Failed checking if argv[0] is an import path entry"), which then runs
    the script: the `bpfkit` command finds it in sys.last_type and ends quietly."""
    script = tmp_path / "bpfkit"
    script.write_text(
        "import sys\n"
        "sys.last_type = KeyboardInterrupt  # what CPython's printing of it left\n"
        "from bpfkit.cli import main\n"
        "print('ran the command')\n"
        "sys.exit(main(['list']))\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=PKG_PARENT))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    script.write_text(script.read_text().replace("sys.last_type = KeyboardInterrupt", "pass"))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=PKG_PARENT))
    assert r.returncode == 0 and r.stdout.startswith("ran the command"), r


# -- privilege before anything else ---------------------------------------------------------------

def _nobody_python() -> list:
    """A command prefix running an interpreter as uid/gid 65534 (nobody) that can import this
    bpfkit, with HOME kept at root's home as `sudo -u` or a careless `su` leaves it."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop to an unprivileged user")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"HOME={os.path.expanduser('~')}",
              f"PYTHONPATH={PKG_PARENT}"]
    tried = []
    for py in dict.fromkeys([sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3"]):
        r = subprocess.run([*prefix, py, "-c", "import bpfkit._native"], capture_output=True, text=True)
        if r.returncode == 0:
            return [*prefix, py]
        tried.append(f"{py}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    pytest.skip("no interpreter that user nobody can run and that imports this bpfkit: " + "; ".join(tried))


@pytest.mark.parametrize("argv", [["features"], ["opensnoop"], ["execsnoop", "-x"], ["vfsstat"], ["biolatency"]],
                         ids=" ".join)
def test_without_privilege_the_first_error_says_so(argv: list):
    r = subprocess.run([*_nobody_python(), "-m", "bpfkit", *argv], capture_output=True, text=True, timeout=60)
    lines = stderr_lines(r.stderr)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "CAP_BPF" in lines[0] and ".cache" not in lines[0], lines[0]
    assert lines[0].startswith(f"bpfkit {argv[0]}: error: ")


def test_help_and_source_need_no_privilege():
    py = _nobody_python()
    r = subprocess.run([*py, "-m", "bpfkit", "opensnoop", "-h"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--pid" in r.stdout and r.stderr == "", r.stderr
    r = subprocess.run([*py, "-m", "bpfkit", "opensnoop", "--ebpf"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SEC(" in r.stdout and r.stderr == "", r.stderr


def test_features_as_root_lists_the_kernel_and_every_feature():
    from bpfkit import features

    r = subprocess.run([*BPFKIT, "features"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"kernel {os.uname().release}"
    assert len(lines) == 1 + len(features.FEATURES)


# -- the compiler that `bpfkit version` names ------------------------------------------------------

def test_version_names_zig_when_it_is_the_only_compiler():
    spec = importlib.util.find_spec("ziglang")
    if spec is None:
        pytest.skip("the ziglang package (the [zig] extra) is not installed")
    env = child_env(PATH=os.path.dirname(sys.executable))
    env.pop("BPFKIT_CLANG", None)
    r = subprocess.run([sys.executable, "-m", "bpfkit", "version"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    compiler = r.stdout.split("compiler: ", 1)[1].strip()
    assert compiler.startswith(str(Path(spec.origin or "").parent / "zig")) and compiler.endswith("(from ziglang)"), \
        r.stdout


def test_version_names_clang_from_path():
    clang = shutil.which("clang")
    if not clang:
        pytest.skip("no clang on PATH")
    env = child_env()
    env.pop("BPFKIT_CLANG", None)
    r = subprocess.run([*BPFKIT, "version"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"bpfkit {bpfkit.__version__}, libbpf {bpfkit.LIBBPF_VERSION}, compiler: ")
    assert "clang" in r.stdout and "(from PATH)" in r.stdout, r.stdout


def test_version_with_no_compiler_says_why_in_one_line():
    env = child_env(PATH="/nonexistent", BPFKIT_CLANG="")
    # A ziglang package beside the interpreter would be found: hide it by running without site-packages.
    r = subprocess.run([sys.executable, "-S", "-m", "bpfkit", "version"], capture_output=True, text=True, env=env,
                       timeout=60)
    if "(from ziglang)" in r.stdout:
        pytest.skip("ziglang is importable without site-packages here")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert len(r.stdout.splitlines()) == 1 and "compiler: none (no BPF compiler found" in r.stdout, r.stdout


# -- what `import bpfkit` and a tool's start load -------------------------------------------------

def _modules_after(code: str) -> set:
    r = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                       capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_import_bpfkit_loads_nothing_else():
    loaded = _modules_after("import bpfkit")
    assert {m for m in loaded if m.startswith("bpfkit")} == {"bpfkit"}
    assert not loaded & {"numpy", "logging", "dataclasses", "typing", "ctypes", "bpfkit._native"}


def test_a_tool_start_loads_no_numpy_and_no_usdt():
    """What `bpfkit opensnoop` imports up to its first event (parse, load, attach, open the ring)."""
    loaded = _modules_after(
        "from bpfkit.tools import opensnoop\n"
        "args = opensnoop.parse_args([])\n"
        "b = opensnoop.TOOL.load(args)\n"
        "b['events'].open_ring_buffer(lambda *a: None)\n"
        "b.close()")
    assert "numpy" not in loaded and "bpfkit.usdt" not in loaded, sorted(m for m in loaded if "bpfkit" in m)


def test_public_names_resolve():
    code = ("import bpfkit\nnames = list(bpfkit.__all__)\n"
            "missing = [n for n in names if getattr(bpfkit, n, None) is None]\nassert not missing, missing\n"
            "assert set(names) <= set(dir(bpfkit))\n"
            "ns = {}\nexec('from bpfkit import *', ns)\nassert set(names) <= set(ns), set(names) - set(ns)\n"
            "from bpfkit import BPF, features, _native, PrivilegeError\n"
            "assert issubclass(PrivilegeError, bpfkit.BPFError) and bpfkit.LIBBPF_VERSION == _native.LIBBPF_VERSION\n"
            "print(len(names))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(bpfkit.__all__) >= 27
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        bpfkit.no_such_name  # noqa: B018


def test_bpfkit_logger_has_a_null_handler_once_bpf_is_used():
    code = ("import logging, bpfkit\nassert not logging.getLogger('bpfkit').handlers\nbpfkit.BPF\n"
            "print([type(h).__name__ for h in logging.getLogger('bpfkit').handlers])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['NullHandler']"
