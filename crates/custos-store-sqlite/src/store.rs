//! [`Store`] for [`SqliteStore`]: the SQL of every operation.
//!
//! Each mutating call runs in one immediate transaction on the write
//! connection that also appends its audit entries and moves `audit_head`;
//! any error drops the transaction, which rolls it back, and the cached chain
//! head is replaced only after a successful commit. Inside the transaction,
//! before anything is appended, the cached head is brought up to date should
//! another process have written (`writable::sync_head`).

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{
    ApiKeyRecord, AuditStore, IdempotencyStore, IdempotentResponse, ItemStore, KeyStore, LegacySubject, NewItem, Seal,
    StateChange, StoreError, StoredItem, SubjectColumns, SubjectRecord, SubjectStore, Tombstone,
};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, ffi, params};

use crate::error::{Context, corrupt};
use crate::writable::sync_head;
use crate::{SqliteStore, Writer};

mod identity;

/// The columns of `subjects`, in the order [`subject_from_row`] reads them.
macro_rules! subject_columns {
    () => {
        "id, jurisdiction, metadata, created_at, erased_at, wrapped_key, state"
    };
}

/// The columns of `items`, in the order [`item_from_row`] reads them.
macro_rules! item_columns {
    () => {
        "subject, category, version, source, purpose, collected_at, notice_version, superseded_at, sealed, token"
    };
}

/// The columns of `api_keys`, in the order [`api_key_from_row`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, secret_hash, role, actor, purposes, created_at, revoked_at"
    };
}

/// Every statement the store runs, each prepared once per connection and cached.
mod sql {
    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (seq, prev_hash, body, hash) VALUES (?1, ?2, ?3, ?4)";
    pub(super) const MOVE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1";
    pub(super) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    pub(super) const SCAN_AUDIT: &str = "SELECT seq, prev_hash, body, hash FROM audit ORDER BY seq";
    pub(super) const AUDIT_AFTER: &str =
        "SELECT seq, prev_hash, body, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2";

    pub(super) const SUBJECT_ERASED_AT: &str = "SELECT erased_at FROM subjects WHERE id = ?1";
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

