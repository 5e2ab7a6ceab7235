"""Network attach points of :class:`bpfkit.BPF`: XDP, TC, raw sockets and cgroup programs.

BCC's names and argument orders carry over (``load_func``, ``attach_xdp(dev, fn, flags)``,
``remove_xdp(dev, flags)``, ``attach_raw_socket(fn, dev)``, ``BPF.XDP``, ``BPF.XDP_FLAGS_SKB_MODE``),
and so do BCC's static-method calls such as ``BPF.attach_raw_socket(fn, "eth0")``. What differs is
underneath: XDP, tcx and cgroup attachments are BPF links owned by this process, so closing the
object or killing the process detaches them, and XDP never goes through netlink. The one
exception is a tc program in a clsact qdisc (``mode="clsact"``, for kernels before 6.6): libbpf
adds that filter over netlink, and it outlives a killed process.

>>> b = BPF(text=src)                                  # SEC("xdp") int drop_udp(struct xdp_md *ctx)
>>> fn = b.load_func("drop_udp", BPF.XDP)
>>> b.attach_xdp("eth0", fn, BPF.XDP_FLAGS_SKB_MODE)
>>> b.remove_xdp("eth0")
"""

from __future__ import annotations

import errno as _errno
import os

from . import _native
from ._attach_base import AttachBase, _s, _wraps
from ._errors import AttachError, BPFError, NotSupportedError, PrivilegeError

TYPE_CHECKING = False  # not typing's: typing stays off a tool's start path
if TYPE_CHECKING:
    import socket
    from typing import Any, Callable, Optional, Union

# The kernel's enum bpf_prog_type, named as the kernel names it, from the core's typed table.
_PROG_TYPE_NAMES = {num: name for num, name, _since in _native.prog_types()}
_PROG_TYPES = {name: num for num, name in _PROG_TYPE_NAMES.items()}

# The SEC() that gives a program each type, for the hint in a type mismatch.
_PROG_TYPE_SECTIONS = {_PROG_TYPES[name]: sec for name, sec in (
    ("SOCKET_FILTER", 'SEC("socket")'), ("KPROBE", 'SEC("kprobe/...")'),
    ("SCHED_CLS", 'SEC("tc") or SEC("tcx/ingress")'), ("SCHED_ACT", 'SEC("action")'),
    ("TRACEPOINT", 'SEC("tracepoint/...")'), ("XDP", 'SEC("xdp")'), ("PERF_EVENT", 'SEC("perf_event")'),
    ("CGROUP_SKB", 'SEC("cgroup_skb/ingress") or SEC("cgroup_skb/egress")'),
    ("CGROUP_SOCK", 'SEC("cgroup/sock_create")'), ("SOCK_OPS", 'SEC("sockops")'),
    ("CGROUP_DEVICE", 'SEC("cgroup/dev")'),
    ("RAW_TRACEPOINT", 'SEC("raw_tp/...")'), ("CGROUP_SOCK_ADDR", 'SEC("cgroup/connect4")'),
    ("CGROUP_SYSCTL", 'SEC("cgroup/sysctl")'), ("CGROUP_SOCKOPT", 'SEC("cgroup/getsockopt")'),
    ("TRACING", 'SEC("fentry/...")'), ("LSM", 'SEC("lsm/...")'),
)}

class BPFProgType:
    """The kernel's program types (enum bpf_prog_type) as int constants with BCC's names:
    ``BPFProgType.SOCKET_FILTER``, ``.KPROBE``, ``.XDP``, ``.CGROUP_SKB``, ``.TRACING``, ... The
    numbers come from the core's typed table (``bpfkit._native.prog_types()``), the same one that
    gives ``BPF.XDP`` and ``BPF.SCHED_CLS``.

    >>> BPFProgType.XDP == BPF.XDP
    True
    """


for _num, _name in _PROG_TYPE_NAMES.items():
    setattr(BPFProgType, _name, _num)


class BPFAttachType:
    """The kernel's attach types (enum bpf_attach_type) as int constants with BCC's names, for
    :meth:`BPF.attach_func` and :meth:`BPF.load_func`'s ``attach_type``:
    ``BPFAttachType.CGROUP_INET_INGRESS``, ``.SK_MSG_VERDICT``, ``.FLOW_DISSECTOR``, ... The
    numbers come from the core's typed table (``bpfkit._native.attach_types()``).

    >>> BPFAttachType.CGROUP_INET_EGRESS
    1
    """


