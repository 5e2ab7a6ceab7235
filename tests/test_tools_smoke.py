"""Every tool in tools/ (found as `bpfkit list` finds them, so a tool added later is covered too):
``-h``, ``--ebpf``, and a two-second run that ends by itself, with status 0 and no traceback, or,
for a tool with no hook on this kernel, its one-line refusal (status 1)."""

from __future__ import annotations

import re
import signal
import subprocess

import pytest
from bpfkit import tools
from bpfkit.tools import _kit

from .test_tools import BPFKIT

NAMES = tools.names()
#: How a tool says this kernel lacks its hook: a NotSupportedError's message, one line.
REFUSAL = re.compile(r"^bpfkit (\w+): error: .*(no alternative for .* works on this kernel|not supported|"
                     r"CONFIG_\w+|lockdown|does not exist here|no hardware PMU).*\n$")


def _help(name: str) -> str:
    r = subprocess.run([*BPFKIT, name, "-h"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, r.stderr
    return r.stdout


@pytest.mark.parametrize("name", NAMES)
def test_help(name: str):
    out = _help(name)
    assert out.startswith(f"usage: bpfkit {name} "), out
    assert tools.summary(name) in out, "the docstring's summary is the description"


@pytest.mark.parametrize("name", NAMES)
def test_ebpf_prints_the_header_then_the_tools_c(name: str):
    r = subprocess.run([*BPFKIT, name, "--ebpf"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, r.stderr
    # The shared header, then the tool's C with each of the tools' own headers it includes
    # (#include <hist.bpf.h>) printed once in its place: the whole program, as BCC's --ebpf.
    with open(_kit.HEADER) as h, open(f"{_kit.HERE}/{name}.bpf.c") as c:
        header, source = h.read(), c.read()
    assert r.stdout.startswith(header)
    local = re.findall(r"^#include <(\w+\.bpf\.h)>", source, re.M)
    assert not re.search(r"^#include <\w+\.bpf\.h>", r.stdout, re.M)
    for line in source.splitlines():
        assert line in r.stdout or line.startswith("#include <")
    for included in local:
        assert r.stdout.count(f"/* {included} */\n") == 1
        with open(f"{_kit.HERE}/{included}") as f:
            body = f.read()
        assert all(line in r.stdout for line in body.splitlines() if not line.startswith("#include <"))


def _two_seconds(help_text: str) -> list | None:
    """The arguments that make a tool end by itself after about two seconds: ``-d 2`` for a
    tracing tool with a duration, ``1 2`` for one with ``[interval] [count]``; None when it has
    neither (it is then interrupted, as a user would with Ctrl-C)."""
    if "--duration" in help_text:
        return ["-d", "2"]
    if re.search(r"^usage: .*\[interval\]", help_text, re.M | re.S):
        return ["1", "2"]
    return None


@pytest.mark.parametrize("name", NAMES)
def test_two_second_run_ends_cleanly(name: str):
    args = _two_seconds(_help(name))
    p = subprocess.Popen([*BPFKIT, name, *(args or [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=60 if args else 2)
    except subprocess.TimeoutExpired:
        if args:
            raise
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert "Traceback" not in err, err
    if p.returncode == 1:
        assert REFUSAL.match(err), f"status 1 is only for a one-line refusal naming the missing hook: {err!r}"
        return
    assert p.returncode == 0, err
    # Warnings (a tool saying its hook shows less here) are allowed, each on one line; errors are not.
    assert "error:" not in err, err
