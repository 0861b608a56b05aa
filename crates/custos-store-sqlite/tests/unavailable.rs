//! A write that cannot happen now (another process holds the write lock past
//! the busy timeout) is `StoreError::Unavailable` — the server answers 503
//! with `Retry-After` — not a storage failure answered with 500; and the
//! store works again once the lock is released.

use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::StoreError;
use custos_store::prelude::*;
use custos_store_sqlite::SqliteStore;

fn create(store: &SqliteStore, name: &str) -> Result<(), StoreError> {
    let subject = Subject::new(SubjectId::parse(name).expect("a valid id"), "kr", Timestamp(1));
    let ev = [AuditEvent::new(Timestamp(5), AuditAction::SubjectCreated, "controller")];
    store.create_subject(&subject, b"wrapped", None, name, &ev, &HeldKeys::UNKEYED)
}

#[test]
fn a_write_locked_out_by_another_process_is_unavailable_not_a_failure() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("custos.db");
    let store = SqliteStore::open(&path).expect("open");
    create(&store, "before").expect("a write with no one else writing");

    // Another process takes the write lock and keeps it.
    let other = rusqlite::Connection::open(&path).expect("a second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("the write lock");
    let started = Instant::now();
    match create(&store, "locked-out") {
        Err(StoreError::Unavailable(why)) => assert!(!why.contains("locked-out"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited for the lock first");
    assert!(matches!(store.check_writable(), Err(StoreError::Unavailable(_))), "readiness says so too");

    other.execute_batch("ROLLBACK").expect("release");
    create(&store, "after").expect("writes work again once the lock is released");
    store.check_writable().expect("ready again");
}
