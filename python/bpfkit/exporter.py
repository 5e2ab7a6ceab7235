"""BPF maps as Prometheus metrics: the ``bpfkit exporter`` command and its Python API.

``bpfkit exporter --config FILE.yaml --listen [ADDR:]PORT`` compiles the programs a file in
ebpf_exporter's layout describes, against this host's kernel, and serves their maps on
``/metrics`` as counters, gauges and histograms (see :mod:`bpfkit._exporter_config` for the
file). From a script, a table becomes a metric family of a ``prometheus_client`` registry::

    from bpfkit import BPF
    from bpfkit.exporter import Label, counter, histogram, serve

    b = BPF(text=src)
    counter(b["calls"], "syscalls_total", "System calls by process",
            labels=[Label("pid", 4), Label("syscall", 4, ["syscall"])])
    histogram(b["dist"], "read_bytes", "Sizes of reads", labels=[Label("bucket", 4)],
              bucket_type="exp2", bucket_max=32)
    server = serve("127.0.0.1:9435")          # prometheus_client's WSGI app, in a thread

A :class:`TableMetric` is a ``prometheus_client`` custom collector: each scrape reads its map in
one batch lookup (``to_numpy()``'s path), decodes each distinct key part once, sums the entries
that decode to the same labels, and yields a ``CounterMetricFamily``, ``GaugeMetricFamily`` or
``HistogramMetricFamily``. prometheus_client formats the text and OpenMetrics forms and
chooses between them by the scrape's ``Accept`` header.

This module imports ``prometheus_client`` (and the file reader imports ``yaml``); ``import
bpfkit`` imports neither: ``pip install bpfkit[exporter]`` adds them.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from ._exporter_config import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from typing import Any, Callable, Optional, Union

    DecoderLike = Union[str, Mapping[str, Any], Callable[[Union[bytes, str]], Optional[str]]]

__all__ = [
    "Label",
    "TableMetric",
    "counter",
    "gauge",
    "histogram",
    "SelfMetrics",
    "MetricsServer",
    "serve",
    "parse_listen",
    "Exporter",
    "ConfigError",
    "DECODERS",
    "main",
]

#: The label decoders, by name (each described in :func:`make_decoder`).
DECODERS = ("uint", "int", "hex", "string", "ksym", "syscall", "errno", "comm", "cgroup", "inet_ip", "static_map",
            "regexp")

#: The prefix of the exporter's own metrics.
SELF_PREFIX = "bpfkit_exporter"


# -- addresses and the HTTP server -----------------------------------------------------------------

def parse_listen(text: str) -> tuple[str, int]:
    """``[ADDR:]PORT`` as ``(host, port)``: ``"9435"`` and ``":9435"`` listen on every
    interface (host ``""``), ``"127.0.0.1:9435"`` on one, ``"[::1]:9435"`` on an IPv6 address.
    Port 0 asks the kernel for a free port. ``ValueError`` names what is wrong.

    >>> parse_listen("127.0.0.1:9435"), parse_listen("9435"), parse_listen("[::1]:0")
    (('127.0.0.1', 9435), ('', 9435), ('::1', 0))
    """
    s = str(text).strip()
    if s.startswith("["):
        host, sep, port = s[1:].partition("]:")
        if not sep or not host:
            raise ValueError(f"{text!r} is not [ADDR:]PORT (an IPv6 address is written [ADDR]:PORT)")
    elif s.count(":") > 1:
        raise ValueError(f"{text!r} is not [ADDR:]PORT (an IPv6 address is written [ADDR]:PORT)")
    else:
        host, _, port = s.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not [ADDR:]PORT: the port is a number from 0 to 65535")
    return host, int(port)


class MetricsServer:
    """``/metrics`` (any path, as prometheus_client serves) of a registry, served by
    ``prometheus_client.make_wsgi_app`` on a threading WSGI server in a daemon thread. The
    app negotiates the format: OpenMetrics for ``Accept: application/openmetrics-text``,
    Prometheus' text format otherwise. ``close()`` (or the ``with`` block) stops it."""

    def __init__(self, host: str, port: int, registry: Any) -> None:
        import socket
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from prometheus_client import make_wsgi_app

        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, sockaddr = infos[0]

        class Server(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True
            address_family = family
            allow_reuse_address = True

            def server_bind(self) -> None:
                # HTTPServer's own asks the resolver for the host's full name, which can hang
                # for seconds where DNS is unreachable; the name is only put in WSGI's environ.
                socketserver.TCPServer.server_bind(self)
                self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
                self.setup_environ()

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = make_server(sockaddr[0], port, make_wsgi_app(registry), Server, handler_class=Quiet)
        self.host: str = str(self._httpd.server_address[0])
        #: The port listened on (the kernel's choice when 0 was asked for).
        self.port: int = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="bpfkit-exporter-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stops serving and closes the socket (a scrape under way finishes first)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"


def serve(listen: Union[str, tuple[str, int]] = "127.0.0.1:9435", *, registry: Any = None) -> MetricsServer:
    """Serves ``registry`` (default: prometheus_client's global ``REGISTRY``) on ``listen``,
    ``[ADDR:]PORT`` (see :func:`parse_listen`) or ``(host, port)``, from a daemon thread, and
    returns the :class:`MetricsServer` (``.url``, ``.port``, ``.close()``).

    >>> server = serve("127.0.0.1:0")            # a free port
    >>> server.url
    'http://127.0.0.1:40021/metrics'
    """
    host, port = parse_listen(listen) if isinstance(listen, str) else listen
    if registry is None:
        from prometheus_client import REGISTRY as registry
    return MetricsServer(host, port, registry)


# -- decoders ---------------------------------------------------------------------------------------

def _number(v: Union[bytes, str], signed: bool = False) -> int:
    """A decoder's input as an integer: key bytes (little-endian, as the kernel stores them on
    the machines BPF runs on) or the text an earlier decoder made."""
    if isinstance(v, bytes):
        return int.from_bytes(v, "little", signed=signed)
    s = v.strip()
    try:
        return int(s, 16) if s[:2].lower() == "0x" else int(s)
    except ValueError:
        raise ValueError(f"expected a number, got {v!r}") from None


def _text(v: Union[bytes, str]) -> str:
    if isinstance(v, bytes):
        return v.split(b"\0", 1)[0].decode("utf-8", "replace")
    return v


class _Cgroups:
    """cgroup id -> path, the id being the cgroup v2 directory's inode number (what
    ``bpf_get_current_cgroup_id()`` gives). The tree is walked again on a miss, at most once a
    second."""

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root, self.paths, self.walked = root, {}, -1.0

    def __call__(self, v: Union[bytes, str]) -> str:
        cg = _number(v)
        path = self.paths.get(cg)
        if path is None and time.monotonic() - self.walked > 1.0:
            self.walked = time.monotonic()
            for d, _dirs, _files in os.walk(self.root):
                try:
                    self.paths[os.stat(d).st_ino] = d
                except OSError:
                    continue
            path = self.paths.get(cg)
        return path if path is not None else f"[unknown: {cg}]"


def make_decoder(how: DecoderLike) -> Callable[[Union[bytes, str]], Optional[str]]:
    """A label decoder: a function from the label's key bytes (or the text the decoder before it
    made) to text, or to None to drop the entry. ``how`` is a name, a mapping as the config file
    writes it (``{"name": "static_map", "static_map": {1: "read"}}``), or a callable.

    * ``uint``, ``int``: the bytes as an unsigned or signed little-endian integer, in decimal;
      ``hex``: in hexadecimal (``0x1f``).
    * ``string``: the bytes up to the first NUL, as UTF-8.
    * ``ksym``: a kernel address as its symbol; ``syscall``: a system call number as its name;
      ``errno``: an error number (either sign) as its name (``ENOENT``); ``comm``: a pid as its
      command (``[exited]`` once it is gone); ``cgroup``: a cgroup id as the cgroup's path.
    * ``inet_ip``: 4 or 16 bytes (network order) as an IPv4 or IPv6 address.
    * ``static_map``: the value (a number, or the text before) through ``static_map``, a mapping;
      a value it lacks becomes ``unknown:VALUE``, or stays itself with ``allow_unknown``.
    * ``regexp``: keeps the entry only when the text matches (searches) one of ``regexps``.

    >>> make_decoder("errno")((2).to_bytes(4, "little"))
    'ENOENT'
    """
    if callable(how):
        return how
    if isinstance(how, str):
        name, opts = how, {}
    elif hasattr(how, "get") and "name" in how:
        name, opts = how["name"], {k: v for k, v in how.items() if k != "name"}
    else:
        raise TypeError(f"a decoder is a name, a mapping with a name, or a callable, not {how!r}")
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} (known: {', '.join(DECODERS)})")
    if name == "uint":
        return lambda v: v if isinstance(v, str) else str(_number(v))
    if name == "int":
        return lambda v: v if isinstance(v, str) else str(_number(v, signed=True))
    if name == "hex":
        return lambda v: hex(_number(v))
    if name == "string":
        return _text
    if name == "inet_ip":
        import ipaddress

        def inet_ip(v: Union[bytes, str]) -> str:
            if isinstance(v, str):
                return str(ipaddress.ip_address(v))
            if len(v) not in (4, 16):
                raise ValueError(f"inet_ip decodes 4 or 16 bytes, not {len(v)}")
            return str(ipaddress.ip_address(v))

        return inet_ip
    if name == "static_map":
        table = {str(k): str(val) for k, val in dict(opts.get("static_map") or {}).items()}
        allow = bool(opts.get("allow_unknown", False))

        def static_map(v: Union[bytes, str]) -> str:
            key = str(_number(v)) if isinstance(v, bytes) else v
            out = table.get(key)
            return out if out is not None else (key if allow else f"unknown:{key}")

        return static_map
    if name == "regexp":
        import re

        pats = [p if hasattr(p, "search") else re.compile(p) for p in opts.get("regexps") or ()]

        def regexp(v: Union[bytes, str]) -> Optional[str]:
            s = _text(v)
            return s if any(p.search(s) for p in pats) else None

        return regexp
    if name == "cgroup":
        return _Cgroups()
    if name == "comm":
        # No cache: a pid's command changes at exec, and the same pid is reused; each distinct pid
        # is read once per scrape (see TableMetric.read).
        def comm(v: Union[bytes, str]) -> str:
            pid = _number(v)
            if pid == 0:
                return "swapper"  # the idle task has no /proc entry
            try:
                with open(f"/proc/{pid}/comm", "rb") as f:
                    return f.read().rstrip(b"\n").decode("utf-8", "replace")
            except (OSError, ValueError):
                return "[exited]"

        return comm
    from ._frames import decoder  # ksym, syscall, errno: the notebooks' decoders, which take ints

    fn = decoder(name)
    signed = name == "errno"
    return lambda v: fn(_number(v, signed=signed))


