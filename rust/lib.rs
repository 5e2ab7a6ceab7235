//! bpfkit's core: run-time compilation of BPF C against the kernel's own BTF, loading and
//! attaching through libbpf, and map access, in plain Rust.
//!
//! Three layers, one folder each:
//! * [`sys`] (`rust/sys/`): the only code that names `libbpf_sys`, behind two error funnels;
//! * [`core`] (`rust/core/`): safe Rust with no pyo3: compile, cache, object, maps, events, ...;
//! * `py` (`rust/py/`, feature `python`): thin PyO3 wrappers holding `Arc`s of core objects.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod core;
pub mod sys;

#[cfg(feature = "python")]
mod py;

pub use crate::core::error::{Error, Result};
