"""``python -m bpfkit.bcc SCRIPT [ARGS]``: runs a program written for BCC, as it is, on bpfkit.

Inside the script ``import bcc`` (and ``bcc.table``, ``bcc.utils``, ``bcc.usdt``,
``bcc.syscall``, ``bcc.containers``) are this package; only this process sees those names.
"""

from __future__ import annotations

import os
import runpy
import sys


def install() -> None:
    """Makes ``bcc`` and its submodules this package, for this process."""
    import bpfkit.bcc as pkg

    sys.modules["bcc"] = pkg
    for name in pkg.SUBMODULES:
        sys.modules[f"bcc.{name}"] = getattr(pkg, name)


def main(argv: list | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m bpfkit.bcc SCRIPT [ARGS...]   run a BCC program on bpfkit", file=sys.stderr)
        return 2 if not args else 0
    script = args[0]
    if not os.path.isfile(script):
        print(f"bpfkit bcc: error: {script}: no such file", file=sys.stderr)
        return 2
    install()
    sys.argv = [script, *args[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    from bpfkit import BPFError

    try:
        runpy.run_path(script, run_name="__main__")
    except BPFError as e:
        # What bpfkit refused (a missing kernel feature, a compile or verifier error) in one
        # line, as bpfkit's own tools report it; the detail (clang's diagnostics, the
        # verifier's log) follows when there is one.
        detail = getattr(e, "diagnostics", "") or getattr(e, "verifier_log", "") or ""
        print(f"{os.path.basename(script)}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        if detail and detail.strip() not in str(e):
            print(detail.rstrip()[-4000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