def _chain(decoders: Sequence[DecoderLike]) -> Callable[[bytes], Optional[str]]:
    fns = [make_decoder(d) for d in decoders] or [make_decoder("uint")]

    def run(raw: bytes) -> Optional[str]:
        v: Union[bytes, str, None] = raw
        for fn in fns:
            v = fn(v)  # type: ignore[arg-type]
            if v is None:
                return None
        return v if isinstance(v, str) else _text(v)

    return run


class Label:
    """A label of a metric: ``size`` bytes of the map's key (in key order, padding included;
    None: the member of the key's BTF struct at this place, or the whole of a scalar key),
    turned into text by ``decoders`` in order (names, config-style mappings or callables; none
    means ``uint``).

    >>> Label("syscall", 4, ["syscall"])
    Label('syscall', 4, ['syscall'])
    """

    __slots__ = ("name", "size", "decoders")

    def __init__(self, name: str, size: Optional[int] = None, decoders: Sequence[DecoderLike] = ()) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a label's name is text, not {name!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"label {name!r}: size is a number of bytes above 0, not {size!r}")
        if isinstance(decoders, (str, bytes)) or (hasattr(decoders, "get") and "name" in decoders):
            decoders = [decoders]  # type: ignore[list-item]
        self.name, self.size, self.decoders = name, size, list(decoders)

    def __repr__(self) -> str:
        return f"Label({self.name!r}, {self.size!r}, {self.decoders!r})"


