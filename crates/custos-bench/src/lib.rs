//! Custos's benchmarks, kept out of the product's code path: the `custos`
//! binary only parses `custos bench` and `custos bench http` and calls in here.
//!
//! - [`in_process`]: the hot paths on the real store (writes, decisions,
//!   reads, erasure, audit verification), on any backend;
//! - [`http`]: a load generator against `custos serve` in a child process
//!   (reads, NDJSON ingestion), with the server's CPU and memory sampled from
//!   `/proc` ([`procfs`]);
//! - [`workload`]: what both write and read, derived from the policy in
//!   force, so that they run unchanged on any company's policy.
//!
//! Every figure is one printed line; [`figures`] formats them.

pub mod figures;
pub mod http;
pub mod in_process;
pub mod procfs;
pub mod requests;
pub mod workload;

pub use workload::{Field, Workload};
