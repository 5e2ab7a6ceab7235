"""The exporter's configuration file (``bpfkit exporter --config FILE``), read into typed specs.

The layout is ebpf_exporter's, so that its users' files carry over::

    programs:
      - name: syscalls                  # one BPF object per program
        code: |                         # or `file: syscalls.bpf.c`, relative to this file
          ...C, libbpf's dialect or BCC's...
        metrics:
          counters:                     # also `gauges:` (bpfkit's own) and `histograms:`
            - name: syscalls_total
              help: System calls by process and call
              table: counts             # the map read (default: the metric's name)
              labels:                   # the key's bytes, in key order
                - name: pid
                  size: 4
                  decoders: [{name: uint}]
                - name: syscall
                  size: 4
                  decoders: [{name: syscall}]

The file is read with PyYAML's composer, whose nodes keep their line, so every error names the
file, the line and the key (:class:`ConfigError`)::

    exporter.yaml:12: programs[0].metrics.counters[1].table: no map "foo" in program "bio"

Checking a spec against the loaded program (its maps, key sizes) is :mod:`bpfkit.exporter`'s
part; it raises its errors through :meth:`Where.error`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["ConfigError", "Where", "DecoderSpec", "LabelSpec", "MetricSpec", "ProgramSpec", "Config", "load",
           "DECODERS", "METRIC_KINDS"]

#: The decoders a label may name, and the options each takes besides ``name``.
DECODERS: dict[str, tuple[str, ...]] = {
    "uint": (), "int": (), "hex": (), "string": (), "ksym": (), "syscall": (), "errno": (), "comm": (),
    "cgroup": (), "inet_ip": (), "static_map": ("static_map", "allow_unknown"), "regexp": ("regexps",),
}
#: The lists of ``metrics:`` and the kind of metric each holds.
METRIC_KINDS = {"counters": "counter", "gauges": "gauge", "histograms": "histogram"}
#: Where a program's functions attach when its C does not say so in ``SEC()`` (ebpf_exporter's
#: keys: a mapping from the hook to the function).
ATTACH_KEYS = ("tracepoints", "raw_tracepoints", "kprobes", "kretprobes")

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class ConfigError(ValueError):
    """A bad configuration: ``file:line: key: message``. ``file``, ``line`` and ``key`` are kept
    as attributes (``line`` counts from 1)."""

    def __init__(self, file: str, line: int, key: str, message: str) -> None:
        self.file, self.line, self.key, self.message = file, line, key, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class Where:
    """A key's place in the file: its path (``programs[0].metrics.counters[1].table``) and line."""

    file: str
    line: int
    key: str

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.file, self.line, self.key, message)


@dataclass
class DecoderSpec:
    """One decoder of a label: its name and options (``static_map``, ``allow_unknown``, ``regexps``)."""

    name: str
    options: dict
    where: Where


@dataclass
class LabelSpec:
    """A label: ``size`` bytes of the key (None: from the key's BTF), turned into text by
    ``decoders`` in order."""

    name: str
    size: Optional[int]
    decoders: list
    where: Where
    size_where: Where


@dataclass
class MetricSpec:
    """One metric of a program: a counter, a gauge or a histogram read from map ``table``."""

    kind: str
    name: str
    help: str
    table: str
    labels: list
    where: Where
    table_where: Where
    labels_where: Where
    value: Optional[str] = None
    value_where: Optional[Where] = None
    bucket_type: str = "exp2"
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_multiplier: float = 1.0


@dataclass
class ProgramSpec:
    """A program: its C (``code``, with the file line its first line is on, or ``file``), cflags,
    explicit attachments and metrics."""

    name: str
    where: Where
    code: Optional[str] = None
    code_first_line: int = 0
    file: Optional[str] = None
    source_where: Optional[Where] = None
    cflags: list = field(default_factory=list)
    attach: list = field(default_factory=list)  # (key, hook, function, Where)
    metrics: list = field(default_factory=list)


@dataclass
class Config:
    """The whole file: its path, the metric name prefix (``namespace``) and the programs."""

    path: str
    namespace: str
    programs: list


