"""The ``bpfkit`` command: ``bpfkit list`` names the tools, ``bpfkit <tool> [args]`` runs one."""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

USAGE = """usage: bpfkit <tool> [args...]   run a bundled tool (bpfkit <tool> -h for its options)
       bpfkit list                 list the tools
       bpfkit features             what this kernel supports, and why not
       bpfkit version              print versions"""


def _tools() -> dict:
    from .tools import TOOLS

    return dict(TOOLS)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    tools = _tools()
    if cmd == "list":
        width = max(len(n) for n in tools)
        for name, desc in sorted(tools.items()):
            print(f"{name:<{width}}  {desc}")
        return 0
    if cmd == "features":
        import os

        from . import features

        print(f"kernel {os.uname().release}")
        for st in features.check_all():
            print(st)
        return 0
    if cmd == "version":
        from . import LIBBPF_VERSION, __version__, _native

        try:
            clang = " ".join(_native.find_compiler())
        except Exception as e:  # noqa: BLE001 - report, don't fail
            clang = f"none ({e})"
        print(f"bpfkit {__version__}, libbpf {LIBBPF_VERSION}, compiler: {clang}")
        return 0
    if cmd not in tools:
        print(f"bpfkit: unknown tool {cmd!r}; `bpfkit list` names them", file=sys.stderr)
        return 2
    mod = importlib.import_module(f"bpfkit.tools.{cmd}")
    from ._errors import BPFError

    try:
        return int(mod.main(rest) or 0)
    except BPFError as e:
        print(f"bpfkit {cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
