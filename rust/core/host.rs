//! What bpfkit needs from the host besides the bpf() syscall: privileges, the tracefs/debugfs/bpffs
//! mounts, kernel feature checks it must make before attaching, and finding shared libraries.

use std::fs;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};

/// Capability numbers from `linux/capability.h`.
pub mod cap {
    /// CAP_SYS_ADMIN: everything, on kernels before 5.8 the only way to use bpf().
    pub const SYS_ADMIN: u32 = 21;
    /// CAP_PERFMON (5.8+): tracing programs and perf events.
    pub const PERFMON: u32 = 38;
    /// CAP_BPF (5.8+): loading programs and creating maps.
    pub const BPF: u32 = 39;
    /// CAP_NET_ADMIN: XDP and TC.
    pub const NET_ADMIN: u32 = 12;
}

/// The effective capability set of this process, from `/proc/self/status`.
pub fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status").map_or(0, |s| cap_eff(&s))
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text (0 when absent).
fn cap_eff(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

fn has(caps: u64, c: u32) -> bool {
    caps & (1u64 << c) != 0
}

/// Fails with a [`Error::Privilege`] naming what is missing unless the process may load tracing
/// programs: root (CAP_SYS_ADMIN), or CAP_BPF together with CAP_PERFMON.
pub fn check_bpf_privileges() -> Result<()> {
    privileges(effective_caps(), crate::sys::euid())
}

fn privileges(caps: u64, euid: u32) -> Result<()> {
    if has(caps, cap::SYS_ADMIN) || (has(caps, cap::BPF) && has(caps, cap::PERFMON)) {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !has(caps, cap::BPF) {
        missing.push("CAP_BPF");
    }
    if !has(caps, cap::PERFMON) {
        missing.push("CAP_PERFMON");
    }
    Err(Error::Privilege {
        errno: libc::EPERM,
        message: format!(
            "loading BPF programs needs root, or CAP_BPF + CAP_PERFMON (this process, uid {euid}, lacks {}); \
             run with sudo or grant the capabilities (e.g. `setcap cap_bpf,cap_perfmon+ep`)",
            missing.join(" and ")
        ),
    })
}

/// The filesystems bpfkit may mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    /// tracefs at /sys/kernel/tracing: tracepoint ids, kprobe_events, trace_pipe.
    Tracefs,
    /// debugfs at /sys/kernel/debug: the legacy tracing path and kprobe blacklist.
    Debugfs,
    /// bpffs at /sys/fs/bpf: pinning.
    Bpffs,
    /// securityfs at /sys/kernel/security: the active LSMs and the lockdown state.
    Securityfs,
}

impl Fs {
    fn spec(self) -> (&'static str, &'static str, i64) {
        match self {
            Fs::Tracefs => ("/sys/kernel/tracing", "tracefs", 0x7472_6163),
            Fs::Debugfs => ("/sys/kernel/debug", "debugfs", 0x6462_6720),
            Fs::Bpffs => ("/sys/fs/bpf", "bpf", 0xcafe_4a11),
            Fs::Securityfs => ("/sys/kernel/security", "securityfs", 0x7363_6673),
        }
    }

    /// Where it is mounted.
    pub fn path(self) -> &'static str {
        self.spec().0
    }
}

/// Whether `path` is a mount of the filesystem with magic `magic`.
fn is_mounted(path: &str, magic: i64) -> bool {
    crate::sys::os::fs_magic(path).is_ok_and(|m| m == magic)
}

/// Makes sure `fs` is mounted at its usual place, mounting it when running as root. Returns
/// whether bpfkit mounted it. The error says exactly which mount is missing.
pub fn ensure_mounted(fs_kind: Fs) -> Result<bool> {
    let (path, fstype, magic) = fs_kind.spec();
    if is_mounted(path, magic) {
        return Ok(false);
    }
    if let Err(err) = crate::sys::os::mount_pseudo(fstype, path) {
        let errno = err.raw_os_error().unwrap_or(libc::EPERM);
        let message =
            format!("{fstype} is not mounted at {path} and mounting it failed ({err}); as root run `mount -t {fstype} {fstype} {path}`");
        return Err(if errno == libc::EPERM { Error::Privilege { errno, message } } else { Error::Os { errno, message } });
    }
    Ok(true)
}

