"""``bcc.syscall``: syscall numbers and names of this machine's architecture."""

from __future__ import annotations

import os


def _table() -> dict:
    from bpfkit.tools import _syscalls

    return dict(enumerate(_syscalls.names(os.uname().machine)))


def syscall_name(syscall_num: int) -> bytes:
    """The name of syscall number ``syscall_num`` (bytes, as BCC gives it), or
    ``b"[unknown: N]"``."""
    name = _table().get(syscall_num)
    return name.encode() if name else b"[unknown: %d]" % syscall_num


#: Number -> name (bytes), as BCC's ``syscalls`` dict.
syscalls = {n: name.encode() for n, name in _table().items() if name}
