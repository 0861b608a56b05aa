//! [`ItemStore`] for [`PostgresStore`]: sealed items and their versions,
//! and the tokens that name them.

use std::collections::{BTreeMap, HashMap};

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{ItemStore, NewItem, Seal, StoreError, StoredItem, SubjectRecord, newest_lookups};
use postgres::{Row, Transaction};

use super::subjects::{SUBJECT_COLUMNS, subject_from_row};
use super::{Session, append_if_any};
use crate::error::{Context, corrupt, is_unique_violation};
use crate::{Conn, PostgresStore};

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

/// The statements of this capability.
pub(super) mod sql {
    pub(super) const LOCK_SUBJECTS_FOR_WRITE: &str =
        "SELECT id, erased_at FROM subjects WHERE id = ANY($1) ORDER BY id FOR UPDATE";
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
    /// The latest version's blind index per subject and category (one row per pair).
    pub(super) const PUT_LOOKUPS: &str = "INSERT INTO lookups (subject, category, hash) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[]) \
         ON CONFLICT (subject, category) DO UPDATE SET hash = excluded.hash";
    pub(super) const SUBJECTS_BY_LOOKUP: &str = "SELECT subject FROM lookups WHERE hash = $1 ORDER BY subject";
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
}

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
    let lookups = newest_lookups(items);
    if !lookups.is_empty() {
        let subjects: Vec<&str> = lookups.iter().map(|&(_, i)| items[i].subject.as_str()).collect();
        let categories: Vec<&str> = lookups.iter().map(|&(_, i)| items[i].category.as_str()).collect();
        let hashes: Vec<&[u8]> = lookups.iter().map(|&(hash, _)| &hash[..]).collect();
        tx.execute(sql::PUT_LOOKUPS, &[&subjects, &categories, &hashes]).during("recording lookup hashes")?;
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

    fn subjects_by_lookup(&self, hash: &[u8; 32]) -> Result<Vec<SubjectId>, StoreError> {
        const OP: &str = "looking up subjects";
        let rows = self.read(|conn| conn.query(sql::SUBJECTS_BY_LOOKUP, &[&&hash[..]]).during(OP))?;
        rows.iter()
            .map(|row| {
                let id: &str = row.try_get(0).during(OP)?;
                SubjectId::parse(id).map_err(|_| corrupt("a lookup names a malformed subject id"))
            })
            .collect()
    }
}
