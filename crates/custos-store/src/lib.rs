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
//! The persistence is split by capability, one trait and one module each
//! ([`SubjectStore`], [`ItemStore`], [`AuditStore`], [`KeyStore`],
//! [`IdempotencyStore`], [`CheckpointStore`], [`ResealStore`], [`RequestStore`], [`HoldStore`]); [`Store`] is all of them together, implemented for
//! every type that implements each.
//!
//! `contract` (feature `contract`, for the backends' tests only) holds the
//! behaviour every backend must show, one module per capability; a backend
//! runs it with `contract_tests!`.

mod audit;
mod checkpoints;
#[cfg(feature = "contract")]
pub mod contract;
mod group_commit;
mod holds;
mod idempotency;
mod identity;
mod items;
mod keys;
mod requests;
mod reseal;
mod subjects;

pub use audit::AuditStore;
pub use checkpoints::{ChainItem, CheckpointStore};
pub use group_commit::AuditGroupCommit;
pub use holds::{HeldCopy, HeldItem, HoldRecord, HoldStore, held_copy_matches};
pub use idempotency::{IdempotencyStore, IdempotentResponse};
pub use identity::{HeldKeys, IdentityStore, KeyCheck, Rewrap, StoreIdentity, WrappedKey};
pub use items::{ItemStore, NewItem, Seal, StoredItem, newest_lookups};
pub use keys::{ApiKeyRecord, KeyStore};
pub use requests::{CLOSED_STATUSES, NewRequest, RequestChange, RequestFilter, RequestRecord, RequestStore};
pub use reseal::{ItemKey, Reseal, ResealStore, SealedItem};
pub use subjects::{LegacySubject, StateChange, SubjectColumns, SubjectRecord, SubjectStore, Tombstone};

/// Every capability trait, for code that calls a concrete store's methods
/// (`use custos_store::prelude::*;`).
pub mod prelude {
    pub use crate::{
        AuditStore, CheckpointStore, HeldKeys, HoldStore, IdempotencyStore, IdentityStore, ItemStore, KeyStore,
        RequestStore, ResealStore, Store, SubjectStore,
    };
}

/// Every capability of a Custos store together. Implemented for every type
/// that implements each capability trait; `Arc<dyn Store>` is a store too.
pub trait Store:
    SubjectStore
    + ItemStore
    + AuditStore
    + KeyStore
    + IdempotencyStore
    + IdentityStore
    + CheckpointStore
    + ResealStore
    + RequestStore
    + HoldStore
{
}

impl<
    T: SubjectStore
        + ItemStore
        + AuditStore
        + KeyStore
        + IdempotencyStore
        + IdentityStore
        + CheckpointStore
        + ResealStore
        + RequestStore
        + HoldStore
        + ?Sized,
> Store for T
{
}

/// A [`StoreError::Backend`] for stored data that does not decode (never with the value).
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored data is corrupt: {what}"))
}

/// A day stored as its Julian day number (how backends keep dates such as a
/// request's due date); a number outside the calendar is corrupt data,
/// reported as `what` "is out of range".
pub fn stored_day(value: i64, what: &str) -> Result<time::Date, StoreError> {
    i32::try_from(value)
        .ok()
        .and_then(|d| time::Date::from_julian_day(d).ok())
        .ok_or_else(|| corrupt(&format!("{what} is out of range")))
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
    /// A request with this id exists already.
    #[error("a request with this id already exists")]
    RequestExists,
    /// The request does not exist.
    #[error("no such request")]
    RequestNotFound,
    /// A legal hold with this id exists already.
    #[error("a legal hold with this id already exists")]
    HoldExists,
    /// The legal hold does not exist (or, for an erasure's held copy, is not
    /// an active hold of the erased subject).
    #[error("no such legal hold")]
    HoldNotFound,
    /// The legal hold was released already.
    #[error("the legal hold was released already")]
    HoldReleased,
    /// The item versions stored in the held categories are not those of the
    /// erasure's held copy (they changed since it was read): nothing was
    /// erased; read them again and retry.
    #[error("the held items changed since they were read")]
    HeldItemsChanged,
    /// An idempotency key was recorded already.
    #[error("this idempotency key was used already")]
    IdempotencyKeyExists,
    /// The store's identity names a master key the writer does not hold (see
    /// [`HeldKeys`]): `recorded` is that key's public id.
    #[error("the store is keyed by another master key")]
    KeyNotHeld {
        /// The recorded master key's id.
        recorded: Vec<u8>,
    },
    /// The backend failed (I/O, corruption, a bug). Never contains personal values.
    #[error("storage failure: {0}")]
    Backend(String),
    /// The backend cannot serve the request now, and may later: another
    /// writer holds the lock past the wait, the disk is full, the database is
    /// read-only, shutting down or out of connections. Never contains personal values.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}
