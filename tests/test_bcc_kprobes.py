"""BCC programs that need kprobes: BCC's own examples and tools, unchanged, through
``python -m bpfkit.bcc``. This kernel has no kprobes: they skip here by probe, saying why, and run
for real inside the Debian kernels of tests/kernels/ (marker ``kernels``), where BCC's kprobe
functions with named arguments, kretprobes and implicit kernel reads are checked against what a
workload did."""

from __future__ import annotations

import os
import re
import socket

import pytest

from ._features import need
from .test_bcc_tools import example, stop

pytestmark = pytest.mark.kernels

PID = os.getpid()


def test_tcpv4connect_example_reports_the_connection_made():
    """examples/tracing/tcpv4connect.py: `kprobe__tcp_v4_connect(struct pt_regs *ctx, struct sock
    *sk)` keeps the socket, its kretprobe reads `skp->__sk_common.skc_daddr` and the ports (CO-RE
    reads of this kernel's struct sock) and prints them through trace_pipe."""
    need("kprobes")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    p = example("tracing/tcpv4connect.py", r"^PID\s+COMM\s+SADDR\s+DADDR\s+DPORT")
    try:
        with socket.create_connection(("127.0.0.1", port)):
            pass
    finally:
        out = stop(p, settle=1.0)
        server.close()
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [str(PID)]]
    assert [r[2:] for r in rows] == [["127.0.0.1", "127.0.0.1", str(port)]], out


def test_vfsreadlat_example_counts_the_reads_made():
    """examples/tracing/vfsreadlat.py with its vfsreadlat.c (found beside the script, as BCC
    finds it): a kprobe and a kretprobe on vfs_read timing each read into a log2 histogram."""
    need("kprobes")
    p = example("tracing/vfsreadlat.py", r"^Tracing\.\.\. Hit Ctrl-C to end")
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    try:
        for _ in range(50):
            os.pread(fd, 64, 0)
    finally:
        os.close(fd)
    out = stop(p, settle=1.0)
    counts = [int(m) for m in re.findall(r"^\s+\d+ -> \d+\s+: (\d+)\s+\|", out, re.M)]
    assert sum(counts) >= 50, out


def test_virtiostat_counts_the_bytes_read_through_virtiofs():
    """BCC's virtiostat: a kprobe on virtqueue_add_sgs walking each request's scatterlists
    (`sgs[i]` through a `struct scatterlist **`, sg_is_last/sg_is_chain/sg_chain_ptr) and
    summing their lengths. Under qemu the root is virtiofs: a file read after the page cache is
    dropped crosses the virtqueue, so the bytes the device handed in are at least what was read."""
    need("kprobes")
    from .test_bcc_tools import start

    # A file of the checkout, which the host wrote (so it is on virtiofs, not the guest's own
    # overlay layer) and no process maps (a mapped file's pages, as bpfkit's own native module,
    # stay in the page cache through drop_caches).
    big = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "README.md"))
    p = start("virtiostat", "1", header=r"^Tracing virtio devices")
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        # Page by page, without readahead: each FUSE request is one page, well inside the 16
        # scatterlist entries per list that virtiostat follows (BCC's SG_MAX), so every byte of
        # it is counted. The first 256 KiB at most.
        fd = os.open(big, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            size = 0
            while size < 256 << 10:
                got = len(os.pread(fd, 4096, size))
                if not got:
                    break
                size += got
        finally:
            os.close(fd)
    finally:
        out = stop(p, settle=1.5)
    rows = [line.split() for line in out.splitlines() if "virtiofs" in line]
    assert rows, out
    # Driver Device VQ-name InSGs OutSGs InBW OutBW
    assert sum(int(r[-2]) for r in rows) >= size, out
