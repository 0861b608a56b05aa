//! The `IdentityStore` capability: what a store remembers about how it was
//! created (the master key's id and key-check value, the notice it was
//! created with), and what a master-key rotation needs (paging through the
//! wrapped data keys, re-wrapping them by compare-and-swap).
//!
//! The store never sees a key: the key-check value is an HMAC the vault
//! computes, the derivation root is sealed by the vault, and the wrapped keys
//! are opaque bytes.

use custos_core::audit::AuditEvent;
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;

use crate::StoreError;

/// The master key a store is keyed by: its public id and key-check value,
/// and (after a rotation) the derivation root sealed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// The master key's id (8 bytes, derived from the key, public).
    pub key_id: Vec<u8>,
    /// The key-check value (an HMAC under a key derived from the master key).
    pub check: Vec<u8>,
    /// The HKDF root of the store's first master key, sealed under this one;
    /// `None` until the first rotation (the root is then this key's own).
    pub sealed_root: Option<Vec<u8>>,
}

/// The master keys a writer holds, as a store identity records them (id and
/// key-check value): the current key, and the previous one during a
/// rotation. A store refuses to create a subject (whose data key is wrapped
/// under the current key) when its identity names neither: a process left
/// with a key rotated away would otherwise wrap new data under a key about to
/// be destroyed. The check is made inside the write transaction, so a
/// rotation that moves the identity cannot slip between check and insert.
#[derive(Debug, Clone, Copy)]
pub struct HeldKeys<'a> {
    /// The current master key's id and key-check value.
    pub current: (&'a [u8], &'a [u8]),
    /// The previous master key's, during a rotation.
    pub previous: Option<(&'a [u8], &'a [u8])>,
}

impl HeldKeys<'_> {
    /// A writer that holds no master key: accepted only by a store that has
    /// recorded no identity yet (store-level tests and tools). Fails closed.
    pub const UNKEYED: HeldKeys<'static> = HeldKeys { current: (&[], &[]), previous: None };

    /// Whether the key a store identity records (its id and key-check value)
    /// is one of these.
    pub fn holds(&self, key_id: &[u8], check: &[u8]) -> bool {
        let is = |(id, c): (&[u8], &[u8])| key_id == id && check == c;
        is(self.current) || self.previous.is_some_and(is)
    }
}

/// What a store remembers about how it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The master key in force.
    pub key: KeyCheck,
    /// The notice id of the policy the store was created with.
    pub notice_id: String,
    /// The notice version in force (the one created with, or a newer one adopted since).
    pub notice_version: String,
    /// When the identity was recorded.
    pub created_at: Timestamp,
}

/// A live subject's wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The subject.
    pub subject: SubjectId,
    /// The wrapped key as stored.
    pub wrapped: Vec<u8>,
}

/// One compare-and-swap re-wrap: `subject`'s key becomes `new` if it is still `old`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrap {
    /// The subject.
    pub subject: SubjectId,
    /// The wrapped key it must still have.
    pub old: Vec<u8>,
    /// The key it gets.
    pub new: Vec<u8>,
}

/// How the store was created, and master-key rotation. Every mutating call
/// commits its audit events in the same transaction.
pub trait IdentityStore: Send + Sync {
    /// The recorded identity, `None` for a store that has none yet (new, or
    /// created before identities were recorded).
    fn store_identity(&self) -> Result<Option<StoreIdentity>, StoreError>;

    /// Records `identity` if none is recorded, with `audit`; returns the
    /// identity in force: `identity`, or the one recorded before (then nothing
    /// is written or appended). Two processes racing get the same answer.
    fn record_store_identity(
        &self,
        identity: &StoreIdentity,
        audit: &[AuditEvent],
    ) -> Result<StoreIdentity, StoreError>;

    /// Whether the store holds anything: a subject (erased or not), an audit
    /// entry or an API key.
    fn holds_data(&self) -> Result<bool, StoreError>;

    /// Up to `limit` wrapped keys of subjects not erased, with ids after
    /// `after` (all when `None`), in id order: pages for a rotation.
    fn wrapped_keys(&self, after: Option<&SubjectId>, limit: usize) -> Result<Vec<WrappedKey>, StoreError>;

    /// Re-wraps keys by compare-and-swap, in one transaction with `audit`:
    /// each subject's key becomes `new` only if it is still `old` and the
    /// subject is not erased (an erased key is never brought back). Returns
    /// how many keys were replaced.
    fn rewrap_keys(&self, batch: &[Rewrap], audit: &[AuditEvent]) -> Result<u64, StoreError>;

    /// Replaces the key check by compare-and-swap: only if the recorded key
    /// id and check equal `expected`'s. Returns whether it was replaced (and
    /// `audit` appended).
    fn replace_key_check(&self, expected: &KeyCheck, new: &KeyCheck, audit: &[AuditEvent]) -> Result<bool, StoreError>;

    /// Records that notice version `to` of the same notice is now in force,
    /// by compare-and-swap: only if the recorded notice is `notice_id` at
    /// version `from`. Returns whether it was recorded (and `audit` appended).
    fn adopt_notice_version(
        &self,
        notice_id: &str,
        from: &str,
        to: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError>;
}

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: IdentityStore + ?Sized> IdentityStore for std::sync::Arc<T> {
    fn store_identity(&self) -> Result<Option<StoreIdentity>, StoreError> {
        (**self).store_identity()
    }

    fn record_store_identity(
        &self,
        identity: &StoreIdentity,
        audit: &[AuditEvent],
    ) -> Result<StoreIdentity, StoreError> {
        (**self).record_store_identity(identity, audit)
    }

    fn holds_data(&self) -> Result<bool, StoreError> {
        (**self).holds_data()
    }

    fn wrapped_keys(&self, after: Option<&SubjectId>, limit: usize) -> Result<Vec<WrappedKey>, StoreError> {
        (**self).wrapped_keys(after, limit)
    }

    fn rewrap_keys(&self, batch: &[Rewrap], audit: &[AuditEvent]) -> Result<u64, StoreError> {
        (**self).rewrap_keys(batch, audit)
    }

    fn replace_key_check(&self, expected: &KeyCheck, new: &KeyCheck, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        (**self).replace_key_check(expected, new, audit)
    }

    fn adopt_notice_version(
        &self,
        notice_id: &str,
        from: &str,
        to: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        (**self).adopt_notice_version(notice_id, from, to, audit)
    }
}
