"""bpfkit.features: each probe has a test of its own, which checks the probe's answer against
what really happens when a program uses the feature. A probe that says yes while the feature
fails (or no while it works) fails here; the verdict rules (run, skip with a named reason, fail)
are tested too."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest
from bpfkit import BPF, PerfHWConfig, PerfSWConfig, PerfType, _native, features
from bpfkit._errors import BPFError

from ._features import need

GETPPID = "__x64_sys_getppid"


def _load(src: str, **kw) -> BPF:
    return BPF(text=src, **kw)


def _kprobes() -> None:
    with _load(f'SEC("kprobe/{GETPPID}") int k(void *ctx) {{ return 0; }}') as b:
        assert b.links()


def _kprobe_multi() -> None:
    with _load(f'SEC("kprobe.multi/{GETPPID}") int k(void *ctx) {{ return 0; }}') as b:
        assert b.links()


def _uprobes() -> None:
    with _load('SEC("uprobe") int u(void *ctx) { return 0; }') as b:
        b.attach_uprobe(name="c", sym="getpid", fn_name="u")


def _uprobe_multi() -> None:
    libc = _native.resolve_binary("c", None)
    with _load(f'SEC("uprobe.multi/{libc}:getpid") int u(void *ctx) {{ return 0; }}') as b:
        assert b.links()


def _fentry() -> None:
    with _load('SEC("fentry/bpf_fentry_test1") int BPF_PROG(f, int a) { return 0; }') as b:
        assert b.links()


def _fexit() -> None:
    with _load('SEC("fexit/bpf_fentry_test1") int BPF_PROG(f, int a, int ret) { return 0; }') as b:
        assert b.links()


def _lsm() -> None:
    with _load('SEC("lsm/file_open") int BPF_PROG(l, struct file *file) { return 0; }') as b:
        assert b.links()


def _tp_btf() -> None:
    with _load('SEC("tp_btf/sched_switch") int BPF_PROG(t) { return 0; }') as b:
        assert b.links()


def _raw_tp() -> None:
    with _load('SEC("raw_tp/sched_switch") int r(void *ctx) { return 0; }') as b:
        assert b.links()


def _ringbuf() -> None:
    with _load('struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");'
               'SEC("raw_tp/sched_switch") int r(void *ctx) { bpf_ringbuf_output(&rb, &ctx, 8, 0); return 0; }'):
        pass


def _bpf_cookie() -> None:
    with _load('u64 c = 0; SEC("uprobe") int u(void *ctx) { c = bpf_get_attach_cookie(ctx); return 0; }'):
        pass


def _mmapable_maps() -> None:
    src = ('struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __uint(map_flags, BPF_F_MMAPABLE);'
           ' __type(key, u32); __type(value, u64); } a SEC(".maps");')
    with _load(src) as b:
        b["a"].to_numpy()[1] = 5
        assert b["a"][1].value == 5


class _BatchAttr(ctypes.Structure):
    _fields_ = [("in_batch", ctypes.c_uint64), ("out_batch", ctypes.c_uint64), ("keys", ctypes.c_uint64),
                ("values", ctypes.c_uint64), ("count", ctypes.c_uint32), ("map_fd", ctypes.c_uint32),
                ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def _batch_ops() -> None:
    src = ('struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8);'
           ' __type(key, u32); __type(value, u32); } h SEC(".maps");')
    with _load(src) as b:
        b["h"][3] = 4
        keys, vals, out = (ctypes.c_uint32 * 8)(), (ctypes.c_uint32 * 8)(), ctypes.c_uint64()
        attr = _BatchAttr(0, ctypes.addressof(out), ctypes.addressof(keys), ctypes.addressof(vals), 8, b["h"].fd)
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(321, 24, ctypes.byref(attr), ctypes.sizeof(attr))  # bpf(BPF_MAP_LOOKUP_BATCH)
        err = ctypes.get_errno()
        if rc < 0 and err != 2:  # ENOENT: the whole map was read
            raise OSError(err, os.strerror(err))
        assert attr.count == 1 and (keys[0], vals[0]) == (3, 4)


def _link_count_after(attach) -> int:
    before = set(_native.kernel_object_ids("link"))
    with _load('SEC("tracepoint") int t(void *ctx) { return 0; }'
               'SEC("xdp") int x(struct xdp_md *ctx) { return XDP_PASS; }'
               'SEC("tc") int c(struct __sk_buff *skb) { return TCX_NEXT; }'
               'SEC("cgroup_skb/ingress") int g(struct __sk_buff *skb) { return 1; }', autoattach=False) as b:
        attach(b)
        return len(set(_native.kernel_object_ids("link")) - before)


def _perf_link() -> None:
    assert _link_count_after(lambda b: b.attach_tracepoint(tp="sched:sched_switch", fn_name="t")) == 1


def _tcx() -> None:
    assert _link_count_after(lambda b: b._obj.attach_tc("c", 1, "lo", True, "tcx")) == 1


def _xdp_link() -> None:
    assert _link_count_after(lambda b: b._obj.attach_xdp("x", 1, "lo", 2)) == 1


def _cgroup2_root() -> str:
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    raise OSError(2, "no cgroup2 mount")


def _cgroup_link() -> None:
    assert _link_count_after(lambda b: b._obj.attach_cgroup("g", _cgroup2_root())) == 1


def _perf_event(ev_type: int, config: int):
    def confirm() -> None:
        with _load('SEC("perf_event") int p(void *ctx) { return 0; }') as b:
            b.attach_perf_event(ev_type=ev_type, ev_config=config, fn_name="p", sample_period=1000000, cpu=0)
    return confirm


CONFIRM = {
    "kprobes": _kprobes, "kprobe_multi": _kprobe_multi, "uprobes": _uprobes, "uprobe_multi": _uprobe_multi,
    "fentry": _fentry, "fexit": _fexit, "lsm": _lsm, "tp_btf": _tp_btf, "raw_tp": _raw_tp, "ringbuf": _ringbuf,
    "bpf_cookie": _bpf_cookie, "mmapable_maps": _mmapable_maps, "batch_ops": _batch_ops, "perf_link": _perf_link,
    "tcx": _tcx, "xdp_link": _xdp_link, "cgroup_link": _cgroup_link,
    "perf_event_sw": _perf_event(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK),
    "perf_event_hw": _perf_event(PerfType.HARDWARE, PerfHWConfig.CPU_CYCLES),
}


def test_every_feature_has_a_confirmation():
    assert set(CONFIRM) == set(features.FEATURES) == set(_native.FEATURES)


@pytest.mark.parametrize("name", list(features.FEATURES))
def test_probe_agrees_with_the_kernel(name):
    st = features.probe(name)
    assert features.probe(name) is st  # memoised
    assert st.since == features.FEATURES[name].since and st.supported == bool(st)
    try:
        CONFIRM[name]()
        worked, err = True, None
    except (BPFError, OSError) as e:
        worked, err = False, e
    assert worked == st.supported, f"probe says {st}, but using the feature {'worked' if worked else f'failed: {err}'}"
    if not st.supported:
        assert st.reason
        # The honest-skip rule: a "no" on a kernel at or past the feature's version must be
        # explained by a known configuration, or the test fails.
        verdict, why = features.test_verdict(name)
        assert verdict in ("skip", "fail") and name in why
        need(name)


def test_require_raises_with_the_reason():
    missing = [n for n in features.FEATURES if not features.supported(n)]
    for n in features.FEATURES:
        if n in missing:
            with pytest.raises(features.NotSupportedError) as ei:
                features.require(n)
            assert ei.value.feature == n and ei.value.since == features.FEATURES[n].since
        else:
            features.require(n)
    with pytest.raises(ValueError, match="no feature named"):
        features.probe("warp_drive")


def test_verdicts(monkeypatch):
    monkeypatch.setattr(features, "probe", lambda n: features.Status(n, False, "nope", 1, "5.5", None))
    monkeypatch.setattr(features, "kernel_version", lambda: (6, 18, 0))
    assert features.test_verdict("fentry")[0] == "fail"  # new enough, unexplained
    monkeypatch.setattr(features, "kernel_version", lambda: (5, 4, 0))
    assert features.test_verdict("fentry") == ("skip", f"fentry arrived in Linux 5.5; this kernel is {os.uname().release}")
    monkeypatch.setattr(features, "probe", lambda n: features.Status(n, False, "nope", 1, "5.5", "kernel lockdown=integrity"))
    monkeypatch.setattr(features, "kernel_version", lambda: (6, 18, 0))
    assert features.test_verdict("fentry")[0] == "skip" and "lockdown" in features.test_verdict("fentry")[1]
    monkeypatch.setenv("BPFKIT_REQUIRE_FEATURES", "kprobes,fentry")
    assert features.test_verdict("fentry")[0] == "fail"


def test_bcc_support_helpers_follow_the_probes():
    assert BPF.support_kfunc() == (features.supported("fentry") and features.supported("fexit"))
    assert BPF.support_lsm() == features.supported("lsm")
    assert BPF.kprobes_supported() == features.supported("kprobes")


def test_cli_features_lists_every_probe():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bpfkit", "features"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == f"kernel {os.uname().release}"
    for name in features.FEATURES:
        line = next(ln for ln in lines if ln.split()[0] == name)
        assert (" yes" in line) == features.supported(name), line


def test_answers_are_remembered_for_the_boot(tmp_path, monkeypatch):
    """Fallback ladders ask `probe_feature(..., remembered=True)`: the first answer of the boot is
    kept in the cache (features/<boot>), so later starts load no probe programs; a plain probe
    still asks the kernel."""
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path))
    code = "from bpfkit import _native; print(_native.probe_feature('ringbuf', remembered=True))"
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert first.startswith("(True, 0,")
    (memo,) = (tmp_path / "features").iterdir()
    assert memo.read_text().startswith("ringbuf\t1\t0\t")
    assert oct(memo.stat().st_mode & 0o777) == "0o600"
    memo.write_text("ringbuf\t0\t95\tforged for the test\n")  # what a later process finds
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert again.strip() == "(False, 95, 'forged for the test')"
    assert _native.probe_feature("ringbuf")[0] is True


def test_a_ladder_may_not_pass_over_a_required_feature(monkeypatch):
    """Where BPFKIT_REQUIRE_FEATURES names kprobes (the qemu kernels), a ladder that passes over
    a kprobe rung (here: no kprobes, or a program the verifier refuses) is an error naming the
    rung and why, not a quiet fall to the tracepoint. A rung whose function this kernel does not
    have is passed over as before: no feature can give it one."""
    from bpfkit import NotSupportedError

    src = r"""
    SEC("kprobe/do_unlinkat") int BPF_KPROBE(tick_kprobe) { return *(int *)PT_REGS_PARM1(ctx); }
    SEC("kprobe/bpfkit_no_such_function") int BPF_KPROBE(gone_kprobe) { return 0; }
    SEC("tracepoint/syscalls/sys_enter_getppid") int tick_tp(void *ctx) { return 0; }
    SEC("tracepoint/syscalls/sys_enter_getpid") int gone_tp(void *ctx) { return 0; }
    """
    ladders = [["tick_kprobe", "tick_tp"], ["gone_kprobe", "gone_tp"]]
    with BPF(text=src, alternatives=ladders) as b:
        assert b.chosen("tick_kprobe") == "tick_tp" and b.chosen("gone_kprobe") == "gone_tp"
        [(_prog, why)] = b.alternatives["tick_kprobe"].passed_over
    monkeypatch.setenv("BPFKIT_REQUIRE_FEATURES", "fentry,kprobes")
    with pytest.raises(NotSupportedError) as ei:
        BPF(text=src, alternatives=ladders)
    msg = str(ei.value)
    assert "`tick_kprobe` (kprobe/do_unlinkat)" in msg and "kprobes is required here" in msg, msg
    assert msg.endswith(f"(BPFKIT_REQUIRE_FEATURES): {why}"), msg
    gone = "\n".join(line for line in src.splitlines() if "tick_" not in line)
    with BPF(text=gone, alternatives=ladders[1:]) as b:
        assert b.chosen("gone_kprobe") == "gone_tp"
