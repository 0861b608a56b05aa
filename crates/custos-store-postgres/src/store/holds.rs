//! [`HoldStore`] for [`PostgresStore`]: legal holds in `legal_holds` and the
//! item versions they keep through an erasure in `held_items` (migration
//! 0011). A release locks its hold's row; an erasure share-locks the holds
//! its held copy names, so a hold cannot be released between the erasure's
//! check and its copy (the release waits, or the erasure sees it released).

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{HeldCopy, HeldItem, HeldKeys, HoldRecord, HoldStore, StoreError, held_copy_matches};
use postgres::{Row, Transaction};
use time::Date;

use super::{Session, append_if_any};
use crate::PostgresStore;
use crate::error::{Context, corrupt};

/// The columns of `legal_holds`, in the order [`hold_from_row`] reads them.
macro_rules! hold_columns {
    () => {
        "id, subject, kind, categories, placed_at, until_day, released_at, sealed"
    };
}

/// The statements of this capability.
pub(super) mod sql {
    pub(super) const INSERT_HOLD: &str =
        concat!("INSERT INTO legal_holds (", hold_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    pub(super) const HOLD: &str = concat!("SELECT ", hold_columns!(), " FROM legal_holds WHERE id = $1");
    pub(super) const HOLDS: &str =
        concat!("SELECT ", hold_columns!(), " FROM legal_holds WHERE subject = $1 ORDER BY placed_at, id");
    pub(super) const LOCK_HOLD: &str = "SELECT released_at FROM legal_holds WHERE id = $1 FOR UPDATE";
    /// Releases the hold and deletes what it kept, in one round trip; the number deleted.
    pub(super) const RELEASE_HOLD: &str = "WITH released AS (UPDATE legal_holds SET released_at = $2 WHERE id = $1), \
         gone AS (DELETE FROM held_items WHERE hold = $1 RETURNING 1) SELECT count(*) FROM gone";
    pub(super) const HELD_ITEMS: &str = "SELECT hold, category, version, source, purpose, collected_at, \
         notice_version, sealed FROM held_items WHERE hold = $1 ORDER BY category, version";
    /// The holds an erasure's copy names, share-locked until the transaction ends.
    pub(super) const LOCK_HOLDS: &str = "SELECT id, subject, released_at FROM legal_holds WHERE id = ANY($1) FOR SHARE";
    /// Every version stored for a subject (by id) in the categories `$2`.
    pub(super) const STORED_VERSIONS: &str =
        "SELECT category, version FROM items WHERE subject = $1 AND category = ANY($2)";
    pub(super) const INSERT_HELD_ITEMS: &str = "INSERT INTO held_items (subject, hold, category, version, source, \
         purpose, collected_at, notice_version, sealed) SELECT $1, * FROM UNNEST($2::text[], $3::text[], \
         $4::integer[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bytea[])";
}

fn day(value: i64) -> Result<Date, StoreError> {
    custos_store::stored_day(value, "a legal hold's review day")
}

fn version(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt("an item version is out of range"))
}

fn hold_from_row(row: &Row) -> Result<HoldRecord, StoreError> {
    const OP: &str = "reading a legal hold";
    let categories: &str = row.try_get(3).during(OP)?;
    Ok(HoldRecord {
        id: row.try_get(0).during(OP)?,
        subject: row.try_get(1).during(OP)?,
        kind: row.try_get(2).during(OP)?,
        categories: serde_json::from_str(categories)
            .map_err(|_| corrupt("a legal hold's categories are not a JSON list of names"))?,
        placed_at: Timestamp(row.try_get(4).during(OP)?),
        until: row.try_get::<_, Option<i64>>(5).during(OP)?.map(day).transpose()?,
        released_at: row.try_get::<_, Option<i64>>(6).during(OP)?.map(Timestamp),
        sealed: row.try_get(7).during(OP)?,
    })
}

fn held_item_from_row(row: &Row) -> Result<HeldItem, StoreError> {
    const OP: &str = "reading a held item";
    Ok(HeldItem {
        hold: row.try_get(0).during(OP)?,
        category: row.try_get(1).during(OP)?,
        version: version(row.try_get(2).during(OP)?)?,
        source: row.try_get(3).during(OP)?,
        purpose: row.try_get(4).during(OP)?,
        collected_at: Timestamp(row.try_get(5).during(OP)?),
        notice_version: row.try_get(6).during(OP)?,
        sealed: row.try_get(7).during(OP)?,
    })
}

