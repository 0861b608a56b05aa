//! [`SubjectStore`] for [`SqliteStore`]: subjects, their state, erasure and
//! tombstones, and the upgrade of legacy rows.

use custos_core::audit::AuditEvent;
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{
    HeldCopy, HeldKeys, LegacySubject, StateChange, StoreError, SubjectColumns, SubjectRecord, SubjectStore, Tombstone,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{append, erased_at};
use crate::SqliteStore;
use crate::error::Context;

/// The columns of `subjects`, in the order [`subject_from_row`] reads them.
macro_rules! subject_columns {
    () => {
        "id, jurisdiction, metadata, created_at, erased_at, wrapped_key, state"
    };
}

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
    pub(super) const SUBJECT: &str = concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = ?1");
    pub(super) const INSERT_SUBJECT: &str =
        concat!("INSERT INTO subjects (", subject_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    pub(super) const UPDATE_STATE: &str = "UPDATE subjects SET state = ?2 WHERE id = ?1";
    /// Erasure deletes the row (metadata and wrapped key with it) and leaves a tombstone by pseudonym.
    pub(super) const DELETE_SUBJECT: &str = "DELETE FROM subjects WHERE id = ?1";
    pub(super) const INSERT_TOMBSTONE: &str = "INSERT INTO tombstones (pseudonym, erased_at) VALUES (?1, ?2)";
    pub(super) const TOMBSTONE: &str = "SELECT erased_at FROM tombstones WHERE pseudonym = ?1";
    pub(super) const LEGACY_SUBJECTS: &str = "SELECT id, region, birth_date, guardian, erased_at, wrapped_key \
         FROM subjects WHERE erased_at IS NOT NULL OR region IS NOT NULL OR birth_date IS NOT NULL \
         OR guardian IS NOT NULL ORDER BY id LIMIT ?1";
    pub(super) const SEAL_LEGACY_METADATA: &str =
        "UPDATE subjects SET metadata = ?2, region = NULL, birth_date = NULL, guardian = NULL WHERE id = ?1";
    pub(super) const DELETE_ITEMS: &str = "DELETE FROM items WHERE subject = ?1";
    pub(super) const DELETE_LOOKUPS: &str = "DELETE FROM lookups WHERE subject = ?1";
    /// A subject's records, and every subject link of those records.
    pub(super) const ERASE_IDEMPOTENT_RESPONSES: &str =
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency_subjects WHERE subject = ?1)";
    pub(super) const ERASE_IDEMPOTENT_SUBJECTS: &str = "DELETE FROM idempotency_subjects WHERE key IN \
         (SELECT key FROM idempotency_subjects WHERE subject = ?1)";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[
        SUBJECT,
        INSERT_SUBJECT,
        UPDATE_STATE,
        DELETE_SUBJECT,
        INSERT_TOMBSTONE,
        TOMBSTONE,
        LEGACY_SUBJECTS,
        SEAL_LEGACY_METADATA,
        DELETE_ITEMS,
        DELETE_LOOKUPS,
        ERASE_IDEMPOTENT_RESPONSES,
        ERASE_IDEMPOTENT_SUBJECTS,
    ];
}

pub(super) fn load_subject(conn: &Connection, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql::SUBJECT).during("loading a subject")?;
    let mut rows = stmt.query([id.as_str()]).during("loading a subject")?;
    match rows.next().during("loading a subject")? {
        Some(row) => subject_from_row(row).map(Some),
        None => Ok(None),
    }
}

fn subject_from_row(row: &Row<'_>) -> Result<SubjectRecord, StoreError> {
    let read = |e: rusqlite::Error| crate::error::backend("reading a subject", &e);
    SubjectColumns {
        id: row.get(0).map_err(read)?,
        jurisdiction: row.get(1).map_err(read)?,
        metadata: row.get(2).map_err(read)?,
        created_at: row.get(3).map_err(read)?,
        erased_at: row.get(4).map_err(read)?,
        wrapped_key: row.get(5).map_err(read)?,
        state: row.get(6).map_err(read)?,
    }
    .decode()
}

/// Whether a tombstone holds `pseudonym`, and when that subject was erased.
fn tombstone_at(conn: &Connection, pseudonym: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(sql::TOMBSTONE)
        .and_then(|mut stmt| stmt.query_row([pseudonym], |r| r.get(0)).optional())
        .during("looking up a tombstone")
}

impl SubjectStore for SqliteStore {
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<(), StoreError> {
        let state = serde_json::to_string(&subject.state)
            .map_err(|_| StoreError::Backend("encoding a subject's state failed".into()))?;
        self.write_keyed("creating a subject", held, |tx, head| {
            if tombstone_at(tx, pseudonym)?.is_some() {
                return Err(StoreError::SubjectErased);
            }
            // A taken id (live, or erased by an earlier build that kept the
            // row) fails the insert's primary key: `SubjectExists`.
            let inserted = tx.prepare_cached(sql::INSERT_SUBJECT).and_then(|mut stmt| {
                stmt.execute(params![
                    subject.id.as_str(),
                    subject.jurisdiction,
                    sealed_metadata,
                    subject.created_at.0,
                    subject.erased_at.map(|t| t.0),
                    wrapped_key,
                    state,
                ])
            });
            super::or_exists(inserted, StoreError::SubjectExists, "creating a subject")?;
            append(tx, head, audit)
        })
    }

