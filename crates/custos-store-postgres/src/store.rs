//! [`Store`] for [`PostgresStore`]: the SQL of every operation.
//!
//! Each mutating call runs in one transaction (READ COMMITTED) that also
//! appends its audit entries: it locks what it changes (the subject rows, by
//! id), then the chain head row, appends after the head it read under that
//! lock, moves the head and commits. Any error drops the transaction, which
//! rolls it back. Rows are written with multi-row statements over arrays
//! (`UNNEST`), never one statement per item or entry.

use std::collections::{BTreeMap, HashMap};

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;
use custos_store::{
    ApiKeyRecord, AuditStore, IdempotencyStore, IdempotentResponse, ItemStore, KeyStore, LegacySubject, NewItem, Seal,
    StateChange, StoreError, StoredItem, SubjectColumns, SubjectRecord, SubjectStore, Tombstone,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{BorrowToSql, ToSql};
use postgres::{Client, GenericClient, IsolationLevel, Row, RowIter, Statement, Transaction};

use crate::error::{Context, corrupt, is_unique_violation};
use crate::{Conn, PostgresStore};

mod identity;
mod reseal;

/// The columns of `subjects`, in the order [`subject_from_row`] reads them.
macro_rules! subject_columns {
    () => {
        "id, jurisdiction, metadata, created_at, erased_at, wrapped_key, state::text"
    };
}

/// The stored columns of `items`, in the order [`item_from_row`] reads them
/// (a version's `superseded_at` is not stored: each query derives it, last).
macro_rules! item_columns {
    () => {
        "subject, category, version, source, purpose, collected_at, notice_version, sealed, token"
    };
}

/// Subject `$1` and the current version (the highest: one backward probe of
/// the primary key) of each category in the relation `$categories` (column
/// `c.category`), in category order.
macro_rules! subject_with_latest {
    ($categories:literal) => {
        concat!(
            "SELECT ",
            subject_columns!(),
            ", i.* FROM subjects LEFT JOIN LATERAL (SELECT x.*, NULL::bigint FROM ",
            $categories,
            " CROSS JOIN LATERAL (SELECT ",
            item_columns!(),
            " FROM items WHERE subject = $1 AND category = c.category ORDER BY version DESC LIMIT 1) AS x) AS i \
             ON true WHERE id = $1 ORDER BY i.category"
        )
    };
}

/// The columns of `api_keys`, in the order [`api_key_from_row`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, secret_hash, role, actor, purposes, created_at, revoked_at"
    };
}

/// Every statement the store runs.
mod sql {
    pub(super) const LOCK_AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
    pub(super) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (seq, prev_hash, body, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::bytea[])";
    pub(super) const MOVE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
    pub(super) const WRITABLE: &str = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'";
    pub(super) const LAST_AUDIT_ENTRY: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
    pub(super) const SCAN_AUDIT: &str = "SELECT seq, prev_hash, body, hash FROM audit ORDER BY seq";
    pub(super) const AUDIT_AFTER: &str =
        "SELECT seq, prev_hash, body, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2";

    pub(super) const SUBJECT: &str = concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = $1");
    pub(super) const LOCK_SUBJECT: &str =
        concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = $1 FOR UPDATE");
    pub(super) const SUBJECTS: &str = concat!("SELECT ", subject_columns!(), " FROM subjects WHERE id = ANY($1)");
    pub(super) const INSERT_SUBJECT: &str = "INSERT INTO subjects (id, jurisdiction, metadata, \
         created_at, erased_at, wrapped_key, state) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) \
         ON CONFLICT (id) DO NOTHING";
    pub(super) const UPDATE_STATE: &str = "UPDATE subjects SET state = $2::text::jsonb WHERE id = $1";
    pub(super) const LOCK_SUBJECTS_FOR_WRITE: &str =
        "SELECT id, erased_at FROM subjects WHERE id = ANY($1) ORDER BY id FOR UPDATE";
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

