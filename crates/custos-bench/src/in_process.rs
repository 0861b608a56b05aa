//! The in-process benchmark (`custos bench`): the hot paths on the real
//! store, one printed line per figure.
//!
//! Scenarios (targets from DESIGN.md): encrypted writes in 10,000-item batches
//! with subjects in key order and in random order; the decision alone;
//! purpose-checked reads of one subject's fields (decision, fetch, decrypt and
//! the audit append); erasure of a subject with 1,000 item versions; audit
//! chain verification. What is written and read comes from the policy
//! ([`Workload`]).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::deadline::{Calendar, DeadlineRule, Deadlines, Pause};
use custos_core::decision::{AccessRequest, Actor, Operation, Scope, decide};
use custos_core::time::{Clock, Period, SystemClock};
use custos_store::Store;
use custos_vault::{By, CONTROLLER, NewSubject, Put, Read, Vault, verify_chain};

use crate::figures::{XorShift, mean_us, pct_us, rate};
use crate::workload::Workload;

/// The vault the benchmark runs on (any backend).
pub type BenchVault = Vault<Arc<dyn Store>>;

const BATCH: usize = 10_000;
/// Fields per subject when none are asked for.
pub const DEFAULT_FIELDS: usize = 8;

/// The sizes of the in-process benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subjects to create for the write and read benchmarks.
    pub subjects: usize,
    /// Fields per subject; `None`: [`DEFAULT_FIELDS`], or as many as the policy gives.
    pub fields: Option<usize>,
    /// Audit entries to verify (the chain is topped up to this size).
    pub audit_entries: u64,
    /// Decisions to time.
    pub decisions: u64,
}

