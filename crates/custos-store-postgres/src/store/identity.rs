//! [`IdentityStore`] for [`PostgresStore`]: the `store_identity` row
//! (migration 0004) and the compare-and-swap re-wrapping of data keys for a
//! rotation. A re-wrap locks its subjects by id before the chain head, like
//! every other writer, so it cannot deadlock with them.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{HeldKeys, IdentityStore, KeyCheck, Rewrap, StoreError, StoreIdentity, WrappedKey};
use postgres::{GenericClient, Row};

use super::{Session, append_if_any};
use crate::PostgresStore;
use crate::error::{Context, corrupt};

const IDENTITY: &str = "SELECT key_id, key_check, sealed_root, notice_id, notice_version, created_at \
     FROM store_identity WHERE id = 1";
const INSERT_IDENTITY: &str = "INSERT INTO store_identity (id, key_id, key_check, sealed_root, notice_id, \
     notice_version, created_at) VALUES (1, $1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING";
const HOLDS_DATA: &str = "SELECT EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM audit) \
     OR EXISTS (SELECT 1 FROM api_keys)";
const WRAPPED_KEYS: &str = "SELECT id, wrapped_key FROM subjects \
     WHERE id > $1 AND erased_at IS NULL AND wrapped_key IS NOT NULL ORDER BY id LIMIT $2";
const LOCK_SUBJECTS: &str = "SELECT id FROM subjects WHERE id = ANY($1) ORDER BY id FOR UPDATE";
const REWRAP: &str = "UPDATE subjects s SET wrapped_key = u.new \
     FROM UNNEST($1::text[], $2::bytea[], $3::bytea[]) AS u (id, old, new) \
     WHERE s.id = u.id AND s.wrapped_key = u.old AND s.erased_at IS NULL";
const REPLACE_KEY_CHECK: &str = "UPDATE store_identity SET key_id = $3, key_check = $4, sealed_root = $5 \
     WHERE id = 1 AND key_id = $1 AND key_check = $2";
const ADOPT_NOTICE: &str =
    "UPDATE store_identity SET notice_version = $3 WHERE id = 1 AND notice_id = $1 AND notice_version = $2";

/// Locks the identity row for sharing: a rotation's update of it waits until
/// the transaction that checked it has committed.
const IDENTITY_KEY: &str = "SELECT key_id, key_check FROM store_identity WHERE id = 1 FOR SHARE";

/// Inside a write transaction: fails with [`StoreError::KeyNotHeld`] when the
/// recorded identity names a master key not in `held` (a store with no
/// identity yet accepts any writer). The row stays share-locked until the
/// transaction ends, so a rotation cannot move the identity in between.
pub(super) fn check_held<C: GenericClient>(conn: &mut Session<'_, C>, held: &HeldKeys<'_>) -> Result<(), StoreError> {
    const OP: &str = "checking the store's master key";
    let Some(row) = conn.query_opt(IDENTITY_KEY, &[]).during(OP)? else {
        return Ok(());
    };
    let (key_id, check): (&[u8], &[u8]) = (row.try_get(0).during(OP)?, row.try_get(1).during(OP)?);
    if held.holds(key_id, check) { Ok(()) } else { Err(StoreError::KeyNotHeld { recorded: key_id.to_vec() }) }
}

fn load<C: GenericClient>(conn: &mut Session<'_, C>) -> Result<Option<StoreIdentity>, StoreError> {
    const OP: &str = "reading the store identity";
    let row: Option<Row> = conn.query_opt(IDENTITY, &[]).during(OP)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(StoreIdentity {
        key: KeyCheck {
            key_id: row.try_get(0).during(OP)?,
            check: row.try_get(1).during(OP)?,
            sealed_root: row.try_get(2).during(OP)?,
        },
        notice_id: row.try_get(3).during(OP)?,
        notice_version: row.try_get(4).during(OP)?,
        created_at: Timestamp(row.try_get(5).during(OP)?),
    }))
}

impl IdentityStore for PostgresStore {
    fn store_identity(&self) -> Result<Option<StoreIdentity>, StoreError> {
        self.read(load)
    }

    fn record_store_identity(
        &self,
        identity: &StoreIdentity,
        audit: &[AuditEvent],
    ) -> Result<StoreIdentity, StoreError> {
        const OP: &str = "recording the store identity";
        self.write(OP, |tx| {
            let k = &identity.key;
            let inserted = tx
                .execute(
                    INSERT_IDENTITY,
                    &[
                        &k.key_id,
                        &k.check,
                        &k.sealed_root,
                        &identity.notice_id,
                        &identity.notice_version,
                        &identity.created_at.0,
                    ],
                )
                .during(OP)?;
            if inserted == 0 {
                return load(tx)?.ok_or_else(|| corrupt("the store identity vanished while it was recorded"));
            }
            append_if_any(tx, audit)?;
            Ok(identity.clone())
        })
    }

    fn holds_data(&self) -> Result<bool, StoreError> {
        self.read(|conn| {
            let row = conn.query_opt(HOLDS_DATA, &[]).during("checking whether the store holds data")?;
            row.map(|r| r.try_get(0))
                .transpose()
                .during("checking whether the store holds data")
                .map(|v| v == Some(true))
        })
    }

    fn wrapped_keys(&self, after: Option<&SubjectId>, limit: usize) -> Result<Vec<WrappedKey>, StoreError> {
        const OP: &str = "paging wrapped keys";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.map_or("", SubjectId::as_str);
        self.read(|conn| {
            let rows = conn.query(WRAPPED_KEYS, &[&after, &limit]).during(OP)?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get(0).during(OP)?;
                    Ok(WrappedKey {
                        subject: SubjectId::parse(&id).map_err(|_| corrupt("a subject id is not valid"))?,
                        wrapped: row.try_get(1).during(OP)?,
                    })
                })
                .collect()
        })
    }

    fn rewrap_keys(&self, batch: &[Rewrap], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        const OP: &str = "re-wrapping data keys";
        let ids: Vec<&str> = batch.iter().map(|r| r.subject.as_str()).collect();
        let olds: Vec<&[u8]> = batch.iter().map(|r| r.old.as_slice()).collect();
        let news: Vec<&[u8]> = batch.iter().map(|r| r.new.as_slice()).collect();
        self.write(OP, |tx| {
            tx.query(LOCK_SUBJECTS, &[&ids]).during(OP)?;
            let replaced = tx.execute(REWRAP, &[&ids, &olds, &news]).during(OP)?;
            append_if_any(tx, audit)?;
            Ok(replaced)
        })
    }

    fn replace_key_check(&self, expected: &KeyCheck, new: &KeyCheck, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        const OP: &str = "replacing the key check";
        self.write(OP, |tx| {
            let changed = tx
                .execute(
                    REPLACE_KEY_CHECK,
                    &[&expected.key_id, &expected.check, &new.key_id, &new.check, &new.sealed_root],
                )
                .during(OP)?;
            if changed == 0 {
                return Ok(false);
            }
            append_if_any(tx, audit)?;
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
        const OP: &str = "adopting a notice version";
        self.write(OP, |tx| {
            let changed = tx.execute(ADOPT_NOTICE, &[&notice_id, &from, &to]).during(OP)?;
            if changed == 0 {
                return Ok(false);
            }
            append_if_any(tx, audit)?;
            Ok(true)
        })
    }
}