    // Versions are insert-only (migration 2): an item's current version is
    // its highest, found by a backward scan of the primary key, and a version
    // is superseded when the next one was collected.
    /// The highest stored version (or NULL) of each item ($1, $2), in input order.
    pub(super) const CURRENT_VERSIONS: &str = "SELECT \
         (SELECT max(i.version) FROM items i WHERE i.subject = u.subject AND i.category = u.category) \
         FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS u (subject, category, n) ORDER BY u.n";
    pub(super) const INSERT_ITEMS: &str = concat!(
        "INSERT INTO items (",
        item_columns!(),
        ") SELECT * FROM UNNEST($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::bigint[], \
         $7::text[], $8::bytea[], $9::text[])"
    );
    pub(super) const INSERT_TOKENS: &str = "INSERT INTO tokens (token, subject, category, version) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::integer[])";
    /// A subject and the current versions of the categories `$2` (all when
    /// empty), in one statement: one snapshot and one round trip. The item
    /// columns follow the subject's; a subject without items has one row with
    /// NULL item columns.
    pub(super) const SUBJECT_WITH_ITEMS_IN: &str =
        subject_with_latest!("(SELECT DISTINCT unnest($2::text[]) AS category) AS c");
    /// The categories are found by skipping through the primary key: one
    /// probe each, however many versions they have.
    pub(super) const SUBJECT_WITH_ITEMS_ALL: &str = concat!(
        "WITH RECURSIVE c (category) AS ( \
             (SELECT category FROM items WHERE subject = $1 ORDER BY category LIMIT 1) \
             UNION ALL \
             SELECT (SELECT n.category FROM items n WHERE n.subject = $1 AND n.category > c.category \
                     ORDER BY n.category LIMIT 1) \
             FROM c WHERE c.category IS NOT NULL) ",
        subject_with_latest!("c")
    );
    pub(super) const HISTORY: &str = concat!(
        "SELECT ",
        item_columns!(),
        ", lead(collected_at) OVER (ORDER BY version) FROM items WHERE subject = $1 AND category = $2 \
         ORDER BY version DESC"
    );
    pub(super) const ITEM_BY_TOKEN: &str = "SELECT i.subject, i.category, i.version, i.source, i.purpose, \
         i.collected_at, i.notice_version, i.sealed, i.token, \
         (SELECT n.collected_at FROM items n WHERE n.subject = i.subject AND n.category = i.category \
          AND n.version > i.version ORDER BY n.version LIMIT 1) \
         FROM tokens t JOIN items i ON i.subject = t.subject AND i.category = t.category AND i.version = t.version \
         WHERE t.token = $1";
    pub(super) const DELETE_ITEMS: &str = "DELETE FROM items WHERE subject = $1 RETURNING token";
    pub(super) const DELETE_TOKENS: &str = "DELETE FROM tokens WHERE token = ANY($1)";

    pub(super) const INSERT_API_KEY: &str = concat!(
        "INSERT INTO api_keys (",
        api_key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    );
    pub(super) const API_KEY_BY_HASH: &str =
        concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE secret_hash = $1");
    pub(super) const API_KEYS: &str = concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id");
    pub(super) const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

    pub(super) const IDEMPOTENT_RESPONSE: &str = "SELECT fingerprint, status, body, created_at, \
         ARRAY(SELECT s.subject FROM idempotency_subjects s WHERE s.key = $1 ORDER BY s.subject) \
         FROM idempotency WHERE key = $1 AND created_at >= $2";
    pub(super) const INSERT_IDEMPOTENT_SUBJECTS: &str = "INSERT INTO idempotency_subjects (subject, key) \
         SELECT DISTINCT unnest($1::text[]), $2 ON CONFLICT DO NOTHING";
    // Every write prunes; concurrent writers lock (and delete) disjoint sets
    // of expired records instead of waiting on, or deadlocking with, each other.
    pub(super) const PRUNE_IDEMPOTENT_SUBJECTS: &str = "DELETE FROM idempotency_subjects WHERE key IN \
         (SELECT key FROM idempotency WHERE created_at < $1 FOR UPDATE SKIP LOCKED)";
    pub(super) const PRUNE_IDEMPOTENT_RESPONSES: &str = "DELETE FROM idempotency WHERE key IN \
         (SELECT key FROM idempotency WHERE created_at < $1 FOR UPDATE SKIP LOCKED)";
    /// A subject's records, and every subject link of those records.
    pub(super) const ERASE_IDEMPOTENT_RESPONSES: &str =
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency_subjects WHERE subject = $1)";
    pub(super) const ERASE_IDEMPOTENT_SUBJECTS: &str = "DELETE FROM idempotency_subjects WHERE key IN \
         (SELECT key FROM idempotency_subjects WHERE subject = $1)";
    pub(super) const INSERT_IDEMPOTENT_RESPONSE: &str = "INSERT INTO idempotency (key, fingerprint, status, body, \
         created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING";
}

