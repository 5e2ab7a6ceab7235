"""Histograms print exactly what BCC prints (checked against BCC's own functions), from slots
the program computed with the C-side log2 helper; the buckets are also available as numpy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
from bpfkit import BPF
from bpfkit.table import log2_buckets, print_linear_hist

HIST = r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } hlog2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, u32); __type(value, u64); } lin SEC(".maps");
struct sec_key { u32 disk; u32 slot; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 256); __type(key, struct sec_key); __type(value, u64); } per_disk SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 128); __type(key, u32); __type(value, u64); } stray SEC(".maps");
u64 value_in = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int record(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u64 v = value_in;
    u32 slot = bpfkit_log2_slot(v, 64);
    u64 *n = bpf_map_lookup_elem(&hlog2, &slot);
    if (n)
        __sync_fetch_and_add(n, 1);
    u32 l = v & 15;
    n = bpf_map_lookup_elem(&lin, &l);
    if (n)
        __sync_fetch_and_add(n, 1);
    struct sec_key k = { .disk = v & 1, .slot = slot };
    u64 one = 1;
    n = bpf_map_lookup_elem(&per_disk, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&per_disk, &k, &one, BPF_NOEXIST);
    return 0;
}
"""

VALUES = [0, 1, 1, 2, 3, 5, 7, 8, 100, 100, 1000, 5000, 70000] + [12] * 30


@pytest.fixture(scope="module")
def hist():
    with BPF(text=HIST, cflags=[f"-DTARGET={os.getpid()}"]) as b:
        for v in VALUES:
            b.set_global("value_in", v)
            os.getppid()
        yield b


