//! [`ItemStore`] for [`SqliteStore`]: sealed items and their versions.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{ItemStore, NewItem, Seal, StoreError, StoredItem, SubjectRecord, newest_lookups};
use rusqlite::{Connection, Row, params};

use super::subjects::load_subject;
use super::{append, erased_at};
use crate::SqliteStore;
use crate::error::{Context, corrupt};

/// The columns of `items`, in the order [`item_from_row`] reads them.
macro_rules! item_columns {
    () => {
        "subject, category, version, source, purpose, collected_at, notice_version, superseded_at, sealed, token"
    };
}

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
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
    /// The latest version's blind index per subject and category.
    pub(super) const PUT_LOOKUP: &str = "INSERT INTO lookups (subject, category, hash) VALUES (?1, ?2, ?3) \
         ON CONFLICT (subject, category) DO UPDATE SET hash = excluded.hash";
    pub(super) const SUBJECTS_BY_LOOKUP: &str = "SELECT subject FROM lookups WHERE hash = ?1 ORDER BY subject";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[
        CURRENT_VERSIONS,
        SUPERSEDE,
        INSERT_ITEM,
        CURRENT_ITEMS,
        CURRENT_ITEM,
        HISTORY,
        ITEM_BY_TOKEN,
        PUT_LOOKUP,
        SUBJECTS_BY_LOOKUP,
    ];
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

/// The key items are written in: (subject, category).
fn key(item: &NewItem) -> (&str, &str) {
    (item.subject.as_str(), item.category.as_str())
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
            let mut lookup = tx.prepare_cached(sql::PUT_LOOKUP).during("writing items")?;

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
            for (hash, index) in newest_lookups(items) {
                let item = &items[index];
                lookup.execute(params![item.subject.as_str(), item.category, &hash[..]]).during("writing items")?;
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

    fn subjects_by_lookup(&self, hash: &[u8; 32]) -> Result<Vec<SubjectId>, StoreError> {
        const OP: &str = "looking up subjects";
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::SUBJECTS_BY_LOOKUP).during(OP)?;
            let mut rows = stmt.query([&hash[..]]).during(OP)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during(OP)? {
                let id: String = row.get(0).during(OP)?;
                out.push(
                    SubjectId::parse(&id)
                        .map_err(|_| crate::error::corrupt("a lookup names a malformed subject id"))?,
                );
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sql;
    use crate::SqliteStore;

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
}
