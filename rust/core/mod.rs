//! The core in plain Rust, with no pyo3: compiling C against the kernel's BTF, the cache,
//! loading and attaching objects, maps, event streams, feature probes, host facts and symbols.
//! Everything here reaches libbpf only through [`crate::sys`].

pub mod bcc;
pub mod bcc_reads;
pub mod btf;
pub mod cache;
pub mod compile;
pub mod elf;
pub mod error;
pub mod events;
pub mod features;
pub mod flamegraph;
pub mod host;
pub mod link;
pub mod map;
pub mod object;
pub mod reloc;
pub mod section;
pub mod symbols;