impl PostgresStore {
    /// Runs `f` in one read-write transaction and commits it.
    fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Session<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| {
            let mut tx = client.transaction().during(operation)?;
            let value = f(&mut Session { db: &mut tx, statements })?;
            tx.commit().during(operation)?;
            Ok(value)
        })
    }

    /// Runs `f` in one read-only REPEATABLE READ transaction: one snapshot for all it reads.
    fn snapshot<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Session<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .during(operation)?;
            let value = f(&mut Session { db: &mut tx, statements })?;
            tx.commit().during(operation)?;
            Ok(value)
        })
    }

    /// Runs `f` on a connection, outside any explicit transaction.
    fn read<T>(&self, f: impl FnOnce(&mut Session<'_, Client>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| f(&mut Session { db: client, statements }))
    }
}

/// A connection or a transaction on it, with the connection's prepared statements.
struct Session<'a, C> {
    db: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> Session<'_, C> {
    /// The statement for `sql`, prepared on this connection the first time it is asked for.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.db.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.query(&statement, params)
    }

    fn query_opt(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.query_opt(&statement, params)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.execute(&statement, params)
    }

    fn query_raw<P, I>(&mut self, sql: &'static str, params: I) -> Result<RowIter<'_>, postgres::Error>
    where
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let statement = self.prepared(sql)?;
        self.db.query_raw(&statement, params)
    }
}

/// Appends `events` after the chain head, which it locks until the
/// transaction ends, and records the new head. Returns the new head.
fn append(tx: &mut Session<'_, Transaction<'_>>, events: &[AuditEvent]) -> Result<ChainHead, StoreError> {
    let heads = append_groups(tx, &[events])?;
    heads.into_iter().next().ok_or_else(|| corrupt("no audit head after appending"))
}