    fn subject(&self, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
        self.read(|conn| load_subject(conn, id))
    }

    fn subjects(&self, ids: &[SubjectId]) -> Result<Vec<SubjectRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            // One snapshot for the whole batch.
            let tx = conn.unchecked_transaction().during("loading subjects")?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(record) = load_subject(&tx, id)? {
                    out.push(record);
                }
            }
            tx.finish().during("loading subjects")?;
            Ok(out)
        })
    }

    fn update_state(
        &self,
        id: &SubjectId,
        apply: &mut dyn FnMut(&Subject) -> Option<StateChange>,
    ) -> Result<bool, StoreError> {
        self.write("updating a subject's state", |tx, head| {
            let Some(record) = load_subject(tx, id)? else {
                return Err(StoreError::SubjectNotFound);
            };
            let Some(change) = apply(&record.subject) else {
                return Ok(false);
            };
            let state = serde_json::to_string(&change.state)
                .map_err(|_| StoreError::Backend("encoding a subject's state failed".into()))?;
            tx.prepare_cached(sql::UPDATE_STATE)
                .and_then(|mut stmt| stmt.execute(params![id.as_str(), state]))
                .during("updating a subject's state")?;
            append(tx, head, &change.audit)?;
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
        let destroyed = self.write("erasing a subject", |tx, head| {
            if tombstone_at(tx, pseudonym)?.is_some() {
                return Err(StoreError::SubjectErased);
            }
            match erased_at(tx, id)? {
                None => return Err(StoreError::SubjectNotFound),
                Some(Some(_)) => return Err(StoreError::SubjectErased),
                Some(None) => {}
            }
            // What the subject's legal holds keep, checked and copied before anything is destroyed.
            super::holds::keep_held(tx, id, pseudonym, held)?;
            // With secure_delete on, the freed bytes are overwritten with zeros.
            let destroyed = tx
                .prepare_cached(sql::DELETE_ITEMS)
                .and_then(|mut stmt| stmt.execute([id.as_str()]))
                .during("erasing a subject")?;
            tx.prepare_cached(sql::DELETE_LOOKUPS)
                .and_then(|mut stmt| stmt.execute([id.as_str()]))
                .during("erasing a subject")?;
            for statement in [sql::ERASE_IDEMPOTENT_RESPONSES, sql::ERASE_IDEMPOTENT_SUBJECTS] {
                tx.prepare_cached(statement)
                    .and_then(|mut stmt| stmt.execute([pseudonym]))
                    .during("erasing a subject's idempotency records")?;
            }
            tx.prepare_cached(sql::DELETE_SUBJECT)
                .and_then(|mut stmt| stmt.execute([id.as_str()]))
                .during("erasing a subject")?;
            tx.prepare_cached(sql::INSERT_TOMBSTONE)
                .and_then(|mut stmt| stmt.execute(params![pseudonym, at.0]))
                .during("erasing a subject")?;
            append(tx, head, audit)?;
            Ok(destroyed as u64)
        })?;
        // The WAL still holds the pages as they were before: have it truncated.
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.erased();
        }
        Ok(destroyed)
    }

    fn tombstone(&self, pseudonym: &str) -> Result<Option<Tombstone>, StoreError> {
        let at = self.read(|conn| tombstone_at(conn, pseudonym))?;
        Ok(at.map(|t| Tombstone { pseudonym: pseudonym.to_string(), erased_at: Timestamp(t) }))
    }

    fn legacy_subjects(&self, limit: usize) -> Result<Vec<LegacySubject>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::LEGACY_SUBJECTS).during("listing legacy subjects")?;
            let mut rows = stmt.query([limit]).during("listing legacy subjects")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("listing legacy subjects")? {
                let read = |e: rusqlite::Error| crate::error::backend("reading a legacy subject", &e);
                let id: String = row.get(0).map_err(read)?;
                out.push(LegacySubject::decode(
                    &id,
                    row.get(1).map_err(read)?,
                    row.get(2).map_err(read)?,
                    row.get(3).map_err(read)?,
                    row.get(4).map_err(read)?,
                    row.get(5).map_err(read)?,
                )?);
            }
            Ok(out)
        })
    }

    fn upgrade_legacy_subject(
        &self,
        id: &SubjectId,
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
    ) -> Result<(), StoreError> {
        self.write("upgrading a legacy subject", |tx, _head| match erased_at(tx, id)? {
            None => Ok(()),
            Some(Some(at)) => {
                tx.prepare_cached(sql::DELETE_SUBJECT)
                    .and_then(|mut stmt| stmt.execute([id.as_str()]))
                    .during("upgrading a legacy subject")?;
                if tombstone_at(tx, pseudonym)?.is_none() {
                    tx.prepare_cached(sql::INSERT_TOMBSTONE)
                        .and_then(|mut stmt| stmt.execute(params![pseudonym, at]))
                        .during("upgrading a legacy subject")?;
                }
                Ok(())
            }
            Some(None) => {
                tx.prepare_cached(sql::SEAL_LEGACY_METADATA)
                    .and_then(|mut stmt| stmt.execute(params![id.as_str(), sealed_metadata]))
                    .during("upgrading a legacy subject")?;
                Ok(())
            }
        })
    }
}
