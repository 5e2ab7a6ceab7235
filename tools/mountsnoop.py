"""mountsnoop: Trace mount() and umount() syscalls.

BCC's flags and columns (COMM, PID, TID, MNT_NS, CALL; -P adds PCOMM and PPID), CALL written as
``mount("none", "/mnt", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m") = 0``. Each hook is a fallback
ladder: a kprobe on the syscall where the kernel has kprobes, else the syscall tracepoints.

Examples::

    bpfkit mountsnoop           # trace mount() and umount() calls
    bpfkit mountsnoop -P        # also show the parent process
    bpfkit mountsnoop -p 181    # only trace PID 181
    bpfkit mountsnoop --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit mountsnoop --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
    bpfkit mountsnoop -j        # one JSON object per call
"""

from __future__ import annotations

import sys

try:
    from ._kit import Columns, Tool, event_loop
except ImportError:  # run as a script from tools/
    from _kit import Columns, Tool, event_loop  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
LADDERS = [[f"{s}_{e}_k", f"{s}_{e}_tp"] for s in ("mount", "umount") for e in ("entry", "exit")]

# <linux/mount.h>'s MS_* and umount2()'s flags.
MOUNT_FLAGS = [(n, 1 << i) for i, n in enumerate(
    ["MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "MS_SYNCHRONOUS", "MS_REMOUNT", "MS_MANDLOCK", "MS_DIRSYNC",
     "MS_NOSYMFOLLOW", "", "MS_NOATIME", "MS_NODIRATIME", "MS_BIND", "MS_MOVE", "MS_REC", "MS_SILENT",
     "MS_POSIXACL", "MS_UNBINDABLE", "MS_PRIVATE", "MS_SLAVE", "MS_SHARED", "MS_RELATIME", "MS_KERNMOUNT",
     "MS_I_VERSION", "MS_STRICTATIME", "MS_LAZYTIME", "", "", "", "", "MS_ACTIVE", "MS_NOUSER"]) if n]
UMOUNT_FLAGS = [("MNT_FORCE", 1), ("MNT_DETACH", 2), ("MNT_EXPIRE", 4), ("UMOUNT_NOFOLLOW", 8)]
MS_MGC_VAL, MS_MGC_MSK = 0xC0ED0000, 0xFFFF0000


def flags_text(flags: int, names: list) -> str:
    """``MS_NOSUID|MS_NODEV``; bits without a name, or no bit at all, as hex (``0x0``)."""
    out = []
    if names is MOUNT_FLAGS and flags & MS_MGC_MSK == MS_MGC_VAL:  # the old "magic" in the high bits
        flags &= ~MS_MGC_MSK
        out.append("MS_MGC_VAL")
    for name, bit in names:
        if flags & bit:
            out.append(name)
            flags &= ~bit
    if flags or not out:
        out.append(f"0x{flags:x}")
    return "|".join(out)


def quoted(raw: bytes) -> str:
    """A string argument in double quotes, with C escapes for what is not printable ASCII."""
    esc = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}
    return '"' + "".join(esc.get(c) or (chr(c) if 0x20 <= c <= 0x7E else f"\\x{c:02x}") for c in raw) + '"'


def result_text(ret: int) -> str:
    """The return value: ``0``, or ``-EPERM`` for an error."""
    import errno

    return f"-{errno.errorcode[-ret]}" if ret < 0 and -ret in errno.errorcode else str(ret)


def call_text(e: Any) -> str:
    if e.op == 0:
        return (f"mount({quoted(e.source)}, {quoted(e.target)}, {quoted(e.type)}, "
                f"{flags_text(e.flags, MOUNT_FLAGS)}, {quoted(e.data)}) = {result_text(e.ret)}")
    return f"umount({quoted(e.target)}, {flags_text(e.flags, UMOUNT_FLAGS)}) = {result_text(e.ret)}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-P", "--parent_process", action="store_true", help="also snoop the parent process")
    TOOL.add_groups(p, "cgroupmap", "mntnsmap", "pid", "cgroup", "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    parent = args.parent_process
    cols = Columns([("comm", "COMM", "%-16s "), ("pid", "PID", "%-7d "), ("tid", "TID", "%-7d "),
                    ("pcomm", "PCOMM", "%-16s ", parent), ("ppid", "PPID", "%-7d ", parent),
                    ("mnt_ns", "MNT_NS", "%-11d "), ("call", "CALL", "%s")], json=args.json)

    def on_event(e: Any) -> None:  # struct mount_event
        cols.row(comm=e.comm.decode(errors="replace"), pid=e.pid, tid=e.tid, pcomm=e.pcomm.decode(errors="replace"),
                 ppid=e.ppid, mnt_ns=e.mnt_ns, call=call_text(e))

    with TOOL.load(args, alternatives=LADDERS) as b:
        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("mountsnoop", main))