    // `INDEXED BY`: the planner would otherwise walk the primary key, which
    // reads every version of the subject (and is an error if the index cannot serve).
    pub(super) const CURRENT_VERSIONS: &str = "SELECT category, version FROM items INDEXED BY items_current \
         WHERE subject = ?1 AND superseded_at IS NULL ORDER BY category";
    pub(super) const SUPERSEDE: &str =
        "UPDATE items SET superseded_at = ?4 WHERE subject = ?1 AND category = ?2 AND version = ?3";
    pub(super) const INSERT_ITEM: &str =
        concat!("INSERT INTO items (", item_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    pub(super) const CURRENT_ITEMS: &str = concat!(
        "SELECT ",
        item_columns!(),
        " FROM items INDEXED BY items_current WHERE subject = ?1 AND superseded_at IS NULL ORDER BY category"
    );
    /// The highest version is the current one: one probe of the primary key.
    pub(super) const CURRENT_ITEM: &str = concat!(
        "SELECT ",
        item_columns!(),
        " FROM items WHERE subject = ?1 AND category = ?2 ORDER BY version DESC LIMIT 1"
    );
    pub(super) const HISTORY: &str =
        concat!("SELECT ", item_columns!(), " FROM items WHERE subject = ?1 AND category = ?2 ORDER BY version DESC");
    pub(super) const ITEM_BY_TOKEN: &str = concat!("SELECT ", item_columns!(), " FROM items WHERE token = ?1");
    pub(super) const DELETE_ITEMS: &str = "DELETE FROM items WHERE subject = ?1";

    pub(super) const INSERT_API_KEY: &str =
        concat!("INSERT INTO api_keys (", api_key_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    pub(super) const API_KEY_BY_HASH: &str =
        concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE secret_hash = ?1");
    pub(super) const API_KEYS: &str = concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id");
    pub(super) const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";

    pub(super) const IDEMPOTENT_RESPONSE: &str =
        "SELECT fingerprint, status, body, created_at FROM idempotency WHERE key = ?1 AND created_at >= ?2";
    pub(super) const IDEMPOTENT_SUBJECTS: &str =
        "SELECT subject FROM idempotency_subjects WHERE key = ?1 ORDER BY subject";
    pub(super) const INSERT_IDEMPOTENT_RESPONSE: &str =
        "INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
    pub(super) const INSERT_IDEMPOTENT_SUBJECT: &str =
        "INSERT OR IGNORE INTO idempotency_subjects (subject, key) VALUES (?1, ?2)";
    pub(super) const PRUNE_IDEMPOTENT_SUBJECTS: &str =
        "DELETE FROM idempotency_subjects WHERE key IN (SELECT key FROM idempotency WHERE created_at < ?1)";
    pub(super) const PRUNE_IDEMPOTENT_RESPONSES: &str = "DELETE FROM idempotency WHERE created_at < ?1";
    /// A subject's records, and every subject link of those records.
    pub(super) const ERASE_IDEMPOTENT_RESPONSES: &str =
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency_subjects WHERE subject = ?1)";
    pub(super) const ERASE_IDEMPOTENT_SUBJECTS: &str = "DELETE FROM idempotency_subjects WHERE key IN \
         (SELECT key FROM idempotency_subjects WHERE subject = ?1)";

    /// All of them, for tests.
    #[cfg(test)]
    pub(super) const ALL: &[&str] = &[
        INSERT_AUDIT,
        MOVE_AUDIT_HEAD,
        AUDIT_HEAD,
        SCAN_AUDIT,
        AUDIT_AFTER,
        SUBJECT_ERASED_AT,
        SUBJECT,
        INSERT_SUBJECT,
        UPDATE_STATE,
        DELETE_SUBJECT,
        INSERT_TOMBSTONE,
        TOMBSTONE,
        LEGACY_SUBJECTS,
        SEAL_LEGACY_METADATA,
        CURRENT_VERSIONS,
        SUPERSEDE,
        INSERT_ITEM,
        CURRENT_ITEMS,
        CURRENT_ITEM,
        HISTORY,
        ITEM_BY_TOKEN,
        DELETE_ITEMS,
        INSERT_API_KEY,
        API_KEY_BY_HASH,
        API_KEYS,
        REVOKE_API_KEY,
        IDEMPOTENT_RESPONSE,
        IDEMPOTENT_SUBJECTS,
        INSERT_IDEMPOTENT_RESPONSE,
        INSERT_IDEMPOTENT_SUBJECT,
        PRUNE_IDEMPOTENT_SUBJECTS,
        PRUNE_IDEMPOTENT_RESPONSES,
        ERASE_IDEMPOTENT_RESPONSES,
        ERASE_IDEMPOTENT_SUBJECTS,
    ];
}

impl SqliteStore {
    /// Runs `f` in one immediate write transaction, with the chain head to
    /// append after; commits, then publishes the moved head.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>, &mut ChainHead) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        let Writer { conn, head, seen_version } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).during(operation)?;
        sync_head(&tx, head, seen_version)?;
        let mut next = *head;
        let value = f(&tx, &mut next)?;
        tx.commit().during(operation)?;
        *head = next;
        Ok(value)
    }
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

/// The subject's current items, restricted to `categories` unless empty, ordered by category.
fn load_current_items(conn: &Connection, id: &SubjectId, categories: &[&str]) -> Result<Vec<StoredItem>, StoreError> {
    let mut out = Vec::new();
    if categories.is_empty() {
        query_items(conn, sql::CURRENT_ITEMS, [id.as_str()], &mut out)?;
        return Ok(out);
    }
    let mut wanted = categories.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    for category in wanted {
        query_items(conn, sql::CURRENT_ITEM, [id.as_str(), category], &mut out)?;
    }
    Ok(out)
}

fn load_subject(conn: &Connection, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
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

fn item_from_row(row: &Row<'_>) -> Result<StoredItem, StoreError> {
    let read = |e: rusqlite::Error| crate::error::backend("reading an item", &e);
    let subject: String = row.get(0).map_err(read)?;
    let version: i64 = row.get(2).map_err(read)?;
    Ok(StoredItem {
        subject: SubjectId::parse(&subject).map_err(|_| corrupt("an item's subject id is not valid"))?,
        category: row.get(1).map_err(read)?,
        version: u32::try_from(version).map_err(|_| corrupt("an item version is out of range"))?,
        source: row.get(3).map_err(read)?,
        purpose: row.get(4).map_err(read)?,
        collected_at: Timestamp(row.get(5).map_err(read)?),
        notice_version: row.get(6).map_err(read)?,
        superseded_at: row.get::<_, Option<i64>>(7).map_err(read)?.map(Timestamp),
        sealed: row.get(8).map_err(read)?,
        token: row.get(9).map_err(read)?,
    })
}

/// Runs an item query and decodes every row.
fn query_items(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    out: &mut Vec<StoredItem>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql).during("reading items")?;
    let mut rows = stmt.query(params).during("reading items")?;
    while let Some(row) = rows.next().during("reading items")? {
        out.push(item_from_row(row)?);
    }
    Ok(())
}

fn api_key_from_row(row: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    let read = |e: rusqlite::Error| crate::error::backend("reading an API key", &e);
    let purposes: String = row.get(4).map_err(read)?;
    let purposes: Vec<String> = serde_json::from_str(&purposes).map_err(|e| {
        corrupt(&format!("an API key's purposes are not a JSON list (line {}, column {})", e.line(), e.column()))
    })?;
    Ok(ApiKeyRecord {
        id: row.get(0).map_err(read)?,
        secret_hash: row
            .get::<_, Vec<u8>>(1)
            .map_err(read)?
            .try_into()
            .map_err(|_| corrupt("an API key hash is not 32 bytes"))?,
        role: row.get(2).map_err(read)?,
        actor: row.get(3).map_err(read)?,
        purposes,
        created_at: Timestamp(row.get(5).map_err(read)?),
        revoked_at: row.get::<_, Option<i64>>(6).map_err(read)?.map(Timestamp),
    })
}

fn idempotent_response_from_row(row: &Row<'_>) -> Result<IdempotentResponse, StoreError> {
    let read = |e: rusqlite::Error| crate::error::backend("reading an idempotent response", &e);
    let status: i64 = row.get(1).map_err(read)?;
    Ok(IdempotentResponse {
        fingerprint: row
            .get::<_, Vec<u8>>(0)
            .map_err(read)?
            .try_into()
            .map_err(|_| corrupt("a request fingerprint is not 32 bytes"))?,
        status: u16::try_from(status).map_err(|_| corrupt("a response status is out of range"))?,
        body: row.get(2).map_err(read)?,
        created_at: Timestamp(row.get(3).map_err(read)?),
        subjects: Vec::new(),
    })
}

/// Whether a tombstone holds `pseudonym`, and when that subject was erased.
fn tombstone_at(conn: &Connection, pseudonym: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(sql::TOMBSTONE)
        .and_then(|mut stmt| stmt.query_row([pseudonym], |r| r.get(0)).optional())
        .during("looking up a tombstone")
}

/// Deletes every idempotency record made before `before`; returns how many.
fn prune_idempotency(tx: &Transaction<'_>, before: Timestamp) -> Result<u64, StoreError> {
    tx.prepare_cached(sql::PRUNE_IDEMPOTENT_SUBJECTS)
        .and_then(|mut stmt| stmt.execute([before.0]))
        .during("pruning idempotent responses")?;
    let n = tx
        .prepare_cached(sql::PRUNE_IDEMPOTENT_RESPONSES)
        .and_then(|mut stmt| stmt.execute([before.0]))
        .during("pruning idempotent responses")?;
    Ok(n as u64)
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

/// The key items are written in: (subject, category).
fn key(item: &NewItem) -> (&str, &str) {
    (item.subject.as_str(), item.category.as_str())
}

pub(crate) fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| corrupt("an audit hash is not 32 bytes"))
}