/// Checks an erasure's held copy against what is stored for the subject `id`
/// (pseudonym `pseudonym`) and stores it: the erasure's first writes, inside
/// its transaction, once the subject's row is locked (so its items cannot
/// change meanwhile).
pub(super) fn keep_held(
    tx: &mut Session<'_, Transaction<'_>>,
    id: &SubjectId,
    pseudonym: &str,
    held: &HeldCopy,
) -> Result<(), StoreError> {
    const OP: &str = "keeping the held items of an erased subject";
    if held.categories.is_empty() && held.items.is_empty() {
        return Ok(());
    }
    let rows = tx.query(sql::STORED_VERSIONS, &[&id.as_str(), &held.categories]).during(OP)?;
    let stored = rows
        .iter()
        .map(|row| Ok((row.try_get::<_, String>(0).during(OP)?, version(row.try_get(1).during(OP)?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    if !held_copy_matches(held, &stored) {
        return Err(StoreError::HeldItemsChanged);
    }
    if held.items.is_empty() {
        return Ok(());
    }
    let mut named: Vec<&str> = held.items.iter().map(|i| i.hold.as_str()).collect();
    named.sort_unstable();
    named.dedup();
    let holds = tx.query(sql::LOCK_HOLDS, &[&named]).during(OP)?;
    let mut active = 0;
    for row in &holds {
        let subject: &str = row.try_get(1).during(OP)?;
        let released: Option<i64> = row.try_get(2).during(OP)?;
        if subject == pseudonym && released.is_none() {
            active += 1;
        }
    }
    if active != named.len() {
        return Err(StoreError::HoldNotFound);
    }
    let mut columns = HeldColumns::default();
    for item in &held.items {
        columns.hold.push(item.hold.as_str());
        columns.category.push(item.category.as_str());
        columns.version.push(i32::try_from(item.version).map_err(|_| corrupt("an item version is out of range"))?);
        columns.source.push(item.source.as_str());
        columns.purpose.push(item.purpose.as_str());
        columns.collected_at.push(item.collected_at.0);
        columns.notice_version.push(item.notice_version.as_str());
        columns.sealed.push(item.sealed.as_slice());
    }
    let HeldColumns { hold, category, version, source, purpose, collected_at, notice_version, sealed } = columns;
    tx.execute(
        sql::INSERT_HELD_ITEMS,
        &[&pseudonym, &hold, &category, &version, &source, &purpose, &collected_at, &notice_version, &sealed],
    )
    .during(OP)?;
    Ok(())
}

/// Held items as columns, for one multi-row insert.
#[derive(Default)]
struct HeldColumns<'a> {
    hold: Vec<&'a str>,
    category: Vec<&'a str>,
    version: Vec<i32>,
    source: Vec<&'a str>,
    purpose: Vec<&'a str>,
    collected_at: Vec<i64>,
    notice_version: Vec<&'a str>,
    sealed: Vec<&'a [u8]>,
}

impl HoldStore for PostgresStore {
    fn place_hold(&self, hold: &HoldRecord, audit: &[AuditEvent], held: &HeldKeys<'_>) -> Result<(), StoreError> {
        const OP: &str = "placing a legal hold";
        let categories = serde_json::to_string(&hold.categories)
            .map_err(|_| StoreError::Backend("encoding a legal hold's categories failed".into()))?;
        self.write(OP, |tx| {
            super::identity::check_held(tx, held)?;
            tx.execute(
                sql::INSERT_HOLD,
                &[
                    &hold.id,
                    &hold.subject,
                    &hold.kind,
                    &categories,
                    &hold.placed_at.0,
                    &hold.until.map(|d| i64::from(d.to_julian_day())),
                    &hold.released_at.map(|t| t.0),
                    &hold.sealed,
                ],
            )
            .or_exists(StoreError::HoldExists, OP)?;
            append_if_any(tx, audit)
        })
    }

    fn release_hold(
        &self,
        id: &str,
        at: Timestamp,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<u64, StoreError> {
        const OP: &str = "releasing a legal hold";
        self.write(OP, |tx| {
            super::identity::check_held(tx, held)?;
            let Some(row) = tx.query_opt(sql::LOCK_HOLD, &[&id]).during(OP)? else {
                return Err(StoreError::HoldNotFound);
            };
            if row.try_get::<_, Option<i64>>(0).during(OP)?.is_some() {
                return Err(StoreError::HoldReleased);
            }
            let counted = tx.query_opt(sql::RELEASE_HOLD, &[&id, &at.0]).during(OP)?;
            let deleted: i64 = match counted {
                Some(row) => row.try_get(0).during(OP)?,
                None => 0,
            };
            append_if_any(tx, audit)?;
            Ok(u64::try_from(deleted).unwrap_or(0))
        })
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRecord>, StoreError> {
        let row = self.read(|conn| conn.query_opt(sql::HOLD, &[&id]).during("reading a legal hold"))?;
        row.as_ref().map(hold_from_row).transpose()
    }

    fn holds(&self, subject_pseudonym: &str) -> Result<Vec<HoldRecord>, StoreError> {
        let rows = self.read(|conn| conn.query(sql::HOLDS, &[&subject_pseudonym]).during("listing legal holds"))?;
        rows.iter().map(hold_from_row).collect()
    }

    fn held_items(&self, hold: &str) -> Result<Vec<HeldItem>, StoreError> {
        let rows = self.read(|conn| conn.query(sql::HELD_ITEMS, &[&hold]).during("reading held items"))?;
        rows.iter().map(held_item_from_row).collect()
    }
}
