"""sslsniff: Sniff SSL data: the plaintext of OpenSSL, GnuTLS and NSS reads and writes.

BCC's flags and output (FUNC, TIME(s), COMM, PID, LEN, [UID, TID], [LAT(ms)], then the data),
from uprobes on each TLS library found on this machine; ``-j`` prints one JSON object per call,
with the data.

Examples::

    bpfkit sslsniff              # sniff OpenSSL, GnuTLS and NSS functions
    bpfkit sslsniff -p 181       # sniff PID 181 only
    bpfkit sslsniff -u 1000      # sniff only UID 1000
    bpfkit sslsniff -c curl      # sniff curl command only
    bpfkit sslsniff --no-openssl # don't show OpenSSL calls
    bpfkit sslsniff --no-gnutls  # don't show GnuTLS calls
    bpfkit sslsniff --no-nss     # don't show NSS calls
    bpfkit sslsniff --hexdump    # show data as hex instead of trying to decode it as UTF-8
    bpfkit sslsniff -x           # show process UID and TID
    bpfkit sslsniff -l           # show function latency
    bpfkit sslsniff -l --handshake   # show SSL handshake latency
    bpfkit sslsniff --extra-lib openssl:/path/libssl.so.1.1   # sniff extra library
    bpfkit sslsniff -j           # one JSON object per call
"""

from __future__ import annotations

import sys

try:
    from ._kit import Columns, Tool, Uprobes, event_loop, invalid
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, Uprobes, event_loop, invalid  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
MAX_BUF = 8192
FUNCS = {0: "READ/RECV", 1: "WRITE/SEND", 2: "HANDSHAKE"}
#: For each library kind: its default library, and (symbol, entry program, exit program) probes.
LIBS = {
    "openssl": ("ssl", [("SSL_write", "rw_enter", "write_exit"), ("SSL_read", "rw_enter", "read_exit"),
                        ("SSL_write_ex", "rw_ex_enter", "write_exit"), ("SSL_read_ex", "rw_ex_enter", "read_exit")]),
    "gnutls": ("gnutls", [("gnutls_record_send", "rw_enter", "write_exit"),
                          ("gnutls_record_recv", "rw_enter", "read_exit")]),
    "nss": ("nspr4", [("PR_Write", "rw_enter", "write_exit"), ("PR_Send", "rw_enter", "write_exit"),
                      ("PR_Read", "rw_enter", "read_exit"), ("PR_Recv", "rw_enter", "read_exit")]),
}


def extra_lib(text: str) -> tuple[str, str]:
    """``--extra-lib TYPE:PATH``: a library of kind openssl, gnutls or nss at PATH."""
    kind, colon, path = text.partition(":")
    if not colon or kind not in LIBS or not path:
        raise invalid(f"{text!r} is not TYPE:PATH with TYPE one of {', '.join(LIBS)}")
    return kind, path


def buffer_size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 1 <= n <= MAX_BUF:
        raise invalid(f"{text!r} is not a buffer size from 1 to {MAX_BUF}")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser("pid", "uid", help={"pid": "sniff this PID only.", "uid": "sniff this UID only."})
    p.add_argument("-x", "--extra", action="store_true", help="show extra fields (UID, TID)")
    p.add_argument("-c", "--comm", help="sniff only commands matching string.")
    p.add_argument("-o", "--no-openssl", action="store_false", dest="openssl", help="do not show OpenSSL calls.")
    p.add_argument("-g", "--no-gnutls", action="store_false", dest="gnutls", help="do not show GnuTLS calls.")
    p.add_argument("-n", "--no-nss", action="store_false", dest="nss", help="do not show NSS calls.")
    p.add_argument("-d", "--debug", action="count", default=0, help="debug mode: say which libraries are probed")
    p.add_argument("--hexdump", action="store_true",
                   help="show data as hexdump instead of trying to decode it as UTF-8")
    p.add_argument("--max-buffer-size", type=buffer_size, default=MAX_BUF, help="Size of captured buffer")
    p.add_argument("-l", "--latency", action="store_true", help="show function latency")
    p.add_argument("--handshake", action="store_true",
                   help="show SSL handshake latency, enabled only if latency option is on.")
    p.add_argument("--extra-lib", type=extra_lib, action="append",
                   help="Intercept calls from extra library (format: lib_type:lib_path)")
    TOOL.add_groups(p, "json")
    return p.parse_args(argv)


