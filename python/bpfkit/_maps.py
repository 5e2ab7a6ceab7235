"""Map classes: a kernel map as a Python mapping (or queue, stack, bloom filter), typed from BTF."""

from __future__ import annotations

import ctypes as ct
import errno
import operator

# collections.abc is this module re-exported; importing the collections package would cost
# every tool's start ~3 ms, and os has already imported this one.
from _collections_abc import MutableMapping

from . import _btftypes, _hist, _native
from ._errors import MapError
from ._streams import PerfEventArray, RingBuf
from ._values import checked_int, columns, plain_int_desc, round8, to_bytes

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Callable, Mapping, Optional, Union

__all__ = [
    "Table",
    "HashTable",
    "LruHash",
    "ArrayTable",
    "PerCpuHash",
    "PerCpuArray",
    "LruPerCpuHash",
    "LpmTrie",
    "StackTrace",
    "ProgArray",
    "MapInMap",
    "QueueStack",
    "BloomFilter",
    "make_table",
    "open_pinned",
    "BPF_MAP_TYPE",
    "BPF_ANY",
    "BPF_NOEXIST",
    "BPF_EXIST",
]

#: ``BPF_MAP_TYPE_*`` numbers by lower-case name (``"hash"``, ``"ringbuf"``, ...), from the core's
#: typed table (``bpfkit._native.map_types()``), the one place the numbers live.
BPF_MAP_TYPE = {name.lower(): num for num, name, _since in _native.map_types()}

BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
BPF_F_MMAPABLE = 1 << 10


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
            kdesc = plain_int_desc(native_map.key_size)
        if vdesc["kind"] == "void" and native_map.value_size:
            vdesc = plain_int_desc(native_map.value_size)
        self.key_desc, self.leaf_desc = kdesc, vdesc
        self.Key = keytype or (_btftypes.ctype_of(kdesc) if native_map.key_size else None)
        self.Leaf = leaftype or (_btftypes.ctype_of(vdesc) if native_map.value_size else None)
        for what, t, size in (("key", self.Key, native_map.key_size), ("value", self.Leaf, native_map.value_size)):
            if t is not None and ct.sizeof(t) != size:
                raise TypeError(f"{what} type {t.__name__} is {ct.sizeof(t)} bytes; "
                                f"map `{self.name}` has {size}-byte {what}s")

    # -- conversions -------------------------------------------------------------------------
    def _key(self, k: Any) -> bytes:
        return to_bytes(self.Key, k, "key", f"map `{self.name}`")

    def _leaf(self, v: Any) -> bytes:
        return to_bytes(self.Leaf, v, "value", f"map `{self.name}`")

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
        n, kb, vb = self._m.snapshot_bytes()
        ks, vs = self._m.key_size, self._m.value_buf_size
        return [(self._decode_key(kb[i * ks:(i + 1) * ks]), self._decode_leaf(vb[i * vs:(i + 1) * vs]))
                for i in range(n)]

    def values(self) -> list:  # type: ignore[override]
        """Every value, as a list."""
        return [v for _, v in self.items()]

    def clear(self) -> None:
        """Deletes every entry."""
        self._m.clear()

    def zero(self) -> None:
        """Sets every existing value to zero. A key deleted since the walk began (or evicted, in
        an LRU map) is skipped, not created again."""
        z = bytes(self._m.value_buf_size)
        for k in self._m.keys():
            try:
                self._m.update(k, z, BPF_EXIST)
            except MapError as e:
                if e.errno != errno.ENOENT:
                    raise

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

    def get_fd(self) -> int:
        """The map's file descriptor (BCC's name for :attr:`fd`)."""
        return self._m.fd

    @property
    def map_fd(self) -> int:
        """The map's file descriptor (BCC's attribute name, as in
        ``b.attach_func(fn, b["sock_map"].map_fd, BPFAttachType.SK_MSG_VERDICT)``)."""
        return self._m.fd

    # -- BCC's batch calls -----------------------------------------------------------------------
    def items_lookup_batch(self) -> Iterator[tuple]:
        """Every ``(key, value)``, read with the kernel's batch lookup (BCC's name; what
        :meth:`items` reads). A snapshot: entries the program adds later are not in it.

        >>> for k, v in b["counts"].items_lookup_batch():
        ...     print(k.value, v.value)
        """
        return iter(self.items())

    def items_lookup_and_delete_batch(self) -> Iterator[tuple]:
        """Every ``(key, value)``, each deleted from the map as it is read (BCC's name).

        bpfkit's core has no ``BPF_MAP_LOOKUP_AND_DELETE_BATCH`` yet: the entries are read in one
        batch lookup, then deleted key by key; all are deleted before this returns. An update the
        program makes to an entry between the read and its delete is lost (in the kernel's batch
        call too, the window is per bucket rather than per map)."""
        n, kb, vb = self._m.snapshot_bytes()
        ks, vs = self._m.key_size, self._m.value_buf_size
        out = []
        for i in range(n):
            raw = kb[i * ks:(i + 1) * ks]
            self._m.delete(raw)
            out.append((self._decode_key(raw), self._decode_leaf(vb[i * vs:(i + 1) * vs])))
        return iter(out)

    def items_delete_batch(self, ct_keys: Any = None) -> None:
        """Deletes the keys ``ct_keys`` (a ctypes array of :attr:`Key`, or any iterable of keys),
        or every key when None (BCC's name). A key the map lacks raises ``KeyError`` (the keys
        before it are deleted). Done key by key: bpfkit's core has no batch delete yet."""
        if ct_keys is None:
            self.clear()
            return
        for k in ct_keys:
            del self[k]

    def items_update_batch(self, ct_keys: Any, ct_values: Any) -> None:
        """Writes ``ct_values[i]`` at ``ct_keys[i]`` for each ``i`` (ctypes arrays of :attr:`Key`
        and :attr:`Leaf`, as BCC takes them, or any sequences of keys and values). The lengths
        must be equal (``ValueError``, before anything is written). Done key by key: bpfkit's
        core has no batch update yet."""
        keys, values = list(ct_keys), list(ct_values)
        if len(keys) != len(values):
            raise ValueError(f"items_update_batch() got {len(keys)} keys and {len(values)} values")
        packed = [(self._key(k), self._leaf(v)) for k, v in zip(keys, values)]
        for k, v in packed:
            self._m.update(k, v, BPF_ANY)

    # -- BCC's text notation ---------------------------------------------------------------------
    def key_sprintf(self, key: Any) -> bytes:
        """``key`` as text in BCC's notation (``b"0x2"``, ``b"{ 0x1 \\"comm\\" }"``): see
        :mod:`bpfkit._sprintf`."""
        from ._sprintf import sprintf

        return sprintf(self.Key, self._decode_key(self._key(key)))

    def leaf_sprintf(self, leaf: Any) -> bytes:
        """``leaf`` (a value) as text in BCC's notation (``b"{ [ 0x1 0x2 0x3 ] 0x4 }"``)."""
        from ._sprintf import sprintf

        return sprintf(self.Leaf, Table._decode_leaf(self, Table._leaf(self, leaf)))

    def key_scanf(self, key_str: Any) -> Any:
        """The :attr:`Key` that ``key_str`` (BCC's notation, bytes or str) describes."""
        from ._sprintf import scanf

        return scanf(self.Key, key_str)

    def leaf_scanf(self, leaf_str: Any) -> Any:
        """The :attr:`Leaf` that ``leaf_str`` (BCC's notation, bytes or str) describes."""
        from ._sprintf import scanf

        return scanf(self.Leaf, leaf_str)

    def pin(self, path: str) -> None:
        """Pins the map on a bpffs (``/sys/fs/bpf/...``, mounted if needed); reopen it with
        ``bpfkit.open_pinned(path)``, from this process or another. The pin stays until the file
        is removed."""
        self._m.pin(str(path))

    def to_pandas(self, *, percpu: str = "wide",
                  decode: Optional[Mapping[str, Union[str, Callable[[Any], Any]]]] = None) -> Any:
        """The map as a pandas DataFrame (needs pandas), one row per entry: a column per key and
        value field, named ``key`` / ``value`` for scalars and ``key.field`` / ``value.field``
        (``value.field.sub`` for a nested struct) otherwise. ``char[]`` fields are ``str``
        columns (the text up to the first NUL, UTF-8 with replacement characters, as
        ``event().str()`` gives); other array fields are columns of numpy arrays. An array map
        has no key column: the DataFrame's index is the key.

        Per-CPU maps: ``percpu="wide"`` (the default) gives one column per possible CPU,
        ``value_cpu0``, ``value_cpu1``... (``value.field_cpu0``... for a struct);
        ``percpu="long"`` gives one row per entry and CPU, with a ``cpu`` column (and, for a
        per-CPU array, a ``key`` column)::

            df = b["counts"].to_pandas(percpu="long")
            df.groupby("key")["value"].sum()

        ``decode`` turns numbers into names: ``{column: decoder}``, where a column is named as
        above (``"key.pid"``, ``"value"``; a per-CPU column without its ``_cpuN``, for all
        CPUs), or by a bare field name that ends one column's name (``"pid"``), or ``"key"`` for
        an array's index; a decoder is ``"comm"`` (a pid as its process's command from
        ``/proc/PID/comm``, ``"[exited]"`` once it is gone), ``"ksym"`` (a kernel address as its
        symbol), ``"errno"`` (``-2`` or ``2`` as ``"ENOENT"``), ``"syscall"`` (a system call
        number as its name), or any callable, applied to each value (to each element of an array
        field). A decoded column replaces the numbers in place, under the same name: to keep
        both, call ``to_pandas()`` twice or map the column yourself::

            b["calls"].to_pandas(decode={"pid": "comm", "value.ret": "errno"})
        """
        from ._frames import decode_columns, need

        pd = need("pandas", "to_pandas()")
        import numpy as np

        if percpu not in ("wide", "long"):
            raise ValueError(f"percpu is 'wide' or 'long', not {percpu!r}")
        keys, values = self.to_numpy() if not isinstance(self, ArrayTable) else (None, self.to_numpy())
        ncpu = values.shape[1] if isinstance(self, _PerCpu) else 0
        long = bool(ncpu) and percpu == "long"
        cpus = None
        if long:
            n = len(values)
            keys = np.repeat(keys if keys is not None else np.arange(n, dtype=self.key_dtype()), ncpu)
            values, cpus = values.reshape(n * ncpu), np.tile(np.arange(ncpu), n)
        cols: dict = dict(columns("key", keys)) if keys is not None else {}
        if cpus is not None:
            cols["cpu"] = cpus
        for name, col in columns("value", values):
            if ncpu and not long:
                for c in range(ncpu):
                    cols[f"{name}_cpu{c}"] = col[:, c]
            else:
                cols[name] = col
        df = pd.DataFrame({k: list(c) if c.ndim > 1 else c for k, c in cols.items()})
        if decode:
            decode_columns(df, decode, index_name="key" if isinstance(self, ArrayTable) and not long else None)
        return df

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

    def _repr_html_(self) -> str:
        """The map in a notebook: its type, key and value types, how full it is and its first
        rows (see :func:`bpfkit._html.table_html`)."""
        from ._html import table_html

        return table_html(self)

    # -- histograms --------------------------------------------------------------------------
    def print_log2_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                        section_print_fn: Optional[Callable[[Any], str]] = None,
                        bucket_fn: Optional[Callable[[Any], Any]] = None,
                        strip_leading_zero: Optional[bool] = None, bucket_sort_fn: Optional[Callable] = None,
                        *, file: Any = None) -> None:
        """Prints the map as a power-of-two histogram, as BCC does (to ``file``, else stdout). Keys are slots (from
        ``bpf_log2l``), or structs whose first field is a section (e.g. a disk) and whose
        ``slot`` field is the slot; one histogram per section. Slots are 0..64: counts at other
        keys are left out of the rows, and a last line says how many and where."""
        _hist.print_log2_hist(_hist.collect(self.items(), bucket_fn), val_type, section_header,
                              section_print_fn, strip_leading_zero, bucket_sort_fn, file=file)

    def print_linear_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                          section_print_fn: Optional[Callable[[Any], str]] = None,
                          bucket_fn: Optional[Callable[[Any], Any]] = None,
                          strip_leading_zero: Optional[bool] = None,
                          bucket_sort_fn: Optional[Callable] = None, *,
                          max_rows: int = _hist.LINEAR_MAX_ROWS, file: Any = None) -> None:
        """Prints the map as a linear histogram (one row per key value), as BCC does; at most
        ``max_rows`` rows (see :func:`bpfkit.table.print_linear_hist` for what is cut)."""
        _hist.print_linear_hist(_hist.collect(self.items(), bucket_fn), val_type, section_header,
                                section_print_fn, bucket_sort_fn, strip_leading_zero, max_rows=max_rows, file=file)

    def print_json_hist(self, val_type: str = "value", section_header: str = "Bucket ptr",
                        section_print_fn: Optional[Callable[[Any], str]] = None,
                        bucket_fn: Optional[Callable[[Any], Any]] = None,
                        bucket_sort_fn: Optional[Callable] = None, *, file: Any = None) -> None:
        """Prints the map as a power-of-two histogram in BCC's JSON-like form (one dict per
        section, with ``ts``, ``val_type`` and ``data``)."""
        _hist.print_json_hist(_hist.collect(self.items(), bucket_fn), val_type, section_header,
                              section_print_fn, bucket_sort_fn, file=file)

    def log2_buckets(self, bucket_fn: Optional[Callable[[Any], Any]] = None) -> Any:
        """The power-of-two histogram as numpy: a structured array of ``(low, high, count)`` per
        slot from 1 to the highest used (BCC's slot numbering: slot n holds [2^(n-1), 2^n - 1]),
        or, for a sectioned map, a dict of such arrays by section. A key outside slots 0..64 with a
        count raises ``ValueError`` naming the slot."""
        hists = _hist.collect(self.items(), bucket_fn)
        out = {k: _hist.log2_buckets(v) for k, v in hists.items()}
        return out.get(None, _hist.log2_buckets({})) if list(out) in ([], [None]) else out

    def hist_frame(self, kind: str = "log2", *, section_print_fn: Optional[Callable[[Any], str]] = None,
                   bucket_fn: Optional[Callable[[Any], Any]] = None, bucket_sort_fn: Optional[Callable] = None,
                   strip_leading_zero: Optional[bool] = None) -> Any:
        """The histogram's buckets as a pandas DataFrame (needs pandas), the map read as
        :meth:`print_log2_hist` (``kind="log2"``) or :meth:`print_linear_hist` (``"linear"``)
        reads it: columns ``low``, ``high``, ``count`` per log2 slot from 1 (``0 -> 1``) to the
        highest used, or ``value``, ``count`` per linear value from 0 to the highest used;
        first a ``section`` column (``section_print_fn``'s label) when keys are structs with a
        section, every section with the same buckets. A count that is in no bucket (a key that
        is not a log2 slot, a negative linear value) raises ``ValueError``.

        >>> b["dist"].hist_frame()
           low  high  count
        0    0     1      2
        1    2     3      0
        2    4     7      1
        """
        from ._frames import hist_frame

        return hist_frame(_hist.collect(self.items(), bucket_fn), linear=_linear(kind),
                          section_print_fn=section_print_fn, bucket_sort_fn=bucket_sort_fn,
                          strip_leading_zero=strip_leading_zero)

    def plot(self, kind: str = "log2", *, val_type: str = "value", section_header: str = "Bucket ptr",
             section_print_fn: Optional[Callable[[Any], str]] = None, bucket_fn: Optional[Callable[[Any], Any]] = None,
             bucket_sort_fn: Optional[Callable] = None, strip_leading_zero: Optional[bool] = None,
             title: Optional[str] = None, figsize: Optional[tuple] = None, color: Optional[str] = None) -> Any:
        """The histogram drawn as a matplotlib ``Figure`` (needs matplotlib): the buckets of
        :meth:`hist_frame` as bars, log2 ones labelled ``0 -> 1``, ``2 -> 3``, ``4 -> 7``...,
        linear ones by value, ``val_type`` under them and ``count`` beside; one panel per
        section, titled ``section_header = label`` as :meth:`print_log2_hist` heads sections.
        Counts that are in no bucket are said in a note on the panel. The figure is built with
        matplotlib's object API (no pyplot), so a notebook shows it inline and ``.savefig()``
        works with any backend::

            fig = b["dist"].plot(val_type="usecs", title="read latency")
            fig.savefig("latency.png")
        """
        from ._frames import hist_figure

        return hist_figure(_hist.collect(self.items(), bucket_fn), linear=_linear(kind), val_type=val_type,
                           section_header=section_header, section_print_fn=section_print_fn,
                           bucket_sort_fn=bucket_sort_fn, strip_leading_zero=strip_leading_zero,
                           title=title, figsize=figsize, color=color)