class _Node:
    """A YAML node with its key path, for typed reads whose errors name the file, line and key."""

    def __init__(self, node: Any, key: str, file: str, key_line: int = 0) -> None:
        self.node, self.key, self.file, self.key_line = node, key, file, key_line

    @property
    def line(self) -> int:
        """The line of the key that holds this value (a block list or mapping starts on the next
        line), else of the value itself."""
        return self.key_line or self.node.start_mark.line + 1

    @property
    def where(self) -> Where:
        return Where(self.file, self.line, self.key)

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.file, self.line, self.key, message)

    def _child(self, sub: Any, name: str, knode: Any) -> _Node:
        return _Node(sub, f"{self.key}.{name}" if self.key else name, self.file, knode.start_mark.line + 1)

    def _kind(self) -> str:
        import yaml

        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        value = self.scalar()
        return "nothing" if value is None else f"{type(value).__name__} {value!r}"

    def scalar(self) -> Any:
        import yaml
        from yaml.constructor import SafeConstructor

        if not isinstance(self.node, yaml.ScalarNode):
            raise self.error(f"expected a single value, got {self._kind()}")
        try:
            return SafeConstructor().construct_object(self.node, deep=True)
        except yaml.YAMLError as e:
            raise self.error(f"bad value: {getattr(e, 'problem', None) or e}") from None

    def mapping(self, required: tuple = (), optional: tuple = ()) -> dict:
        """The mapping's values by key; a missing required key, an unknown key or a repeated one
        is an error."""
        import yaml

        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"expected a mapping with {', '.join(required or optional)}, got {self._kind()}")
        out: dict = {}
        for knode, vnode in self.node.value:
            k = _Node(knode, self.key, self.file).scalar()
            name = str(k)
            child = self._child(vnode, name, knode)
            if name in out:
                raise ConfigError(self.file, knode.start_mark.line + 1, child.key,
                                  f"repeated key (first on line {out[name].line})")
            if required or optional:
                if name not in required and name not in optional:
                    known = ", ".join((*required, *optional))
                    raise ConfigError(self.file, knode.start_mark.line + 1, child.key,
                                      f"unknown key (known keys: {known})")
            out[name] = child
        for r in required:
            if r not in out:
                raise self.error(f"missing key {r!r}")
        return out

    def pairs(self) -> list:
        """A mapping of any keys, as ``[(key value, value node)]``, keys repeated refused."""
        import yaml

        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"expected a mapping, got {self._kind()}")
        seen: dict = {}
        out = []
        for knode, vnode in self.node.value:
            k = _Node(knode, self.key, self.file).scalar()
            child = self._child(vnode, str(k), knode)
            if k in seen:
                raise ConfigError(self.file, knode.start_mark.line + 1, child.key,
                                  f"repeated key (first on line {seen[k]})")
            seen[k] = knode.start_mark.line + 1
            out.append((k, child))
        return out

    def seq(self) -> list:
        import yaml

        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error(f"expected a list, got {self._kind()}")
        return [_Node(sub, f"{self.key}[{i}]", self.file) for i, sub in enumerate(self.node.value)]

    def str(self) -> str:
        v = self.scalar()
        if not isinstance(v, str) or not v:
            raise self.error(f"expected text, got {self._kind()}")
        return v

    def int(self, *, low: Optional[int] = None) -> int:
        v = self.scalar()
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected an integer, got {self._kind()}")
        if low is not None and v < low:
            raise self.error(f"expected an integer of at least {low}, got {v}")
        return v

    def number(self) -> float:
        v = self.scalar()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            raise self.error(f"expected a number, got {self._kind()}")
        return float(v)

    def bool(self) -> bool:
        v = self.scalar()
        if not isinstance(v, bool):
            raise self.error(f"expected true or false, got {self._kind()}")
        return v


