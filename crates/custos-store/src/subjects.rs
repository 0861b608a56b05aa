//! The `SubjectStore` capability: subjects with their wrapped data key and state, and their erasure.

use custos_core::audit::AuditEvent;
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;

use crate::{HeldCopy, HeldKeys, StoreError, corrupt};

/// A subject as stored: id, jurisdiction, state, the wrapped data key and the
/// sealed metadata.
///
/// The store never holds `region`, `birth_date` or `guardian` in clear: a
/// loaded [`Subject`] has them empty, and the vault opens [`Self::sealed_metadata`]
/// (sealed under the subject's data key) when a decision or an audited read needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    /// Jurisdiction, consents, objections, restriction (metadata fields empty).
    pub subject: Subject,
    /// The subject's data key wrapped by the master key; `None` once erased.
    pub wrapped_key: Option<Vec<u8>>,
    /// Region, birth date and guardian sealed under the subject's data key; `None` if none was given.
    pub sealed_metadata: Option<Vec<u8>>,
}

/// What a tombstone holds: the erased subject's pseudonym (never the id, which
/// may itself be personal data) and when they were erased. That is all that
/// denying later requests needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Pseudonym of the subject id (the audit log's).
    pub pseudonym: String,
    /// When the subject was erased.
    pub erased_at: Timestamp,
}

/// How a state with no consent, objection or restriction is stored (every
/// field of [`SubjectState`] is left out when empty).
const EMPTY_STATE: &str = "{}";

/// A subject row as a backend reads it, before decoding.
pub struct SubjectColumns {
    /// `id`.
    pub id: String,
    /// `jurisdiction`.
    pub jurisdiction: String,
    /// `metadata`: region, birth date and guardian, sealed by the vault.
    pub metadata: Option<Vec<u8>>,
    /// `created_at`, microseconds.
    pub created_at: i64,
    /// `erased_at`, microseconds.
    pub erased_at: Option<i64>,
    /// `wrapped_key`.
    pub wrapped_key: Option<Vec<u8>>,
    /// `state`, JSON of [`SubjectState`].
    pub state: String,
}

impl SubjectColumns {
    /// Decodes the columns every backend stores the same way. A value that
    /// does not decode is reported as corrupt data, without the value.
    pub fn decode(self) -> Result<SubjectRecord, StoreError> {
        // Most subjects have made no choice yet: their state is `{}`, and every
        // read decodes the subject, so that case skips the JSON parser.
        let state: SubjectState = if self.state == EMPTY_STATE {
            SubjectState::default()
        } else {
            serde_json::from_str(&self.state).map_err(|e| {
                corrupt(&format!("a subject's state is not valid JSON (line {}, column {})", e.line(), e.column()))
            })?
        };
        let id = SubjectId::parse(&self.id).map_err(|_| corrupt("a subject id is not valid"))?;
        let mut subject = Subject::new(id, self.jurisdiction, Timestamp(self.created_at));
        subject.erased_at = self.erased_at.map(Timestamp);
        subject.state = state;
        Ok(SubjectRecord { subject, wrapped_key: self.wrapped_key, sealed_metadata: self.metadata })
    }
}

/// A change to a subject's state decided inside the store's transaction.
pub struct StateChange {
    /// The new state.
    pub state: SubjectState,
    /// The audit events describing the change.
    pub audit: Vec<AuditEvent>,
}

/// Subjects with their wrapped data key and state, and their erasure. Every mutating call commits its audit events in the same transaction.
pub trait SubjectStore: Send + Sync {
    /// Creates a subject with its wrapped key and sealed metadata. Stores the
    /// subject's id, jurisdiction, creation time and state; never its
    /// `region`, `birth_date` or `guardian` (those arrive sealed in
    /// `sealed_metadata`). Fails with [`StoreError::SubjectExists`] if the id
    /// exists, and with [`StoreError::SubjectErased`] if a tombstone holds
    /// `pseudonym` (an erased id is never re-created), and with
    /// [`StoreError::KeyNotHeld`] if the store's recorded identity names a
    /// master key that is not in `held` (checked inside the write transaction).
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<(), StoreError>;

