//! Typed kernel constants: map, program and attach types, taken from `libbpf_sys` (never numbers
//! copied by hand), each with its name as the kernel spells it and the first kernel that has it.

use libbpf_sys as lb;

/// Declares a kernel enum: one variant per `libbpf_sys` constant, `Unknown(raw)` for numbers a
/// newer kernel may report, `raw()`/`from_raw()`, the kernel's name and the first kernel version.
macro_rules! kernel_enum {
    ($(#[$meta:meta])* $ty:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $konst:ident, $name:literal, $since:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)*
            /// A value this build of bpfkit does not name.
            Unknown(u32),
        }

        impl $ty {
            /// Every named value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)*];

            /// The kernel's number.
            pub fn raw(self) -> u32 {
                match self {
                    $($ty::$variant => lb::$konst as u32,)*
                    $ty::Unknown(n) => n,
                }
            }

            /// The value for the kernel's number `n`.
            pub fn from_raw(n: u32) -> $ty {
                $(if n == lb::$konst as u32 { return $ty::$variant; })*
                $ty::Unknown(n)
            }

            /// The name as the kernel spells it after its prefix (`"HASH"`, `"KPROBE"`), or
            /// `"UNKNOWN"`.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                    $ty::Unknown(_) => "UNKNOWN",
                }
            }

            /// The first mainline kernel version with this value (`"4.6"`), "" when unknown.
            pub fn since(self) -> &'static str {
                match self {
                    $($ty::$variant => $since,)*
                    $ty::Unknown(_) => "",
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $ty::Unknown(n) => write!(f, concat!($what, " {}"), n),
                    t => f.write_str(t.name()),
                }
            }
        }
    };
}

kernel_enum!(
    /// `BPF_MAP_TYPE_*`.
    MapType, "map type", {
    Hash = BPF_MAP_TYPE_HASH, "HASH", "3.19";
    Array = BPF_MAP_TYPE_ARRAY, "ARRAY", "3.19";
    ProgArray = BPF_MAP_TYPE_PROG_ARRAY, "PROG_ARRAY", "4.2";
    PerfEventArray = BPF_MAP_TYPE_PERF_EVENT_ARRAY, "PERF_EVENT_ARRAY", "4.3";
    PercpuHash = BPF_MAP_TYPE_PERCPU_HASH, "PERCPU_HASH", "4.6";
    PercpuArray = BPF_MAP_TYPE_PERCPU_ARRAY, "PERCPU_ARRAY", "4.6";
    StackTrace = BPF_MAP_TYPE_STACK_TRACE, "STACK_TRACE", "4.6";
    CgroupArray = BPF_MAP_TYPE_CGROUP_ARRAY, "CGROUP_ARRAY", "4.8";
    LruHash = BPF_MAP_TYPE_LRU_HASH, "LRU_HASH", "4.10";
    LruPercpuHash = BPF_MAP_TYPE_LRU_PERCPU_HASH, "LRU_PERCPU_HASH", "4.10";
    LpmTrie = BPF_MAP_TYPE_LPM_TRIE, "LPM_TRIE", "4.11";
    ArrayOfMaps = BPF_MAP_TYPE_ARRAY_OF_MAPS, "ARRAY_OF_MAPS", "4.12";
    HashOfMaps = BPF_MAP_TYPE_HASH_OF_MAPS, "HASH_OF_MAPS", "4.12";
    Devmap = BPF_MAP_TYPE_DEVMAP, "DEVMAP", "4.14";
    Sockmap = BPF_MAP_TYPE_SOCKMAP, "SOCKMAP", "4.14";
    Cpumap = BPF_MAP_TYPE_CPUMAP, "CPUMAP", "4.15";
    Xskmap = BPF_MAP_TYPE_XSKMAP, "XSKMAP", "4.18";
    Sockhash = BPF_MAP_TYPE_SOCKHASH, "SOCKHASH", "4.18";
    CgroupStorage = BPF_MAP_TYPE_CGROUP_STORAGE, "CGROUP_STORAGE", "4.19";
    ReuseportSockarray = BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "REUSEPORT_SOCKARRAY", "4.19";
    PercpuCgroupStorage = BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, "PERCPU_CGROUP_STORAGE", "4.20";
    Queue = BPF_MAP_TYPE_QUEUE, "QUEUE", "4.20";
    Stack = BPF_MAP_TYPE_STACK, "STACK", "4.20";
    SkStorage = BPF_MAP_TYPE_SK_STORAGE, "SK_STORAGE", "5.2";
    DevmapHash = BPF_MAP_TYPE_DEVMAP_HASH, "DEVMAP_HASH", "5.4";
    StructOps = BPF_MAP_TYPE_STRUCT_OPS, "STRUCT_OPS", "5.6";
    Ringbuf = BPF_MAP_TYPE_RINGBUF, "RINGBUF", "5.8";
    InodeStorage = BPF_MAP_TYPE_INODE_STORAGE, "INODE_STORAGE", "5.10";
    TaskStorage = BPF_MAP_TYPE_TASK_STORAGE, "TASK_STORAGE", "5.11";
    BloomFilter = BPF_MAP_TYPE_BLOOM_FILTER, "BLOOM_FILTER", "5.16";
    UserRingbuf = BPF_MAP_TYPE_USER_RINGBUF, "USER_RINGBUF", "6.1";
    CgrpStorage = BPF_MAP_TYPE_CGRP_STORAGE, "CGRP_STORAGE", "6.2";
    Arena = BPF_MAP_TYPE_ARENA, "ARENA", "6.9";
});

