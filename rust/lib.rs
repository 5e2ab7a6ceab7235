//! bpfkit's core: run-time compilation of BPF C against the kernel's own BTF, loading and
//! attaching through libbpf, and map access, in plain Rust. The PyO3 bindings (feature `python`)
//! sit on top in [`python`]; nothing below them imports pyo3.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod btf;
pub mod cache;
pub mod compile;
pub mod error;
pub mod events;
pub mod features;
pub mod host;
pub mod object;
pub mod symbols;
pub mod sys;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
