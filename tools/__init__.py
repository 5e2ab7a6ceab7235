"""bpfkit's bundled tools. Each is a module with ``parse_args(argv)`` and ``main(argv) -> int``,
its BPF C in a ``.bpf.c`` file beside it. Run them as ``bpfkit <tool>``."""

#: Tool name -> one-line description.
TOOLS = {
    "opensnoop": "Trace open() syscalls (PID, COMM, FD, ERR, PATH)",
    "execsnoop": "Trace new processes via exec() syscalls",
    "biolatency": "Summarize block device I/O latency as a histogram",
    "vfsstat": "Count VFS reads, writes, fsyncs, opens and creates per second",
}