impl MapType {
    /// Whether values are stored once per possible CPU (a value buffer holds ncpu slots of
    /// the value size rounded up to 8 bytes).
    pub fn is_percpu(self) -> bool {
        matches!(self, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash | MapType::PercpuCgroupStorage)
    }

    /// Whether this is an array: keys are the indexes 0..max_entries, entries cannot be deleted.
    pub fn is_array(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }

    /// Whether the map has values but no keys (queue, stack, bloom filter).
    pub fn is_keyless(self) -> bool {
        matches!(self, MapType::Queue | MapType::Stack | MapType::BloomFilter)
    }

    /// Whether the map carries events to user space (ring buffer, perf event array).
    pub fn is_event_stream(self) -> bool {
        matches!(self, MapType::Ringbuf | MapType::PerfEventArray)
    }
}

kernel_enum!(
    /// `BPF_PROG_TYPE_*`.
    ProgType, "program type", {
    SocketFilter = BPF_PROG_TYPE_SOCKET_FILTER, "SOCKET_FILTER", "3.19";
    Kprobe = BPF_PROG_TYPE_KPROBE, "KPROBE", "4.1";
    SchedCls = BPF_PROG_TYPE_SCHED_CLS, "SCHED_CLS", "4.1";
    SchedAct = BPF_PROG_TYPE_SCHED_ACT, "SCHED_ACT", "4.1";
    Tracepoint = BPF_PROG_TYPE_TRACEPOINT, "TRACEPOINT", "4.7";
    Xdp = BPF_PROG_TYPE_XDP, "XDP", "4.8";
    PerfEvent = BPF_PROG_TYPE_PERF_EVENT, "PERF_EVENT", "4.9";
    CgroupSkb = BPF_PROG_TYPE_CGROUP_SKB, "CGROUP_SKB", "4.10";
    CgroupSock = BPF_PROG_TYPE_CGROUP_SOCK, "CGROUP_SOCK", "4.10";
    LwtIn = BPF_PROG_TYPE_LWT_IN, "LWT_IN", "4.10";
    LwtOut = BPF_PROG_TYPE_LWT_OUT, "LWT_OUT", "4.10";
    LwtXmit = BPF_PROG_TYPE_LWT_XMIT, "LWT_XMIT", "4.10";
    SockOps = BPF_PROG_TYPE_SOCK_OPS, "SOCK_OPS", "4.13";
    SkSkb = BPF_PROG_TYPE_SK_SKB, "SK_SKB", "4.14";
    CgroupDevice = BPF_PROG_TYPE_CGROUP_DEVICE, "CGROUP_DEVICE", "4.15";
    SkMsg = BPF_PROG_TYPE_SK_MSG, "SK_MSG", "4.17";
    RawTracepoint = BPF_PROG_TYPE_RAW_TRACEPOINT, "RAW_TRACEPOINT", "4.17";
    CgroupSockAddr = BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "CGROUP_SOCK_ADDR", "4.17";
    LwtSeg6local = BPF_PROG_TYPE_LWT_SEG6LOCAL, "LWT_SEG6LOCAL", "4.18";
    LircMode2 = BPF_PROG_TYPE_LIRC_MODE2, "LIRC_MODE2", "4.18";
    SkReuseport = BPF_PROG_TYPE_SK_REUSEPORT, "SK_REUSEPORT", "4.19";
    FlowDissector = BPF_PROG_TYPE_FLOW_DISSECTOR, "FLOW_DISSECTOR", "4.20";
    CgroupSysctl = BPF_PROG_TYPE_CGROUP_SYSCTL, "CGROUP_SYSCTL", "5.2";
    RawTracepointWritable = BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, "RAW_TRACEPOINT_WRITABLE", "5.2";
    CgroupSockopt = BPF_PROG_TYPE_CGROUP_SOCKOPT, "CGROUP_SOCKOPT", "5.3";
    Tracing = BPF_PROG_TYPE_TRACING, "TRACING", "5.5";
    StructOps = BPF_PROG_TYPE_STRUCT_OPS, "STRUCT_OPS", "5.6";
    Ext = BPF_PROG_TYPE_EXT, "EXT", "5.6";
    Lsm = BPF_PROG_TYPE_LSM, "LSM", "5.7";
    SkLookup = BPF_PROG_TYPE_SK_LOOKUP, "SK_LOOKUP", "5.9";
    Syscall = BPF_PROG_TYPE_SYSCALL, "SYSCALL", "5.14";
    Netfilter = BPF_PROG_TYPE_NETFILTER, "NETFILTER", "6.4";
});

