"""bpfkit's bundled tools, run as ``bpfkit <tool>``. Each is a module of this package (a name not
starting with ``_``) with ``parse_args(argv)`` and ``main(argv) -> int``, its BPF C in a
``.bpf.c`` file beside it, built on the tool kit (``_kit.py``; its docstring shows a whole tool).

There is no list to keep: :func:`names` finds the tools in this directory and :func:`summary`
reads a tool's one-line summary from its docstring, without importing it, so that ``bpfkit
<tool>`` imports only the tool it runs and ``bpfkit list`` imports none.
"""

from __future__ import annotations

import os

#: This package's directory: the tools' modules and their C.
HERE = os.path.dirname(os.path.abspath(__file__))


def is_tool(name: str) -> bool:
    """Whether ``name`` is a bundled tool: a module of this package whose name is an identifier
    not starting with ``_`` (so neither the kit nor a path like ``../x`` is one)."""
    return name.isidentifier() and not name.startswith("_") and os.path.isfile(os.path.join(HERE, name + ".py"))


def names() -> list:
    """The bundled tools' names, sorted."""
    return sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and is_tool(f[:-3]))


def summary(name: str) -> str:
    """The first line of tool ``name``'s docstring, without ``name:`` (``Trace open() syscalls``),
    read from its source; "" when it has no docstring."""
    import ast

    from ._kit import parse_doc

    with open(os.path.join(HERE, name + ".py"), encoding="utf-8") as f:
        return parse_doc(ast.get_docstring(ast.parse(f.read())))[1]
