"""XDP, TC and raw-socket programs against real traffic: a veth pair whose far end lives in a fresh
network namespace. Datagrams sent from the namespace arrive on the near end, where the program
under test drops or passes them; the tests count what the receiving sockets and the program's
map saw, and check with `ip`/`tc` that nothing stays attached."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfkit import BPF, AttachError, features

from ._features import need
from .conftest import leaked, snapshot

# One object with every program the tests use: the ports come in as const volatile globals, so
# the object is compiled once and each test only loads it.
NET_SRC = r"""
#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif
#define TC_PASS 0   /* TC_ACT_OK, TCX_PASS */
#define TC_DROP 2   /* TC_ACT_SHOT, TCX_DROP */

const volatile u16 drop_port = 0;
const volatile u16 pass_port = 0;

enum { DROPPED, PASSED, OTHER, NSLOTS };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, NSLOTS);
    __type(key, u32);
    __type(value, u64);
} counters SEC(".maps");

/* The UDP destination port of an Ethernet/IPv4 frame in [data, end), or -1. */
static __always_inline int udp_dport(void *data, void *end)
{
    struct ethhdr *eth = data;
    struct iphdr *ip;
    struct udphdr *udp;

    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return -1;
    ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
        return -1;
    udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > end)
        return -1;
    return bpf_ntohs(udp->dest);
}

