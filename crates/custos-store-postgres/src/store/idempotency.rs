//! [`IdempotencyStore`] for [`PostgresStore`]: recorded responses to
//! requests with an idempotency key, and the subjects each one names.

use custos_core::time::Timestamp;
use custos_store::{IdempotencyStore, IdempotentResponse, StoreError};
use postgres::{Row, Transaction};

use super::Session;
use crate::PostgresStore;
use crate::error::{Context, corrupt};

/// The statements of this capability.
pub(super) mod sql {
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
    pub(super) const INSERT_IDEMPOTENT_RESPONSE: &str = "INSERT INTO idempotency (key, fingerprint, status, body, \
         created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING";
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

/// Deletes every idempotency record made before `before`; returns how many.
fn prune_idempotency(tx: &mut Session<'_, Transaction<'_>>, before: Timestamp) -> Result<u64, StoreError> {
    const OP: &str = "pruning idempotent responses";
    tx.execute(sql::PRUNE_IDEMPOTENT_SUBJECTS, &[&before.0]).during(OP)?;
    tx.execute(sql::PRUNE_IDEMPOTENT_RESPONSES, &[&before.0]).during(OP)
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
