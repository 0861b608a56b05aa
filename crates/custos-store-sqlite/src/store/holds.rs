//! [`HoldStore`] for [`SqliteStore`]: legal holds in `legal_holds` and the
//! item versions they keep through an erasure in `held_items` (migration
//! 0012). Every write runs in the one immediate write transaction, so an
//! erasure's check of its held copy and a release cannot interleave.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_store::{HeldCopy, HeldItem, HeldKeys, HoldRecord, HoldStore, StoreError, held_copy_matches};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use time::Date;

use super::{append, or_exists};
use crate::SqliteStore;
use crate::error::{Context, corrupt};

/// The columns of `legal_holds`, in the order [`hold_from_row`] reads them.
macro_rules! hold_columns {
    () => {
        "id, subject, kind, categories, placed_at, until_day, released_at, sealed"
    };
}

/// The columns of `held_items` but `subject`, in the order [`held_item_from_row`] reads them.
macro_rules! held_item_columns {
    () => {
        "hold, category, version, source, purpose, collected_at, notice_version, sealed"
    };
}

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
    pub(super) const INSERT_HOLD: &str =
        concat!("INSERT INTO legal_holds (", hold_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    pub(super) const HOLD: &str = concat!("SELECT ", hold_columns!(), " FROM legal_holds WHERE id = ?1");
    pub(super) const HOLDS: &str =
        concat!("SELECT ", hold_columns!(), " FROM legal_holds WHERE subject = ?1 ORDER BY placed_at, id");
    pub(super) const HOLD_STATE: &str = "SELECT subject, released_at FROM legal_holds WHERE id = ?1";
    pub(super) const RELEASE_HOLD: &str = "UPDATE legal_holds SET released_at = ?2 WHERE id = ?1";
    pub(super) const DELETE_HELD_ITEMS: &str = "DELETE FROM held_items WHERE hold = ?1";
    pub(super) const HELD_ITEMS: &str =
        concat!("SELECT ", held_item_columns!(), " FROM held_items WHERE hold = ?1 ORDER BY category, version");
    pub(super) const INSERT_HELD_ITEM: &str = concat!(
        "INSERT INTO held_items (subject, ",
        held_item_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    /// Every version stored for a subject (by id) in one category.
    pub(super) const STORED_VERSIONS: &str = "SELECT version FROM items WHERE subject = ?1 AND category = ?2";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[
        INSERT_HOLD,
        HOLD,
        HOLDS,
        HOLD_STATE,
        RELEASE_HOLD,
        DELETE_HELD_ITEMS,
        HELD_ITEMS,
        INSERT_HELD_ITEM,
        STORED_VERSIONS,
    ];
}

fn day(value: i64) -> Result<Date, StoreError> {
    custos_store::stored_day(value, "a legal hold's review day")
}

fn version(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt("an item version is out of range"))
}

fn hold_from_row(row: &Row<'_>) -> Result<HoldRecord, StoreError> {
    const OP: &str = "reading a legal hold";
    let categories: String = row.get(3).during(OP)?;
    Ok(HoldRecord {
        id: row.get(0).during(OP)?,
        subject: row.get(1).during(OP)?,
        kind: row.get(2).during(OP)?,
        categories: serde_json::from_str(&categories)
            .map_err(|_| corrupt("a legal hold's categories are not a JSON list of names"))?,
        placed_at: Timestamp(row.get(4).during(OP)?),
        until: row.get::<_, Option<i64>>(5).during(OP)?.map(day).transpose()?,
        released_at: row.get::<_, Option<i64>>(6).during(OP)?.map(Timestamp),
        sealed: row.get(7).during(OP)?,
    })
}

fn held_item_from_row(row: &Row<'_>) -> Result<HeldItem, StoreError> {
    const OP: &str = "reading a held item";
    Ok(HeldItem {
        hold: row.get(0).during(OP)?,
        category: row.get(1).during(OP)?,
        version: version(row.get(2).during(OP)?)?,
        source: row.get(3).during(OP)?,
        purpose: row.get(4).during(OP)?,
        collected_at: Timestamp(row.get(5).during(OP)?),
        notice_version: row.get(6).during(OP)?,
        sealed: row.get(7).during(OP)?,
    })
}

