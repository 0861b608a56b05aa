//! [`RequestStore`] for [`SqliteStore`]: rights requests in `requests`
//! (migration 0011). Every write runs in the one immediate write
//! transaction, so a new request and the open requests its maker saw cannot
//! be overtaken by another writer.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use custos_store::{HeldKeys, NewRequest, RequestChange, RequestFilter, RequestRecord, RequestStore, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::Date;

use super::{append, or_exists};
use crate::SqliteStore;
use crate::error::Context;

/// The columns of `requests`, in the order [`request_from_row`] reads them.
macro_rules! request_columns {
    () => {
        "id, subject, kind, jurisdiction, status, received, due, created_at, retain_until, body, sealed"
    };
}

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
    pub(super) const INSERT_REQUEST: &str = concat!(
        "INSERT INTO requests (",
        request_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    );
    pub(super) const OPEN_REQUESTS: &str = concat!(
        "SELECT ",
        request_columns!(),
        " FROM requests WHERE subject = ?1 AND kind = ?2 \
         AND status NOT IN ('completed', 'denied', 'withdrawn') ORDER BY due, id"
    );
    pub(super) const REQUEST: &str = concat!("SELECT ", request_columns!(), " FROM requests WHERE id = ?1");
    pub(super) const UPDATE_REQUEST: &str = "UPDATE requests SET jurisdiction = ?2, status = ?3, received = ?4, \
         due = ?5, created_at = ?6, retain_until = ?7, body = ?8, sealed = ?9 WHERE id = ?1";
    // One statement for every filter: an unset condition is NULL. Statuses
    // come as `,a,b,` (no status contains a comma).
    pub(super) const REQUESTS: &str = concat!(
        "SELECT ",
        request_columns!(),
        " FROM requests WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR kind = ?2) \
         AND (?3 IS NULL OR instr(?3, ',' || status || ',') > 0) AND (?4 IS NULL OR due < ?4) \
         AND (?5 IS NULL OR received >= ?5) AND (?6 IS NULL OR received < ?6) \
         AND (?7 IS NULL OR (due, id) > (?7, ?8)) ORDER BY due, id LIMIT ?9"
    );
    pub(super) const PRUNE_REQUESTS: &str = "DELETE FROM requests WHERE retain_until < ?1";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] =
        &[INSERT_REQUEST, OPEN_REQUESTS, REQUEST, UPDATE_REQUEST, REQUESTS, PRUNE_REQUESTS];
}

fn day(value: i64) -> Result<Date, StoreError> {
    custos_store::stored_day(value, "a request's day")
}

fn request_from_row(row: &Row<'_>) -> Result<RequestRecord, StoreError> {
    const OP: &str = "reading a request";
    Ok(RequestRecord {
        id: row.get(0).during(OP)?,
        subject: row.get(1).during(OP)?,
        kind: row.get(2).during(OP)?,
        jurisdiction: row.get(3).during(OP)?,
        status: row.get(4).during(OP)?,
        received: day(row.get(5).during(OP)?)?,
        due: day(row.get(6).during(OP)?)?,
        created_at: Timestamp(row.get(7).during(OP)?),
        retain_until: row.get::<_, Option<i64>>(8).during(OP)?.map(Timestamp),
        body: row.get(9).during(OP)?,
        sealed: row.get(10).during(OP)?,
    })
}

fn collect(
    conn: &Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
    op: &'static str,
) -> Result<Vec<RequestRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).during(op)?;
    let mut rows = stmt.query(params).during(op)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().during(op)? {
        out.push(request_from_row(row)?);
    }
    Ok(out)
}

fn load(conn: &Connection, id: &str) -> Result<Option<RequestRecord>, StoreError> {
    const OP: &str = "reading a request";
    let mut stmt = conn.prepare_cached(sql::REQUEST).during(OP)?;
    let row = stmt.query_row([id], |row| Ok(request_from_row(row))).optional().during(OP)?;
    row.transpose()
}

impl RequestStore for SqliteStore {
    fn insert_request(
        &self,
        subject: &str,
        kind: &str,
        make: &mut NewRequest<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "recording a request";
        self.write_keyed(OP, held, |tx, head| {
            let open = collect(tx, sql::OPEN_REQUESTS, params![subject, kind], OP)?;
            let Some((record, audit)) = make(&open) else {
                return Ok(false);
            };
            let mut insert = tx.prepare_cached(sql::INSERT_REQUEST).during(OP)?;
            or_exists(
                insert.execute(params![
                    record.id,
                    subject,
                    kind,
                    record.jurisdiction,
                    record.status,
                    record.received.to_julian_day(),
                    record.due.to_julian_day(),
                    record.created_at.0,
                    record.retain_until.map(|t| t.0),
                    record.body,
                    record.sealed,
                ]),
                StoreError::RequestExists,
                OP,
            )?;
            append(tx, head, &audit)?;
            Ok(true)
        })
    }

    fn update_request(
        &self,
        id: &str,
        change: &mut RequestChange<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<RequestRecord, StoreError> {
        const OP: &str = "changing a request";
        self.write_keyed(OP, held, |tx, head| {
            let stored = load(tx, id)?.ok_or(StoreError::RequestNotFound)?;
            let Some((mut record, audit)) = change(&stored) else {
                return Ok(stored);
            };
            record.id = stored.id;
            record.subject = stored.subject;
            record.kind = stored.kind;
            tx.prepare_cached(sql::UPDATE_REQUEST)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        record.id,
                        record.jurisdiction,
                        record.status,
                        record.received.to_julian_day(),
                        record.due.to_julian_day(),
                        record.created_at.0,
                        record.retain_until.map(|t| t.0),
                        record.body,
                        record.sealed,
                    ])
                })
                .during(OP)?;
            append(tx, head, &audit)?;
            Ok(record)
        })
    }

    fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.read(|conn| load(conn, id))
    }

    fn requests(&self, filter: &RequestFilter<'_>) -> Result<Vec<RequestRecord>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let statuses = (!filter.statuses.is_empty()).then(|| format!(",{},", filter.statuses.join(",")));
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            collect(
                conn,
                sql::REQUESTS,
                params![
                    filter.subject,
                    filter.kind,
                    statuses,
                    filter.due_before.map(Date::to_julian_day),
                    filter.received_from.map(Date::to_julian_day),
                    filter.received_before.map(Date::to_julian_day),
                    filter.after.map(|(due, _)| due.to_julian_day()),
                    filter.after.map(|(_, id)| id),
                    limit,
                ],
                "listing requests",
            )
        })
    }

    fn prune_requests(&self, before: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError> {
        const OP: &str = "deleting request records past their retention";
        self.write(OP, |tx, head| {
            let n = tx.prepare_cached(sql::PRUNE_REQUESTS).and_then(|mut stmt| stmt.execute([before.0])).during(OP)?;
            if n > 0 {
                append(tx, head, audit)?;
            }
            Ok(n as u64)
        })
    }
}
