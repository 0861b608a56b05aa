//! The `SubjectStore` capability: subjects with their wrapped data key and state, and their erasure.

use custos_core::audit::AuditEvent;
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;

use crate::{StoreError, corrupt};

/// A subject as stored: metadata plus the wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    /// Metadata, consents, objections, restriction.
    pub subject: Subject,
    /// The subject's data key wrapped by the master key; `None` once erased.
    pub wrapped_key: Option<Vec<u8>>,
}

/// A subject row as a backend reads it, before decoding.
pub struct SubjectColumns {
    /// `id`.
    pub id: String,
    /// `jurisdiction`.
    pub jurisdiction: String,
    /// `region`.
    pub region: Option<String>,
    /// `birth_date`, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// `guardian`.
    pub guardian: Option<String>,
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
        let state: SubjectState = serde_json::from_str(&self.state).map_err(|e| {
            corrupt(&format!("a subject's state is not valid JSON (line {}, column {})", e.line(), e.column()))
        })?;
        let subject = Subject {
            id: SubjectId::parse(&self.id).map_err(|_| corrupt("a subject id is not valid"))?,
            jurisdiction: self.jurisdiction,
            region: self.region,
            birth_date: self
                .birth_date
                .map(|d| custos_core::time::parse_date(&d))
                .transpose()
                .map_err(|_| corrupt("a subject's birth date is not a date"))?,
            guardian: self
                .guardian
                .map(|g| SubjectId::parse(&g))
                .transpose()
                .map_err(|_| corrupt("a guardian id is not valid"))?,
            created_at: Timestamp(self.created_at),
            erased_at: self.erased_at.map(Timestamp),
            state,
        };
        Ok(SubjectRecord { subject, wrapped_key: self.wrapped_key })
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
    /// Creates a subject with its wrapped key. Fails with [`StoreError::SubjectExists`].
    fn create_subject(&self, subject: &Subject, wrapped_key: &[u8], audit: &[AuditEvent]) -> Result<(), StoreError>;

    /// Loads a subject, erased or not.
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

    /// Crypto-shreds a subject: destroys the wrapped key and every sealed item,
    /// keeps the subject row as a tombstone with `erased_at`, and commits the
    /// audit events. Returns how many item versions were destroyed. Erasing an
    /// erased subject fails with [`StoreError::SubjectErased`].
    fn erase_subject(&self, id: &SubjectId, at: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: SubjectStore + ?Sized> SubjectStore for std::sync::Arc<T> {
    fn create_subject(&self, subject: &Subject, wrapped_key: &[u8], audit: &[AuditEvent]) -> Result<(), StoreError> {
        (**self).create_subject(subject, wrapped_key, audit)
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

    fn erase_subject(&self, id: &SubjectId, at: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError> {
        (**self).erase_subject(id, at, audit)
    }
}