for _num, _name, _since in _native.attach_types():
    setattr(BPFAttachType, _name, _num)

_ATTACH_TYPE_NAMES = {v: k for k, v in vars(BPFAttachType).items() if k.isupper()}

_CGROUP_PROG_TYPES = tuple(_PROG_TYPES[n] for n in (
    "CGROUP_SKB", "CGROUP_SOCK", "SOCK_OPS", "CGROUP_DEVICE", "CGROUP_SOCK_ADDR", "CGROUP_SYSCTL", "CGROUP_SOCKOPT",
    "LSM"))

_XDP_MODES = {2: "generic (skb)", 4: "native (driver)", 8: "offload (hardware)"}

_SO_ATTACH_BPF = 50  # asm-generic/socket.h; the socket module does not export it
_ETH_P_ALL = 0x0003
_CGROUP2_DEFAULT_MOUNTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")



def _type_name(t: int) -> str:
    return f"BPF_PROG_TYPE_{_PROG_TYPE_NAMES.get(t, str(t))}"


class Function:
    """A program of a loaded object, as BCC's ``BPF.Function``: made by :meth:`BPF.load_func`.

    ``bpf`` is the owning :class:`BPF`, ``name`` the program's name, ``fd`` its fd (valid until
    the object is closed), ``prog_type`` its ``BPF_PROG_TYPE_*``, and ``sock`` the raw socket's
    fd once :meth:`BPF.attach_raw_socket` has run (None before).

    >>> fn = b.load_func("drop_udp", BPF.XDP)
    >>> fn.name, fn.fd > 0
    ('drop_udp', True)
    """

    def __init__(self, bpf: Any, name: str, fd: int, prog_type: Optional[int] = None) -> None:
        self.bpf = bpf
        self.name = name
        self.fd = fd
        self.prog_type = prog_type
        self.sock: Optional[int] = None

    def __repr__(self) -> str:
        t = "" if self.prog_type is None else f" {_type_name(self.prog_type)}"
        return f"<bpfkit.BPF.Function {self.name!r}{t} fd={self.fd}>"


class _BccStatic:
    """An instance method that can also be called on the class, as BCC's static methods are.

    ``b.attach_xdp(dev, fn)`` is the usual call. BCC scripts also write
    ``BPF.attach_raw_socket(fn, dev)`` or ``BPF.remove_xdp(dev)``: called on the class, the owning
    object is found by ``owner(*args, **kwargs)`` (from the Function, or among this process's
    objects). ``BPF.attach_xdp(b, dev, fn)`` (the plain unbound form) works too.
    """

    def __init__(self, func: Callable[..., Any], owner: Callable[..., Any]) -> None:
        self._func = func
        self._owner = owner
        _wraps(self, func)

    def __get__(self, obj: Any, objtype: Any = None) -> Callable[..., Any]:
        func = self._func
        if obj is not None:
            return func.__get__(obj, objtype)
        owner = self._owner

        def called_on_class(*args: Any, **kwargs: Any) -> Any:
            if args and isinstance(args[0], NetAttachMixin):
                return func(*args, **kwargs)
            if owner is None:  # a class-level call that acts on the whole process
                return func(None, *args, **kwargs)
            return func(owner(*args, **kwargs), *args, **kwargs)

        return _wraps(called_on_class, func)


def _owner_from_fn(pos: int) -> Callable[..., Any]:
    def owner(*args: Any, **kwargs: Any) -> Any:
        fn = kwargs.get("fn", args[pos] if len(args) > pos else None)
        if not isinstance(fn, Function):
            raise TypeError("called on the class, this method needs a BPF.Function (from load_func) "
                            f"to find its BPF object; got {type(fn).__name__}")
        return fn.bpf
    return owner


def _remove_xdp(dev: Union[str, bytes, int], flags: int, links: list, detach: Callable[[list], int],
                owner: str) -> None:
    """Detaches the XDP links among ``links`` on ``dev`` (in the mode ``flags`` names, if any)."""
    name = _dev_name(dev)
    modes = NetAttachMixin.XDP_FLAGS_SKB_MODE | NetAttachMixin.XDP_FLAGS_DRV_MODE | NetAttachMixin.XDP_FLAGS_HW_MODE
    if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags < 2**32:
        raise ValueError(f"flags must be XDP_FLAGS_* bits (a 32-bit number), not {flags!r}")
    mode = flags & modes
    ids = [lk.id for lk in links
           if lk.kind == "xdp" and lk.target == name and (not mode or lk.xdp_flags & modes == mode)]
    if not ids or detach(ids) == 0:
        how = f" in {_XDP_MODES.get(mode, hex(mode))} mode" if mode else ""
        raise ValueError(f"no XDP program {owner.format(f'{name}{how}')} (bpfkit attaches XDP through BPF links, "
                         "which only this process can remove; `ip link set dev DEV xdp off` removes others)")


