//! The one parser of `SEC("...")` names.
//!
//! A program's ELF section says what kind of hook it is for and, often, which hook:
//! `tracepoint/syscalls/sys_enter_openat`, `kretprobe/do_sys_openat2`, `uprobe.multi//usr/lib/libc.so.6:malloc*`,
//! `tcx/ingress`. [`Section::parse`] turns the string into a typed [`Section`] once; loading,
//! auto-attach, fallback ladders and the Python attach calls all ask it instead of splitting
//! strings themselves. The names follow libbpf's section table (libbpf decides the program type
//! from the same strings), plus BCC's spellings where they differ (`raw_tracepoint/`).

use crate::core::features::{self, Feature};

/// The kind of hook a section names (the part before the first `/`, normalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachKind {
    /// `tracepoint/<category>/<name>` or `tp/...` (kernel 4.7).
    Tracepoint,
    /// `raw_tp/<name>` or `raw_tracepoint/<name>` (4.17); `.w` forms are writable (5.2).
    RawTracepoint,
    /// `tp_btf/<name>`: a BTF-typed raw tracepoint (5.5).
    TpBtf,
    /// `kprobe/<function>[+offset]` (4.1).
    Kprobe,
    /// `kretprobe/<function>` (4.1).
    Kretprobe,
    /// `kprobe.multi/<pattern>` (5.18).
    KprobeMulti,
    /// `kretprobe.multi/<pattern>` (5.18).
    KretprobeMulti,
    /// `ksyscall/<syscall>` (a kprobe on the syscall's entry, 4.1).
    Ksyscall,
    /// `kretsyscall/<syscall>`.
    Kretsyscall,
    /// `uprobe/<path>:<symbol>[+offset]` (4.1).
    Uprobe,
    /// `uretprobe/<path>:<symbol>`.
    Uretprobe,
    /// `uprobe.multi/<path>:<pattern>` (6.6).
    UprobeMulti,
    /// `uretprobe.multi/<path>:<pattern>` (6.6).
    UretprobeMulti,
    /// `usdt/<path>:<provider>:<name>` (uprobes plus libbpf's USDT support).
    Usdt,
    /// `fentry/<function>` (5.5).
    Fentry,
    /// `fexit/<function>` (5.5).
    Fexit,
    /// `fmod_ret/<function>` (5.7).
    FmodRet,
    /// `lsm/<hook>` (5.7).
    Lsm,
    /// `iter/<target>` (5.8).
    Iter,
    /// `perf_event` (4.9): attached to perf events explicitly.
    PerfEvent,
    /// `xdp`, `xdp.frags` (4.8).
    Xdp,
    /// `tc`, `classifier`, `action` (4.1): a clsact filter or tcx link, direction chosen at attach.
    Tc,
    /// `tcx/ingress`, `tcx/egress` (6.6).
    Tcx,
    /// `socket` (3.19).
    Socket,
    /// `cgroup_skb/ingress|egress` (4.10).
    CgroupSkb,
    /// `cgroup/<hook>` (sock_create, connect4, sysctl, dev, ...; 4.10 and later).
    Cgroup,
    /// Any other section libbpf knows (sk_msg, sockops, struct_ops, syscall, ...): loaded, never
    /// attached automatically.
    Other,
}

