"""cgroup programs on a fresh cgroup v2 directory: a sock_create program that refuses UDP sockets
to the processes inside, and a cgroup_skb/egress program that counts exactly the datagrams a
process inside sent. The processes are children placed in the cgroup before they start."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfkit import BPF, AttachError

from ._features import need

SRC = r"""
#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif

u64 egress_skbs = 0;
u64 egress_udp = 0;

/* Refuses AF_INET datagram sockets (2 and 2 in socket.h); every other socket is allowed. */
SEC("cgroup/sock_create")
int deny_inet_dgram(struct bpf_sock *sk)
{
    return !(sk->family == 2 /* AF_INET */ && sk->type == 2 /* SOCK_DGRAM */);
}

/* Counts every packet the cgroup's sockets send, and the UDP ones apart; lets all through. */
SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
    struct iphdr ip;

    __sync_fetch_and_add(&egress_skbs, 1);
    if (skb->protocol == bpf_htons(ETH_P_IP) && !bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip))
        && ip.protocol == IPPROTO_UDP)
        __sync_fetch_and_add(&egress_udp, 1);
    return 1;
}

SEC("xdp")
int not_a_cgroup_program(struct xdp_md *ctx)
{
    return XDP_PASS;
}
"""

# Tries an AF_INET datagram and stream socket; prints their errnos (0: created) and its cgroup.
TRY_SOCKETS = textwrap.dedent("""
    import json, socket
    out = {"cgroup": open("/proc/self/cgroup").read()}
    for name, kind in (("dgram", socket.SOCK_DGRAM), ("stream", socket.SOCK_STREAM)):
        try:
            socket.socket(socket.AF_INET, kind).close()
            out[name] = 0
        except OSError as e:
            out[name] = e.errno
    print(json.dumps(out))