def _ifindex(dev: Union[str, bytes, int]) -> tuple:
    """``(ifindex, name)`` of interface ``dev`` (a name or an index) in this network namespace."""
    if isinstance(dev, bool) or (isinstance(dev, int) and not 0 < dev < 2**31):
        raise ValueError(f"an interface index is a positive 32-bit number, not {dev!r}")
    import socket

    try:
        if isinstance(dev, int):
            return dev, socket.if_indextoname(dev)
        name = _s(dev)
        return socket.if_nametoindex(name), name
    except (OSError, ValueError):
        raise AttachError(f"no network interface {dev!r} in this network namespace "
                          f"(see `ip link show`)", _errno.ENODEV) from None


def _dev_name(dev: Union[str, bytes, int]) -> str:
    """The name of interface ``dev``; a name is taken as is (the interface may be gone)."""
    return _ifindex(dev)[1] if isinstance(dev, int) else _s(dev)


def _unescape_mountinfo(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    out, i = [], 0
    while i < len(field):
        esc = field[i + 1:i + 4]
        if field[i] == "\\" and len(esc) == 3 and all(c in "01234567" for c in esc):
            out.append(chr(int(esc, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts() -> list:
    """``[(mount point, fstype)]`` of this mount namespace, from /proc/self/mountinfo."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                if not sep:
                    continue
                fields = left.split()
                if len(fields) >= 5:
                    out.append((_unescape_mountinfo(fields[4]), right.split()[0]))
    except OSError:
        pass
    return out


def _mount_of(path: str) -> tuple:
    """``(mount point, fstype)`` of the mount that holds ``path`` (the longest matching prefix)."""
    best = ("/", "")
    for mp, fstype in _mounts():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[0]):
            best = (mp, fstype)
    return best


def cgroup2_mountpoint() -> str:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``, or ``/sys/fs/cgroup/unified`` on
    a hybrid systemd machine). When none is, and the process is root, cgroup2 is mounted at
    ``/sys/fs/cgroup`` (or at ``/sys/fs/cgroup/unified`` when ``/sys/fs/cgroup`` holds v1
    controllers). Otherwise the error says which mount is missing."""
    mounts = [mp for mp, fstype in _mounts() if fstype == "cgroup2"]
    for preferred in _CGROUP2_DEFAULT_MOUNTS:
        if preferred in mounts:
            return preferred
    if mounts:
        return mounts[0]
    try:
        with open("/proc/filesystems") as f:
            known = any(line.split()[-1] == "cgroup2" for line in f if line.strip())
    except OSError:
        known = True
    if not known:
        raise NotSupportedError("this kernel has no cgroup v2 filesystem (cgroup2 is missing from "
                                "/proc/filesystems): cgroup programs need it", _errno.ENODEV)
    mounted = {mp for mp, _t in _mounts()}
    target = next((p for p in _CGROUP2_DEFAULT_MOUNTS if os.path.isdir(p) and p not in mounted), None)
    if target is None:
        raise BPFError("no cgroup v2 filesystem is mounted, and both /sys/fs/cgroup and "
                       "/sys/fs/cgroup/unified are taken or missing: as root run `mkdir -p DIR && "
                       "mount -t cgroup2 none DIR`", _errno.ENOENT)
    how = f"mount -t cgroup2 none {target}"
    if os.geteuid() != 0:
        raise PrivilegeError(f"no cgroup v2 filesystem is mounted and mounting one needs root: as root run `{how}`",
                             _errno.EPERM)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    ms_nosuid, ms_nodev, ms_noexec = 2, 4, 8
    if libc.mount(b"cgroup2", target.encode(), b"cgroup2", ms_nosuid | ms_nodev | ms_noexec, None) != 0:
        e = ctypes.get_errno()
        raise BPFError(f"no cgroup v2 filesystem is mounted and mounting it at {target} failed "
                       f"({os.strerror(e)}): run `{how}`", e)
    return target


class NetAttachMixin(AttachBase):
    """XDP/TC/socket/cgroup methods of :class:`bpfkit.BPF` (which provides ``_obj`` and ``_detach``).

    Program types and XDP constants carry BCC's names and the kernel's numbers:
    ``BPF.SOCKET_FILTER``, ``BPF.XDP``, ``BPF.SCHED_CLS``, ``BPF.CGROUP_SKB``, ...;
    ``BPF.XDP_DROP``, ``BPF.XDP_PASS``, ...; ``BPF.XDP_FLAGS_SKB_MODE``, ``BPF.XDP_FLAGS_DRV_MODE``, ...
    """

    _obj: Any

    Function = Function

    # BPF_PROG_TYPE_* with BCC's names (SOCKET_FILTER, KPROBE, SCHED_CLS, XDP, CGROUP_SKB, ...):
    # set below the class from the core's typed table, so the numbers live in one place.

    # enum xdp_action
    XDP_ABORTED = 0
    XDP_DROP = 1
    XDP_PASS = 2
    XDP_TX = 3
    XDP_REDIRECT = 4

    # XDP_FLAGS_* (uapi/linux/if_link.h)
    XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
    XDP_FLAGS_SKB_MODE = 1 << 1
    XDP_FLAGS_DRV_MODE = 1 << 2
    XDP_FLAGS_HW_MODE = 1 << 3
    XDP_FLAGS_REPLACE = 1 << 4

    def _close_net(self) -> None:
        """Closes the raw sockets :meth:`attach_raw_socket` opened. Idempotent."""
        socks = self.__dict__.pop("_net_sockets", None) or []
        for s in socks:
            s.close()
        for fn in (self.__dict__.get("_net_funcs") or {}).values():
            fn.sock = None

    # -- programs ----------------------------------------------------------------------------
    def load_func(self, func_name: Union[str, bytes], prog_type: int, device: Any = None,
                  attach_type: int = -1) -> Function:
        """The program ``func_name`` as a :class:`BPF.Function`, checked to be of ``prog_type``
        (``BPF.XDP``, ``BPF.SCHED_CLS``, ``BPF.SOCKET_FILTER``, ``BPF.CGROUP_SKB``, ...).

        Programs load with the object, typed by their ``SEC()``, so this loads nothing: it finds
        the program and checks its type. A name the object lacks raises ``ValueError`` listing the
        programs it has; a program of another type raises ``TypeError`` naming both types and the
        ``SEC()`` that gives the one asked for. ``device`` (offload) is not supported;
        ``attach_type`` is accepted for BCC's signature and ignored (the ``SEC()`` decides it).
        The same Function is returned for the same name.

        >>> fn = b.load_func("drop_udp", BPF.XDP)
        >>> b.attach_xdp("eth0", fn)
        """
        name = _s(func_name)
        funcs = self.__dict__.setdefault("_net_funcs", {})
        if device is not None:
            raise NotSupportedError(f"load_func({name!r}, device={device!r}): bpfkit does not load programs "
                                    "for hardware offload", _errno.EOPNOTSUPP)
        progs = {p.name: p for p in self._obj.programs()}
        if name not in progs:
            raise ValueError(f"no program named {name!r} in this object (programs: "
                             f"{', '.join(progs) or 'none'})")
        p = progs[name]
        section, actual, fd = p.section.raw, p.prog_type, p.fd
        if prog_type is not None and int(prog_type) != actual:
            want = int(prog_type)
            hint = _PROG_TYPE_SECTIONS.get(want)
            raise TypeError(
                f"program {name!r} is {_type_name(actual)} (from SEC(\"{section}\")), not the "
                f"{_type_name(want)} asked for" + (f"; {hint} makes a {_type_name(want)} program" if hint else ""))
        fn = funcs.get(name)
        if fn is None or fn.fd != fd:
            fn = funcs[name] = Function(self, name, fd, actual)
        return fn

    def attach_func(self, fn: Union[Function, str, bytes], attachable_fd: int, attach_type: int,
                    flags: int = 0) -> None:
        """BCC's ``attach_func``: attaches ``fn`` to the kernel object open at ``attachable_fd``
        with ``attach_type`` (a :class:`BPFAttachType`): a cgroup directory for ``CGROUP_*``, a
        sockmap or sockhash for ``SK_MSG_VERDICT`` and ``SK_SKB_*``, a network namespace for
        ``FLOW_DISSECTOR`` and ``SK_LOOKUP``.

        Where the kernel has a BPF link for the pair (cgroups from 5.7, namespaces from 5.8,
        sockmaps from 6.10) the attachment is a link this object owns, so :meth:`close`, an
        exception or a killed process detaches it; ``flags`` (``BPF_F_ALLOW_MULTI``, ...) then
        do not apply, as a link always shares the hook. Elsewhere it is ``BPF_PROG_ATTACH`` with
        ``flags``, which :meth:`close` undoes but a killed process leaves in the kernel (as with
        BCC). The fd may be closed afterwards: the attachment keeps its own. It shows in
        :meth:`links` as ``("attach_func", "<file>:<ATTACH_TYPE>", name)``.

        >>> cg = os.open("/sys/fs/cgroup/jail", os.O_RDONLY)
        >>> b.attach_func("deny", cg, BPFAttachType.CGROUP_INET_SOCK_CREATE)
        """
        f = self._function(fn, tuple(_PROG_TYPE_NAMES), "attach_func")
        kind = self._attach_type(attach_type)
        self._obj.attach_fd(f.name, int(attachable_fd), kind, int(flags))

    def detach_func(self, fn: Union[Function, str, bytes], attachable_fd: int, attach_type: int) -> None:
        """BCC's ``detach_func``: undoes :meth:`attach_func` of ``fn`` to the object open at
        ``attachable_fd`` (the same object, through whichever fd names it now). An attachment
        this object did not make (another process's ``BPF_PROG_ATTACH`` of the same program) is
        detached with ``BPF_PROG_DETACH``; nothing attached raises :class:`AttachError`
        (``ENOENT``)."""
        f = self._function(fn, tuple(_PROG_TYPE_NAMES), "detach_func")
        self._obj.detach_fd(f.name, int(attachable_fd), self._attach_type(attach_type))

    @staticmethod
    def _attach_type(attach_type: int) -> int:
        if int(attach_type) not in _ATTACH_TYPE_NAMES:
            raise ValueError(f"attach_type={attach_type} is not a BPFAttachType")
        return int(attach_type)

    def load_funcs(self, prog_type: int = _PROG_TYPES["KPROBE"]) -> list:
        """Every program of type ``prog_type`` as a :class:`BPF.Function` (BCC's name)."""
        return [self.load_func(p.name, prog_type) for p in self._obj.programs() if p.prog_type == int(prog_type)]

    def _function(self, fn: Union[Function, str, bytes], prog_types: tuple, what: str) -> Function:
        """``fn`` (a Function or a program name) as a Function of this object whose type is one
        of ``prog_types``, or a TypeError that says what would fit."""
        if isinstance(fn, Function):
            if fn.bpf is not self:
                raise ValueError(f"{fn!r} belongs to another BPF object: call {what} on that object")
            f = fn
        elif isinstance(fn, (str, bytes)):
            f = self.load_func(fn, None)  # type: ignore[arg-type]
        else:
            raise TypeError(f"{what} needs a BPF.Function (from load_func) or a program name, "
                            f"not {type(fn).__name__}")
        # The type may have changed only if the object was reloaded; read it now.
        fd, actual = self._obj.program_fd(f.name)
        f.fd, f.prog_type = fd, actual
        if actual not in prog_types:
            if len(prog_types) > 2:
                want = f"cgroup program (BPF_PROG_TYPE_{', '.join(_PROG_TYPE_NAMES[t] for t in prog_types)})"
                hint = 'SEC("cgroup_skb/egress"), SEC("cgroup/sock_create") or another cgroup hook'
            else:
                want = " or ".join(_type_name(t) for t in prog_types) + " program"
                hint = _PROG_TYPE_SECTIONS.get(prog_types[0])
            raise TypeError(f"{what} needs a {want}; {f.name!r} is {_type_name(actual)}"
                            + (f" (use {hint})" if hint else ""))
        return f

    # -- XDP ---------------------------------------------------------------------------------
    def attach_xdp(self, dev: Union[str, bytes, int], fn: Union[Function, str, bytes], flags: int = 0) -> None:
        """Attaches XDP program ``fn`` (a Function from ``load_func`` or a program name) to
        interface ``dev`` through a BPF link (kernel 5.9+).

        ``flags`` picks the mode: ``BPF.XDP_FLAGS_SKB_MODE`` (generic, any interface),
        ``BPF.XDP_FLAGS_DRV_MODE`` (native, in the driver: veth, most 10G+ NICs) or
        ``BPF.XDP_FLAGS_HW_MODE`` (offload: needs a NIC that runs BPF and a program loaded for it,
        which bpfkit does not do). With no mode flag the kernel uses native mode where the driver
        has it, else generic. ``XDP_FLAGS_UPDATE_IF_NOEXIST`` is implied: a link never replaces a
        program already attached (``AttachError`` with EBUSY names that case).
        ``XDP_FLAGS_REPLACE`` has no meaning for links and is refused.

        The program stays attached until :meth:`remove_xdp`, ``close()``, or the process exits
        (even by ``kill -9``): unlike BCC's netlink attachment, nothing outlives its owner.
        An unknown ``dev`` raises ``AttachError`` (ENODEV) naming it. Returns None, as BCC's.

        >>> b.attach_xdp("eth0", b.load_func("drop_udp", BPF.XDP), BPF.XDP_FLAGS_SKB_MODE)
        """
        f = self._function(fn, (_PROG_TYPES["XDP"],), "attach_xdp")
        flags = int(flags)
        if flags & self.XDP_FLAGS_REPLACE:
            raise ValueError("XDP_FLAGS_REPLACE does not apply to XDP links: remove_xdp() first, then attach")
        known = (self.XDP_FLAGS_UPDATE_IF_NOEXIST | self.XDP_FLAGS_SKB_MODE | self.XDP_FLAGS_DRV_MODE
                 | self.XDP_FLAGS_HW_MODE)
        if flags & ~known:
            raise ValueError(f"unknown XDP flags {flags & ~known:#x}")
        mode = flags & (self.XDP_FLAGS_SKB_MODE | self.XDP_FLAGS_DRV_MODE | self.XDP_FLAGS_HW_MODE)
        if mode & (mode - 1):
            raise ValueError("XDP flags name more than one mode: pick one of XDP_FLAGS_SKB_MODE, "
                             "XDP_FLAGS_DRV_MODE and XDP_FLAGS_HW_MODE")
        ifindex, name = _ifindex(dev)
        # The kernel refuses UPDATE_IF_NOEXIST on links (EINVAL); links never replace anyway.
        try:
            self._obj.attach_xdp(f.name, ifindex, name, mode)
        except AttachError as e:
            if mode != self.XDP_FLAGS_HW_MODE or e.errno not in (_errno.EINVAL, _errno.EOPNOTSUPP):
                raise
            raise AttachError(f"{e}; offload (XDP_FLAGS_HW_MODE) needs a NIC that runs BPF programs and a "
                              "program loaded for that device, which bpfkit does not do", e.errno) from None

    def remove_xdp(self: Any, dev: Union[str, bytes, int], flags: int = 0) -> None:
        """Detaches the XDP programs this object attached to ``dev``; with a mode flag in
        ``flags`` (``BPF.XDP_FLAGS_SKB_MODE``, ...), only the one attached in that mode.
        ``ValueError`` if there is none. A program attached by another process (or through
        netlink, as BCC and ``ip link set xdp`` do) is not touched: remove it with
        ``ip link set dev DEV xdp off``.

        Called on the class as in BCC scripts (``BPF.remove_xdp("eth0")``), it detaches what the
        one BPF object of this process that has an XDP program on ``dev`` attached.
        """
        if self is None:  # BPF.remove_xdp(dev): whichever object of this process attached it
            _remove_xdp(dev, flags, _native.process_links(), _native.detach_links,
                        "is attached to {} by a BPF object of this process")
        else:
            _remove_xdp(dev, flags, self._obj.links(), self._obj.detach_ids, "attached to {} by this BPF object")

    attach_xdp = _BccStatic(attach_xdp, _owner_from_fn(1))
    remove_xdp = _BccStatic(remove_xdp, None)

    # -- TC ----------------------------------------------------------------------------------
    def attach_tc(self, dev: Union[str, bytes, int], fn: Union[Function, str, bytes], direction: str = "ingress",
                  mode: str = "auto") -> str:
        """Attaches tc program ``fn`` (``SEC("tcx/ingress")``, ``SEC("tcx/egress")`` or
        ``SEC("tc")``; a Function or a program name) to ``dev``'s ``direction``, "ingress" or
        "egress". Returns the mechanism used: ``"tcx"`` or ``"clsact"``.

        * ``mode="tcx"``: a tcx BPF link (kernel 6.6+), which goes with the object or the
          process, and sits beside other tcx programs.
        * ``mode="clsact"``: a direct-action filter in a clsact qdisc, the way before tcx. bpfkit
          creates the qdisc if the interface has none and deletes it when the last filter bpfkit
        put there is detached. A clsact filter
          is not a link: if the process is killed, it stays until the interface goes or
          ``tc filter del`` removes it.
        * ``mode="auto"``: tcx where the kernel has it (6.6+), else clsact.

        The direction is the one asked for, whatever the ``SEC()`` says. The program returns
        ``TC_ACT_OK`` (0) to pass and ``TC_ACT_SHOT`` (2) to drop (tcx's ``TCX_PASS``/``TCX_DROP``
        have the same values).

        >>> b.attach_tc("eth0", "drop_port", direction="ingress")
        'tcx'
        """
        f = self._function(fn, (_PROG_TYPES["SCHED_CLS"],), "attach_tc")
        direction = _s(direction)
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
        mode = _s(mode)
        if mode not in ("auto", "tcx", "clsact"):
            raise ValueError(f"mode must be 'auto', 'tcx' or 'clsact', not {mode!r}")
        ifindex, name = _ifindex(dev)
        _link, how = self._obj.attach_tc(f.name, ifindex, name, direction == "ingress", mode)
        return how

    def detach_tc(self, dev: Union[str, bytes, int], direction: str = "ingress",
                  fn: Union[Function, str, bytes, None] = None) -> None:
        """Detaches the tc programs this object attached to ``dev``'s ``direction`` (only ``fn``
        when given). ``ValueError`` if there is none. A clsact qdisc that bpfkit created goes with
        the filter that created it."""
        name = _dev_name(dev)
        direction = _s(direction)
        prog = fn.name if isinstance(fn, Function) else (_s(fn) if fn else None)
        if self._obj.detach_ids([lk.id for lk in self._obj.links() if lk.kind == "tc" and
                                 lk.target == f"{name}:{direction}" and prog in (None, lk.program)]) == 0:
            raise ValueError(f"no tc program{f' {prog!r}' if prog else ''} attached to {name} {direction} "
                             "by this BPF object")

    # -- raw sockets -------------------------------------------------------------------------
    def attach_raw_socket(self, fn: Union[Function, str, bytes], dev: Union[str, bytes, int]) -> socket.socket:
        """Opens a raw ``AF_PACKET`` socket on interface ``dev`` that receives every protocol
        (``ETH_P_ALL``), attaches socket filter ``fn`` (``SEC("socket")``) to it, sets
        ``fn.sock`` to the socket's fd (as BCC does) and returns the socket.

        The caller reads frames from it (``sock.recv(2048)``: each starts with the Ethernet
        header); the filter's return value is how many bytes of each frame to keep (0 drops it).
        The socket is blocking; ``settimeout``/``setblocking`` change that. The filter is in
        place before the socket is bound, so no unfiltered frame is ever queued.
        ``close()`` on the BPF object closes the socket too (closing it earlier is fine).
        An unknown ``dev`` raises ``AttachError`` (ENODEV); a kernel refusal of the filter raises
        ``AttachError`` with its errno.

        >>> fn = b.load_func("http_filter", BPF.SOCKET_FILTER)
        >>> sock = BPF.attach_raw_socket(fn, "eth0")      # BCC's call; b.attach_raw_socket too
        >>> frame = sock.recv(2048)
        """
        import socket

        f = self._function(fn, (self.SOCKET_FILTER,), "attach_raw_socket")
        ifindex, name = _ifindex(dev)
        try:
            # Protocol 0: the socket receives nothing until bind() names ETH_P_ALL below.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        except OSError as e:
            cls = PrivilegeError if e.errno in (_errno.EPERM, _errno.EACCES) else AttachError
            raise cls(f"opening a raw packet socket for {name}: {e.strerror}"
                      + (" (needs CAP_NET_RAW)" if cls is PrivilegeError else ""), e.errno) from None
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, f.fd)
            except OSError as e:
                raise AttachError(f"attaching socket filter {f.name!r} to a raw socket on {name} "
                                  f"(SO_ATTACH_BPF): {e.strerror}", e.errno) from None
            try:
                sock.bind((name, _ETH_P_ALL))
            except OSError as e:
                raise AttachError(f"binding a raw socket to {name} (ifindex {ifindex}): {e.strerror}",
                                  e.errno) from None
        except BaseException:
            sock.close()
            raise
        self.__dict__.setdefault("_net_sockets", []).append(sock)
        f.sock = sock.fileno()
        return sock

    attach_raw_socket = _BccStatic(attach_raw_socket, _owner_from_fn(0))

    # -- cgroups -----------------------------------------------------------------------------
    @staticmethod
    def cgroup2_mountpoint() -> str:
        """Where cgroup v2 is mounted, mounting it when none is and the process is root (see
        :func:`bpfkit._attach_net.cgroup2_mountpoint`)."""
        return cgroup2_mountpoint()

    @staticmethod
    def _cgroup_dir(cgroup_path: Union[str, bytes, os.PathLike[str]], mount: bool) -> str:
        p = _s(cgroup_path)
        if not os.path.isabs(p):
            p = os.path.join(cgroup2_mountpoint() if mount else _cgroup2_no_mount(), p)
        p = os.path.realpath(p)
        if not mount:
            return p
        if not os.path.exists(p):
            raise AttachError(f"no cgroup {p}: create it with `mkdir {p}` (under the cgroup v2 "
                              f"mount, {cgroup2_mountpoint()})", _errno.ENOENT)
        if not os.path.isdir(p):
            raise AttachError(f"{p} is not a cgroup directory", _errno.ENOTDIR)
        mp, fstype = _mount_of(p)
        if fstype != "cgroup2":
            root = cgroup2_mountpoint()
            raise AttachError(f"{p} is not in the cgroup v2 hierarchy (it is on {fstype or 'an unknown fs'} "
                              f"mounted at {mp}); cgroup programs attach to cgroup v2 directories, "
                              f"under {root}", _errno.EBADF)
        return p

    def attach_cgroup(self, cgroup_path: Union[str, bytes, os.PathLike[str]],
                      fn_name: Union[Function, str, bytes]) -> None:
        """Attaches cgroup program ``fn_name`` (a name or a Function) to the cgroup v2 directory
        ``cgroup_path`` through a BPF link (kernel 5.7+). The ``SEC()`` names the hook:
        ``cgroup_skb/ingress``, ``cgroup_skb/egress``, ``cgroup/sock_create``,
        ``cgroup/connect4``, ``cgroup/sysctl``, ``sockops``, ... The program applies to every
        process in the cgroup and its descendants.

        A relative ``cgroup_path`` is taken under the cgroup v2 mount (``"system.slice"``),
        which is mounted if it is not and the process is root (see :meth:`cgroup2_mountpoint`).
        A missing directory, or one outside cgroup v2 (a v1 controller's), raises
        ``AttachError`` saying so.

        >>> b.attach_cgroup("/sys/fs/cgroup/mygroup", "count_egress")
        """
        f = self._function(fn_name, _CGROUP_PROG_TYPES, "attach_cgroup")
        path = self._cgroup_dir(cgroup_path, mount=True)
        self._obj.attach_cgroup(f.name, path)

    def detach_cgroup(self, cgroup_path: Union[str, bytes, os.PathLike[str]],
                      fn_name: Union[Function, str, bytes, None] = None) -> None:
        """Detaches the programs this object attached to cgroup ``cgroup_path`` (only
        ``fn_name`` when given); ``ValueError`` if there is none."""
        path = self._cgroup_dir(cgroup_path, mount=False)
        prog = fn_name.name if isinstance(fn_name, Function) else (_s(fn_name) if fn_name else None)
        if self._obj.detach_ids([lk.id for lk in self._obj.links() if lk.kind == "cgroup" and
                                 lk.target == path and prog in (None, lk.program)]) == 0:
            raise ValueError(f"no cgroup program{f' {prog!r}' if prog else ''} attached to {path} "
                             "by this BPF object")


def _cgroup2_no_mount() -> str:
    mounts = [mp for mp, fstype in _mounts() if fstype == "cgroup2"]
    for preferred in _CGROUP2_DEFAULT_MOUNTS:
        if preferred in mounts:
            return preferred
    return mounts[0] if mounts else _CGROUP2_DEFAULT_MOUNTS[0]


# BCC's program-type constants (BPF.XDP, BPF.SCHED_CLS, ...): the kernel's names and numbers.
for _num, _name in _PROG_TYPE_NAMES.items():
    setattr(NetAttachMixin, _name, _num)
del _num, _name
