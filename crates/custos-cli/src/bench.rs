//! `custos bench`: measures the hot paths in-process on the real SQLite store,
//! in a temporary data directory, and prints one line per figure.
//!
//! Scenarios (targets from DESIGN.md): encrypted writes in 10,000-item batches
//! with subjects in key order and in random order; the decision alone;
//! purpose-checked reads of one subject's fields (decision, fetch, decrypt and
//! the audit append); erasure of a subject with 1,000 item versions; audit
//! chain verification.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::decision::{AccessRequest, Actor, Operation, Scope, decide};
use custos_core::time::{Clock, SystemClock};
use custos_vault::{By, CONTROLLER, NewSubject, Put, Read, verify_chain};

use crate::cli::{BenchArgs, Global};
use crate::env;

const BATCH: usize = 10_000;
const PURPOSE: &str = "provide_offerings";
const SOURCE: &str = "provided";

/// Runs every benchmark and prints the figures.
pub fn run(global: &Global, args: &BenchArgs) -> anyhow::Result<()> {
    let policy = Arc::new(env::load_policy(global)?);
    let dir = crate::master_key::private_temp_dir().context("cannot create a temporary directory")?;
    // SQLite in the temporary directory, or the PostgreSQL database given with
    // --database (it should be empty: the benchmark creates its own subjects).
    let vault = env::open_vault_on(global, dir.path(), policy.clone())?;
    let pid = policy.purpose(PURPOSE).context("the policy has no purpose `provide_offerings`")?;
    let categories: Vec<String> = policy
        .categories_for(pid)
        .filter(|c| policy.tokenization(*c).is_none())
        .map(|c| policy.category_doc(c))
        .filter(|d| d.sources.iter().any(|s| s.value == SOURCE))
        .map(|d| d.id.value.clone())
        .collect();
    anyhow::ensure!(
        categories.len() >= args.fields,
        "purpose `{PURPOSE}` may use only {} provided categories; use --fields {} or fewer",
        categories.len(),
        categories.len()
    );
    let categories = &categories[..args.fields];
    println!(
        "custos bench: {} subjects x {} fields, {}, {} cores",
        args.subjects,
        args.fields,
        if global.database.is_some() {
            "PostgreSQL".to_string()
        } else {
            format!("SQLite in {}", dir.path().display())
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Encrypted writes, subjects in key order.
    let seq_ids: Vec<String> = (0..args.subjects).map(|i| format!("seq-{i:09}")).collect();
    let created = create_subjects(&vault, &seq_ids)?;
    println!("subjects created: {:.0}/s (data key generated and wrapped, audited)", rate(seq_ids.len(), created));
    let written = write_fields(&vault, &seq_ids, categories)?;
    println!(
        "encrypted writes, key order, {BATCH}-item batches: {:.0} fields/s (target 200,000)",
        rate(seq_ids.len() * categories.len(), written)
    );

    // 2. Encrypted writes, subjects in random order (random ids spread over the table).
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let rnd_ids: Vec<String> = (0..args.subjects / 2).map(|_| format!("rnd-{:016x}", rng.next())).collect();
    create_subjects(&vault, &rnd_ids)?;
    let written = write_fields(&vault, &rnd_ids, categories)?;
    println!(
        "encrypted writes, random order, {BATCH}-item batches: {:.0} fields/s (target 100,000)",
        rate(rnd_ids.len() * categories.len(), written)
    );

    // 3. The decision alone.
    let subject = vault.subject(&seq_ids[0])?;
    let cids: Vec<_> = categories.iter().filter_map(|c| policy.category(c)).collect();
    let at = SystemClock.now();
    let start = Instant::now();
    let mut allowed = 0u64;
    for i in 0..args.decisions {
        let req = AccessRequest {
            purpose: pid,
            category: cids[(i as usize) % cids.len()],
            actor: Actor::Controller,
            scope: Scope::Unlimited,
            operation: Operation::Read,
            at,
        };
        allowed += u64::from(decide(black_box(&policy), black_box(&subject), black_box(&req)).is_ok());
    }
    let took = start.elapsed();
    anyhow::ensure!(allowed == args.decisions, "the benchmark's reads should all be allowed");
    println!("decisions: {:.0}/s (target 1,000,000)", rate(args.decisions as usize, took));

    // 4. Purpose-checked reads of one subject's fields (audited).
    let reads = 10_000.min(seq_ids.len() * 4);
    let mut lat = Vec::with_capacity(reads);
    for _ in 0..reads {
        let id = &seq_ids[(rng.next() as usize) % seq_ids.len()];
        let t = Instant::now();
        let (values, _) =
            vault.get_all(&Read { subject: id, purpose: PURPOSE, actor: CONTROLLER, scope: None, by: &By::Cli })?;
        lat.push(t.elapsed());
        anyhow::ensure!(
            values.len() == categories.len(),
            "a read returned {} of {} fields",
            values.len(),
            categories.len()
        );
    }
    println!(
        "read one subject's {} fields (decide, fetch, decrypt, audit): mean {:.1} us, p50 {:.1} us, p99 {:.1} us (target under 50 us)",
        categories.len(),
        mean_us(&lat),
        pct_us(&mut lat, 50.0),
        pct_us(&mut lat, 99.0)
    );
    let mut lat = Vec::with_capacity(reads);
    for _ in 0..reads {
        let id = &seq_ids[(rng.next() as usize) % seq_ids.len()];
        let t = Instant::now();
        let v = vault.get(
            &Read { subject: id, purpose: PURPOSE, actor: CONTROLLER, scope: None, by: &By::Cli },
            &categories[0],
        )?;
        lat.push(t.elapsed());
        black_box(v);
    }
    println!(
        "read one field (decide, fetch, decrypt, audit): mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
        mean_us(&lat),
        pct_us(&mut lat, 50.0),
        pct_us(&mut lat, 99.0)
    );

    // 5. Erasure of a subject with 1,000 item versions.
    let mut lat = Vec::new();
    for round in 0..20 {
        let id = format!("erase-{round:03}");
        create_subjects(&vault, std::slice::from_ref(&id))?;
        let versions = 1_000 / categories.len() + 1;
        let values: Vec<String> = (0..versions).map(|v| format!("value {v} of subject {round}")).collect();
        let mut puts = Vec::with_capacity(1_000);
        'fill: for v in &values {
            for c in categories {
                if puts.len() == 1_000 {
                    break 'fill;
                }
                puts.push(Put { subject: &id, category: c, value: v, source: SOURCE, purpose: PURPOSE });
            }
        }
        // Each put of the same category in one batch becomes the next version.
        vault.put_batch(&puts, CONTROLLER, &By::Cli)?;
        let t = Instant::now();
        let n = vault.erase(&id, &By::Cli)?;
        lat.push(t.elapsed());
        anyhow::ensure!(n == 1_000, "erasure destroyed {n} item versions, expected 1,000");
    }
    println!(
        "erase a subject with 1,000 item versions: median {:.2} ms, max {:.2} ms (target under 10 ms)",
        pct_us(&mut lat, 50.0) / 1000.0,
        pct_us(&mut lat, 100.0) / 1000.0
    );

    // 6. Audit verification.
    let store = vault.store();
    let have = store.audit_head()?.seq;
    let mut left = args.audit_entries.saturating_sub(have);
    let now = SystemClock.now();
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        let events: Vec<AuditEvent> = (0..n)
            .map(|i| {
                let mut e = AuditEvent::new(now, AuditAction::DataRead, CONTROLLER);
                e.subject = Some(vault.pseudonym(&seq_ids[i % seq_ids.len()]));
                e.purpose = Some(PURPOSE.to_string());
                e.categories = vec![categories[i % categories.len()].clone()];
                e.basis = Some("contract".to_string());
                e
            })
            .collect();
        store.append_audit(&events)?;
        left -= n as u64;
    }
    let t = Instant::now();
    let head = verify_chain(store)?.map_err(|b| anyhow::anyhow!("audit chain broken: {b}"))?;
    let took = t.elapsed();
    println!(
        "audit verification: {} entries in {:.2} s: {:.0} entries/s (target 1,000,000)",
        head.seq,
        took.as_secs_f64(),
        rate(head.seq as usize, took)
    );
    Ok(())
}