""")

# Sends argv[2] datagrams to 127.0.0.1:argv[1].
SEND = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[2])):
        s.sendto(b"cg-%d" % i, ("127.0.0.1", int(sys.argv[1])))
""")


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A new child cgroup of the cgroup v2 root, removed afterwards even if the test fails."""
    need("cgroup_link")
    root = Path(BPF.cgroup2_mountpoint())
    path = root / f"bpfkit-test-{os.urandom(4).hex()}"
    path.mkdir()
    try:
        yield path
    finally:
        # Move anything still inside back to the root, then remove it (the kernel may take a
        # moment to let go of exited tasks).
        try:
            for pid in (path / "cgroup.procs").read_text().split():
                try:
                    (root / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while True:
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _run_in(cg: Path | None, code: str, *args: str) -> subprocess.CompletedProcess:
    """Runs Python ``code`` in a child that joins cgroup ``cg`` before the interpreter starts."""
    def join() -> None:
        with open(cg / "cgroup.procs", "w") as f:  # type: ignore[operator]
            f.write(str(os.getpid()))

    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          preexec_fn=join if cg is not None else None, check=True)


def _try_sockets(cg: Path | None) -> dict:
    out = json.loads(_run_in(cg, TRY_SOCKETS).stdout)
    if cg is not None:
        assert f"/{cg.name}\n" in out["cgroup"], out["cgroup"]
    return out


def test_sock_create_program_refuses_udp_sockets_inside_the_cgroup_only(cgroup: Path) -> None:
    with BPF(text=SRC) as b:
        before = _try_sockets(cgroup)
        assert (before["dgram"], before["stream"]) == (0, 0)
        b.attach_cgroup(str(cgroup), "deny_inet_dgram")
        assert b.links() == [("cgroup", str(cgroup), "deny_inet_dgram")]
        inside = _try_sockets(cgroup)
        assert (inside["dgram"], inside["stream"]) == (errno.EPERM, 0)
        outside = _try_sockets(None)
        assert (outside["dgram"], outside["stream"]) == (0, 0)
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()  # this process is outside too

        b.detach_cgroup(str(cgroup), "deny_inet_dgram")
        assert _try_sockets(cgroup)["dgram"] == 0
        with pytest.raises(ValueError, match="no cgroup program"):
            b.detach_cgroup(str(cgroup))

        # Attached again and left to close(), which detaches it.
        b.attach_cgroup(cgroup, b.load_func("deny_inet_dgram", BPF.CGROUP_SOCK))
        assert _try_sockets(cgroup)["dgram"] == errno.EPERM
    assert _try_sockets(cgroup)["dgram"] == 0


def test_cgroup_skb_egress_counts_exactly_the_datagrams_sent_from_inside(cgroup: Path) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    k = 37
    try:
        with BPF(text=SRC) as b:
            # A relative path is taken under the cgroup v2 mount.
            b.attach_cgroup(cgroup.name, "count_egress")
            assert b.links() == [("cgroup", str(cgroup), "count_egress")]
            _run_in(cgroup, SEND, str(port), str(k))
            # Each datagram below the MTU is one skb, and loopback delivery to the receiver
            # is ingress, which an egress program does not see.
            assert (b.get_global("egress_skbs"), b.get_global("egress_udp")) == (k, k)
            got = []
            rx.settimeout(1.0)
            try:
                while len(got) < k:
                    got.append(rx.recv(100))
            except socket.timeout:
                pass
            assert sorted(got) == sorted(b"cg-%d" % i for i in range(k))

            # Traffic from outside the cgroup is not counted: this process and a child outside.
            for _ in range(5):
                rx.sendto(b"outside", ("127.0.0.1", port))
            _run_in(None, SEND, str(port), "4")
            assert b.get_global("egress_skbs") == k
    finally:
        rx.close()


def test_cgroup_errors_say_what_is_wrong(cgroup: Path, tmp_path: Path) -> None:
    with BPF(text=SRC) as b:
        missing = cgroup.parent / f"bpfkit-missing-{os.urandom(3).hex()}"
        with pytest.raises(AttachError, match=f"no cgroup {missing}") as ei:
            b.attach_cgroup(str(missing), "count_egress")
        assert ei.value.errno == errno.ENOENT
        with pytest.raises(AttachError, match="not in the cgroup v2 hierarchy"):
            b.attach_cgroup(str(tmp_path), "count_egress")
        v1 = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if " - cgroup " in line]
        if v1:  # a hybrid machine: a v1 controller's directory is refused with the same words
            with pytest.raises(AttachError, match="not in the cgroup v2 hierarchy.*cgroup"):
                b.attach_cgroup(v1[0], "count_egress")
        with pytest.raises(TypeError, match="attach_cgroup needs a cgroup program .*'not_a_cgroup_program' is "
                           "BPF_PROG_TYPE_XDP"):
            b.attach_cgroup(str(cgroup), "not_a_cgroup_program")
        with pytest.raises(ValueError, match="no program named 'nope'"):
            b.attach_cgroup(str(cgroup), "nope")
        with pytest.raises(ValueError, match="no cgroup program attached"):
            b.detach_cgroup(str(cgroup))
        assert b.links() == []


# Unmounts every cgroup2 mount (in a private mount namespace), then asks bpfkit for the cgroup v2
# root; prints it and whether a cgroup2 mount is there now.
REMOUNT = textwrap.dedent("""
    import ctypes, json
    from bpfkit import BPF
    from bpfkit._attach_net import _mounts
    libc = ctypes.CDLL(None, use_errno=True)
    for mp, fstype in reversed(_mounts()):
        if fstype == "cgroup2":
            assert libc.umount2(mp.encode(), 0) == 0, ctypes.get_errno()
    assert not [m for m in _mounts() if m[1] == "cgroup2"]
    root = BPF.cgroup2_mountpoint()
    print(json.dumps([root, (root, "cgroup2") in _mounts()]))
