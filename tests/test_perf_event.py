"""BPF programs on perf events: software events per CPU and per process, hardware events where
the machine has a PMU (this VM has none: that raises NotSupportedError, and the test says so)."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys

import pytest
from bpfkit import BPF, NotSupportedError, PerfHWConfig, PerfSWConfig, PerfType, features

from ._features import need

SAMPLES = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } by_cpu SEC(".maps");
u64 target_hits = 0;
const volatile u32 target = 0;
SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    u32 cpu = bpf_get_smp_processor_id();
    u64 one = 1, *v = bpf_map_lookup_elem(&by_cpu, &cpu);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&by_cpu, &cpu, &one, BPF_NOEXIST);
    if (BPFKIT_TGID() == target)
        __sync_fetch_and_add(&target_hits, 1);
    return 0;
}
"""

BURN = "import time\nt=time.time()\nwhile time.time()-t<0.4: pass\n"


def _burn_on(cpu: int) -> None:
    subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", BURN], check=True)


def test_cpu_clock_samples_on_every_cpu_and_on_one():
    need("perf_event_sw")
    with BPF(text=SAMPLES) as b:
        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="on_sample",
                            sample_freq=199)
        from bpfkit._attach_kernel import _online_cpus

        assert len(b.links()) == len(_online_cpus())  # one event per online CPU
        for c in sorted(os.sched_getaffinity(0)):
            _burn_on(c)
        seen = {k.value: v.value for k, v in b["by_cpu"].items()}
        # 0.4 s of CPU at 199 Hz is ~80 samples per CPU; the clock ticks even when idle.
        assert set(seen) == set(os.sched_getaffinity(0)) and all(v >= 20 for v in seen.values()), seen
        b.detach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK)
        assert b.links() == []
    last = max(os.sched_getaffinity(0))
    with BPF(text=SAMPLES) as b:
        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="on_sample",
                            sample_period=1_000_000, cpu=last)  # every ms of CPU clock
        _burn_on(last)
        seen = {k.value: v.value for k, v in b["by_cpu"].items()}
        assert list(seen) == [last] and seen[last] >= 100, seen


def test_page_faults_of_one_process():
    need("perf_event_sw")
    pages = 3000
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - child
        os.close(w)
        os.read(r, 1)  # wait until the probe is attached
        m = mmap.mmap(-1, pages * mmap.PAGESIZE)
        for i in range(pages):
            m[i * mmap.PAGESIZE] = 1  # one fault per page
        os._exit(0)
    os.close(r)
    try:
        with BPF(text=SAMPLES, consts={"target": child}) as b:
            b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.PAGE_FAULTS, fn_name="on_sample",
                                sample_period=1, pid=child)
            os.write(w, b"g")
            os.waitpid(child, 0)
            child = 0
            hits = b.get_global("target_hits")
            total = sum(v.value for v in b["by_cpu"].values())
            # Every page touched faulted once; the rest is the child's own exit path. Only the
            # child's faults were sampled.
            assert pages <= hits < pages + 300 and total == hits, (hits, total)
    finally:
        os.close(w)
        if child:
            os.waitpid(child, 0)


def test_hardware_events_need_a_pmu():
    st = features.probe("perf_event_hw")
    with BPF(text=SAMPLES) as b:
        if not st.supported:
            with pytest.raises(NotSupportedError, match="PMU"):
                b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=PerfHWConfig.CPU_CYCLES,
                                    fn_name="on_sample", sample_period=100000)
            assert b.links() == []
            pytest.skip(f"no hardware PMU here ({st.reason}); NotSupportedError checked")
        b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=PerfHWConfig.CPU_CYCLES, fn_name="on_sample",
                            sample_period=100000)
        _burn_on(0)
        assert sum(v.value for v in b["by_cpu"].values()) > 0


def test_perf_event_arguments_are_checked():
    with BPF(text=SAMPLES) as b:
        with pytest.raises(ValueError, match="exactly one"):
            b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=0, fn_name="on_sample")
        with pytest.raises(ValueError, match="no perf event"):
            b.detach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=0)