    /// Loads a live subject. An erased one is not found by id: its tombstone
    /// is found by pseudonym with [`SubjectStore::tombstone`].
    fn subject(&self, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError>;

    /// Loads several subjects at once (missing ones are left out).
    fn subjects(&self, ids: &[SubjectId]) -> Result<Vec<SubjectRecord>, StoreError>;

    /// Changes a subject's state atomically: `apply` sees the current subject
    /// inside the write transaction and returns the new state and its audit
    /// events, or `None` to change nothing. Returns whether a change was made.
    /// `apply` runs under the store's write lock: it must not call the store.
    fn update_state(
        &self,
        id: &SubjectId,
        apply: &mut dyn FnMut(&Subject) -> Option<StateChange>,
    ) -> Result<bool, StoreError>;

    /// Crypto-shreds a subject in one transaction: destroys the wrapped key,
    /// the sealed metadata, every sealed item and token, and every
    /// idempotency record naming `pseudonym`; deletes the subject row and
    /// leaves a [`Tombstone`] under `pseudonym` (the audit log's pseudonym of
    /// the id); commits the audit events. Returns how many item versions were
    /// destroyed. Erasing an erased subject fails with [`StoreError::SubjectErased`].
    ///
    /// Before destroying anything it keeps `held`, the copies the subject's
    /// legal holds keep: the versions stored for the subject in
    /// `held.categories` must be exactly the (category, version) pairs of
    /// `held.items`, else it fails with [`StoreError::HeldItemsChanged`];
    /// each held item must name a hold that is recorded under `pseudonym`
    /// and not released, else [`StoreError::HoldNotFound`]. Either way
    /// nothing changes. Then the copies are stored (see
    /// [`HoldStore::held_items`](crate::HoldStore::held_items)) in the same
    /// transaction. [`HeldCopy::none`] keeps nothing.
    fn erase_subject(
        &self,
        id: &SubjectId,
        pseudonym: &str,
        at: Timestamp,
        held: &HeldCopy,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError>;

    /// The tombstone of an erased subject, by the pseudonym of their id.
    fn tombstone(&self, pseudonym: &str) -> Result<Option<Tombstone>, StoreError>;

    /// Up to `limit` rows written before metadata was sealed: live subjects
    /// with region, birth date or guardian in clear columns, and subjects
    /// erased before tombstones were kept by pseudonym (their row still holds the id).
    fn legacy_subjects(&self, limit: usize) -> Result<Vec<LegacySubject>, StoreError>;

    /// Upgrades one legacy row in one transaction: a live subject gets
    /// `sealed_metadata` and its clear columns emptied; an erased one's row
    /// is deleted and a tombstone left under `pseudonym`. Nothing is audited
    /// (no personal data is read or released: it moves from clear to sealed).
    fn upgrade_legacy_subject(
        &self,
        id: &SubjectId,
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
    ) -> Result<(), StoreError>;
}

/// A subject row written before metadata was sealed, as [`SubjectStore::legacy_subjects`] lists it.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacySubject {
    /// Subject id.
    pub id: SubjectId,
    /// The clear `region` column.
    pub region: Option<String>,
    /// The clear `birth_date` column (`YYYY-MM-DD`), checked to be a date.
    pub birth_date: Option<time::Date>,
    /// The clear `guardian` column.
    pub guardian: Option<SubjectId>,
    /// When erased, for a row erased before tombstones were kept by pseudonym.
    pub erased_at: Option<Timestamp>,
    /// The wrapped data key (to seal the metadata under); `None` if erased.
    pub wrapped_key: Option<Vec<u8>>,
}

/// The clear metadata and the wrapped key are shown only as present or absent.
impl std::fmt::Debug for LegacySubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacySubject")
            .field("id", &self.id)
            .field("region", &self.region.as_ref().map(|_| "<redacted>"))
            .field("birth_date", &self.birth_date.as_ref().map(|_| "<redacted>"))
            .field("guardian", &self.guardian.as_ref().map(|_| "<redacted>"))
            .field("erased_at", &self.erased_at)
            .field("wrapped_key", &self.wrapped_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl LegacySubject {
    /// Decodes a legacy row's clear columns (a value that does not decode is corrupt data).
    pub fn decode(
        id: &str,
        region: Option<String>,
        birth_date: Option<String>,
        guardian: Option<String>,
        erased_at: Option<i64>,
        wrapped_key: Option<Vec<u8>>,
    ) -> Result<LegacySubject, StoreError> {
        Ok(LegacySubject {
            id: SubjectId::parse(id).map_err(|_| corrupt("a subject id is not valid"))?,
            region,
            birth_date: birth_date
                .map(|d| custos_core::time::parse_date(&d))
                .transpose()
                .map_err(|_| corrupt("a subject's birth date is not a date"))?,
            guardian: guardian
                .map(|g| SubjectId::parse(&g))
                .transpose()
                .map_err(|_| corrupt("a guardian id is not valid"))?,
            erased_at: erased_at.map(Timestamp),
            wrapped_key,
        })
    }
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: SubjectStore + ?Sized> SubjectStore for std::sync::Arc<T> {
    fn create_subject(
        &self,
        subject: &Subject,
        wrapped_key: &[u8],
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
        audit: &[AuditEvent],
        held: &HeldKeys<'_>,
    ) -> Result<(), StoreError> {
        (**self).create_subject(subject, wrapped_key, sealed_metadata, pseudonym, audit, held)
    }

    fn subject(&self, id: &SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
        (**self).subject(id)
    }

    fn subjects(&self, ids: &[SubjectId]) -> Result<Vec<SubjectRecord>, StoreError> {
        (**self).subjects(ids)
    }

    fn update_state(
        &self,
        id: &SubjectId,
        apply: &mut dyn FnMut(&Subject) -> Option<StateChange>,
    ) -> Result<bool, StoreError> {
        (**self).update_state(id, apply)
    }

    fn erase_subject(
        &self,
        id: &SubjectId,
        pseudonym: &str,
        at: Timestamp,
        held: &HeldCopy,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        (**self).erase_subject(id, pseudonym, at, held, audit)
    }

    fn tombstone(&self, pseudonym: &str) -> Result<Option<Tombstone>, StoreError> {
        (**self).tombstone(pseudonym)
    }

    fn legacy_subjects(&self, limit: usize) -> Result<Vec<LegacySubject>, StoreError> {
        (**self).legacy_subjects(limit)
    }

    fn upgrade_legacy_subject(
        &self,
        id: &SubjectId,
        sealed_metadata: Option<&[u8]>,
        pseudonym: &str,
    ) -> Result<(), StoreError> {
        (**self).upgrade_legacy_subject(id, sealed_metadata, pseudonym)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_is_stored_as_the_text_the_fast_path_knows() {
        assert_eq!(serde_json::to_string(&SubjectState::default()).ok().as_deref(), Some(EMPTY_STATE));
    }
}