impl SubjectStore for SqliteStore {
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let state = serde_json::to_string(&subject.state)
            .map_err(|_| StoreError::Backend("encoding a subject's state failed".into()))?;
        self.write("creating a subject", |tx, head| {
            if tombstone_at(tx, pseudonym)?.is_some() {
                return Err(StoreError::SubjectErased);
            }
            if erased_at(tx, &subject.id)?.is_some() {
                return Err(StoreError::SubjectExists);
            }
            tx.prepare_cached(sql::INSERT_SUBJECT)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        subject.id.as_str(),
                        subject.jurisdiction,
                        sealed_metadata,
                        subject.created_at.0,
                        subject.erased_at.map(|t| t.0),
                        wrapped_key,
                        state,
                    ])
                })
                .during("creating a subject")?;
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
            // With secure_delete on, the freed bytes are overwritten with zeros.
            let destroyed = tx
                .prepare_cached(sql::DELETE_ITEMS)
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

impl ItemStore for SqliteStore {
    fn put_items(&self, items: &[NewItem], seal: &Seal<'_>, audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError> {
        // Write in key order (subject, category), which is what makes SQLite
        // fast; the sort is stable, so repeated (subject, category) pairs keep
        // their input order and get increasing versions.
        let mut order: Vec<usize> = (0..items.len()).collect();
        if !items.is_sorted_by(|a, b| key(a) <= key(b)) {
            order.sort_by(|&a, &b| key(&items[a]).cmp(&key(&items[b])));
        }
        self.write("writing items", |tx, head| {
            let mut current = tx.prepare_cached(sql::CURRENT_VERSIONS).during("writing items")?;
            let mut supersede = tx.prepare_cached(sql::SUPERSEDE).during("writing items")?;
            let mut insert = tx.prepare_cached(sql::INSERT_ITEM).during("writing items")?;

            let mut versions = vec![0u32; items.len()];
            // The current versions stored for the subject being written, by category.
            let mut stored: Vec<(String, u32)> = Vec::new();
            let mut subject: Option<&str> = None;
            for (pos, &index) in order.iter().enumerate() {
                let item = &items[index];
                let subject_id = item.subject.as_str();
                if subject != Some(subject_id) {
                    subject = Some(subject_id);
                    match erased_at(tx, &item.subject)? {
                        None => return Err(StoreError::SubjectNotFound),
                        Some(Some(_)) => return Err(StoreError::SubjectErased),
                        Some(None) => {}
                    }
                    stored.clear();
                    let mut rows = current.query([subject_id]).during("writing items")?;
                    while let Some(row) = rows.next().during("writing items")? {
                        let version: i64 = row.get(1).during("writing items")?;
                        let version = u32::try_from(version).map_err(|_| corrupt("an item version is out of range"))?;
                        stored.push((row.get(0).during("writing items")?, version));
                    }
                }
                let previous = pos.checked_sub(1).and_then(|p| order.get(p)).map(|&p| &items[p]);
                let next = order.get(pos + 1).map(|&n| &items[n]);
                let same_item = |other: Option<&NewItem>| other.is_some_and(|o| key(o) == key(item));
                let version = if same_item(previous) {
                    // Follows an item of this batch, which already superseded the stored one.
                    versions[order[pos - 1]] + 1
                } else {
                    match stored.binary_search_by(|(c, _)| c.as_str().cmp(&item.category)) {
                        Ok(found) => {
                            let old = stored[found].1;
                            supersede
                                .execute(params![subject_id, item.category, old, item.collected_at.0])
                                .during("writing items")?;
                            old.checked_add(1).ok_or_else(|| corrupt("an item version is out of range"))?
                        }
                        Err(_) => 1,
                    }
                };
                versions[index] = version;
                // A later item of this batch for the same category supersedes this one.
                let superseded_at = next.filter(|n| key(n) == key(item)).map(|n| n.collected_at.0);
                let sealed = seal(index, version)?;
                insert
                    .execute(params![
                        subject_id,
                        item.category,
                        version,
                        item.source,
                        item.purpose,
                        item.collected_at.0,
                        item.notice_version,
                        superseded_at,
                        sealed,
                        item.token,
                    ])
                    .during("writing items")?;
            }
            append(tx, head, audit)?;
            Ok(versions)
        })
    }

