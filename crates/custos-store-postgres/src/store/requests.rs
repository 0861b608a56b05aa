//! [`RequestStore`] for [`PostgresStore`]: rights requests in `requests`
//! (migration 0010). A new request is recorded under a transaction-scoped
//! advisory lock on its subject and kind, taken before the open requests its
//! maker sees are read, so two submissions racing each other serialize and
//! the second sees the first; a change locks its row.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use custos_store::{HeldKeys, NewRequest, RequestChange, RequestFilter, RequestRecord, RequestStore, StoreError};
use postgres::{GenericClient, Row};
use time::Date;

use super::{Session, append_if_any};
use crate::PostgresStore;
use crate::error::Context;

/// The columns of `requests`, in the order [`request_from_row`] reads them.
macro_rules! request_columns {
    () => {
        "id, subject, kind, jurisdiction, status, received, due, created_at, retain_until, body, sealed"
    };
}

/// The statements of this capability.
pub(super) mod sql {
    /// Serializes the writers of one subject's requests of one kind until
    /// the transaction ends. The key hashes the kind seeded with the hash of
    /// the subject, so no two (subject, kind) pairs are confused by
    /// concatenation (a collision of hashes only makes two writers wait).
    pub(super) const LOCK_SUBJECT_KIND: &str =
        "SELECT pg_advisory_xact_lock(hashtextextended($2::text, hashtextextended($1::text, 0)))";
    pub(super) const OPEN_REQUESTS: &str = concat!(
        "SELECT ",
        request_columns!(),
        " FROM requests WHERE subject = $1 AND kind = $2 \
         AND status NOT IN ('completed', 'denied', 'withdrawn') ORDER BY due, id"
    );
    pub(super) const INSERT_REQUEST: &str = concat!(
        "INSERT INTO requests (",
        request_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    pub(super) const REQUEST: &str = concat!("SELECT ", request_columns!(), " FROM requests WHERE id = $1");
    pub(super) const LOCK_REQUEST: &str =
        concat!("SELECT ", request_columns!(), " FROM requests WHERE id = $1 FOR UPDATE");
    pub(super) const UPDATE_REQUEST: &str = "UPDATE requests SET jurisdiction = $2, status = $3, received = $4, \
         due = $5, created_at = $6, retain_until = $7, body = $8, sealed = $9 WHERE id = $1";
    // One statement for every filter: an unset condition is NULL, no
    // statuses an empty array.
    pub(super) const REQUESTS: &str = concat!(
        "SELECT ",
        request_columns!(),
        " FROM requests WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR kind = $2) \
         AND (cardinality($3::text[]) = 0 OR status = ANY($3)) AND ($4::bigint IS NULL OR due < $4) \
         AND ($5::bigint IS NULL OR received >= $5) AND ($6::bigint IS NULL OR received < $6) \
         AND ($7::bigint IS NULL OR (due, id) > ($7, $8::text)) ORDER BY due, id LIMIT $9"
    );
    pub(super) const PRUNE_REQUESTS: &str = "DELETE FROM requests WHERE retain_until < $1";
}

fn day(value: i64) -> Result<Date, StoreError> {
    custos_store::stored_day(value, "a request's day")
}

fn request_from_row(row: &Row) -> Result<RequestRecord, StoreError> {
    const OP: &str = "reading a request";
    Ok(RequestRecord {
        id: row.try_get(0).during(OP)?,
        subject: row.try_get(1).during(OP)?,
        kind: row.try_get(2).during(OP)?,
        jurisdiction: row.try_get(3).during(OP)?,
        status: row.try_get(4).during(OP)?,
        received: day(row.try_get(5).during(OP)?)?,
        due: day(row.try_get(6).during(OP)?)?,
        created_at: Timestamp(row.try_get(7).during(OP)?),
        retain_until: row.try_get::<_, Option<i64>>(8).during(OP)?.map(Timestamp),
        body: row.try_get(9).during(OP)?,
        sealed: row.try_get(10).during(OP)?,
    })
}

fn records(rows: &[Row]) -> Result<Vec<RequestRecord>, StoreError> {
    rows.iter().map(request_from_row).collect()
}

fn load<C: GenericClient>(
    conn: &mut Session<'_, C>,
    sql: &'static str,
    id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    let row = conn.query_opt(sql, &[&id]).during("reading a request")?;
    row.as_ref().map(request_from_row).transpose()
}

impl RequestStore for PostgresStore {
    fn insert_request(
        &self,
        subject: &str,
        kind: &str,
        make: &mut NewRequest<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "recording a request";
        self.write(OP, |tx| {
            super::identity::check_held(tx, held)?;
            tx.execute(sql::LOCK_SUBJECT_KIND, &[&subject, &kind]).during(OP)?;
            // READ COMMITTED: this statement's snapshot is taken after the
            // lock, so it sees whatever the previous holder committed.
            let open = records(&tx.query(sql::OPEN_REQUESTS, &[&subject, &kind]).during(OP)?)?;
            let Some((record, audit)) = make(&open) else {
                return Ok(false);
            };
            tx.execute(
                sql::INSERT_REQUEST,
                &[
                    &record.id,
                    &subject,
                    &kind,
                    &record.jurisdiction,
                    &record.status,
                    &i64::from(record.received.to_julian_day()),
                    &i64::from(record.due.to_julian_day()),
                    &record.created_at.0,
                    &record.retain_until.map(|t| t.0),
                    &record.body,
                    &record.sealed,
                ],
            )
            .or_exists(StoreError::RequestExists, OP)?;
            append_if_any(tx, &audit)?;
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
        self.write(OP, |tx| {
            super::identity::check_held(tx, held)?;
            let stored = load(tx, sql::LOCK_REQUEST, id)?.ok_or(StoreError::RequestNotFound)?;
            let Some((mut record, audit)) = change(&stored) else {
                return Ok(stored);
            };
            record.id = stored.id;
            record.subject = stored.subject;
            record.kind = stored.kind;
            tx.execute(
                sql::UPDATE_REQUEST,
                &[
                    &record.id,
                    &record.jurisdiction,
                    &record.status,
                    &i64::from(record.received.to_julian_day()),
                    &i64::from(record.due.to_julian_day()),
                    &record.created_at.0,
                    &record.retain_until.map(|t| t.0),
                    &record.body,
                    &record.sealed,
                ],
            )
            .during(OP)?;
            append_if_any(tx, &audit)?;
            Ok(record)
        })
    }

    fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.read(|conn| load(conn, sql::REQUEST, id))
    }

    fn requests(&self, filter: &RequestFilter<'_>) -> Result<Vec<RequestRecord>, StoreError> {
        const OP: &str = "listing requests";
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let julian = |d: Date| i64::from(d.to_julian_day());
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = self.read(|conn| {
            conn.query(
                sql::REQUESTS,
                &[
                    &filter.subject,
                    &filter.kind,
                    &filter.statuses,
                    &filter.due_before.map(julian),
                    &filter.received_from.map(julian),
                    &filter.received_before.map(julian),
                    &filter.after.map(|(due, _)| julian(due)),
                    &filter.after.map(|(_, id)| id),
                    &limit,
                ],
            )
            .during(OP)
        })?;
        records(&rows)
    }

    fn prune_requests(&self, before: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError> {
        const OP: &str = "deleting request records past their retention";
        self.write(OP, |tx| {
            let deleted = tx.execute(sql::PRUNE_REQUESTS, &[&before.0]).during(OP)?;
            if deleted > 0 {
                append_if_any(tx, audit)?;
            }
            Ok(deleted)
        })
    }
}
