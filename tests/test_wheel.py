"""The release wheel, as a user on another machine gets it: `make build` makes it (abi3,
manylinux2014, linked by zig) and installs it into the project's venv; here it is checked with
auditwheel and installed into fresh virtual environments of the oldest and the newest Python the
project supports, with no C compiler on PATH but the ``[zig]`` extra's, and a bundled tool runs
for real from each: opensnoop sees the file a child opens."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The oldest and newest Python versions the wheel must install on.
PYTHONS = ("3.9", "3.13")


def wheel() -> Path:
    found = sorted(ROOT.glob("dist/bpfkit-*-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"))
    assert found, "no x86_64 wheel in dist/: `make build` makes it"
    return found[-1]


def interpreter(version: str) -> str:
    """Python ``version``'s interpreter: as pyenv installs it, or on PATH (not a pyenv shim,
    which runs only the versions pyenv is told to)."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    if found:
        return found[-1]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = shutil.which(f"python{version}", path=d)
        if exe and "/shims/" not in exe:
            return exe
    pytest.fail(f"Python {version} is not installed (under {root} or on PATH): `pyenv install {version}`")


def test_the_wheel_needs_nothing_but_glibc_2_17():
    auditwheel = Path(sys.executable).with_name("auditwheel")
    assert auditwheel.exists(), "make test installs auditwheel"
    out = subprocess.run([str(auditwheel), "show", str(wheel())], capture_output=True, text=True, check=True).stdout
    assert '"manylinux_2_17_x86_64"' in out, out
    # Only glibc's own libraries are needed: libbpf, libelf and zlib are inside the module.
    libs = set(re.findall(r"\b(lib[\w+-]+\.so(?:\.\d+)*)", out))
    assert libs and libs <= {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1",
                             "libgcc_s.so.1"}, libs


@pytest.mark.parametrize("version", PYTHONS)
def test_the_wheel_installs_and_runs_a_tool(version: str, tmp_path: Path):
    venv = tmp_path / f"venv{version}"
    subprocess.run([interpreter(version), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"{wheel()}[zig]"], check=True, timeout=600)
    # No compiler on PATH: the venv's own bin only, so BPF is compiled by the ziglang package.
    env = {"PATH": str(venv / "bin"), "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "BPFKIT_CACHE_DIR": str(tmp_path / "cache")}
    assert shutil.which("clang", path=env["PATH"]) is None
    marker = tmp_path / f"wheel-marker-{uuid.uuid4().hex}"
    child = subprocess.Popen([str(venv / "bin" / "python"), "-c",
                              f"import sys\nsys.stdin.readline()\nopen({str(marker)!r}, 'w').close()"],
                             stdin=subprocess.PIPE, text=True)
    tool = subprocess.Popen([str(venv / "bin" / "bpfkit"), "opensnoop", "-p", str(child.pid), "-d", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert tool.stdout is not None and child.stdin is not None
        header = tool.stdout.readline()
        assert header.split()[:2] == ["PID", "COMM"], (header, tool.stderr.read() if not header else "")
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
        for line in tool.stdout:
            if str(marker) in line:
                fields = line.split()
                assert fields[0] == str(child.pid) and fields[2] != "-1", line
                break
        else:
            pytest.fail(f"opensnoop from the Python {version} venv never showed {marker}: {tool.stderr.read()}")
    finally:
        child.kill()
        tool.kill()
        tool.wait()