    fn current_items(&self, id: &SubjectId, categories: &[&str]) -> Result<Vec<StoredItem>, StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction().during("reading items")?;
            let out = load_current_items(&tx, id, categories)?;
            tx.finish().during("reading items")?;
            Ok(out)
        })
    }

    fn subject_with_items(
        &self,
        id: &SubjectId,
        categories: &[&str],
    ) -> Result<Option<(SubjectRecord, Vec<StoredItem>)>, StoreError> {
        self.read(|conn| {
            // One snapshot for the subject and their items.
            let tx = conn.unchecked_transaction().during("reading a subject")?;
            let found = match load_subject(&tx, id)? {
                None => None,
                Some(record) => Some((record, load_current_items(&tx, id, categories)?)),
            };
            tx.finish().during("reading a subject")?;
            Ok(found)
        })
    }

    fn history(&self, id: &SubjectId, category: &str) -> Result<Vec<StoredItem>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            query_items(conn, sql::HISTORY, [id.as_str(), category], &mut out)?;
            Ok(out)
        })
    }

    fn item_by_token(&self, token: &str) -> Result<Option<StoredItem>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::with_capacity(1);
            query_items(conn, sql::ITEM_BY_TOKEN, [token], &mut out)?;
            Ok(out.pop())
        })
    }
}

