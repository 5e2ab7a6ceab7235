"""Entries for the systemd journal, written to journald's native socket ourselves (BCC's ``-Y``
uses python-systemd's ``journal.send``; the protocol is small enough that bpfkit needs no new
dependency for it, and ``_socket`` costs nothing at start-up).

The native protocol (systemd's "Native Journal Protocol"): one datagram per entry to
``/run/systemd/journal/socket``, made of fields ``KEY=value\\n``; a value holding a newline goes
as ``KEY\\n``, its length as a little-endian 64-bit number, the value, and ``\\n``. Field names
are upper-case letters, digits and ``_``; journald ignores those starting with ``_`` except the
few it allows a client to set.

``BPFKIT_JOURNAL_SOCKET`` names another socket to write to (the tests bind their own).

>>> j = Journal()
>>> j.send(MESSAGE="hello", SYSLOG_IDENTIFIER="tcpstates", PRIORITY=5)
"""

from __future__ import annotations

import os

#: journald's socket for the native protocol.
SOCKET = "/run/systemd/journal/socket"
#: The environment variable naming another socket to send the entries to.
SOCKET_ENV = "BPFKIT_JOURNAL_SOCKET"


def encode(fields: dict) -> bytes:
    """One entry as the native protocol's datagram; values are sent as ``str()`` gives them
    (bytes as they are).

    >>> encode({"MESSAGE": "a\\nb", "PRIORITY": 5})
    b'MESSAGE\\n\\x03\\x00\\x00\\x00\\x00\\x00\\x00\\x00a\\nb\\nPRIORITY=5\\n'
    """
    out = bytearray()
    for key, value in fields.items():
        raw = value if isinstance(value, bytes) else str(value).encode()
        name = key.encode()
        if b"\n" in raw:
            out += name + b"\n" + len(raw).to_bytes(8, "little") + raw + b"\n"
        else:
            out += name + b"=" + raw + b"\n"
    return bytes(out)


class Journal:
    """A connection to the journal's native socket (``path``, else ``$BPFKIT_JOURNAL_SOCKET``,
    else :data:`SOCKET`). Made before the tool starts, so that a system without journald says so
    in one line (an ``OSError``) rather than at the first entry."""

    def __init__(self, path: str | None = None) -> None:
        import _socket

        self.path = path or os.environ.get(SOCKET_ENV) or SOCKET
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            # (errno, text, path): the command line prints "text: 'path'", one line
            raise OSError(e.errno, f"no systemd journal to log to ({e.strerror})", self.path) from None

    def send(self, **fields: object) -> None:
        """Sends one entry of ``fields`` (``MESSAGE=...``, ``PRIORITY=5``, ...)."""
        self._sock.send(encode(fields))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
