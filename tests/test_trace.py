"""bpf_printk output through trace_pipe: trace_readline, trace_fields, trace_print."""

from __future__ import annotations

import os
import signal
import uuid

from bpfkit import BPF

PRINTK = r"""
SEC("tracepoint/syscalls/sys_enter_getppid")
int say(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    bpf_printk("MARKER %d", 42);
    return 0;
}
"""


def test_trace_fields_sees_bpf_printk():
    marker = f"bk{uuid.uuid4().hex[:10]}"
    with BPF(text=PRINTK.replace("MARKER", marker), cflags=[f"-DTARGET={os.getpid()}"]) as b:
        while b.trace_readline(nonblocking=True) is not None:
            pass  # drain older lines
        os.getppid()
        for _ in range(1000):
            fields = b.trace_fields(timeout=10)
            assert fields is not None, "no bpf_printk line within 10 s"
            if marker in fields[5]:
                break
        else:
            raise AssertionError("marker line never seen")
        task, pid, cpu, flags, ts, msg = fields
        assert pid == os.getpid() and msg == f"{marker} 42"
        assert 0 <= cpu < os.cpu_count() and ts > 0 and isinstance(task, str)


def test_trace_print_formats_fields(capsys):
    marker = f"bk{uuid.uuid4().hex[:10]}"
    with BPF(text=PRINTK.replace("MARKER", marker), cflags=[f"-DTARGET={os.getpid()}"]) as b:
        os.getppid()
        # trace_print runs until Ctrl-C; stop it after the marker line by raising from print.
        import builtins

        real_print = builtins.print
        seen = []

        def stop_after(*a, **k):
            real_print(*a, **k)
            seen.append(a[0])
            if marker in a[0]:
                raise KeyboardInterrupt

        def give_up(*_):
            raise KeyboardInterrupt  # ends trace_print; the assertion below then fails

        builtins.print = stop_after
        old = signal.signal(signal.SIGALRM, give_up)
        signal.alarm(20)
        try:
            b.trace_print(fmt="{1} {5}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            builtins.print = real_print
        assert f"{os.getpid()} {marker} 42" in capsys.readouterr().out
