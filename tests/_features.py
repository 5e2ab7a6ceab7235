"""Honest skips: a test that needs a kernel feature runs, skips or fails by the feature's probe.

It skips only when the probe says no *and* that is explained by a known kernel configuration
(CONFIG_KPROBES off, lockdown, ...) or by a kernel older than the feature; the skip message names
which and why. It fails when the kernel is at or past the version that introduced the feature
and nothing explains the "no", and whenever BPFKIT_REQUIRE_FEATURES names the feature (the qemu
kernels of tests/kernels/ set it, so there the tests must really run)."""

from __future__ import annotations

import pytest
from bpfkit import features


def need(*names: str) -> None:
    """Skip or fail the calling test unless the kernel has every feature in ``names``."""
    for name in names:
        verdict, why = features.test_verdict(name)
        if verdict == "fail":
            pytest.fail(why)
        if verdict == "skip":
            pytest.skip(why)
