"""The tools' command lines (tools/_args.py): the fast path gives argparse's answer on every
tool's options, declines what argparse alone must answer, and keeps argparse (and the ``re``,
``enum``, ``gettext`` it imports) off a tool's start path. No kernel needed."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys

import pytest
from bpfkit.tools import _args, _kit, names

from .test_cli import child_env
from .test_tools import REQUIRED_ARGS

#: Values tried for an option of each type; the ones its type accepts are used.
CANDIDATES = ["181", "0", "3", "0.5", "1", "root", "ma.n", "O_WRONLY", "80,81", "/sys/fs/cgroup", "c", "ENOENT",
              "SIGKILL", "9", "99", "4096", "x+", "bash", "openat", "-1", "1e9", "", "nosuchuser", "sda", "2k"]


class _Stop(Exception):
    pass


def parser_of(tool: str) -> _args.Parser:
    """The recorded parser tool ``tool`` builds in its ``parse_args``."""
    module = importlib.import_module(f"bpfkit.tools.{tool}")
    caught: list = []
    real_parse = _args.Parser.parse_args

    def catch(self: _args.Parser, *_a: object, **_k: object) -> None:
        caught.append(self)
        raise _Stop

    _args.Parser.parse_args = catch  # type: ignore[method-assign]
    try:
        module.parse_args(REQUIRED_ARGS.get(tool, []))
    except _Stop:
        pass
    finally:
        _args.Parser.parse_args = real_parse  # type: ignore[method-assign]
    assert len(caught) == 1, tool
    return caught[0]


def good_values(a: _args._Argument) -> list:
    out = []
    for text in CANDIDATES:
        try:
            a.convert(text)
        except _args.Declined:
            continue
        out.append(text)
    return out[:3]


def random_command_line(p: _args.Parser, rng: random.Random) -> list:
    """A command line of the tool's options, with valid values mostly, in a random order and
    spelling, with positional words (sometimes too many, or in two runs), and sometimes a
    form only argparse parses."""
    argv: list = []
    options = [a for a in p._arguments if not a.positional]
    for a in rng.sample(options, k=min(len(options), rng.randint(0, 4))):
        flag = rng.choice(a.flags)
        if not a.takes_value:
            argv.append(flag)
            continue
        value = rng.choice(good_values(a) or ["1"]) if rng.random() < 0.85 else rng.choice(CANDIDATES)
        if flag.startswith("--") and rng.random() < 0.3:
            argv.append(f"{flag}={value}")
        else:
            argv += [flag, value]
    n_pos = len([a for a in p._arguments if a.positional])
    words = [rng.choice(["1", "2", "0.5", "x"]) for _ in range(rng.randint(0, n_pos + 1))]
    at = rng.randint(0, len(argv))
    while at < len(argv) and argv[at - 1:at] and argv[at - 1].startswith("-") and "=" not in argv[at - 1]:
        at += 1  # not between an option and its value
    argv[at:at] = words
    r = rng.random()
    if r < 0.05:
        argv.insert(rng.randint(0, len(argv)), "--")
    elif r < 0.10:
        longs = [f for a in options for f in a.flags if f.startswith("--") and len(f) > 4]
        if longs:
            argv.append(rng.choice(longs)[:-1])  # an abbreviation
    elif r < 0.15:
        shorts = [f[1] for a in options if not a.takes_value for f in a.flags if len(f) == 2]
        if len(shorts) >= 2:
            argv.append("-" + "".join(rng.sample(shorts, 2)))  # clustered flags
    elif r < 0.18:
        argv.append("--no-such-option")
    return argv


def typed(ns: object) -> list:
    """A namespace's values with their types (``True == 1``, but a tool may print either)."""
    return sorted((k, type(v).__name__, v) for k, v in vars(ns).items())


def real_answer(p: _args.Parser, argv: list) -> object:
    try:
        return typed(p.real().parse_args(argv))
    except SystemExit as e:
        return ("exit", e.code)


def fast_answers_checked(p: _args.Parser, seed: object, tries: int) -> int:
    """Parses ``tries`` random command lines both ways; every one the fast path answers must
    be argparse's answer. Returns how many it answered."""
    rng = random.Random(seed)
    answered = 0
    for _ in range(tries):
        argv = random_command_line(p, rng)
        try:
            fast = typed(p._parse(list(argv)))
        except _args.Declined:
            continue
        answered += 1
        assert fast == real_answer(p, argv), argv
    return answered


