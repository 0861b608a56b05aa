//! `custos bench http`: loads the real HTTP server over loopback.

use crate::cli::{Global, HttpBenchArgs};

/// Runs the HTTP benchmarks.
pub fn run(_global: &Global, _args: &HttpBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the HTTP benchmark is not built yet")
}
