//! Several stores on one database file, as `custos serve` and a CLI command
//! run beside it: one intact audit chain, and a readiness check that fails
//! when the store cannot write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent, ChainVerifier};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::prelude::*;
use custos_store::{ApiKeyRecord, NewItem};
use custos_store_sqlite::SqliteStore;

fn ev(action: AuditAction) -> Vec<AuditEvent> {
    vec![AuditEvent::new(Timestamp(5), action, "controller")]
}

fn key(n: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: format!("key{n:05}"),
        secret_hash: [n; 32],
        role: "auditor".into(),
        actor: None,
        purposes: Vec::new(),
        created_at: Timestamp(i64::from(n)),
        revoked_at: None,
    }
}

fn item(owner: &str, n: i64) -> NewItem {
    NewItem {
        subject: SubjectId::parse(owner).unwrap(),
        category: "contact.email".into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(n),
        notice_version: "v1".into(),
        token: None,
        lookup: None,
    }
}

fn verified(store: &SqliteStore) -> u64 {
    let mut verifier = ChainVerifier::default();
    let recorded = store.scan_audit(&mut |s, p, b, h| verifier.check(s, p, b, h)).unwrap().unwrap();
    assert_eq!(recorded, store.audit_head().unwrap());
    verifier.finish(recorded).expect("the chain verifies").seq
}

/// Defect 1 of issue 8: a second process's commit left the first with a
/// stale cached head, and its every later append failed with
/// `UNIQUE constraint failed: audit.seq`.
#[test]
fn regression_cli_command_beside_running_server_keeps_chain_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let server = SqliteStore::open(&path).unwrap();
    server.append_audit(&ev(AuditAction::DataRead)).unwrap();
    {
        // `custos key create` beside the server: its own store, its own commit.
        let cli = SqliteStore::open(&path).unwrap();
        cli.create_api_key(&key(1), &ev(AuditAction::ApiKeyCreated)).unwrap();
    }
    // Every kind of write of the server goes on after the CLI's entry.
    let head = server.append_audit(&ev(AuditAction::DataRead)).expect("an audited read after the CLI command");
    assert_eq!(head.seq, 3);
    let alice = Subject::new(SubjectId::parse("alice").unwrap(), "eea", Timestamp(1));
    server
        .create_subject(&alice, b"key", None, "ps-alice", &ev(AuditAction::SubjectCreated), &HeldKeys::UNKEYED)
        .unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    cli.put_items(&[item("alice", 1)], &seal_of(&[item("alice", 1)]), &ev(AuditAction::DataWritten)).unwrap();
    server.put_items(&[item("alice", 2)], &seal_of(&[item("alice", 2)]), &ev(AuditAction::DataWritten)).unwrap();
    cli.revoke_api_key("key00001", Timestamp(9), &ev(AuditAction::ApiKeyRevoked)).unwrap();
    server.check_writable().expect("the server's store can still write");
    server
        .erase_subject(
            &alice.id,
            "ps-alice",
            Timestamp(10),
            &custos_store::HeldCopy::none(),
            &ev(AuditAction::SubjectErased),
        )
        .unwrap();
    assert_eq!(verified(&server), 8);
    assert_eq!(verified(&cli), 8);
}

/// Two stores appending and writing at once, each with its own group
/// commit, keep one chain holding every event once.
#[test]
fn two_stores_writing_at_once_keep_one_chain() {
    const ROUNDS: u8 = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    // Every round starts together, so each store writes after the other has.
    let rounds = std::sync::Barrier::new(4);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (n, store) in [&a, &b].into_iter().enumerate() {
            for t in 0..2u8 {
                let (rounds, failures) = (&rounds, &failures);
                scope.spawn(move || {
                    for round in 0..ROUNDS {
                        rounds.wait();
                        // A failure is recorded, not raised: the other threads wait for this one.
                        let mut outcome = store.append_audit(&ev(AuditAction::DataRead)).map(drop);
                        if t == 0 && outcome.is_ok() {
                            let id = (n as u8) * 100 + round;
                            outcome = store.create_api_key(&key(id), &ev(AuditAction::ApiKeyCreated));
                        }
                        if let Err(e) = outcome {
                            failures.lock().unwrap().push(format!("store {n}, round {round}: {e}"));
                        }
                    }
                });
            }
        }
    });
    assert_eq!(failures.into_inner().unwrap(), Vec::<String>::new(), "every write succeeds");
    let expected = u64::from(ROUNDS) * (4 + 2);
    assert_eq!(verified(&a), expected);
    assert_eq!(verified(&b), expected);
    assert_eq!(a.api_keys().unwrap().len(), 2 * usize::from(ROUNDS));
}

/// Another connection holds the write lock for longer than the store waits:
/// the readiness check fails (and passes again once the lock is released).
#[test]
fn check_writable_fails_while_another_process_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let store = SqliteStore::open(&path).unwrap();
    store.check_writable().unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let err = store.check_writable().expect_err("the write lock is held elsewhere");
    assert!(started.elapsed() >= Duration::from_secs(4), "it waited as a write would");
    assert!(err.to_string().contains("locked"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    store.check_writable().unwrap();
}

/// A head that is not the last entry (entries removed, or a head row moved
/// by hand) would make the next append fail: the check says so first.
#[test]
fn check_writable_fails_when_the_recorded_head_is_not_the_last_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let store = SqliteStore::open(&path).unwrap();
    store.append_audit(&ev(AuditAction::DataRead)).unwrap();
    store.append_audit(&ev(AuditAction::DataRead)).unwrap();
    store.check_writable().unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("UPDATE audit_head SET seq = 1").unwrap();
    let err = store.check_writable().expect_err("the head is behind the chain");
    assert!(err.to_string().contains("not the last audit entry"), "{err}");
    other.execute_batch("DELETE FROM audit_head").unwrap();
    let err = store.check_writable().expect_err("the head row is missing");
    assert!(err.to_string().contains("audit head row is missing"), "{err}");
}

/// Another process migrated the file to a newer schema while this store was
/// open: this store refuses to write (it would not know the new schema) rather
/// than writing rows the newer build cannot read.
#[test]
fn a_store_refuses_to_write_once_another_process_migrated_the_file_further() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let store = SqliteStore::open(&path).unwrap();
    store.append_audit(&ev(AuditAction::DataRead)).unwrap();
    let newer = custos_store_sqlite::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", newer).unwrap();
    let err = store.append_audit(&ev(AuditAction::DataRead)).expect_err("a newer schema");
    assert!(err.to_string().contains("newer than this build"), "{err}");
    assert!(store.check_writable().is_err());
    assert_eq!(store.audit_head().unwrap().seq, 1, "nothing was appended");
}

/// Seals as the vault would hand bytes over (fixed test bytes; the version is not needed here).
fn seal_of(_items: &[NewItem]) -> impl Fn(usize, u32) -> Result<Vec<u8>, custos_store::StoreError> {
    |_, _| Ok(vec![1, 2, 3])
}
