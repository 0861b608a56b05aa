//! [`AuditStore`] for [`PostgresStore`]: group commit of audit appends,
//! reading the chain back, and the readiness of the write path.

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};
use custos_store::{AuditStore, StoreError};
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator;

use super::{Session, append_groups, hash32, head_from_row, load_head};
use crate::error::{Context, corrupt};
use crate::{Conn, PostgresStore};

/// The statements of this capability.
pub(super) mod sql {
    pub(super) use crate::store::sql::LOCK_AUDIT_HEAD;

    pub(super) const WRITABLE: &str = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'";
    pub(super) const LAST_AUDIT_ENTRY: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
    pub(super) const SCAN_AUDIT: &str = "SELECT seq, prev_hash, body, hash FROM audit ORDER BY seq";
    pub(super) const AUDIT_AFTER: &str =
        "SELECT seq, prev_hash, body, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2";
}

fn entry_from_row(row: &Row) -> Result<AuditEntry, StoreError> {
    const OP: &str = "reading audit entries";
    let seq: i64 = row.try_get(0).during(OP)?;
    Ok(AuditEntry {
        seq: u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?,
        prev_hash: hash32(row.try_get(1).during(OP)?)?,
        body: row.try_get(2).during(OP)?,
        hash: hash32(row.try_get(3).during(OP)?)?,
    })
}

impl AuditStore for PostgresStore {
    /// Group commit, as in the SQLite store: callers in this process queue
    /// their events; whoever holds the leader lock commits every queued
    /// append in one transaction (one fsync for many audited reads). Other
    /// processes still serialise on the head row.
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError> {
        if audit.is_empty() {
            return self.audit_head();
        }
        self.audit_queue.append(audit, |groups| self.write("appending audit entries", |tx| append_groups(tx, groups)))
    }

    fn audit_head(&self) -> Result<ChainHead, StoreError> {
        self.read(load_head)
    }

    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        const OP: &str = "scanning the audit log";
        self.snapshot(OP, |tx| {
            let head = load_head(tx)?;
            // Streamed, not collected: the log can hold millions of entries.
            let mut rows = tx.query_raw(sql::SCAN_AUDIT, std::iter::empty::<i64>()).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                let seq: i64 = row.try_get(0).during(OP)?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let prev: &[u8] = row.try_get(1).during(OP)?;
                let body: &str = row.try_get(2).during(OP)?;
                let hash: &[u8] = row.try_get(3).during(OP)?;
                if let Err(broken) = visit(seq, prev, body.as_bytes(), hash) {
                    return Ok(Err(broken));
                }
            }
            Ok(Ok(head))
        })
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let rows = conn.query(sql::AUDIT_AFTER, &[&after, &limit]).during("reading audit entries")?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    /// Readiness of the write path, in a transaction that is rolled back: the
    /// server is neither a standby in recovery nor read-only, the head row can
    /// be locked (waiting at most [`CHECK_LOCK_TIMEOUT`] for a writer holding
    /// it), and the head is the last entry of the chain.
    fn check_writable(&self) -> Result<(), StoreError> {
        const OP: &str = "checking that the store can write";
        self.with_client(|Conn { client, statements }| {
            let mut tx = client.transaction().during(OP)?;
            tx.batch_execute(CHECK_LOCK_TIMEOUT).during(OP)?;
            let mut session = Session { db: &mut tx, statements };
            let row = session.query_opt(sql::WRITABLE, &[]).during(OP)?.ok_or_else(|| corrupt("no row"))?;
            if row.try_get::<_, bool>(0).during(OP)? {
                return Err(StoreError::Backend("the database is a standby in recovery: it cannot write".into()));
            }
            if row.try_get::<_, bool>(1).during(OP)? {
                return Err(StoreError::Backend("the database is read-only (transaction_read_only is on)".into()));
            }
            let head = head_from_row(session.query_opt(sql::LOCK_AUDIT_HEAD, &[]).during("locking the audit head")?)?;
            let last = match session.query_opt(sql::LAST_AUDIT_ENTRY, &[]).during(OP)? {
                None => ChainHead::EMPTY,
                Some(row) => head_from_row(Some(row))?,
            };
            if last != head {
                return Err(corrupt("the recorded audit head is not the last audit entry; the next append would fail"));
            }
            tx.rollback().during(OP)
        })
    }
}

/// How long [`AuditStore::check_writable`] waits for a writer holding the
/// chain head (as long as SQLite's store waits for its write lock).
const CHECK_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";
