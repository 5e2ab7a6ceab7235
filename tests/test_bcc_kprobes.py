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
