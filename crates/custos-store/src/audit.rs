//! The `AuditStore` capability: the audit chain: appends, its head, scans and pages.

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};

use crate::StoreError;

/// The audit chain: appends, its head, scans and pages. Every mutating call commits its audit events in the same transaction.
pub trait AuditStore: Send + Sync {
    /// Appends audit events on their own (reads, denials).
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError>;

    /// The head of the audit chain as the store records it.
    fn audit_head(&self) -> Result<ChainHead, StoreError>;

    /// Visits every audit entry in sequence order as raw stored bytes, stopping
    /// at the first error `visit` returns, and returns the chain head the store
    /// records — all from one consistent snapshot, so a verification running
    /// beside live writers compares the entries with the head of the same moment.
    /// The outer error is a storage failure; the inner one is what `visit` returned.
    /// `visit` must not call back into the store.
    #[allow(clippy::type_complexity)]
    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError>;

    /// Audit entries with `seq > after`, at most `limit`, in order.
    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Whether the store can take a write now (readiness): takes the write
    /// path as far as it can without changing anything — the write lock and
    /// the audit head, checked against the last entry — and lets go. An error
    /// says why the next write would fail (read-only, locked for longer than
    /// the store waits, head missing or not matching the chain).
    fn check_writable(&self) -> Result<(), StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: AuditStore + ?Sized> AuditStore for std::sync::Arc<T> {
    fn append_audit(&self, audit: &[AuditEvent]) -> Result<ChainHead, StoreError> {
        (**self).append_audit(audit)
    }

    fn audit_head(&self) -> Result<ChainHead, StoreError> {
        (**self).audit_head()
    }

    #[allow(clippy::type_complexity)]
    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        (**self).scan_audit(visit)
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        (**self).audit_entries(after, limit)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        (**self).check_writable()
    }
}
