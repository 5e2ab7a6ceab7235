"""``bcc.containers``: the cgroup and mount-namespace filters of BCC's tools (``--cgroupmap``,
``--mntnsmap``).

A tool splices :func:`filter_by_containers` ``(args)`` into its BPF text and returns early from
its probes when ``container_should_be_filtered()`` says so::

    bpf_text = filter_by_containers(args) + bpf_text
    # in the probes:  if (container_should_be_filtered()) { return 0; }

With ``args.cgroupmap`` (the path of a pinned BPF hash map, ``u64`` cgroup id -> ``u64``), only
the tasks whose cgroup (``bpf_get_current_cgroup_id()``) is a key of that map are kept; with
``args.mntnsmap`` (a pinned hash map, ``u64`` mount-namespace inode -> ``u32``), only the tasks
whose mount namespace is a key; with neither, nothing is filtered. The maps are managed from
outside (``bpftool map create /sys/fs/bpf/test01 type hash key 8 value 8 entries 128 name
cgroupset flags 0``, then ``bpftool map update``), and the filter follows their changes live.

BCC declares those maps with ``BPF_TABLE_PINNED``; bpfkit loads with libbpf, which cannot yet
be told to reuse a map pinned at a chosen path, so the filter reads the pinned map through an
array of maps holding it, which :class:`bpfkit.BPF` fills as it loads the object (before
attaching). Until it is filled (never, once loaded) the filter would drop every event.
"""

from __future__ import annotations

import json

from bpfkit._bpf import PIN_PATH_PREFIX, PINNED_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["filter_by_containers", "get_mntns_id_text"]

#: C that defines ``u64 get_mntns_id(void)``, the current task's mount namespace inode
#: (``MNT_NAMESPACE_DEFINED`` is defined too, as BCC does, for tools that guard their own
#: ``struct mnt_namespace`` with it: with bpfkit it comes from the kernel's BTF).
get_mntns_id_text = """
#ifndef __GET_MTN_NS_ID
#define __GET_MTN_NS_ID
#define MNT_NAMESPACE_DEFINED
static __always_inline u64 get_mntns_id(void)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}
#endif
"""

# The BCC shape of each pinned set: (map type, key size, value size), as BCC's tools declare it.
_SETS = {"cgroupset": ("hash", 8, 8, "u64"), "mount_ns_set": ("hash", 8, 4, "u32")}


def _pinned_set(name: str, path: str) -> str:
    """C for a lookup in the hash map pinned at ``path``: ``NAME__lookup(&key)`` gives the
    value or NULL. The inner map's definition copies the pinned map's own size and flags (the
    kernel accepts a map in the slot only if they match), read from the pin now."""
    from bpfkit import _native
    from bpfkit.table import BPF_MAP_TYPE

    kind, ksize, vsize, vtype = _SETS[name]
    m = _native.open_pinned_map(path)
    if m.map_type != BPF_MAP_TYPE[kind] or m.key_size != ksize or m.value_size != vsize:
        raise ValueError(f"the map pinned at {path} is a {m.map_type}-type map with {m.key_size}-byte keys and "
                         f"{m.value_size}-byte values; {name} is a {kind} map ({BPF_MAP_TYPE[kind]}) with "
                         f"{ksize}-byte keys and {vsize}-byte values")
    # A C string literal of the path: JSON's escapes are C's for what a path holds. The map
    # is placed in ".maps" by attribute, not SEC(), which would make bpfkit take the whole text
    # for libbpf C rather than BCC's.
    literal = json.dumps(path)
    return f"""
const volatile char {PIN_PATH_PREFIX}{name}[] = {literal};
struct {{
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, u32);
    __array(values, struct {{
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, {m.max_entries});
        __uint(map_flags, {m.flags});
        __type(key, u64);
        __type(value, {vtype});
    }});
}} {PINNED_PREFIX}{name} __attribute__((section(".maps"), used));

static __always_inline {vtype} *{name}__lookup(u64 *key)
{{
    u32 zero = 0;
    void *set = bpf_map_lookup_elem(&{PINNED_PREFIX}{name}, &zero);
    return set ? ({vtype} *)bpf_map_lookup_elem(set, key) : NULL;
}}
"""


def _cgroup_filter(cgroupmap: Optional[str]) -> str:
    if not cgroupmap:
        return "\nstatic __always_inline int _cgroup_filter(void) { return 0; }\n"
    return _pinned_set("cgroupset", cgroupmap) + """
static __always_inline int _cgroup_filter(void)
{
    u64 cgroupid = bpf_get_current_cgroup_id();
    return cgroupset__lookup(&cgroupid) == NULL;
}
"""


def _mntns_filter(mntnsmap: Optional[str]) -> str:
    if not mntnsmap:
        return "\nstatic __always_inline int _mntns_filter(void) { return 0; }\n"
    return get_mntns_id_text + _pinned_set("mount_ns_set", mntnsmap) + """
static __always_inline int _mntns_filter(void)
{
    u64 ns_id = get_mntns_id();
    return mount_ns_set__lookup(&ns_id) == NULL;
}
"""


def _path_arg(v: Any) -> Optional[str]:
    if v is None or v == "" or v == b"":
        return None
    import os

    return os.fsdecode(v)


def filter_by_containers(args: Any) -> str:
    """C (BCC's dialect, for a tool's BPF text) defining ``container_should_be_filtered()``:
    nonzero when the current task is outside the cgroups of ``args.cgroupmap`` or the mount
    namespaces of ``args.mntnsmap`` (either attribute may be missing or None: no filter of that
    kind). The pinned maps must exist now: their sizes are read from them (``MapError`` if a
    path holds none, ``ValueError`` if a map has another shape than BCC's tools give it).

    >>> text = filter_by_containers(argparse.Namespace(cgroupmap="/sys/fs/bpf/test01", mntnsmap=None))
    >>> "container_should_be_filtered" in text
    True
    """
    text = _cgroup_filter(_path_arg(getattr(args, "cgroupmap", None)))
    text += _mntns_filter(_path_arg(getattr(args, "mntnsmap", None)))
    return text + """
static __always_inline int container_should_be_filtered(void)
{
    return _cgroup_filter() || _mntns_filter();
}
"""