/// Appends several callers' events in order under one lock of the head, with
/// one insert; returns the head just after each group.
fn append_groups(
    tx: &mut Session<'_, Transaction<'_>>,
    groups: &[&[AuditEvent]],
) -> Result<Vec<ChainHead>, StoreError> {
    let row = tx.query_opt(sql::LOCK_AUDIT_HEAD, &[]).during("locking the audit head")?;
    let mut head = head_from_row(row)?;
    let total: usize = groups.iter().map(|g| g.len()).sum();
    let mut heads = Vec::with_capacity(groups.len());
    if total == 0 {
        heads.resize(groups.len(), head);
        return Ok(heads);
    }
    let mut seqs = Vec::with_capacity(total);
    let mut prevs = Vec::with_capacity(total);
    let mut bodies = Vec::with_capacity(total);
    let mut hashes = Vec::with_capacity(total);
    for group in groups {
        for event in *group {
            let entry = head.append(event.to_body());
            seqs.push(i64::try_from(entry.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?);
            prevs.push(entry.prev_hash.to_vec());
            bodies.push(entry.body);
            hashes.push(entry.hash.to_vec());
        }
        heads.push(head);
    }
    tx.execute(sql::INSERT_AUDIT, &[&seqs, &prevs, &bodies, &hashes]).during("appending audit entries")?;
    let seq = i64::try_from(head.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?;
    tx.execute(sql::MOVE_AUDIT_HEAD, &[&seq, &&head.hash[..]]).during("moving the audit head")?;
    Ok(heads)
}

/// Appends `events` unless there are none (then the head is not even locked).
fn append_if_any(tx: &mut Session<'_, Transaction<'_>>, events: &[AuditEvent]) -> Result<(), StoreError> {
    if !events.is_empty() {
        append(tx, events)?;
    }
    Ok(())
}

fn head_from_row(row: Option<Row>) -> Result<ChainHead, StoreError> {
    let Some(row) = row else {
        return Err(corrupt("the audit head row is missing"));
    };
    let seq: i64 = row.try_get(0).during("reading the audit head")?;
    let hash: Vec<u8> = row.try_get(1).during("reading the audit head")?;
    Ok(ChainHead {
        seq: u64::try_from(seq).map_err(|_| corrupt("the audit head has a negative sequence number"))?,
        hash: hash32(hash)?,
    })
}

fn load_head<C: GenericClient>(conn: &mut Session<'_, C>) -> Result<ChainHead, StoreError> {
    let row = conn.query_opt(sql::AUDIT_HEAD, &[]).during("reading the audit head")?;
    head_from_row(row)
}

fn load_subject<C: GenericClient>(
    conn: &mut Session<'_, C>,
    id: &SubjectId,
) -> Result<Option<SubjectRecord>, StoreError> {
    let row = conn.query_opt(sql::SUBJECT, &[&id.as_str()]).during("loading a subject")?;
    row.as_ref().map(subject_from_row).transpose()
}

fn subject_from_row(row: &Row) -> Result<SubjectRecord, StoreError> {
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
const SUBJECT_COLUMNS: usize = 7;

fn item_from_row(row: &Row) -> Result<StoredItem, StoreError> {
    item_from_row_at(row, 0)
}

/// An item from the columns of `row` that start at `at`.
fn item_from_row_at(row: &Row, at: usize) -> Result<StoredItem, StoreError> {
    const OP: &str = "reading an item";
    let subject: String = row.try_get(at).during(OP)?;
    let version: i32 = row.try_get(at + 2).during(OP)?;
    Ok(StoredItem {
        subject: SubjectId::parse(&subject).map_err(|_| corrupt("an item's subject id is not valid"))?,
        category: row.try_get(at + 1).during(OP)?,
        version: u32::try_from(version).map_err(|_| corrupt("an item version is out of range"))?,
        source: row.try_get(at + 3).during(OP)?,
        purpose: row.try_get(at + 4).during(OP)?,
        collected_at: Timestamp(row.try_get(at + 5).during(OP)?),
        notice_version: row.try_get(at + 6).during(OP)?,
        sealed: row.try_get(at + 7).during(OP)?,
        token: row.try_get(at + 8).during(OP)?,
        superseded_at: row.try_get::<_, Option<i64>>(at + 9).during(OP)?.map(Timestamp),
    })
}

fn api_key_from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    const OP: &str = "reading an API key";
    Ok(ApiKeyRecord {
        id: row.try_get(0).during(OP)?,
        secret_hash: row
            .try_get::<_, Vec<u8>>(1)
            .during(OP)?
            .try_into()
            .map_err(|_| corrupt("an API key hash is not 32 bytes"))?,
        role: row.try_get(2).during(OP)?,
        actor: row.try_get(3).during(OP)?,
        purposes: row.try_get(4).during(OP)?,
        created_at: Timestamp(row.try_get(5).during(OP)?),
        revoked_at: row.try_get::<_, Option<i64>>(6).during(OP)?.map(Timestamp),
    })
}

fn idempotent_response_from_row(row: &Row) -> Result<IdempotentResponse, StoreError> {
    const OP: &str = "reading an idempotent response";
    let status: i32 = row.try_get(1).during(OP)?;
    Ok(IdempotentResponse {
        fingerprint: row
            .try_get::<_, Vec<u8>>(0)
            .during(OP)?
            .try_into()
            .map_err(|_| corrupt("a request fingerprint is not 32 bytes"))?,
        status: u16::try_from(status).map_err(|_| corrupt("a response status is out of range"))?,
        body: row.try_get(2).during(OP)?,
        created_at: Timestamp(row.try_get(3).during(OP)?),
        subjects: row.try_get(4).during(OP)?,
    })
}

/// When the subject whose id has `pseudonym` was erased, if a tombstone holds it.
fn tombstone_at<C: GenericClient>(conn: &mut Session<'_, C>, pseudonym: &str) -> Result<Option<i64>, StoreError> {
    let row = conn.query_opt(sql::TOMBSTONE, &[&pseudonym]).during("looking up a tombstone")?;
    row.map(|r| r.try_get(0).during("looking up a tombstone")).transpose()
}

/// Deletes every idempotency record made before `before`; returns how many.
fn prune_idempotency(tx: &mut Session<'_, Transaction<'_>>, before: Timestamp) -> Result<u64, StoreError> {
    const OP: &str = "pruning idempotent responses";
    tx.execute(sql::PRUNE_IDEMPOTENT_SUBJECTS, &[&before.0]).during(OP)?;
    tx.execute(sql::PRUNE_IDEMPOTENT_RESPONSES, &[&before.0]).during(OP)
}

fn entry_from_row(row: &Row) -> Result<AuditEntry, StoreError> {
    const OP: &str = "reading audit entries";
    let seq: i64 = row.try_get(0).during(OP)?;
    Ok(AuditEntry {
        seq: u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?,
        prev_hash: hash32(row.try_get(1).during(OP)?)?,
        body: row.try_get(2).during(OP)?,
        hash: hash32(row.try_get(3).during(OP)?)?,
    })
}

fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| corrupt("an audit hash is not 32 bytes"))
}

