//! The `IdempotencyStore` capability: responses recorded for idempotency keys.
//!
//! A record holds nothing personal in clear: the fingerprint is a keyed hash
//! (HMAC under a key derived from the master key, so a guessed request cannot
//! be checked against it), the body is sealed by the vault, and the subjects
//! the request named are listed by pseudonym, so that erasing a subject
//! deletes their records in the erasure's transaction. Records expire: a
//! record older than the caller's `live_since` is treated as absent, and
//! expired records are deleted whenever a new one is written.

use custos_core::time::Timestamp;

use crate::StoreError;

/// The first response to a write sent with an `Idempotency-Key`, replayed on retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// Keyed hash of the request (method, path, body): a retry must match it.
    pub fingerprint: [u8; 32],
    /// HTTP status of the first response.
    pub status: u16,
    /// Body of the first response, sealed by the vault (opaque to the store).
    pub body: Vec<u8>,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// Pseudonyms of the subjects the request named (erasure deletes the record).
    pub subjects: Vec<String>,
}

/// Responses recorded for idempotency keys.
pub trait IdempotencyStore: Send + Sync {
    /// The response recorded for an idempotency key (scoped by the caller,
    /// e.g. `key-id:client-key`), unless it was recorded before `live_since`
    /// (expired: treated as never recorded).
    fn idempotent_response(&self, key: &str, live_since: Timestamp) -> Result<Option<IdempotentResponse>, StoreError>;

    /// Records the first response for an idempotency key, in one transaction
    /// with deleting every record made before `live_since` (an expired record
    /// for the same key is replaced). Fails with
    /// [`StoreError::IdempotencyKeyExists`] if a live one is recorded already.
    fn save_idempotent_response(
        &self,
        key: &str,
        response: &IdempotentResponse,
        live_since: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes every record made before `before`; returns how many.
    fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<T> {
    fn idempotent_response(&self, key: &str, live_since: Timestamp) -> Result<Option<IdempotentResponse>, StoreError> {
        (**self).idempotent_response(key, live_since)
    }

    fn save_idempotent_response(
        &self,
        key: &str,
        response: &IdempotentResponse,
        live_since: Timestamp,
    ) -> Result<(), StoreError> {
        (**self).save_idempotent_response(key, response, live_since)
    }

    fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        (**self).prune_idempotent_responses(before)
    }
}
