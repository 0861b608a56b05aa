//! [`CheckpointStore`] for [`PostgresStore`]: signed checkpoints of the audit
//! chain in `audit_checkpoints` (migration 0005).

use custos_core::audit::{ChainBreak, ChainHead};
use custos_core::audit_checkpoint::AuditCheckpoint;
use custos_core::time::Timestamp;
use custos_store::{ChainItem, CheckpointStore, StoreError};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Row, Statement};

use super::load_head;
use crate::error::{Context, corrupt};
use crate::{Conn, PostgresStore};

/// The columns of `audit_checkpoints`, in the order [`checkpoint_from_row`] reads them.
macro_rules! checkpoint_columns {
    () => {
        "seq, key_id, head, at, signature"
    };
}

const INSERT_CHECKPOINT: &str = concat!(
    "INSERT INTO audit_checkpoints (",
    checkpoint_columns!(),
    ") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq, key_id) DO NOTHING"
);
const CHECKPOINTS: &str = concat!("SELECT ", checkpoint_columns!(), " FROM audit_checkpoints ORDER BY seq, key_id");
const LATEST_CHECKPOINT: &str =
    concat!("SELECT ", checkpoint_columns!(), " FROM audit_checkpoints ORDER BY seq DESC, at DESC, key_id LIMIT 1");

/// The chain and its checkpoints in one ordered stream: an entry's row has
/// no key id (NULLS FIRST: it comes before the checkpoints of its seq). Both
/// sides are read in primary key order and merged (`Merge Append`); only the
/// rows of one seq are sorted by key id.
const CHAIN_WITH_CHECKPOINTS: &str = "SELECT seq, NULL::text COLLATE \"C\", prev_hash, body, hash, NULL::bigint, \
     NULL::bytea FROM audit UNION ALL SELECT seq, key_id, NULL, NULL, head, at, signature FROM audit_checkpoints \
     ORDER BY 1, 2 NULLS FIRST";

/// The statement for `sql`, prepared on this connection the first time.
fn prepared(conn: &mut Conn, sql: &'static str) -> Result<Statement, postgres::Error> {
    if let Some(statement) = conn.statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = conn.client.prepare(sql)?;
    conn.statements.insert(sql, statement.clone());
    Ok(statement)
}

fn query(conn: &mut Conn, sql: &'static str, what: &'static str) -> Result<Vec<AuditCheckpoint>, StoreError> {
    let statement = prepared(conn, sql).during(what)?;
    let rows = conn.client.query(&statement, &[]).during(what)?;
    rows.iter().map(checkpoint_from_row).collect()
}

fn checkpoint_from_row(row: &Row) -> Result<AuditCheckpoint, StoreError> {
    let what = "reading a checkpoint";
    let seq: i64 = row.try_get(0).during(what)?;
    let head: Vec<u8> = row.try_get(2).during(what)?;
    Ok(AuditCheckpoint {
        seq: u64::try_from(seq).map_err(|_| corrupt("a checkpoint has a negative sequence number"))?,
        key_id: row.try_get(1).during(what)?,
        head: head.try_into().map_err(|_| corrupt("a checkpoint's head hash is not 32 bytes"))?,
        at: Timestamp(row.try_get(3).during(what)?),
        signature: row.try_get(4).during(what)?,
    })
}

impl CheckpointStore for PostgresStore {
    fn record_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<bool, StoreError> {
        const OP: &str = "recording a checkpoint";
        let seq = i64::try_from(checkpoint.seq).map_err(|_| corrupt("the checkpoint sequence number overflowed"))?;
        let head = &checkpoint.head[..];
        self.with_client(|conn| {
            let statement = prepared(conn, INSERT_CHECKPOINT).during(OP)?;
            let params: [&(dyn ToSql + Sync); 5] =
                [&seq, &checkpoint.key_id, &head, &checkpoint.at.0, &checkpoint.signature];
            let inserted = conn.client.execute(&statement, &params).during(OP)?;
            Ok(inserted == 1)
        })
    }

    fn checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.with_client(|conn| query(conn, CHECKPOINTS, "listing checkpoints"))
    }

    fn latest_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.with_client(|conn| Ok(query(conn, LATEST_CHECKPOINT, "reading the latest checkpoint")?.pop()))
    }

    fn scan_audit_with_checkpoints(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        const OP: &str = "scanning the audit log and its checkpoints";
        self.snapshot(OP, |tx| {
            let head = load_head(tx)?;
            // Streamed, not collected: millions of entries and checkpoints.
            let mut rows = tx.query_raw(CHAIN_WITH_CHECKPOINTS, std::iter::empty::<i64>()).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                let seq: i64 = row.try_get(0).during(OP)?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let item = match row.try_get::<_, Option<String>>(1).during(OP)? {
                    None => ChainItem::Entry {
                        seq,
                        prev_hash: row.try_get(2).during(OP)?,
                        body: row.try_get::<_, &str>(3).during(OP)?.as_bytes(),
                        hash: row.try_get(4).during(OP)?,
                    },
                    Some(key_id) => ChainItem::Checkpoint(AuditCheckpoint {
                        seq,
                        key_id,
                        head: row
                            .try_get::<_, Vec<u8>>(4)
                            .during(OP)?
                            .try_into()
                            .map_err(|_| corrupt("a checkpoint's head hash is not 32 bytes"))?,
                        at: Timestamp(row.try_get(5).during(OP)?),
                        signature: row.try_get(6).during(OP)?,
                    }),
                };
                if let Err(broken) = visit(item) {
                    return Ok(Err(broken));
                }
            }
            Ok(Ok(head))
        })
    }
}