fn encode_state(state: &SubjectState) -> Result<String, StoreError> {
    serde_json::to_string(state).map_err(|_| StoreError::Backend("encoding a subject's state failed".into()))
}

/// The operation [`Store::put_items`] names in its errors.
const PUT_OP: &str = "writing items";

/// When a batch of items reads the stored versions it numbers after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbering {
    /// Before locking the subjects; a concurrent writer may race it.
    BeforeLocking,
    /// After locking the subjects: nothing can race it.
    UnderLock,
}

/// One attempt at [`Store::put_items`] in `tx`: the versions written, or
/// `None` if numbered [`Numbering::BeforeLocking`] and another writer took a
/// version first (the transaction is then aborted and must be rolled back).
fn put_in(
    tx: &mut Session<'_, Transaction<'_>>,
    items: &[NewItem],
    seal: &Seal<'_>,
    audit: &[AuditEvent],
    ids: &[&str],
    numbering: Numbering,
) -> Result<Option<Vec<u32>>, StoreError> {
    const OP: &str = PUT_OP;
    // The highest stored version of each item written, by (subject, category).
    let mut keys: (Vec<&str>, Vec<&str>) = Default::default();
    let mut latest: HashMap<(&str, &str), i32> = HashMap::new();
    for item in items {
        if latest.insert((item.subject.as_str(), &item.category), 0).is_none() {
            keys.0.push(item.subject.as_str());
            keys.1.push(&item.category);
        }
    }
    if numbering == Numbering::BeforeLocking {
        read_versions(tx, &keys, &mut latest)?;
    }

    // Lock every subject written for, in id order (so concurrent batches
    // cannot deadlock): an erasure or a state change of the same subject
    // waits for this transaction, and this one for theirs.
    let rows = tx.query(sql::LOCK_SUBJECTS_FOR_WRITE, &[&ids]).during(OP)?;
    let mut erased: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for row in &rows {
        erased.insert(row.try_get(0).during(OP)?, row.try_get(1).during(OP)?);
    }
    for id in ids {
        match erased.get(id) {
            None => return Err(StoreError::SubjectNotFound),
            Some(Some(_)) => return Err(StoreError::SubjectErased),
            Some(None) => {}
        }
    }
    if numbering == Numbering::UnderLock {
        read_versions(tx, &keys, &mut latest)?;
    }

    // Number the new versions in input order, after the stored ones.
    let mut cols = ItemColumns::default();
    for (index, item) in items.iter().enumerate() {
        let slot = latest
            .get_mut(&(item.subject.as_str(), item.category.as_str()))
            .ok_or_else(|| corrupt("an item was not numbered"))?;
        *slot = slot.checked_add(1).ok_or_else(|| corrupt("an item version is out of range"))?;
        cols.subject.push(item.subject.as_str());
        cols.category.push(&item.category);
        cols.version.push(*slot);
        cols.source.push(&item.source);
        cols.purpose.push(&item.purpose);
        cols.collected_at.push(item.collected_at.0);
        cols.notice_version.push(&item.notice_version);
        cols.sealed.push(seal(index, u32::try_from(*slot).map_err(|_| corrupt("an item version is out of range"))?)?);
        cols.token.push(item.token.as_deref());
    }

    if !items.is_empty() {
        let inserted = tx.execute(
            sql::INSERT_ITEMS,
            &[
                &cols.subject,
                &cols.category,
                &cols.version,
                &cols.source,
                &cols.purpose,
                &cols.collected_at,
                &cols.notice_version,
                &cols.sealed,
                &cols.token,
            ],
        );
        match inserted {
            Err(e) if numbering == Numbering::BeforeLocking && is_version_collision(&e) => return Ok(None),
            other => other.during(OP)?,
        };
    }
    let mut tokens: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i32>) = Default::default();
    for (i, token) in cols.token.iter().enumerate() {
        if let Some(token) = token {
            tokens.0.push(token);
            tokens.1.push(cols.subject[i]);
            tokens.2.push(cols.category[i]);
            tokens.3.push(cols.version[i]);
        }
    }
    if !tokens.0.is_empty() {
        tx.execute(sql::INSERT_TOKENS, &[&tokens.0, &tokens.1, &tokens.2, &tokens.3])
            .during("recording item tokens")?;
    }
    append_if_any(tx, audit)?;
    let versions = cols
        .version
        .iter()
        .map(|&v| u32::try_from(v).map_err(|_| corrupt("an item version is out of range")))
        .collect::<Result<_, _>>()?;
    Ok(Some(versions))
}

