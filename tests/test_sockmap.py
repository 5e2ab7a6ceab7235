"""BCC's ``attach_func``/``detach_func`` on a sockmap: an ``sk_msg`` program attached to the map
by attach type (``BPFAttachType.SK_MSG_VERDICT``) sees exactly the bytes sent on the sockets put
in the map. Marked ``kernels``: on this kernel the attachment is a BPF link (sockmap links are
6.10+), on Debian 6.1 under qemu it is ``BPF_PROG_ATTACH``, undone with ``BPF_PROG_DETACH``."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from bpfkit import BPF, BPFAttachType, _native

pytestmark = pytest.mark.kernels

SRC = r"""
struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u32);
} socks SEC(".maps");

u64 msgs = 0;
u64 msg_bytes = 0;

/* Counts each message sent on a socket of the map, and its bytes; lets it through. */
SEC("sk_msg")
int count_msg(struct sk_msg_md *msg)
{
    __sync_fetch_and_add(&msgs, 1);
    __sync_fetch_and_add(&msg_bytes, msg->size);
    return SK_PASS;
}
"""


@pytest.fixture
def pair() -> Iterator[tuple]:
    """Makes connected TCP pairs over loopback: ``pair()`` -> (client, server side)."""
    srv = socket.create_server(("127.0.0.1", 0))
    made: list = [srv]

    def make() -> tuple:
        cli = socket.create_connection(srv.getsockname(), timeout=5)
        peer, _ = srv.accept()
        peer.settimeout(5)
        made.extend((cli, peer))
        return cli, peer

    yield make
    for s in made:
        s.close()


def _recv(peer: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = peer.recv(n - len(got))
        assert chunk, "connection closed"
        got += chunk
    return got


def test_attach_func_on_a_sockmap_sees_the_bytes_of_its_sockets(pair) -> None:
    with BPF(text=SRC) as b:
        socks = b["socks"]
        b.attach_func("count_msg", socks.map_fd, BPFAttachType.SK_MSG_VERDICT)
        [link] = b.links()
        assert (link.kind, link.program) == ("attach_func", "count_msg")
        assert link.target.endswith(":SK_MSG_VERDICT")

        cli, peer = pair()
        socks[0] = cli.fileno()
        cli.sendall(b"m" * 100)
        assert _recv(peer, 100) == b"m" * 100
        cli.sendall(b"n" * 23)
        assert _recv(peer, 23) == b"n" * 23
        assert b.get_global("msg_bytes") == 123
        assert 1 <= b.get_global("msgs") <= 2

        # An unmapped socket is not seen.
        other, other_peer = pair()
        other.sendall(b"o" * 7)
        assert _recv(other_peer, 7) == b"o" * 7
        assert b.get_global("msg_bytes") == 123

        # Detached: sockets added to the map from now on run no program.
        b.detach_func("count_msg", socks.map_fd, BPFAttachType.SK_MSG_VERDICT)
        assert b.links() == []
        late, late_peer = pair()
        socks[1] = late.fileno()
        late.sendall(b"l" * 50)
        assert _recv(late_peer, 50) == b"l" * 50
        assert b.get_global("msg_bytes") == 123

        # Attached again and left for close() to undo.
        b.attach_func("count_msg", socks.map_fd, BPFAttachType.SK_MSG_VERDICT)
        assert len(b.links()) == 1
    assert [k for k in _native.process_links() if k.program == "count_msg"] == []
