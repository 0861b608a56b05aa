//! Rough throughput figures for the SQLite store: `cargo bench -p custos-store-sqlite`.
//!
//! Prints rates rather than asserting them, so that a busy machine does not
//! fail a build; compare with `reference/limits.md` and the design's targets.

use std::error::Error;
use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{AuditStore, HeldKeys, ItemStore, NewItem, SubjectStore};
use custos_store_sqlite::SqliteStore;

const CATEGORIES: [&str; 8] = ["address", "birthday", "device-id", "email", "ip-address", "name", "order-id", "phone"];
const SUBJECTS: usize = 125_000;
const BATCH: usize = 10_000;

fn id(n: usize) -> SubjectId {
    SubjectId::parse(&format!("customer-{n:08}")).expect("a valid id")
}

fn subject(n: usize) -> Subject {
    Subject::new(id(n), "us-ca", Timestamp(1))
}

fn item(subject: &SubjectId, category: &str, at: i64) -> NewItem {
    NewItem {
        subject: subject.clone(),
        category: category.into(),
        source: "automatic".into(),
        purpose: "analytics".into(),
        collected_at: Timestamp(at),
        notice_version: "2020-01-24".into(),
        // Nonce, a 32-byte value and a tag, as the vault seals it.
        token: None,
        lookup: None,
    }
}

fn event(action: AuditAction) -> Vec<AuditEvent> {
    vec![AuditEvent::new(Timestamp(1), action, "controller")]
}

/// A small deterministic generator (xorshift), for shuffling.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn rate(n: usize, elapsed: Duration) -> String {
    format!("{:.0}/s", n as f64 / elapsed.as_secs_f64())
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("bench.db"))?;
    let ids: Vec<SubjectId> = (0..SUBJECTS).map(id).collect();

    let started = Instant::now();
    for n in 0..SUBJECTS {
        store.create_subject(
            &subject(n),
            &[7; 40],
            None,
            &format!("p{n}"),
            &event(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )?;
    }
    println!("create_subject, one per call: {}", rate(SUBJECTS, started.elapsed()));

    // Each phase writes one item for each of four categories of every subject.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let phases: [(&str, &[&str], i64, bool); 4] = [
        ("new items, key order", &CATEGORIES[..4], 10, false),
        ("new items, random order", &CATEGORIES[4..], 20, true),
        ("new versions, key order", &CATEGORIES[..4], 30, false),
        ("new versions, random order", &CATEGORIES[4..], 40, true),
    ];
    for (name, categories, at, shuffle) in phases {
        let mut items: Vec<NewItem> = ids.iter().flat_map(|s| categories.iter().map(move |c| item(s, c, at))).collect();
        if shuffle {
            for i in (1..items.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                items.swap(i, j);
            }
        }
        let started = Instant::now();
        for batch in items.chunks(BATCH) {
            store.put_items(batch, &seal_of(batch), &event(AuditAction::DataWritten))?;
        }
        println!("put_items, {name}: {} ({} items)", rate(items.len(), started.elapsed()), items.len());
    }

    // Reads of one subject's current items, random subjects.
    let reads = 100_000;
    let started = Instant::now();
    for _ in 0..reads {
        let s = &ids[(rng.next() % SUBJECTS as u64) as usize];
        let got = store.current_items(s, &[])?;
        assert_eq!(got.len(), CATEGORIES.len());
    }
    let elapsed = started.elapsed();
    println!(
        "current_items, one subject of {SUBJECTS}: {} ({:.1} µs each)",
        rate(reads, elapsed),
        elapsed.as_secs_f64() * 1e6 / reads as f64
    );

    let started = Instant::now();
    for _ in 0..reads {
        let got = store.current_items(&ids[7], &[])?;
        assert_eq!(got.len(), CATEGORIES.len());
    }
    let elapsed = started.elapsed();
    println!(
        "current_items, the same subject again and again: {:.1} µs each",
        elapsed.as_secs_f64() * 1e6 / reads as f64
    );
    let started = Instant::now();
    for _ in 0..reads {
        let s = &ids[(rng.next() % SUBJECTS as u64) as usize];
        assert!(store.subject(s)?.is_some());
    }
    let elapsed = started.elapsed();
    println!("subject, one of {SUBJECTS}: {:.1} µs each", elapsed.as_secs_f64() * 1e6 / reads as f64);

    let started = Instant::now();
    for _ in 0..reads {
        store.append_audit(&event(AuditAction::DataRead))?;
    }
    println!("append_audit, one event per call: {}", rate(reads, started.elapsed()));

    // Erasure of subjects with 1,000 item versions each.
    let mut times = Vec::new();
    for n in 0..9 {
        let heavy = SUBJECTS + n;
        store.create_subject(
            &subject(heavy),
            &[7; 40],
            None,
            &format!("p{heavy}"),
            &event(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )?;
        let items: Vec<NewItem> = (0..1_000).map(|i| item(&id(heavy), CATEGORIES[i % 8], i as i64)).collect();
        store.put_items(&items, &seal_of(&items), &event(AuditAction::DataWritten))?;
        let started = Instant::now();
        let destroyed = store.erase_subject(
            &id(heavy),
            &format!("p{heavy}"),
            Timestamp(5_000),
            &custos_store::HeldCopy::none(),
            &event(AuditAction::SubjectErased),
        )?;
        times.push(started.elapsed());
        assert_eq!(destroyed, 1_000);
    }
    times.sort();
    println!("erase_subject, 1,000 items: median {:?}, max {:?}", times[times.len() / 2], times[times.len() - 1]);

    let started = Instant::now();
    let mut verifier = custos_core::audit::ChainVerifier::default();
    let recorded = store.scan_audit(&mut |s, p, b, h| verifier.check(s, p, b, h))??;
    let head = verifier.finish(recorded)?;
    println!("scan_audit + verify: {} ({} entries)", rate(head.seq as usize, started.elapsed()), head.seq);
    let size = std::fs::metadata(dir.path().join("bench.db")).map(|m| m.len()).unwrap_or(0);
    println!("database file: {} MiB", size / (1024 * 1024));
    Ok(())
}

/// Seals as the vault would hand bytes over (fixed test bytes; the version is not needed here).
fn seal_of(_items: &[NewItem]) -> impl Fn(usize, u32) -> Result<Vec<u8>, custos_store::StoreError> {
    |_, _| Ok(vec![0xA5; 12 + 32 + 16])
}
