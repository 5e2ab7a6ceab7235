"""Bad source input gets a typed, precise error: not UTF-8, a NUL byte in a cflag, and a source
path that is not a regular file (a FIFO blocked BPF() forever)."""

from __future__ import annotations

import os
import threading

import pytest
from bpfkit import BPF, CompileError, _native

GOOD = "int x;\n"


def test_source_bytes_that_are_not_utf8_say_where(tmp_path):
    bad = b"int x;\n// caf\xe9 au lait\nint y;\n"
    with pytest.raises(CompileError, match=r"<text>: the source is not UTF-8: byte 0xe9 at line 2, column 7"):
        BPF(text=bad)
    f = tmp_path / "prog.bpf.c"
    f.write_bytes(bad)
    with pytest.raises(CompileError, match=rf"{f}: the source is not UTF-8: byte 0xe9 at line 2, column 7"):
        BPF(src_file=str(f))
    h = tmp_path / "defs.h"
    h.write_bytes(b"\xff")
    (tmp_path / "ok.bpf.c").write_text(GOOD)
    with pytest.raises(CompileError, match=rf"{h}: the source is not UTF-8: byte 0xff at line 1, column 1"):
        BPF(src_file=tmp_path / "ok.bpf.c", hdr_file=h)
    # A str that cannot be encoded (a lone surrogate) is refused the same way.
    with pytest.raises(CompileError, match=r"<text>: the source is not valid text: .* at line 1, column 5"):
        BPF(text="int \udce9;")


def test_a_nul_byte_in_a_cflag_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r'cflag "-DX=1\\0y" contains a NUL byte'):
        BPF(text=GOOD, cflags=["-O2", "-DX=1\0y"])
    with pytest.raises(ValueError, match="NUL byte"):
        _native.compile_text(GOOD, "preprocessed", cflags=["-D\0"])


def call_with_deadline(f, seconds: float = 5):
    """Runs f in a thread; the exception it raised (None if none). Fails if it is still running."""
    out: list = []

    def run():
        try:
            f()
            out.append(None)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            out.append(e)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), "the call blocked"
    return out[0]


def test_a_source_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.c"
    os.mkfifo(fifo)
    e = call_with_deadline(lambda: BPF(src_file=str(fifo)))
    assert isinstance(e, ValueError) and "is a FIFO" in str(e) and str(fifo) in str(e), e
    (tmp_path / "ok.bpf.c").write_text(GOOD)
    e = call_with_deadline(lambda: BPF(src_file=tmp_path / "ok.bpf.c", hdr_file=fifo))
    assert isinstance(e, ValueError) and "hdr_file" in str(e) and "is a FIFO" in str(e), e
    for path, kind in ((tmp_path, "a directory"), ("/dev/zero", "a character device")):
        e = call_with_deadline(lambda p=path: BPF(src_file=p))
        assert isinstance(e, ValueError) and kind in str(e), e
    with pytest.raises(FileNotFoundError):
        BPF(src_file=tmp_path / "missing.c")
    # A regular file, named by str, bytes or Path, still works.
    for p in (str(tmp_path / "ok.bpf.c"), os.fsencode(tmp_path / "ok.bpf.c"), tmp_path / "ok.bpf.c"):
        with BPF(src_file=p, autoattach=False) as b:
            assert b.get_global("x") == 0
