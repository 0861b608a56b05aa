//! [`IdentityStore`] for [`SqliteStore`]: the `store_identity` row (migration
//! 4) and the compare-and-swap re-wrapping of data keys for a rotation.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{IdentityStore, KeyCheck, Rewrap, StoreError, StoreIdentity, WrappedKey};
use rusqlite::{OptionalExtension, params};

use super::append;
use crate::SqliteStore;
use crate::error::{Context, corrupt};

const IDENTITY: &str = "SELECT key_id, key_check, sealed_root, notice_id, notice_version, created_at \
     FROM store_identity WHERE id = 1";
const INSERT_IDENTITY: &str = "INSERT INTO store_identity (id, key_id, key_check, sealed_root, notice_id, \
     notice_version, created_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING";
const HOLDS_DATA: &str = "SELECT EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM audit) \
     OR EXISTS (SELECT 1 FROM api_keys)";
const WRAPPED_KEYS: &str = "SELECT id, wrapped_key FROM subjects \
     WHERE id > ?1 AND erased_at IS NULL AND wrapped_key IS NOT NULL ORDER BY id LIMIT ?2";
const REWRAP: &str = "UPDATE subjects SET wrapped_key = ?3 WHERE id = ?1 AND wrapped_key = ?2 AND erased_at IS NULL";
const REPLACE_KEY_CHECK: &str = "UPDATE store_identity SET key_id = ?3, key_check = ?4, sealed_root = ?5 \
     WHERE id = 1 AND key_id = ?1 AND key_check = ?2";
const ADOPT_NOTICE: &str =
    "UPDATE store_identity SET notice_version = ?3 WHERE id = 1 AND notice_id = ?1 AND notice_version = ?2";

const IDENTITY_KEY: &str = "SELECT key_id, key_check FROM store_identity WHERE id = 1";

/// The recorded identity's master key (id and key-check value), read inside
/// a write transaction; `None` when no identity is recorded yet.
pub(super) fn recorded_key(tx: &rusqlite::Connection) -> Result<Option<crate::IdentityKey>, StoreError> {
    tx.prepare_cached(IDENTITY_KEY)
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .during("checking the store's master key")
}

fn load(conn: &rusqlite::Connection) -> Result<Option<StoreIdentity>, StoreError> {
    type Row = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, String, String, i64);
    let row: Option<Row> = conn
        .prepare_cached(IDENTITY)
        .and_then(|mut stmt| {
            stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))).optional()
        })
        .during("reading the store identity")?;
    Ok(row.map(|(key_id, check, sealed_root, notice_id, notice_version, created_at)| StoreIdentity {
        key: KeyCheck { key_id, check, sealed_root },
        notice_id,
        notice_version,
        created_at: Timestamp(created_at),
    }))
}

impl IdentityStore for SqliteStore {
    fn store_identity(&self) -> Result<Option<StoreIdentity>, StoreError> {
        self.read(load)
    }

    fn record_store_identity(
        &self,
        identity: &StoreIdentity,
        audit: &[AuditEvent],
    ) -> Result<StoreIdentity, StoreError> {
        self.write_identity("recording the store identity", |tx, head| {
            if let Some(existing) = load(tx)? {
                return Ok(existing);
            }
            tx.prepare_cached(INSERT_IDENTITY)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        identity.key.key_id,
                        identity.key.check,
                        identity.key.sealed_root,
                        identity.notice_id,
                        identity.notice_version,
                        identity.created_at.0,
                    ])
                })
                .during("recording the store identity")?;
            append(tx, head, audit)?;
            Ok(identity.clone())
        })
    }

    fn holds_data(&self) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(HOLDS_DATA)
                .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
                .during("checking whether the store holds data")
        })
    }

    fn wrapped_keys(&self, after: Option<&SubjectId>, limit: usize) -> Result<Vec<WrappedKey>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.map_or("", SubjectId::as_str);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(WRAPPED_KEYS).during("paging wrapped keys")?;
            let mut rows = stmt.query(params![after, limit]).during("paging wrapped keys")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("paging wrapped keys")? {
                let id: String = row.get(0).during("paging wrapped keys")?;
                out.push(WrappedKey {
                    subject: SubjectId::parse(&id).map_err(|_| corrupt("a subject id is not valid"))?,
                    wrapped: row.get(1).during("paging wrapped keys")?,
                });
            }
            Ok(out)
        })
    }

    fn rewrap_keys(&self, batch: &[Rewrap], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        self.write("re-wrapping data keys", |tx, head| {
            let mut stmt = tx.prepare_cached(REWRAP).during("re-wrapping data keys")?;
            let mut replaced = 0u64;
            for r in batch {
                replaced +=
                    stmt.execute(params![r.subject.as_str(), r.old, r.new]).during("re-wrapping data keys")? as u64;
            }
            append(tx, head, audit)?;
            Ok(replaced)
        })
    }

    fn replace_key_check(&self, expected: &KeyCheck, new: &KeyCheck, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        self.write_identity("replacing the key check", |tx, head| {
            let changed = tx
                .prepare_cached(REPLACE_KEY_CHECK)
                .and_then(|mut stmt| {
                    stmt.execute(params![expected.key_id, expected.check, new.key_id, new.check, new.sealed_root])
                })
                .during("replacing the key check")?;
            if changed == 0 {
                return Ok(false);
            }
            append(tx, head, audit)?;
            Ok(true)
        })
    }

    fn adopt_notice_version(
        &self,
        notice_id: &str,
        from: &str,
        to: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        self.write("adopting a notice version", |tx, head| {
            let changed = tx
                .prepare_cached(ADOPT_NOTICE)
                .and_then(|mut stmt| stmt.execute(params![notice_id, from, to]))
                .during("adopting a notice version")?;
            if changed == 0 {
                return Ok(false);
            }
            append(tx, head, audit)?;
            Ok(true)
        })
    }
}