impl AttachKind {
    /// The kind's canonical name, as links report it (`"kretprobe"`, `"raw_tracepoint"`).
    pub fn name(self) -> &'static str {
        match self {
            AttachKind::Tracepoint => "tracepoint",
            AttachKind::RawTracepoint => "raw_tracepoint",
            AttachKind::TpBtf => "tp_btf",
            AttachKind::Kprobe => "kprobe",
            AttachKind::Kretprobe => "kretprobe",
            AttachKind::KprobeMulti => "kprobe.multi",
            AttachKind::KretprobeMulti => "kretprobe.multi",
            AttachKind::Ksyscall => "ksyscall",
            AttachKind::Kretsyscall => "kretsyscall",
            AttachKind::Uprobe => "uprobe",
            AttachKind::Uretprobe => "uretprobe",
            AttachKind::UprobeMulti => "uprobe.multi",
            AttachKind::UretprobeMulti => "uretprobe.multi",
            AttachKind::Usdt => "usdt",
            AttachKind::Fentry => "fentry",
            AttachKind::Fexit => "fexit",
            AttachKind::FmodRet => "fmod_ret",
            AttachKind::Lsm => "lsm",
            AttachKind::Iter => "iter",
            AttachKind::PerfEvent => "perf_event",
            AttachKind::Xdp => "xdp",
            AttachKind::Tc => "tc",
            AttachKind::Tcx => "tcx",
            AttachKind::Socket => "socket",
            AttachKind::CgroupSkb => "cgroup_skb",
            AttachKind::Cgroup => "cgroup",
            AttachKind::Other => "other",
        }
    }

    /// The kernel feature this kind of program needs beyond plain BPF, if any.
    pub fn feature(self) -> Option<&'static Feature> {
        use features::feature as f;
        Some(match self {
            AttachKind::Kprobe | AttachKind::Kretprobe | AttachKind::Ksyscall | AttachKind::Kretsyscall => &f::KPROBES,
            AttachKind::KprobeMulti | AttachKind::KretprobeMulti => &f::KPROBE_MULTI,
            AttachKind::Uprobe | AttachKind::Uretprobe | AttachKind::Usdt => &f::UPROBES,
            AttachKind::UprobeMulti | AttachKind::UretprobeMulti => &f::UPROBE_MULTI,
            AttachKind::Fentry | AttachKind::FmodRet => &f::FENTRY,
            AttachKind::Fexit => &f::FEXIT,
            AttachKind::Lsm => &f::LSM,
            AttachKind::TpBtf => &f::TP_BTF,
            AttachKind::RawTracepoint => &f::RAW_TP,
            AttachKind::Tcx => &f::TCX,
            _ => return None,
        })
    }

    /// Whether the program runs on a function's return (kretprobe, uretprobe, fexit).
    pub fn is_return(self) -> bool {
        matches!(
            self,
            AttachKind::Kretprobe
                | AttachKind::KretprobeMulti
                | AttachKind::Kretsyscall
                | AttachKind::Uretprobe
                | AttachKind::UretprobeMulti
                | AttachKind::Fexit
        )
    }

    /// Whether one link of this kind covers many functions or offsets.
    pub fn is_multi(self) -> bool {
        matches!(
            self,
            AttachKind::KprobeMulti | AttachKind::KretprobeMulti | AttachKind::UprobeMulti | AttachKind::UretprobeMulti
        )
    }

    /// Whether this is a kernel-function probe (kprobe family).
    pub fn is_kprobe(self) -> bool {
        matches!(
            self,
            AttachKind::Kprobe
                | AttachKind::Kretprobe
                | AttachKind::KprobeMulti
                | AttachKind::KretprobeMulti
                | AttachKind::Ksyscall
                | AttachKind::Kretsyscall
        )
    }

    /// Whether this is a user-space probe (uprobe family, USDT).
    pub fn is_uprobe(self) -> bool {
        matches!(
            self,
            AttachKind::Uprobe | AttachKind::Uretprobe | AttachKind::UprobeMulti | AttachKind::UretprobeMulti | AttachKind::Usdt
        )
    }
}

/// A parsed `SEC()` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section as written.
    pub raw: String,
    /// What kind of hook.
    pub kind: AttachKind,
    /// What follows the kind's `/`, if anything (`"syscalls/sys_enter_openat"`, `"ingress"`).
    pub target: Option<String>,
    /// A sleepable variant (`.s`).
    pub sleepable: bool,
    /// A writable raw tracepoint (`.w`).
    pub writable: bool,
}

