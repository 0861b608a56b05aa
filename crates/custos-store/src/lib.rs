//! The `Store` trait: everything Custos persists, in domain terms.
//!
//! A backend stores subjects (with their wrapped data key), sealed items with
//! their versions, and the audit chain. It never sees a personal value in
//! clear: items arrive sealed by the vault, and audit events carry only
//! pseudonyms. Every mutating call takes the audit events that describe it and
//! must commit them in the same transaction as the change, chained after the
//! current head, so that an operation is acknowledged only once its audit
//! entries are durable.
//!
//! [`contract`] holds the behaviour every backend must show; a backend runs it
//! with [`contract_tests!`].

pub mod contract;
mod group_commit;

pub use group_commit::AuditGroupCommit;

use custos_core::audit::{AuditEntry, AuditEvent, ChainBreak, ChainHead};
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;

/// A subject as stored: metadata plus the wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    /// Metadata, consents, objections, restriction.
    pub subject: Subject,
    /// The subject's data key wrapped by the master key; `None` once erased.
    pub wrapped_key: Option<Vec<u8>>,
}

/// An item to write: one sealed value of one category for one subject.
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
    /// The value sealed with the subject's data key (nonce, ciphertext, tag).
    pub sealed: Vec<u8>,
    /// For tokenized categories: the random token that names the value.
    pub token: Option<String>,
}

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

/// An API key as stored: never the key itself, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public identifier of the key (shown in listings, named by `revoke`).
    pub id: String,
    /// SHA-256 of the full secret key.
    pub secret_hash: [u8; 32],
    /// Role name: `admin`, `service` or `auditor`.
    pub role: String,
    /// For a service key: the declared recipient (actor) it acts as.
    pub actor: Option<String>,
    /// For a service key: the purposes it may read for.
    pub purposes: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// The first response to a write sent with an `Idempotency-Key`, replayed on retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// SHA-256 of the request (method, path, body): a retry must match it.
    pub fingerprint: [u8; 32],
    /// HTTP status of the first response.
    pub status: u16,
    /// Body of the first response (never holds a personal value: write responses carry none).
    pub body: Vec<u8>,
    /// When it was recorded.
    pub created_at: Timestamp,
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

/// A [`StoreError::Backend`] for stored data that does not decode (never with the value).
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored data is corrupt: {what}"))
}

/// A change to a subject's state decided inside the store's transaction.
pub struct StateChange {
    /// The new state.
    pub state: SubjectState,
    /// The audit events describing the change.
    pub audit: Vec<AuditEvent>,
}

/// What can go wrong in a store, split by how the caller reacts.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The subject does not exist.
    #[error("no such subject")]
    SubjectNotFound,
    /// A subject with this id already exists.
    #[error("a subject with this id already exists")]
    SubjectExists,
    /// The subject was erased; nothing more can be written for them.
    #[error("the subject was erased")]
    SubjectErased,
    /// The token is unknown.
    #[error("no such token")]
    TokenNotFound,
    /// An API key with this id or hash exists already.
    #[error("an API key with this id already exists")]
    KeyExists,
    /// An idempotency key was recorded already.
    #[error("this idempotency key was used already")]
    IdempotencyKeyExists,
    /// The backend failed (I/O, corruption, a bug). Never contains personal values.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Persistence for Custos. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
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

    /// Writes items, each as the new current version of its (subject, category);
    /// the previous current version is kept, marked superseded at the new
    /// item's collection time. All items and audit events commit together.
    /// Returns the version given to each item, in input order. Fails with
    /// [`StoreError::SubjectNotFound`] or [`StoreError::SubjectErased`] and
    /// writes nothing if any item's subject is missing or erased.
    fn put_items(&self, items: &[NewItem], audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError>;

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

    /// Crypto-shreds a subject: destroys the wrapped key and every sealed item,
    /// keeps the subject row as a tombstone with `erased_at`, and commits the
    /// audit events. Returns how many item versions were destroyed. Erasing an
    /// erased subject fails with [`StoreError::SubjectErased`].
    fn erase_subject(&self, id: &SubjectId, at: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError>;

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

    /// Stores a new API key (its hash only) with its audit events. Fails with
    /// [`StoreError::KeyExists`] if the id or hash is taken.
    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError>;

    /// The key whose secret hashes to `hash`, revoked or not.
    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Every key, oldest first.
    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes a key with its audit events; returns false (and appends nothing)
    /// if no such key exists or it was revoked already.
    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError>;

    /// The response recorded for an idempotency key (scoped by the caller, e.g. `key-id:client-key`).
    fn idempotent_response(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;

    /// Records the first response for an idempotency key. Fails with
    /// [`StoreError::IdempotencyKeyExists`] if one is recorded already.
    fn save_idempotent_response(&self, key: &str, response: &IdempotentResponse) -> Result<(), StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: Store + ?Sized> Store for std::sync::Arc<T> {
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

    fn put_items(&self, items: &[NewItem], audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError> {
        (**self).put_items(items, audit)
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

    fn erase_subject(&self, id: &SubjectId, at: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError> {
        (**self).erase_subject(id, at, audit)
    }

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

    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        (**self).create_api_key(key, audit)
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        (**self).api_key_by_hash(hash)
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        (**self).api_keys()
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        (**self).revoke_api_key(id, at, audit)
    }

    fn idempotent_response(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        (**self).idempotent_response(key)
    }

    fn save_idempotent_response(&self, key: &str, response: &IdempotentResponse) -> Result<(), StoreError> {
        (**self).save_idempotent_response(key, response)
    }
}
