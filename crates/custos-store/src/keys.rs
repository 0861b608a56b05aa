//! The `KeyStore` capability: aPI keys, stored by hash only.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;

use crate::StoreError;

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

/// API keys, stored by hash only. Every mutating call commits its audit events in the same transaction.
pub trait KeyStore: Send + Sync {
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
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
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
}
