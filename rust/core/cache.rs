//! The compile cache: a directory root can trust.
//!
//! Root loads whatever object the cache hands back, so the cache is only used when nobody but
//! its owner could have written it: the directory belongs to the effective user, has mode 0700
//! (no group or other write), and so does every file read from it; every ancestor directory is
//! owned by root or the user and not writable by others unless sticky (the rule OpenSSH applies
//! to `~/.ssh`). Objects are content-addressed: `refs/<key>` names `blobs/<sha256>`, and a blob
//! whose bytes do not hash to its name is discarded and recompiled.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::core::error::{Error, Result};

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_err(errno: i32, message: String) -> Error {
    Error::Cache { errno, message }
}

fn euid() -> u32 {
    crate::sys::euid()
}

/// The directory bpfkit caches in: `$BPFKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/bpfkit`, else
/// `~/.cache/bpfkit` (home from `$HOME`, else the password database).
pub fn default_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("BPFKIT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("bpfkit"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).or_else(home_from_passwd);
    match home {
        Some(h) => Ok(h.join(".cache").join("bpfkit")),
        None => Err(cache_err(
            libc::ENOENT,
            "no cache directory: set BPFKIT_CACHE_DIR, XDG_CACHE_HOME or HOME".to_string(),
        )),
    }
}

fn home_from_passwd() -> Option<PathBuf> {
    let uid = euid().to_string();
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 5 && f[2] == uid).map(|f| PathBuf::from(f[5]))
}

/// A checked cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