/// The tracing directory (tracefs), mounting tracefs if needed.
pub fn tracing_dir() -> Result<&'static str> {
    ensure_mounted(Fs::Tracefs)?;
    Ok(Fs::Tracefs.path())
}

/// Why kprobes cannot be used on this kernel, or None when they can.
pub fn kprobes_unavailable() -> Option<String> {
    if Path::new("/sys/bus/event_source/devices/kprobe/type").exists() {
        return None;
    }
    // Older kernels without the kprobe PMU use tracefs's kprobe_events.
    let _ = ensure_mounted(Fs::Tracefs);
    if Path::new("/sys/kernel/tracing/kprobe_events").exists() || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists() {
        return None;
    }
    Some(
        "this kernel has no kprobes: no kprobe PMU (/sys/bus/event_source/devices/kprobe) and no \
         tracefs kprobe_events; it was built without CONFIG_KPROBES (use a tracepoint or raw_tp instead)"
            .to_string(),
    )
}

/// The [`Error::NotSupported`] for kprobes, or Ok when the kernel has them.
pub fn require_kprobes() -> Result<()> {
    match kprobes_unavailable() {
        None => Ok(()),
        Some(message) => {
            // The record's name with the option that is off, which is what users search for.
            let f = &crate::core::features::feature::KPROBES;
            Err(Error::NotSupported {
                feature: format!("{} ({})", f.name, f.config[0]),
                since: Some(f.since.to_string()),
                message,
                program: None,
            })
        }
    }
}

/// The kernel lockdown mode ("none", "integrity", "confidentiality"), when securityfs shows it.
pub fn lockdown() -> Option<String> {
    let _ = ensure_mounted(Fs::Securityfs);
    let s = fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    // "none [integrity] confidentiality": the bracketed word is the active mode.
    let start = s.find('[')?;
    let end = s[start..].find(']')? + start;
    Some(s[start + 1..end].to_string())
}

/// The active LSMs, from securityfs (e.g. `["lockdown", "capability", "bpf"]`).
pub fn active_lsms() -> Option<Vec<String>> {
    let _ = ensure_mounted(Fs::Securityfs);
    let s = fs::read_to_string("/sys/kernel/security/lsm").ok()?;
    Some(s.trim().split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
}

/// A kprobe event made through tracefs's `kprobe_events` (the way to ask for `maxactive`),
/// removed on drop. Its name carries the creating pid, so events left by a killed process are
/// recognised and removed by the next bpfkit that makes one.
pub struct KprobeEvent {
    group_name: String,
    /// The event's tracepoint id, for `perf_event_open(PERF_TYPE_TRACEPOINT)`.
    pub id: u64,
}

const KPROBE_GROUP: &str = "bpfkit";

fn kprobe_events_file() -> Result<PathBuf> {
    let dir = tracing_dir()?;
    Ok(Path::new(dir).join("kprobe_events"))
}

fn write_kprobe_events(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let path = kprobe_events_file().map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(line.as_bytes())
}

/// Removes the `bpfkit/` kprobe events whose creating process is gone.
pub fn remove_stale_kprobe_events() {
    let Ok(path) = kprobe_events_file() else { return };
    let Ok(text) = fs::read_to_string(path) else { return };
    for line in text.lines() {
        // "r100:bpfkit/p1234_5_vfs_read vfs_read"
        let Some(name) = line.split_whitespace().next().and_then(|h| h.split_once(':')).map(|(_, n)| n) else { continue };
        let Some(ev) = name.strip_prefix("bpfkit/p") else { continue };
        let Some(pid) = ev.split('_').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = write_kprobe_events(&format!("-:{name}\n"));
        }
    }
}

