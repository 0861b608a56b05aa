//! [`SubjectStore`] for [`PostgresStore`]: subjects, their state, erasure
//! and tombstones, and the upgrade of legacy rows.

use std::collections::HashMap;

use custos_core::audit::AuditEvent;
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;
use custos_store::{
    HeldCopy, HeldKeys, LegacySubject, StateChange, StoreError, SubjectColumns, SubjectRecord, SubjectStore, Tombstone,
};
use postgres::{GenericClient, Row};

use super::{Session, append_if_any};
use crate::PostgresStore;
use crate::error::Context;

/// The statements of this capability.
pub(super) mod sql {
    pub(super) const SUBJECT: &str = concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = $1");
    pub(super) const LOCK_SUBJECT: &str =
        concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = $1 FOR UPDATE");
    pub(super) const SUBJECTS: &str = concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = ANY($1)");
    /// Inserts unless the id is taken or the store identity names a master
    /// key other than $8/$9 and $10/$11 (the writer's current and previous
    /// keys), in one round trip; the identity row is share-locked until the
    /// transaction ends, so a rotation cannot move it meanwhile.
    pub(super) const INSERT_SUBJECT: &str = "WITH identity AS \
         (SELECT key_id, key_check FROM store_identity WHERE id = 1 FOR SHARE) \
         INSERT INTO subjects (id, jurisdiction, metadata, created_at, erased_at, wrapped_key, state) \
         SELECT $1, $2, $3, $4, $5, $6, $7::text::jsonb WHERE NOT EXISTS (SELECT 1 FROM identity \
         WHERE NOT ((key_id = $8 AND key_check = $9) OR (key_id = $10 AND key_check = $11))) \
         ON CONFLICT (id) DO NOTHING";
    pub(super) const UPDATE_STATE: &str = "UPDATE subjects SET state = $2::text::jsonb WHERE id = $1";
    pub(super) const LOCK_SUBJECT_FOR_ERASURE: &str = "SELECT erased_at FROM subjects WHERE id = $1 FOR UPDATE";
    /// Erasure deletes the row (metadata and wrapped key with it) and leaves a tombstone by pseudonym.
    pub(super) const DELETE_SUBJECT: &str = "DELETE FROM subjects WHERE id = $1";
    pub(super) const INSERT_TOMBSTONE: &str =
        "INSERT INTO tombstones (pseudonym, erased_at) VALUES ($1, $2) ON CONFLICT (pseudonym) DO NOTHING";
    pub(super) const TOMBSTONE: &str = "SELECT erased_at FROM tombstones WHERE pseudonym = $1";
    pub(super) const LEGACY_SUBJECTS: &str = "SELECT id, region, birth_date, guardian, erased_at, wrapped_key \
         FROM subjects WHERE erased_at IS NOT NULL OR region IS NOT NULL OR birth_date IS NOT NULL \
         OR guardian IS NOT NULL ORDER BY id LIMIT $1";
    pub(super) const SEAL_LEGACY_METADATA: &str =
        "UPDATE subjects SET metadata = $2, region = NULL, birth_date = NULL, guardian = NULL WHERE id = $1";
    /// Every item version of a subject and the tokens of its cards, in one
    /// round trip; the number of versions destroyed.
    pub(super) const DELETE_ITEMS: &str = "WITH gone AS (DELETE FROM items WHERE subject = $1 RETURNING token), \
         tokens_gone AS (DELETE FROM tokens WHERE token IN (SELECT token FROM gone WHERE token IS NOT NULL)) \
         SELECT count(*) FROM gone";
    /// In one round trip: the idempotency records naming the subject (by
    /// pseudonym $1) and every subject link of those records, the subject's
    /// lookup hashes and row (id $2; metadata and wrapped key with it), and the tombstone.
    pub(super) const ERASE_ROW: &str = "WITH links AS (SELECT key FROM idempotency_subjects WHERE subject = $1), \
         lookups_gone AS (DELETE FROM lookups WHERE subject = $2), \
         responses AS (DELETE FROM idempotency WHERE key IN (SELECT key FROM links)), \
         linked AS (DELETE FROM idempotency_subjects WHERE key IN (SELECT key FROM links)), \
         gone AS (DELETE FROM subjects WHERE id = $2) \
         INSERT INTO tombstones (pseudonym, erased_at) VALUES ($1, $3) ON CONFLICT (pseudonym) DO NOTHING";
}

