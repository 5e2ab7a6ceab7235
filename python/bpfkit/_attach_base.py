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

    def _section(self, fn_name: str) -> Any:
        """The parsed section of program ``fn_name``: a ``bpfkit._native.Section`` (``.kind``,
        ``.target``, ``.feature``, ``.is_multi``...), from the core's one section parser."""
        return self._obj.section(fn_name)

    def _detach_links(self, links: list, what: str) -> None:
        """Detaches ``links`` (typed ``Link`` values) by id; ValueError naming ``what`` if none."""
        if not links or self._obj.detach_ids([lk.id for lk in links]) == 0:
            raise ValueError(f"no {what} is attached")