/// Sets `latest` to the highest stored version of each of `keys`' items.
fn read_versions<'a>(
    tx: &mut Session<'_, Transaction<'_>>,
    keys: &(Vec<&'a str>, Vec<&'a str>),
    latest: &mut HashMap<(&'a str, &'a str), i32>,
) -> Result<(), StoreError> {
    let rows = tx.query(sql::CURRENT_VERSIONS, &[&keys.0, &keys.1]).during(PUT_OP)?;
    if rows.len() != keys.0.len() {
        return Err(corrupt("the stored versions did not match the items written"));
    }
    for ((subject, category), row) in keys.0.iter().zip(&keys.1).zip(&rows) {
        if let (Some(stored), Some(slot)) =
            (row.try_get::<_, Option<i32>>(0).during(PUT_OP)?, latest.get_mut(&(*subject, *category)))
        {
            *slot = stored;
        }
    }
    Ok(())
}

/// Whether `e` is another writer's version of an item taking the number this
/// one chose. (Citus names a shard's constraint `items_pkey_<shard id>`.)
fn is_version_collision(e: &postgres::Error) -> bool {
    is_unique_violation(e)
        && e.as_db_error().and_then(|db| db.constraint()).is_some_and(|c| c.starts_with("items_pkey"))
}

/// The rows of one `put_items` call, column by column, for multi-row statements.
#[derive(Default)]
struct ItemColumns<'a> {
    subject: Vec<&'a str>,
    category: Vec<&'a str>,
    version: Vec<i32>,
    source: Vec<&'a str>,
    purpose: Vec<&'a str>,
    collected_at: Vec<i64>,
    notice_version: Vec<&'a str>,
    sealed: Vec<Vec<u8>>,
    token: Vec<Option<&'a str>>,
}

