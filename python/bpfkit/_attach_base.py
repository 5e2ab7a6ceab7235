"""What the attach-point mixins of :class:`bpfkit.BPF` share: BCC's str-or-bytes arguments, and
the loaded object's programs by name."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

#: A name as BCC takes it: str or bytes.
Str = Union[str, bytes]


def _s(v: Any) -> str:
    """``v`` as str: bytes decoded, paths through ``os.fspath``."""
    if isinstance(v, bytes):
        return v.decode()
    return os.fspath(v) if isinstance(v, os.PathLike) else str(v)


class AttachBase:
    """Base of the attach mixins; :class:`bpfkit.BPF` provides ``_obj`` and ``_detach``."""

    _obj: Any

    def _detach(self, kind: str, target: str, fn_name: Optional[str]) -> None:  # provided by BPF
        raise NotImplementedError

    def _section(self, fn_name: str) -> str:
        """The ELF section of program ``fn_name`` (``"kprobe.multi"``, ``"tracepoint/a/b"``...)."""
        progs = self._obj.programs()
        for name, sec, _type, _fd in progs:
            if name == fn_name:
                return sec
        raise ValueError(f"no program named `{fn_name}` (programs: {', '.join(p[0] for p in progs)})")
