//! Embeds libbpf's BPF-side headers (exported by libbpf-sys as `DEP_BPF_INCLUDE`) and bpfkit's
//! own header into the library, so a compiled program needs no headers installed on the host.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The headers a BPF program may include. libbpf's user-space headers are not needed here.
const LIBBPF_BPF_HEADERS: &[&str] = &[
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_core_read.h",
    "bpf_endian.h",
    "usdt.bpf.h",
];

fn main() {
    let include = PathBuf::from(
        env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports DEP_BPF_INCLUDE (links = \"bpf\")"),
    );
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let own = manifest.join("rust/bpf/bpfkit.h");

    let mut entries: Vec<(String, PathBuf)> = LIBBPF_BPF_HEADERS
        .iter()
        .map(|h| (format!("bpf/{h}"), include.join("bpf").join(h)))
        .collect();
    entries.push(("bpfkit.h".to_string(), own.clone()));
    entries.push(("linux/errno.h".to_string(), manifest.join("rust/bpf/linux/errno.h")));
    entries.push(("bcc/helpers.h".to_string(), manifest.join("rust/bpf/bcc/helpers.h")));

    let mut out = String::from("/// `(relative path, contents)` of every header a BPF program can include.\n");
    out.push_str("pub static HEADERS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &entries {
        assert!(path.is_file(), "missing header {}", path.display());
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(out, "    ({name:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let version = fs::read_to_string(include.join("bpf/libbpf_version.h")).unwrap_or_default();
    writeln!(out, "/// libbpf's version header, part of every cache key.\npub static LIBBPF_VERSION_H: &str = {version:?};").unwrap();

    // The BCC translator's own source, hashed into the cache key of its translations: a change
    // to it makes every translation again.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for f in ["rust/core/bcc.rs", "rust/core/bcc_reads.rs"] {
        let path = manifest.join(f);
        println!("cargo:rerun-if-changed={}", path.display());
        for b in fs::read(&path).expect("read the translator's source") {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    writeln!(out, "/// FNV-1a of the BCC translator's source (rust/core/bcc.rs, bcc_reads.rs).\npub static TRANSLATOR_DIGEST: &str = \"{digest:016x}\";").unwrap();
    let dest = Path::new(&env::var("OUT_DIR").expect("set by cargo")).join("embedded_headers.rs");
    fs::write(dest, out).expect("write embedded_headers.rs");
    println!("cargo:rerun-if-changed=rust/build.rs");
}