""")


def test_cgroup2_is_mounted_when_no_mount_exists() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("the `unshare` command (util-linux) is not installed")
    before = Path("/proc/self/mountinfo").read_text().count(" - cgroup2 ")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", REMOUNT],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    root, mounted = json.loads(r.stdout)
    assert mounted and root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
    assert Path("/proc/self/mountinfo").read_text().count(" - cgroup2 ") == before  # only the child's namespace changed


# BCC's attach_func/detach_func: the same sock_create program, attached by attach type to a
# cgroup directory opened by the caller, as BCC programs do with os.open().
def test_attach_func_attaches_by_attach_type_to_a_cgroup_fd_and_detach_func_undoes_it(cgroup: Path) -> None:
    from bpfkit import BPFAttachType

    with BPF(text=SRC) as b:
        fd = os.open(cgroup, os.O_RDONLY)
        try:
            b.attach_func("deny_inet_dgram", fd, BPFAttachType.CGROUP_INET_SOCK_CREATE)
        finally:
            os.close(fd)  # the attachment keeps its own reference to the cgroup
        assert b.links() == [("attach_func", f"{cgroup}:CGROUP_INET_SOCK_CREATE", "deny_inet_dgram")]
        assert _try_sockets(cgroup)["dgram"] == errno.EPERM
        assert _try_sockets(None)["dgram"] == 0

        # Detached through another fd on the same directory.
        fd = os.open(cgroup, os.O_RDONLY)
        try:
            b.detach_func(b.load_func("deny_inet_dgram", BPF.CGROUP_SOCK), fd, BPFAttachType.CGROUP_INET_SOCK_CREATE)
            assert b.links() == []
            assert _try_sockets(cgroup)["dgram"] == 0
            with pytest.raises(AttachError, match="BPF_PROG_DETACH") as ei:
                b.detach_func("deny_inet_dgram", fd, BPFAttachType.CGROUP_INET_SOCK_CREATE)
            assert ei.value.errno == errno.ENOENT

            # Bad targets and types are named.
            null = os.open("/dev/null", os.O_RDONLY)
            try:
                with pytest.raises(AttachError, match="/dev/null as CGROUP_INET_SOCK_CREATE .*not a directory "
                                   "of a cgroup v2 hierarchy") as ei:
                    b.attach_func("deny_inet_dgram", null, BPFAttachType.CGROUP_INET_SOCK_CREATE)
                assert ei.value.errno == errno.EBADF
            finally:
                os.close(null)
            with pytest.raises(AttachError) as ei:
                b.attach_func("deny_inet_dgram", 987654, BPFAttachType.CGROUP_INET_SOCK_CREATE)
            assert ei.value.errno == errno.EBADF and "fd 987654" in str(ei.value)
            with pytest.raises(ValueError, match="not a BPFAttachType"):
                b.attach_func("deny_inet_dgram", fd, 9999)
            assert b.links() == []

            # Left attached: close() detaches it.
            b.attach_func("deny_inet_dgram", fd, BPFAttachType.CGROUP_INET_SOCK_CREATE)
            assert _try_sockets(cgroup)["dgram"] == errno.EPERM
        finally:
            os.close(fd)
    assert _try_sockets(cgroup)["dgram"] == 0


# A process that attaches with attach_func and is killed with SIGKILL: the kernel link goes with
# its fds, so nothing stays attached to the cgroup.
ATTACH_AND_WAIT = textwrap.dedent("""
    import os, sys
    from bpfkit import BPF, BPFAttachType
    b = BPF(text=open(sys.argv[1]).read())
    b.attach_func("deny_inet_dgram", os.open(sys.argv[2], os.O_RDONLY), BPFAttachType.CGROUP_INET_SOCK_CREATE)
    print("attached", flush=True)
    sys.stdin.read()
""")


def test_attach_func_leaves_nothing_attached_after_a_kill(cgroup: Path, tmp_path: Path) -> None:
    src = tmp_path / "prog.bpf.c"
    src.write_text(SRC)
    p = subprocess.Popen([sys.executable, "-c", ATTACH_AND_WAIT, str(src), str(cgroup)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "attached\n"
        assert _try_sockets(cgroup)["dgram"] == errno.EPERM
    finally:
        p.kill()
        p.wait(timeout=30)
    assert p.returncode == -9
    assert _try_sockets(cgroup)["dgram"] == 0
