//! The `IdempotencyStore` capability: responses recorded for idempotency keys.

use custos_core::time::Timestamp;

use crate::StoreError;

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

/// Responses recorded for idempotency keys. Every mutating call commits its audit events in the same transaction.
pub trait IdempotencyStore: Send + Sync {
    /// The response recorded for an idempotency key (scoped by the caller, e.g. `key-id:client-key`).
    fn idempotent_response(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;

    /// Records the first response for an idempotency key. Fails with
    /// [`StoreError::IdempotencyKeyExists`] if one is recorded already.
    fn save_idempotent_response(&self, key: &str, response: &IdempotentResponse) -> Result<(), StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<T> {
    fn idempotent_response(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        (**self).idempotent_response(key)
    }

    fn save_idempotent_response(&self, key: &str, response: &IdempotentResponse) -> Result<(), StoreError> {
        (**self).save_idempotent_response(key, response)
    }
}