def bcc_print(func: str, vals: list, *args) -> str:
    code = ("import json, sys\nfrom bcc import table\n"
            f"table.{func}(json.loads(sys.argv[1]), *json.loads(sys.argv[2]))")
    r = subprocess.run(["/usr/bin/python3", "-c", code, json.dumps(vals), json.dumps(list(args))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"BCC's python3-bpfcc is needed to compare output (make test installs it): {r.stderr[-500:]}")
    return r.stdout


def test_slots_follow_bccs_numbering(hist):
    slots = {k.value: v.value for k, v in hist["hlog2"].items() if v.value}
    expect: dict = {}
    for v in VALUES:
        s = v.bit_length() if v else 1  # BCC's bpf_log2l: 0 and 1 both in slot 1
        expect[s] = expect.get(s, 0) + 1
    assert slots == expect


def test_log2_hist_matches_bcc_exactly(hist, capsys):
    vals = [v.value for v in hist["hlog2"].values()]
    hist["hlog2"].print_log2_hist("usecs")
    ours = capsys.readouterr().out
    assert ours == bcc_print("_print_log2_hist", vals, "usecs", 0)
    assert "     usecs               : count     distribution" in ours
    hist["hlog2"].print_log2_hist("usecs", strip_leading_zero=True)
    assert capsys.readouterr().out == bcc_print("_print_log2_hist", vals, "usecs", 1)


def test_linear_hist_matches_bcc_exactly(hist, capsys):
    vals = [v.value for v in hist["lin"].values()]
    hist["lin"].print_linear_hist("bytes")
    assert capsys.readouterr().out == bcc_print("_print_linear_hist", vals, "bytes", 0)
    hist["lin"].print_linear_hist("bytes", strip_leading_zero=True)
    assert capsys.readouterr().out == bcc_print("_print_linear_hist", vals, "bytes", 1)


def test_json_hist_matches_bcc(hist, capsys):
    vals = [v.value for v in hist["hlog2"].values()]
    hist["hlog2"].print_json_hist("usecs")
    strip = lambda s: re.sub(r"'ts': '[^']*'", "'ts': ''", s)  # noqa: E731
    assert strip(capsys.readouterr().out) == strip(bcc_print("_print_json_hist", vals, "usecs"))


def test_sectioned_hist(hist, capsys):
    hist["per_disk"].print_log2_hist("usecs", section_header="disk", section_print_fn=lambda d: f"d{d}")
    out = capsys.readouterr().out
    assert out.count("\ndisk = d0\n") == 1 and out.count("\ndisk = d1\n") == 1
    per = {0: {}, 1: {}}
    for v in VALUES:
        s = v.bit_length() if v else 1
        per[v & 1][s] = per[v & 1].get(s, 0) + 1
    for d in (0, 1):
        vals = [per[d].get(i, 0) for i in range(max(per[d]) + 1)]
        block = out.split(f"disk = d{d}\n")[1].split("\ndisk =")[0]
        assert block == bcc_print("_print_log2_hist", vals, "usecs", 0)


def test_buckets_as_numpy(hist):
    b = hist["hlog2"].log2_buckets()
    assert b.dtype.names == ("low", "high", "count")
    assert int(b["count"].sum()) == len(VALUES)
    assert b[0].tolist() == (0, 1, 3) and b[3].tolist() == (8, 15, 31)
    sec = hist["per_disk"].log2_buckets()
    assert set(sec) == {0, 1} and int(sec[0]["count"].sum() + sec[1]["count"].sum()) == len(VALUES)


@pytest.fixture
def stray(hist):
    """An empty hash map for histograms with stray keys, and a 10 s limit on the test: a printer
    that trusts a key of 2**32-1 would otherwise print for hours."""

    def too_long(*_):
        raise TimeoutError("a histogram helper ran for 10 s: it is not bounded")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(10)
    t = hist["stray"]
    t.clear()
    try:
        yield t
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        t.clear()


def test_a_stray_slot_is_reported_not_printed_billions_of_times(hist, stray, capsys):
    vals = [v.value for v in hist["hlog2"].values()]
    for slot, count in enumerate(vals):
        if count:
            stray[slot] = count
    stray[2**32 - 1] = 1
    stray[70] = 2
    stray.print_log2_hist("usecs")
    out = capsys.readouterr().out
    assert out == bcc_print("_print_log2_hist", vals, "usecs", 0) + \
        "(3 left out: 2 slots outside a log2 histogram's 0..64: 70, 4294967295)\n"
    stray.print_json_hist("usecs")
    out = capsys.readouterr().out
    assert "'left_out': {'count': 3, 'slots': [70, 4294967295]}" in out
    with pytest.raises(ValueError, match=r"slot 70 \(count 2\) is not a log2 slot: "
                                         r"a log2 histogram has slots 0\.\.64 \(2 such slots\)"):
        stray.log2_buckets()
    # Slot 64 is the last one a log2 histogram has: [2^63, 2^64-1].
    del stray[70]
    del stray[2**32 - 1]
    stray[64] = 5
    assert stray.log2_buckets()[-1].tolist() == (2**63, 2**64 - 1, 5)


def test_linear_hist_with_a_stray_key_prints_the_used_rows(hist, stray, capsys):
    lin = {k.value: v.value for k, v in hist["lin"].items() if v.value}
    for k, c in lin.items():
        stray[k] = c
    stray[2**32 - 1] = 1
    stray.print_linear_hist("bytes")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "     bytes         : count     distribution"
    rows = [ln for ln in lines[1:] if ln.startswith("        ")]
    assert [int(r.split(":")[0]) for r in rows] == sorted(lin) + [2**32 - 1]
    assert lines[-1] == f"({2**32 - len(lin) - 1} empty rows in 0..4294967295 not shown)"
    assert len(lines) == len(lin) + 3
    stray.print_linear_hist("bytes", max_rows=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].endswith(f"{len(lin) - 1} used rows in {sorted(lin)[2]}..4294967295 "
                                                  f"(count {sum(lin[k] for k in sorted(lin)[2:]) + 1}) "
                                                  f"cut at max_rows=2)")


def test_linear_hist_up_to_the_row_cap_is_bccs(capsys):
    vals = [i % 7 for i in range(1000)]
    print_linear_hist({None: dict(enumerate(vals))}, "n")
    assert capsys.readouterr().out == bcc_print("_print_linear_hist", vals, "n", 0)
    print_linear_hist({None: dict(enumerate(vals))}, "n", strip_leading_zero=True)
    assert capsys.readouterr().out == bcc_print("_print_linear_hist", vals, "n", 1)
    print_linear_hist({None: dict(enumerate(vals + [1]))}, "n")  # 1001 rows: only the used ones
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + sum(1 for v in vals if v) + 1 + 1
    assert out[-1] == f"({vals.count(0)} empty rows in 0..1000 not shown)"


def test_log2_buckets_refuses_slots_that_are_not_log2_slots():
    with pytest.raises(ValueError, match="slot 65"):
        log2_buckets({1: 1, 65: 1})
    assert len(log2_buckets({1: 1, 65: 0, 2**32 - 1: 0})) == 1, "empty slots beyond 64 are no error"