fn load_subject<C: GenericClient>(
    conn: &mut Session<'_, C>,
    id: &SubjectId,
) -> Result<Option<SubjectRecord>, StoreError> {
    let row = conn.query_opt(sql::SUBJECT, &[&id.as_str()]).during("loading a subject")?;
    row.as_ref().map(subject_from_row).transpose()
}

pub(super) fn subject_from_row(row: &Row) -> Result<SubjectRecord, StoreError> {
    const OP: &str = "reading a subject";
    SubjectColumns {
        id: row.try_get(0).during(OP)?,
        jurisdiction: row.try_get(1).during(OP)?,
        metadata: row.try_get(2).during(OP)?,
        created_at: row.try_get(3).during(OP)?,
        erased_at: row.try_get(4).during(OP)?,
        wrapped_key: row.try_get(5).during(OP)?,
        state: row.try_get(6).during(OP)?,
    }
    .decode()
}

/// How many columns [`subject_columns!`] selects.
pub(super) const SUBJECT_COLUMNS: usize = 7;

/// When the subject whose id has `pseudonym` was erased, if a tombstone holds it.
fn tombstone_at<C: GenericClient>(conn: &mut Session<'_, C>, pseudonym: &str) -> Result<Option<i64>, StoreError> {
    let row = conn.query_opt(sql::TOMBSTONE, &[&pseudonym]).during("looking up a tombstone")?;
    row.map(|r| r.try_get(0).during("looking up a tombstone")).transpose()
}

fn encode_state(state: &SubjectState) -> Result<String, StoreError> {
    serde_json::to_string(state).map_err(|_| StoreError::Backend("encoding a subject's state failed".into()))
}

impl SubjectStore for PostgresStore {
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<(), StoreError> {
        let state = encode_state(&subject.state)?;
        let erased_at = subject.erased_at.map(|t| t.0);
        let (current_id, current_check) = held.current;
        let (previous_id, previous_check) = held.previous.unwrap_or(held.current);
        self.write("creating a subject", |tx| {
            let inserted = tx
                .execute(
                    sql::INSERT_SUBJECT,
                    &[
                        &subject.id.as_str(),
                        &subject.jurisdiction,
                        &sealed_metadata,
                        &subject.created_at.0,
                        &erased_at,
                        &wrapped_key,
                        &state,
                        &current_id,
                        &current_check,
                        &previous_id,
                        &previous_check,
                    ],
                )
                .or_exists(StoreError::SubjectExists, "creating a subject")?;
            if inserted == 0 {
                // Either the id is taken or the key is not held: which, is
                // asked only on this path.
                super::identity::check_held(tx, held)?;
                return Err(StoreError::SubjectExists);
            }
            // After the insert: an erasure of the same id committing meanwhile
            // made the insert wait for its row, and its tombstone is visible now.
            if tombstone_at(tx, pseudonym)?.is_some() {
                return Err(StoreError::SubjectErased);
            }
            append_if_any(tx, audit)
        })
    }

    fn subject(&self, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
        self.read(|conn| load_subject(conn, id))
    }

