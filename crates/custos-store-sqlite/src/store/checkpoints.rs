//! [`CheckpointStore`] for [`SqliteStore`]: signed checkpoints of the audit
//! chain in `audit_checkpoints` (migration 0005).

use custos_core::audit::{ChainBreak, ChainHead};
use custos_core::audit_checkpoint::AuditCheckpoint;
use custos_core::time::Timestamp;
use custos_store::{ChainItem, CheckpointStore, StoreError};
use rusqlite::{Connection, Row, params};

use super::load_head;
use crate::SqliteStore;
use crate::error::{Context, corrupt};

/// The columns of `audit_checkpoints`, in the order [`checkpoint_from_row`] reads them.
macro_rules! checkpoint_columns {
    () => {
        "seq, key_id, head, at, signature"
    };
}

const INSERT_CHECKPOINT: &str = concat!(
    "INSERT INTO audit_checkpoints (",
    checkpoint_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (seq, key_id) DO NOTHING"
);
const CHECKPOINTS: &str = concat!("SELECT ", checkpoint_columns!(), " FROM audit_checkpoints ORDER BY seq, key_id");
const LATEST_CHECKPOINT: &str =
    concat!("SELECT ", checkpoint_columns!(), " FROM audit_checkpoints ORDER BY seq DESC, at DESC, key_id LIMIT 1");

/// The chain and its checkpoints in one ordered stream: an entry's row has
/// no key id (NULL sorts first, so it comes before the checkpoints of its
/// seq). Both sides are read in primary key order and merged, never sorted.
const CHAIN_WITH_CHECKPOINTS: &str = "SELECT seq, NULL, prev_hash, body, hash, NULL, NULL FROM audit \
     UNION ALL SELECT seq, key_id, NULL, NULL, head, at, signature FROM audit_checkpoints ORDER BY 1, 2";

fn checkpoint_from_row(row: &Row<'_>) -> Result<AuditCheckpoint, StoreError> {
    let what = "reading a checkpoint";
    let seq: i64 = row.get(0).during(what)?;
    let head: Vec<u8> = row.get(2).during(what)?;
    Ok(AuditCheckpoint {
        seq: u64::try_from(seq).map_err(|_| corrupt("a checkpoint has a negative sequence number"))?,
        key_id: row.get(1).during(what)?,
        head: head.try_into().map_err(|_| corrupt("a checkpoint's head hash is not 32 bytes"))?,
        at: Timestamp(row.get(3).during(what)?),
        signature: row.get(4).during(what)?,
    })
}

fn query(conn: &Connection, sql: &str, what: &'static str) -> Result<Vec<AuditCheckpoint>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).during(what)?;
    let mut rows = stmt.query([]).during(what)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().during(what)? {
        out.push(checkpoint_from_row(row)?);
    }
    Ok(out)
}

impl CheckpointStore for SqliteStore {
    fn record_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<bool, StoreError> {
        let seq = i64::try_from(checkpoint.seq).map_err(|_| corrupt("the checkpoint sequence number overflowed"))?;
        self.write("recording a checkpoint", |tx, _head| {
            let inserted = tx
                .prepare_cached(INSERT_CHECKPOINT)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        seq,
                        checkpoint.key_id,
                        &checkpoint.head[..],
                        checkpoint.at.0,
                        checkpoint.signature
                    ])
                })
                .during("recording a checkpoint")?;
            Ok(inserted == 1)
        })
    }

    fn checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.read(|conn| query(conn, CHECKPOINTS, "listing checkpoints"))
    }

    fn latest_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.read(|conn| Ok(query(conn, LATEST_CHECKPOINT, "reading the latest checkpoint")?.pop()))
    }

    fn scan_audit_with_checkpoints(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        const OP: &str = "scanning the audit log and its checkpoints";
        self.read(|conn| {
            // One snapshot for the head, the entries and the checkpoints.
            let tx = conn.unchecked_transaction().during(OP)?;
            let head = load_head(&tx)?;
            let mut stmt = tx.prepare_cached(CHAIN_WITH_CHECKPOINTS).during(OP)?;
            let mut rows = stmt.query([]).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                let seq: i64 = row.get(0).during(OP)?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let bytes = |i: usize| row.get_ref(i).and_then(|v| v.as_bytes().map_err(Into::into)).during(OP);
                let item = match row.get::<_, Option<String>>(1).during(OP)? {
                    None => ChainItem::Entry { seq, prev_hash: bytes(2)?, body: bytes(3)?, hash: bytes(4)? },
                    Some(key_id) => ChainItem::Checkpoint(AuditCheckpoint {
                        seq,
                        key_id,
                        head: row
                            .get::<_, Vec<u8>>(4)
                            .during(OP)?
                            .try_into()
                            .map_err(|_| corrupt("a checkpoint's head hash is not 32 bytes"))?,
                        at: Timestamp(row.get(5).during(OP)?),
                        signature: row.get(6).during(OP)?,
                    }),
                };
                if let Err(broken) = visit(item) {
                    return Ok(Err(broken));
                }
            }
            drop(rows);
            drop(stmt);
            tx.finish().during(OP)?;
            Ok(Ok(head))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;

    /// The chain and its checkpoints are merged as both are read in primary
    /// key order: no temporary B-tree, so nothing is collected in memory.
    #[test]
    fn the_chain_and_its_checkpoints_are_merged_without_sorting() {
        let store = SqliteStore::open_in_memory().unwrap();
        let writer = store.writer();
        let sql = format!("EXPLAIN QUERY PLAN {}", super::CHAIN_WITH_CHECKPOINTS);
        let mut stmt = writer.conn.prepare(&sql).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        let plan = steps.join("; ");
        assert!(plan.contains("MERGE (UNION ALL)") && !plan.contains("TEMP B-TREE"), "{plan}");
    }
}
