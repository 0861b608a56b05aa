//! [`Store`] for [`SqliteStore`]: the SQL of every operation, one module per
//! capability as in `custos_store` (each with its statements); this one holds
//! what they share: the write transaction and appending to the audit chain.
//!
//! Each mutating call runs in one immediate transaction on the write
//! connection that also appends its audit entries and moves `audit_head`;
//! any error drops the transaction, which rolls it back, and the cached chain
//! head is replaced only after a successful commit. Inside the transaction,
//! before anything is appended, the cached head is brought up to date should
//! another process have written (`writable::sync_head`).

use custos_core::audit::{AuditEvent, ChainHead};
use custos_core::subject::SubjectId;
use custos_store::{HeldKeys, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, ffi, params};

use crate::error::{Context, corrupt};
use crate::writable::sync_head;
use crate::{SqliteStore, Writer};

mod audit;
mod checkpoints;
mod holds;
mod idempotency;
mod identity;
mod items;
mod keys;
mod requests;
mod subjects;
#[cfg(test)]
mod tests;

/// The statements every capability shares, each prepared once per connection and cached.
mod sql {
    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (seq, prev_hash, body, hash) VALUES (?1, ?2, ?3, ?4)";
    pub(super) const MOVE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1";
    pub(super) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    pub(super) const SUBJECT_ERASED_AT: &str = "SELECT erased_at FROM subjects WHERE id = ?1";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[INSERT_AUDIT, MOVE_AUDIT_HEAD, AUDIT_HEAD, SUBJECT_ERASED_AT];
}

impl SqliteStore {
    /// Runs `f` in one immediate write transaction, with the chain head to
    /// append after; commits, then publishes the moved head.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>, &mut ChainHead) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(operation, Identity::Untouched, f)
    }

    /// [`SqliteStore::write`], for `f` that may change the store identity:
    /// the cached identity key is forgotten before the write lock is released.
    pub(crate) fn write_identity<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>, &mut ChainHead) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(operation, Identity::Written, f)
    }

    /// [`SqliteStore::write`] by a writer holding `held`: refused with
    /// [`StoreError::KeyNotHeld`] inside the transaction when the store
    /// identity names another master key (the identity key is cached on the
    /// write connection, and read again after another connection commits).
    pub(crate) fn write_keyed<T>(
        &self,
        operation: &'static str,
        held: &HeldKeys<'_>,
        f: impl FnOnce(&Transaction<'_>, &mut ChainHead) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(operation, Identity::Check(held), f)
    }

    fn write_as<T>(
        &self,
        operation: &'static str,
        identity: Identity<'_, '_>,
        f: impl FnOnce(&Transaction<'_>, &mut ChainHead) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        let Writer { conn, head, seen_version, identity_key } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).during(operation)?;
        sync_head(&tx, head, seen_version, identity_key)?;
        if let Identity::Check(held) = identity {
            let recorded = match identity_key {
                Some(known) => known,
                None => identity_key.insert(identity::recorded_key(&tx)?),
            };
            if let Some((key_id, check)) = recorded
                && !held.holds(key_id, check)
            {
                return Err(StoreError::KeyNotHeld { recorded: key_id.clone() });
            }
        }
        let mut next = *head;
        let result = f(&tx, &mut next).and_then(|value| tx.commit().during(operation).map(|()| value));
        if matches!(identity, Identity::Written) {
            *identity_key = None;
        }
        let value = result?;
        *head = next;
        Ok(value)
    }
}

/// What a write does with the store identity.
#[derive(Clone, Copy)]
enum Identity<'h, 'k> {
    /// Neither checks nor changes it.
    Untouched,
    /// Requires a master key in the set.
    Check(&'h HeldKeys<'k>),
    /// May change it.
    Written,
}

/// Appends `events` after `head` (moving it) and records the new head.
pub(crate) fn append(tx: &Transaction<'_>, head: &mut ChainHead, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(sql::INSERT_AUDIT).during("appending audit entries")?;
    for event in events {
        let entry = head.append(event.to_body());
        let seq = i64::try_from(entry.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?;
        insert
            .execute(params![seq, &entry.prev_hash[..], entry.body, &entry.hash[..]])
            .during("appending audit entries")?;
    }
    let seq = i64::try_from(head.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?;
    tx.prepare_cached(sql::MOVE_AUDIT_HEAD)
        .and_then(|mut stmt| stmt.execute(params![seq, &head.hash[..]]))
        .during("moving the audit head")?;
    Ok(())
}

/// The audit chain head as recorded in `audit_head`.
pub(crate) fn load_head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(sql::AUDIT_HEAD)
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .during("reading the audit head")?;
    let Some((seq, hash)) = row else {
        return Err(corrupt("the audit head row is missing"));
    };
    Ok(ChainHead {
        seq: u64::try_from(seq).map_err(|_| corrupt("the audit head has a negative sequence number"))?,
        hash: hash32(hash)?,
    })
}

/// Whether the subject exists and, if so, when it was erased.
fn erased_at(conn: &Connection, id: &SubjectId) -> Result<Option<Option<i64>>, StoreError> {
    conn.prepare_cached(sql::SUBJECT_ERASED_AT)
        .and_then(|mut stmt| stmt.query_row([id.as_str()], |r| r.get(0)).optional())
        .during("looking up a subject")
}

/// Whether `e` is a violation of a PRIMARY KEY or UNIQUE constraint, told by
/// SQLite's extended result code (never by its message).
fn is_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_extended_error_code(), Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE))
}

/// Maps a key violation to `exists`, any other failure to a backend error for `operation`.
fn or_exists<T>(result: rusqlite::Result<T>, exists: StoreError, operation: &'static str) -> Result<T, StoreError> {
    result.map_err(|e| if is_key_violation(&e) { exists } else { crate::error::backend(operation, &e) })
}

pub(crate) fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| corrupt("an audit hash is not 32 bytes"))
}
