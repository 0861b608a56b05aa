//! Connecting: migrations (racing processes, newer databases, reopening) and
//! errors that name no secret or value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;
use custos_store::{NewItem, Store, StoreError};
use custos_store_postgres::{OpenError, PostgresStore, SCHEMA_VERSION};

fn alice() -> Subject {
    Subject {
        id: SubjectId::parse("alice").unwrap(),
        jurisdiction: "us-ca".into(),
        region: None,
        birth_date: None,
        guardian: None,
        created_at: Timestamp(1),
        erased_at: None,
        state: SubjectState::default(),
    }
}

fn versions(db: &common::TestDb) -> Vec<i64> {
    let mut client = db.client();
    client
        .query("SELECT version FROM custos_schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn stores_connecting_together_to_a_new_database_migrate_it_once() {
    let db = common::TestDb::create();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| db.store())).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}

#[test]
fn reconnecting_keeps_the_data_and_the_chain_goes_on() {
    let db = common::TestDb::create();
    let ev = AuditEvent::new(Timestamp(1), AuditAction::SubjectCreated, "controller");
    let head = {
        let store = db.store();
        store.create_subject(&alice(), b"key", std::slice::from_ref(&ev)).unwrap();
        store.audit_head().unwrap()
    };
    let store = db.store();
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert_eq!(store.subject(&alice().id).unwrap().unwrap().subject, alice());
    assert_eq!(store.audit_head().unwrap(), head);
    assert_eq!(store.append_audit(std::slice::from_ref(&ev)).unwrap().seq, 2);
}

#[test]
fn a_database_at_a_newer_version_is_refused_and_left_untouched() {
    let db = common::TestDb::create();
    db.client()
        .batch_execute(
            "CREATE TABLE custos_schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL \
             DEFAULT now()); INSERT INTO custos_schema_migrations (version) VALUES (1), (99);",
        )
        .unwrap();
    let err = PostgresStore::connect_with(db.config.clone(), 2).unwrap_err();
    assert!(matches!(err, OpenError::SchemaTooNew { found: 99, supported: SCHEMA_VERSION }), "{err:?}");
    assert!(err.to_string().contains("newer"), "{err}");
    let tables: i64 =
        db.client().query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'subjects'", &[]).unwrap().get(0);
    assert_eq!(tables, 0, "no migration ran");
}

#[test]
fn a_failing_migration_leaves_the_database_as_it_was() {
    let db = common::TestDb::create();
    db.client().batch_execute("CREATE TABLE items (x integer)").unwrap();
    let err = PostgresStore::connect_with(db.config.clone(), 2).unwrap_err();
    assert!(err.to_string().contains("applying migration 1"), "{err}");
    let mut client = db.client();
    let tables: i64 = client
        .query_one("SELECT count(*) FROM pg_tables WHERE tablename IN ('subjects', 'custos_schema_migrations')", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "everything the migration did was rolled back");
}

#[test]
fn an_unreachable_server_fails_without_showing_the_password() {
    let err = PostgresStore::connect("postgres://custos:s3cret-password@127.0.0.1:1/custos").unwrap_err();
    assert!(matches!(err, OpenError::Postgres(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    let err = PostgresStore::connect("postgres://custos:s3cret-password@127.0.0.1:notaport/custos").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn a_storage_failure_names_the_constraint_but_not_the_values() {
    let (store, _db) = common::fresh_store();
    store.create_subject(&alice(), b"key", &[]).unwrap();
    let mut bob = alice();
    bob.id = SubjectId::parse("bob").unwrap();
    store.create_subject(&bob, b"key", &[]).unwrap();
    let card = |subject: &Subject| NewItem {
        subject: subject.id.clone(),
        category: "payment-card".into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(2),
        notice_version: "v1".into(),
        sealed: b"sealed-secret-bytes".to_vec(),
        token: Some("tok_secret_4242".into()),
    };
    store.put_items(&[card(&alice())], &[]).unwrap();
    let before = store.audit_head().unwrap();
    let err = store
        .put_items(&[card(&bob)], &[AuditEvent::new(Timestamp(3), AuditAction::DataWritten, "controller")])
        .unwrap_err();
    let StoreError::Backend(message) = err else { panic!("expected a backend error, got {err:?}") };
    assert!(message.contains("23505") && message.contains("tokens_pkey"), "{message}");
    assert!(!message.contains("secret") && !message.contains("bob"), "{message}");
    assert_eq!(store.audit_head().unwrap(), before, "the failed write appended nothing");
    assert!(store.current_items(&bob.id, &[]).unwrap().is_empty(), "and wrote nothing");
}
