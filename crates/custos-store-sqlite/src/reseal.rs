//! `ResealStore` for SQLite: the "items bound" mark (migration 8), pages of
//! sealed item versions in key order, and compare-and-swap re-sealing.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_store::{ItemKey, Reseal, ResealStore, SealedItem, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::error::{Context, corrupt};
use crate::store::append;

const ITEMS_BOUND: &str = "SELECT 1 FROM items_bound WHERE id = 1";
const MARK_BOUND: &str = "INSERT INTO items_bound (id, bound_at) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING";
const FIRST_PAGE: &str = "SELECT subject, category, version, sealed FROM items \
     ORDER BY subject, category, version LIMIT ?1";
const NEXT_PAGE: &str = "SELECT subject, category, version, sealed FROM items \
     WHERE (subject, category, version) > (?1, ?2, ?3) ORDER BY subject, category, version LIMIT ?4";
const RESEAL: &str =
    "UPDATE items SET sealed = ?5 WHERE subject = ?1 AND category = ?2 AND version = ?3 AND sealed = ?4";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, Vec<u8>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl ResealStore for SqliteStore {
    fn items_bound(&self) -> Result<bool, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(ITEMS_BOUND, [], |_| Ok(())).optional().during("reading the items-bound mark")?.is_some())
        })
    }

    fn sealed_items(&self, after: Option<&ItemKey>, limit: usize) -> Result<Vec<SealedItem>, StoreError> {
        const OP: &str = "paging sealed items";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|conn| {
            let mut out = Vec::new();
            match after {
                None => {
                    let mut stmt = conn.prepare_cached(FIRST_PAGE).during(OP)?;
                    for r in stmt.query_map(params![limit], row).during(OP)? {
                        out.push(r.during(OP)?);
                    }
                }
                Some(k) => {
                    let mut stmt = conn.prepare_cached(NEXT_PAGE).during(OP)?;
                    let args = params![k.subject.as_str(), k.category, k.version, limit];
                    for r in stmt.query_map(args, row).during(OP)? {
                        out.push(r.during(OP)?);
                    }
                }
            }
            Ok(out)
        })?;
        rows.into_iter()
            .map(|(subject, category, version, sealed)| {
                let subject = SubjectId::parse(&subject).map_err(|_| corrupt("a stored subject id is not valid"))?;
                let version = u32::try_from(version).map_err(|_| corrupt("an item version is out of range"))?;
                Ok(SealedItem { key: ItemKey { subject, category, version }, sealed })
            })
            .collect()
    }

    fn reseal_items(&self, batch: &[Reseal], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        const OP: &str = "re-sealing items";
        self.write(OP, |tx, head| {
            let mut stmt = tx.prepare_cached(RESEAL).during(OP)?;
            let mut replaced = 0u64;
            for r in batch {
                let k = &r.key;
                replaced +=
                    stmt.execute(params![k.subject.as_str(), k.category, k.version, r.old, r.new]).during(OP)? as u64;
            }
            append(tx, head, audit)?;
            Ok(replaced)
        })
    }

    fn mark_items_bound(&self, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        const OP: &str = "recording that items are bound";
        let now = audit.first().map_or(0, |e| e.at.0);
        self.write(OP, |tx, head| {
            if tx.execute(MARK_BOUND, params![now]).during(OP)? == 0 {
                return Ok(false);
            }
            append(tx, head, audit)?;
            Ok(true)
        })
    }
}