def _linear(kind: str) -> bool:
    if kind not in ("log2", "linear"):
        raise ValueError(f"kind is 'log2' or 'linear', not {kind!r}")
    return kind == "linear"


class HashTable(Table):
    """``BPF_MAP_TYPE_HASH`` (kernel 3.19+)."""


class LruHash(HashTable):
    """``BPF_MAP_TYPE_LRU_HASH`` (kernel 4.10+): the least recently used entry is evicted when full."""


def _array_index(t: Any, key: Any) -> int:
    """``key`` as an index of ``t``, a map whose keys are ``0..max_entries-1`` (an array, a prog
    array, an array of maps); negative indexes count from the end. An index out of range raises
    ``IndexError`` naming it and the size, before the kernel is asked (whose E2BIG would read as
    "map is full")."""
    if isinstance(key, ct._SimpleCData):
        key = key.value
    if isinstance(key, (bytes, bytearray, memoryview)):
        i = int.from_bytes(to_bytes(t.Key, key, "key", f"map `{t.name}`"), "little")
    elif isinstance(key, bool) or not hasattr(key, "__index__"):
        raise TypeError(f"array `{t.name}` is indexed by int, not {type(key).__name__}")
    else:
        i = operator.index(key)
        if i < 0:
            i += t.max_entries
    if not 0 <= i < t.max_entries:
        raise IndexError(f"index {key!r} is out of range for `{t.name}`, an array of {t.max_entries} entries")
    return i


