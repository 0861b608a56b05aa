//! The `ItemStore` capability: sealed item versions, current items, history and tokens.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;

use crate::{StoreError, SubjectRecord};

/// An item to write: one value of one category for one subject. Its sealed
/// value is not here: the vault seals it once the store has numbered its
/// version (see [`Seal`]), so the ciphertext is bound to that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// Whose.
    pub subject: SubjectId,
    /// Category id.
    pub category: String,
    /// Source id.
    pub source: String,
    /// Purpose it was collected for.
    pub purpose: String,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// Notice version in force at collection.
    pub notice_version: String,
    /// For tokenized categories: the random token that names the value.
    pub token: Option<String>,
    /// For lookup categories: the blind index of the normalised value (a
    /// keyed hash the vault computes; never the value). The store keeps the
    /// latest version's per subject and category, finds subjects by it
    /// ([`ItemStore::subjects_by_lookup`]) and deletes it with the subject.
    pub lookup: Option<[u8; 32]>,
}

/// The lookup hashes a batch leaves indexed, for a store's `put_items`: of
/// each (subject, category), only the last item's in input order (versions
/// are numbered in input order, so it is the newest), as `(hash, index into
/// items)` sorted by hash, so the hash index is walked once, not at random.
pub fn newest_lookups(items: &[NewItem]) -> Vec<(&[u8; 32], usize)> {
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut newest: Vec<(&[u8; 32], usize)> = Vec::new();
    for (index, item) in items.iter().enumerate().rev() {
        if let Some(hash) = &item.lookup
            && seen.insert((item.subject.as_str(), item.category.as_str()))
        {
            newest.push((hash, index));
        }
    }
    newest.sort_unstable();
    newest
}

/// Seals the value of input item `index` as `version` (format, nonce,
/// ciphertext, tag): the bytes the store keeps. [`ItemStore::put_items`]
/// calls it inside its write transaction, after numbering, once per item
/// and attempt (again if the transaction is retried). An error aborts the
/// write.
pub type Seal<'a> = dyn Fn(usize, u32) -> Result<Vec<u8>, StoreError> + 'a;

/// An item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    /// Whose.
    pub subject: SubjectId,
    /// Category id.
    pub category: String,
    /// Version, from 1, per (subject, category).
    pub version: u32,
    /// Source id.
    pub source: String,
    /// Purpose it was collected for.
    pub purpose: String,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// Notice version in force at collection.
    pub notice_version: String,
    /// When a newer version replaced it; `None` for the current version.
    pub superseded_at: Option<Timestamp>,
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// Token, for tokenized categories.
    pub token: Option<String>,
}

/// Sealed item versions, current items, history and tokens. Every mutating call commits its audit events in the same transaction.
pub trait ItemStore: Send + Sync {
    /// Writes items, each as the new current version of its (subject, category);
    /// the previous current version is kept, marked superseded at the new
    /// item's collection time. All items and audit events commit together.
    /// Returns the version given to each item, in input order. Fails with
    /// [`StoreError::SubjectNotFound`] or [`StoreError::SubjectErased`] and
    /// writes nothing if any item's subject is missing or erased. Each item's
    /// stored value is `seal(index, version)`, called after numbering.
    fn put_items(&self, items: &[NewItem], seal: &Seal<'_>, audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError>;

    /// The current version of each of the subject's items, restricted to
    /// `categories` unless it is empty, ordered by category.
    fn current_items(&self, id: &SubjectId, categories: &[&str]) -> Result<Vec<StoredItem>, StoreError>;

    /// A subject and their current items (as [`Store::current_items`]), read
    /// from one consistent snapshot, so a decision and the values it releases
    /// see the same state. `None` when the subject does not exist.
    fn subject_with_items(
        &self,
        id: &SubjectId,
        categories: &[&str],
    ) -> Result<Option<(SubjectRecord, Vec<StoredItem>)>, StoreError>;

    /// Every version of one item, newest first.
    fn history(&self, id: &SubjectId, category: &str) -> Result<Vec<StoredItem>, StoreError>;

    /// The item a token names (any version).
    fn item_by_token(&self, token: &str) -> Result<Option<StoredItem>, StoreError>;

    /// The live subjects whose latest value of a lookup category has this
    /// blind index ([`NewItem::lookup`]), in id order.
    fn subjects_by_lookup(&self, lookup: &[u8; 32]) -> Result<Vec<SubjectId>, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: ItemStore + ?Sized> ItemStore for std::sync::Arc<T> {
    fn put_items(&self, items: &[NewItem], seal: &Seal<'_>, audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError> {
        (**self).put_items(items, seal, audit)
    }

    fn current_items(&self, id: &SubjectId, categories: &[&str]) -> Result<Vec<StoredItem>, StoreError> {
        (**self).current_items(id, categories)
    }

    fn subject_with_items(
        &self,
        id: &SubjectId,
        categories: &[&str],
    ) -> Result<Option<(SubjectRecord, Vec<StoredItem>)>, StoreError> {
        (**self).subject_with_items(id, categories)
    }

    fn history(&self, id: &SubjectId, category: &str) -> Result<Vec<StoredItem>, StoreError> {
        (**self).history(id, category)
    }

    fn item_by_token(&self, token: &str) -> Result<Option<StoredItem>, StoreError> {
        (**self).item_by_token(token)
    }

    fn subjects_by_lookup(&self, lookup: &[u8; 32]) -> Result<Vec<SubjectId>, StoreError> {
        (**self).subjects_by_lookup(lookup)
    }
}