kernel_enum!(
    /// `BPF_*` attach types (enum bpf_attach_type), BCC's `BPFAttachType`.
    AttachType, "attach type", {
    CgroupInetIngress = BPF_CGROUP_INET_INGRESS, "CGROUP_INET_INGRESS", "4.10";
    CgroupInetEgress = BPF_CGROUP_INET_EGRESS, "CGROUP_INET_EGRESS", "4.10";
    CgroupInetSockCreate = BPF_CGROUP_INET_SOCK_CREATE, "CGROUP_INET_SOCK_CREATE", "4.10";
    CgroupSockOps = BPF_CGROUP_SOCK_OPS, "CGROUP_SOCK_OPS", "4.13";
    SkSkbStreamParser = BPF_SK_SKB_STREAM_PARSER, "SK_SKB_STREAM_PARSER", "4.14";
    SkSkbStreamVerdict = BPF_SK_SKB_STREAM_VERDICT, "SK_SKB_STREAM_VERDICT", "4.14";
    CgroupDevice = BPF_CGROUP_DEVICE, "CGROUP_DEVICE", "4.15";
    SkMsgVerdict = BPF_SK_MSG_VERDICT, "SK_MSG_VERDICT", "4.17";
    CgroupInet4Bind = BPF_CGROUP_INET4_BIND, "CGROUP_INET4_BIND", "4.17";
    CgroupInet6Bind = BPF_CGROUP_INET6_BIND, "CGROUP_INET6_BIND", "4.17";
    CgroupInet4Connect = BPF_CGROUP_INET4_CONNECT, "CGROUP_INET4_CONNECT", "4.17";
    CgroupInet6Connect = BPF_CGROUP_INET6_CONNECT, "CGROUP_INET6_CONNECT", "4.17";
    CgroupInet4PostBind = BPF_CGROUP_INET4_POST_BIND, "CGROUP_INET4_POST_BIND", "4.17";
    CgroupInet6PostBind = BPF_CGROUP_INET6_POST_BIND, "CGROUP_INET6_POST_BIND", "4.17";
    CgroupUdp4Sendmsg = BPF_CGROUP_UDP4_SENDMSG, "CGROUP_UDP4_SENDMSG", "4.18";
    CgroupUdp6Sendmsg = BPF_CGROUP_UDP6_SENDMSG, "CGROUP_UDP6_SENDMSG", "4.18";
    LircMode2 = BPF_LIRC_MODE2, "LIRC_MODE2", "4.18";
    FlowDissector = BPF_FLOW_DISSECTOR, "FLOW_DISSECTOR", "4.20";
    CgroupSysctl = BPF_CGROUP_SYSCTL, "CGROUP_SYSCTL", "5.2";
    CgroupUdp4Recvmsg = BPF_CGROUP_UDP4_RECVMSG, "CGROUP_UDP4_RECVMSG", "5.2";
    CgroupUdp6Recvmsg = BPF_CGROUP_UDP6_RECVMSG, "CGROUP_UDP6_RECVMSG", "5.2";
    CgroupGetsockopt = BPF_CGROUP_GETSOCKOPT, "CGROUP_GETSOCKOPT", "5.3";
    CgroupSetsockopt = BPF_CGROUP_SETSOCKOPT, "CGROUP_SETSOCKOPT", "5.3";
    TraceRawTp = BPF_TRACE_RAW_TP, "TRACE_RAW_TP", "5.5";
    TraceFentry = BPF_TRACE_FENTRY, "TRACE_FENTRY", "5.5";
    TraceFexit = BPF_TRACE_FEXIT, "TRACE_FEXIT", "5.5";
    ModifyReturn = BPF_MODIFY_RETURN, "MODIFY_RETURN", "5.7";
    LsmMac = BPF_LSM_MAC, "LSM_MAC", "5.7";
    TraceIter = BPF_TRACE_ITER, "TRACE_ITER", "5.8";
    CgroupInet4Getpeername = BPF_CGROUP_INET4_GETPEERNAME, "CGROUP_INET4_GETPEERNAME", "5.8";
    CgroupInet6Getpeername = BPF_CGROUP_INET6_GETPEERNAME, "CGROUP_INET6_GETPEERNAME", "5.8";
    CgroupInet4Getsockname = BPF_CGROUP_INET4_GETSOCKNAME, "CGROUP_INET4_GETSOCKNAME", "5.8";
    CgroupInet6Getsockname = BPF_CGROUP_INET6_GETSOCKNAME, "CGROUP_INET6_GETSOCKNAME", "5.8";
    XdpDevmap = BPF_XDP_DEVMAP, "XDP_DEVMAP", "5.8";
    CgroupInetSockRelease = BPF_CGROUP_INET_SOCK_RELEASE, "CGROUP_INET_SOCK_RELEASE", "5.9";
    XdpCpumap = BPF_XDP_CPUMAP, "XDP_CPUMAP", "5.9";
    SkLookup = BPF_SK_LOOKUP, "SK_LOOKUP", "5.9";
    Xdp = BPF_XDP, "XDP", "5.9";
    SkSkbVerdict = BPF_SK_SKB_VERDICT, "SK_SKB_VERDICT", "5.13";
    SkReuseportSelect = BPF_SK_REUSEPORT_SELECT, "SK_REUSEPORT_SELECT", "5.14";
    SkReuseportSelectOrMigrate = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, "SK_REUSEPORT_SELECT_OR_MIGRATE", "5.14";
    PerfEvent = BPF_PERF_EVENT, "PERF_EVENT", "5.15";
    TraceKprobeMulti = BPF_TRACE_KPROBE_MULTI, "TRACE_KPROBE_MULTI", "5.18";
    LsmCgroup = BPF_LSM_CGROUP, "LSM_CGROUP", "6.0";
    StructOps = BPF_STRUCT_OPS, "STRUCT_OPS", "6.4";
    Netfilter = BPF_NETFILTER, "NETFILTER", "6.4";
    TcxIngress = BPF_TCX_INGRESS, "TCX_INGRESS", "6.6";
    TcxEgress = BPF_TCX_EGRESS, "TCX_EGRESS", "6.6";
    TraceUprobeMulti = BPF_TRACE_UPROBE_MULTI, "TRACE_UPROBE_MULTI", "6.6";
    CgroupUnixConnect = BPF_CGROUP_UNIX_CONNECT, "CGROUP_UNIX_CONNECT", "6.7";
    CgroupUnixSendmsg = BPF_CGROUP_UNIX_SENDMSG, "CGROUP_UNIX_SENDMSG", "6.7";
    CgroupUnixRecvmsg = BPF_CGROUP_UNIX_RECVMSG, "CGROUP_UNIX_RECVMSG", "6.7";
    CgroupUnixGetpeername = BPF_CGROUP_UNIX_GETPEERNAME, "CGROUP_UNIX_GETPEERNAME", "6.7";
    CgroupUnixGetsockname = BPF_CGROUP_UNIX_GETSOCKNAME, "CGROUP_UNIX_GETSOCKNAME", "6.7";
    NetkitPrimary = BPF_NETKIT_PRIMARY, "NETKIT_PRIMARY", "6.7";
    NetkitPeer = BPF_NETKIT_PEER, "NETKIT_PEER", "6.7";
    TraceKprobeSession = BPF_TRACE_KPROBE_SESSION, "TRACE_KPROBE_SESSION", "6.10";
    TraceUprobeSession = BPF_TRACE_UPROBE_SESSION, "TRACE_UPROBE_SESSION", "6.13";
});

