"""Maps as Python mappings, typed from BTF (BCC's ``bcc.table``).

``b["counts"]`` is a :class:`HashTable`, :class:`ArrayTable`, :class:`PerCpuHash` or
:class:`PerCpuArray`. Keys and values are ctypes objects built from the map's BTF, as BCC's are
(``k.value`` for a scalar, one attribute per struct field); plain ints, tuples and bytes are
accepted wherever a key or value is expected::

    counts = b["counts"]
    counts[1234] = 5
    print(counts[1234].value, 1234 in counts, len(counts))
    for k, v in counts.items():
        print(k.value, v.value)
    keys, values = counts.to_numpy()

This module gathers the public names of the modules that hold the code: :mod:`bpfkit._maps`
(map classes), :mod:`bpfkit._streams` (ring and perf buffers), :mod:`bpfkit._hist`
(histograms) and :mod:`bpfkit._values` (packing values into a map's bytes).
"""

from __future__ import annotations

from ._hist import hist_json, log2_buckets, print_json_hist, print_linear_hist, print_log2_hist
from ._maps import (
    BPF_ANY,
    BPF_EXIST,
    BPF_MAP_TYPE,
    BPF_NOEXIST,
    ArrayTable,
    BloomFilter,
    HashTable,
    LpmTrie,
    LruHash,
    LruPerCpuHash,
    MapInMap,
    PerCpuArray,
    PerCpuHash,
    ProgArray,
    QueueStack,
    StackTrace,
    Table,
    make_table,
    open_pinned,
)
from ._streams import PerfEventArray, RingBuf, RingBufTable

__all__ = [
    "Table",
    "HashTable",
    "LruHash",
    "ArrayTable",
    "PerCpuHash",
    "PerCpuArray",
    "RingBuf",
    "RingBufTable",
    "PerfEventArray",
    "LpmTrie",
    "StackTrace",
    "ProgArray",
    "MapInMap",
    "QueueStack",
    "BloomFilter",
    "LruPerCpuHash",
    "open_pinned",
    "BPF_MAP_TYPE",
    "print_log2_hist",
    "print_linear_hist",
    "print_json_hist",
    "hist_json",
    "log2_buckets",
    "make_table",
    "BPF_ANY",
    "BPF_NOEXIST",
    "BPF_EXIST",
]
