"""What the TCP tools share: BCC's port-list and address-family flags, the port filters as
``const volatile`` arrays, TCP state names and address formatting (``_socket``, the C module
under ``socket``, is enough for ``inet_ntop`` and costs nothing at start-up)."""

from __future__ import annotations

try:
    from ._kit import invalid
except ImportError:  # run as a script from tools/
    from _kit import invalid  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

#: The most ports a ``-P``/``-L``/``-D`` list may hold (the size of the C's port arrays).
MAX_PORTS = 16
AF_INET, AF_INET6 = 2, 10

#: include/net/tcp_states.h, as BCC's tools name the states.
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}


def state_name(state: int) -> str:
    """A TCP state's name (``ESTABLISHED``), or its number for one the kernel added later."""
    return TCP_STATES.get(state, str(state))


def ports(text: str) -> list:
    """A comma-separated list of TCP ports, as BCC's ``-P 80,81`` takes it.

    >>> ports("80,81")
    [80, 81]
    """
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise invalid(f"{part!r} in {text!r} is not a port, an integer from 1 to 65535")
        out.append(int(part))
    if len(out) > MAX_PORTS:
        raise invalid(f"{text!r} names {len(out)} ports: at most {MAX_PORTS} can be traced")
    return out


def port_consts(name: str, wanted: list | None) -> dict:
    """The ``const volatile u16 <name>[MAX_PORTS]`` array and ``n_<name>`` count of a port list."""
    import struct

    wanted = wanted or []
    return {name: struct.pack(f"={MAX_PORTS}H", *wanted, *[0] * (MAX_PORTS - len(wanted))), f"n_{name}": len(wanted)}


def add_family(p: argparse.ArgumentParser) -> None:
    """BCC's ``-4 | -6``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
    g.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")


def family(args: argparse.Namespace) -> int:
    """The ``targ_family`` the C filters on: AF_INET, AF_INET6 or 0 for both."""
    return AF_INET if args.ipv4 else AF_INET6 if args.ipv6 else 0


def ntop(fam: int, raw: Any) -> str:
    """An address of ``fam`` from the record's 16 bytes (IPv4 in the first 4)."""
    import _socket

    raw = bytes(raw)
    if fam == AF_INET6:
        return _socket.inet_ntop(_socket.AF_INET6, raw[:16])
    return _socket.inet_ntop(_socket.AF_INET, raw[:4])


def ip_version(fam: int) -> int:
    """4 or 6, as BCC's IP column shows the family."""
    return 6 if fam == AF_INET6 else 4


def add_time_flags(p: argparse.ArgumentParser, *, wide: bool = True) -> None:
    """tcplife's and tcpstates' ``-T -t -w -s``."""
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output (seconds)")
    if wide:
        p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
        p.add_argument("-s", "--csv", action="store_true", help="comma separated values output")


def time_columns(args: argparse.Namespace) -> list:
    """The ``-T`` and ``-t`` columns, in :func:`layout`'s form."""
    return [("time", "TIME", "%-8s ", "%s", args.time), ("timestamp", "TIME(s)", "%-9.6f ", "%.6f", args.timestamp)]


def layout(args: argparse.Namespace, spec: list) -> list:
    """:class:`Columns` entries from ``(key, title, text_fmt, csv_fmt[, shown])``: the text
    formats, or with ``-s`` the CSV ones joined by commas."""
    shown = [c for c in spec if len(c) < 5 or c[4]]
    if not getattr(args, "csv", False) or args.json:
        return [(c[0], c[1], c[2]) for c in shown]
    return [(c[0], c[1], c[3] + ("," if i < len(shown) - 1 else "")) for i, c in enumerate(shown)]


class Stamp:
    """The ``-T`` time (HH:MM:SS, now) and ``-t`` seconds since the first event, as keyword
    arguments for a row."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.time = args.time
        self.first: list = []

    def __call__(self, ts_us: int) -> dict:
        if not self.first:
            self.first.append(ts_us)
        out = {"timestamp": (ts_us - self.first[0]) / 1e6}
        if self.time:
            import time

            out["time"] = time.strftime("%H:%M:%S")
        return out


def say_rungs(b: Any) -> None:
    """``-v``: on stderr, the hook each ladder uses and why the better ones were passed over."""
    import sys

    for first, alt in b.alternatives.items():
        print(f"{first}: {alt.program}", file=sys.stderr)
        for prog, why in alt.passed_over:
            print(f"    not {prog}: {why}", file=sys.stderr)


def entries(table: Any) -> list:
    """A hash map's ``(key, value)`` pairs, read key by key: ``items()`` reads them in one batch
    through numpy, whose import alone costs a summary tool 0.1 s and 10 MiB at its first interval."""
    out = []
    for k in table.keys():
        try:
            out.append((k, table[k]))
        except KeyError:  # deleted by the program since the walk began
            pass
    return out
