"""vfsstat, the tool written once as fallback ladders: here it counts through syscall
tracepoints; inside the qemu kernels (marker ``kernels``) through fentry. Either way it must
count the reads a workload makes."""

from __future__ import annotations

import os
import re

import pytest
from bpfkit import features

from .test_tools import finish, start_tool, wait_header

pytestmark = pytest.mark.kernels


def test_vfsstat_counts_reads_through_the_best_rung_here():
    reads = 4000
    p = start_tool("vfsstat", "-v", "1", "3")
    wait_header(p, r"^TIME\s*:\s+READ/s\s+WRITE/s\s+FSYNC/s\s+OPEN/s\s+CREATE/s$", timeout=120)
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        for _ in range(reads):
            os.read(fd, 1)
    finally:
        os.close(fd)
    out = finish(p, timeout=120)
    rows = [list(map(int, m.groups())) for m in re.finditer(r"^\d\d:\d\d:\d\d:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$",
                                                           out, re.M)]
    assert len(rows) == 3, out
    assert sum(r[0] for r in rows) >= reads, out


def test_vfsstat_says_which_rung_it_uses():
    p = start_tool("vfsstat", "-v", "0.2", "1")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    used = dict(re.findall(r"^(READ|WRITE|FSYNC|OPEN|CREATE)\s+(\S+)$", err, re.M))
    assert set(used) == {"READ", "WRITE", "FSYNC", "OPEN", "CREATE"}, err
    want = "fentry" if features.supported("fentry") else "kprobe" if features.supported("kprobes") else "tp"
    assert all(prog.endswith("_" + want) for prog in used.values()), err
    if want != "fentry":
        assert re.search(r"not read_fentry: fentry: ", err), err