fn check_private(path: &Path, meta: &fs::Metadata, what: &str) -> Result<()> {
    let me = euid();
    if meta.uid() != me {
        return Err(cache_err(
            libc::EPERM,
            format!(
                "refusing to use {what} {}: it is owned by uid {}, not by the current user (uid {me}); \
                 root would load whatever another user put there. Remove it or set BPFKIT_CACHE_DIR",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(cache_err(
            libc::EPERM,
            format!(
                "refusing to use {what} {}: mode {:04o} lets group or others write it; run `chmod 700 {}`",
                path.display(),
                meta.mode() & 0o7777,
                path.display()
            ),
        ));
    }
    Ok(())
}

fn check_ancestors(dir: &Path) -> Result<()> {
    let me = euid();
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if let Ok(meta) = fs::metadata(p) {
            let owner_ok = meta.uid() == 0 || meta.uid() == me;
            let sticky = meta.mode() & 0o1000 != 0;
            if !owner_ok || (meta.mode() & 0o022 != 0 && !sticky) {
                return Err(cache_err(
                    libc::EPERM,
                    format!(
                        "refusing to use cache directory {}: its parent {} (uid {}, mode {:04o}) could be \
                         replaced by another user",
                        dir.display(),
                        p.display(),
                        meta.uid(),
                        meta.mode() & 0o7777
                    ),
                ));
            }
        }
        cur = p.parent();
    }
    Ok(())
}

impl Cache {
    /// Opens (creating with mode 0700 if missing) and checks the default cache directory.
    pub fn open_default() -> Result<Cache> {
        Cache::open(&default_dir()?)
    }

    /// Opens and checks `root`, creating it (and missing parents) if needed.
    pub fn open(root: &Path) -> Result<Cache> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| Error::io("finding the current directory", &e))?.join(root)
        };
        if !root.exists() {
            if let Some(parent) = root.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), &e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(&root) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(format!("creating cache directory {}", root.display()), &e)),
            }
        }
        let meta = fs::symlink_metadata(&root).map_err(|e| Error::io(format!("checking {}", root.display()), &e))?;
        if !meta.is_dir() {
            return Err(cache_err(libc::ENOTDIR, format!("cache path {} is not a directory", root.display())));
        }
        check_private(&root, &meta, "cache directory")?;
        check_ancestors(&root)?;
        let cache = Cache { root };
        for sub in ["refs", "blobs", "btf", "headers", "tmp"] {
            cache.private_dir(sub)?;
        }
        Ok(cache)
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A private subdirectory (created 0700, checked on every call).
    pub fn private_dir(&self, rel: &str) -> Result<PathBuf> {
        let p = self.root.join(rel);
        match fs::DirBuilder::new().mode(0o700).recursive(true).create(&p) {
            Ok(()) => {}
            Err(e) => return Err(Error::io(format!("creating {}", p.display()), &e)),
        }
        let meta = fs::symlink_metadata(&p).map_err(|e| Error::io(format!("checking {}", p.display()), &e))?;
        if !meta.is_dir() {
            return Err(cache_err(libc::ENOTDIR, format!("{} is not a directory", p.display())));
        }
        check_private(&p, &meta, "cache directory")?;
        Ok(p)
    }

    /// Reads a file of the cache after checking it is the user's own and not writable by others.
    /// `Ok(None)` when absent.
    pub fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("checking {}", path.display()), &e)),
        };
        if !meta.is_file() {
            return Err(cache_err(libc::EINVAL, format!("cache entry {} is not a regular file", path.display())));
        }
        check_private(path, &meta, "cache file")?;
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), &e)),
        }
    }

    /// Writes a file atomically (temporary file in the same directory, then rename), mode 0600.
    ///
    /// Not synced to disk: after a crash the file may be empty or short, which every reader of
    /// such a file notices (a blob's content must match its name, a ref is 64 hex digits, the
    /// headers are compared with bpfkit's own, a short feature line is probed again). Files
    /// trusted by their existence alone go through [`Cache::write_file_durable`]. A sync costs
    /// milliseconds per file, and a first compile writes several.
    pub fn write_file(&self, path: &Path, data: &[u8]) -> Result<()> {
        self.write_atomically(path, data, false)
    }

    /// [`Cache::write_file`], with the data on disk before the rename makes it visible.
    pub fn write_file_durable(&self, path: &Path, data: &[u8]) -> Result<()> {
        self.write_atomically(path, data, true)
    }

    fn write_atomically(&self, path: &Path, data: &[u8], sync: bool) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
        let res = (|| -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(data)?;
            if sync {
                f.sync_data().ok();
            }
            fs::rename(&tmp, path)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("writing {}", path.display()), &e));
        }
        Ok(())
    }

    /// The cached object for `key`, if present and intact. A blob whose content does not match
    /// its name is deleted, so the caller recompiles.
    pub fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let refp = self.root.join("refs").join(key);
        let Some(r) = self.read_file(&refp)? else { return Ok(None) };
        let sha = String::from_utf8_lossy(&r).trim().to_string();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = fs::remove_file(&refp);
            return Ok(None);
        }
        let blob = self.root.join("blobs").join(format!("{sha}.o"));
        let Some(data) = self.read_file(&blob)? else { return Ok(None) };
        if sha256_hex(&data) != sha {
            let _ = fs::remove_file(&blob);
            let _ = fs::remove_file(&refp);
            return Ok(None);
        }
        Ok(Some(data))
    }

    /// Stores `data` under `key`.
    pub fn put_object(&self, key: &str, data: &[u8]) -> Result<()> {
        let sha = sha256_hex(data);
        let blob = self.root.join("blobs").join(format!("{sha}.o"));
        self.write_file(&blob, data)?;
        self.write_file(&self.root.join("refs").join(key), sha.as_bytes())
    }

    /// A fresh private scratch directory under `tmp/`, removed when the guard drops.
    pub fn scratch(&self) -> Result<Scratch> {
        let base = self.private_dir("tmp")?;
        let p = base.join(format!("{}-{}", std::process::id(), unique()));
        fs::DirBuilder::new().mode(0o700).create(&p).map_err(|e| Error::io(format!("creating {}", p.display()), &e))?;
        Ok(Scratch(p))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}

/// A temporary directory that removes itself.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("bpfkit-cache-test-{tag}-{}-{}", std::process::id(), unique()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn creates_private_and_round_trips() {
        let d = tmpdir("rt");
        let c = Cache::open(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert!(c.get_object("k").unwrap().is_none());
        c.put_object("k", b"\x7fELF hello").unwrap();
        assert_eq!(c.get_object("k").unwrap().unwrap(), b"\x7fELF hello");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_group_writable() {
        let d = tmpdir("gw");
        Cache::open(&d).unwrap();
        set_mode(&d, 0o770).unwrap();
        let err = Cache::open(&d).unwrap_err();
        assert!(matches!(err, Error::Cache { .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_other_owner() {
        if euid() != 0 {
            return; // only root can create a directory owned by someone else
        }
        let d = tmpdir("own");
        fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
        let err = Cache::open(&d).unwrap_err();
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tampered_blob_is_discarded() {
        let d = tmpdir("tamper");
        let c = Cache::open(&d).unwrap();
        c.put_object("k", b"original").unwrap();
        let sha = sha256_hex(b"original");
        fs::write(d.join("blobs").join(format!("{sha}.o")), b"evil").unwrap();
        assert!(c.get_object("k").unwrap().is_none());
        assert!(!d.join("blobs").join(format!("{sha}.o")).exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