impl Section {
    /// Parses a section name. Never fails: a section bpfkit does not know is
    /// [`AttachKind::Other`], which libbpf may still load.
    ///
    /// ```
    /// use bpfkit::core::section::{AttachKind, Section};
    /// let s = Section::parse("tracepoint/syscalls/sys_enter_openat");
    /// assert_eq!(s.kind, AttachKind::Tracepoint);
    /// assert_eq!(s.tracepoint(), Some(("syscalls", "sys_enter_openat")));
    /// ```
    pub fn parse(raw: &str) -> Section {
        let (head, rest) = match raw.split_once('/') {
            Some((h, r)) => (h, Some(r)),
            None => (raw, None),
        };
        let (base, sleepable, writable) = if let Some(b) = head.strip_suffix(".s") {
            (b, true, false)
        } else if let Some(b) = head.strip_suffix(".w") {
            (b, false, true)
        } else {
            (head, false, false)
        };
        let kind = match base {
            "tracepoint" | "tp" => AttachKind::Tracepoint,
            "raw_tp" | "raw_tracepoint" => AttachKind::RawTracepoint,
            "tp_btf" => AttachKind::TpBtf,
            "kprobe" => AttachKind::Kprobe,
            "kretprobe" => AttachKind::Kretprobe,
            "kprobe.multi" => AttachKind::KprobeMulti,
            "kretprobe.multi" => AttachKind::KretprobeMulti,
            "ksyscall" => AttachKind::Ksyscall,
            "kretsyscall" => AttachKind::Kretsyscall,
            "uprobe" => AttachKind::Uprobe,
            "uretprobe" => AttachKind::Uretprobe,
            "uprobe.multi" => AttachKind::UprobeMulti,
            "uretprobe.multi" => AttachKind::UretprobeMulti,
            "usdt" => AttachKind::Usdt,
            "fentry" => AttachKind::Fentry,
            "fexit" => AttachKind::Fexit,
            "fmod_ret" => AttachKind::FmodRet,
            "lsm" | "lsm_cgroup" => AttachKind::Lsm,
            "iter" => AttachKind::Iter,
            "perf_event" => AttachKind::PerfEvent,
            "xdp" | "xdp.frags" => AttachKind::Xdp,
            "tc" | "classifier" | "action" => AttachKind::Tc,
            "tcx" => AttachKind::Tcx,
            "socket" => AttachKind::Socket,
            "cgroup_skb" => AttachKind::CgroupSkb,
            "cgroup" => AttachKind::Cgroup,
            _ => AttachKind::Other,
        };
        let target = rest.filter(|r| !r.is_empty()).map(str::to_string);
        Section { raw: raw.to_string(), kind, target, sleepable, writable }
    }

    /// `(category, name)` of a `tracepoint/<category>/<name>` section.
    pub fn tracepoint(&self) -> Option<(&str, &str)> {
        if self.kind != AttachKind::Tracepoint {
            return None;
        }
        self.target.as_deref()?.split_once('/').filter(|(c, n)| !c.is_empty() && !n.is_empty())
    }

    /// `(function, offset)` of a `kprobe/<function>[+offset]` or `kretprobe/<function>` section.
    pub fn kprobe_function(&self) -> Option<(&str, u64)> {
        if !matches!(self.kind, AttachKind::Kprobe | AttachKind::Kretprobe) {
            return None;
        }
        let t = self.target.as_deref()?;
        match t.split_once('+') {
            Some((f, off)) => Some((f, parse_offset(off)?)),
            None => Some((t, 0)),
        }
    }

    /// Whether the section names its hook completely, so that loading can attach it (a bare
    /// `SEC("kprobe")` is attached later, by name; so are XDP, tc, socket and cgroup programs,
    /// which need an interface or a cgroup).
    pub fn names_its_hook(&self) -> bool {
        let Some(t) = self.target.as_deref() else { return false };
        match self.kind {
            AttachKind::Tracepoint => self.tracepoint().is_some(),
            AttachKind::Uprobe | AttachKind::Uretprobe | AttachKind::UprobeMulti | AttachKind::UretprobeMulti | AttachKind::Usdt => {
                t.contains(':')
            }
            AttachKind::RawTracepoint
            | AttachKind::TpBtf
            | AttachKind::Kprobe
            | AttachKind::Kretprobe
            | AttachKind::KprobeMulti
            | AttachKind::KretprobeMulti
            | AttachKind::Ksyscall
            | AttachKind::Kretsyscall
            | AttachKind::Fentry
            | AttachKind::Fexit
            | AttachKind::FmodRet
            | AttachKind::Lsm
            | AttachKind::Iter => true,
            _ => false,
        }
    }

    /// The kernel feature the program needs, if any (see [`AttachKind::feature`]).
    pub fn feature(&self) -> Option<&'static Feature> {
        self.kind.feature()
    }
}

