//! [`Store`] for [`PostgresStore`]: the SQL of every operation, one module
//! per capability as in `custos_store` (each with its statements); this one
//! holds what they share: transactions, prepared statements, and appending
//! to the audit chain.
//!
//! Each mutating call runs in one transaction (READ COMMITTED) that also
//! appends its audit entries: it locks what it changes (the subject rows, by
//! id), then the chain head row, appends after the head it read under that
//! lock, moves the head and commits. Any error drops the transaction, which
//! rolls it back. Rows are written with multi-row statements over arrays
//! (`UNNEST`), never one statement per item or entry.

use std::collections::HashMap;

use custos_core::audit::{AuditEvent, ChainHead};
use custos_store::StoreError;
use postgres::types::{BorrowToSql, ToSql};
use postgres::{Client, GenericClient, IsolationLevel, Row, RowIter, Statement, Transaction};

use crate::error::{Context, corrupt};
use crate::{Conn, PostgresStore};

/// The columns of `subjects`, in the order [`subjects::subject_from_row`] reads them.
macro_rules! subject_columns {
    () => {
        "id, jurisdiction, metadata, created_at, erased_at, wrapped_key, state::text"
    };
}

mod audit;
mod checkpoints;
mod holds;
mod idempotency;
mod identity;
mod items;
mod keys;
mod requests;
mod reseal;
mod subjects;

/// The statements every capability shares: the audit chain's head and appending to it.
mod sql {
    pub(super) const LOCK_AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
    pub(super) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (seq, prev_hash, body, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::bytea[])";
    pub(super) const MOVE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
}

impl PostgresStore {
    /// Runs `f` in one read-write transaction and commits it.
    fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Session<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| {
            let mut tx = client.transaction().during(operation)?;
            let value = f(&mut Session { db: &mut tx, statements })?;
            tx.commit().during(operation)?;
            Ok(value)
        })
    }

    /// Runs `f` in one read-only REPEATABLE READ transaction: one snapshot for all it reads.
    fn snapshot<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Session<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .during(operation)?;
            let value = f(&mut Session { db: &mut tx, statements })?;
            tx.commit().during(operation)?;
            Ok(value)
        })
    }

    /// Runs `f` on a connection, outside any explicit transaction.
    fn read<T>(&self, f: impl FnOnce(&mut Session<'_, Client>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_client(|Conn { client, statements }| f(&mut Session { db: client, statements }))
    }
}

/// A connection or a transaction on it, with the connection's prepared statements.
struct Session<'a, C> {
    db: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> Session<'_, C> {
    /// The statement for `sql`, prepared on this connection the first time it is asked for.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.db.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.query(&statement, params)
    }

    fn query_opt(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.query_opt(&statement, params)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.db.execute(&statement, params)
    }

    fn query_raw<P, I>(&mut self, sql: &'static str, params: I) -> Result<RowIter<'_>, postgres::Error>
    where
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let statement = self.prepared(sql)?;
        self.db.query_raw(&statement, params)
    }
}

/// Appends `events` after the chain head, which it locks until the
/// transaction ends, and records the new head. Returns the new head.
fn append(tx: &mut Session<'_, Transaction<'_>>, events: &[AuditEvent]) -> Result<ChainHead, StoreError> {
    let heads = append_groups(tx, &[events])?;
    heads.into_iter().next().ok_or_else(|| corrupt("no audit head after appending"))
}

/// Appends several callers' events in order under one lock of the head, with
/// one insert; returns the head just after each group.
fn append_groups(
    tx: &mut Session<'_, Transaction<'_>>,
    groups: &[&[AuditEvent]],
) -> Result<Vec<ChainHead>, StoreError> {
    let row = tx.query_opt(sql::LOCK_AUDIT_HEAD, &[]).during("locking the audit head")?;
    let mut head = head_from_row(row)?;
    let total: usize = groups.iter().map(|g| g.len()).sum();
    let mut heads = Vec::with_capacity(groups.len());
    if total == 0 {
        heads.resize(groups.len(), head);
        return Ok(heads);
    }
    let mut seqs = Vec::with_capacity(total);
    let mut prevs = Vec::with_capacity(total);
    let mut bodies = Vec::with_capacity(total);
    let mut hashes = Vec::with_capacity(total);
    for group in groups {
        for event in *group {
            let entry = head.append(event.to_body());
            seqs.push(i64::try_from(entry.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?);
            prevs.push(entry.prev_hash.to_vec());
            bodies.push(entry.body);
            hashes.push(entry.hash.to_vec());
        }
        heads.push(head);
    }
    tx.execute(sql::INSERT_AUDIT, &[&seqs, &prevs, &bodies, &hashes]).during("appending audit entries")?;
    let seq = i64::try_from(head.seq).map_err(|_| corrupt("the audit sequence number overflowed"))?;
    tx.execute(sql::MOVE_AUDIT_HEAD, &[&seq, &&head.hash[..]]).during("moving the audit head")?;
    Ok(heads)
}

/// Appends `events` unless there are none (then the head is not even locked).
fn append_if_any(tx: &mut Session<'_, Transaction<'_>>, events: &[AuditEvent]) -> Result<(), StoreError> {
    if !events.is_empty() {
        append(tx, events)?;
    }
    Ok(())
}

fn head_from_row(row: Option<Row>) -> Result<ChainHead, StoreError> {
    let Some(row) = row else {
        return Err(corrupt("the audit head row is missing"));
    };
    let seq: i64 = row.try_get(0).during("reading the audit head")?;
    let hash: Vec<u8> = row.try_get(1).during("reading the audit head")?;
    Ok(ChainHead {
        seq: u64::try_from(seq).map_err(|_| corrupt("the audit head has a negative sequence number"))?,
        hash: hash32(hash)?,
    })
}

fn load_head<C: GenericClient>(conn: &mut Session<'_, C>) -> Result<ChainHead, StoreError> {
    let row = conn.query_opt(sql::AUDIT_HEAD, &[]).during("reading the audit head")?;
    head_from_row(row)
}

fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| corrupt("an audit hash is not 32 bytes"))
}
