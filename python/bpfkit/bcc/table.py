"""``bcc.table``: bpfkit's map classes under BCC's module name, with BCC's class names.

``Array`` is :class:`bpfkit.table.ArrayTable`, ``TableBase`` :class:`bpfkit.table.Table`,
``MapInMapArray``/``MapInMapHash`` :class:`bpfkit.table.MapInMap`; ``HashTable``, ``LruHash``,
``PerCpuHash``, ``LruPerCpuHash``, ``PerCpuArray``, ``LpmTrie``, ``StackTrace``, ``ProgArray``,
``PerfEventArray``, ``RingBuf``, ``QueueStack`` and ``BloomFilter`` keep their names. The
``BPF_MAP_TYPE_*`` constants (``BPF_MAP_TYPE_HASH``, ...) are the kernel's numbers, from the
core's table.

>>> import bcc.table                        # inside `python -m bpfkit.bcc SCRIPT`
>>> isinstance(b["counts"], bcc.table.HashTable)
True
"""

from bpfkit import _native
from bpfkit.table import *  # noqa: F403
from bpfkit.table import ArrayTable, MapInMap, Table
from bpfkit.table import __all__ as _kit_all

TableBase = Table
Array = ArrayTable
ArrayBase = ArrayTable
MapInMapArray = MapInMap
MapInMapHash = MapInMap

for _num, _name, _since in _native.map_types():
    globals()[f"BPF_MAP_TYPE_{_name}"] = _num
_MAP_TYPE_NAMES = [f"BPF_MAP_TYPE_{n}" for _num, n, _s in _native.map_types()]
del _num, _name, _since

__all__ = [*_kit_all, "TableBase", "Array", "ArrayBase", "MapInMapArray", "MapInMapHash", *_MAP_TYPE_NAMES]
