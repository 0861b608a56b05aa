//! The `ResealStore` capability: re-sealing legacy item values so that each
//! is bound to its version, and remembering that a store has been.
//!
//! Item values were once sealed with associated data naming the subject and
//! category only, so an old version's ciphertext pasted into the current row
//! opened as the current value. Values are now sealed for their version too
//! (by the vault, through [`crate::Seal`]); a store's legacy values are
//! re-sealed once, in compare-and-swap batches, and the store then records
//! that every value is bound, after which nothing reads a legacy one. The
//! store never sees a key: it pages through opaque bytes and swaps them.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;

use crate::StoreError;

/// Which item version: the primary key of a stored version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemKey {
    /// Whose.
    pub subject: SubjectId,
    /// Category id.
    pub category: String,
    /// Version.
    pub version: u32,
}

/// One stored item version's sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedItem {
    /// Which version.
    pub key: ItemKey,
    /// Its sealed value as stored.
    pub sealed: Vec<u8>,
}

/// One compare-and-swap re-seal: the version's value becomes `new` if it is still `old`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// Which version.
    pub key: ItemKey,
    /// The sealed value it must still have.
    pub old: Vec<u8>,
    /// The value it gets.
    pub new: Vec<u8>,
}

/// Re-sealing legacy item values. Every mutating call commits its audit
/// events in the same transaction.
pub trait ResealStore: Send + Sync {
    /// Whether the store has recorded that every item value is bound to its
    /// version ([`ResealStore::mark_items_bound`]).
    fn items_bound(&self) -> Result<bool, StoreError>;

    /// Up to `limit` stored item versions (every version, current or not)
    /// with keys after `after` (all when `None`), in key order (subject,
    /// category, version): pages for re-sealing.
    fn sealed_items(&self, after: Option<&ItemKey>, limit: usize) -> Result<Vec<SealedItem>, StoreError>;

    /// Re-seals by compare-and-swap, in one transaction with `audit`: each
    /// version's value becomes `new` only if it is still `old` (a version
    /// erased or re-sealed meanwhile is left alone). Returns how many were
    /// replaced.
    fn reseal_items(&self, batch: &[Reseal], audit: &[AuditEvent]) -> Result<u64, StoreError>;

    /// Records that every item value is bound to its version. Returns whether
    /// it was recorded now (and `audit` appended); false if it already was.
    fn mark_items_bound(&self, audit: &[AuditEvent]) -> Result<bool, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: ResealStore + ?Sized> ResealStore for std::sync::Arc<T> {
    fn items_bound(&self) -> Result<bool, StoreError> {
        (**self).items_bound()
    }

    fn sealed_items(&self, after: Option<&ItemKey>, limit: usize) -> Result<Vec<SealedItem>, StoreError> {
        (**self).sealed_items(after, limit)
    }

    fn reseal_items(&self, batch: &[Reseal], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        (**self).reseal_items(batch, audit)
    }

    fn mark_items_bound(&self, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        (**self).mark_items_bound(audit)
    }
}