impl KprobeEvent {
    /// Creates `[r[maxactive]]:bpfkit/p<pid>_<n>_<func> func+offset`.
    pub fn create(func: &str, offset: u64, retprobe: bool, maxactive: u32) -> Result<KprobeEvent> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        require_kprobes()?;
        remove_stale_kprobe_events();
        if func.is_empty() || !func.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(Error::Value(format!("`{func}` is not a kernel function name")));
        }
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Event names are at most 64 characters (MAX_EVENT_NAME_LEN): keep the function's part short.
        let clean: String = func.chars().take(32).map(|c| if c == '.' { '_' } else { c }).collect();
        let ev = format!("p{}_{n}_{clean}", std::process::id());
        let kind = match (retprobe, maxactive) {
            (false, _) => "p".to_string(),
            (true, 0) => "r".to_string(),
            (true, m) => format!("r{m}"),
        };
        let target = if offset > 0 { format!("{func}+{offset}") } else { func.to_string() };
        let group_name = format!("{KPROBE_GROUP}/{ev}");
        write_kprobe_events(&format!("{kind}:{group_name} {target}\n")).map_err(|e| Error::Attach {
            program: None,
            target: Some(target.to_string()),
            errno: e.raw_os_error().unwrap_or(libc::EINVAL),
            message: format!("creating kprobe event `{kind}:{group_name} {target}` in kprobe_events: {e}"),
        })?;
        let mut this = KprobeEvent { group_name, id: 0 };
        let id_path = Path::new(tracing_dir()?).join("events").join(KPROBE_GROUP).join(&ev).join("id");
        let id = fs::read_to_string(&id_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Attach { errno: libc::ENOENT, message: format!("reading {}", id_path.display()), program: None, target: None })?;
        this.id = id;
        Ok(this)
    }
}

impl Drop for KprobeEvent {
    fn drop(&mut self) {
        if self.group_name.is_empty() {
            return;
        }
        let _ = write_kprobe_events(&format!("-:{}\n", self.group_name));
    }
}

/// Whether tracepoint `category:name` exists.
pub fn tracepoint_exists(category: &str, name: &str) -> bool {
    let Ok(dir) = tracing_dir() else { return false };
    Path::new(dir).join("events").join(category).join(name).join("id").exists()
}

/// The libraries the dynamic linker's cache (`/etc/ld.so.cache`) names, in its order: read once,
/// and again only when the file changes (a tool resolving twenty uprobes reads it once).
fn ld_cache_paths() -> std::sync::Arc<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex};
    type Stamp = (u64, u64, i64, i64, u64);
    static READ: Mutex<Option<(Stamp, Arc<Vec<String>>)>> = Mutex::new(None);
    const CACHE: &str = "/etc/ld.so.cache";
    let Ok(meta) = fs::metadata(CACHE) else { return Arc::new(Vec::new()) };
    let stamp = (meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size());
    let mut read = READ.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((seen, paths)) = read.as_ref() {
        if *seen == stamp {
            return Arc::clone(paths);
        }
    }
    let paths: Vec<String> = fs::read(CACHE)
        .map(|cache| {
            cache
                .split(|&b| b == 0)
                .filter_map(|s| std::str::from_utf8(s).ok())
                .filter(|s| s.starts_with('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let paths = Arc::new(paths);
    *read = Some((stamp, Arc::clone(&paths)));
    paths
}

/// Resolves a uprobe target: a path is returned as is; a short library name (`"c"`, `"libc"`,
/// `"libc.so.6"`) is looked up in the process's mappings (when `pid` is given), the dynamic
/// linker's cache and the standard library directories; a bare program name is looked up on PATH.
pub fn resolve_binary(name: &str, pid: Option<i32>) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.exists() {
            Ok(p)
        } else {
            Err(Error::Os { errno: libc::ENOENT, message: format!("uprobe target {name} does not exist") })
        };
    }
    let stem = name.strip_prefix("lib").unwrap_or(name);
    let stem = stem.split(".so").next().unwrap_or(stem);
    let prefix = format!("lib{stem}.so");
    let dotted = format!("{prefix}.");
    let matches = |p: &str| {
        Path::new(p).file_name().and_then(|f| f.to_str()).is_some_and(|f| f == prefix || f.starts_with(&dotted))
    };
    if let Some(pid) = pid.filter(|p| *p > 0) {
        if let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) {
            if let Some(p) = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| matches(p)) {
                return Ok(PathBuf::from(p));
            }
        }
    }
    if let Some(p) = ld_cache_paths().iter().find(|s| matches(s) && Path::new(s).exists()) {
        return Ok(PathBuf::from(p));
    }
    let arch_dir = format!("{}-linux-gnu", std::env::consts::ARCH);
    for dir in ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"] {
        for d in [PathBuf::from(dir).join(&arch_dir), PathBuf::from(dir)] {
            if let Ok(rd) = fs::read_dir(&d) {
                let mut found: Vec<PathBuf> =
                    rd.flatten().map(|e| e.path()).filter(|p| p.to_str().is_some_and(&matches)).collect();
                found.sort();
                if let Some(p) = found.into_iter().next() {
                    return Ok(p);
                }
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
    }
    Err(Error::Os {
        errno: libc::ENOENT,
        message: format!("cannot find library or binary `{name}` (looked for {prefix}* in ld.so.cache and the library directories, and on PATH)"),
    })
}

