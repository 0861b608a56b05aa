//! Several stores on one database (as several server processes would be),
//! writing from several threads at once, keep one intact audit chain and lose
//! no item versions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use custos_core::audit::{AuditAction, AuditEvent, ChainVerifier};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{AuditStore, HeldKeys, ItemStore, NewItem, SubjectStore};

fn id(name: &str) -> SubjectId {
    SubjectId::parse(name).unwrap()
}

fn subject(name: &str) -> Subject {
    Subject::new(id(name), "eu", Timestamp(1))
}

fn item(name: &str, category: &str, at: i64) -> NewItem {
    NewItem {
        subject: id(name),
        category: category.into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(at),
        notice_version: "v1".into(),
        token: None,
        lookup: None,
    }
}

fn event(action: AuditAction, at: i64) -> AuditEvent {
    AuditEvent::new(Timestamp(at), action, "controller")
}

#[test]
fn two_stores_on_one_database_keep_one_chain_and_every_version() {
    const THREADS: i64 = 6;
    const ROUNDS: i64 = 30;
    let db = common::TestDb::create();
    let stores = [db.store(), db.store()];
    stores[0]
        .create_subject(
            &subject("shared"),
            b"key",
            None,
            "p-shared",
            &[event(AuditAction::SubjectCreated, 0)],
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    for t in 0..THREADS {
        stores[1]
            .create_subject(&subject(&format!("own-{t}")), b"key", None, &format!("p-own-{t}"), &[], &HeldKeys::UNKEYED)
            .unwrap();
    }
    let before = stores[0].audit_head().unwrap();
    assert_eq!(before.seq, 1);

    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = &stores[(t % 2) as usize];
            scope.spawn(move || {
                let own = format!("own-{t}");
                for round in 0..ROUNDS {
                    let at = t * 1000 + round + 1;
                    store.append_audit(&[event(AuditAction::DataRead, at)]).unwrap();
                    // The shared subject is written by every thread through both stores.
                    let batch = [item("shared", "email", at), item(&own, "email", at), item("shared", "phone", at)];
                    store.put_items(&batch, &seal_of(&batch), &[event(AuditAction::DataWritten, at)]).unwrap();
                    // A write without audit events does not take the head lock but still numbers correctly.
                    store
                        .put_items(
                            &[item("shared", "phone", at), item(&own, "email", at)],
                            &seal_of(&[item("shared", "phone", at), item(&own, "email", at)]),
                            &[],
                        )
                        .unwrap();
                }
            });
        }
    });

    // One chain, holding every event exactly once, seen alike through both stores.
    let mut verifier = ChainVerifier::default();
    let recorded = stores[1].scan_audit(&mut |s, p, b, h| verifier.check(s, p, b, h)).unwrap().unwrap();
    let verified = verifier.finish(recorded).unwrap();
    assert_eq!(verified.seq, before.seq + (THREADS * ROUNDS * 2) as u64);
    assert_eq!(stores[0].audit_head().unwrap(), verified);

    // No lost versions: every write got its own, consecutive version.
    let writes = (THREADS * ROUNDS) as u32;
    for (name, category, count) in
        [("shared", "email", writes), ("shared", "phone", 2 * writes), ("own-0", "email", 2 * ROUNDS as u32)]
    {
        let history = stores[0].history(&id(name), category).unwrap();
        let versions: Vec<u32> = history.iter().map(|i| i.version).collect();
        assert_eq!(versions, (1..=count).rev().collect::<Vec<_>>(), "{name}/{category}");
        assert_eq!(history.iter().filter(|i| i.superseded_at.is_none()).count(), 1, "{name}/{category}: one current");
    }
    let current = stores[1].current_items(&id("shared"), &[]).unwrap();
    assert_eq!(
        current.iter().map(|i| (i.category.as_str(), i.version)).collect::<Vec<_>>(),
        [("email", writes), ("phone", 2 * writes)]
    );
}

/// A writer numbers versions from what it read before locking the subject;
/// when another writer commits a version while it waits for that lock, the
/// collision is caught and the batch is numbered again under the lock:
/// nothing is lost, no number is used twice, one version stays current.
#[test]
fn a_version_committed_while_a_writer_waits_for_the_subject_is_not_reused() {
    let db = common::TestDb::create();
    let store = db.store();
    store.create_subject(&subject("alice"), b"key", None, "p-alice", &[], &HeldKeys::UNKEYED).unwrap();
    assert_eq!(
        store.put_items(&[item("alice", "email", 1)], &seal_of(&[item("alice", "email", 1)]), &[]).unwrap(),
        [1]
    );

    // Another process holds alice's row, as a concurrent writer would.
    let mut other = db.client();
    let mut tx = other.transaction().unwrap();
    tx.query("SELECT 1 FROM subjects WHERE id = 'alice' FOR UPDATE", &[]).unwrap();
    std::thread::scope(|scope| {
        let writer =
            scope.spawn(|| store.put_items(&[item("alice", "email", 3)], &seal_of(&[item("alice", "email", 3)]), &[]));
        // Wait until the writer has read the versions and waits for the lock.
        let mut watcher = db.client();
        let waiting = (0..200).any(|_| {
            let n: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            n > 0 || {
                std::thread::sleep(std::time::Duration::from_millis(25));
                false
            }
        });
        assert!(waiting, "the writer never waited for the subject");
        tx.execute(
            "INSERT INTO items (subject, category, version, source, purpose, collected_at, notice_version, sealed) \
             VALUES ('alice', 'email', 2, 'provided', 'orders', 2, 'v1', '\\x02')",
            &[],
        )
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(writer.join().unwrap().unwrap(), [3], "numbered after the version committed meanwhile");
    });
    let history = store.history(&id("alice"), "email").unwrap();
    let got: Vec<(u32, Option<i64>)> = history.iter().map(|i| (i.version, i.superseded_at.map(|t| t.0))).collect();
    assert_eq!(got, [(3, None), (2, Some(3)), (1, Some(2))]);
}

/// Seals as the vault would hand bytes over (fixed test bytes per item; the version is not needed here).
fn seal_of(items: &[NewItem]) -> impl Fn(usize, u32) -> Result<Vec<u8>, custos_store::StoreError> + '_ {
    move |i, _| {
        let it = items.get(i).ok_or_else(|| custos_store::StoreError::Backend("no such item".into()))?;
        Ok(format!("{}|{}|{}", it.subject.as_str(), it.category, it.collected_at.0).into_bytes())
    }
}
