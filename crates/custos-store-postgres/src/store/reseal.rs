//! [`ResealStore`] for [`PostgresStore`]: the "items bound" mark (migration
//! 0007), pages of sealed item versions in key order, and compare-and-swap
//! re-sealing. A re-seal locks its subjects by id before the chain head, like
//! every other writer, so it cannot deadlock with them (an erasure waits for
//! it, or it finds the items gone).

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_store::{ItemKey, Reseal, ResealStore, SealedItem, StoreError};
use postgres::Row;

use super::append_if_any;
use crate::PostgresStore;
use crate::error::{Context, corrupt};

const ITEMS_BOUND: &str = "SELECT 1 FROM items_bound WHERE id = 1";
const MARK_BOUND: &str = "INSERT INTO items_bound (id, bound_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const FIRST_PAGE: &str = "SELECT subject, category, version, sealed FROM items \
     ORDER BY subject, category, version LIMIT $1";
const NEXT_PAGE: &str = "SELECT subject, category, version, sealed FROM items \
     WHERE (subject, category, version) > ($1, $2, $3) ORDER BY subject, category, version LIMIT $4";
const LOCK_SUBJECTS: &str = "SELECT id FROM subjects WHERE id = ANY($1) ORDER BY id FOR UPDATE";
const RESEAL: &str = "UPDATE items i SET sealed = u.new \
     FROM UNNEST($1::text[], $2::text[], $3::int[], $4::bytea[], $5::bytea[]) AS u (subject, category, version, old, new) \
     WHERE i.subject = u.subject AND i.category = u.category AND i.version = u.version AND i.sealed = u.old";

fn sealed_item(row: &Row) -> Result<SealedItem, StoreError> {
    const OP: &str = "paging sealed items";
    let subject: String = row.try_get(0).during(OP)?;
    let version: i32 = row.try_get(2).during(OP)?;
    Ok(SealedItem {
        key: ItemKey {
            subject: SubjectId::parse(&subject).map_err(|_| corrupt("a stored subject id is not valid"))?,
            category: row.try_get(1).during(OP)?,
            version: u32::try_from(version).map_err(|_| corrupt("an item version is out of range"))?,
        },
        sealed: row.try_get(3).during(OP)?,
    })
}

impl ResealStore for PostgresStore {
    fn items_bound(&self) -> Result<bool, StoreError> {
        self.read(|conn| Ok(conn.query_opt(ITEMS_BOUND, &[]).during("reading the items-bound mark")?.is_some()))
    }

    fn sealed_items(&self, after: Option<&ItemKey>, limit: usize) -> Result<Vec<SealedItem>, StoreError> {
        const OP: &str = "paging sealed items";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|conn| match after {
            None => conn.query(FIRST_PAGE, &[&limit]).during(OP),
            Some(k) => {
                let version = i32::try_from(k.version).map_err(|_| corrupt("an item version is out of range"))?;
                conn.query(NEXT_PAGE, &[&k.subject.as_str(), &k.category, &version, &limit]).during(OP)
            }
        })?;
        rows.iter().map(sealed_item).collect()
    }

    fn reseal_items(&self, batch: &[Reseal], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        const OP: &str = "re-sealing items";
        let mut ids: Vec<&str> = batch.iter().map(|r| r.key.subject.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let subjects: Vec<&str> = batch.iter().map(|r| r.key.subject.as_str()).collect();
        let categories: Vec<&str> = batch.iter().map(|r| r.key.category.as_str()).collect();
        let versions = batch
            .iter()
            .map(|r| i32::try_from(r.key.version).map_err(|_| corrupt("an item version is out of range")))
            .collect::<Result<Vec<i32>, _>>()?;
        let olds: Vec<&[u8]> = batch.iter().map(|r| r.old.as_slice()).collect();
        let news: Vec<&[u8]> = batch.iter().map(|r| r.new.as_slice()).collect();
        self.write(OP, |tx| {
            tx.query(LOCK_SUBJECTS, &[&ids]).during(OP)?;
            let replaced = tx.execute(RESEAL, &[&subjects, &categories, &versions, &olds, &news]).during(OP)?;
            append_if_any(tx, audit)?;
            Ok(replaced)
        })
    }

    fn mark_items_bound(&self, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        const OP: &str = "recording that items are bound";
        let now = audit.first().map_or(0, |e| e.at.0);
        self.write(OP, |tx| {
            if tx.execute(MARK_BOUND, &[&now]).during(OP)? == 0 {
                return Ok(false);
            }
            append_if_any(tx, audit)?;
            Ok(true)
        })
    }
}
