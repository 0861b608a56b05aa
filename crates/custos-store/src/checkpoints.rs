//! The `CheckpointStore` capability: signed checkpoints of the audit chain.
//!
//! A checkpoint is a signed (seq, head hash, time, key id) recorded beside the
//! chain. The store only keeps them: it never sees the signing key, and it
//! does not check signatures (the vault does, against keys the database never
//! holds). Recording a checkpoint appends no audit entry: it is about the
//! chain, not an event in it.

use custos_core::audit_checkpoint::AuditCheckpoint;

use crate::StoreError;

/// Signed checkpoints of the audit chain: record, list, latest.
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
}