/// Opens directory `path` read-only (a cgroup, say), refusing anything that is not a directory
/// without blocking on it.
pub fn open_dir(path: &str) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(format!("opening directory {path}"), &e))
}

/// The running kernel's build configuration (`CONFIG_X=y` lines), from `/proc/config.gz`
/// (CONFIG_IKCONFIG_PROC) or `/boot/config-<release>`; None when neither is there.
pub fn kernel_config() -> Option<String> {
    use std::io::Read;
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(f).read_to_string(&mut text).is_ok() {
            return Some(text);
        }
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_libc_by_short_name() {
        let p = resolve_binary("c", None).unwrap();
        assert!(p.to_str().unwrap().contains("libc.so"), "{}", p.display());
        assert_eq!(resolve_binary("libc.so.6", None).unwrap(), p);
    }

    #[test]
    fn paths_pass_through_and_missing_is_an_error() {
        assert_eq!(resolve_binary("/bin/sh", None).unwrap(), PathBuf::from("/bin/sh"));
        assert!(resolve_binary("/nonexistent/x", None).is_err());
        assert!(resolve_binary("surely_no_such_library_xyz", None).is_err());
    }

    #[test]
    fn caps_parse_and_decide() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001c000000000\nCapBnd:\t000001ffffffffff\n";
        let caps = cap_eff(status);
        assert_eq!(caps, 0x1c0_0000_0000);
        assert!(has(caps, cap::BPF) && has(caps, cap::PERFMON) && !has(caps, cap::SYS_ADMIN));
        assert_eq!(cap_eff("Name:\tx\n"), 0);
        // CAP_BPF + CAP_PERFMON suffice; CAP_SYS_ADMIN alone too.
        assert!(privileges(caps, 1000).is_ok());
        assert!(privileges(1 << cap::SYS_ADMIN, 0).is_ok());
        // The refusal names exactly what is missing, and the uid.
        let only_bpf = privileges(1 << cap::BPF, 1000).unwrap_err().to_string();
        assert!(only_bpf.contains("lacks CAP_PERFMON") && !only_bpf.contains("CAP_BPF and") && only_bpf.contains("uid 1000"), "{only_bpf}");
        let none = privileges(0, 65534).unwrap_err();
        assert!(matches!(&none, Error::Privilege { errno: libc::EPERM, .. }));
        assert!(none.to_string().contains("lacks CAP_BPF and CAP_PERFMON"), "{none}");
    }
}