impl SubjectStore for PostgresStore {
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let state = encode_state(&subject.state)?;
        let erased_at = subject.erased_at.map(|t| t.0);
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
                    ],
                )
                .or_exists(StoreError::SubjectExists, "creating a subject")?;
            if inserted == 0 {
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
            let deleted = tx.query(sql::DELETE_ITEMS, &[&id.as_str()]).during(OP)?;
            let mut tokens: Vec<String> = Vec::new();
            for row in &deleted {
                if let Some(token) = row.try_get::<_, Option<String>>(0).during(OP)? {
                    tokens.push(token);
                }
            }
            if !tokens.is_empty() {
                tx.execute(sql::DELETE_TOKENS, &[&tokens]).during(OP)?;
            }
            tx.execute(sql::ERASE_IDEMPOTENT_RESPONSES, &[&pseudonym]).during(OP)?;
            tx.execute(sql::ERASE_IDEMPOTENT_SUBJECTS, &[&pseudonym]).during(OP)?;
            tx.execute(sql::DELETE_SUBJECT, &[&id.as_str()]).during(OP)?;
            tx.execute(sql::INSERT_TOMBSTONE, &[&pseudonym, &at.0]).during(OP)?;
            append_if_any(tx, audit)?;
            Ok(deleted.len() as u64)
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

impl ItemStore for PostgresStore {
    /// Versions are numbered from the stored ones read *before* the subjects
    /// are locked, so that read stays out of the section that concurrent
    /// writers of the same subjects serialise on. Numbering is dense, so a
    /// version committed in between makes this transaction's first version
    /// of that item collide on the primary key; the transaction is then
    /// rolled back and run once more reading the versions under the lock,
    /// where nothing can race it.
    fn put_items(&self, items: &[NewItem], seal: &Seal<'_>, audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError> {
        let mut ids: Vec<&str> = items.iter().map(|i| i.subject.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        self.with_client(|Conn { client, statements }| {
            for numbering in [Numbering::BeforeLocking, Numbering::UnderLock] {
                let mut tx = client.transaction().during(PUT_OP)?;
                let written = put_in(&mut Session { db: &mut tx, statements }, items, seal, audit, &ids, numbering)?;
                if let Some(versions) = written {
                    tx.commit().during(PUT_OP)?;
                    return Ok(versions);
                }
                // Raced: dropping `tx` rolls it back.
            }
            Err(corrupt("item versions collided while their subjects were locked"))
        })
    }

    fn current_items(&self, id: &SubjectId, categories: &[&str]) -> Result<Vec<StoredItem>, StoreError> {
        Ok(self.subject_with_items(id, categories)?.map(|(_, items)| items).unwrap_or_default())
    }

    fn subject_with_items(
        &self,
        id: &SubjectId,
        categories: &[&str],
    ) -> Result<Option<(SubjectRecord, Vec<StoredItem>)>, StoreError> {
        const OP: &str = "reading a subject";
        let rows = self.read(|conn| {
            if categories.is_empty() {
                conn.query(sql::SUBJECT_WITH_ITEMS_ALL, &[&id.as_str()])
            } else {
                conn.query(sql::SUBJECT_WITH_ITEMS_IN, &[&id.as_str(), &categories])
            }
            .during(OP)
        })?;
        let Some(first) = rows.first() else { return Ok(None) };
        let record = subject_from_row(first)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            // The LEFT JOIN's one row of NULLs: a subject without those items.
            if row.try_get::<_, Option<&str>>(SUBJECT_COLUMNS).during(OP)?.is_some() {
                items.push(item_from_row_at(row, SUBJECT_COLUMNS)?);
            }
        }
        Ok(Some((record, items)))
    }

    fn history(&self, id: &SubjectId, category: &str) -> Result<Vec<StoredItem>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(sql::HISTORY, &[&id.as_str(), &category]).during("reading history")?;
            rows.iter().map(item_from_row).collect()
        })
    }

    fn item_by_token(&self, token: &str) -> Result<Option<StoredItem>, StoreError> {
        self.read(|conn| {
            let row = conn.query_opt(sql::ITEM_BY_TOKEN, &[&token]).during("looking up a token")?;
            row.as_ref().map(item_from_row).transpose()
        })
    }
}

impl AuditStore for PostgresStore {
    /// Group commit, as in the SQLite store: callers in this process queue
    /// their events; whoever holds the leader lock commits every queued
    /// append in one transaction (one fsync for many audited reads). Other
    /// processes still serialise on the head row.
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError> {
        if audit.is_empty() {
            return self.audit_head();
        }
        self.audit_queue.append(audit, |groups| self.write("appending audit entries", |tx| append_groups(tx, groups)))
    }

