"""The TCP tools (tcpconnect, tcpaccept, tcplife, tcpstates, tcpretrans, tcptop) against TCP
sessions the tests make themselves: a client process with a known pid connects to a listener of
this process on 127.0.0.1 and they exchange a known number of bytes; retransmits are forced by
taking down the far end of a veth pair in a fresh network namespace. Each tool's text and JSON
output are checked for the session's pids, comms, addresses, ports, states and byte counts."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from .test_kit import json_lines, start_quiet
from .test_net import VethPair, _run, veth  # noqa: F401 (veth: a fixture)
from .test_tools import BPFKIT, finish, start_tool, wait_header

NET_TOOLS = ["tcpconnect", "tcpaccept", "tcplife", "tcpstates", "tcpretrans", "tcptop"]
LOCAL = "127.0.0.1"

# The client: waits for a line on stdin, connects, prints its local port, sends SEND bytes, reads
# until the server closes (RECV bytes expected), closes, and prints what it read.
CLIENT = textwrap.dedent("""
    import socket, sys
    host, port, send = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.stdin.readline()
    c = socket.create_connection((host, port))
    print(c.getsockname()[1], flush=True)
    c.sendall(b"c" * send)
    got = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    c.close()
    print(got, flush=True)
""")


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


class Session:
    """One TCP session: a client process (``pid``, ``comm``, ``port`` once connected) to a
    listener of this process on 127.0.0.1 (``listen_port``). The client sends ``send`` bytes;
    the server reads them, answers ``recv`` bytes and shuts its side down; the client closes
    once it has read them all (so the server closes first: FIN_WAIT1/2 on its side, CLOSE_WAIT
    and LAST_ACK on the client's)."""

    def __init__(self, send: int = 0, recv: int = 0) -> None:
        self.send, self.recv = send, recv
        self.listener = socket.socket()
        self.listener.bind((LOCAL, 0))
        self.listener.listen()
        self.listen_port = self.listener.getsockname()[1]
        self.client = subprocess.Popen([sys.executable, "-c", CLIENT, LOCAL, str(self.listen_port), str(send)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.client.pid
        self.comm = comm_of(self.pid)
        self.port = 0

    def run(self, accept: str = "accept4") -> None:
        """Lets the client go and serves it; ``accept="accept"`` accepts with accept(2) itself
        (Python's socket.accept() uses accept4(2))."""
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write("go\n")
        self.client.stdin.flush()
        if accept == "accept":
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.accept(self.listener.fileno(), None, None)
            assert fd >= 0, os.strerror(ctypes.get_errno())
            conn = socket.socket(fileno=fd)
        else:
            conn, _ = self.listener.accept()
        self.port = int(self.client.stdout.readline())
        with conn:
            got = 0
            while got < self.send:
                d = conn.recv(65536)
                assert d, "the client closed early"
                got += len(d)
            conn.sendall(b"s" * self.recv)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b"", "the client closes after reading the answer"
        assert int(self.client.stdout.readline()) == self.recv
        assert self.client.wait(timeout=10) == 0

    def close(self) -> None:
        self.listener.close()
        if self.client.poll() is None:
            self.client.kill()
            self.client.wait()


@pytest.fixture
def session_factory() -> Iterator:
    made: list = []

    def make(send: int = 0, recv: int = 0) -> Session:
        s = Session(send, recv)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def interrupt(p: subprocess.Popen, settle: float = 0.3) -> str:
    """Ctrl-C for a tool that runs until it (tcpconnect has no -d: its -d is BCC's --dns)."""
    time.sleep(settle)  # the records of the workload reach the tool's buffer
    p.send_signal(signal.SIGINT)
    return finish(p)


def rows(out: str, n: int) -> list:
    """The lines of ``out`` with at least ``n`` fields, split."""
    return [line.split() for line in out.splitlines() if len(line.split()) >= n]


# -- every tool: -h, --ebpf ------------------------------------------------------------------------

@pytest.mark.parametrize("tool", NET_TOOLS)
def test_help_and_ebpf(tool: str):
    r = subprocess.run([*BPFKIT, tool, "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: bpfkit {tool}"), r
    assert "Examples:" in r.stdout or "examples:" in r.stdout.lower()
    r = subprocess.run([*BPFKIT, tool, "--ebpf"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "tool.bpf.h" in r.stdout and "SEC(" in r.stdout, r.stderr
    listed = subprocess.run([*BPFKIT, "list"], capture_output=True, text=True, timeout=30).stdout
    assert any(line.split()[:1] == [tool] and len(line.split()) > 1 for line in listed.splitlines()), listed


def test_bad_port_lists_are_one_line_usage_errors():
    for tool, flag in (("tcpconnect", "-P"), ("tcpaccept", "-P"), ("tcplife", "-L"), ("tcpstates", "-D")):
        r = subprocess.run([*BPFKIT, tool, flag, "80,x"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "'x'" in r.stderr, r.stderr
    r = subprocess.run([*BPFKIT, "tcpstates", "-L", ",".join(str(p) for p in range(1, 18))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "at most 16" in r.stderr, r.stderr


# -- tcpconnect ------------------------------------------------------------------------------------

@pytest.mark.kernels
def test_tcpconnect_shows_the_clients_connect(session_factory):
    s = session_factory(send=10, recv=20)
    p = start_tool("tcpconnect", "-t", "-U", "-L")
    header = wait_header(p, r"DPORT\s*$")
    assert header.split() == ["TIME(s)", "UID", "PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT"]
    s.run()
    out = interrupt(p)
    mine = [f for f in rows(out, 9) if f[2] == str(s.pid)]
    assert len(mine) == 1, out
    t, uid, pid, comm, ip, saddr, lport, daddr, dport = mine[0]
    assert float(t) >= 0 and int(uid) == os.getuid() and comm == s.comm[:12] and ip == "4"
    assert (saddr, int(lport), daddr, int(dport)) == (LOCAL, s.port, LOCAL, s.listen_port)


def test_tcpconnect_json_port_filter_and_counts(session_factory):
    wanted, other = session_factory(), session_factory()
    p = start_quiet(2, "tcpconnect", "-j", "-L", "-P", str(wanted.listen_port))
    wanted.run()
    other.run()
    got = json_lines(interrupt(p))
    assert got == [{"pid": wanted.pid, "comm": wanted.comm, "ip": 4, "saddr": LOCAL, "lport": wanted.port,
                    "daddr": LOCAL, "dport": wanted.listen_port}], "-P shows only the port asked for"

    # -c: three connects to one listener are one flow counted three times.
    with socket.socket() as listener:
        listener.bind((LOCAL, 0))
        listener.listen()
        port = listener.getsockname()[1]
        p = start_tool("tcpconnect", "-c", "-P", str(port))
        wait_header(p, r"Tracing connect")
        time.sleep(0.3)  # the line is printed just before the wait for Ctrl-C
        for _ in range(3):
            with socket.create_connection((LOCAL, port)):
                listener.accept()[0].close()
        out = interrupt(p)
    table = rows(out, 4)
    assert table == [["LADDR", "RADDR", "RPORT", "CONNECTS"], [LOCAL, LOCAL, str(port), "3"]], out



# -d: the child looks up a name that only its private /etc/hosts knows (a bind mount in a mount
# namespace of its own: unshare -m makes the mounts private), connects to the address it got, then
# to another address by its bare IP, with no lookup. unshare and sh exec, so the pid stays the one
# Popen started.
DNS_CHILD = textwrap.dedent("""
    import socket, sys
    name, named_port, bare_ip, bare_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    print("ready", flush=True)
    sys.stdin.readline()
    (fam, kind, proto, _, addr), *_ = socket.getaddrinfo(name, named_port, type=socket.SOCK_STREAM)
    for where in (addr, (bare_ip, bare_port)):
        with socket.socket(fam, kind, proto) as c:
            c.connect(where)
    print(addr[0], flush=True)
""")
NAMED_IP, BARE_IP = "127.0.0.7", "127.0.0.2"  # on lo, as any 127/8 address; not 127.0.0.1 (BCC: "localhost")


class DnsChild:
    """Listeners on NAMED_IP and BARE_IP, and the child above, ready to go."""

    def __init__(self, tmp_path) -> None:
        self.name = f"bpfkit-dns-{os.getpid()}.test"
        hosts = tmp_path / "hosts"
        hosts.write_text(f"{NAMED_IP} {self.name}\n")
        self.listeners = []
        for ip in (NAMED_IP, BARE_IP):
            sock = socket.socket()
            sock.bind((ip, 0))
            sock.listen()
            self.listeners.append(sock)
        self.named_port, self.bare_port = (sock.getsockname()[1] for sock in self.listeners)
        script = f"mount --bind {hosts} /etc/hosts && exec \"$@\""
        self.child = subprocess.Popen(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-c", DNS_CHILD,
                                       self.name, str(self.named_port), BARE_IP, str(self.bare_port)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None and self.child.stdout.readline() == "ready\n"
        self.pid, self.comm = self.child.pid, comm_of(self.child.pid)

    def run(self) -> None:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("go\n")
        self.child.stdin.flush()
        assert self.child.stdout.readline() == NAMED_IP + "\n", "the private hosts file named the address"
        assert self.child.wait(timeout=10) == 0

    def close(self) -> None:
        for sock in self.listeners:
            sock.close()
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()


@pytest.fixture
def dns_child(tmp_path) -> Iterator[DnsChild]:
    c = DnsChild(tmp_path)
    yield c
    c.close()


def test_tcpconnect_dns_names_the_address_a_lookup_returned(dns_child: DnsChild):
    p = start_tool("tcpconnect", "-d", "-p", str(dns_child.pid))
    header = wait_header(p, r"QUERY\s*$")
    assert header.split() == ["PID", "COMM", "IP", "SADDR", "DADDR", "DPORT", "QUERY"]
    assert header.index("QUERY") == header.index("DPORT") + 7, "BCC: DPORT is %-6s, then ' QUERY'"
    dns_child.run()
    out = interrupt(p)
    mine = [f for f in rows(out, 7) if f[0] == str(dns_child.pid)]
    assert [f[1:6] for f in mine] == [[dns_child.comm[:12], "4", LOCAL, NAMED_IP, str(dns_child.named_port)],
                                      [dns_child.comm[:12], "4", LOCAL, BARE_IP, str(dns_child.bare_port)]], out
    assert mine[0][6:] == [dns_child.name], "the name the lookup was made by, without an age (<100 ms)"
    assert mine[1][6:] == ["No", "DNS", "Query"], "a connect by bare IP: BCC's text"


def test_tcpconnect_dns_json_and_refusals(dns_child: DnsChild):
    p = start_quiet(4, "tcpconnect", "-j", "-d", "-L", "-p", str(dns_child.pid))  # 2 connect hooks, 2 uprobes
    dns_child.run()
    got = json_lines(interrupt(p))
    assert [(r["daddr"], r["dport"], r["query"]) for r in got] == [
        (NAMED_IP, dns_child.named_port, dns_child.name), (BARE_IP, dns_child.bare_port, None)], got
    assert all(r["pid"] == dns_child.pid and r["lport"] > 0 for r in got)
    r = subprocess.run([*BPFKIT, "tcpconnect", "-d", "-c"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "-d/--dns with -c/--count" in r.stderr and len(r.stderr.splitlines()) == 1


def test_tcpconnect_mntnsmap_shows_the_mount_namespaces_in_the_pinned_map_only(pinned_set):
    # 8-byte values: not the template's 4 (BCC's mount-namespace set), so the kit compiles for it.
    path, nsset = pinned_set("u64")
    nsset[os.stat("/proc/self/ns/mnt").st_ino] = 1
    connect = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()"
    with socket.socket() as listener:
        listener.bind((LOCAL, 0))
        listener.listen()
        port = listener.getsockname()[1]
        p = start_quiet(2, "tcpconnect", "-j", "-P", str(port), "--mntnsmap", path)
        # unshare(1) execs the command: the pid is the connecting process's, in a new mount namespace.
        clients = [subprocess.Popen([*prefix, sys.executable, "-c", connect, str(port)]) for prefix in ([], ["unshare", "-m"])]
        for c in clients:
            assert c.wait(timeout=30) == 0
            listener.accept()[0].close()
        got = json_lines(interrupt(p))
    inside, outside = clients
    assert [(r["pid"], r["daddr"], r["dport"]) for r in got] == [(inside.pid, LOCAL, port)], got


# -- tcpaccept -------------------------------------------------------------------------------------

@pytest.mark.kernels
def test_tcpaccept_shows_accept4_and_accept(session_factory):
    a, b = session_factory(), session_factory()
    p = start_tool("tcpaccept", "-T", "-t", "-d", "4")
    header = wait_header(p, r"LPORT\s*$")
    assert header.split() == ["TIME", "TIME(s)", "PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT"]
    a.run(accept="accept4")
    b.run(accept="accept")
    out = finish(p)
    me, comm = os.getpid(), comm_of(os.getpid())
    for s in (a, b):
        hit = [f for f in rows(out, 9) if f[8] == str(s.listen_port)]
        assert len(hit) == 1, (s.listen_port, out)
        _, t, pid, c, ip, raddr, rport, laddr, lport = hit[0]
        assert float(t) >= 0 and int(pid) == me and c == comm[:12] and ip == "4"
        assert (raddr, int(rport), laddr, int(lport)) == (LOCAL, s.port, LOCAL, s.listen_port)


def test_tcpaccept_json_and_port_filter(session_factory):
    a, b = session_factory(), session_factory()
    p = start_quiet(2, "tcpaccept", "-j", "-P", str(a.listen_port), "-d", "3")
    a.run()
    b.run()
    got = json_lines(finish(p))
    assert got == [{"pid": os.getpid(), "comm": comm_of(os.getpid()), "ip": 4, "raddr": LOCAL, "rport": a.port,
                    "laddr": LOCAL, "lport": a.listen_port}]


# -- tcplife ---------------------------------------------------------------------------------------

SEND, RECV = 3 * 1024 + 100, 10 * 1024 + 7  # bytes client -> server, server -> client


def test_tcplife_shows_both_ends_with_their_bytes(session_factory):
    s = session_factory(SEND, RECV)
    p = start_tool("tcplife", "-d", "3")
    header = wait_header(p, r"MS\s*$")
    assert header.split() == ["PID", "COMM", "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS"]
    s.run()
    out = finish(p)
    lines = rows(out, 9)
    client = [f for f in lines if f[3] == str(s.port) and f[5] == str(s.listen_port)]
    server = [f for f in lines if f[3] == str(s.listen_port) and f[5] == str(s.port)]
    assert len(client) == 1 and len(server) == 1, out
    # The client: its pid and comm (it connected), 3 KB out, 10 KB in.
    assert client[0][:3] == [str(s.pid), s.comm[:10], LOCAL] and client[0][6:8] == ["3", "10"], out
    # The server end belongs to this process (it closed it), with the bytes the other way round.
    assert server[0][:3] == [str(os.getpid()), comm_of(os.getpid())[:10], LOCAL] and server[0][6:8] == ["10", "3"]
    assert float(client[0][8]) > 0 and float(server[0][8]) > 0


def test_tcplife_json_has_exact_bytes_and_pid_filter(session_factory):
    s = session_factory(SEND, RECV)
    other = session_factory(5, 7)
    p = start_quiet(1, "tcplife", "-j", "-p", str(s.pid), "-d", "3")
    s.run()
    other.run()
    got = json_lines(finish(p))
    assert len(got) == 1, got
    row = got[0]
    assert row.pop("ms") > 0
    assert row == {"pid": s.pid, "comm": s.comm, "ip": 4, "laddr": LOCAL, "lport": s.port, "raddr": LOCAL,
                   "rport": s.listen_port, "tx_kb": SEND // 1024, "rx_kb": RECV // 1024,
                   "tx_bytes": SEND, "rx_bytes": RECV}


def test_tcplife_csv_and_wide(session_factory):
    """-s: comma-separated, with the IP column and -T/-t's times; -w: the wide columns (the IP
    column too, and addresses that fit IPv6's): both show the session's values."""
    s = session_factory(SEND, RECV)
    csv = start_quiet(1, "tcplife", "-s", "-T", "-t", "-p", str(s.pid), "-d", "3")
    wide = start_quiet(1, "tcplife", "-w", "-p", str(s.pid), "-d", "3")
    s.run()
    out = finish(csv).splitlines()
    assert out[0] == "TIME,TIME(s),PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS", out
    assert len(out) == 2, out
    f = out[1].split(",")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", f[0]) and float(f[1]) >= 0 and float(f[11]) > 0, f
    assert f[2:11] == [str(s.pid), s.comm, "4", LOCAL, str(s.port), LOCAL, str(s.listen_port),
                       str(SEND // 1024), str(RECV // 1024)], f
    out = finish(wide).splitlines()
    assert out[0].split() == ["PID", "COMM", "IP", "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS"], out
    assert len(out) == 2, out
    # The wide layout: a 16-character command and 26-character addresses.
    want = "%-5d %-16.16s %-2d %-26s %-5d %-26s %-5d %6d %6d " % (
        s.pid, s.comm, 4, LOCAL, s.port, LOCAL, s.listen_port, SEND // 1024, RECV // 1024)
    assert out[1].startswith(want) and float(out[1][len(want):]) > 0, (want, out)


# -- tcpstates -------------------------------------------------------------------------------------

# The server closes first (Session.run); the client's FIN acknowledges the server's, so neither
# side can pass through CLOSING.
CLIENT_STATES = [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"), ("ESTABLISHED", "CLOSE_WAIT"),
                 ("CLOSE_WAIT", "LAST_ACK"), ("LAST_ACK", "CLOSE")]
SERVER_STATES = [("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED"), ("ESTABLISHED", "FIN_WAIT1"),
                 ("FIN_WAIT1", "FIN_WAIT2"), ("FIN_WAIT2", "CLOSE")]


def test_tcpstates_shows_each_sides_changes(session_factory):
    s = session_factory(100, 200)
    p = start_tool("tcpstates", "-t", "-d", "3")
    header = wait_header(p, r"MS\s*$")
    assert header.split() == ["TIME(s)", "SKADDR", "C-PID", "C-COMM", "LADDR", "LPORT", "RADDR", "RPORT",
                              "OLDSTATE", "->", "NEWSTATE", "MS"]
    s.run()
    out = finish(p)
    lines = rows(out, 12)
    # The client's socket: found by its first change, made in connect() by the client itself
    # (the local port is not chosen yet then).
    first = [f for f in lines if f[7] == str(s.listen_port) and (f[8], f[10]) == ("CLOSE", "SYN_SENT")]
    assert len(first) == 1 and first[0][2:4] == [str(s.pid), s.comm[:10]], out
    client = [f for f in lines if f[1] == first[0][1]]
    assert [(f[8], f[10]) for f in client] == CLIENT_STATES, out
    assert all(f[5] == str(s.port) for f in client[1:])
    server = [f for f in lines if f[5] == str(s.listen_port) and f[7] == str(s.port)]
    assert [(f[8], f[10]) for f in server] == SERVER_STATES, out
    assert all(float(f[11]) >= 0 and float(f[0]) >= 0 for f in client + server)


def test_tcpstates_json_local_port_filter(session_factory):
    s = session_factory(1, 1)
    p = start_quiet(1, "tcpstates", "-j", "-L", str(s.listen_port), "-d", "3")
    s.run()
    s.listener.close()
    got = json_lines(finish(p))
    assert all(r["lport"] == s.listen_port for r in got), got
    server = [(r["oldstate"], r["newstate"]) for r in got if r["rport"] == s.port]
    assert server == SERVER_STATES, got
    # The listener's own end, in this process's context.
    closing = [r for r in got if r["rport"] == 0]
    assert [(r["oldstate"], r["newstate"], r["pid"]) for r in closing] == [("LISTEN", "CLOSE", os.getpid())]
    assert all(r["ip"] == 4 and r["laddr"] == LOCAL and isinstance(r["skaddr"], int) for r in got)



def journal_entry(datagram: bytes) -> dict:
    """The fields of one entry in the journal's native protocol: ``KEY=value`` lines, or ``KEY``,
    a little-endian 64-bit length and that many bytes (a value with a newline)."""
    fields, i = {}, 0
    while i < len(datagram):
        end = datagram.index(b"\n", i)
        line = datagram[i:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = end + 1
        else:
            key, size = line, int.from_bytes(datagram[end + 1:end + 9], "little")
            value = datagram[end + 9:end + 9 + size]
            assert datagram[end + 9 + size:end + 10 + size] == b"\n"
            i = end + 10 + size
        fields[key.decode()] = value.decode()
    return fields


def test_tcpstates_journal_sends_bccs_fields(session_factory, tmp_path, monkeypatch):
    """-Y writes to the socket $BPFKIT_JOURNAL_SOCKET names (journald's is not needed): one
    datagram per change, with BCC's field names."""
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
        journal.bind(path)
        monkeypatch.setenv("BPFKIT_JOURNAL_SOCKET", path)
        s = session_factory(1, 1)
        p = start_quiet(1, "tcpstates", "-Y", "-j", "-D", str(s.listen_port), "-d", "3")
        s.run()
        printed = json_lines(finish(p))
        journal.setblocking(False)
        entries = []
        while True:
            try:
                entries.append(journal_entry(journal.recv(65536)))
            except BlockingIOError:
                break
    client = [e for e in entries if e["OBJECT_TCP_DESTINATION_PORT"] == str(s.listen_port)]
    assert [(e["OBJECT_TCP_OLD_STATE"], e["OBJECT_TCP_NEW_STATE"]) for e in client] == CLIENT_STATES, entries
    assert len(entries) == len(printed), "one entry per change printed"
    first = client[0]
    assert first["SYSLOG_IDENTIFIER"] == "tcpstates" and first["PRIORITY"] == "5"
    assert first["OBJECT_PID"] == str(s.pid) and first["OBJECT_IPV4_DESTINATION_ADDRESS"] == LOCAL
    # Made in connect(), by the client, before the local port is chosen.
    assert first["MESSAGE"] == f"{s.comm} {LOCAL} 0 → {LOCAL} {s.listen_port} CLOSE → SYN_SENT"
    for e in client[1:]:
        assert e["OBJECT_IPV4_SOURCE_ADDRESS"] == LOCAL and e["OBJECT_TCP_SOURCE_PORT"] == str(s.port)
        assert int(e["OBJECT_TCP_SPAN_TIME"]) >= 0 and int(e["_SOURCE_REALTIME_TIMESTAMP"]) > 0
        assert e["MESSAGE"].endswith(f"{LOCAL} {s.port} → {LOCAL} {s.listen_port} "
                                     f"{e['OBJECT_TCP_OLD_STATE']} → {e['OBJECT_TCP_NEW_STATE']}")
    assert ("OBJECT_COMM" in first) == (os.getuid() != 0), "as BCC: journald adds it for root"


def test_tcpstates_journal_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BPFKIT_JOURNAL_SOCKET", str(tmp_path / "none"))
    r = subprocess.run([*BPFKIT, "tcpstates", "-Y", "-d", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.splitlines() == [f"bpfkit tcpstates: error: no systemd journal to log to "
                                     f"(No such file or directory): '{tmp_path / 'none'}'"]


# -- tcpretrans ------------------------------------------------------------------------------------

SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.bind((sys.argv[1], 0))
    s.listen()
    print(s.getsockname()[1], flush=True)
    c, _ = s.accept()
    while c.recv(65536):
        pass
""")


@contextlib.contextmanager
def _client_of_a_server_behind(veth: VethPair) -> Iterator[tuple[socket.socket, int]]:  # noqa: F811
    """A connection to a server in ``veth``'s namespace: the client socket and the server's port.
    Taking the namespace's end of the pair down makes what the client sends get lost."""
    server = subprocess.Popen(["ip", "netns", "exec", veth.ns, sys.executable, "-c", SERVER, veth.peer_ip],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with socket.create_connection((veth.peer_ip, port), timeout=10) as client:
            yield client, port
    finally:
        server.kill()
        server.wait()


def test_tcpretrans_sees_retransmits_of_dropped_segments(veth: VethPair):  # noqa: F811
    """The server lives in the namespace; while the namespace's end of the veth pair is down,
    the client's segment is dropped and retransmitted at each RTO. Two instances watch: one
    prints each retransmit as JSON with -s, one counts per flow with -c; both must agree."""
    with _client_of_a_server_behind(veth) as (client, port):
        lport = client.getsockname()[1]
        events = start_quiet(1, "tcpretrans", "-j", "-s", "-d", "4")
        counts = start_quiet(1, "tcpretrans", "-c", "-d", "4")
        _run("ip", "-n", veth.ns, "link", "set", veth.peer, "down")
        client.sendall(b"r" * 100)
        time.sleep(1.6)  # RTOs at about 0.2, 0.6 and 1.4 s
        _run("ip", "-n", veth.ns, "link", "set", veth.peer, "up")
        got = [r for r in json_lines(finish(events)) if r["lport"] == lport]
        out = finish(counts)
    assert len(got) >= 2, got
    for r in got:
        assert (r["ip"], r["laddr"], r["raddr"], r["rport"], r["type"], r["state"]) == \
            (4, veth.host_ip, veth.peer_ip, port, "R", "ESTABLISHED"), r
    assert len({r["seq"] for r in got}) == 1, "the same segment is sent again each time"
    flow = [line for line in out.splitlines() if f"[{veth.host_ip}]#{lport}" in line]
    assert len(flow) == 1 and flow[0].split() == [f"[{veth.host_ip}]#{lport}", "<->", f"[{veth.peer_ip}]#{port}",
                                                   str(len(got))], out
    assert "LADDR:LPORT" in out and "RETRANSMITS" in out


@pytest.mark.kernels
def test_tcpretrans_lossprobe_sees_the_probe_of_a_lost_tail(veth: VethPair):  # noqa: F811
    """-l: two segments sent at once while the far end is down (TCP_NODELAY, so both leave): with
    more than one segment out, the kernel probes the tail after about two round trips, well before
    the RTO, by sending the last segment again (tcp_send_loss_probe). That probe shows as type L,
    on the flow's addresses, beside the RTO retransmits (R) that follow."""
    from bpfkit import features

    if not features.probe("fentry").supported and not features.probe("kprobes").supported:
        pytest.skip(f"-l needs fentry or a kprobe on tcp_send_loss_probe: fentry: "
                    f"{features.probe('fentry').reason}; kprobes: {features.probe('kprobes').reason}")
    with _client_of_a_server_behind(veth) as (client, port):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.sendall(b"warm" * 100)  # a round trip or two measured, so the probe's timeout is short
        time.sleep(0.2)
        lport = client.getsockname()[1]
        events = start_quiet(1, "tcpretrans", "-l", "-j", "-d", "3")
        _run("ip", "-n", veth.ns, "link", "set", veth.peer, "down")
        client.sendall(b"a" * 100)
        client.sendall(b"b" * 100)
        time.sleep(1.0)
        _run("ip", "-n", veth.ns, "link", "set", veth.peer, "up")
        got = [r for r in json_lines(finish(events)) if r["lport"] == lport]
    probes = [r for r in got if r["type"] == "L"]
    assert probes, got
    for r in got:
        assert (r["ip"], r["laddr"], r["raddr"], r["rport"], r["state"]) == \
            (4, veth.host_ip, veth.peer_ip, port, "ESTABLISHED"), r
    assert {r["type"] for r in got} <= {"L", "R"}, got
    assert got[0]["type"] == "L", "the probe comes before the first RTO"


def test_tcpretrans_text_header():
    r = subprocess.run([*BPFKIT, "tcpretrans", "-d", "0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["Tracing retransmits ... Hit Ctrl-C to end",
                                         "TIME     PID     IP LADDR:LPORT          T> RADDR:RPORT          STATE"]


def test_tcpretrans_lossprobe_refused_in_one_line_where_no_hook():
    """Tail loss probes have no tracepoint: -l needs fentry or a kprobe on tcp_send_loss_probe."""
    from bpfkit import features

    if features.probe("kprobes").supported or features.probe("fentry").supported:
        pytest.skip("this kernel has kprobes or fentry: -l works here, nothing to refuse")
    r = subprocess.run([*BPFKIT, "tcpretrans", "-l", "-d", "0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", r
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "tcp_send_loss_probe" in r.stderr and "no tracepoint" in r.stderr, r.stderr


# -- tcptop ----------------------------------------------------------------------------------------

@pytest.mark.kernels
def test_tcptop_counts_the_sessions_bytes(session_factory):
    s = session_factory(30000, 70000)
    p = start_quiet(2, "tcptop", "-C", "2", "1")
    s.run()
    out = finish(p)
    assert "loadavg:" in out
    lines = rows(out, 6)
    assert ["PID", "COMM", "LADDR", "RADDR", "RX_KB", "TX_KB"] in lines, out
    client = [f for f in lines if f[2] == f"{LOCAL}:{s.port}"]
    server = [f for f in lines if f[2] == f"{LOCAL}:{s.listen_port}"]
    assert client == [[str(s.pid), s.comm[:12], f"{LOCAL}:{s.port}", f"{LOCAL}:{s.listen_port}",
                       str(70000 // 1024), str(30000 // 1024)]], out
    assert server == [[str(os.getpid()), comm_of(os.getpid())[:12], f"{LOCAL}:{s.listen_port}",
                       f"{LOCAL}:{s.port}", str(30000 // 1024), str(70000 // 1024)]], out


def test_tcptop_json_exact_bytes_and_pid_filter(session_factory):
    s = session_factory(12345, 54321)
    p = start_quiet(2, "tcptop", "-j", "-p", str(s.pid), "2", "1")
    s.run()
    objs = json_lines(finish(p))
    assert len(objs) == 1 and objs[0]["loadavg"], objs
    assert objs[0]["sessions"] == [{"pid": s.pid, "comm": s.comm, "ip": 4, "laddr": LOCAL, "lport": s.port,
                                    "raddr": LOCAL, "rport": s.listen_port, "rx_kb": 54321 // 1024,
                                    "tx_kb": 12345 // 1024, "rx_bytes": 54321, "tx_bytes": 12345}], objs


def test_ladders_say_which_hook():
    """-v names the rung each ladder took; here, without fentry and kprobes, the tracepoints."""
    from bpfkit import features

    r = subprocess.run([*BPFKIT, "tcptop", "-v", "-j", "0.2", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sessions"] is not None
    if not features.probe("fentry").supported and not features.probe("kprobes").supported:
        assert "send_fentry: send_tp" in r.stderr and "recv_fentry: recv_tp" in r.stderr, r.stderr
