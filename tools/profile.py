"""profile: Profile CPU stack traces at a timed interval.

BCC's flags and output: a software CPU-clock perf event on each CPU (``-C``: one) samples the
running task's user and kernel stacks, 49 times a second by default, and at the end each stack
is printed with its count, least sampled first; ``-f`` prints folded stacks (FlameGraph's format),
``--flamegraph FILE.svg`` draws them, ``-j`` prints one JSON object per stack. The idle task is
left out unless ``-I``. Stacks the kernel could not give, and frames with no symbol, are counted
on stderr.

Examples::

    bpfkit profile             # profile stack traces at 49 Hertz until Ctrl-C
    bpfkit profile -F 99       # profile stack traces at 99 Hertz
    bpfkit profile -c 1000000  # profile stack traces every 1 in a million events
    bpfkit profile 5           # profile at 49 Hertz for 5 seconds only
    bpfkit profile -f 5        # output in folded format for flame graphs
    bpfkit profile --flamegraph cpu.svg 10   # 10 seconds, drawn as a flame graph
    bpfkit profile -p 185      # only profile process with PID 185
    bpfkit profile -L 185      # only profile thread with TID 185
    bpfkit profile -U          # only show user space stacks (no kernel)
    bpfkit profile -K          # only show kernel space stacks (no user)
    bpfkit profile -C 0        # only profile CPU 0
    bpfkit profile --cgroupmap /sys/fs/bpf/cgset # only trace cgroups in this BPF map
    bpfkit profile --mntnsmap /sys/fs/bpf/mntset # only trace mount namespaces in the map
"""

from __future__ import annotations

import sys

try:
    from . import _stacks
    from ._kit import Tool, cpu, invalid, seconds
except ImportError:  # run as a script from tools/
    import _stacks  # type: ignore[no-redef]
    from _kit import Tool, cpu, invalid, seconds  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

TOOL = Tool(__file__, __doc__)
#: The program's C, beside this file.
SOURCE = TOOL.source
#: The stack map's entries without --stack-storage-size.
STORAGE_DEFAULT = 16384


def frequency(text: str) -> int:
    """A sampling frequency in Hz, from 1 to 100000 (the kernel caps it lower, by its
    perf_event_max_sample_rate)."""
    n = _stacks.positive(text)
    if n > 100000:
        raise invalid(f"{text!r} is not a frequency, an integer from 1 to 100000 (Hz)")
    return n




def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = TOOL.parser()
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=_stacks.id_list, help="profile process with one or more comma separated "
                     "PIDs only")
    who.add_argument("-L", "--tid", type=_stacks.id_list, help="profile thread with one or more comma separated "
                     "TIDs only")
    _stacks.add_stack_args(p)
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("-F", "--frequency", type=frequency, help="sample frequency, Hertz")
    rate.add_argument("-c", "--count", type=_stacks.positive, help="sample period, number of events")
    p.add_argument("-a", "--annotations", action="store_true", help="add _[k] annotations to kernel frames")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle stacks")
    _stacks.add_output_args(p, STORAGE_DEFAULT)
    p.add_argument("-C", "--cpu", type=cpu, help="cpu number to run profile on")
    TOOL.add_groups(p, "cgroupmap", "mntnsmap")
    p.add_argument("duration", nargs="?", type=seconds, help="duration of trace, in seconds")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ids = args.pid or args.tid or []
    consts = {"include_idle": args.include_idle, "filter_tgid": bool(args.pid), "filter_tid": bool(args.tid),
              **_stacks.stack_consts(args)}
    if args.count:
        sample = {"sample_period": args.count}
        sampling = f"every {args.count} events"
    else:
        sample = {"sample_freq": args.frequency or 49}
        sampling = f"{args.frequency or 49} Hertz"
    who = (f"PID {','.join(map(str, args.pid))}" if args.pid else
           f"TID {','.join(map(str, args.tid))}" if args.tid else "all threads")
    stack = _stacks.stack_kinds(args)
    with TOOL.load(args, consts=consts, map_sizes=_stacks.map_sizes(args)) as b:
        from bpfkit import PerfSWConfig, PerfType

        targets = b["targets"]
        for i in ids:  # before the samples start: none is judged without them
            targets[i] = 1
        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="do_perf_event",
                            cpu=-1 if args.cpu is None else args.cpu, **sample)
        if not args.folded and not args.json:
            on = "" if args.cpu is None else f" on CPU#{args.cpu}"
            print(f"Sampling at {sampling} of {who} by {stack} stack{on}{_stacks.duration_text(args.duration)}",
                  flush=True)
        report = _stacks.Report(args, _stacks.Symbols(annotate_kernel=args.annotations), unit="samples",
                                title="CPU Flame Graph", colors="hot")
        _stacks.report_task_stacks(b, args, report, sym_pid=lambda k: k.pid)
    return 0


if __name__ == "__main__":
    from bpfkit.cli import run_tool

    sys.exit(run_tool("profile", main))
