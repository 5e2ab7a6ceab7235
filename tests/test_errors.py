"""Errors carry what a user needs: clang's diagnostics on their own lines, the verifier log, the
errno, the missing privilege. All derive from BPFError."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from bpfkit import (
    BPF,
    BPFError,
    CompileError,
    CompilerNotFoundError,
    LoadError,
    PrivilegeError,
    _native,
)

BAD_LINE_5 = """\
SEC("tracepoint/syscalls/sys_enter_getppid")
int f(void *ctx)
{
    int ok = 1;
    return undefined_name + ok;
}
"""


def test_compile_error_points_at_the_users_own_line():
    with pytest.raises(CompileError) as ei:
        BPF(text=BAD_LINE_5)
    e = ei.value
    assert isinstance(e, BPFError) and isinstance(e, OSError)
    assert "<text>:5:12: error: use of undeclared identifier 'undefined_name'" in e.diagnostics
    assert "undefined_name" in str(e)


def test_compile_error_names_the_source_file(tmp_path):
    p = tmp_path / "mine.bpf.c"
    p.write_text(BAD_LINE_5)
    with pytest.raises(CompileError) as ei:
        BPF(src_file=str(p))
    assert f"{p}:5:12: error" in ei.value.diagnostics


VERIFIER_REJECTS = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, u32);
    __type(value, u64);
} m SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int unchecked_deref(void *ctx)
{
    u32 k = 0;
    u64 *v = bpf_map_lookup_elem(&m, &k);
    return *v;   /* no NULL check: the verifier must refuse this */
}
"""


def test_verifier_rejection_raises_load_error_with_log():
    with pytest.raises(LoadError) as ei:
        BPF(text=VERIFIER_REJECTS)
    e = ei.value
    assert e.program == "unchecked_deref"
    assert e.errno == errno.EACCES
    assert "R0 invalid mem access 'map_value_or_null'" in e.verifier_log
    assert "unchecked_deref" in str(e)
    assert "invalid mem access" in str(e), "the tail of the log is in the message"
    assert len(e.verifier_log) > len(str(e).split("\n", 1)[1]) - 1


def test_debug_bpf_prints_the_verifier_log(capfd):
    from bpfkit import DEBUG_BPF

    with BPF(text="SEC(\"tracepoint/syscalls/sys_enter_getppid\")\nint g(void *ctx) { return 0; }\n",
             debug=DEBUG_BPF) as b:
        assert b.programs() == [("g", "tracepoint/syscalls/sys_enter_getppid")]


def test_libbpf_messages_go_to_logging_not_stderr(caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="bpfkit.libbpf")
    with pytest.raises(LoadError):
        BPF(text=VERIFIER_REJECTS)
    out, err = capfd.readouterr()
    assert "libbpf" not in err and "verifier" not in err
    msgs = [r.getMessage() for r in caplog.records if r.name == "bpfkit.libbpf"]
    assert any("unchecked_deref" in m for m in msgs), msgs


