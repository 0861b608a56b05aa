//! The HTTP benchmark (`custos bench http`): loads the real server over loopback.
//!
//! The server is a child process (`custos serve` on a temporary data
//! directory, on a port the kernel picks), so its resident memory is read
//! from `/proc/<pid>/status` apart from the load generator. The load generator
//! runs on a tokio runtime in this process and speaks keep-alive HTTP/1.1
//! (hyper's client connections), with an admin key made by `custos key create`.
//! What it writes and reads comes from the policy ([`Workload`], up to four
//! categories of one purpose).
//!
//! Phases, one printed line per figure:
//! 1. setup: `subjects` subjects (`POST /v1/subjects` over several
//!    connections), their consent to the purpose if it rests on consent, and
//!    one value each of the first category (`POST /v1/ingest`);
//! 2. reads: `connections` connections for `seconds`, each looping
//!    `GET /v1/subjects/{random id}/data/{category}?purpose={purpose}`
//!    (decided, decrypted and audited by the server); requests/s and latency
//!    percentiles; every response must be 200 with the subject's value;
//! 3. ingestion: `ingest_items` new values for the existing subjects in
//!    `batch`-line NDJSON requests, a few in flight; items/s, and every
//!    summary's `written` must equal the lines sent;
//! 4. memory: the server's VmRSS (and peak) after ingestion.
//!
//! Any failed request makes the run fail after the figures are printed.

mod client;
mod load;
mod server;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use custos_core::Policy;
use hyper::header::HeaderValue;

use crate::figures::{mib, pct_ms, rate, thousands};
use crate::procfs::{Cpu, load_average, memory};
use crate::workload::Workload;
use client::Target;
use load::{INGEST_IN_FLIGHT, SETUP_CONNECTIONS};
use server::Server;
pub use server::ServerCommand;

/// Categories the ingestion phase cycles through (at most).
pub const INGEST_FIELDS: usize = 4;

/// The sizes of the HTTP benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent connections for the read load.
    pub connections: usize,
    /// Seconds of read load.
    pub seconds: u64,
    /// Subjects to create before the read load.
    pub subjects: usize,
    /// Items to ingest for the ingestion figure (and the memory figure).
    pub ingest_items: usize,
    /// Items per ingestion request.
    pub batch: usize,
}