    fn audit_head(&self) -> Result<ChainHead, StoreError> {
        self.read(load_head)
    }

    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        const OP: &str = "scanning the audit log";
        self.snapshot(OP, |tx| {
            let head = load_head(tx)?;
            // Streamed, not collected: the log can hold millions of entries.
            let mut rows = tx.query_raw(sql::SCAN_AUDIT, std::iter::empty::<i64>()).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                let seq: i64 = row.try_get(0).during(OP)?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let prev: &[u8] = row.try_get(1).during(OP)?;
                let body: &str = row.try_get(2).during(OP)?;
                let hash: &[u8] = row.try_get(3).during(OP)?;
                if let Err(broken) = visit(seq, prev, body.as_bytes(), hash) {
                    return Ok(Err(broken));
                }
            }
            Ok(Ok(head))
        })
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let rows = conn.query(sql::AUDIT_AFTER, &[&after, &limit]).during("reading audit entries")?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    /// Readiness of the write path, in a transaction that is rolled back: the
    /// server is neither a standby in recovery nor read-only, the head row can
    /// be locked (waiting at most [`CHECK_LOCK_TIMEOUT`] for a writer holding
    /// it), and the head is the last entry of the chain.
    fn check_writable(&self) -> Result<(), StoreError> {
        const OP: &str = "checking that the store can write";
        self.with_client(|Conn { client, statements }| {
            let mut tx = client.transaction().during(OP)?;
            tx.batch_execute(CHECK_LOCK_TIMEOUT).during(OP)?;
            let mut session = Session { db: &mut tx, statements };
            let row = session.query_opt(sql::WRITABLE, &[]).during(OP)?.ok_or_else(|| corrupt("no row"))?;
            if row.try_get::<_, bool>(0).during(OP)? {
                return Err(StoreError::Backend("the database is a standby in recovery: it cannot write".into()));
            }
            if row.try_get::<_, bool>(1).during(OP)? {
                return Err(StoreError::Backend("the database is read-only (transaction_read_only is on)".into()));
            }
            let head = head_from_row(session.query_opt(sql::LOCK_AUDIT_HEAD, &[]).during("locking the audit head")?)?;
            let last = match session.query_opt(sql::LAST_AUDIT_ENTRY, &[]).during(OP)? {
                None => ChainHead::EMPTY,
                Some(row) => head_from_row(Some(row))?,
            };
            if last != head {
                return Err(corrupt("the recorded audit head is not the last audit entry; the next append would fail"));
            }
            tx.rollback().during(OP)
        })
    }
}

/// How long [`AuditStore::check_writable`] waits for a writer holding the
/// chain head (as long as SQLite's store waits for its write lock).
const CHECK_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

impl KeyStore for PostgresStore {
    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        const OP: &str = "creating an API key";
        let revoked_at = key.revoked_at.map(|t| t.0);
        self.write(OP, |tx| {
            let inserted = tx
                .execute(
                    sql::INSERT_API_KEY,
                    &[
                        &key.id,
                        &&key.secret_hash[..],
                        &key.role,
                        &key.actor,
                        &key.purposes,
                        &key.created_at.0,
                        &revoked_at,
                    ],
                )
                .or_exists(StoreError::KeyExists, OP)?;
            if inserted == 0 {
                return Err(StoreError::KeyExists);
            }
            append_if_any(tx, audit)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let row = conn.query_opt(sql::API_KEY_BY_HASH, &[&&hash[..]]).during("looking up an API key")?;
            row.as_ref().map(api_key_from_row).transpose()
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(sql::API_KEYS, &[]).during("listing API keys")?;
            rows.iter().map(api_key_from_row).collect()
        })
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        self.write("revoking an API key", |tx| {
            let revoked = tx.execute(sql::REVOKE_API_KEY, &[&id, &at.0]).during("revoking an API key")?;
            if revoked == 0 {
                // Unknown or revoked already: nothing changes and nothing is audited.
                return Ok(false);
            }
            append_if_any(tx, audit)?;
            Ok(true)
        })
    }
}

impl IdempotencyStore for PostgresStore {
    fn idempotent_response(&self, key: &str, live_since: Timestamp) -> Result<Option<IdempotentResponse>, StoreError> {
        self.read(|conn| {
            let row = conn
                .query_opt(sql::IDEMPOTENT_RESPONSE, &[&key, &live_since.0])
                .during("looking up an idempotent response")?;
            row.as_ref().map(idempotent_response_from_row).transpose()
        })
    }

    fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write("pruning idempotent responses", |tx| prune_idempotency(tx, before))
    }

    fn save_idempotent_response(
        &self,
        key: &str,
        response: &IdempotentResponse,
        live_since: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "recording an idempotent response";
        let status = i32::from(response.status);
        self.write(OP, |conn| {
            prune_idempotency(conn, live_since)?;
            let inserted = conn
                .execute(
                    sql::INSERT_IDEMPOTENT_RESPONSE,
                    &[&key, &&response.fingerprint[..], &status, &response.body, &response.created_at.0],
                )
                .or_exists(StoreError::IdempotencyKeyExists, OP)?;
            if inserted == 0 {
                return Err(StoreError::IdempotencyKeyExists);
            }
            if !response.subjects.is_empty() {
                conn.execute(sql::INSERT_IDEMPOTENT_SUBJECTS, &[&response.subjects, &key]).during(OP)?;
            }
            Ok(())
        })
    }
}