impl AuditStore for SqliteStore {
    /// Group commit: the caller queues its events, then takes the write lock.
    /// Whoever holds the lock commits every queued append in one transaction,
    /// so concurrent readers (each of whose reads is audited) share commits.
    /// A caller whose events a previous holder already committed finds its
    /// outcome waiting when it gets the lock and returns at once.
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError> {
        if audit.is_empty() {
            return self.audit_head();
        }
        self.audit_queue.append(audit, |groups| {
            let mut writer = self.writer();
            let Writer { conn, head, seen_version } = &mut *writer;
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).during("appending audit entries")?;
            sync_head(&tx, head, seen_version)?;
            let mut next = *head;
            let mut heads = Vec::with_capacity(groups.len());
            for events in groups {
                append(&tx, &mut next, events)?;
                heads.push(next);
            }
            tx.commit().during("appending audit entries")?;
            *head = next;
            Ok(heads)
        })
    }

    fn audit_head(&self) -> Result<ChainHead, StoreError> {
        self.read(load_head)
    }

    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        self.read(|conn| {
            // One snapshot for the head and the entries.
            let tx = conn.unchecked_transaction().during("scanning the audit log")?;
            let head = load_head(&tx)?;
            let mut stmt = tx.prepare_cached(sql::SCAN_AUDIT).during("scanning the audit log")?;
            let mut rows = stmt.query([]).during("scanning the audit log")?;
            while let Some(row) = rows.next().during("scanning the audit log")? {
                let seq: i64 = row.get(0).during("scanning the audit log")?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let bytes = |i: usize| {
                    row.get_ref(i).and_then(|v| v.as_bytes().map_err(Into::into)).during("scanning the audit log")
                };
                if let Err(broken) = visit(seq, bytes(1)?, bytes(2)?, bytes(3)?) {
                    return Ok(Err(broken));
                }
            }
            drop(rows);
            drop(stmt);
            tx.finish().during("scanning the audit log")?;
            Ok(Ok(head))
        })
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::AUDIT_AFTER).during("reading audit entries")?;
            let mut rows = stmt.query(params![after, limit]).during("reading audit entries")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("reading audit entries")? {
                let seq: i64 = row.get(0).during("reading audit entries")?;
                out.push(AuditEntry {
                    seq: u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?,
                    prev_hash: hash32(row.get(1).during("reading audit entries")?)?,
                    body: row.get(2).during("reading audit entries")?,
                    hash: hash32(row.get(3).during("reading audit entries")?)?,
                });
            }
            Ok(out)
        })
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        self.check_writable_now()
    }
}

impl KeyStore for SqliteStore {
    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        let purposes = serde_json::to_string(&key.purposes)
            .map_err(|_| StoreError::Backend("encoding an API key's purposes failed".into()))?;
        self.write("creating an API key", |tx, head| {
            let mut insert = tx.prepare_cached(sql::INSERT_API_KEY).during("creating an API key")?;
            or_exists(
                insert.execute(params![
                    key.id,
                    &key.secret_hash[..],
                    key.role,
                    key.actor,
                    purposes,
                    key.created_at.0,
                    key.revoked_at.map(|t| t.0),
                ]),
                StoreError::KeyExists,
                "creating an API key",
            )?;
            append(tx, head, audit)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::API_KEY_BY_HASH).during("looking up an API key")?;
            let mut rows = stmt.query([&hash[..]]).during("looking up an API key")?;
            match rows.next().during("looking up an API key")? {
                Some(row) => api_key_from_row(row).map(Some),
                None => Ok(None),
            }
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::API_KEYS).during("listing API keys")?;
            let mut rows = stmt.query([]).during("listing API keys")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("listing API keys")? {
                out.push(api_key_from_row(row)?);
            }
            Ok(out)
        })
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        self.write("revoking an API key", |tx, head| {
            let revoked = tx
                .prepare_cached(sql::REVOKE_API_KEY)
                .and_then(|mut stmt| stmt.execute(params![id, at.0]))
                .during("revoking an API key")?;
            if revoked == 0 {
                // Unknown or revoked already: nothing changes and nothing is audited.
                return Ok(false);
            }
            append(tx, head, audit)?;
            Ok(true)
        })
    }
}