/* Counts the frame; true when it is to be dropped. */
static __always_inline bool verdict(void *data, void *end)
{
    int port = udp_dport(data, end);
    u32 slot = port == drop_port ? DROPPED : port == pass_port ? PASSED : OTHER;
    u64 *n = bpf_map_lookup_elem(&counters, &slot);

    if (n)
        __sync_fetch_and_add(n, 1);
    return slot == DROPPED;
}

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
    return verdict((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_DROP : XDP_PASS;
}

SEC("tcx/ingress")
int tcx_drop_udp(struct __sk_buff *skb)
{
    return verdict((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_DROP : TC_PASS;
}

SEC("tc")
int tc_drop_udp(struct __sk_buff *skb)
{
    return verdict((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_DROP : TC_PASS;
}

/* Socket filter: keeps whole frames that are UDP to pass_port, drops the rest. */
SEC("socket")
int only_udp_port(struct __sk_buff *skb)
{
    struct ethhdr eth;
    struct iphdr ip;
    struct udphdr udp;

    if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) || eth.h_proto != bpf_htons(ETH_P_IP))
        return 0;
    if (bpf_skb_load_bytes(skb, sizeof(eth), &ip, sizeof(ip)) || ip.protocol != IPPROTO_UDP)
        return 0;
    if (bpf_skb_load_bytes(skb, sizeof(eth) + ip.ihl * 4, &udp, sizeof(udp)))
        return 0;
    return bpf_ntohs(udp.dest) == pass_port ? skb->len : 0;
}
"""

# Runs in the far namespace: sends `count` datagrams to each `port:count` spec, payload
# "<marker>-<port>-<i>".
SENDER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for spec in sys.argv[3:]:
        port, count = map(int, spec.split(":"))
        for i in range(count):
            s.sendto(f"{sys.argv[2]}-{port}-{i}".encode(), (sys.argv[1], port))
""")


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


@dataclasses.dataclass
class VethPair:
    """``host`` is in this namespace with ``host_ip``; ``peer`` is in namespace ``ns`` with ``peer_ip``."""

    ns: str
    host: str
    peer: str
    host_ip: str
    peer_ip: str

    def send_udp(self, *plan: tuple, marker: str = "bpfkit") -> None:
        """Sends, from the far namespace to ``host_ip``, ``count`` datagrams per ``(port, count)``."""
        _run("ip", "netns", "exec", self.ns, sys.executable, "-c", SENDER, self.host_ip, marker,
             *(f"{port}:{count}" for port, count in plan))

    def link_line(self) -> str:
        return _run("ip", "-o", "link", "show", "dev", self.host).stdout

    def qdiscs(self) -> str:
        return _run("tc", "qdisc", "show", "dev", self.host).stdout


def _free_subnet() -> ipaddress.IPv4Network:
    used = _run("ip", "-o", "-4", "addr", "show").stdout + _run("ip", "-4", "route", "show", "table", "all").stdout
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if f"10.{net.network_address.packed[1]}.{net.network_address.packed[2]}." not in used:
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet found")


@pytest.fixture
def veth() -> Iterator[VethPair]:
    """A fresh network namespace and a veth pair into it, with static neighbour entries (so no
    ARP delays or reorders the test's datagrams), torn down even when the test fails."""
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed: the network tests need it")
    tag = os.urandom(3).hex()
    pair = None
    ns = f"bpfkit-test-{tag}"
    r = _run("ip", "netns", "add", ns, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    host, peer = f"bk{tag}h", f"bk{tag}p"
    try:
        net = _free_subnet()
        host_ip, peer_ip = str(net.network_address + 1), str(net.network_address + 2)
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/24", "dev", host)
        _run("ip", "-n", ns, "addr", "add", f"{peer_ip}/24", "dev", peer)
        _run("ip", "link", "set", host, "up")
        _run("ip", "-n", ns, "link", "set", peer, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        host_mac = Path(f"/sys/class/net/{host}/address").read_text().strip()
        peer_mac = _run("ip", "-n", ns, "-o", "link", "show", peer).stdout.split("link/ether ")[1].split()[0]
        _run("ip", "neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", host, "nud", "permanent")
        _run("ip", "-n", ns, "neigh", "replace", host_ip, "lladdr", host_mac, "dev", peer, "nud", "permanent")
        pair = VethPair(ns, host, peer, host_ip, peer_ip)
        yield pair
    finally:
        _run("ip", "netns", "del", ns, check=False)  # takes the peer, and with it the host end
        if os.path.exists(f"/sys/class/net/{host}"):
            _run("ip", "link", "del", host, check=False)


def _receiver(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def _drain(s: socket.socket, first: float = 1.0, then: float = 0.3) -> list:
    """Every datagram waiting on ``s`` or arriving until it has been quiet for a while."""
    out = []
    s.settimeout(first)
    try:
        while True:
            out.append(s.recv(2048))
            s.settimeout(then)
    except socket.timeout:
        return out


def _counters(b: BPF) -> tuple:
    c = b["counters"]
    return c[0].value, c[1].value


@pytest.fixture
def ports(veth: VethPair) -> Iterator[tuple]:
    """Two UDP sockets bound on the near end (port A to be dropped, port B to pass)."""
    a, p = _receiver(veth.host_ip), _receiver(veth.host_ip)
    try:
        yield a, p
    finally:
        a.close()
        p.close()


# -- XDP -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["skb", "drv"])
def test_xdp_drops_udp_to_one_port_and_counts(veth: VethPair, ports: tuple, mode: str) -> None:
    need("xdp_link")
    flags = {"skb": BPF.XDP_FLAGS_SKB_MODE, "drv": BPF.XDP_FLAGS_DRV_MODE}[mode]
    rx_a, rx_b = ports
    port_a, port_b = rx_a.getsockname()[1], rx_b.getsockname()[1]
    n, m = 40, 25
    with BPF(text=NET_SRC, consts={"drop_port": port_a, "pass_port": port_b}) as b:
        fn = b.load_func("xdp_drop_udp", BPF.XDP)
        assert (fn.name, fn.bpf, fn.fd > 0) == ("xdp_drop_udp", b, True)
        b.attach_xdp(veth.host, fn, flags)
        line = veth.link_line()
        # `ip link` says xdpgeneric for skb mode and plain xdp for native mode.
        assert ("xdpgeneric" in line) == (mode == "skb") and " xdp" in line, line
        assert b.links() == [("xdp", veth.host, "xdp_drop_udp")]

        veth.send_udp((port_a, n), (port_b, m), marker="xdp")
        got_b = _drain(rx_b)
        got_a = _drain(rx_a, first=0.3)
        assert got_a == []
        assert sorted(got_b) == sorted(f"xdp-{port_b}-{i}".encode() for i in range(m))
        assert _counters(b) == (n, m)

        b.remove_xdp(veth.host, flags)
        assert " xdp" not in veth.link_line()
        assert b.links() == []
        with pytest.raises(ValueError, match=f"no XDP program attached to {veth.host}"):
            b.remove_xdp(veth.host)
        # Detached: port A now receives, and the program no longer counts.
        veth.send_udp((port_a, 3), marker="after")
        assert len(_drain(rx_a)) == 3
        assert _counters(b) == (n, m)


def test_xdp_close_detaches_and_attach_refuses_a_second_program(veth: VethPair) -> None:
    need("xdp_link")
    before = snapshot()
    b = BPF(text=NET_SRC)
    b.attach_xdp(veth.host, "xdp_drop_udp", BPF.XDP_FLAGS_SKB_MODE)  # a name works as well as a Function
    with BPF(text=NET_SRC) as other:
        with pytest.raises(AttachError, match="already has an XDP program") as ei:
            other.attach_xdp(veth.host, other.load_func("xdp_drop_udp", BPF.XDP), BPF.XDP_FLAGS_SKB_MODE)
        assert ei.value.errno in (errno.EBUSY, errno.EEXIST)
    assert "xdpgeneric" in veth.link_line()
    b.close()
    assert " xdp" not in veth.link_line()
    assert not leaked(before)


def test_xdp_update_if_noexist_is_accepted_and_bcc_class_calls_work(veth: VethPair) -> None:
    need("xdp_link")
    with BPF(text=NET_SRC) as b:
        fn = b.load_func("xdp_drop_udp", BPF.XDP)
        # BCC's static-method spelling, with BCC's usual flags.
        BPF.attach_xdp(veth.host, fn, BPF.XDP_FLAGS_UPDATE_IF_NOEXIST | BPF.XDP_FLAGS_SKB_MODE)
        assert "xdpgeneric" in veth.link_line()
        BPF.remove_xdp(veth.host, BPF.XDP_FLAGS_SKB_MODE)
        assert " xdp" not in veth.link_line()
        with pytest.raises(ValueError, match="no XDP program is attached"):
            BPF.remove_xdp(veth.host)


def test_killed_process_leaves_no_xdp_attached(veth: VethPair) -> None:
    need("xdp_link")
    before = snapshot()
    code = textwrap.dedent(f"""
        import time
        from bpfkit import BPF
        b = BPF(text={NET_SRC!r})
        b.attach_xdp({veth.host!r}, b.load_func("xdp_drop_udp", BPF.XDP), BPF.XDP_FLAGS_DRV_MODE)
        print("ready", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        assert " xdp " in veth.link_line(), "the child attached its program"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    deadline = time.monotonic() + 5
    while " xdp" in veth.link_line() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert " xdp" not in veth.link_line()
    assert not leaked(before, timeout=5)


# -- TC ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prog,mode,expect", [
    ("tcx_drop_udp", "tcx", "tcx"),
    ("tcx_drop_udp", "auto", "tcx-if-supported"),
    ("tc_drop_udp", "tcx", "tcx"),  # a plain SEC("tc") program takes a tcx link too
    ("tc_drop_udp", "clsact", "clsact"),
])
def test_tc_ingress_drops_udp_to_one_port(veth: VethPair, ports: tuple, prog: str, mode: str, expect: str) -> None:
    if expect == "tcx-if-supported":
        # "auto": tcx where the kernel has it, else the clsact way (kernels before 6.6).
        expect = "tcx" if features.supported("tcx") else "clsact"
    elif expect == "tcx":
        need("tcx")
    if shutil.which("tc") is None:
        pytest.skip("the `tc` command (iproute2) is not installed")
    rx_a, rx_b = ports
    port_a, port_b = rx_a.getsockname()[1], rx_b.getsockname()[1]
    n, m = 30, 20
    assert "clsact" not in veth.qdiscs()
    with BPF(text=NET_SRC, consts={"drop_port": port_a, "pass_port": port_b}) as b:
        fn = b.load_func(prog, BPF.SCHED_CLS)
        assert b.attach_tc(veth.host, fn, direction="ingress", mode=mode) == expect
        # tcx needs no qdisc; the clsact way makes one.
        assert ("clsact" in veth.qdiscs()) == (expect == "clsact")
        assert b.links() == [("tc", f"{veth.host}:ingress", prog)]

        veth.send_udp((port_a, n), (port_b, m), marker="tc")
        got_b = _drain(rx_b)
        assert _drain(rx_a, first=0.3) == []
        assert sorted(got_b) == sorted(f"tc-{port_b}-{i}".encode() for i in range(m))
        assert _counters(b) == (n, m)

        b.detach_tc(veth.host, direction="ingress")
        assert "clsact" not in veth.qdiscs()
        with pytest.raises(ValueError, match="no tc program"):
            b.detach_tc(veth.host, direction="ingress")
        veth.send_udp((port_a, 2))
        assert len(_drain(rx_a)) == 2

        # Attached again and left for close(): close removes the filter and the qdisc it made.
        b.attach_tc(veth.host, fn, direction="ingress", mode=mode)
    assert "clsact" not in veth.qdiscs()
    veth.send_udp((port_a, 2))
    assert len(_drain(rx_a)) == 2


def test_tc_clsact_leaves_a_qdisc_it_did_not_create(veth: VethPair) -> None:
    if shutil.which("tc") is None:
        pytest.skip("the `tc` command (iproute2) is not installed")
    _run("tc", "qdisc", "add", "dev", veth.host, "clsact")
    with BPF(text=NET_SRC) as b:
        assert b.attach_tc(veth.host, "tc_drop_udp", direction="egress", mode="clsact") == "clsact"
        assert "tc_drop_udp" in _run("tc", "filter", "show", "dev", veth.host, "egress").stdout
    assert "clsact" in veth.qdiscs()
    assert _run("tc", "filter", "show", "dev", veth.host, "egress").stdout.strip() == ""


def test_tc_direction_comes_from_the_call_not_the_section(veth: VethPair, ports: tuple) -> None:
    need("tcx")
    rx_a, rx_b = ports
    port_a, port_b = rx_a.getsockname()[1], rx_b.getsockname()[1]
    with BPF(text=NET_SRC, consts={"drop_port": port_a}) as b:
        # A SEC("tcx/ingress") program attached for egress goes to egress, through tcx.
        assert b.attach_tc(veth.host, "tcx_drop_udp", direction="egress", mode="tcx") == "tcx"
        assert b.links() == [("tc", f"{veth.host}:egress", "tcx_drop_udp")]
        # On the host's egress it sees nothing the peer sends to us: nothing is dropped here.
        veth.send_udp((port_a, 5), (port_b, 3))
        assert len(_drain(rx_a)) == 5 and len(_drain(rx_b)) == 3
        b.detach_tc(veth.host, direction="egress", fn="tcx_drop_udp")
        assert b.links() == []


# -- raw sockets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["instance", "bcc_static"])
def test_raw_socket_filter_sees_only_udp_to_its_port(veth: VethPair, ports: tuple, call: str) -> None:
    rx_a, rx_b = ports
    port_a, port_b = rx_a.getsockname()[1], rx_b.getsockname()[1]
    k = 12
    with BPF(text=NET_SRC, consts={"pass_port": port_b}) as b:
        fn = b.load_func("only_udp_port", BPF.SOCKET_FILTER)
        assert getattr(fn, "sock", None) is None
        if call == "instance":
            sock = b.attach_raw_socket(fn, veth.host)
        else:
            sock = BPF.attach_raw_socket(fn, veth.host)
        assert isinstance(sock, socket.socket) and fn.sock == sock.fileno() >= 0
        veth.send_udp((port_a, 7), (port_b, k), marker="raw")
        frames = _drain(sock)
        seen = []
        for f in frames:
            ihl = (f[14] & 0xF) * 4
            proto = f[14 + 9]
            dport = struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0]
            assert (proto, dport) == (socket.IPPROTO_UDP, port_b)
            seen.append(f[14 + ihl + 8:])
        assert sorted(seen) == sorted(f"raw-{port_b}-{i}".encode() for i in range(k))
    # close() closed the raw socket too.
    assert sock.fileno() == -1 and fn.sock is None


# -- bad input -----------------------------------------------------------------------------------

def test_unknown_device_and_wrong_program_type_are_typed_errors() -> None:
    missing = "bkno" + os.urandom(3).hex()
    with BPF(text=NET_SRC) as b:
        xdp = b.load_func("xdp_drop_udp", BPF.XDP)
        for call in (lambda: b.attach_xdp(missing, xdp),
                     lambda: b.attach_tc(missing, "tc_drop_udp"),
                     lambda: b.attach_raw_socket("only_udp_port", missing)):
            with pytest.raises(AttachError, match=missing) as ei:
                call()
            assert ei.value.errno == errno.ENODEV

        with pytest.raises(ValueError, match="no program named 'nope'.*xdp_drop_udp"):
            b.load_func("nope", BPF.XDP)
        with pytest.raises(TypeError, match="BPF_PROG_TYPE_SOCKET_FILTER.*not the BPF_PROG_TYPE_XDP"):
            b.load_func("only_udp_port", BPF.XDP)
        with pytest.raises(TypeError, match="attach_xdp needs a BPF_PROG_TYPE_XDP program"):
            b.attach_xdp("lo", "tc_drop_udp")
        with pytest.raises(TypeError, match="attach_tc needs a BPF_PROG_TYPE_SCHED_CLS"):
            b.attach_tc("lo", xdp)
        with pytest.raises(TypeError, match="attach_raw_socket needs a BPF_PROG_TYPE_SOCKET_FILTER"):
            b.attach_raw_socket(xdp, "lo")
        with pytest.raises(AttachError, match="offload .* needs a NIC that runs BPF"):
            b.attach_xdp("lo", xdp, BPF.XDP_FLAGS_HW_MODE)
        with pytest.raises(ValueError, match="XDP_FLAGS_REPLACE"):
            b.attach_xdp("lo", xdp, BPF.XDP_FLAGS_REPLACE)
        with pytest.raises(ValueError, match="more than one mode"):
            b.attach_xdp("lo", xdp, BPF.XDP_FLAGS_SKB_MODE | BPF.XDP_FLAGS_DRV_MODE)
        with pytest.raises(ValueError, match="direction"):
            b.attach_tc("lo", "tc_drop_udp", direction="sideways")
        with pytest.raises(ValueError, match="no XDP program attached to lo"):
            b.remove_xdp("lo")
        assert b.links() == []


def test_tc_clsact_detaching_one_direction_keeps_the_other(veth: VethPair) -> None:
    if shutil.which("tc") is None:
        pytest.skip("the `tc` command (iproute2) is not installed")
    with BPF(text=NET_SRC) as b:
        b.attach_tc(veth.host, "tc_drop_udp", direction="ingress", mode="clsact")  # creates the qdisc
        b.attach_tc(veth.host, "tc_drop_udp", direction="egress", mode="clsact")
        b.detach_tc(veth.host, direction="ingress")
        assert b.links() == [("tc", f"{veth.host}:egress", "tc_drop_udp")]
        # The qdisc bpfkit made stays while one of its filters is in it, and goes with the last.
        assert "tc_drop_udp" in _run("tc", "filter", "show", "dev", veth.host, "egress").stdout
        assert "clsact" in veth.qdiscs()
    assert "clsact" not in veth.qdiscs()