def load(path: str) -> Config:
    """Reads the configuration file at ``path``: :class:`ConfigError` for what it holds,
    ``OSError`` when it cannot be read."""
    import yaml

    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(path, line, "", f"not UTF-8 text (byte {data[e.start]:#04x})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(filter(None, [e.context, e.problem]))
        raise ConfigError(path, mark.line + 1 if mark else 0, "", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, 0, "", f"not valid YAML: {e}") from None
    if root is None:
        raise ConfigError(path, 1, "programs", "missing: the file is empty")
    top = _Node(root, "", path).mapping(required=("programs",), optional=("namespace",))
    namespace = ""
    if "namespace" in top:
        namespace = top["namespace"].str()
        if not _METRIC_NAME.match(namespace):
            raise top["namespace"].error(f"{namespace!r} is not a valid metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    plist = top["programs"].seq()
    if not plist:
        raise top["programs"].error("no programs")
    base = os.path.dirname(os.path.abspath(path))
    programs = [_program(p, base) for p in plist]
    _check_unique(programs, namespace)
    return Config(path=path, namespace=namespace, programs=programs)


def _program(node: _Node, base: str) -> ProgramSpec:
    m = node.mapping(required=("name", "metrics"), optional=("code", "file", "cflags", *ATTACH_KEYS))
    name = m["name"].str()
    spec = ProgramSpec(name=name, where=node.where)
    if ("code" in m) == ("file" in m):
        raise node.error("needs its C as `code:` (inline) or `file:` (a path), one of the two")
    if "code" in m:
        c = m["code"]
        spec.code = c.str()
        # A block scalar (`code: |`) starts on the line after its indicator.
        spec.code_first_line = c.line + (1 if getattr(c.node, "style", None) in ("|", ">") else 0)
        spec.source_where = c.where
    else:
        f = m["file"]
        path = os.path.join(base, f.str())
        if not os.path.isfile(path):
            raise f.error(f"no such file: {path}")
        spec.file = path
        spec.source_where = f.where
    if "cflags" in m:
        spec.cflags = [c.str() for c in m["cflags"].seq()]
    for key in ATTACH_KEYS:
        if key in m:
            for hook, fn in m[key].pairs():
                if not isinstance(hook, str) or not hook:
                    raise fn.error("expected a hook name as the key")
                spec.attach.append((key, hook, fn.str(), fn.where))
    metrics = m["metrics"].mapping(optional=tuple(METRIC_KINDS))
    if not metrics:
        raise m["metrics"].error("no metrics: expected counters, gauges or histograms")
    for listname, kind in METRIC_KINDS.items():
        if listname in metrics:
            spec.metrics.extend(_metric(n, kind) for n in metrics[listname].seq())
    return spec


_HIST_KEYS = ("bucket_type", "bucket_min", "bucket_max", "bucket_multiplier")


def _metric(node: _Node, kind: str) -> MetricSpec:
    optional = ("table", "labels", "value") + (_HIST_KEYS if kind == "histogram" else ())
    required = ("name", "help") + (("bucket_type", "bucket_max") if kind == "histogram" else ())
    m = node.mapping(required=required, optional=optional)
    name = m["name"].str()
    if not _METRIC_NAME.match(name):
        raise m["name"].error(f"{name!r} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    table_node = m.get("table", m["name"])
    labels_node = m.get("labels")
    labels = [_label(n) for n in labels_node.seq()] if labels_node is not None else []
    spec = MetricSpec(kind=kind, name=name, help=m["help"].str(), table=table_node.str(), labels=labels,
                      where=node.where, table_where=table_node.where,
                      labels_where=(labels_node or node).where)
    if "value" in m:
        spec.value, spec.value_where = m["value"].str(), m["value"].where
    seen: dict = {}
    for lab in labels:
        if lab.name in seen:
            raise lab.where.error(f"label {lab.name!r} is already {seen[lab.name]}")
        seen[lab.name] = lab.where.key
    if kind == "histogram":
        if not labels:
            raise (labels_node or node).error("a histogram needs labels, the last of them its bucket number")
        bt = m["bucket_type"].str()
        if bt not in ("exp2", "linear"):
            raise m["bucket_type"].error(f"expected exp2 or linear, got {bt!r}")
        spec.bucket_type = bt
        spec.bucket_min = m["bucket_min"].int(low=0) if "bucket_min" in m else 0
        spec.bucket_max = m["bucket_max"].int(low=0)
        if spec.bucket_max < spec.bucket_min:
            raise m["bucket_max"].error(f"{spec.bucket_max} is below bucket_min ({spec.bucket_min})")
        if bt == "exp2" and spec.bucket_max > 64:
            raise m["bucket_max"].error(f"{spec.bucket_max} is past 64, the last log2 slot of a 64-bit value")
        if spec.bucket_max - spec.bucket_min >= 4096:
            raise m["bucket_max"].error(f"{spec.bucket_max - spec.bucket_min + 1} buckets: at most 4096")
        if "bucket_multiplier" in m:
            spec.bucket_multiplier = m["bucket_multiplier"].number()
            if spec.bucket_multiplier <= 0:
                raise m["bucket_multiplier"].error(f"expected a number above 0, got {spec.bucket_multiplier}")
        bucket = labels[-1]
        if any(d.name != "uint" for d in bucket.decoders):
            raise bucket.where.error("the last label of a histogram is its bucket number: its only decoder is uint")
        if spec.value is not None:
            raise spec.value_where.error("a histogram reads its map's values as counts: no value field")
        for lab in labels[:-1]:
            if lab.name == "le":
                raise lab.where.error("`le` is the bucket bound Prometheus histograms add: name the label otherwise")
    return spec


def _label(node: _Node) -> LabelSpec:
    m = node.mapping(required=("name",), optional=("size", "decoders"))
    name = m["name"].str()
    if not _LABEL_NAME.match(name) or name.startswith("__"):
        raise m["name"].error(f"{name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)")
    size = m["size"].int(low=1) if "size" in m else None
    if size is not None and size > 4096:
        raise m["size"].error(f"{size} bytes: a map key is at most 4096")
    decoders = [_decoder(d) for d in m["decoders"].seq()] if "decoders" in m else []
    return LabelSpec(name=name, size=size, decoders=decoders, where=node.where,
                     size_where=m.get("size", node).where)


def _decoder(node: _Node) -> DecoderSpec:
    import yaml

    if isinstance(node.node, yaml.ScalarNode):  # `- uint`: a bare name, as a shorthand
        name, opts = node.str(), {}
    else:
        m = node.mapping(required=("name",), optional=tuple({o for v in DECODERS.values() for o in v}))
        name = m["name"].str()
        opts = {k: v for k, v in m.items() if k != "name"}
    if name not in DECODERS:
        raise node.error(f"unknown decoder {name!r} (known: {', '.join(DECODERS)})")
    for k, v in opts.items():
        if k not in DECODERS[name]:
            raise v.error(f"decoder {name} takes no {k!r}")
    options: dict = {}
    if name == "static_map":
        if "static_map" not in opts:
            raise node.error("static_map needs a `static_map:` mapping of values to names")
        table = {}
        for k, v in opts["static_map"].pairs():
            if isinstance(k, bool) or not isinstance(k, (int, str)):
                raise v.error(f"a static_map key is a number or text, not {type(k).__name__}")
            val = v.scalar()
            if isinstance(val, (dict, list)) or val is None:
                raise v.error("a static_map value is text")
            table[str(k)] = str(val)
        options["static_map"] = table
        options["allow_unknown"] = opts["allow_unknown"].bool() if "allow_unknown" in opts else False
    elif name == "regexp":
        if "regexps" not in opts:
            raise node.error("regexp needs `regexps:`, a list of patterns")
        pats = []
        for p in opts["regexps"].seq():
            try:
                pats.append(re.compile(p.str()))
            except re.error as e:
                raise p.error(f"bad regular expression: {e}") from None
        options["regexps"] = pats
    return DecoderSpec(name=name, options=options, where=node.where)


def _check_unique(programs: list, namespace: str) -> None:
    seen: dict = {}
    for p in programs:
        for m in p.metrics:
            full = f"{namespace}_{m.name}" if namespace else m.name
            # prometheus_client names a counter without its `_total`, and a histogram's series
            # add _bucket, _sum and _count: names that collide there collide in the registry too.
            base = full[:-6] if m.kind == "counter" and full.endswith("_total") else full
            if base in seen:
                raise m.where.error(f"metric {full!r} is already defined at line {seen[base].line}")
            seen[base] = m.where
    names = [p.name for p in programs]
    for i, p in enumerate(programs):
        if p.name in names[:i]:
            raise p.where.error(f"program {p.name!r} is already defined")