impl IdempotencyStore for SqliteStore {
    fn idempotent_response(&self, key: &str, live_since: Timestamp) -> Result<Option<IdempotentResponse>, StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction().during("looking up an idempotent response")?;
            let found = {
                let mut stmt =
                    tx.prepare_cached(sql::IDEMPOTENT_RESPONSE).during("looking up an idempotent response")?;
                let mut rows = stmt.query(params![key, live_since.0]).during("looking up an idempotent response")?;
                match rows.next().during("looking up an idempotent response")? {
                    Some(row) => Some(idempotent_response_from_row(row)?),
                    None => None,
                }
            };
            let Some(mut found) = found else {
                tx.finish().during("looking up an idempotent response")?;
                return Ok(None);
            };
            {
                let mut stmt =
                    tx.prepare_cached(sql::IDEMPOTENT_SUBJECTS).during("looking up an idempotent response")?;
                let mut rows = stmt.query([key]).during("looking up an idempotent response")?;
                while let Some(row) = rows.next().during("looking up an idempotent response")? {
                    found.subjects.push(row.get(0).during("looking up an idempotent response")?);
                }
            }
            tx.finish().during("looking up an idempotent response")?;
            Ok(Some(found))
        })
    }

    fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write("pruning idempotent responses", |tx, _head| prune_idempotency(tx, before))
    }

    fn save_idempotent_response(
        &self,
        key: &str,
        response: &IdempotentResponse,
        live_since: Timestamp,
    ) -> Result<(), StoreError> {
        self.write("recording an idempotent response", |tx, _head| {
            prune_idempotency(tx, live_since)?;
            let mut insert =
                tx.prepare_cached(sql::INSERT_IDEMPOTENT_RESPONSE).during("recording an idempotent response")?;
            or_exists(
                insert.execute(params![
                    key,
                    &response.fingerprint[..],
                    response.status,
                    response.body,
                    response.created_at.0,
                ]),
                StoreError::IdempotencyKeyExists,
                "recording an idempotent response",
            )?;
            let mut link =
                tx.prepare_cached(sql::INSERT_IDEMPOTENT_SUBJECT).during("recording an idempotent response")?;
            for subject in &response.subjects {
                link.execute(params![subject, key]).during("recording an idempotent response")?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use custos_core::subject::{Subject, SubjectId};
    use custos_core::time::Timestamp;
    use custos_store::prelude::*;
    use custos_store::{ApiKeyRecord, IdempotentResponse, NewItem, StoreError};
    use rusqlite::{Connection, StatementStatus};

    use super::{is_key_violation, sql};
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
        }
    }

    #[test]
    fn statements_are_prepared_once_and_never_re_prepared() {
        let store = SqliteStore::open_in_memory().unwrap();
        for name in ["alice", "bob", "carol"] {
            store.create_subject(&subject(name), b"key", Some(b"sealed"), &format!("p-{name}"), &[]).unwrap();
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
        store.erase_subject(&SubjectId::parse("alice").unwrap(), "p-alice", Timestamp(3), &[]).unwrap();
        store.erase_subject(&SubjectId::parse("bob").unwrap(), "p-bob", Timestamp(3), &[]).unwrap();
        store.tombstone("p-alice").unwrap().unwrap();
        store.legacy_subjects(10).unwrap();
        store.upgrade_legacy_subject(&SubjectId::parse("carol").unwrap(), Some(b"sealed"), "p-carol").unwrap();
        let writer = store.writer();
        for sql in sql::ALL {
            let stmt = writer.conn.prepare_cached(sql).unwrap();
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "re-prepared: {sql}");
        }
    }

    /// Finding current versions probes an index (one entry per item), never
    /// the versions themselves: their cost does not grow with history.
    #[test]
    fn current_versions_are_found_without_reading_history() {
        let store = SqliteStore::open_in_memory().unwrap();
        let writer = store.writer();
        let plan = |sql: &str| -> String {
            let mut stmt = writer.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let mut rows = stmt.raw_query();
            let mut steps = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                steps.push(row.get::<_, String>(3).unwrap());
            }
            steps.join("; ")
        };
        for sql in [sql::CURRENT_VERSIONS, sql::CURRENT_ITEMS] {
            let plan = plan(sql);
            assert!(plan.contains("INDEX items_current (subject=?)"), "{sql}: {plan}");
        }
        let plan = plan(sql::CURRENT_ITEM);
        assert!(plan.contains("PRIMARY KEY (subject=? AND category=?)") && !plan.contains("TEMP B-TREE"), "{plan}");
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
        store.create_subject(&subject("alice"), b"key", None, "p-alice", &[]).unwrap();
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
}
