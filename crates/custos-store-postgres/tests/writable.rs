//! The readiness check of the write path (`AuditStore::check_writable`) fails
//! when the database cannot take a write now, and passes again after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::time::Timestamp;
use custos_store::AuditStore;

fn ev() -> Vec<AuditEvent> {
    vec![AuditEvent::new(Timestamp(5), AuditAction::DataRead, "controller")]
}

/// Another session holds the chain head for longer than the check waits
/// (a stuck writer): the check fails, and passes once it lets go.
#[test]
fn check_writable_fails_while_another_session_holds_the_audit_head() {
    let db = common::TestDb::create();
    let store = db.store();
    store.append_audit(&ev()).unwrap();
    store.check_writable().unwrap();
    let mut other = db.client();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute("SELECT * FROM audit_head FOR UPDATE").unwrap();
    let started = Instant::now();
    let err = store.check_writable().expect_err("the head is locked elsewhere");
    assert!(started.elapsed() >= Duration::from_secs(4), "it waited as a write would");
    assert!(err.to_string().contains("lock"), "{err}");
    tx.rollback().unwrap();
    store.check_writable().unwrap();
}

/// A head that is not the last entry (entries removed, the head row moved by
/// hand) would make the next append fail: the check says so first.
#[test]
fn check_writable_fails_when_the_recorded_head_is_not_the_last_entry() {
    let db = common::TestDb::create();
    let store = db.store();
    store.append_audit(&ev()).unwrap();
    store.append_audit(&ev()).unwrap();
    let mut other = db.client();
    other.batch_execute("UPDATE audit_head SET seq = 1").unwrap();
    let err = store.check_writable().expect_err("the head is behind the chain");
    assert!(err.to_string().contains("not the last audit entry"), "{err}");
    other.batch_execute("UPDATE audit_head SET seq = 2").unwrap();
    store.check_writable().unwrap();
}
