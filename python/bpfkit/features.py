"""What the running kernel can do, asked of the kernel itself.

Each feature has a probe that does the smallest real thing needing it (see ``rust/core/features.rs``),
the kernel version that introduced it, and, when the kernel says no, the reason in words,
including the *known configuration* behind it when there is one (CONFIG_KPROBES off, kernel
lockdown, the BPF LSM not enabled, no hardware PMU). Results are memoised per process.

>>> from bpfkit import features
>>> features.supported("ringbuf")
True
>>> print(features.probe("fentry").reason)      # on a kernel in lockdown
loading a probe program ...: the kernel is in lockdown mode (integrity), ...
>>> for st in features.check_all(): print(st)   # or: bpfkit features
"""

from __future__ import annotations

import errno as _errno
import functools
import gzip
import os
import re
from dataclasses import dataclass
from typing import Optional

from . import _native
from ._errors import NotSupportedError

__all__ = ["Feature", "Status", "FEATURES", "probe", "supported", "require", "refusal", "check_all",
           "kernel_version", "kconfig", "test_verdict"]


@dataclass(frozen=True)
class Feature:
    """A kernel feature bpfkit can probe for."""

    name: str
    since: str  #: the first mainline kernel version that has it
    description: str
    config: tuple = ()  #: the kernel configuration options it needs


#: Every feature bpfkit probes, with the kernel version that introduced it: the records live in
#: the Rust core beside their probes (``bpfkit._native.feature_table()``), so there is one table.
FEATURES: dict[str, Feature] = {name: Feature(name, since, desc, tuple(config))
                                for name, since, desc, config in _native.feature_table()}


@dataclass(frozen=True)
class Status:
    """A probe's answer."""

    name: str
    supported: bool
    reason: str  #: why not, in words ("" when supported)
    errno: int
    since: str  #: the kernel version that introduced the feature
    #: a known kernel configuration that explains a "no" (CONFIG_KPROBES off, lockdown, ...), or None
    known_config: Optional[str] = None

    def __str__(self) -> str:
        if self.supported:
            return f"{self.name:<14} yes"
        why = f" [{self.known_config}]" if self.known_config else ""
        return f"{self.name:<14} no  (since {self.since}){why}: {self.reason}"

    def __bool__(self) -> bool:
        return self.supported


def kernel_version() -> tuple:
    """The running kernel's version as a tuple of ints, e.g. ``(6, 18, 0)``."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", os.uname().release)
    if not m:
        return (0, 0, 0)
    return tuple(int(x or 0) for x in m.groups())


def _version(s: str) -> tuple:
    parts = [int(x) for x in s.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


@functools.lru_cache(maxsize=1)
def _kconfig() -> dict:
    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_"):
            k, _, v = line.partition("=")
            out[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out


def kconfig(option: str) -> Optional[str]:
    """The value of kernel configuration ``option`` ("y", "m", "n", ...) from /proc/config.gz or
    /boot/config-$(uname -r); None when neither is readable or the option is unknown."""
    return _kconfig().get(option)


def _known_config(name: str, errno: int, reason: str) -> Optional[str]:
    """The known configuration behind a "no", if there is one."""
    # Only an option the config says is off counts: one it does not mention belongs to a kernel
    # too old to have it, which the version check covers.
    off = [c for c in FEATURES[name].config if kconfig(c) == "n"]
    if "lockdown mode" in reason:
        return f"kernel lockdown={_native.lockdown()}"
    if name == "lsm" and "not active" in reason:
        return "the BPF LSM is not in the active lsm= list"
    if name == "perf_event_hw" and "no hardware PMU" in reason:
        return "no hardware PMU (virtual machine)"
    if name == "kprobes" and "CONFIG_KPROBES" in reason:
        return "CONFIG_KPROBES is off"
    if off:
        return " and ".join(f"{c} is off" for c in off)
    return None


@functools.lru_cache(maxsize=None)
def probe(name: str) -> Status:
    """Probes feature ``name`` (memoised). Raises ValueError for an unknown name."""
    if name not in FEATURES:
        raise ValueError(f"no feature named {name!r} (known: {', '.join(FEATURES)})")
    ok, errno, reason = _native.probe_feature(name)
    known = None if ok else _known_config(name, errno, reason)
    return Status(name, ok, reason, errno, FEATURES[name].since, known)


def supported(name: str) -> bool:
    """Whether the running kernel has feature ``name``."""
    return probe(name).supported


def require(name: str) -> None:
    """Raises :class:`NotSupportedError` (with the reason and the version that introduced the
    feature) unless the kernel has feature ``name``."""
    st = probe(name)
    if not st.supported:
        raise refusal(name, f"{FEATURES[name].description}: not available on this kernel "
                            f"({os.uname().release}): {st.reason}")


def refusal(name: str, message: str, *, program: Optional[str] = None) -> NotSupportedError:
    """The :class:`NotSupportedError` for feature ``name``, built from its record (its name and
    the kernel version that introduced it), as the core builds its own."""
    e = NotSupportedError(message, _errno.EOPNOTSUPP)
    e.feature = name
    e.since = FEATURES[name].since
    e.program = program
    return e


def check_all() -> list:
    """The status of every feature."""
    return [probe(n) for n in FEATURES]


def test_verdict(name: str) -> tuple:
    """For a test that needs feature ``name``: ``("run", "")`` when the kernel has it,
    ``("skip", why)`` when it lacks it for a known configuration reason or because it predates the
    feature, and ``("fail", why)`` when the kernel is at or past the version that introduced it,
    no known configuration explains the "no", or the feature is required by
    ``BPFKIT_REQUIRE_FEATURES`` (set inside the qemu kernels, which must have it)."""
    st = probe(name)
    if st.supported:
        return ("run", "")
    required = {f.strip() for f in os.environ.get("BPFKIT_REQUIRE_FEATURES", "").split(",") if f.strip()}
    release = os.uname().release
    if name in required:
        return ("fail", f"{name} is required here (BPFKIT_REQUIRE_FEATURES) but the probe says no on "
                        f"{release}: {st.reason}")
    if st.known_config:
        return ("skip", f"{name} unavailable on {release}: {st.known_config} ({st.reason})")
    if kernel_version() < _version(st.since):
        return ("skip", f"{name} arrived in Linux {st.since}; this kernel is {release}")
    return ("fail", f"{name} arrived in Linux {st.since} and this kernel is {release}, but the probe says no "
                    f"and no known configuration explains it: {st.reason}")
