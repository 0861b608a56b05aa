//! Unit tests of the SQLite store across capabilities.

use std::sync::mpsc;
use std::time::Duration;

use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::prelude::*;
use custos_store::{ApiKeyRecord, IdempotentResponse, NewItem, StoreError};
use rusqlite::{Connection, StatementStatus};

use super::{audit, holds, idempotency, is_key_violation, items, keys, requests, sql, subjects};
use crate::SqliteStore;

fn subject(name: &str) -> Subject {
    Subject::new(SubjectId::parse(name).unwrap(), "us-ca", Timestamp(1))
}

fn item(name: &str, category: &str, token: Option<&str>) -> NewItem {
    NewItem {
        subject: SubjectId::parse(name).unwrap(),
        category: category.into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(2),
        notice_version: "v1".into(),
        token: token.map(Into::into),
        lookup: None,
    }
}

#[test]
fn statements_are_prepared_once_and_never_re_prepared() {
    let store = SqliteStore::open_in_memory().unwrap();
    for name in ["alice", "bob", "carol"] {
        store
            .create_subject(&subject(name), b"key", Some(b"sealed"), &format!("p-{name}"), &[], &HeldKeys::UNKEYED)
            .unwrap();
        let id = SubjectId::parse(name).unwrap();
        for round in 0..2 {
            let token = format!("tok-{name}-{round}");
            store
                .put_items(
                    &[item(name, "card", Some(&token)), item(name, "email", None)],
                    &|_, _| Ok(vec![1, 2, 3]),
                    &[],
                )
                .unwrap();
            store.current_items(&id, &[]).unwrap();
            store.current_items(&id, &["email"]).unwrap();
            store.history(&id, "email").unwrap();
            store.item_by_token(&token).unwrap();
            store.subjects(std::slice::from_ref(&id)).unwrap();
            store.update_state(&id, &mut |_| None).unwrap();
            store.append_audit(&[]).unwrap();
            store.audit_entries(0, 10).unwrap();
            store.scan_audit(&mut |_, _, _, _| Ok(())).unwrap().unwrap();
        }
    }
    for n in 0..3u8 {
        let key = api_key(n);
        store.create_api_key(&key, &[]).unwrap();
        assert!(matches!(store.create_api_key(&key, &[]), Err(StoreError::KeyExists)));
        store.api_key_by_hash(&key.secret_hash).unwrap().unwrap();
        store.api_keys().unwrap();
        store.revoke_api_key(&key.id, Timestamp(3), &[]).unwrap();
        let response = IdempotentResponse {
            fingerprint: [n; 32],
            status: 201,
            body: vec![n],
            created_at: Timestamp(3),
            subjects: vec!["p-alice".into()],
        };
        let idempotency_key = format!("key-{n}:retry");
        store.save_idempotent_response(&idempotency_key, &response, Timestamp(1)).unwrap();
        assert!(matches!(
            store.save_idempotent_response(&idempotency_key, &response, Timestamp(1)),
            Err(StoreError::IdempotencyKeyExists)
        ));
        store.idempotent_response(&idempotency_key, Timestamp(1)).unwrap().unwrap();
        store.prune_idempotent_responses(Timestamp(0)).unwrap();
    }
    store
        .erase_subject(
            &SubjectId::parse("alice").unwrap(),
            "p-alice",
            Timestamp(3),
            &custos_store::HeldCopy::none(),
            &[],
        )
        .unwrap();
    store
        .erase_subject(&SubjectId::parse("bob").unwrap(), "p-bob", Timestamp(3), &custos_store::HeldCopy::none(), &[])
        .unwrap();
    store.tombstone("p-alice").unwrap().unwrap();
    store.legacy_subjects(10).unwrap();
    store.upgrade_legacy_subject(&SubjectId::parse("carol").unwrap(), Some(b"sealed"), "p-carol").unwrap();
    let writer = store.writer();
    let all = [
        sql::ALL,
        audit::sql::ALL,
        holds::sql::ALL,
        idempotency::sql::ALL,
        items::sql::ALL,
        keys::sql::ALL,
        requests::sql::ALL,
        subjects::sql::ALL,
    ];
    for sql in all.concat() {
        let stmt = writer.conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "re-prepared: {sql}");
    }
}

fn api_key(n: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: format!("key-{n}"),
        secret_hash: [n; 32],
        role: "service".into(),
        actor: Some("processor".into()),
        purposes: vec!["orders".into()],
        created_at: Timestamp(i64::from(n)),
        revoked_at: None,
    }
}

#[test]
fn only_primary_key_and_unique_violations_count_as_taken_keys() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (k TEXT NOT NULL PRIMARY KEY, u BLOB NOT NULL UNIQUE, n INTEGER CHECK (n > 0));
         INSERT INTO t VALUES ('a', x'01', 1);",
    )
    .unwrap();
    let fails = |sql: &str| conn.execute(sql, []).unwrap_err();
    assert!(is_key_violation(&fails("INSERT INTO t VALUES ('a', x'02', 1)")), "primary key");
    assert!(is_key_violation(&fails("INSERT INTO t VALUES ('b', x'01', 1)")), "unique");
    assert!(!is_key_violation(&fails("INSERT INTO t VALUES ('c', NULL, 1)")), "not null");
    assert!(!is_key_violation(&fails("INSERT INTO t VALUES ('d', x'03', 0)")), "check");
    assert!(!is_key_violation(&fails("INSERT INTO nowhere VALUES (1)")), "no such table");
}

#[test]
fn reads_of_a_file_do_not_wait_for_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("custos.db")).unwrap();
    store.create_subject(&subject("alice"), b"key", None, "p-alice", &[], &HeldKeys::UNKEYED).unwrap();
    let writer = store.writer();
    writer.conn.execute_batch("BEGIN IMMEDIATE; UPDATE subjects SET jurisdiction = 'eu'").unwrap();
    let (sent, received) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let record = store.subject(&SubjectId::parse("alice").unwrap());
            sent.send(record.map(|r| r.map(|r| r.subject.jurisdiction))).unwrap();
        });
        let read = received.recv_timeout(Duration::from_secs(10)).expect("the read finished during the write");
        assert_eq!(read.unwrap().as_deref(), Some("us-ca"), "the read sees the last committed state");
    });
    writer.conn.execute_batch("ROLLBACK").unwrap();
}