/// `BPF_F_MMAPABLE`: an array whose memory user space can map.
pub const F_MMAPABLE: u32 = lb::BPF_F_MMAPABLE;
/// The kernel's `ENOTSUPP` (524): "operation not supported" from inside the kernel, which some
/// BPF paths return instead of `EOPNOTSUPP`. Not in libc, as it is not a uapi errno.
pub const ENOTSUPP: i32 = 524;
/// `XDP_PASS`, the verdict of the feature probes' pass-through XDP program.
pub const XDP_PASS: u32 = lb::XDP_PASS;
/// `BPF_FUNC_get_attach_cookie`.
pub const FUNC_GET_ATTACH_COOKIE: u32 = lb::BPF_FUNC_get_attach_cookie;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_round_trip_and_match_uapi() {
        for t in MapType::ALL {
            assert_eq!(MapType::from_raw(t.raw()), *t);
        }
        for t in ProgType::ALL {
            assert_eq!(ProgType::from_raw(t.raw()), *t);
        }
        // Spot checks against the uapi numbers that other tools print.
        assert_eq!(MapType::Ringbuf.raw(), 27);
        assert_eq!(ProgType::Lsm.raw(), 29);
        assert_eq!(MapType::from_raw(999), MapType::Unknown(999));
        assert_eq!(MapType::from_raw(999).to_string(), "map type 999");
        assert!(MapType::LruPercpuHash.is_percpu() && !MapType::LruHash.is_percpu());
    }
}