@pytest.mark.parametrize("tool", names())
def test_the_fast_path_gives_argparses_answer(tool: str, capsys: pytest.CaptureFixture) -> None:
    p = parser_of(tool)
    fast_answers = fast_answers_checked(p, tool, 400)
    capsys.readouterr()  # argparse's usage errors for the declined ones that were tried
    # Plain command lines are the fast path's: no arguments (but those a tool cannot run without),
    # and each option alone.
    required = REQUIRED_ARGS.get(tool, [])
    assert typed(p._parse(list(required))) == real_answer(p, list(required))
    for a in p._arguments:
        if not a.positional and (good_values(a) or not a.takes_value):
            argv = [a.flags[0]] + (good_values(a)[:1] if a.takes_value else []) + required
            assert typed(p._parse(argv)) == real_answer(p, argv), argv
    assert fast_answers > 50, fast_answers


@pytest.mark.parametrize("argv", [
    ["-h"], ["--ebpf"], ["--dur", "1"], ["-Tx"], ["-p181"], ["-p", "-1"], ["--"], ["-p"], ["x"],
    ["-p", "0"], ["--timestamp=1"], ["-d", "1", "-d"], ["--no-such"],
])
def test_what_argparse_alone_answers_is_declined(argv: list) -> None:
    p = parser_of("opensnoop")
    with pytest.raises(_args.Declined):
        p._parse(argv)


def test_exclusive_groups_and_positional_runs_are_argparses() -> None:
    p = parser_of("biolatency")
    assert p._parse(["-D", "1", "5"]).count == 5
    for argv in (["-D", "-F"], ["1", "-D", "5"], ["1", "2", "3"]):
        with pytest.raises(_args.Declined):
            p._parse(argv)


def test_usage_errors_and_help_still_come_from_argparse(capsys: pytest.CaptureFixture) -> None:
    from bpfkit.tools import opensnoop

    with pytest.raises(SystemExit) as e:
        opensnoop.parse_args(["-p", "0"])
    assert e.value.code == 2
    assert "bpfkit opensnoop: error: argument -p/--pid: '0' is not a process id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        opensnoop.parse_args(["-h"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: bpfkit opensnoop") and "-x, --failed" in out and "examples:" in out


def test_a_tool_start_imports_neither_argparse_nor_re() -> None:
    """Every tool's default command line is parsed without argparse, ``re``, ``enum`` or
    ``gettext`` (a third of a warm start)."""
    code = ("import sys, importlib\nbad = {}\n"
            f"for t in {names()!r}:\n"
            f"    importlib.import_module('bpfkit.tools.' + t).parse_args({REQUIRED_ARGS!r}.get(t, []))\n"
            "    found = [m for m in ('argparse', 're', 'enum', 'gettext', 'locale') if m in sys.modules]\n"
            "    if found: bad[t] = found; break\n"
            "print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "{}"


def test_the_kit_still_offers_argparses_parser() -> None:
    p = _kit.tool_parser("x", "does x", "x: does x.\n\nExamples::\n\n    bpfkit x -a\n")
    assert p.parse_args([]).ebpf is False and p.prog == "bpfkit x"


def test_every_action_parsed_here_matches_argparse(capsys: pytest.CaptureFixture) -> None:
    """A parser with each action, a string default through its type, a parser default and a
    required exclusive group, checked as the tools are."""
    import argparse

    p = _args.Parser(lambda: argparse.ArgumentParser(prog="x"))
    p.set_defaults(level=7)
    p.add_argument("-n", "--number", type=int, default="5")
    p.add_argument("-a", "--add", action="append", type=int)
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--no-quiet", action="store_false", dest="quiet")
    p.add_argument("-k", action="store_const", const=42, dest="level")
    p.add_argument("-c", "--choice", choices=["a", "b"])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-4", action="store_true", dest="v4")
    g.add_argument("-6", action="store_true", dest="v6")
    p.add_argument("first", nargs="?", type=int, default="9")
    p.add_argument("second", nargs="?", default=None)
    assert typed(p._parse(["-4"])) == real_answer(p, ["-4"])
    assert p._parse(["-4"]).number == 5 and p._parse(["-4"]).first == 9 and p._parse(["-4", "-k"]).level == 42
    with pytest.raises(_args.Declined):
        p._parse([])  # the required group
    fast_answers = fast_answers_checked(p, 5, 2000)
    capsys.readouterr()
    assert fast_answers > 100, fast_answers
