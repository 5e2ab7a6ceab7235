"""The argparse side of a tool's command line: the parser a tool's recorded arguments are
replayed on (``_args.Parser.real()``) when a command line needs argparse: ``-h``, ``--ebpf``, a
usage error, or a form the fast path leaves to argparse. Imported only then: argparse is a third
of a warm start (see ``_args``)."""

from __future__ import annotations

import argparse
import os
import sys

from ._kit import _columns, parse_doc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter for text with its own line breaks; argparse makes one for every
    ``add_argument``, and its own asks shutil for the width: this one asks the OS directly."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        if kwargs.get("width") is None:
            kwargs["width"] = max(_columns() - 2, 20)
        super().__init__(prog, **kwargs)


class ToolArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (``bpfkit opensnoop: error: ...``) and
    status 2, instead of the usage text followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (-h for help)\n")


class _PrintSource(argparse.Action):
    """BCC's ``--ebpf``: prints the program's C (the shared header, then the tool's source) and
    exits, as ``-h`` does, before any other argument is checked or any privilege needed."""

    def __init__(self, option_strings: list, dest: str, sources: Sequence[str] = (), **kwargs: Any) -> None:
        self.sources = list(sources)
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        seen: set = set()
        for path in self.sources:
            sys.stdout.write(_inlined(path, seen))
        sys.stdout.flush()
        parser.exit(0)


def _inlined(path: str, seen: set) -> str:
    """The C of ``path`` with the tools' own headers it includes (``#include <hist.bpf.h>``,
    found beside it) put in place, each once, so that ``--ebpf`` prints the whole program as
    BCC's does; other includes stay as they are."""
    here = os.path.dirname(path)
    out = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "#include" and words[1][:1] in "<\"":
                local = os.path.join(here, words[1][1:-1])
                if os.path.isfile(local) and ".." not in words[1]:
                    if local not in seen:
                        seen.add(local)
                        out.append(f"/* {words[1][1:-1]} */\n" + _inlined(local, seen))
                    continue
            out.append(line)
    return "".join(out)


def tool_parser(tool: str, description: str, doc: str | None,
                sources: Sequence[str] | None = ()) -> ToolArgumentParser:
    """See ``_kit.tool_parser``."""
    examples = parse_doc(doc)[2]
    p = ToolArgumentParser(prog=f"bpfkit {tool}", description=description, formatter_class=_HelpFormatter,
                           epilog=f"examples:\n{examples}" if examples else None)
    if sources is not None:
        p.add_argument("--ebpf", action=_PrintSource, sources=sources, help=argparse.SUPPRESS)
    return p