fn parse_offset(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_targets_and_variants() {
        let cases = [
            ("tracepoint/syscalls/sys_enter_openat", AttachKind::Tracepoint, Some("syscalls/sys_enter_openat"), true),
            ("tp/sched/sched_switch", AttachKind::Tracepoint, Some("sched/sched_switch"), true),
            ("tracepoint/syscalls", AttachKind::Tracepoint, Some("syscalls"), false),
            ("raw_tracepoint/sched_switch", AttachKind::RawTracepoint, Some("sched_switch"), true),
            ("raw_tp.w/bpf_test_finish", AttachKind::RawTracepoint, Some("bpf_test_finish"), true),
            ("kprobe", AttachKind::Kprobe, None, false),
            ("kprobe/", AttachKind::Kprobe, None, false),
            ("kretprobe/do_sys_openat2", AttachKind::Kretprobe, Some("do_sys_openat2"), true),
            ("kprobe.multi/vfs_*", AttachKind::KprobeMulti, Some("vfs_*"), true),
            ("uprobe//usr/lib/libc.so.6:malloc", AttachKind::Uprobe, Some("/usr/lib/libc.so.6:malloc"), true),
            ("uprobe", AttachKind::Uprobe, None, false),
            ("uprobe.s/x", AttachKind::Uprobe, Some("x"), false),
            ("usdt/./t:prov:probe", AttachKind::Usdt, Some("./t:prov:probe"), true),
            ("fentry.s/do_unlinkat", AttachKind::Fentry, Some("do_unlinkat"), true),
            ("lsm/file_open", AttachKind::Lsm, Some("file_open"), true),
            ("xdp", AttachKind::Xdp, None, false),
            ("xdp.frags", AttachKind::Xdp, None, false),
            ("tcx/ingress", AttachKind::Tcx, Some("ingress"), false),
            ("cgroup_skb/egress", AttachKind::CgroupSkb, Some("egress"), false),
            ("cgroup/sock_create", AttachKind::Cgroup, Some("sock_create"), false),
            ("license", AttachKind::Other, None, false),
            ("", AttachKind::Other, None, false),
        ];
        for (raw, kind, target, names) in cases {
            let s = Section::parse(raw);
            assert_eq!(s.kind, kind, "{raw}");
            assert_eq!(s.target.as_deref(), target, "{raw}");
            assert_eq!(s.names_its_hook(), names, "{raw}");
            assert_eq!(s.raw, raw);
        }
        assert!(Section::parse("uprobe.s/x").sleepable);
        assert!(Section::parse("raw_tp.w/x").writable);
    }

    #[test]
    fn kprobe_offsets_and_tracepoint_parts() {
        assert_eq!(Section::parse("kprobe/do_sys_open+0x10").kprobe_function(), Some(("do_sys_open", 16)));
        assert_eq!(Section::parse("kprobe/do_sys_open+16").kprobe_function(), Some(("do_sys_open", 16)));
        assert_eq!(Section::parse("kprobe/do_sys_open+zz").kprobe_function(), None);
        assert_eq!(Section::parse("kretprobe/f").kprobe_function(), Some(("f", 0)));
        assert_eq!(Section::parse("tracepoint/a/b").tracepoint(), Some(("a", "b")));
        assert_eq!(Section::parse("tracepoint/a/").tracepoint(), None);
        assert_eq!(Section::parse("raw_tp/a/b").tracepoint(), None);
    }

    #[test]
    fn features_and_families() {
        assert_eq!(Section::parse("kretprobe/x").feature().map(|f| f.name), Some("kprobes"));
        assert_eq!(Section::parse("fexit/x").feature().map(|f| f.name), Some("fexit"));
        assert_eq!(Section::parse("uretprobe.multi/x:y").feature().map(|f| f.name), Some("uprobe_multi"));
        assert_eq!(Section::parse("tracepoint/a/b").feature(), None);
        assert!(AttachKind::Uretprobe.is_return() && AttachKind::Uretprobe.is_uprobe());
        assert!(AttachKind::KprobeMulti.is_multi() && AttachKind::KprobeMulti.is_kprobe());
        // Every feature a kind names is a probe bpfkit has.
        for raw in ["kprobe/x", "kprobe.multi/x", "uprobe/x:y", "uprobe.multi/x:y", "fentry/x", "fexit/x", "lsm/x", "tp_btf/x", "raw_tp/x", "tcx/ingress"] {
            let f = Section::parse(raw).feature().unwrap();
            assert!(features::find(f.name).is_some(), "{raw}");
        }
    }
}
