//! The `HoldStore` capability: legal holds, and the item versions a hold
//! keeps through the subject's erasure.
//!
//! A hold is stored as a few columns a listing filters on (the subject's
//! pseudonym, the policy's legal hold id, the categories it covers, when it
//! was placed, its review day, when it was released) and optional `sealed`
//! details (the citation, who placed it) the vault seals. Like a request, it
//! names the subject by pseudonym only, never by id, so it outlives the
//! subject's erasure.
//!
//! The items a hold keeps arrive at erasure: the vault reads the subject's
//! items in the held categories, re-seals them under a key of their own and
//! hands them to [`SubjectStore::erase_subject`](crate::SubjectStore::erase_subject)
//! as a [`HeldCopy`], which the store checks against what it holds and keeps
//! in the erasure's transaction. Releasing a hold deletes what it kept.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use time::Date;

use crate::{HeldKeys, StoreError};

/// One stored legal hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    /// Its public id (random; never derived from the person).
    pub id: String,
    /// The subject's pseudonym (the audit log's keyed hash).
    pub subject: String,
    /// The policy's legal hold id.
    pub kind: String,
    /// The data categories it keeps.
    pub categories: Vec<String>,
    /// When it was placed.
    pub placed_at: Timestamp,
    /// The day it is to be reviewed, if set.
    pub until: Option<Date>,
    /// When it was released; `None` while active.
    pub released_at: Option<Timestamp>,
    /// Details sealed by the vault (the citation, who placed it).
    pub sealed: Option<Vec<u8>>,
}

/// One item version a hold keeps through its subject's erasure (the subject
/// is the hold's pseudonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldItem {
    /// The hold keeping it.
    pub hold: String,
    /// Its data category.
    pub category: String,
    /// Its version, as it was stored for the subject.
    pub version: u32,
    /// Where it came from.
    pub source: String,
    /// The purpose it was collected for.
    pub purpose: String,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// The notice version in force when it was collected.
    pub notice_version: String,
    /// The value, sealed by the vault under the holds' key (not the subject's).
    pub sealed: Vec<u8>,
}

/// What an erasure keeps for the subject's holds: the categories the holds
/// cover, and a copy of every item version the subject has in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldCopy {
    /// The held categories: every version stored for the subject in these
    /// must be among `items`, and nothing else may be.
    pub categories: Vec<String>,
    /// The copies to keep, each naming a hold of the subject's that is not
    /// released. One (hold, category, version) appears once; one version
    /// may be kept by several holds.
    pub items: Vec<HeldItem>,
}

impl HeldCopy {
    /// Nothing held: the erasure destroys everything.
    pub fn none() -> HeldCopy {
        HeldCopy::default()
    }
}

/// Legal holds: place, release, read, list, and what they keep. Every
/// mutating call commits its audit events in the same transaction.
pub trait HoldStore: Send + Sync {
    /// Records a hold with its audit events. A hold whose id is taken fails
    /// with [`StoreError::HoldExists`] and writes nothing. Refused with
    /// [`StoreError::KeyNotHeld`] when the store is keyed by a master key the
    /// writer does not hold (the details are sealed under it).
    fn place_hold(&self, hold: &HoldRecord, audit: &[AuditEvent], held: &HeldKeys<'_>) -> Result<(), StoreError>;

    /// Releases a hold at `at` and deletes the items it kept, in one
    /// transaction with `audit`; returns how many held items were deleted.
    /// [`StoreError::HoldNotFound`] for an unknown id,
    /// [`StoreError::HoldReleased`] for a hold released already (then
    /// nothing is written), [`StoreError::KeyNotHeld`] as for [`HoldStore::place_hold`].
    fn release_hold(
        &self,
        id: &str,
        at: Timestamp,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<u64, StoreError>;

    /// One hold, if recorded.
    fn hold(&self, id: &str) -> Result<Option<HoldRecord>, StoreError>;

    /// Every hold of the subject (by pseudonym), active and released, by
    /// `placed_at` then id.
    fn holds(&self, subject_pseudonym: &str) -> Result<Vec<HoldRecord>, StoreError>;

    /// The items `hold` keeps, by category then version.
    fn held_items(&self, hold: &str) -> Result<Vec<HeldItem>, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: HoldStore + ?Sized> HoldStore for std::sync::Arc<T> {
    fn place_hold(&self, hold: &HoldRecord, audit: &[AuditEvent], held: &HeldKeys<'_>) -> Result<(), StoreError> {
        (**self).place_hold(hold, audit, held)
    }

    fn release_hold(
        &self,
        id: &str,
        at: Timestamp,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<u64, StoreError> {
        (**self).release_hold(id, at, audit, held)
    }

    fn hold(&self, id: &str) -> Result<Option<HoldRecord>, StoreError> {
        (**self).hold(id)
    }

    fn holds(&self, subject_pseudonym: &str) -> Result<Vec<HoldRecord>, StoreError> {
        (**self).holds(subject_pseudonym)
    }

    fn held_items(&self, hold: &str) -> Result<Vec<HeldItem>, StoreError> {
        (**self).held_items(hold)
    }
}

/// Whether the (category, version) pairs `stored` for the subject in the
/// held categories are exactly those of `held.items` (several holds may
/// keep one version). Backends call it inside the erasure's transaction.
pub fn held_copy_matches(held: &HeldCopy, stored: &[(String, u32)]) -> bool {
    let stored: std::collections::BTreeSet<(&str, u32)> = stored.iter().map(|(c, v)| (c.as_str(), *v)).collect();
    let copied: std::collections::BTreeSet<(&str, u32)> =
        held.items.iter().map(|i| (i.category.as_str(), i.version)).collect();
    stored == copied
}