/// Whether the hold exists, and if so its subject and when it was released.
fn hold_state(conn: &Connection, id: &str) -> Result<Option<(String, Option<i64>)>, StoreError> {
    conn.prepare_cached(sql::HOLD_STATE)
        .and_then(|mut stmt| stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .during("looking up a legal hold")
}

/// Checks an erasure's held copy against what is stored for the subject `id`
/// (pseudonym `pseudonym`) and stores it: the erasure's first writes, inside
/// its transaction, after the subject was found live.
pub(super) fn keep_held(
    tx: &Transaction<'_>,
    id: &SubjectId,
    pseudonym: &str,
    held: &HeldCopy,
) -> Result<(), StoreError> {
    const OP: &str = "keeping the held items of an erased subject";
    if held.categories.is_empty() && held.items.is_empty() {
        return Ok(());
    }
    let mut stored = Vec::new();
    {
        let mut stmt = tx.prepare_cached(sql::STORED_VERSIONS).during(OP)?;
        for category in &held.categories {
            let mut rows = stmt.query(params![id.as_str(), category]).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                stored.push((category.clone(), version(row.get(0).during(OP)?)?));
            }
        }
    }
    if !held_copy_matches(held, &stored) {
        return Err(StoreError::HeldItemsChanged);
    }
    let mut checked: Vec<&str> = Vec::new();
    for item in &held.items {
        if checked.contains(&item.hold.as_str()) {
            continue;
        }
        match hold_state(tx, &item.hold)? {
            Some((subject, None)) if subject == pseudonym => checked.push(&item.hold),
            _ => return Err(StoreError::HoldNotFound),
        }
    }
    let mut insert = tx.prepare_cached(sql::INSERT_HELD_ITEM).during(OP)?;
    for item in &held.items {
        insert
            .execute(params![
                pseudonym,
                item.hold,
                item.category,
                i64::from(item.version),
                item.source,
                item.purpose,
                item.collected_at.0,
                item.notice_version,
                item.sealed,
            ])
            .during(OP)?;
    }
    Ok(())
}

impl HoldStore for SqliteStore {
    fn place_hold(&self, hold: &HoldRecord, audit: &[AuditEvent], held: &HeldKeys<'_>) -> Result<(), StoreError> {
        const OP: &str = "placing a legal hold";
        let categories = serde_json::to_string(&hold.categories)
            .map_err(|_| StoreError::Backend("encoding a legal hold's categories failed".into()))?;
        self.write_keyed(OP, held, |tx, head| {
            let mut insert = tx.prepare_cached(sql::INSERT_HOLD).during(OP)?;
            or_exists(
                insert.execute(params![
                    hold.id,
                    hold.subject,
                    hold.kind,
                    categories,
                    hold.placed_at.0,
                    hold.until.map(Date::to_julian_day),
                    hold.released_at.map(|t| t.0),
                    hold.sealed,
                ]),
                StoreError::HoldExists,
                OP,
            )?;
            append(tx, head, audit)
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
        self.write_keyed(OP, held, |tx, head| {
            match hold_state(tx, id)? {
                None => return Err(StoreError::HoldNotFound),
                Some((_, Some(_))) => return Err(StoreError::HoldReleased),
                Some((_, None)) => {}
            }
            tx.prepare_cached(sql::RELEASE_HOLD).and_then(|mut stmt| stmt.execute(params![id, at.0])).during(OP)?;
            let deleted =
                tx.prepare_cached(sql::DELETE_HELD_ITEMS).and_then(|mut stmt| stmt.execute([id])).during(OP)?;
            append(tx, head, audit)?;
            Ok(deleted as u64)
        })
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRecord>, StoreError> {
        const OP: &str = "reading a legal hold";
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::HOLD).during(OP)?;
            let row = stmt.query_row([id], |row| Ok(hold_from_row(row))).optional().during(OP)?;
            row.transpose()
        })
    }

    fn holds(&self, subject_pseudonym: &str) -> Result<Vec<HoldRecord>, StoreError> {
        const OP: &str = "listing legal holds";
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::HOLDS).during(OP)?;
            let mut rows = stmt.query([subject_pseudonym]).during(OP)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during(OP)? {
                out.push(hold_from_row(row)?);
            }
            Ok(out)
        })
    }

    fn held_items(&self, hold: &str) -> Result<Vec<HeldItem>, StoreError> {
        const OP: &str = "reading held items";
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::HELD_ITEMS).during(OP)?;
            let mut rows = stmt.query([hold]).during(OP)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during(OP)? {
                out.push(held_item_from_row(row)?);
            }
            Ok(out)
        })
    }
}
