//! Vault errors, split by how the caller reacts: bad input, a denial, a
//! missing thing, or an internal failure. No message contains a personal value.

use custos_core::decision::DenyReason;
use custos_crypto::CryptoError;
use custos_store::StoreError;

/// A denial as the caller sees it: the stable reason code and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Machine-readable reason, e.g. `consent_missing`.
    pub reason: DenyReason,
    /// Sentence for people; names policy ids only.
    pub sentence: String,
}

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The input is malformed or names something the policy does not declare.
    #[error("{0}")]
    Invalid(String),
    /// The decision engine denied the request (and the denial was audited).
    #[error("denied: {}: {}", .0.reason.code(), .0.sentence)]
    Denied(Denied),
    /// The subject does not exist.
    #[error("no subject with this id")]
    SubjectNotFound,
    /// A subject with this id exists already.
    #[error("a subject with this id already exists")]
    SubjectExists,
    /// No current value is stored for this category.
    #[error("no value stored for category `{0}`")]
    ItemNotFound(String),
    /// The token is unknown (or its subject was erased).
    #[error("no such token")]
    TokenNotFound,
    /// A stored value or key could not be decrypted: corruption or the wrong master key.
    #[error("a stored value could not be decrypted ({0}); is this the master key the data was written with?")]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The master key or the policy does not match the store (checked before anything else).
    #[error(transparent)]
    Identity(crate::identity::IdentityError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::SubjectNotFound => VaultError::SubjectNotFound,
            StoreError::SubjectExists => VaultError::SubjectExists,
            StoreError::TokenNotFound => VaultError::TokenNotFound,
            other => VaultError::Store(other),
        }
    }
}

impl VaultError {
    /// Whether the caller's input caused this error (as opposed to a failure inside Custos).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, VaultError::Crypto(_) | VaultError::Store(_) | VaultError::Identity(_))
    }
}
