"""Symbols: kernel addresses through kallsyms, user addresses of a test binary (C and C++,
demangled) through blazesym, and a stack trace taken by a program, symbolized."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from bpfkit import BPF

TARGET_C = textwrap.dedent("""
    #include <stdio.h>
    #include <unistd.h>
    extern "C" __attribute__((noinline)) int bpfkit_marker_fn(int x) { return x * 3 + 1; }
    namespace bk { __attribute__((noinline)) int scaled(int v, double f) { return v * f; } }
    int main(void) {
        printf("%p %p\\n", (void *)bpfkit_marker_fn, (void *)bk::scaled);
        fflush(stdout);
        pause();
        return bpfkit_marker_fn(1) + bk::scaled(2, 1.5);
    }
""")


@pytest.fixture
def target(tmp_path: Path):
    gxx = shutil.which("g++")
    assert gxx, "g++ builds the test binary (build-essential)"
    src = tmp_path / "target.cc"
    src.write_text(TARGET_C)
    exe = tmp_path / "target"
    subprocess.run([gxx, "-O1", "-g", "-o", str(exe), str(src)], check=True)
    p = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    addrs = [int(a, 16) for a in p.stdout.readline().split()]
    yield p, exe, addrs
    p.kill()
    p.wait()


def test_user_symbols_of_a_running_binary(target):
    p, exe, (c_fn, cxx_fn) = target
    assert BPF.sym(c_fn, p.pid) == "bpfkit_marker_fn"
    assert BPF.sym(c_fn + 4, p.pid, show_offset=True) == "bpfkit_marker_fn+0x4"
    assert BPF.sym(c_fn, p.pid, show_module=True) == f"bpfkit_marker_fn [{exe}]"
    assert BPF.sym(cxx_fn, p.pid) == "bk::scaled(int, double)"
    assert BPF.sym(cxx_fn, p.pid, demangle=False) == "_ZN2bk6scaledEid"
    assert BPF.sym(8, p.pid) == "[unknown]"
    # Once the process has exited its mappings are gone: unknown, as BCC says (not an error).
    p.kill()
    p.wait()
    assert BPF.sym(c_fn, p.pid) == "[unknown]"


def test_a_remembered_process_is_still_named_after_it_exits(target):
    p, exe, (c_fn, cxx_fn) = target
    assert BPF.remember_process(p.pid)
    p.kill()
    p.wait()
    assert not os.path.exists(f"/proc/{p.pid}")
    assert BPF.sym(c_fn, p.pid) == "bpfkit_marker_fn"
    assert BPF.sym(c_fn + 4, p.pid, show_offset=True, show_module=True) == f"bpfkit_marker_fn+0x4 [{exe}]"
    assert BPF.sym(cxx_fn, p.pid) == "bk::scaled(int, double)"
    assert BPF.sym(8, p.pid) == "[unknown]"  # in no mapping it had
    assert not BPF.remember_process(p.pid)  # gone: nothing new to remember


def test_library_symbol_in_a_process():
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    assert BPF.sym(addr, os.getpid()).endswith("getpid")  # getpid or an alias (__GI_getpid)
    assert "libc.so" in BPF.sym(addr, os.getpid(), show_module=True)


def test_kernel_symbols_both_ways():
    addr = BPF.ksymname("do_sys_openat2")
    assert addr > 0
    assert BPF.ksym(addr) == "do_sys_openat2"
    assert BPF.ksym(addr + 5, show_offset=True) == "do_sys_openat2+0x5"
    assert BPF.ksym(addr, show_module=True) == "do_sys_openat2 [kernel]"
    assert BPF.ksymname("surely_not_a_kernel_symbol_xyz") == -1
    assert BPF.sym(addr, -1) == "do_sys_openat2"


def test_stack_trace_from_a_program_symbolizes():
    src = r"""
    struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 16); __uint(key_size, 4);
             __uint(value_size, 127 * 8); } stacks SEC(".maps"), ustacks SEC(".maps");
    s64 kid = -1, uid = -1;
    SEC("tracepoint/syscalls/sys_enter_getppid")
    int grab(void *ctx)
    {
        if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
            return 0;
        /* One map each: two stacks hashing to one bucket of a map would fail with -EEXIST. */
        kid = bpf_get_stackid(ctx, &stacks, 0);
        uid = bpf_get_stackid(ctx, &ustacks, BPF_F_USER_STACK);
        return 0;
    }
    """
    with BPF(text=src, cflags=[f"-DTARGET={os.getpid()}"]) as b:
        os.getppid()
        assert b.get_global("kid") >= 0 and b.get_global("uid") >= 0, (b.get_global("kid"), b.get_global("uid"))
        kstack = [b.ksym(a) for a in b["stacks"].walk(b.get_global("kid"))]
        assert any(re.match(r"(do_syscall_64|x64_sys_call|entry_SYSCALL_64.*|syscall_trace_enter.*)$", s)
                   for s in kstack), kstack
        ustack = [b.sym(a, os.getpid(), show_module=True) for a in b["ustacks"].walk(b.get_global("uid"))]
        assert ustack and "libc.so" in ustack[0], ustack


def test_kprobe_functions_are_the_kernels_text_symbols():
    """get_kprobe_functions lists /proc/kallsyms's text symbols (read by the core), minus what
    cannot be kprobed; it needs no kprobe support to list them."""
    from bpfkit._attach_kernel import _kprobe_blacklist

    prefix = BPF.get_syscall_prefix()
    want = {prefix + n for n in ("getpgid", "getsid", "getpriority")}
    assert BPF.get_kprobe_functions("|".join(want)) == want
    assert BPF.get_kprobe_functions(re.escape(prefix) + "getpg") == set()  # a whole-name match
    # /proc/kallsyms read here, as the reference: text (t, T) and weak (w, W) symbols are
    # functions; data, bss and read-only data are not.
    with open("/proc/kallsyms") as f:
        rows = [line.split() for line in f]
    text = {r[2] for r in rows if r[1] in ("t", "T", "w", "W")}
    data = {r[2] for r in rows if r[1] in ("d", "D", "b", "B", "r", "R")} - text
    listed = BPF.get_kprobe_functions(".*")
    assert len(listed) > 1000 and listed <= text and not listed & data
    probeable = {n for n in text if ".cold" not in n and not n.startswith(("__pfx_", "_kbl_addr_"))}
    assert probeable - listed <= _kprobe_blacklist()
    # Module functions are text symbols too (with a "[module]" column).
    modules = {r[2] for r in rows if len(r) > 3 and r[1] in ("t", "T")}
    assert modules - _kprobe_blacklist() - {n for n in modules if n.startswith("__pfx_") or ".cold" in n} <= listed
