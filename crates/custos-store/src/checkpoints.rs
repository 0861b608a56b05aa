//! The `CheckpointStore` capability: signed checkpoints of the audit chain.
//!
//! A checkpoint is a signed (seq, head hash, time, key id) recorded beside the
//! chain. The store only keeps them: it never sees the signing key, and it
//! does not check signatures (the vault does, against keys the database never
//! holds). Recording a checkpoint appends no audit entry: it is about the
//! chain, not an event in it.

use custos_core::audit::{ChainBreak, ChainHead};
use custos_core::audit_checkpoint::AuditCheckpoint;

use crate::StoreError;

/// What [`CheckpointStore::scan_audit_with_checkpoints`] hands its visitor, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainItem<'a> {
    /// An audit entry, as [`AuditStore::scan_audit`](crate::AuditStore::scan_audit) hands it.
    Entry {
        /// Its sequence number.
        seq: u64,
        /// The previous entry's hash, as stored.
        prev_hash: &'a [u8],
        /// Its body, as stored.
        body: &'a [u8],
        /// Its hash, as stored.
        hash: &'a [u8],
    },
    /// A recorded checkpoint.
    Checkpoint(AuditCheckpoint),
}

/// Signed checkpoints of the audit chain: record, list, latest, and read
/// together with the chain.
pub trait CheckpointStore: Send + Sync {
    /// Records a signed checkpoint. A checkpoint by the same key at the same
    /// sequence number is kept only once: recording another returns `false`
    /// and changes nothing.
    fn record_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<bool, StoreError>;

    /// Every recorded checkpoint, by sequence number, then by key id.
    fn checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError>;

    /// The checkpoint with the highest sequence number (the latest signed of
    /// those, if several keys signed it), or `None` before the first.
    fn latest_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError>;

    /// Streams the audit chain and every recorded checkpoint together, in
    /// one snapshot, without collecting either (there may be millions of
    /// each): by sequence number, each checkpoint right after the entry it
    /// signs (those at 0 before the first entry, those past the last entry
    /// after it), checkpoints of one sequence number by key id. As with
    /// [`AuditStore::scan_audit`](crate::AuditStore::scan_audit), the visitor
    /// stops the scan by returning a break, which is returned; otherwise the
    /// head recorded in the same snapshot is.
    fn scan_audit_with_checkpoints(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<T> {
    fn record_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<bool, StoreError> {
        (**self).record_checkpoint(checkpoint)
    }

    fn checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        (**self).checkpoints()
    }

    fn latest_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        (**self).latest_checkpoint()
    }

    fn scan_audit_with_checkpoints(
        &self,
        visit: &mut dyn FnMut(ChainItem<'_>) -> Result<(), ChainBreak>,
    ) -> Result<Result<ChainHead, ChainBreak>, StoreError> {
        (**self).scan_audit_with_checkpoints(visit)
    }
}
