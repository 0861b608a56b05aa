//! Ingestion memory is bounded: four concurrent 60 MB NDJSON batches keep the
//! server's peak resident set (`VmHWM`) within its baseline plus three times
//! the configured batch limit, with or without an `Idempotency-Key`. The real
//! binary; on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.
//!
//! The bound follows from the design (`custos-server/src/ingest.rs`): at most
//! `--max-concurrent-ingestions` (2) batches are read at once, each held once
//! (about its own size) plus one chunk being sealed and written; the others
//! wait unread. The idempotency layer fingerprints the body as it streams
//! past (`custos-server/src/idempotency.rs`): it holds no copy of it.

mod support;

use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;
use support::{R, Server};

const MIB: u64 = 1024 * 1024;
/// The server's default `--max-ingest-bytes`.
const LIMIT: u64 = 64 * MIB;
const BATCH: usize = 60 * 1000 * 1000;
const BATCHES: usize = 4;
const SUBJECTS: usize = 20;

/// One measurement at a time: two servers ingesting at once on a small
/// machine would slow each other past any useful timing.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A field of `/proc/<pid>/status`, in bytes.
fn status_kib(pid: u32, field: &str) -> R<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc status: {e}"))?;
    let line = text.lines().find(|l| l.starts_with(field)).ok_or_else(|| format!("no {field} in {text}"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unreadable {field}: {line}"))?;
    Ok(kib * 1024)
}

/// One batch of about [`BATCH`] bytes: lines of 8 KiB values over the subjects.
fn batch(n: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(BATCH + 16 * 1024);
    let mut lines = 0;
    while out.len() < BATCH {
        let value: String = format!("batch {n} line {lines} ").chars().cycle().take(8 * 1024).collect();
        let line = json!({
            "subject": format!("mem-{}", lines % SUBJECTS),
            "category": "contact.address",
            "value": value,
            "source": "provided",
            "purpose": "provide_offerings",
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
        lines += 1;
    }
    (out, lines)
}

#[test]
fn regression_ingestion_memory_is_bounded() -> R<()> {
    ingest_concurrently(false)
}

/// An `Idempotency-Key` used to have the body buffered whole by the
/// idempotency layer on top of the handler's own arena (332 MiB against 236).
#[test]
fn regression_ingestion_memory_is_bounded_with_an_idempotency_key() -> R<()> {
    ingest_concurrently(true)
}

/// mimalloc advises the kernel to back its arenas with transparent huge
/// pages, and every 2 MiB region it touched then became resident whole: the
/// server's peak during PostgreSQL ingestion was 150–200 MiB for a live heap
/// of about 42 MiB. The server opts out of them for its whole process.
#[test]
#[cfg(target_os = "linux")]
fn regression_the_server_uses_no_transparent_huge_pages() -> R<()> {
    let server = Server::start(&[])?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()?)).map_err(|e| e.to_string())?;
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .ok_or("this kernel reports no THP_enabled in /proc/<pid>/status")?;
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    Ok(())
}

/// Sends [`BATCHES`] batches at once, each with its own `Idempotency-Key` if
/// `keyed`, and checks the server's peak memory.
fn ingest_concurrently(keyed: bool) -> R<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = Server::start(&[])?;
    for i in 0..SUBJECTS {
        let body = json!({ "id": format!("mem-{i}"), "jurisdiction": "california" });
        server.json("POST", "/v1/subjects", &server.admin, &body)?.want(201)?;
    }
    // Warm up the ingestion path, then take the baseline.
    let (small, _) = {
        let line = json!({ "subject": "mem-0", "category": "contact.address", "value": "warm up",
            "source": "provided", "purpose": "provide_offerings" });
        (format!("{line}\n").into_bytes(), 1)
    };
    server.send("POST", "/v1/ingest", Some(&server.admin), Some(("application/x-ndjson", small)))?.want(200)?;
    let pid = server.pid()?;
    let baseline = status_kib(pid, "VmHWM:")?;
    let batches: Vec<(Vec<u8>, usize)> = (0..BATCHES).map(batch).collect();
    let started = Instant::now();
    let results: Vec<R<(usize, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = batches
            .into_iter()
            .enumerate()
            .map(|(n, (body, lines))| {
                let server = &server;
                s.spawn(move || {
                    let key = format!("memory-batch-{n}");
                    let headers: &[(&str, &str)] = if keyed { &[("idempotency-key", &key)] } else { &[] };
                    let body = Some((Some("application/x-ndjson"), body.into()));
                    let r = server.request("POST", "/v1/ingest", Some(&server.admin), body, headers)?.want_json(200)?;
                    let written = r["written"].as_u64().ok_or_else(|| format!("no count in {r}"))?;
                    Ok((lines, written))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a sender panicked".into()))).collect()
    });
    let elapsed = started.elapsed();
    for r in results {
        let (lines, written) = r?;
        assert_eq!(written, lines as u64, "every line of every batch is written");
    }
    let peak = status_kib(pid, "VmHWM:")?;
    let bound = baseline + 3 * LIMIT;
    eprintln!(
        "ingestion memory{}: baseline {} MiB, peak {} MiB after {BATCHES} concurrent {} MB batches in {:.1} s (bound {} MiB)",
        if keyed { " with Idempotency-Key" } else { "" },
        baseline / MIB,
        peak / MIB,
        BATCH / 1_000_000,
        elapsed.as_secs_f64(),
        bound / MIB
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB exceeds the baseline {} MiB + 3 × the {} MiB batch limit",
        peak / MIB,
        baseline / MIB,
        LIMIT / MIB
    );
    // The data is there and readable.
    let r = server
        .send("GET", "/v1/subjects/mem-3/data/contact.address?purpose=provide_offerings", Some(&server.admin), None)?
        .want_json(200)?;
    assert!(r["value"].as_str().is_some_and(|v| v.starts_with("batch ")), "{r}");
    server.finish()
}