/// Runs the HTTP benchmark against `custos serve` started by `command` on
/// the data directory `dir` (empty, private, removed by the caller);
/// `policy` is the one `command` passes to the server (the workload comes from it).
pub fn run(policy: &Policy, command: &ServerCommand, dir: &Path, opts: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(opts.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(opts.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(opts.subjects >= 1, "--subjects must be at least 1");
    anyhow::ensure!(opts.batch >= 1, "--batch must be at least 1");
    let work = Arc::new(Workload::from_policy(policy, INGEST_FIELDS)?);

    let key = command.create_admin_key(dir)?;
    let mut server = Server::start(command, dir)?;
    let target = Arc::new(Target {
        addr: server.addr,
        host: HeaderValue::from_str(&server.addr.to_string()).context("bad server address")?,
        bearer: HeaderValue::from_str(&format!("Bearer {key}")).context("the API key is not a valid header value")?,
    });
    println!(
        "custos bench http: server pid {} on http://{}, data in {}, {} cores{}; load generator in this process",
        server.pid(),
        server.addr,
        dir.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average().map_or_else(String::new, |l| format!(" (load average {l})"))
    );
    println!("{}", work.describe());

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    // Issue targets: 100,000 items/s on the embedded store, 50,000 on PostgreSQL.
    let ingest_target = if command.postgres { "50,000" } else { "100,000" };
    let outcome = runtime.block_on(bench(&target, &work, opts, server.pid(), ingest_target));
    drop(runtime);

    let stopped = server.stop();
    let failures = match outcome {
        Ok(failures) => failures,
        Err(e) => anyhow::bail!("{e:#}\n{}", server.log_tail()),
    };
    match stopped {
        Ok(status) if status.success() => {}
        Ok(status) => anyhow::bail!("the server exited with {status} after SIGTERM\n{}", server.log_tail()),
        Err(e) => return Err(e),
    }
    if !failures.is_empty() {
        anyhow::bail!("some requests failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// The phases; returns the failures to report (an `Err` stops the benchmark early).
async fn bench(
    target: &Arc<Target>,
    work: &Arc<Workload>,
    opts: &Options,
    pid: u32,
    ingest_target: &str,
) -> anyhow::Result<Vec<String>> {
    let mut failures = Vec::new();

    // 1. Setup: subjects (and their consent, if the purpose needs it), then one value each.
    let t = Instant::now();
    let errors = load::create_subjects(target, work, opts.subjects).await?;
    let took = t.elapsed();
    if let Some(first) = errors.first {
        anyhow::bail!("{} of {} subjects were not created; first: {first}", errors.count, opts.subjects);
    }
    if work.needs_consent() {
        let errors = load::grant_consents(target, work, opts.subjects).await?;
        if let Some(first) = errors.first {
            anyhow::bail!("{} of {} consents were not recorded; first: {first}", errors.count, opts.subjects);
        }
    }
    let setup_work = work.clone();
    let values = load::ingest(
        target,
        opts.subjects,
        opts.batch,
        Arc::new(move |k: usize, out: &mut String| load::initial_line(&setup_work, k, out)),
    )
    .await?;
    if let Some(first) = values.errors.first {
        anyhow::bail!("setting the first values failed ({} errors); first: {first}", values.errors.count);
    }
    println!(
        "setup: {} subjects in {:.2} s ({}/s, POST /v1/subjects over {} connections), {} values in {:.2} s",
        thousands(opts.subjects as u64),
        took.as_secs_f64(),
        thousands(rate(opts.subjects, took) as u64),
        SETUP_CONNECTIONS.min(opts.subjects),
        thousands(opts.subjects as u64),
        values.elapsed.as_secs_f64()
    );
    let rss_setup = memory(pid);

    // 2. Purpose-checked reads.
    let cpu = Cpu::start(pid);
    let reads = load::read_load(target, work, opts.connections, opts.seconds, opts.subjects).await?;
    let cpu = cpu.finish(reads.elapsed);
    let mut lat = reads.lat_ns;
    lat.sort_unstable();
    let ok = reads.statuses.get(&200).copied().unwrap_or(0);
    let total: u64 = reads.statuses.values().sum();
    println!(
        "http reads (GET one value: auth, decide, decrypt, audit; {} connections, {:.1} s): {} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms (target 20,000 req/s, p99 under 5 ms)",
        opts.connections,
        reads.elapsed.as_secs_f64(),
        thousands(rate(total as usize, reads.elapsed) as u64),
        pct_ms(&lat, 50.0),
        pct_ms(&lat, 99.0),
        pct_ms(&lat, 99.9),
        pct_ms(&lat, 100.0)
    );
    if let Some(cpu) = cpu {
        println!("  {}", cpu.describe("reads", total, "request"));
    }
    if ok != total || reads.errors.count > 0 {
        let by_status: Vec<String> = reads.statuses.iter().map(|(s, n)| format!("{s}: {}", thousands(*n))).collect();
        println!("  responses by status: {}", by_status.join(", "));
    }
    if let Some(first) = &reads.errors.first {
        failures.push(format!("{} of {} reads failed; first: {first}", reads.errors.count, total));
    }
    let rss_reads = memory(pid);

    // 3. Ingestion.
    let mut ingested = 0;
    if opts.ingest_items > 0 {
        let subjects = opts.subjects;
        let cpu = Cpu::start(pid);
        let ingest_work = work.clone();
        let ing = load::ingest(
            target,
            opts.ingest_items,
            opts.batch,
            Arc::new(move |k: usize, out: &mut String| load::ingest_line(&ingest_work, k, subjects, out)),
        )
        .await?;
        println!(
            "http ingestion ({} items in {}-line NDJSON batches, {} in flight, {} categories): {:.2} s, {} items/s (target {ingest_target})",
            thousands(opts.ingest_items as u64),
            thousands(opts.batch as u64),
            INGEST_IN_FLIGHT,
            work.fields.len(),
            ing.elapsed.as_secs_f64(),
            thousands(rate(ing.written as usize, ing.elapsed) as u64)
        );
        if let Some(cpu) = cpu.finish(ing.elapsed) {
            println!("  {}", cpu.describe("ingestion", ing.written, "item"));
        }
        ingested = ing.written;
        if let Some(first) = &ing.errors.first {
            failures.push(format!(
                "{} ingestion requests failed ({} of {} items written); first: {first}",
                ing.errors.count,
                thousands(ing.written),
                thousands(opts.ingest_items as u64)
            ));
        }
    }

    // 4. Memory.
    match (memory(pid), rss_setup, rss_reads) {
        (Some(after), Some(setup), Some(reads)) => println!(
            "server memory after ingesting {} items: RSS {:.1} MiB, peak {:.1} MiB (after setup {:.1} MiB, after reads {:.1} MiB) (target under 150 MiB)",
            thousands(ingested),
            mib(after.rss_kib),
            mib(after.peak_kib),
            mib(setup.rss_kib),
            mib(reads.rss_kib)
        ),
        _ => println!("server memory: unavailable (no /proc/{pid}/status)"),
    }
    Ok(failures)
}
