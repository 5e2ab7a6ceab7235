"""``bcc.tcp``: TCP's state names and header flags, as BCC's tools print them (tcpdrop,
tcpstates).

>>> tcpstate[1], flags2str(0x12)
('ESTABLISHED', 'SYN|ACK')
"""

from __future__ import annotations

#: The kernel's TCP states (include/net/tcp_states.h) by number.
tcpstate = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

# The flag bits of a TCP header's 13th byte.
TCPF_FIN = 0x01
TCPF_SYN = 0x02
TCPF_RST = 0x04
TCPF_PSH = 0x08
TCPF_ACK = 0x10
TCPF_URG = 0x20
TCPF_ECE = 0x40
TCPF_CWR = 0x80

_FLAGS = (("FIN", TCPF_FIN), ("SYN", TCPF_SYN), ("RST", TCPF_RST), ("PSH", TCPF_PSH), ("ACK", TCPF_ACK),
          ("URG", TCPF_URG), ("ECE", TCPF_ECE), ("CWR", TCPF_CWR))


def flags2str(flags: int) -> str:
    """The names of the flags set in ``flags``, lowest bit first, joined by ``|``."""
    return "|".join(name for name, bit in _FLAGS if flags & bit)


__all__ = ["tcpstate", "flags2str", *(f"TCPF_{n}" for n, _ in _FLAGS)]
