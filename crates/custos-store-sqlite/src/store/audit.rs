//! [`AuditStore`] for [`SqliteStore`]: group commit of audit appends, and
//! reading the chain back.

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};
use custos_store::{AuditStore, StoreError};
use rusqlite::{TransactionBehavior, params};

use super::{append, hash32, load_head};
use crate::error::{Context, corrupt};
use crate::writable::sync_head;
use crate::{SqliteStore, Writer};

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
    pub(super) const SCAN_AUDIT: &str = "SELECT seq, prev_hash, body, hash FROM audit ORDER BY seq";
    pub(super) const AUDIT_AFTER: &str =
        "SELECT seq, prev_hash, body, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[SCAN_AUDIT, AUDIT_AFTER];
}

impl AuditStore for SqliteStore {
    /// Group commit: the caller queues its events, then takes the write lock.
    /// Whoever holds the lock commits every queued append in one transaction,
    /// so concurrent readers (each of whose reads is audited) share commits.
    /// A caller whose events a previous holder already committed finds its
    /// outcome waiting when it gets the lock and returns at once.
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError> {
        if audit.is_empty() {
            return self.audit_head();
        }
        self.audit_queue.append(audit, |groups| {
            let mut writer = self.writer();
            let Writer { conn, head, seen_version, identity_key } = &mut *writer;
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).during("appending audit entries")?;
            sync_head(&tx, head, seen_version, identity_key)?;
            let mut next = *head;
            let mut heads = Vec::with_capacity(groups.len());
            for events in groups {
                append(&tx, &mut next, events)?;
                heads.push(next);
            }
            tx.commit().during("appending audit entries")?;
            *head = next;
            Ok(heads)
        })
    }

    fn audit_head(&self) -> Result<ChainHead, StoreError> {
        self.read(load_head)
    }

    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        self.read(|conn| {
            // One snapshot for the head and the entries.
            let tx = conn.unchecked_transaction().during("scanning the audit log")?;
            let head = load_head(&tx)?;
            let mut stmt = tx.prepare_cached(sql::SCAN_AUDIT).during("scanning the audit log")?;
            let mut rows = stmt.query([]).during("scanning the audit log")?;
            while let Some(row) = rows.next().during("scanning the audit log")? {
                let seq: i64 = row.get(0).during("scanning the audit log")?;
                let seq = u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?;
                let bytes = |i: usize| {
                    row.get_ref(i).and_then(|v| v.as_bytes().map_err(Into::into)).during("scanning the audit log")
                };
                if let Err(broken) = visit(seq, bytes(1)?, bytes(2)?, bytes(3)?) {
                    return Ok(Err(broken));
                }
            }
            drop(rows);
            drop(stmt);
            tx.finish().during("scanning the audit log")?;
            Ok(Ok(head))
        })
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::AUDIT_AFTER).during("reading audit entries")?;
            let mut rows = stmt.query(params![after, limit]).during("reading audit entries")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("reading audit entries")? {
                let seq: i64 = row.get(0).during("reading audit entries")?;
                out.push(AuditEntry {
                    seq: u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?,
                    prev_hash: hash32(row.get(1).during("reading audit entries")?)?,
                    body: row.get(2).during("reading audit entries")?,
                    hash: hash32(row.get(3).during("reading audit entries")?)?,
                });
            }
            Ok(out)
        })
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        self.check_writable_now()
    }
}
