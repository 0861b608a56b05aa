//! [`IdempotencyStore`] for [`SqliteStore`]: recorded responses to requests
//! with an idempotency key, and the subjects each one names.

use custos_core::time::Timestamp;
use custos_store::{IdempotencyStore, IdempotentResponse, StoreError};
use rusqlite::{Row, Transaction, params};

use super::or_exists;
use crate::SqliteStore;
use crate::error::{Context, corrupt};

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
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

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[
        IDEMPOTENT_RESPONSE,
        IDEMPOTENT_SUBJECTS,
        INSERT_IDEMPOTENT_RESPONSE,
        INSERT_IDEMPOTENT_SUBJECT,
        PRUNE_IDEMPOTENT_SUBJECTS,
        PRUNE_IDEMPOTENT_RESPONSES,
    ];
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