class _Bad(ValueError):
    """A metric that does not fit its map; ``part`` says which of its settings is at fault
    (``"table"``, ``"value"``, ``"labels"`` or ``("label", i)``), for the config file's errors."""

    def __init__(self, part: Any, message: str) -> None:
        super().__init__(message)
        self.part = part


# -- reading a map ---------------------------------------------------------------------------------

def _read(table: Any) -> tuple:
    """``(keys, values)`` of a hash or array map read in one batch (``to_numpy()``'s path):
    ``keys`` as an ``(n, key_size)`` uint8 array, ``values`` one row per entry (a row of CPUs
    for a per-CPU map)."""
    import numpy as np

    from ._maps import ArrayTable

    if isinstance(table, ArrayTable):
        values = np.asarray(table.to_numpy())
        if table.mmapable:
            values = values.copy()  # a live view: freeze what this scrape reports
        keys = np.arange(len(values), dtype="<u4").view(np.uint8).reshape(-1, 4)
        return keys, values
    n, kb, vb = table._m.snapshot()
    ks = table._m.key_size
    keys = np.asarray(kb).view(np.uint8)[: n * ks].reshape(n, ks)
    return keys, table._values_array(n, vb)


def _column_codes(col: Any, decode: Callable[[bytes], Optional[str]]) -> tuple:
    """Decodes one label's column of key bytes, each distinct value once: ``(codes, names)``,
    ``names[codes[i]]`` being entry i's text, code -1 where the decoder dropped the entry."""
    import numpy as np

    n, size = col.shape
    if size in (1, 2, 4, 8):
        ints = np.ascontiguousarray(col).view(f"<u{size}").ravel()
        uniq, inverse = np.unique(ints, return_inverse=True)
        raws = [int(u).to_bytes(size, "little") for u in uniq.tolist()]
    else:
        rows = np.ascontiguousarray(col).view(np.dtype((np.void, size))).ravel()
        uniq, inverse = np.unique(rows, return_inverse=True)
        raws = [u.tobytes() for u in uniq]
    ids: dict = {}
    code_of = np.empty(len(raws), dtype=np.int64)
    for j, raw in enumerate(raws):
        text = decode(raw)
        code_of[j] = -1 if text is None else ids.setdefault(text, len(ids))
    return code_of[inverse.ravel()], list(ids)


