//! Connecting: migrations (racing processes, newer databases, reopening) and
//! errors that name no secret or value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{AuditStore, HeldKeys, ItemStore, NewItem, StoreError, SubjectStore};
use custos_store_postgres::{OpenError, PostgresStore, SCHEMA_VERSION};

fn alice() -> Subject {
    Subject::new(SubjectId::parse("alice").unwrap(), "us-ca", Timestamp(1))
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

/// Makes `db` a schema-version-1 database holding the rows `inserts` adds,
/// as a build from before every later migration left it.
fn at_version_1(db: &common::TestDb, inserts: &str) {
    let create = concat!(
        "CREATE TABLE custos_schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL \
         DEFAULT now());",
        include_str!("../migrations/0001_init.sql"),
        "INSERT INTO custos_schema_migrations (version) VALUES (1);"
    );
    db.client().batch_execute(&format!("{create}\n{inserts}")).unwrap();
}

/// Opens four stores on `db` at the same moment, as servers starting together would.
fn open_four_at_once(db: &common::TestDb) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| db.store())).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn stores_connecting_together_to_a_new_database_migrate_it_once() {
    let db = common::TestDb::create();
    open_four_at_once(&db);
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}

#[test]
fn reconnecting_keeps_the_data_and_the_chain_goes_on() {
    let db = common::TestDb::create();
    let ev = AuditEvent::new(Timestamp(1), AuditAction::SubjectCreated, "controller");
    let head = {
        let store = db.store();
        store.create_subject(&alice(), b"key", None, "p-alice", std::slice::from_ref(&ev), &HeldKeys::UNKEYED).unwrap();
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
fn a_database_that_does_not_exist_is_created_and_migrated() {
    let db = common::TestDb::reserve();
    let store = db.store();
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    store.create_subject(&alice(), b"key", None, "p-alice", &[], &HeldKeys::UNKEYED).unwrap();
    drop(store);
    assert!(db.store().subject(&alice().id).unwrap().is_some(), "a second connection finds it and its data");
}

#[test]
fn stores_connecting_together_to_a_missing_database_create_it_once() {
    let db = common::TestDb::reserve();
    open_four_at_once(&db);
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
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
    store.create_subject(&alice(), b"key", None, "p-alice", &[], &HeldKeys::UNKEYED).unwrap();
    let mut bob = alice();
    bob.id = SubjectId::parse("bob").unwrap();
    store.create_subject(&bob, b"key", None, "p-bob", &[], &HeldKeys::UNKEYED).unwrap();
    let card = |subject: &Subject| NewItem {
        subject: subject.id.clone(),
        category: "payment-card".into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(2),
        notice_version: "v1".into(),
        token: Some("tok_secret_4242".into()),
        lookup: None,
    };
    let seal = |_: usize, _: u32| Ok(b"sealed-secret-bytes".to_vec());
    store.put_items(&[card(&alice())], &seal, &[]).unwrap();
    let before = store.audit_head().unwrap();
    let err = store
        .put_items(&[card(&bob)], &seal, &[AuditEvent::new(Timestamp(3), AuditAction::DataWritten, "controller")])
        .unwrap_err();
    let StoreError::Backend(message) = err else { panic!("expected a backend error, got {err:?}") };
    assert!(message.contains("23505") && message.contains("tokens_pkey"), "{message}");
    assert!(!message.contains("secret") && !message.contains("bob"), "{message}");
    assert_eq!(store.audit_head().unwrap(), before, "the failed write appended nothing");
    assert!(store.current_items(&bob.id, &[]).unwrap().is_empty(), "and wrote nothing");
}

/// A database written by schema version 1 (which stored `superseded_at` on
/// each replaced row) keeps every version, every supersession time and every
/// token when it is migrated to the insert-only schema, and goes on numbering.
#[test]
fn a_version_1_database_is_migrated_forward_without_loss() {
    let db = common::TestDb::create();
    at_version_1(
        &db,
        "INSERT INTO subjects (id, jurisdiction, created_at, wrapped_key, state)
                 VALUES ('alice', 'us-ca', 1, '\\x6b6579', '{}');
             INSERT INTO items (subject, category, version, source, purpose, collected_at, notice_version,
                                superseded_at, sealed, token) VALUES
                 ('alice', 'contact.email', 1, 'provided', 'orders', 10, 'v1', 20, '\\x01', NULL),
                 ('alice', 'contact.email', 2, 'provided', 'orders', 20, 'v1', 30, '\\x02', NULL),
                 ('alice', 'contact.email', 3, 'provided', 'orders', 30, 'v1', NULL, '\\x03', NULL),
                 ('alice', 'payment.card', 1, 'provided', 'orders', 15, 'v1', 25, '\\x04', 'tok_a'),
                 ('alice', 'payment.card', 2, 'provided', 'orders', 25, 'v1', NULL, '\\x05', 'tok_b');
             INSERT INTO tokens (token, subject, category, version) VALUES
                 ('tok_a', 'alice', 'payment.card', 1), ('tok_b', 'alice', 'payment.card', 2);",
    );

    let store = db.store();
    assert_eq!(versions(&db), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let alice = alice().id;
    let history = |category: &str| -> Vec<(u32, Option<i64>, Vec<u8>)> {
        store
            .history(&alice, category)
            .unwrap()
            .into_iter()
            .map(|i| (i.version, i.superseded_at.map(|t| t.0), i.sealed))
            .collect()
    };
    assert_eq!(
        history("contact.email"),
        vec![(3, None, vec![3]), (2, Some(30), vec![2]), (1, Some(20), vec![1])],
        "every version and when it was superseded"
    );
    let current: Vec<(String, u32)> =
        store.current_items(&alice, &[]).unwrap().into_iter().map(|i| (i.category, i.version)).collect();
    assert_eq!(current, vec![("contact.email".to_string(), 3), ("payment.card".to_string(), 2)]);
    let old_card = store.item_by_token("tok_a").unwrap().unwrap();
    assert_eq!((old_card.version, old_card.superseded_at), (1, Some(Timestamp(25))));
    assert_eq!(store.item_by_token("tok_b").unwrap().unwrap().superseded_at, None);

    let next = NewItem {
        subject: alice.clone(),
        category: "contact.email".into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: Timestamp(40),
        notice_version: "v2".into(),
        token: None,
        lookup: None,
    };
    assert_eq!(store.put_items(std::slice::from_ref(&next), &|_, _| Ok(vec![6]), &[]).unwrap(), vec![4]);
    assert_eq!(history("contact.email")[..2], [(4, None, vec![6]), (3, Some(40), vec![3])]);
}

/// Rows written before metadata was sealed (schema version 2): migration 7
/// empties the clear metadata of erased rows at once, lists every legacy row
/// (and only those) for the vault, and an upgrade seals a live row's metadata
/// and turns an erased row into a tombstone under its pseudonym.
#[test]
fn subjects_written_before_sealed_metadata_are_listed_and_upgraded() {
    let db = common::TestDb::create();
    db.client()
        .batch_execute(concat!(
            "CREATE TABLE custos_schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL \
             DEFAULT now());",
            include_str!("../migrations/0001_init.sql"),
            include_str!("../migrations/0002_insert_only_versions.sql"),
            "INSERT INTO custos_schema_migrations (version) VALUES (1), (2);
             INSERT INTO subjects (id, jurisdiction, region, birth_date, guardian, created_at, erased_at,
                                   wrapped_key, state) VALUES
                 ('kid', 'eea', 'xq-legacy-region', '2012-05-05', 'parent', 1, NULL, '\\x6b6579', '{}'),
                 ('parent', 'eea', NULL, NULL, NULL, 1, NULL, '\\x6b6579', '{}'),
                 ('gone@example.org', 'eea', 'xq-gone-region', '1990-01-01', NULL, 1, 7, NULL, '{}');"
        ))
        .unwrap();
    let store = db.store();
    let legacy = store.legacy_subjects(10).unwrap();
    let ids: Vec<&str> = legacy.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["gone@example.org", "kid"], "only rows with clear metadata or an erased row by id");
    let (gone, kid) = (&legacy[0], &legacy[1]);
    assert_eq!((gone.erased_at, &gone.region, gone.birth_date), (Some(Timestamp(7)), &None, None));
    assert_eq!(kid.region.as_deref(), Some("xq-legacy-region"));
    assert_eq!(kid.birth_date.map(custos_core::time::format_date).as_deref(), Some("2012-05-05"));
    assert_eq!(kid.guardian.as_ref().map(SubjectId::as_str), Some("parent"));
    assert_eq!(kid.wrapped_key.as_deref(), Some(&b"key"[..]));

    store.upgrade_legacy_subject(&kid.id, Some(b"sealed-metadata"), "p-kid").unwrap();
    store.upgrade_legacy_subject(&gone.id, None, "p-gone").unwrap();
    assert!(store.legacy_subjects(10).unwrap().is_empty());
    let record = store.subject(&kid.id).unwrap().unwrap();
    assert_eq!(record.sealed_metadata.as_deref(), Some(&b"sealed-metadata"[..]));
    assert_eq!(store.subject(&gone.id).unwrap(), None);
    assert_eq!(store.tombstone("p-gone").unwrap().map(|t| t.erased_at), Some(Timestamp(7)));
    let mut client = db.client();
    let rows = client.query("SELECT s::text FROM subjects s UNION ALL SELECT t::text FROM tombstones t", &[]).unwrap();
    let text: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let text = text.join("\n");
    for clear in ["xq-legacy-region", "2012-05-05", "xq-gone-region", "1990-01-01", "gone@example.org"] {
        assert!(!text.contains(clear), "`{clear}` is still stored: {text}");
    }
}

/// Migration 8: a guardian's consent keeps the fact, not the guardian's id,
/// in the clear state; other consents and other state are untouched.
#[test]
fn a_guardians_id_in_a_stored_consent_becomes_a_flag() {
    let db = common::TestDb::create();
    at_version_1(
        &db,
        "INSERT INTO subjects (id, jurisdiction, created_at, wrapped_key, state) VALUES
                 ('kid', 'eea', 1, '\\x6b6579',
                  '{\"consents\":{\"marketing\":{\"status\":\"granted\",\"at\":5,\"by_guardian\":\"parent@example.org\"},\
                   \"provide_offerings\":{\"status\":\"withdrawn\",\"at\":6}},\"restricted_since\":9}'),
                 ('adult', 'eea', 1, '\\x6b6579', '{\"consents\":{\"marketing\":{\"status\":\"granted\",\"at\":5}}}'),
                 ('new', 'eea', 1, '\\x6b6579', '{}');",
    );
    drop(db.store());
    let mut client = db.client();
    let state = |client: &mut postgres::Client, id: &str| -> serde_json::Value {
        let text: String = client.query_one("SELECT state::text FROM subjects WHERE id = $1", &[&id]).unwrap().get(0);
        assert!(!text.contains("parent@"), "the guardian's id is gone: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let kid = state(&mut client, "kid");
    assert_eq!(kid["consents"]["marketing"]["by_guardian"], true, "{kid}");
    assert_eq!(kid["consents"]["marketing"]["at"], 5, "{kid}");
    assert!(kid["consents"]["provide_offerings"].get("by_guardian").is_none(), "{kid}");
    assert_eq!(kid["restricted_since"], 9, "{kid}");
    let adult = state(&mut client, "adult");
    assert!(adult["consents"]["marketing"].get("by_guardian").is_none(), "{adult}");
    assert_eq!(state(&mut client, "new"), serde_json::json!({}));
}