class _Indexed(Table):
    """A map whose keys are the indexes ``0..max_entries-1`` (see :func:`_array_index`)."""

    def _index(self, key: Any) -> int:
        return _array_index(self, key)

    def _key(self, k: Any) -> bytes:
        return to_bytes(self.Key, _array_index(self, k), "key", f"map `{self.name}`")


class ArrayTable(_Indexed):
    """``BPF_MAP_TYPE_ARRAY`` (kernel 3.19+): keys ``0..max_entries-1``, all present; negative
    indexes count from the end; ``del`` zeroes."""

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
        return self.map_type == BPF_MAP_TYPE["array"] and bool(self.flags & BPF_F_MMAPABLE)

    def to_numpy(self) -> Any:
        """The values as one numpy array, indexed by key (an array's keys are its indexes).

        For a ``BPF_F_MMAPABLE`` array this is a zero-copy live view of the map's memory, in
        constant time whatever the size (the memory is mapped when the object loads): a kernel
        update shows up without re-reading, and a write through numpy is seen by the program.
        After ``close()`` the view stays valid memory but reads
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
        stride = round8(self._m.value_size)
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
        stride = round8(self._m.value_size)
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
            b = to_bytes(self.Leaf, x, "value", f"map `{self._m.name}`")  # type: ignore[attr-defined]
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


class ProgArray(_Indexed):
    """``BPF_MAP_TYPE_PROG_ARRAY`` (kernel 4.2+), for tail calls: ``table[i] = "prog_name"``
    (a program of the same object) or a program fd; reading gives the program's kernel id.
    An index outside ``0..max_entries-1`` raises ``IndexError``."""

    def __setitem__(self, key: Any, prog: Any) -> None:
        k = self._key(key)
        if isinstance(prog, str):
            fds = {p.name: p.fd for p in self.bpf._obj.programs()}
            if prog not in fds or fds[prog] < 0:
                raise KeyError(f"no loaded program named `{prog}`")
            prog = fds[prog]
        self._m.update(k, _fd_bytes(prog, f"the program fd for `{self.name}`[{key!r}]"), BPF_ANY)

    def _decode_leaf(self, b: bytes) -> Any:
        return ct.c_uint32(int.from_bytes(b[:4], "little"))


def _fd_bytes(fd: Any, place: str) -> bytes:
    if isinstance(fd, bool) or not hasattr(fd, "__index__"):
        raise TypeError(f"{place} must be an int, not {type(fd).__name__}")
    return int(checked_int(ct.c_uint32, fd, place)).to_bytes(4, "little")


class MapInMap(Table):
    """``BPF_MAP_TYPE_ARRAY_OF_MAPS`` / ``HASH_OF_MAPS`` (kernel 4.12+): ``table[k]`` is the inner
    map as a table of its own; ``table[k] = other_table`` installs an inner map. An array of
    maps takes indexes ``0..max_entries-1`` (``IndexError`` otherwise)."""

    def _key(self, k: Any) -> bytes:
        if self.map_type == BPF_MAP_TYPE["array_of_maps"]:
            k = _array_index(self, k)
        return super()._key(k)

    def __getitem__(self, key: Any) -> Any:
        raw = self._m.lookup(self._key(key))
        if raw is None:
            raise KeyError(key)
        from . import _native

        inner = _native.open_map_id(int.from_bytes(raw[:4], "little"))
        return make_table(self.bpf, inner)

    def __setitem__(self, key: Any, table: Any) -> None:
        k = self._key(key)
        fd = table.fd if hasattr(table, "fd") else table
        self._m.update(k, _fd_bytes(fd, f"the map fd for `{self.name}`[{key!r}]"), BPF_ANY)

    def items(self) -> list:  # type: ignore[override]
        """Every ``(key, inner table)``; keys removed since the walk began are skipped."""
        out = []
        for k in self.keys():
            try:
                out.append((k, self[k]))
            except KeyError:
                continue
        return out


class _ValueOnly:
    """Maps with values and no keys (queue, stack, bloom filter)."""

    def __init__(self, bpf: Any, native_map: Any) -> None:
        self.bpf, self._m = bpf, native_map
        self.name, self.map_type, self.max_entries = native_map.name, native_map.map_type, native_map.max_entries
        vdesc = native_map.value_desc()
        if vdesc["kind"] == "void":
            vdesc = plain_int_desc(native_map.value_size)
        self.leaf_desc = vdesc
        self.Leaf = _btftypes.ctype_of(vdesc)

    def pin(self, path: str) -> None:
        """Pins the map (see :meth:`Table.pin`)."""
        self._m.pin(str(path))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} max_entries={self.max_entries}>"

    def _repr_html_(self) -> str:
        """The map in a notebook: its type, value type and size (and a queue's next value)."""
        from ._html import table_html

        return table_html(self)


class QueueStack(_ValueOnly):
    """``BPF_MAP_TYPE_QUEUE`` / ``STACK`` (kernel 4.20+): ``push(v)``, ``pop()``, ``peek()``."""

    def push(self, value: Any, flags: int = 0) -> None:
        """Adds ``value`` (``flags=BPF_EXIST`` (2) overwrites the oldest when full)."""
        self._m.push(to_bytes(self.Leaf, value, "value", f"map `{self.name}`"), flags)

    def pop(self) -> Any:
        """Removes and returns the next value; KeyError when empty."""
        raw = self._m.pop()
        if raw is None:
            raise KeyError("pop from an empty " + ("queue" if self.map_type == BPF_MAP_TYPE["queue"] else "stack"))
        return self.Leaf.from_buffer_copy(raw)

    def peek(self) -> Any:
        """The next value without removing it; KeyError when empty."""
        raw = self._m.peek()
        if raw is None:
            raise KeyError("peek at an empty " + ("queue" if self.map_type == BPF_MAP_TYPE["queue"] else "stack"))
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
        self._m.push(to_bytes(self.Leaf, value, "value", f"map `{self.name}`"), 0)

    def __contains__(self, value: Any) -> bool:
        return self._m.bloom_contains(to_bytes(self.Leaf, value, "value", f"map `{self.name}`"))


_BY_TYPE = {BPF_MAP_TYPE[name]: cls for name, cls in (
    ("hash", HashTable), ("array", ArrayTable), ("prog_array", ProgArray), ("percpu_hash", PerCpuHash),
    ("percpu_array", PerCpuArray), ("stack_trace", StackTrace), ("lru_hash", LruHash),
    ("lru_percpu_hash", LruPerCpuHash), ("lpm_trie", LpmTrie), ("array_of_maps", MapInMap),
    ("hash_of_maps", MapInMap), ("queue", QueueStack), ("stack", QueueStack), ("bloom_filter", BloomFilter),
)}


def make_table(bpf: Any, native_map: Any, keytype: Any = None, leaftype: Any = None) -> Any:
    """The wrapper class for a native map, by its type."""
    t = native_map.map_type
    if t == BPF_MAP_TYPE["ringbuf"]:
        return RingBuf(bpf, native_map)
    if t == BPF_MAP_TYPE["perf_event_array"]:
        return PerfEventArray(bpf, native_map)
    cls = _BY_TYPE.get(t, HashTable)
    if cls in (QueueStack, BloomFilter):
        return cls(bpf, native_map)
    return cls(bpf, native_map, keytype, leaftype)


def open_pinned(path: str) -> Any:
    """The map pinned at ``path`` as a table, typed from its BTF when the kernel has it."""
    from . import _native

    return make_table(None, _native.open_pinned_map(str(path)))
