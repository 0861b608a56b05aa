//! Schema migrations, embedded in the binary and applied in order at open.
//!
//! The schema version is `PRAGMA user_version`: 0 for a new file, `n` once the
//! first `n` migrations have run. All pending migrations and the version bump
//! run in one transaction, so a failed migration leaves the file as it was. A
//! file at a version newer than [`SCHEMA_VERSION`] is refused untouched.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Describe, OpenError};

/// The migrations, in order; the `n`th brings the schema to version `n`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_api_keys.sql"),
    include_str!("../migrations/0003_current_versions.sql"),
    include_str!("../migrations/0004_store_identity.sql"),
    include_str!("../migrations/0005_audit_checkpoints.sql"),
    include_str!("../migrations/0006_idempotency_keyed.sql"),
    include_str!("../migrations/0007_sealed_subject_metadata.sql"),
    include_str!("../migrations/0008_items_bound.sql"),
    include_str!("../migrations/0009_guardian_consent_flag.sql"),
    include_str!("../migrations/0010_lookups.sql"),
    include_str!("../migrations/0011_requests.sql"),
    include_str!("../migrations/0012_legal_holds.sql"),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a file written by a newer build before anything (even the journal
/// mode) is changed in it. [`migrate`] checks again inside its transaction.
pub(crate) fn refuse_newer(conn: &Connection) -> Result<(), OpenError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| OpenError::Sqlite(format!("reading the schema version: {}", Describe(&e))))?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let fail = |step: &str, e: rusqlite::Error| OpenError::Sqlite(format!("{step}: {}", Describe(&e)));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| fail("starting the migration", e))?;
    let found: i64 =
        tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail("reading the schema version", e))?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    let from =
        usize::try_from(found).map_err(|_| OpenError::Sqlite(format!("the schema version {found} is not valid")))?;
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql)
            .map_err(|e| OpenError::Sqlite(format!("applying migration {}: {}", done + 1, Describe(&e))))?;
    }
    if from < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| fail("recording the schema version", e))?;
    }
    tx.commit().map_err(|e| fail("committing the migration", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use custos_core::audit::{AuditAction, AuditEvent, ChainHead, ChainVerifier};
    use custos_core::subject::{Subject, SubjectId, SubjectState};
    use custos_core::time::Timestamp;
    use custos_store::prelude::*;
    use custos_store::{ApiKeyRecord, IdempotentResponse, NewItem};

    fn user_version(path: &std::path::Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
    }

    fn alice() -> Subject {
        Subject::new(SubjectId::parse("alice").unwrap(), "us-ca", Timestamp(1))
    }

    #[test]
    fn a_new_file_gets_the_current_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(user_version(&path), SCHEMA_VERSION);
    }

    #[test]
    fn reopening_a_database_keeps_its_data_and_its_audit_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        let ev = AuditEvent::new(Timestamp(1), AuditAction::SubjectCreated, "controller");
        let head = {
            let store = SqliteStore::open(&path).unwrap();
            store
                .create_subject(&alice(), b"key", None, "p-alice", std::slice::from_ref(&ev), &HeldKeys::UNKEYED)
                .unwrap();
            let item = NewItem {
                subject: alice().id,
                category: "email".into(),
                source: "provided".into(),
                purpose: "orders".into(),
                collected_at: Timestamp(2),
                notice_version: "v1".into(),
                token: None,
                lookup: None,
            };
            store.put_items(&[item], &|_, _| Ok(b"sealed".to_vec()), std::slice::from_ref(&ev)).unwrap();
            store.audit_head().unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let record = store.subject(&alice().id).unwrap().unwrap();
        assert_eq!(record.subject, alice());
        assert_eq!(record.wrapped_key.as_deref(), Some(&b"key"[..]));
        assert_eq!(store.current_items(&alice().id, &[]).unwrap()[0].sealed, b"sealed");
        assert_eq!(store.audit_head().unwrap(), head);
        // The chain goes on from the reloaded head.
        store.append_audit(std::slice::from_ref(&ev)).unwrap();
        let mut verifier = ChainVerifier::default();
        let recorded = store.scan_audit(&mut |s, p, b, h| verifier.check(s, p, b, h)).unwrap().unwrap();
        assert_eq!(verifier.finish(recorded).unwrap().seq, 3);
    }

    /// Builds a file at schema version 1 by hand, as a build of that version
    /// left it: alice with two versions of her email and a name, and a
    /// three-entry audit chain whose head is recorded. Returns the head.
    fn write_version_1(path: &std::path::Path) -> ChainHead {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.execute(
            "INSERT INTO subjects (id, jurisdiction, region, birth_date, guardian, created_at, erased_at, \
             wrapped_key, state) VALUES ('alice', 'us-ca', NULL, NULL, NULL, 1, NULL, x'6b6579', ?1)",
            [serde_json::to_string(&SubjectState::default()).unwrap()],
        )
        .unwrap();
        tx.execute_batch(
            "INSERT INTO items (subject, category, version, source, purpose, collected_at, notice_version, \
             superseded_at, sealed, token) VALUES
             ('alice', 'email', 1, 'provided', 'orders', 2, 'v1', 3, x'01', NULL),
             ('alice', 'email', 2, 'provided', 'orders', 3, 'v1', NULL, x'02', NULL),
             ('alice', 'card', 1, 'provided', 'orders', 2, 'v1', NULL, x'03', 'tok_a');",
        )
        .unwrap();
        let mut head = ChainHead::EMPTY;
        for (at, action) in
            [(1, AuditAction::SubjectCreated), (2, AuditAction::DataWritten), (3, AuditAction::DataWritten)]
        {
            let entry = head.append(AuditEvent::new(Timestamp(at), action, "controller").to_body());
            tx.execute(
                "INSERT INTO audit (seq, prev_hash, body, hash) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![entry.seq as i64, &entry.prev_hash[..], entry.body, &entry.hash[..]],
            )
            .unwrap();
        }
        tx.execute(
            "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1",
            rusqlite::params![head.seq as i64, &head.hash[..]],
        )
        .unwrap();
        tx.commit().unwrap();
        head
    }

    /// Rows written before metadata was sealed: migration 7 empties the clear
    /// metadata of erased rows at once, lists every legacy row (and only those)
    /// for the vault, and an upgrade seals a live row's metadata and turns an
    /// erased row into a tombstone under its pseudonym.
    #[test]
    fn subjects_written_before_sealed_metadata_are_listed_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..3] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 3).unwrap();
            tx.execute_batch(
                "INSERT INTO subjects (id, jurisdiction, region, birth_date, guardian, created_at, erased_at, \
                 wrapped_key, state) VALUES
                 ('kid', 'eea', 'xq-legacy-region', '2012-05-05', 'parent', 1, NULL, x'6b6579', '{}'),
                 ('parent', 'eea', NULL, NULL, NULL, 1, NULL, x'6b6579', '{}'),
                 ('gone@example.org', 'eea', 'xq-gone-region', '1990-01-01', NULL, 1, 7, NULL, '{}');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let legacy = store.legacy_subjects(10).unwrap();
        let ids: Vec<&str> = legacy.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["gone@example.org", "kid"], "only rows with clear metadata or an erased row by id");
        let gone = &legacy[0];
        assert_eq!((gone.erased_at, &gone.region, gone.birth_date), (Some(Timestamp(7)), &None, None));
        let kid = &legacy[1];
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
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        for clear in ["xq-legacy-region", "2012-05-05", "xq-gone-region", "1990-01-01", "gone@example.org"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear.as_bytes()), "`{clear}` is still in the file");
        }
    }

    #[test]
    fn a_version_1_database_is_migrated_forward_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        let head = write_version_1(&path);
        assert_eq!(user_version(&path), 1);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let record = store.subject(&alice().id).unwrap().unwrap();
        assert_eq!(record.subject, alice());
        assert_eq!(record.wrapped_key.as_deref(), Some(&b"key"[..]));
        let current = store.current_items(&alice().id, &[]).unwrap();
        let found: Vec<_> = current.iter().map(|i| (i.category.as_str(), i.version, i.sealed.as_slice())).collect();
        assert_eq!(found, [("card", 1, &[3u8][..]), ("email", 2, &[2u8][..])]);
        let history = store.history(&alice().id, "email").unwrap();
        assert_eq!(
            history.iter().map(|i| (i.version, i.superseded_at)).collect::<Vec<_>>(),
            [(2, None), (1, Some(Timestamp(3)))]
        );
        assert_eq!(store.item_by_token("tok_a").unwrap().unwrap().sealed, [3]);
        assert_eq!(store.audit_entries(0, 10).unwrap().len(), 3);
        assert_eq!(store.audit_head().unwrap(), head);

        // The new tables work, and the chain goes on from the migrated head.
        let key = ApiKeyRecord {
            id: "k1".into(),
            secret_hash: [7; 32],
            role: "auditor".into(),
            actor: None,
            purposes: Vec::new(),
            created_at: Timestamp(4),
            revoked_at: None,
        };
        let ev = AuditEvent::new(Timestamp(4), AuditAction::DataRead, "controller");
        store.create_api_key(&key, std::slice::from_ref(&ev)).unwrap();
        assert_eq!(store.api_key_by_hash(&[7; 32]).unwrap(), Some(key.clone()));
        assert!(store.revoke_api_key("k1", Timestamp(5), std::slice::from_ref(&ev)).unwrap());
        let response = IdempotentResponse {
            fingerprint: [9; 32],
            status: 201,
            body: b"{}".to_vec(),
            created_at: Timestamp(5),
            subjects: vec!["p-alice".into()],
        };
        store.save_idempotent_response("k1:retry", &response, Timestamp(0)).unwrap();
        assert_eq!(store.idempotent_response("k1:retry", Timestamp(0)).unwrap(), Some(response));
        let mut verifier = ChainVerifier::default();
        let recorded = store.scan_audit(&mut |s, p, b, h| verifier.check(s, p, b, h)).unwrap().unwrap();
        assert_eq!(verifier.finish(recorded).unwrap().seq, 5);

        // Opening again runs no migration and keeps everything.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.api_keys().unwrap(), [ApiKeyRecord { revoked_at: Some(Timestamp(5)), ..key }]);
        assert_eq!(store.audit_head().unwrap().seq, 5);
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
        }
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, OpenError::SchemaTooNew { found: 99, supported: SCHEMA_VERSION }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("99") && message.contains("newer"), "{message}");
        assert_eq!(user_version(&path), 99);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete", "the journal mode was not switched to WAL");
        let tables: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'subjects'", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 0, "no migration ran");
    }

    #[test]
    fn a_failing_migration_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        {
            // A table in the way of the first migration.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE items (x)").unwrap();
        }
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, OpenError::Sqlite(_)), "{err:?}");
        assert!(err.to_string().contains("applying migration 1"), "{err}");
        assert_eq!(user_version(&path), 0);
        let conn = Connection::open(&path).unwrap();
        let subjects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'subjects'", [], |r| r.get(0)).unwrap();
        assert_eq!(subjects, 0, "the migration's earlier statements were rolled back");
    }

    /// Migration 9: a guardian's consent keeps the fact, not the guardian's
    /// id, in the clear state; other consents and other state are untouched.
    #[test]
    fn a_guardians_id_in_a_stored_consent_becomes_a_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..8] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 8).unwrap();
            tx.execute_batch(
                r#"INSERT INTO subjects (id, jurisdiction, created_at, wrapped_key, state) VALUES
                 ('kid', 'eea', 1, x'6b6579',
                  '{"consents":{"marketing":{"status":"granted","at":5,"by_guardian":"parent@example.org"},"provide_offerings":{"status":"withdrawn","at":6}},"restricted_since":9}'),
                 ('adult', 'eea', 1, x'6b6579', '{"consents":{"marketing":{"status":"granted","at":5}}}'),
                 ('new', 'eea', 1, x'6b6579', '{}');"#,
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let state = |id: &str| -> serde_json::Value {
            let text: String = conn.query_row("SELECT state FROM subjects WHERE id = ?1", [id], |r| r.get(0)).unwrap();
            assert!(!text.contains("parent@"), "the guardian's id is gone: {text}");
            serde_json::from_str(&text).unwrap()
        };
        let kid = state("kid");
        assert_eq!(kid["consents"]["marketing"]["by_guardian"], true, "{kid}");
        assert_eq!(kid["consents"]["marketing"]["at"], 5, "{kid}");
        assert!(kid["consents"]["provide_offerings"].get("by_guardian").is_none(), "{kid}");
        assert_eq!(kid["restricted_since"], 9, "{kid}");
        let adult = state("adult");
        assert!(adult["consents"]["marketing"].get("by_guardian").is_none(), "{adult}");
        assert_eq!(state("new"), serde_json::json!({}));
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"parent@exa"), "no copy left in the file (secure_delete)");
    }
}