def test_compiler_not_found_names_all_three_ways(monkeypatch, tmp_path, cache_dir):
    monkeypatch.delenv("BPFKIT_CLANG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompilerNotFoundError) as ei:
        _native.compile("int x;", cache_dir=str(cache_dir))
    msg = str(ei.value)
    assert "BPFKIT_CLANG" in msg and "clang" in msg and "ziglang" in msg


def test_bpfkit_clang_that_is_not_executable(monkeypatch, cache_dir):
    monkeypatch.setenv("BPFKIT_CLANG", "/nonexistent/clang")
    with pytest.raises(CompilerNotFoundError, match="BPFKIT_CLANG is set to `/nonexistent/clang`"):
        _native.compile("int x;", cache_dir=str(cache_dir))


def test_bpfkit_clang_and_versioned_clang_are_used(monkeypatch, tmp_path):
    real = shutil.which("clang")
    assert real
    link = tmp_path / "clang-99"
    link.symlink_to(real)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _native.find_compiler() == (str(link), "PATH")
    monkeypatch.setenv("BPFKIT_CLANG", real)
    assert _native.find_compiler() == (real, "BPFKIT_CLANG")


def test_not_root_gets_a_privilege_error_naming_root_and_caps():
    import tempfile

    base = tempfile.mkdtemp(prefix="bpfkit-nobody-")  # reachable by nobody, unlike pytest's tmp_path
    os.chmod(base, 0o755)
    cache = os.path.join(base, "cache")
    os.mkdir(cache, 0o700)
    os.chown(cache, 65534, 65534)
    # Everything is imported before dropping root: the interpreter's own files may be root-only.
    code = textwrap.dedent("""
        import os, sys, logging, ctypes
        import bpfkit, bpfkit.table, bpfkit._btftypes
        from bpfkit import BPF, PrivilegeError
        os.setgid(65534); os.setuid(65534)
        try:
            BPF(text='SEC("tracepoint/syscalls/sys_enter_getppid")\\nint g(void *ctx) { return 0; }\\n',
                cache_dir=sys.argv[1])
        except PrivilegeError as e:
            print("PrivilegeError", e.errno, e)
        """)
    try:
        r = subprocess.run([sys.executable, "-c", code, cache], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(base)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PrivilegeError 1 "), r.stdout + r.stderr
    assert "root" in r.stdout and "CAP_BPF" in r.stdout and "CAP_PERFMON" in r.stdout


def test_privilege_error_is_a_permission_error():
    assert issubclass(PrivilegeError, PermissionError) and issubclass(PrivilegeError, BPFError)


def test_wrong_program_and_map_names():
    with BPF(text=VERIFIER_REJECTS.replace("return *v;", "return v ? *v : 0;")) as b:
        with pytest.raises(KeyError, match="no map named `nope`"):
            b["nope"]
        with pytest.raises(ValueError, match="no program named `nope`"):
            b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="nope")


def test_ziglang_is_the_compiler_of_last_resort(tmp_path):
    """With no clang anywhere, the `ziglang` package's zig compiles the program (Makefile installs it)."""
    pytest.importorskip("ziglang", reason="ziglang is installed by `make test`; pip install ziglang")
    code = textwrap.dedent("""
        import os, sys
        from bpfkit import BPF, _native
        from bpfkit._bpf import _zig_path
        path, how = _native.find_compiler(zig=_zig_path())
        assert how == "ziglang", (path, how)
        src = '''
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } n SEC(".maps");
        SEC("tracepoint/syscalls/sys_enter_getppid")
        int count(void *ctx)
        {
            u32 k = 0;
            u64 *v = bpf_map_lookup_elem(&n, &k);
            if (v && (bpf_get_current_pid_tgid() >> 32) == TARGET)
                __sync_fetch_and_add(v, 1);
            return 0;
        }
        '''
        with BPF(text=src, cflags=[f"-DTARGET={os.getpid()}"]) as b:
            for _ in range(77):
                os.getppid()
            print(how, b["n"][0].value)
        """)
    env = dict(os.environ, PATH=str(tmp_path), BPFKIT_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("BPFKIT_CLANG", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ziglang", "77"]


def test_debug_flags_print_ir_preprocessed_source_and_assembly(capfd):
    from bpfkit import DEBUG_LLVM_IR, DEBUG_PREPROCESSOR, DEBUG_SOURCE

    src = 'SEC("tracepoint/syscalls/sys_enter_getppid")\nint dbg_prog(void *ctx) { return 0; }\n'
    with BPF(text=src, debug=DEBUG_LLVM_IR | DEBUG_PREPROCESSOR | DEBUG_SOURCE):
        pass
    err = capfd.readouterr().err
    assert "define dso_local i32 @dbg_prog" in err  # LLVM IR
    assert 'int dbg_prog(void *ctx)' in err and "struct pt_regs" in err  # preprocessed C, headers included
    assert "dbg_prog:" in err and "w0 = 0" in err and "\texit" in err  # BPF assembly (-mcpu=v3: 32-bit ALU)
