"""capable: Trace security capability checks.

BCC's flags and columns (TIME, UID, PID, COMM, CAP, NAME, AUDIT; -x adds TID and INSETID). One
fallback ladder: fentry on cap_capable(), else a kprobe on it, else the capability:cap_capable
tracepoint. The tracepoint cannot tell audited checks from the others: there AUDIT and INSETID
show N/A (null in JSON) and every check is shown, as with -v.

Examples::

    bpfkit capable             # trace capability checks
    bpfkit capable -v          # verbose: include non-audit checks
    bpfkit capable -p 181      # only trace PID 181
    bpfkit capable -K          # add kernel stacks to trace
    bpfkit capable -U          # add user-space stacks to trace
    bpfkit capable -x          # extra fields: show TID and INSETID columns
    bpfkit capable --unique    # don't repeat stacks for the same pid
    bpfkit capable --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit capable --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
    bpfkit capable -j          # one JSON object per check
"""

from __future__ import annotations

import sys
import time

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
LADDERS = [["cap_fentry", "cap_kprobe", "cap_tp"]]
#: <linux/capability.h>'s capabilities, by number.
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    p.add_argument("-v", "--verbose", action="store_true", help="include non-audit checks")
    TOOL.add_groups(p, "pid")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-x", "--extra", action="store_true", help="show extra fields in TID and INSETID columns")
    TOOL.add_groups(p, "cgroupmap", "mntnsmap")
    p.add_argument("--unique", action="store_true", help="don't repeat stacks for the same pid")
    TOOL.add_groups(p, "cgroup", "duration", "json")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    consts = {"verbose": args.verbose, "kernel_stack": args.kernel_stack, "user_stack": args.user_stack}
    x = args.extra
    cols = Columns([("time", "TIME", "%-9s "), ("uid", "UID", "%-6d "), ("pid", "PID", "%-6d "),
                    ("tid", "TID", "%-6d ", x), ("comm", "COMM", "%-16s "), ("cap", "CAP", "%-4d "),
                    ("name", "NAME", "%-20s "), ("audit", "AUDIT", "%-6s" + (" " if x else "")),
                    ("insetid", "INSETID", "%s", x)], json=args.json)
    seen: set = set()

    def known(v: int) -> Any:
        return v if v >= 0 else None if args.json else "N/A"

    with TOOL.load(args, consts=consts, alternatives=LADDERS) as b:
        stacks = b["stacks"]
        if b.chosen("cap_tp") == "cap_tp" and not args.verbose:
            print("capable: the capability:cap_capable tracepoint (this kernel's hook) does not say which checks are "
                  "audited: showing every check, AUDIT N/A", file=sys.stderr)

        def on_event(e: Any) -> None:  # struct cap_event
            if args.unique:
                key = (e.pid, e.cap, e.kernel_stack_id, e.user_stack_id)
                if key in seen:
                    return
                seen.add(key)
            cols.row(time=time.strftime("%H:%M:%S"), uid=e.uid, pid=e.pid, tid=e.tid,
                     comm=e.comm.decode(errors="replace"), cap=e.cap, name=CAPS[e.cap] if 0 <= e.cap < len(CAPS)
                     else "?", audit=known(e.audit), insetid=known(e.insetid))
            if args.json:
                return
            if args.kernel_stack:
                _print_stack(b, stacks, e.kernel_stack_id, "Kernel", -1)
            if args.user_stack:
                _print_stack(b, stacks, e.user_stack_id, "User", e.pid)

        event_loop(b, on_event, duration=args.duration, ready=cols.header)
    return 0


def _print_stack(b: Any, stacks: Any, stack_id: int, kind: str, pid: int) -> None:
    import errno

    if stack_id < 0:
        if stack_id != -errno.EFAULT:  # EFAULT: no stack of that kind here (no user stack in a kthread)
            print(f"    [Missed {kind} Stack]")
        return
    for addr in stacks.walk(stack_id):
        sym = b.ksym(addr, show_module=True, show_offset=True) if pid < 0 else \
            b.sym(addr, pid, show_module=True, show_offset=True)
        print(f"        {sym.decode(errors='replace') if isinstance(sym, bytes) else sym}")
    sys.stdout.flush()


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("capable", main))