    fn subjects(&self, ids: &[SubjectId]) -> Result<Vec<SubjectRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(SubjectId::as_str).collect();
        let rows = self.read(|conn| conn.query(sql::SUBJECTS, &[&wanted]).during("loading subjects"))?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let record = subject_from_row(row)?;
            found.insert(record.subject.id.as_str().to_owned(), record);
        }
        // In the order asked for.
        Ok(wanted.iter().filter_map(|id| found.get(*id).cloned()).collect())
    }

    fn update_state(
        &self,
        id: &SubjectId,
        apply: &mut dyn FnMut(&Subject) -> Option<StateChange>,
    ) -> Result<bool, StoreError> {
        self.write("updating a subject's state", |tx| {
            let row = tx.query_opt(sql::LOCK_SUBJECT, &[&id.as_str()]).during("updating a subject's state")?;
            let Some(row) = row else {
                return Err(StoreError::SubjectNotFound);
            };
            let record = subject_from_row(&row)?;
            let Some(change) = apply(&record.subject) else {
                return Ok(false);
            };
            let state = encode_state(&change.state)?;
            tx.execute(sql::UPDATE_STATE, &[&id.as_str(), &state]).during("updating a subject's state")?;
            append_if_any(tx, &change.audit)?;
            Ok(true)
        })
    }

    fn erase_subject(
        &self,
        id: &SubjectId,
        pseudonym: &str,
        at: Timestamp,
        held: &HeldCopy,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        const OP: &str = "erasing a subject";
        self.write(OP, |tx| {
            let row = tx.query_opt(sql::LOCK_SUBJECT_FOR_ERASURE, &[&id.as_str()]).during(OP)?;
            let Some(row) = row else {
                if tombstone_at(tx, pseudonym)?.is_some() {
                    return Err(StoreError::SubjectErased);
                }
                return Err(StoreError::SubjectNotFound);
            };
            if row.try_get::<_, Option<i64>>(0).during(OP)?.is_some() {
                return Err(StoreError::SubjectErased);
            }
            // What the subject's legal holds keep, checked and copied before anything is destroyed.
            super::holds::keep_held(tx, id, pseudonym, held)?;
            let counted = tx.query_opt(sql::DELETE_ITEMS, &[&id.as_str()]).during(OP)?;
            let destroyed: i64 = match counted {
                Some(row) => row.try_get(0).during(OP)?,
                None => 0,
            };
            tx.execute(sql::ERASE_ROW, &[&pseudonym, &id.as_str(), &at.0]).during(OP)?;
            append_if_any(tx, audit)?;
            Ok(u64::try_from(destroyed).unwrap_or(0))
        })
    }

    fn tombstone(&self, pseudonym: &str) -> Result<Option<Tombstone>, StoreError> {
        let at = self.read(|conn| tombstone_at(conn, pseudonym))?;
        Ok(at.map(|t| Tombstone { pseudonym: pseudonym.to_string(), erased_at: Timestamp(t) }))
    }

    fn legacy_subjects(&self, limit: usize) -> Result<Vec<LegacySubject>, StoreError> {
        const OP: &str = "listing legacy subjects";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|conn| conn.query(sql::LEGACY_SUBJECTS, &[&limit]).during(OP))?;
        rows.iter()
            .map(|row| {
                let id: &str = row.try_get(0).during(OP)?;
                LegacySubject::decode(
                    id,
                    row.try_get(1).during(OP)?,
                    row.try_get(2).during(OP)?,
                    row.try_get(3).during(OP)?,
                    row.try_get(4).during(OP)?,
                    row.try_get(5).during(OP)?,
                )
            })
            .collect()
    }

    fn upgrade_legacy_subject(
        &self,
        id: &SubjectId,
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "upgrading a legacy subject";
        self.write(OP, |tx| {
            let row = tx.query_opt(sql::LOCK_SUBJECT_FOR_ERASURE, &[&id.as_str()]).during(OP)?;
            let Some(row) = row else { return Ok(()) };
            match row.try_get::<_, Option<i64>>(0).during(OP)? {
                Some(at) => {
                    tx.execute(sql::DELETE_SUBJECT, &[&id.as_str()]).during(OP)?;
                    tx.execute(sql::INSERT_TOMBSTONE, &[&pseudonym, &at]).during(OP)?;
                }
                None => {
                    tx.execute(sql::SEAL_LEGACY_METADATA, &[&id.as_str(), &sealed_metadata]).during(OP)?;
                }
            }
            Ok(())
        })
    }
}
