"""A path that is not a regular file (a FIFO above all, which blocked forever on open) is refused
at once with a typed error naming the path, by every call that reads a user-space binary:
attach_uprobe/attach_uretprobe, USDT(path=) and get_user_functions_and_addresses.

Each test watches the FIFO from another thread: a writer open with O_NONBLOCK succeeds only
while something holds the FIFO open for reading, so the watcher both detects that the code under
test opened it (which it must never do) and, if it did, unblocks it so the test ends and fails
instead of hanging."""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from bpfkit import BPF, USDT, AttachError
from bpfkit.usdt import USDTProbeNotFoundError

PROGRAM = r"""
SEC("uprobe")
int on_call(struct pt_regs *ctx) { return 0; }
"""


@contextmanager
def watched(fifo: Path) -> Iterator[threading.Event]:
    """Yields an event that is set if anything opens ``fifo`` for reading meanwhile (and
    opens and closes the write end then, so such a reader does not hang the test)."""
    opened, stop = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO  # no reader: what we hope to see
                stop.wait(0.01)
                continue
            opened.set()
            os.close(fd)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield opened
    finally:
        stop.set()
        t.join()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "not_a_binary"
    os.mkfifo(p)
    return p


@pytest.fixture
def bpf():
    with BPF(text=PROGRAM, autoattach=False) as b:
        yield b


@pytest.mark.parametrize("where", [{"sym": "main"}, {"sym_re": r"ma.*"}, {"addr": 0x1000}],
                         ids=["sym", "sym_re", "addr"])
@pytest.mark.parametrize("kind", ["uprobe", "uretprobe"])
def test_attach_to_a_fifo_is_refused_without_opening_it(bpf, fifo, kind, where):
    refusal = pytest.raises(AttachError, match=rf"{re.escape(str(fifo))} is a FIFO, not a regular file")
    with watched(fifo) as opened, refusal as e:
        getattr(bpf, f"attach_{kind}")(name=str(fifo), fn_name="on_call", **where)
    assert e.value.errno == errno.EINVAL
    assert not opened.is_set(), "the FIFO was opened for reading (a blocking open would hang)"
    assert [lk for lk in bpf.links() if lk[0] in ("uprobe", "uretprobe")] == []


def test_usdt_on_a_fifo_is_refused_without_opening_it(fifo):
    with watched(fifo) as opened:
        u = USDT(path=str(fifo))
        with pytest.raises(AttachError, match=rf"USDT: {re.escape(str(fifo))} is a FIFO, not a regular file") as e:
            u.enable_probe("prov:probe", "on_call")
        # The file could not be read: that is not "the probe is missing".
        assert not isinstance(e.value, USDTProbeNotFoundError)
        with pytest.raises(AttachError, match="is a FIFO"):
            u.enumerate_probes()
    assert not opened.is_set(), "the FIFO was opened for reading (a blocking open would hang)"


def test_listing_the_functions_of_a_fifo_is_refused_without_opening_it(fifo):
    with watched(fifo) as opened:
        for call in (BPF.get_user_functions_and_addresses, BPF.get_user_functions, BPF.get_user_addresses):
            with pytest.raises(AttachError, match=rf"{re.escape(str(fifo))} is a FIFO, not a regular file"):
                call(str(fifo), r".*")
    assert not opened.is_set(), "the FIFO was opened for reading (a blocking open would hang)"


@pytest.mark.parametrize("path, what, err", [("/dev/zero", "a character device", errno.EINVAL),
                                             ("/tmp", "a directory", errno.EISDIR)])
def test_devices_and_directories_are_refused_by_name(bpf, path, what, err):
    # /dev/zero never ends: a reader that took it for a file would read forever.
    with pytest.raises(AttachError, match=f"{path} is {what}, not a regular file") as e:
        bpf.attach_uprobe(name=path, sym="main", fn_name="on_call")
    assert e.value.errno == err
    with pytest.raises(AttachError, match=f"USDT: {path} is {what}"):
        USDT(path=path).enumerate_probes()
    with pytest.raises(AttachError, match=f"{path} is {what}"):
        BPF.get_user_functions_and_addresses(path, r".*")


def test_a_regular_file_that_is_not_elf_says_so(bpf, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(AttachError, match=f"{script} is not an ELF file") as e:
        bpf.attach_uprobe(name=str(script), sym="main", fn_name="on_call")
    assert e.value.errno == errno.ENOEXEC