/// Runs every in-process benchmark on `vault` (a fresh store: the benchmark
/// creates its own subjects) and prints the figures. Its writes are audited
/// as the command line's ([`By::Cli`]). `store` names the store
/// for the first line, e.g. `SQLite in /tmp/…`.
pub fn run(vault: &BenchVault, opts: &Options, store: &str) -> anyhow::Result<()> {
    anyhow::ensure!(opts.subjects >= 1, "--subjects must be at least 1");
    anyhow::ensure!(opts.fields != Some(0), "--fields must be at least 1");
    let policy = vault.policy();
    let wanted = opts.fields.unwrap_or(DEFAULT_FIELDS);
    let work = Workload::from_policy(policy, wanted)?;
    if let Some(asked) = opts.fields {
        anyhow::ensure!(
            work.fields.len() >= asked,
            "no purpose of the policy may use more than {} categories that are not tokenized; use --fields {} or fewer",
            work.fields.len(),
            work.fields.len()
        );
    }
    let fields = work.fields.len();
    println!(
        "custos bench: {} subjects x {} fields, {}, {} cores",
        opts.subjects,
        fields,
        store,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{}", work.describe());

    // 1. Encrypted writes, subjects in key order.
    let seq_ids: Vec<String> = (0..opts.subjects).map(|i| format!("seq-{i:09}")).collect();
    let created = create_subjects(vault, &work, &seq_ids)?;
    println!("subjects created: {:.0}/s (data key generated and wrapped, audited)", rate(seq_ids.len(), created));
    let written = write_fields(vault, &work, &seq_ids)?;
    println!(
        "encrypted writes, key order, {BATCH}-item batches: {:.0} fields/s (target 200,000)",
        rate(seq_ids.len() * fields, written)
    );

    // 2. Encrypted writes, subjects in random order (random ids spread over the table).
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let rnd_ids: Vec<String> = (0..opts.subjects / 2).map(|_| format!("rnd-{:016x}", rng.next_u64())).collect();
    create_subjects(vault, &work, &rnd_ids)?;
    let written = write_fields(vault, &work, &rnd_ids)?;
    println!(
        "encrypted writes, random order, {BATCH}-item batches: {:.0} fields/s (target 100,000)",
        rate(rnd_ids.len() * fields, written)
    );

    // 3. The decision alone.
    let subject = vault.subject(&seq_ids[0])?;
    let pid = work.purpose_id();
    let cids = work.category_ids();
    let at = SystemClock.now();
    let start = Instant::now();
    let mut allowed = 0u64;
    for i in 0..opts.decisions {
        let req = AccessRequest {
            purpose: pid,
            category: cids[(i as usize) % cids.len()],
            actor: Actor::Controller,
            scope: Scope::Unlimited,
            operation: Operation::Read,
            at,
        };
        allowed += u64::from(decide(black_box(policy), black_box(&subject), black_box(&req)).is_ok());
    }
    let took = start.elapsed();
    anyhow::ensure!(allowed == opts.decisions, "the benchmark's reads should all be allowed");
    println!("decisions: {:.0}/s (target 1,000,000)", rate(opts.decisions as usize, took));

    // 3b. Deadline arithmetic: each jurisdiction's response rule (with its
    // extension, and 10 business days to confirm receipt), received on a day
    // that moves through the year, with one pause of waiting for the person.
    let rules: Vec<DeadlineRule> = policy
        .jurisdiction_ids()
        .map(|j| {
            let r = policy.jurisdiction_rules(j);
            DeadlineRule {
                extension: r.extension,
                confirm_receipt: Some(Period::BusinessDays(10)),
                clock_pauses: true,
                ..DeadlineRule::new(r.deadline)
            }
        })
        .collect();
    anyhow::ensure!(!rules.is_empty(), "the policy declares no jurisdiction");
    let calendar = Calendar::default();
    let first = at.date();
    let start = Instant::now();
    let mut latest = first;
    for i in 0..opts.decisions {
        let received = Period::Days((i % 366) as u32).after(first);
        let pause = [Pause { from: Period::Days(3).after(received), until: None }];
        let today = Period::Days(7).after(received);
        let dates = Deadlines::compute(&rules[(i as usize) % rules.len()], &calendar, received, &pause, today);
        latest = latest.max(black_box(dates).extended_due.unwrap_or(dates.due));
    }
    let took = start.elapsed();
    black_box(latest);
    println!(
        "deadline computations (due, confirm-by, extension; {} jurisdictions' rules): {:.0}/s (target 1,000,000)",
        rules.len(),
        rate(opts.decisions as usize, took)
    );

    // 4. Purpose-checked reads of one subject's fields (audited).
    let purpose = work.purpose.as_str();
    let reads = 10_000.min(seq_ids.len() * 4);
    let mut lat = Vec::with_capacity(reads);
    for _ in 0..reads {
        let id = &seq_ids[(rng.next_u64() as usize) % seq_ids.len()];
        let t = Instant::now();
        let (values, _) =
            vault.get_all(&Read { subject: id, purpose, actor: CONTROLLER, scope: None, by: &By::Cli })?;
        lat.push(t.elapsed());
        anyhow::ensure!(values.len() == fields, "a read returned {} of {} fields", values.len(), fields);
    }
    println!(
        "read one subject's {} fields (decide, fetch, decrypt, audit): mean {:.1} us, p50 {:.1} us, p99 {:.1} us (target under 50 us)",
        fields,
        mean_us(&lat),
        pct_us(&mut lat, 50.0),
        pct_us(&mut lat, 99.0)
    );
    let mut lat = Vec::with_capacity(reads);
    for _ in 0..reads {
        let id = &seq_ids[(rng.next_u64() as usize) % seq_ids.len()];
        let t = Instant::now();
        let v = vault.get(
            &Read { subject: id, purpose, actor: CONTROLLER, scope: None, by: &By::Cli },
            &work.fields[0].category,
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

    // 4b. Access requests among the subjects written above.
    crate::requests::access_requests(vault, &seq_ids, 200.min(seq_ids.len()), &mut rng)?;

    // 5. Erasure of a subject with 1,000 item versions.
    let mut lat = Vec::new();
    for round in 0..20 {
        let id = format!("erase-{round:03}");
        create_subjects(vault, &work, std::slice::from_ref(&id))?;
        let versions = 1_000 / fields + 1;
        let values: Vec<String> = (0..versions).map(|v| format!("value {v} of subject {round}")).collect();
        let mut puts = Vec::with_capacity(1_000);
        'fill: for v in &values {
            for f in &work.fields {
                if puts.len() == 1_000 {
                    break 'fill;
                }
                puts.push(Put { subject: &id, category: &f.category, value: v, source: &f.source, purpose });
            }
        }
        // Each put of the same category in one batch becomes the next version.
        vault.put_batch(&puts, CONTROLLER, None, &By::Cli)?;
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
    let mut left = opts.audit_entries.saturating_sub(have);
    let now = SystemClock.now();
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        let events: Vec<AuditEvent> = (0..n)
            .map(|i| {
                let mut e = AuditEvent::new(now, AuditAction::DataRead, CONTROLLER);
                e.subject = Some(vault.pseudonym(&seq_ids[i % seq_ids.len()]));
                e.purpose = Some(work.purpose.clone());
                e.categories = vec![work.fields[i % fields].category.clone()];
                e.basis = Some(work.basis.as_str().to_string());
                e
            })
            .collect();
        store.append_audit(&events)?;
        left -= n as u64;
    }
    let t = Instant::now();
    // The hash chain alone (the signed checkpoints are not what this measures).
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

/// Creates the subjects (timed); then, if the purpose rests on consent,
/// records each one's consent (not timed: it is not part of creating one).
fn create_subjects(vault: &BenchVault, work: &Workload, ids: &[String]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for id in ids {
        vault.add_subject(
            &NewSubject {
                id,
                jurisdiction: &work.jurisdiction,
                region: work.region.as_deref(),
                birth_date: None,
                guardian: None,
            },
            &By::Cli,
        )?;
    }
    let took = start.elapsed();
    if work.needs_consent() {
        for id in ids {
            vault.grant_consent(id, &work.purpose, None, &By::Cli)?;
        }
    }
    Ok(took)
}

fn write_fields(vault: &BenchVault, work: &Workload, ids: &[String]) -> anyhow::Result<Duration> {
    let values: Vec<String> = (0..ids.len()).map(|i| format!("value-{i:08}@example.com")).collect();
    let mut puts = Vec::with_capacity(ids.len() * work.fields.len());
    for (i, id) in ids.iter().enumerate() {
        for f in &work.fields {
            puts.push(Put {
                subject: id,
                category: &f.category,
                value: &values[i],
                source: &f.source,
                purpose: &work.purpose,
            });
        }
    }
    let start = Instant::now();
    for chunk in puts.chunks(BATCH) {
        vault.put_batch(chunk, CONTROLLER, None, &By::Cli)?;
    }
    Ok(start.elapsed())
}