fn create_subjects(vault: &custos_vault::Vault<env::AnyStore>, ids: &[String]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for id in ids {
        vault.add_subject(
            &NewSubject { id, jurisdiction: "california", region: Some("us-east-1"), birth_date: None, guardian: None },
            &By::Cli,
        )?;
    }
    Ok(start.elapsed())
}

fn write_fields(
    vault: &custos_vault::Vault<env::AnyStore>,
    ids: &[String],
    categories: &[String],
) -> anyhow::Result<Duration> {
    let values: Vec<String> = (0..ids.len()).map(|i| format!("value-{i:08}@example.com")).collect();
    let mut puts = Vec::with_capacity(ids.len() * categories.len());
    for (i, id) in ids.iter().enumerate() {
        for c in categories {
            puts.push(Put { subject: id, category: c, value: &values[i], source: SOURCE, purpose: PURPOSE });
        }
    }
    let start = Instant::now();
    for chunk in puts.chunks(BATCH) {
        vault.put_batch(chunk, CONTROLLER, &By::Cli)?;
    }
    Ok(start.elapsed())
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn mean_us(v: &[Duration]) -> f64 {
    v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len().max(1) as f64 * 1e6
}

fn pct_us(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let i = (((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e6
}

/// A tiny deterministic generator for benchmark ids (not for anything secret).
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
