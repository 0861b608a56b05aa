//! `custos bench` and `custos bench http`: the command line of the
//! benchmarks in the `custos-bench` crate. This file only opens what they run
//! on (the policy in force, a private temporary data directory, the store)
//! and passes the global options on to the server's commands.

use std::ffi::OsString;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{BenchArgs, Global, HttpBenchArgs};
use crate::env;

/// `custos bench`: the in-process benchmark on SQLite in a temporary data
/// directory, or on the PostgreSQL database given with `--database` (it
/// should be empty: the benchmark creates its own subjects).
pub fn run(global: &Global, args: &BenchArgs) -> anyhow::Result<()> {
    let policy = Arc::new(env::load_policy(global)?);
    let dir = crate::master_key::private_temp_dir().context("cannot create a temporary directory")?;
    let vault = env::open_vault_on(global, dir.path(), policy)?;
    let store = if global.database.is_some() {
        "PostgreSQL".to_string()
    } else {
        format!("SQLite in {}", dir.path().display())
    };
    let opts = custos_bench::in_process::Options {
        subjects: args.subjects,
        fields: args.fields,
        audit_entries: args.audit_entries,
        decisions: args.decisions,
    };
    custos_bench::in_process::run(&vault, &opts, &store)
}

/// `custos bench http`: this binary's `custos serve` under load, on a
/// temporary data directory, with the same policy, database and key options.
pub fn run_http(global: &Global, args: &HttpBenchArgs) -> anyhow::Result<()> {
    let policy = env::load_policy(global)?;
    let command = custos_bench::http::ServerCommand {
        exe: std::env::current_exe().context("cannot find this program's path to start the server")?,
        args: passed_on(global),
        postgres: global.database.is_some(),
    };
    let opts = custos_bench::http::Options {
        connections: args.connections,
        seconds: args.seconds,
        subjects: args.subjects,
        ingest_items: args.ingest_items,
        batch: args.batch,
    };
    let dir = crate::master_key::private_temp_dir().context("cannot create a temporary directory")?;
    custos_bench::http::run(&policy, &command, dir.path(), &opts)
}

/// The global options in force (but `--data-dir`), with absolute paths, for
/// the commands the HTTP benchmark runs.
fn passed_on(global: &Global) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let absolute = |p: &std::path::PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    if let Some(policy) = &global.policy {
        args.push("--policy".into());
        args.push(absolute(policy).into());
    }
    if let Some(url) = &global.database {
        args.push("--database".into());
        args.push(url.into());
    }
    for (flag, file) in [
        ("--master-key-file", &global.master_key_file),
        ("--previous-master-key-file", &global.previous_master_key_file),
    ] {
        if let Some(file) = file {
            args.push(flag.into());
            args.push(absolute(file).into());
        }
    }
    args
}
