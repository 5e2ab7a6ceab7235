"""Maps as Python mappings, typed from BTF.

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
"""

from __future__ import annotations

import ctypes as ct
import time
from collections.abc import Iterator, MutableMapping
from typing import Any, Callable, Optional

from . import _btftypes

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
    "log2_buckets",
]

#: ``BPF_MAP_TYPE_*`` numbers for the types bpfkit wraps.
BPF_MAP_TYPE = {
    "hash": 1,
    "array": 2,
    "prog_array": 3,
    "perf_event_array": 4,
    "percpu_hash": 5,
    "percpu_array": 6,
    "stack_trace": 7,
    "lru_hash": 9,
    "lru_percpu_hash": 10,
    "lpm_trie": 11,
    "ringbuf": 27,
}

BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2


def _round8(n: int) -> int:
    return (n + 7) & ~7


def _plain_int_desc(size: int) -> dict:
    if size in (1, 2, 4, 8):
        return {"kind": "int", "name": f"u{size * 8}", "size": size, "signed": False, "char": False, "bool": False}
    return {"kind": "array", "len": size, "size": size,
            "elem": {"kind": "int", "name": "u8", "size": 1, "signed": False, "char": False, "bool": False}}


def _build(t: Any, v: Any) -> Any:
    """A ctypes ``t`` from a Python value: ints and floats for scalars, bytes/str/lists for
    arrays, tuples (positional, padding fields skipped) or dicts for structs, recursively."""
    if isinstance(v, t):
        return v
    if issubclass(t, (ct.Structure, ct.Union)):
        names = [f[0] for f in t._fields_ if not f[0].startswith("__pad")]
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, (tuple, list)):
            if len(v) > len(names):
                raise TypeError(f"{t.__name__} has {len(names)} fields, got {len(v)} values")
            items = zip(names, v)
        else:
            raise TypeError(f"{t.__name__} takes a tuple or dict")
        out = t()
        ftypes = {f[0]: f[1] for f in t._fields_}
        for name, x in items:
            if name not in ftypes:
                raise TypeError(f"{t.__name__} has no field {name!r}")
            ft = ftypes[name]
            if issubclass(ft, ct.Array) and ft._type_ is ct.c_char and isinstance(x, (bytes, str)):
                setattr(out, name, x.encode() if isinstance(x, str) else x)  # ctypes pads char arrays
            elif issubclass(ft, (ct.Structure, ct.Union, ct.Array)):
                setattr(out, name, _build(ft, x))
            else:
                setattr(out, name, x)
        return out
    if issubclass(t, ct.Array):
        if isinstance(v, str):
            v = v.encode()
        if isinstance(v, (bytes, bytearray)) and ct.sizeof(t._type_) == 1:
            if len(v) > ct.sizeof(t):
                raise ValueError(f"{len(v)} bytes do not fit {ct.sizeof(t)}")
            return t.from_buffer_copy(bytes(v).ljust(ct.sizeof(t), b"\0"))
        if isinstance(v, (list, tuple)):
            return t(*[_build(t._type_, x) if issubclass(t._type_, (ct.Structure, ct.Union, ct.Array)) else x for x in v])
        raise TypeError(f"an array of {t._length_} takes a list or bytes")
    if not isinstance(v, (int, float, bytes)):
        raise TypeError(f"{type(v).__name__} is not a number")
    return t(v)