def _uprobes(args: argparse.Namespace) -> tuple:
    """``(Uprobes, [(kind, library)])``: the probes of every library asked for, each optional
    (a library or function this machine lacks is left out), opened while the program loads."""
    pid = args.pid or -1
    wanted = [(kind, LIBS[kind][0]) for kind in LIBS if getattr(args, kind)] + list(args.extra_lib or ())
    uprobes = Uprobes()
    for kind, lib in wanted:
        for sym, enter, leave in LIBS[kind][1]:
            uprobes.add(enter, name=lib, sym=sym, pid=pid, optional=True)
            uprobes.add(leave, name=lib, sym=sym, pid=pid, retprobe=True, optional=True)
        if kind == "openssl" and args.latency and args.handshake:
            uprobes.add("handshake_enter", name=lib, sym="SSL_do_handshake", pid=pid, optional=True)
            uprobes.add("handshake_exit", name=lib, sym="SSL_do_handshake", pid=pid, retprobe=True, optional=True)
    return uprobes, wanted


def _probed(args: argparse.Namespace, uprobes: Uprobes, wanted: list) -> int:
    """How many of the libraries have a function probed (with ``-d``, what was left out, why)."""
    left_out = {(kw["name"], kw["sym"]) for kw, _ in uprobes.failed}
    done = 0
    for kind, lib in wanted:
        attached = sum((lib, sym) not in left_out for sym, _enter, _leave in LIBS[kind][1])
        if args.debug:
            for kw, e in uprobes.failed:
                if kw["name"] == lib:
                    print(f"not probing {lib}:{kw['sym']}: {e}", file=sys.stderr)
            print(f"{kind} {lib}: {attached} functions probed", file=sys.stderr)
        done += bool(attached)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cols = Columns([("func", "FUNC", "%-12s "), ("time", "TIME(s)", "%-18.9f "), ("comm", "COMM", "%-16s "),
                    ("pid", "PID", "%-7d "), ("len", "LEN", "%-6d"), ("uid", "UID", " %-7d", args.extra),
                    ("tid", "TID", " %-7d", args.extra), ("lat", "LAT(ms)", " %-7s", args.latency),
                    ("data", "DATA", "", args.json), ("truncated", "TRUNCATED", "", args.json)], json=args.json)
    uprobes, wanted = _uprobes(args)
    with TOOL.load(args, uprobes=uprobes) as b:
        if not _probed(args, uprobes, wanted):
            from bpfkit import NotSupportedError

            raise NotSupportedError("no TLS library to probe: none of OpenSSL (libssl), GnuTLS (libgnutls) or "
                                    "NSS (libnspr4) was found or asked for")
        if not args.json:  # BCC's header: its titles are a little wider than its rows
            hdr = "%-12s %-18s %-16s %-7s %-7s" % ("FUNC", "TIME(s)", "COMM", "PID", "LEN")
            hdr += " %-7s %-7s" % ("UID", "TID") if args.extra else ""
            hdr += " %-7s" % "LAT(ms)" if args.latency else ""
            cols.header = lambda: print(hdr, flush=True)  # type: ignore[method-assign]
        event_loop(b, _printer(args, cols), ready=cols.header)
    return 0


def _printer(args: argparse.Namespace, cols: Columns) -> Callable[[Any], None]:
    start: list = []
    comm = args.comm.encode() if args.comm else None

    def on_event(e: Any) -> None:  # struct ssl_event, typed from the program's BTF
        if comm is not None and e.comm != comm:
            return
        if not start:
            start.append(e.ts_ns)
        size = min(e.len, args.max_buffer_size) if e.buf_filled else 0
        buf = bytes(e.buf[:size])
        if args.hexdump:
            text = buf.hex()
            text = "\n".join(text[i:i + 32] for i in range(0, len(text), 32))
        else:
            text = buf.decode(errors="replace")
        lat = ("%.3f" % (e.delta_ns / 1e6) if e.delta_ns else "N/A") if not args.json else e.delta_ns / 1e6
        lost = max(e.len - size, 0) if e.rw != 2 else 0
        cols.row(func=FUNCS.get(e.rw, "?"), time=(e.ts_ns - start[0]) / 1e9, comm=e.comm.decode(errors="replace"),
                 pid=e.pid, len=e.len, uid=e.uid, tid=e.tid, lat=lat, data=text, truncated=lost)
        if not args.json and size:
            end = "----- END DATA -----" if not lost else f"----- END DATA (TRUNCATED, {lost} bytes lost) -----"
            sys.stdout.write(f"----- DATA -----\n{text}\n{end}\n\n")
            sys.stdout.flush()

    return on_event


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("sslsniff", main))