def _group(codes: list, n: int) -> tuple:
    """Entries with equal codes in every label as groups: ``(keep, inverse, group_codes)``, where
    ``keep`` masks the entries no decoder dropped, ``inverse[i]`` is kept entry i's group and
    ``group_codes[g]`` the codes of group g, one per label."""
    import numpy as np

    if not codes:
        return np.ones(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros((1 if n else 0, 0), dtype=np.int64)
    stack = np.stack(codes, axis=1)
    keep = (stack >= 0).all(axis=1)
    stack = stack[keep]
    radix = [int(c.max()) + 1 if len(c) else 1 for c in codes]
    total = 1
    for r in radix:
        total *= max(r, 1)
    if total < 1 << 62:  # one integer per entry: a 1-D unique is the fast one
        mult = np.ones(len(radix), dtype=np.int64)
        for i in range(len(radix) - 2, -1, -1):
            mult[i] = mult[i + 1] * max(radix[i + 1], 1)
        combined = stack @ mult if len(stack) else np.zeros(0, dtype=np.int64)
        uniq, inverse = np.unique(combined, return_inverse=True)
        group_codes = (uniq[:, None] // mult[None, :]) % np.maximum(np.array(radix, dtype=np.int64), 1)[None, :]
        return keep, inverse.ravel(), group_codes
    uniq, inverse = np.unique(stack, axis=0, return_inverse=True)
    return keep, inverse.ravel(), uniq


class TableMetric:
    """One map of a loaded BPF program as one Prometheus metric family, a ``prometheus_client``
    custom collector (``registry.register(metric)``). Each scrape reads the map.

    * ``kind="counter"`` or ``"gauge"``: one sample per distinct label set, the sum of the
      values of the entries whose key decodes to it (per-CPU values summed over CPUs). The
      values are integers or floats; ``value="field"`` picks one field of a struct value.
    * ``kind="histogram"``: the last label is the bucket number, the others make the series. As
      in ebpf_exporter, buckets ``bucket_min..bucket_max`` are reported, each with ``le``
      ``2**i * bucket_multiplier`` (``exp2``: BCC's ``bpf_log2l`` slots, where slot i counts
      values below 2**i) or ``i * bucket_multiplier`` (``linear``: bucket i counts values up to
      i * multiplier, which bucket number = value gives exactly with a multiplier of 1),
      cumulative; entries below ``bucket_min`` count in the first bucket, and entries above
      ``bucket_max + 1`` only in ``+Inf``. The entry at ``bucket_max + 1``, when there is one,
      is the sum of the values (times the multiplier), as ebpf_exporter reads it; without it
      ``_sum`` is 0.

    ``labels`` are :class:`Label` objects, or names (a label taking the key's BTF member at its
    place). A label set that does not fit the map's key raises ``ValueError``.

    ``last_duration`` (seconds), ``last_entries`` and ``errors`` describe the scrapes, for
    :class:`SelfMetrics`. A scrape that fails (the map closed, a decoder's error) counts an
    error, is logged to the ``bpfkit.exporter`` logger and leaves this metric out of that
    scrape, so that the other metrics are still served.
    """

    def __init__(self, table: Any, name: str, help: str, *, kind: str = "counter",
                 labels: Iterable[Union[Label, str]] = (), value: Optional[str] = None,
                 bucket_type: str = "exp2", bucket_min: int = 0, bucket_max: Optional[int] = None,
                 bucket_multiplier: float = 1.0, program: str = "") -> None:
        import numpy as np

        if kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"kind is 'counter', 'gauge' or 'histogram', not {kind!r}")
        if not hasattr(table, "_m") or not hasattr(table, "key_desc"):
            raise _Bad("table", f"{table!r} is not a hash or array map (a counter, gauge or histogram reads one)")
        self.table, self.name, self.help, self.kind, self.program = table, name, help, kind, program
        self.labels = [lab if isinstance(lab, Label) else Label(lab) for lab in labels]
        self.value = value
        self.last_duration: Optional[float] = None
        self.last_entries = 0
        self.errors = 0
        self._lock = threading.Lock()
        self.sizes = _label_sizes(table, self.labels)
        self._decoders = [_chain(lab.decoders) for lab in self.labels]
        names = [lab.name for lab in self.labels]
        if len(set(names)) != len(names):
            raise _Bad("labels", f"a label name is repeated: {names}")
        dt = table.leaf_dtype()
        if value is not None:
            if kind == "histogram":
                raise _Bad("value", "a histogram reads its map's values as counts: no value field")
            if dt.names is None or value not in dt.names:
                have = f"its fields are {', '.join(dt.names)}" if dt.names else "its values are not structs"
                raise _Bad("value", f"map {table.name!r} has no value field {value!r}: {have}")
            dt = dt.fields[value][0]
        if dt.names is not None or dt.shape != () or dt.kind not in "biuf":
            what = f"struct values ({', '.join(dt.names)}): pick one with value:" if dt.names else f"{dt} values"
            raise _Bad("value" if value else "table", f"map {table.name!r} has {what}; a {kind} reads numbers")
        if kind == "histogram":
            if not self.labels:
                raise _Bad("labels", "a histogram needs labels, the last of them its bucket number")
            if self.sizes[-1] not in (1, 2, 4, 8):
                raise _Bad(("label", len(self.labels) - 1),
                           f"the bucket number is {self.sizes[-1]} bytes: expected 1, 2, 4 or 8")
            if bucket_type not in ("exp2", "linear"):
                raise ValueError(f"bucket_type is 'exp2' or 'linear', not {bucket_type!r}")
            if bucket_max is None or bucket_max < bucket_min or bucket_min < 0:
                raise ValueError(f"bucket_max ({bucket_max}) must be given, at least bucket_min ({bucket_min}) and 0")
            if not bucket_multiplier > 0:
                raise ValueError(f"bucket_multiplier must be above 0, not {bucket_multiplier}")
            from prometheus_client.utils import floatToGoString

            self.bucket_type, self.bucket_min, self.bucket_max = bucket_type, int(bucket_min), int(bucket_max)
            self.bucket_multiplier = float(bucket_multiplier)
            bounds = [(2.0 ** i if bucket_type == "exp2" else float(i)) * self.bucket_multiplier
                      for i in range(self.bucket_min, self.bucket_max + 1)]
            # 15 digits: 3 * 0.1 is 0.30000000000000004 in binary; its label says 0.3.
            self._le = [floatToGoString(float(f"{b:.15g}")) for b in bounds]
        self._np = np

    # -- the collector interface -------------------------------------------------------------------
    def _family(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}
        names = [lab.name for lab in (self.labels[:-1] if self.kind == "histogram" else self.labels)]
        return cls[self.kind](self.name, self.help, labels=names)

    def describe(self) -> Iterator[Any]:
        """The family without samples: lets the registry check names without reading the map."""
        yield self._family()

    def collect(self) -> Iterator[Any]:
        """Reads the map and yields the family; on an error, counts it and yields nothing."""
        t0 = time.perf_counter()
        with self._lock:
            try:
                family = self.read()
            except Exception as e:  # noqa: BLE001 - one bad map must not take the others' scrape down
                self.errors += 1
                from . import _logs

                _logs.log(30, "metric %s: reading map %s failed: %s", self.name, getattr(self.table, "name", "?"), e,
                          name="bpfkit.exporter")
                return
            finally:
                self.last_duration = time.perf_counter() - t0
        yield family

    def read(self) -> Any:
        """The metric family as the map holds it now (raises what reading or decoding raises)."""
        np = self._np
        keys, values = _read(self.table)
        self.last_entries = n = len(keys)
        if self.value is not None:
            values = values[self.value]
        if values.ndim > 1:  # per-CPU
            values = values.sum(axis=1)
        values = values.astype(np.float64)
        family = self._family()
        hist = self.kind == "histogram"
        series_labels = self.labels[:-1] if hist else self.labels
        codes, names, off = [], [], 0
        for _label, size, decode in zip(series_labels, self.sizes, self._decoders):
            c, nm = _column_codes(keys[:, off:off + size], decode)
            codes.append(c)
            names.append(nm)
            off += size
        keep, inverse, group_codes = _group(codes, n)
        groups = len(group_codes)
        label_sets = [[names[j][code] for j, code in enumerate(row)] for row in group_codes.tolist()]
        if not hist:
            sums = np.bincount(inverse, weights=values[keep], minlength=groups)
            for labels, v in zip(label_sets, sums.tolist()):
                family.add_metric(labels, v)
            return family
        size = self.sizes[-1]
        bucket = np.ascontiguousarray(keys[keep, off:off + size]).view(f"<u{size}").ravel()
        vals = values[keep]
        lo, hi = self.bucket_min, self.bucket_max
        nb = hi - lo + 1
        big = bucket > np.uint64(hi + 1)          # past the sum's key: only in +Inf
        at_sum = bucket == np.uint64(hi + 1)
        inside = ~(big | at_sum)
        slot = np.clip(bucket[inside].astype(np.int64) - lo, 0, nb - 1)  # below bucket_min: the first bucket
        counts = np.bincount(inverse[inside] * nb + slot, weights=vals[inside], minlength=groups * nb)
        cumulative = counts.reshape(groups, nb).cumsum(axis=1)
        over = np.bincount(inverse[big], weights=vals[big], minlength=groups)
        sums = np.bincount(inverse[at_sum], weights=vals[at_sum], minlength=groups) * self.bucket_multiplier
        le = self._le
        for g, labels in enumerate(label_sets):
            row = cumulative[g].tolist()
            buckets = list(zip(le, row))
            buckets.append(("+Inf", row[-1] + float(over[g])))
            family.add_metric(labels, buckets, float(sums[g]))
        return family

    def __repr__(self) -> str:
        return f"<TableMetric {self.kind} {self.name!r} of map {getattr(self.table, 'name', '?')!r}>"


def _label_sizes(table: Any, labels: list) -> list:
    """The bytes each label takes of the key: as given, else from the key's BTF (the members of a
    struct key, one per label, padding to the next member included; a scalar key for one label);
    one label without a size takes what the others leave. The sizes must add up to the key's."""
    ks = table._m.key_size
    given = [lab.size for lab in labels]
    if not labels:
        return []
    missing = [i for i, s in enumerate(given) if s is None]
    if missing and len(missing) == len(labels):
        spans = _btf_spans(table.key_desc, ks)
        if len(labels) == 1:
            return [ks]
        if spans is None or len(spans) != len(labels):
            have = f"its key is a struct of {len(spans)} members" if spans else "its key is not a struct"
            raise _Bad(("label", 0), f"label {labels[0].name!r} has no size, and map {table.name!r} cannot give "
                                     f"the labels theirs: {have}, for {len(labels)} labels")
        return spans
    if len(missing) == 1:
        rest = ks - sum(s for s in given if s is not None)
        if rest < 1:
            raise _Bad(("label", missing[0]), f"label {labels[missing[0]].name!r} has no size and the others "
                                              f"take all {ks} bytes of map {table.name!r}'s keys")
        return [rest if s is None else s for s in given]
    if missing:
        raise _Bad(("label", missing[0]), f"label {labels[missing[0]].name!r} has no size: give every label "
                                          "its size, or none (sizes from the key's BTF)")
    total = sum(given)
    if total != ks:
        raise _Bad("labels", f"the labels take {total} bytes ({' + '.join(map(str, given))}); map {table.name!r} "
                             f"has {ks}-byte keys (a size includes the padding after its field)")
    return given


def _btf_spans(desc: dict, key_size: int) -> Optional[list]:
    """The bytes each member of a struct key spans up to the next member (the last to the end),
    or None when the key is no struct (or has bitfields)."""
    if desc.get("kind") != "struct" or not desc.get("members"):
        return None
    members = desc["members"]
    if any(m.get("bitfield_size") for m in members):
        return None
    offs = [m["bit_offset"] // 8 for m in members] + [key_size]
    spans = [b - a for a, b in zip(offs, offs[1:])]
    return spans if all(s > 0 for s in spans) else None


def counter(table: Any, name: str, help: str, *, labels: Iterable[Union[Label, str]] = (),
            value: Optional[str] = None, registry: Any = None, program: str = "") -> TableMetric:
    """Registers ``table`` as counter ``name`` (prometheus_client adds ``_total``) in ``registry``
    (default: prometheus_client's ``REGISTRY``) and returns the :class:`TableMetric`.

    >>> counter(b["calls"], "syscalls_total", "System calls", labels=[Label("syscall", 4, ["syscall"])])
    """
    return _register(TableMetric(table, name, help, kind="counter", labels=labels, value=value, program=program),
                     registry)


def gauge(table: Any, name: str, help: str, *, labels: Iterable[Union[Label, str]] = (),
          value: Optional[str] = None, registry: Any = None, program: str = "") -> TableMetric:
    """Registers ``table`` as gauge ``name``, as :func:`counter` does."""
    return _register(TableMetric(table, name, help, kind="gauge", labels=labels, value=value, program=program),
                     registry)


def histogram(table: Any, name: str, help: str, *, labels: Iterable[Union[Label, str]], bucket_max: int,
              bucket_type: str = "exp2", bucket_min: int = 0, bucket_multiplier: float = 1.0,
              registry: Any = None, program: str = "") -> TableMetric:
    """Registers ``table`` (a log2 or linear slot map) as histogram ``name``; the last label is
    the bucket number (see :class:`TableMetric` for the buckets and ``_sum``).

    >>> histogram(b["dist"], "runq_latency_seconds", "Run queue latency", labels=[Label("slot", 4)],
    ...           bucket_max=26, bucket_multiplier=1e-6)
    """
    return _register(TableMetric(table, name, help, kind="histogram", labels=labels, bucket_type=bucket_type,
                                 bucket_min=bucket_min, bucket_max=bucket_max, bucket_multiplier=bucket_multiplier,
                                 program=program), registry)


def _register(metric: TableMetric, registry: Any) -> TableMetric:
    if registry is None:
        from prometheus_client import REGISTRY as registry
    registry.register(metric)
    return metric


class SelfMetrics:
    """The exporter's own metrics, a collector over some :class:`TableMetric` objects, by
    ``program`` and ``metric`` label: ``bpfkit_exporter_scrape_duration_seconds`` (the last
    scrape's read and decode of the map), ``bpfkit_exporter_map_entries`` (the entries it read)
    and ``bpfkit_exporter_scrape_errors_total``. Register it after the metrics, so that a
    scrape reports its own durations."""

    def __init__(self, metrics: Iterable[TableMetric] = ()) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["program", "metric"]
        duration = GaugeMetricFamily(f"{SELF_PREFIX}_scrape_duration_seconds",
                                     "Time the last scrape took to read and decode the metric's map", labels=labels)
        entries = GaugeMetricFamily(f"{SELF_PREFIX}_map_entries", "Entries the last scrape read from the metric's map",
                                    labels=labels)
        errors = CounterMetricFamily(f"{SELF_PREFIX}_scrape_errors",
                                     "Scrapes that failed to read or decode the metric's map", labels=labels)
        for m in self.metrics:
            ident = [m.program, m.name]
            if m.last_duration is not None:
                duration.add_metric(ident, m.last_duration)
                entries.add_metric(ident, m.last_entries)
            errors.add_metric(ident, m.errors)
        yield duration
        yield entries
        yield errors


# -- the configuration file's exporter --------------------------------------------------------------

class Exporter:
    """The programs of a configuration file (:func:`bpfkit._exporter_config.load`), loaded and
    attached, with their maps as metrics in :attr:`registry` (a ``prometheus_client``
    ``CollectorRegistry`` that also holds :class:`SelfMetrics` and the process' own metrics).
    Errors are :class:`ConfigError` naming the file, line and key; everything loaded so far is
    closed first. ``close()`` (or the ``with`` block) detaches and closes every program.

    >>> with Exporter.from_file("examples/exporter/syscount.yaml") as ex, serve(":9435", registry=ex.registry):
    ...     time.sleep(3600)
    """

    def __init__(self, config: Any) -> None:
        from prometheus_client import CollectorRegistry, ProcessCollector

        self.config = config
        self.programs: dict = {}
        self.metrics: list = []
        self.registry = CollectorRegistry()
        try:
            for spec in config.programs:
                b = self.programs[spec.name] = _load_program(spec)
                for m in spec.metrics:
                    self.metrics.append(_metric_of(b, spec, m, config.namespace))
            for m in self.metrics:
                self.registry.register(m)
            self.registry.register(SelfMetrics(self.metrics))
            ProcessCollector(registry=self.registry)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_file(cls, path: str) -> Exporter:
        """Reads the file at ``path`` and loads its programs."""
        from ._exporter_config import load

        return cls(load(path))

    def close(self) -> None:
        """Detaches and closes every program (idempotent)."""
        for b in self.programs.values():
            b.close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _load_program(spec: Any) -> Any:
    """Compiles, loads and attaches one program of the file; its errors as ConfigErrors."""
    from ._bpf import BPF
    from ._errors import AttachError, CompileError, LoadError, NotSupportedError

    where = spec.where
    try:
        if spec.code is not None:
            b = BPF(text=spec.code, cflags=spec.cflags)
        else:
            b = BPF(src_file=spec.file, cflags=spec.cflags)
    except CompileError as e:
        raise _compile_error(spec, e) from None
    except (LoadError, AttachError, NotSupportedError) as e:
        raise where.error(f'program "{spec.name}": {e}') from None
    try:
        for key, hook, fn, fn_where in spec.attach:
            try:
                if key == "tracepoints":
                    b.attach_tracepoint(tp=hook, fn_name=fn)
                elif key == "raw_tracepoints":
                    b.attach_raw_tracepoint(tp=hook, fn_name=fn)
                elif key == "kprobes":
                    b.attach_kprobe(event=hook, fn_name=fn)
                else:
                    b.attach_kretprobe(event=hook, fn_name=fn)
            except (LoadError, AttachError, NotSupportedError, ValueError, KeyError) as e:
                raise fn_where.error(f"attaching {fn!r} to {hook!r}: {e}") from None
    except BaseException:
        b.close()
        raise
    return b


def _compile_error(spec: Any, e: Exception) -> ConfigError:
    """clang's first error, at the config file's line for inline code (``<text>:L:C:`` is line
    L of ``code:``), or as clang names the file for ``file:``."""
    import re

    where = spec.source_where
    msg = str(e)
    m = re.match(r"<text>:(\d+):(\d+): (.*)", msg, re.S)
    if spec.code is not None and m:
        line = spec.code_first_line + int(m.group(1)) - 1
        return ConfigError(where.file, line, where.key, f"column {m.group(2)}: {m.group(3)}")
    return where.error(msg)


def _metric_of(b: Any, prog: Any, m: Any, namespace: str) -> TableMetric:
    """The TableMetric of one metric of the file, its misfits with the map as ConfigErrors."""
    if m.table not in b:
        have = ", ".join(f'"{n}"' for n in b) or "none"
        raise m.table_where.error(f'no map "{m.table}" in program "{prog.name}" (its maps: {have})')
    labels = [Label(lab.name, lab.size, [dict(name=d.name, **d.options) for d in lab.decoders])
              for lab in m.labels]
    name = f"{namespace}_{m.name}" if namespace else m.name
    try:
        return TableMetric(b[m.table], name, m.help, kind=m.kind, labels=labels, value=m.value,
                           bucket_type=m.bucket_type, bucket_min=m.bucket_min, bucket_max=m.bucket_max,
                           bucket_multiplier=m.bucket_multiplier, program=prog.name)
    except _Bad as e:
        part = e.part
        if part == "value" and m.value_where is not None:
            where = m.value_where
        elif part == "labels":
            where = m.labels_where
        elif isinstance(part, tuple):
            lab = m.labels[part[1]]
            where = lab.size_where
        else:
            where = m.table_where
        raise where.error(str(e)) from None


# -- the command ---------------------------------------------------------------------------------------

USAGE_EPILOG = """\
The file lists programs (their C inline under `code:` or in a `file:`) and the maps each exports
as counters, gauges and histograms, in ebpf_exporter's layout; see README.md, "On a fleet", and
examples/exporter/."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit exporter --config FILE --listen [ADDR:]PORT``: loads the file's programs and serves
    their maps on ``/metrics`` until Ctrl-C or SIGTERM, which detach everything and end with
    status 0. A bad file is one line naming its line and key, status 1."""
    import argparse
    import signal

    from .cli import _error

    prog = "bpfkit exporter"

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (-h for help)\n")

    p = Parser(prog=prog, description="Serve BPF maps as Prometheus metrics.", epilog=USAGE_EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, metavar="FILE", help="the YAML file of programs and metrics")
    p.add_argument("--listen", default=":9435", metavar="[ADDR:]PORT",
                   help="where to serve /metrics (default :9435, every interface)")
    args = p.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as e:
        p.error(f"--listen: {e}")
    for module, package in (("prometheus_client", "prometheus_client"), ("yaml", "PyYAML")):
        try:
            __import__(module)
        except ImportError:
            _error(prog, f"needs {package}: pip install bpfkit[exporter]")
            return 1

    def terminate(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # the command's frame ends quietly, after the `finally` below

    previous = signal.signal(signal.SIGTERM, terminate)
    import logging

    # A metric whose map fails to read is left out of that scrape; say why, on stderr.
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter(f"{prog}: warning: %(message)s"))
    logging.getLogger("bpfkit.exporter").addHandler(warnings)
    exporter = server = None
    try:
        try:
            exporter = Exporter.from_file(args.config)
        except ConfigError as e:
            _error(prog, e)
            return 1
        try:
            server = MetricsServer(host, port, exporter.registry)
        except OSError as e:
            _error(prog, f"--listen {args.listen}: {e.strerror or e}")
            return 1
        n = len(exporter.metrics)
        print(f"{prog}: serving {n} metric{'s' if n != 1 else ''} of {len(exporter.programs)} "
              f"program{'s' if len(exporter.programs) != 1 else ''} on {server.url}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    finally:
        if server is not None:
            server.close()
        if exporter is not None:
            exporter.close()
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger("bpfkit.exporter").removeHandler(warnings)