class Table(MutableMapping):
    """Base of every map wrapper: a mapping over a kernel map, typed from its BTF."""

    def __init__(self, bpf: Any, native_map: Any, keytype: Any = None, leaftype: Any = None) -> None:
        self.bpf = bpf
        self._m = native_map
        self.name: str = native_map.name
        self.map_type: int = native_map.map_type
        self.max_entries: int = native_map.max_entries
        self.flags: int = native_map.flags
        kdesc = native_map.key_desc()
        vdesc = native_map.value_desc()
        if kdesc["kind"] == "void" and native_map.key_size:
            kdesc = _plain_int_desc(native_map.key_size)
        if vdesc["kind"] == "void" and native_map.value_size:
            vdesc = _plain_int_desc(native_map.value_size)
        self.key_desc, self.leaf_desc = kdesc, vdesc
        self.Key = keytype or (_btftypes.ctype_of(kdesc) if native_map.key_size else None)
        self.Leaf = leaftype or (_btftypes.ctype_of(vdesc) if native_map.value_size else None)
        for what, t, size in (("key", self.Key, native_map.key_size), ("value", self.Leaf, native_map.value_size)):
            if t is not None and ct.sizeof(t) != size:
                raise TypeError(f"{what} type {t.__name__} is {ct.sizeof(t)} bytes; map `{self.name}` has {size}-byte {what}s")

    # -- conversions -------------------------------------------------------------------------
    @staticmethod
    def _to_bytes(t: Any, v: Any, what: str, mapname: str) -> bytes:
        size = ct.sizeof(t)
        if isinstance(v, t):
            return bytes(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            if len(b) != size:
                raise ValueError(f"map `{mapname}` takes {size}-byte {what}s ({t.__name__}), got {len(b)} bytes")
            return b
        if isinstance(v, ct._SimpleCData) or isinstance(v, (ct.Structure, ct.Union, ct.Array)):
            if ct.sizeof(v) != size:
                raise ValueError(
                    f"map `{mapname}` takes {size}-byte {what}s ({t.__name__}), got {type(v).__name__} of {ct.sizeof(v)} bytes")
            return bytes(v)
        try:
            if isinstance(v, bool) and not issubclass(t, (ct.c_bool,)):
                raise TypeError("a bool is not a number here")
            return bytes(_build(t, v))
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"map `{mapname}` takes {what}s of type {t.__name__} ({size} bytes); "
                f"cannot convert {type(v).__name__} {v!r}: {e}") from None

    def _key(self, k: Any) -> bytes:
        return self._to_bytes(self.Key, k, "key", self.name)

    def _leaf(self, v: Any) -> bytes:
        return self._to_bytes(self.Leaf, v, "value", self.name)

    def _decode_key(self, b: bytes) -> Any:
        return self.Key.from_buffer_copy(b)

    def _decode_leaf(self, b: bytes) -> Any:
        return self.Leaf.from_buffer_copy(b)

    # -- mapping -----------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        v = self._m.lookup(self._key(key))
        if v is None:
            raise KeyError(key)
        return self._decode_leaf(v)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._m.update(self._key(key), self._leaf(value), BPF_ANY)

    def __delitem__(self, key: Any) -> None:
        if not self._m.delete(self._key(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._m.lookup(self._key(key)) is not None

    def __iter__(self) -> Iterator[Any]:
        for k in self._m.keys():
            yield self._decode_key(k)

    def __len__(self) -> int:
        return len(self._m.keys())

    def keys(self) -> list:  # type: ignore[override]
        """Every key, as a list (a snapshot, like BCC's)."""
        return [self._decode_key(k) for k in self._m.keys()]

    def items(self) -> list:  # type: ignore[override]
        """Every ``(key, value)``, read in one batch-lookup snapshot."""
        n, kb, vb = self._m.snapshot()
        ks, vs = self._m.key_size, self._m.value_buf_size
        kb, vb = kb.tobytes(), vb.tobytes()
        return [(self._decode_key(kb[i * ks:(i + 1) * ks]), self._decode_leaf(vb[i * vs:(i + 1) * vs])) for i in range(n)]

    def values(self) -> list:  # type: ignore[override]
        """Every value, as a list."""
        return [v for _, v in self.items()]

    def clear(self) -> None:
        """Deletes every entry."""
        self._m.clear()

    def zero(self) -> None:
        """Sets every existing value to zero."""
        z = bytes(self._m.value_buf_size)
        for k in self._m.keys():
            self._m.update(k, z, BPF_EXIST)

    def update_raw(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """Writes packed bytes, with ``BPF_ANY``/``BPF_NOEXIST``/``BPF_EXIST`` flags."""
        self._m.update(key, value, flags)

    def insert(self, key: Any, value: Any) -> None:
        """Adds ``key`` only if absent (``BPF_NOEXIST``); raises ``MapError`` (EEXIST) otherwise."""
        self._m.update(self._key(key), self._leaf(value), BPF_NOEXIST)

    @property
    def fd(self) -> int:
        """The map's file descriptor (valid until the object is closed)."""
        return self._m.fd

    def pin(self, path: str) -> None:
        """Pins the map on a bpffs (``/sys/fs/bpf/...``, mounted if needed); reopen it with
        ``bpfkit.open_pinned(path)``, from this process or another. The pin stays until the file
        is removed."""
        self._m.pin(str(path))

    def to_pandas(self) -> Any:
        """The map as a pandas DataFrame: one column per key and value field (``key``/``value``
        for scalars). Needs pandas."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from e
        keys, values = self.to_numpy() if not isinstance(self, ArrayTable) else (None, self.to_numpy())
        cols: dict = {}
        for prefix, arr in (("key", keys), ("value", values)):
            if arr is None:
                continue
            if arr.dtype.names:
                for n in arr.dtype.names:
                    cols[f"{prefix}.{n}"] = list(arr[n]) if arr[n].ndim > 1 else arr[n]
            else:
                cols[prefix] = list(arr) if arr.ndim > 1 else arr
        return pd.DataFrame(cols)

    # -- numpy -------------------------------------------------------------------------------
    def key_dtype(self) -> Any:
        return _btftypes.numpy_dtype_of(self.key_desc)

    def leaf_dtype(self) -> Any:
        return _btftypes.numpy_dtype_of(self.leaf_desc)

    def to_numpy(self) -> tuple:
        """``(keys, values)`` as numpy arrays (structured where the type is a struct), read with
        batch lookups."""
        n, kb, vb = self._m.snapshot()
        keys = kb.view(self.key_dtype())[:n] if n else kb[:0].view(self.key_dtype())
        return keys, self._values_array(n, vb)

    def _values_array(self, n: int, vb: Any) -> Any:
        dt = self.leaf_dtype()
        return vb.view(dt)[:n] if n else vb[:0].view(dt)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} max_entries={self.max_entries}>"

    # -- histograms --------------------------------------------------------------------------
    def print_log2_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                        section_print_fn: Optional[Callable[[Any], str]] = None,
                        bucket_fn: Optional[Callable[[Any], Any]] = None,
                        strip_leading_zero: Optional[bool] = None, bucket_sort_fn: Optional[Callable] = None) -> None:
        """Prints the map as a power-of-two histogram, as BCC does. Keys are slots (from
        ``bpf_log2l``), or structs whose first field is a section (e.g. a disk) and whose
        ``slot`` field is the slot; one histogram per section."""
        print_log2_hist(self._histograms(bucket_fn), val_type, section_header, section_print_fn,
                        strip_leading_zero, bucket_sort_fn)

    def print_linear_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                          section_print_fn: Optional[Callable[[Any], str]] = None,
                          bucket_fn: Optional[Callable[[Any], Any]] = None,
                          strip_leading_zero: Optional[bool] = None,
                          bucket_sort_fn: Optional[Callable] = None) -> None:
        """Prints the map as a linear histogram (one row per key value), as BCC does."""
        print_linear_hist(self._histograms(bucket_fn), val_type, section_header, section_print_fn, bucket_sort_fn,
                          strip_leading_zero)

    def print_json_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                        section_print_fn: Optional[Callable[[Any], str]] = None,
                        bucket_fn: Optional[Callable[[Any], Any]] = None,
                        bucket_sort_fn: Optional[Callable] = None) -> None:
        """Prints the map as a power-of-two histogram in BCC's JSON-like form (one dict per
        section, with ``ts``, ``val_type`` and ``data``)."""
        print_json_hist(self._histograms(bucket_fn), val_type, section_header, section_print_fn, bucket_sort_fn)

    def log2_buckets(self, bucket_fn: Optional[Callable[[Any], Any]] = None) -> Any:
        """The power-of-two histogram as numpy: a structured array of ``(low, high, count)`` per
        slot from 1 to the highest used (BCC's slot numbering: slot n holds [2^(n-1), 2^n - 1]),
        or, for a sectioned map, a dict of such arrays by section."""
        hists = self._histograms(bucket_fn)
        out = {k: log2_buckets(v) for k, v in hists.items()}
        return out.get(None, log2_buckets({})) if list(out) in ([], [None]) else out

    def _histograms(self, bucket_fn: Optional[Callable[[Any], Any]]) -> dict:
        hists: dict = {}
        for k, v in self.items():
            val = _scalar(v)
            if isinstance(k, (ct.Structure, ct.Union)):
                names = [f[0] for f in k._fields_ if not f[0].startswith("__pad")]
                slot_name = "slot" if "slot" in names else names[-1]
                sec_name = next(n for n in names if n != slot_name)
                section = _plain_value(getattr(k, sec_name))
                if bucket_fn:
                    section = bucket_fn(section)
                slot = int(getattr(k, slot_name))
            else:
                section, slot = None, int(_scalar(k))
            h = hists.setdefault(section, {})
            h[slot] = h.get(slot, 0) + val
        return hists


def _scalar(v: Any) -> Any:
    if hasattr(v, "sum") and not isinstance(v, ct._SimpleCData):
        return int(v.sum())
    return getattr(v, "value", v)


def _plain_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.rstrip(b"\0").decode(errors="replace")
    if isinstance(v, ct.Array):
        return bytes(v).rstrip(b"\0").decode(errors="replace") if v._type_ is ct.c_char else list(v)
    return v


class HashTable(Table):
    """``BPF_MAP_TYPE_HASH`` (kernel 3.19+)."""


class LruHash(HashTable):
    """``BPF_MAP_TYPE_LRU_HASH`` (kernel 4.10+): the least recently used entry is evicted when full."""


class ArrayTable(Table):
    """``BPF_MAP_TYPE_ARRAY`` (kernel 3.19+): keys ``0..max_entries-1``, all present; negative
    indexes count from the end; ``del`` zeroes."""

    def _index(self, key: Any) -> int:
        if isinstance(key, (ct._SimpleCData,)):
            key = key.value
        if isinstance(key, (bytes, bytearray)):
            return int.from_bytes(self._key(key), "little")
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"array `{self.name}` is indexed by int, not {type(key).__name__}")
        if key < 0:
            key += self.max_entries
        if not 0 <= key < self.max_entries:
            raise IndexError(f"index out of range for array `{self.name}` of {self.max_entries} entries")
        return key

    def _key(self, k: Any) -> bytes:
        if isinstance(k, int) and not isinstance(k, bool):
            return self._to_bytes(self.Key, self._index(k), "key", self.name)
        return super()._key(k)

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self._index(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(self._index(key), value)

    def __delitem__(self, key: Any) -> None:
        self._m.update(self._key(self._index(key)), bytes(self._m.value_buf_size), BPF_ANY)

    def __contains__(self, key: object) -> bool:
        try:
            self._index(key)
            return True
        except (IndexError, TypeError):
            return False

    def __len__(self) -> int:
        return self.max_entries

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.max_entries):
            yield self.Key(i)

    def keys(self) -> list:  # type: ignore[override]
        return [self.Key(i) for i in range(self.max_entries)]

    def clear(self) -> None:
        """Zeroes every element (array elements cannot be deleted)."""
        self._m.clear()

    zero = clear

    @property
    def mmapable(self) -> bool:
        """Whether the array was declared with ``BPF_F_MMAPABLE`` (kernel 5.5+)."""
        return self.map_type == 2 and bool(self.flags & (1 << 10))

    def to_numpy(self) -> Any:
        """The values as one numpy array, indexed by key (an array's keys are its indexes).

        For a ``BPF_F_MMAPABLE`` array this is a zero-copy live view of the map's memory, in
        constant time whatever the size (the memory is mapped when the object loads): a kernel
        update shows up without re-reading, and a write through numpy is seen by the program. After ``close()`` the view stays valid memory but reads
        zeros. Other arrays are read with batch lookups into a copy."""
        if not self.mmapable:
            return super().to_numpy()[1]
        mm = getattr(self, "_mm", None)
        if mm is None:
            import numpy as np

            view, stride = self._m.mmap()
            raw = np.asarray(view)[: stride * self.max_entries]
            dt = self.leaf_dtype()
            if dt.itemsize != stride:
                padded = np.dtype({"names": ["v"], "formats": [dt], "offsets": [0], "itemsize": stride})
                mm = raw.view(padded)["v"]
            else:
                mm = raw.view(dt)
            self._mm = mm
        return mm


class _PerCpu:
    """Values are numpy arrays with one element per possible CPU."""

    _m: Any

    def _decode_leaf(self, b: bytes) -> Any:  # type: ignore[override]
        import numpy as np

        n = self._m.ncpus
        return np.frombuffer(b, dtype=self._cpu_dtype(), count=n).copy()

    def _cpu_dtype(self) -> Any:
        import numpy as np

        dt = self.leaf_dtype()  # type: ignore[attr-defined]
        stride = _round8(self._m.value_size)
        if dt.itemsize == stride:
            return dt
        if dt.names is None:
            return np.dtype({"names": ["v"], "formats": [dt], "offsets": [0], "itemsize": stride})
        return np.dtype({"names": list(dt.names), "formats": [dt.fields[n][0] for n in dt.names],
                         "offsets": [dt.fields[n][1] for n in dt.names], "itemsize": stride})

    def _unwrap(self, arr: Any) -> Any:
        dt = arr.dtype
        if dt.names == ("v",) and self.leaf_dtype().names is None:  # type: ignore[attr-defined]
            return arr["v"].copy()
        return arr

    def _leaf(self, v: Any) -> bytes:  # type: ignore[override]
        n = self._m.ncpus
        stride = _round8(self._m.value_size)
        if isinstance(v, (bytes, bytearray)) and len(v) == n * stride:
            return bytes(v)
        try:
            vals = list(v) if not isinstance(v, (int, float, tuple, bytes, ct._SimpleCData, ct.Structure)) else [v] * n
        except TypeError:
            vals = [v] * n
        if len(vals) != n:
            raise ValueError(f"per-CPU map `{self._m.name}` takes {n} values (one per possible CPU), got {len(vals)}")
        out = bytearray()
        for x in vals:
            if hasattr(x, "item") and not isinstance(x, ct._SimpleCData):
                x = x.item()
            b = Table._to_bytes(self.Leaf, x, "value", self._m.name)  # type: ignore[attr-defined]
            out += b + bytes(stride - len(b))
        return bytes(out)

    def _values_array(self, n: int, vb: Any) -> Any:
        ncpu = self._m.ncpus
        arr = vb.view(self._cpu_dtype()) if n else vb[:0].view(self._cpu_dtype())
        return self._unwrap(arr.reshape(n, ncpu))

    def __getitem__(self, key: Any) -> Any:
        return self._unwrap(super().__getitem__(key))  # type: ignore[misc]

    def items(self) -> list:
        return [(k, self._unwrap(v)) for k, v in super().items()]  # type: ignore[misc]

    def sum(self, key: Any) -> Any:
        """The sum over CPUs of the value at ``key``."""
        return self[key].sum()

    def max(self, key: Any) -> Any:
        """The largest per-CPU value at ``key``."""
        return self[key].max()

    def average(self, key: Any) -> Any:
        """The mean over CPUs of the value at ``key``."""
        return self[key].mean()


class PerCpuHash(_PerCpu, HashTable):
    """``BPF_MAP_TYPE_PERCPU_HASH`` (kernel 4.6+)."""


class LruPerCpuHash(_PerCpu, HashTable):
    """``BPF_MAP_TYPE_LRU_PERCPU_HASH`` (kernel 4.10+)."""


class PerCpuArray(_PerCpu, ArrayTable):
    """``BPF_MAP_TYPE_PERCPU_ARRAY`` (kernel 4.6+)."""


class _EventTable:
    """Common part of ring buffers and perf buffers: decoding records from BTF, per-record
    callbacks, and batches as numpy structured arrays."""

    #: BCC's name for the per-record callback's registration; set by subclasses.
    _kind = ""

    def __init__(self, bpf: Any, native_map: Any) -> None:
        self.bpf = bpf
        self._m = native_map
        self.name: str = native_map.name
        self.map_type: int = native_map.map_type
        self.max_entries: int = native_map.max_entries
        self._stream: Any = None
        self._callback: Optional[Callable] = None
        self._ctx: Any = None
        self._record: Any = None  # (name, descriptor, ctype)
        self._page_cnt = 64
        self._wakeup_events = 1

    # -- record type -------------------------------------------------------------------------
    def set_record(self, record: Any) -> None:
        """Names the C type of a record: ``"struct event"`` (or ``"event"``), or a ctypes class."""
        if isinstance(record, type):
            self._record = (record.__name__, None, record)
            return
        name = str(record).replace("struct ", "").strip()
        tid = self.bpf._obj.find_struct(name)
        if tid is None:
            raise ValueError(f"no struct {name} in the program's BTF (is it used in the C source?)")
        desc = self.bpf._obj.describe_type(tid)
        self._record = (name, desc, _btftypes.ctype_of(desc))

    def _record_type(self) -> tuple:
        if self._record is None:
            self.set_record(self.bpf._guess_record(self.name))
        return self._record

    @property
    def Event(self) -> Any:
        """The ctypes class of a record."""
        return self._record_type()[2]

    def event(self, data: Any) -> Any:
        """Decodes one record: ``data`` is what a callback received (an address, as in BCC) or the
        record's bytes. Fields are attributes; ``char[]`` fields read as bytes, and
        ``ev.str("comm")`` gives them as text."""
        T = self.Event
        if isinstance(data, int):
            obj = T()
            ct.memmove(ct.addressof(obj), data, ct.sizeof(T))
            return obj
        b = bytes(data)
        return T.from_buffer_copy(b.ljust(ct.sizeof(T), b"\0")[: ct.sizeof(T)])

    def dtype(self) -> Any:
        """The numpy dtype of a record (structured; ``char[]`` fields as ``S<n>``)."""
        _name, desc, T = self._record_type()
        if desc is None:
            import numpy as np

            return np.dtype(T)
        return _btftypes.numpy_dtype_of(desc)

    # -- the stream --------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._stream is None:
            guard = 4096
            try:
                guard = max(guard, ct.sizeof(self.Event))
            except ValueError:
                pass  # no record type known: raw use only
            self._stream = self.bpf._obj.open_stream(self.name, page_cnt=self._page_cnt,
                                                     wakeup_events=self._wakeup_events, guard=guard)
            self.bpf._streams.append(self)
        return self._stream

    def open(self, page_cnt: Optional[int] = None) -> None:
        """Starts collecting records for :meth:`read`: the pump thread starts draining the kernel
        buffer into the queue now (a perf buffer only collects from then on; ``page_cnt`` pages
        per CPU). ``read()`` does this itself when needed."""
        if page_cnt is not None:
            if page_cnt <= 0 or page_cnt & (page_cnt - 1):
                raise ValueError(f"page_cnt must be a power of two, got {page_cnt}")
            if self._stream is not None and page_cnt != self._page_cnt:
                raise ValueError(f"`{self.name}` is already open with page_cnt={self._page_cnt}")
            self._page_cnt = page_cnt
        self._open().start_pump(self.linger)

    def fileno(self) -> int:
        """An fd that is readable when records are waiting (for select/epoll/asyncio)."""
        return self._open().fileno()

    @property
    def lost(self) -> int:
        """Records the kernel dropped because the buffer was full (perf buffers; a ring buffer's
        program sees a failed reserve and counts it itself)."""
        return self._stream.lost if self._stream is not None else 0

    @property
    def received(self) -> int:
        """Records received so far."""
        return self._stream.received if self._stream is not None else 0

    #: After the first record of a batch arrives, how long ``read()`` lingers for more (seconds).
    #: A consumer that returns for every few records keeps the ring empty, so the kernel wakes
    #: it for nearly every record; on a busy producer those wake-ups cost more than the records
    #: (measured here: a tight producer ran 7x slower and lost records). Lingering 1 ms lets
    #: batches build up; set 0 for the lowest latency.
    linger = 0.001

    def read(self, max: int = 4096, timeout: int = -1) -> Any:
        """Up to ``max`` records as a numpy structured array, waiting up to ``timeout`` ms (-1:
        forever, 0: not at all) for the first.

        The first call starts a native thread that keeps draining the kernel buffer into a
        queue, without the GIL and without a Python call per record, so that nothing the Python
        side does (GC pauses, slow processing of a batch) can let the kernel buffer overflow;
        ``read()`` takes from that queue. The thread lingers :attr:`linger` seconds after a small
        batch, so that records accumulate instead of the kernel waking it for each."""
        st = self._open()
        if not st.pumped:
            st.start_pump(self.linger)
        dt = self.dtype()
        if st.queued < max:
            st.fill(0, max)  # what the kernel buffer holds right now, without waiting for the pump
        if st.queued == 0 and timeout != 0:
            st.wait(timeout)
        n, raw = st.take_packed(max, dt.itemsize)
        return raw.view(dt)[:n] if n else raw[:0].view(dt)

    def batches(self, max: int = 4096, timeout: int = 100) -> Iterator[Any]:
        """Yields non-empty batches (see :meth:`read`) until the object is closed."""
        while not self.bpf.closed:
            batch = self.read(max, timeout)
            if len(batch):
                yield batch

    async def aread(self, max: int = 4096) -> Any:
        """Awaits the next non-empty batch without blocking the event loop."""
        import asyncio

        st = self._open()
        while True:
            batch = self.read(max, 0)
            if len(batch):
                return batch
            loop = asyncio.get_running_loop()
            ready = loop.create_future()
            fd = st.fileno()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def __aiter__(self) -> Any:
        return self._agen()

    async def _agen(self) -> Any:
        while not self.bpf.closed:
            yield await self.aread()

    def _start_callbacks(self, callback: Callable, ctx: Any, pump: bool) -> None:
        self._callback, self._ctx = callback, ctx
        st = self._open()
        # A native thread drains the kernel buffer; the poll calls run the callbacks from the
        # queue it fills. Slow callbacks then delay delivery instead of losing records. Without
        # it (pump=False), records are read from the kernel only during the poll calls, as in BCC.
        if pump:
            st.start_pump(self.linger)

    def _dispatch(self) -> int:
        if self._callback is None or self._stream is None:
            return 0
        return self._stream.dispatch(self._callback, self._ctx)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} size={self.max_entries}>"


class RingBuf(_EventTable):
    """``BPF_MAP_TYPE_RINGBUF`` (kernel 5.8+). ``open_ring_buffer(cb)`` then
    ``b.ring_buffer_poll()``: ``cb(ctx, data, size)`` as in BCC, ``table.event(data)`` decodes
    ``data`` with the record type from the program's BTF. Or ``read()`` batches as numpy."""

    _kind = "ring"

    def open_ring_buffer(self, callback: Callable[[Any, int, int], Any], ctx: Any = None,
                         record: Any = None, pump: bool = True) -> None:
        """Calls ``callback(ctx, data, size)`` for each record from ``b.ring_buffer_poll()``.
        ``pump=False`` reads the kernel buffer only inside the poll calls (BCC's behaviour)."""
        if record is not None:
            self.set_record(record)
        self._start_callbacks(callback, ctx, pump)


RingBufTable = RingBuf


class PerfEventArray(_EventTable):
    """``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` (kernel 4.3+) read as a perf buffer (one ring per CPU).
    ``open_perf_buffer(cb, page_cnt=, lost_cb=)`` then ``b.perf_buffer_poll()``; ``cb(cpu, data,
    size)`` as in BCC. Dropped samples reach ``lost_cb(count)`` and the running total ``lost``."""

    _kind = "perf"

    def __init__(self, bpf: Any, native_map: Any) -> None:
        super().__init__(bpf, native_map)
        self._lost_cb: Optional[Callable[[int], Any]] = None
        self._lost_seen = 0
        self._page_cnt = 8

    def open_perf_buffer(self, callback: Callable[[int, int, int], Any], page_cnt: int = 8,
                         lost_cb: Optional[Callable[[int], Any]] = None, wakeup_events: int = 1,
                         record: Any = None, pump: bool = True) -> None:
        """Calls ``callback(cpu, data, size)`` per sample from ``b.perf_buffer_poll()``.
        ``wakeup_events``: the kernel wakes the reader every that many samples per CPU (fewer
        wake-ups cost the producing CPU less; the pump still reads at least every 100 ms).
        ``pump=False`` reads the kernel buffers only inside the poll calls (BCC's behaviour)."""
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise ValueError(f"page_cnt must be a power of two, got {page_cnt}")
        if record is not None:
            self.set_record(record)
        self._page_cnt = page_cnt
        self._wakeup_events = max(1, int(wakeup_events))
        self._lost_cb = lost_cb
        self._start_callbacks(callback, None, pump)

    def _dispatch(self) -> int:
        n = super()._dispatch()
        if self._stream is not None and self._lost_cb is not None:
            lost = self._stream.lost
            if lost > self._lost_seen:
                delta, self._lost_seen = lost - self._lost_seen, lost
                self._lost_cb(delta)
        return n


class LpmTrie(HashTable):
    """``BPF_MAP_TYPE_LPM_TRIE`` (kernel 4.11+): keys are ``{u32 prefixlen; data}`` structs;
    a lookup finds the longest matching prefix."""


class StackTrace(Table):
    """``BPF_MAP_TYPE_STACK_TRACE`` (kernel 4.6+): ``walk(stack_id)`` yields a stack's addresses,
    innermost first, as BCC's does; symbolize them with ``b.ksym()`` / ``b.sym()``."""

    def walk(self, stack_id: int) -> Iterator[int]:
        """The addresses of stack ``stack_id`` (from ``bpf_get_stackid``)."""
        if stack_id < 0:
            return
        raw = self._m.lookup(self._key(stack_id))
        if raw is None:
            raise KeyError(stack_id)
        n = len(raw) // 8
        for addr in (int.from_bytes(raw[i * 8:(i + 1) * 8], "little") for i in range(n)):
            if addr == 0:
                break
            yield addr


class ProgArray(Table):
    """``BPF_MAP_TYPE_PROG_ARRAY`` (kernel 4.2+), for tail calls: ``table[i] = "prog_name"``
    (a program of the same object) or a program fd; reading gives the program's kernel id."""

    def __setitem__(self, key: Any, prog: Any) -> None:
        if isinstance(prog, str):
            fds = {p[0]: p[3] for p in self.bpf._obj.programs()}
            if prog not in fds or fds[prog] < 0:
                raise KeyError(f"no loaded program named `{prog}`")
            prog = fds[prog]
        self._m.update(self._key(key), int(prog).to_bytes(4, "little"), BPF_ANY)

    def _decode_leaf(self, b: bytes) -> Any:
        return ct.c_uint32(int.from_bytes(b[:4], "little"))


class MapInMap(Table):
    """``BPF_MAP_TYPE_ARRAY_OF_MAPS`` / ``HASH_OF_MAPS`` (kernel 4.12+): ``table[k]`` is the inner
    map as a table of its own; ``table[k] = other_table`` installs an inner map."""

    def __getitem__(self, key: Any) -> Any:
        raw = self._m.lookup(self._key(key))
        if raw is None:
            raise KeyError(key)
        from . import _native

        inner = _native.open_map_id(int.from_bytes(raw[:4], "little"))
        return make_table(self.bpf, inner)

    def __setitem__(self, key: Any, table: Any) -> None:
        fd = table.fd if hasattr(table, "fd") else int(table)
        self._m.update(self._key(key), int(fd).to_bytes(4, "little"), BPF_ANY)

    def items(self) -> list:  # type: ignore[override]
        return [(k, self[k]) for k in self.keys()]


class _ValueOnly:
    """Maps with values and no keys (queue, stack, bloom filter)."""

    def __init__(self, bpf: Any, native_map: Any) -> None:
        self.bpf, self._m = bpf, native_map
        self.name, self.map_type, self.max_entries = native_map.name, native_map.map_type, native_map.max_entries
        vdesc = native_map.value_desc()
        if vdesc["kind"] == "void":
            vdesc = _plain_int_desc(native_map.value_size)
        self.leaf_desc = vdesc
        self.Leaf = _btftypes.ctype_of(vdesc)

    def pin(self, path: str) -> None:
        """Pins the map (see :meth:`Table.pin`)."""
        self._m.pin(str(path))


class QueueStack(_ValueOnly):
    """``BPF_MAP_TYPE_QUEUE`` / ``STACK`` (kernel 4.20+): ``push(v)``, ``pop()``, ``peek()``."""

    def push(self, value: Any, flags: int = 0) -> None:
        """Adds ``value`` (``flags=BPF_EXIST`` (2) overwrites the oldest when full)."""
        self._m.push(Table._to_bytes(self.Leaf, value, "value", self.name), flags)

    def pop(self) -> Any:
        """Removes and returns the next value; KeyError when empty."""
        raw = self._m.pop()
        if raw is None:
            raise KeyError("pop from an empty " + ("queue" if self.map_type == 22 else "stack"))
        return self.Leaf.from_buffer_copy(raw)

    def peek(self) -> Any:
        """The next value without removing it; KeyError when empty."""
        raw = self._m.peek()
        if raw is None:
            raise KeyError("peek at an empty " + ("queue" if self.map_type == 22 else "stack"))
        return self.Leaf.from_buffer_copy(raw)

    def values(self) -> list:
        """Pops every value, in order."""
        out = []
        while (raw := self._m.pop()) is not None:
            out.append(self.Leaf.from_buffer_copy(raw))
        return out

    itervalues = values


class BloomFilter(_ValueOnly):
    """``BPF_MAP_TYPE_BLOOM_FILTER`` (kernel 5.16+): ``push(v)`` adds; ``v in f`` is False only
    when ``v`` was certainly never added."""

    def push(self, value: Any) -> None:
        self._m.push(Table._to_bytes(self.Leaf, value, "value", self.name), 0)

    def __contains__(self, value: Any) -> bool:
        return self._m.bloom_contains(Table._to_bytes(self.Leaf, value, "value", self.name))


def _stars(val: int, val_max: int, width: int) -> str:
    if val_max <= 0:
        return ""
    n = min(width, int(width * val / val_max)) if val <= val_max else width
    text = "*" * n
    if val > val_max:
        text = text[:-1] + "+"
    return text


def _print_one_log2(vals: dict, val_type: str, strip_leading_zero: Optional[bool]) -> None:
    if not vals:
        return
    idx_max = max((i for i, v in vals.items() if v > 0), default=-1)
    val_max = max(vals.values(), default=0)
    if idx_max <= 32:
        header, fmt, width = f"     {val_type:<19} : count     distribution", "{:>10} -> {:<10} : {:<8} |{:<40}|", 40
    else:
        header, fmt, width = f"               {val_type:<29} : count     distribution", "{:>20} -> {:<20} : {:<8} |{:<20}|", 20
    if idx_max > 0:
        print(header)
    strip = bool(strip_leading_zero)
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        v = vals.get(i, 0)
        if strip and not v:
            continue
        strip = False
        print(fmt.format(low, high, v, _stars(v, val_max, width)))


def _sections(hists: dict, bucket_sort_fn: Optional[Callable]) -> list:
    sections = list(hists)
    if bucket_sort_fn:
        return list(bucket_sort_fn(sections))
    return sorted(sections, key=lambda s: (str(type(s)), s))


def _print_one_linear(vals: dict, val_type: str, strip_leading_zero: Optional[bool] = None) -> None:
    idx_max = max((i for i, v in vals.items() if v > 0), default=-1)
    val_max = max(vals.values(), default=0)
    if idx_max >= 0:
        print(f"     {val_type:<13} : count     distribution")
    strip = bool(strip_leading_zero)
    for i in range(0, idx_max + 1):
        v = vals.get(i, 0)
        if strip and not v:
            continue
        strip = False
        print("        {:<10} : {:<8} |{:<40}|".format(i, v, _stars(v, val_max, 40)))


def print_linear_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                      section_print_fn: Optional[Callable[[Any], str]] = None,
                      bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None) -> None:
    """Prints ``{section: {value: count}}`` as linear histograms in BCC's format."""
    if list(hists) == [None]:
        _print_one_linear(hists[None], val_type, strip_leading_zero)
        return
    for s in _sections(hists, bucket_sort_fn):
        print(f"\n{section_header} = {section_print_fn(s) if section_print_fn else s}")
        _print_one_linear(hists[s], val_type, strip_leading_zero)


def _json_one(vals: dict, val_type: str, section: Optional[tuple]) -> dict:
    top = max((i for i, v in vals.items() if v), default=0)
    data = []
    for i in range(1, top + 1):
        data.append({"interval-start": (1 << i) >> 1 if i > 1 else 0, "interval-end": (1 << i) - 1,
                     "count": int(vals.get(i, 0))})
    h: dict = {"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": data}
    if section is not None:
        h[section[0]] = section[1]
    return h


def print_json_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    bucket_sort_fn: Optional[Callable] = None) -> None:
    """Prints ``{section: {slot: count}}`` as BCC's print_json_hist does: one dict per section."""
    if list(hists) == [None]:
        print(_json_one(hists[None], val_type, None))
        return
    for s in _sections(hists, bucket_sort_fn):
        print(_json_one(hists[s], val_type, (section_header, section_print_fn(s) if section_print_fn else s)))


def log2_buckets(vals: dict) -> Any:
    """``{slot: count}`` as a numpy structured array of ``(low, high, count)``, slots 1..max."""
    import numpy as np

    top = max((i for i, v in vals.items() if v), default=0)
    out = np.zeros(top, dtype=[("low", np.uint64), ("high", np.uint64), ("count", np.uint64)])
    for i in range(1, top + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        out[i - 1] = (low - 1 if low == high else low, high, vals.get(i, 0))
    return out


def print_log2_hist(hists: dict, val_type: str = "value", section_header: str = "Bucket ptr",
                    section_print_fn: Optional[Callable[[Any], str]] = None,
                    strip_leading_zero: Optional[bool] = None, bucket_sort_fn: Optional[Callable] = None) -> None:
    """Prints ``{section: {slot: count}}`` (section None for a single histogram) in BCC's format."""
    if list(hists) == [None]:
        _print_one_log2(hists[None], val_type, strip_leading_zero)
        return
    for s in _sections(hists, bucket_sort_fn):
        label = section_print_fn(s) if section_print_fn else s
        print(f"\n{section_header} = {label}")
        _print_one_log2(hists[s], val_type, strip_leading_zero)


_BY_TYPE = {
    1: HashTable,
    2: ArrayTable,
    3: ProgArray,
    5: PerCpuHash,
    6: PerCpuArray,
    7: StackTrace,
    9: LruHash,
    10: LruPerCpuHash,
    11: LpmTrie,
    12: MapInMap,
    13: MapInMap,
    22: QueueStack,
    23: QueueStack,
    30: BloomFilter,
}


def make_table(bpf: Any, native_map: Any, keytype: Any = None, leaftype: Any = None) -> Any:
    """The wrapper class for a native map, by its type."""
    t = native_map.map_type
    if t == 27:
        return RingBuf(bpf, native_map)
    if t == 4:
        return PerfEventArray(bpf, native_map)
    cls = _BY_TYPE.get(t, HashTable)
    if cls in (QueueStack, BloomFilter):
        return cls(bpf, native_map)
    return cls(bpf, native_map, keytype, leaftype)


def open_pinned(path: str) -> Any:
    """The map pinned at ``path`` as a table, typed from its BTF when the kernel has it."""
    from . import _native

    return make_table(None, _native.open_pinned_map(str(path)))
