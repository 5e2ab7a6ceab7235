"""``bcc.utils``: the helpers BCC's programs and tools import from it."""

from __future__ import annotations

import sys
import traceback
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _cpu_list(path: str) -> list:
    """The CPUs of a kernel CPU list file (``0-3,8``)."""
    with open(path) as f:
        text = f.read().strip()
    cpus: list = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def get_online_cpus() -> list:
    """The online CPUs' numbers."""
    return _cpu_list("/sys/devices/system/cpu/online")


def get_possible_cpus() -> list:
    """The possible CPUs' numbers (what per-CPU maps are sized by)."""
    return _cpu_list("/sys/devices/system/cpu/possible")


def printb(s: bytes, file: Any = None, nl: int = 1) -> None:
    """Writes bytes ``s`` (and a newline unless ``nl=0``) to ``file``'s buffer (stdout)."""
    out = file or sys.stdout
    buf = getattr(out, "buffer", None)
    if buf is None:
        out.write(s.decode(errors="replace") + ("\n" if nl else ""))
    else:
        out.flush()
        buf.write(s + (b"\n" if nl else b""))
        buf.flush()


class ArgString:
    """An argument kept as bytes (as BCC's tools take paths and names), from a str."""

    def __init__(self, s: str) -> None:
        self.s = s

    def __bytes__(self) -> bytes:
        return self.s.encode(errors="surrogateescape")

    def __str__(self) -> str:
        return self.s


def warn_with_traceback(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                        line: Any = None) -> None:
    """A ``warnings.showwarning`` that prints the stack too."""
    log = file if hasattr(file, "write") else sys.stderr
    traceback.print_stack(file=log)
    log.write(warnings.formatwarning(message, category, filename, lineno, line))


def disable_compiler_warnings() -> None:
    """BCC silences its compiler's warnings with this; bpfkit shows clang's warnings only at
    debug level already (the ``bpfkit`` logger), so there is nothing to do."""


class StrcmpRewrite:
    """BCC's ``STRCMP("literal", expr)`` for the filters of its ``trace`` and ``argdist``: each
    call in an expression becomes a call of a generated C function, ``streq_N("literal", expr)``,
    that copies the string at ``expr`` and compares it with the literal.

    ``rewrite_expr`` returns ``{"expr", "streq_functions", "probeid"}``: the rewritten expression,
    ``streq_functions`` with the new functions' C appended, and the next free id. The string is
    read from user memory when ``is_user`` or when the expression is in ``probe_user_list``
    (``@user`` arguments), with the legacy ``bpf_probe_read`` otherwise. Unlike BCC's (which compares only the
    literal's characters, so ``"bash"`` also matches ``"bashful"``), the comparison includes the
    terminating NUL: the strings are equal. With ``bin_cmp`` the literal's bytes are compared as
    they are, with no terminator, as a prefix.

    >>> r = StrcmpRewrite.rewrite_expr('STRCMP("bash", arg1)', False, True, [], "", 0)
    >>> r["expr"], r["probeid"]
    ('streq_0("bash", arg1)', 1)
    """

    # STRCMP( "literal" , rest ) with the literal's escapes kept; the rest runs to the call's
    # closing parenthesis (parentheses inside it balanced).
    _LITERAL = r'"(?:[^"\\]|\\.)*"'

    @staticmethod
    def _calls(expr: str) -> list:
        """``[(start, end, literal with quotes, argument)]`` of each ``STRCMP(...)`` in ``expr``."""
        import re

        out = []
        for m in re.finditer(r"\bSTRCMP\s*\(\s*(" + StrcmpRewrite._LITERAL + r")\s*,", expr):
            depth, i = 1, m.end()
            while i < len(expr) and depth:
                depth += {"(": 1, ")": -1}.get(expr[i], 0)
                i += 1
            if depth:
                raise ValueError(f"STRCMP without its closing parenthesis in {expr!r}")
            out.append((m.start(), i, m.group(1), expr[m.end():i - 1].strip()))
        return out

    @staticmethod
    def _needle(literal: str, bin_cmp: bool) -> tuple:
        """The C initializer of the bytes to compare, and how many there are."""
        import ast

        data = ast.literal_eval("b" + literal) if literal.isascii() else ast.literal_eval(literal).encode()
        if not bin_cmp:
            data += b"\0"
        return "{" + ", ".join(str(b) for b in data) + "}", len(data)

    @staticmethod
    def rewrite_expr(expr: str, bin_cmp: bool, is_user: bool, probe_user_list: Any, streq_functions: str,
                     probeid: int) -> dict:
        users = {str(u).strip() for u in (probe_user_list or ())}
        out, at = [], 0
        for start, end, literal, arg in StrcmpRewrite._calls(expr):
            needle, n = StrcmpRewrite._needle(literal, bin_cmp)
            # The legacy helper reads either address space (x86, arm64), as a syscall's string
            # argument in a tracepoint filter needs; the translator makes it the kernel helper
            # where the string is kernel memory.
            read = "bpf_probe_read_user" if is_user or arg in users else "bpf_probe_read"
            name = f"streq_{probeid}"
            probeid += 1
            streq_functions += f"""
static inline bool {name}(char const *literal, uintptr_t str)
{{
    const char needle[{n}] = {needle};
    char got[{n}] = {{}};

    {read}(got, sizeof(got), (void *)str);
    for (int i = 0; i < {n}; i++)
        if (got[i] != needle[i])
            return false;
    return true;
}}
"""
            out.append(expr[at:start] + f"{name}({literal}, {arg})")
            at = end
        out.append(expr[at:])
        return {"expr": "".join(out), "streq_functions": streq_functions, "probeid": probeid}
