//! The `RequestStore` capability: rights requests (access, erasure, …) and
//! their workflow, kept beside the subjects they concern.
//!
//! A request is stored as a few columns a listing filters on (the subject's
//! pseudonym, kind, jurisdiction, status, received and due dates, when the
//! record may be deleted), an opaque workflow `body` the vault encodes (no
//! personal value: states, dates, steps, codes), and optional `sealed`
//! details (the requester's contact, free texts) the vault seals. The store
//! never sees a subject id: a request names the subject by pseudonym, so its
//! record outlives the subject's erasure (CCPA §7101 keeps request records
//! for 24 months), and a distributed deployment can place it on the
//! subject's shard. Dates are days (`time::Date`).

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use time::Date;

use crate::{HeldKeys, StoreError};

/// One stored request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Its public id (random; never derived from the person).
    pub id: String,
    /// The subject's pseudonym (the audit log's keyed hash).
    pub subject: String,
    /// The request kind (`access`, `erasure`, …).
    pub kind: String,
    /// The subject's jurisdiction when it was received.
    pub jurisdiction: String,
    /// Where it stands (`received`, …, `completed`).
    pub status: String,
    /// The day it was received.
    pub received: Date,
    /// The due date in force (the extended one once extended).
    pub due: Date,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// When the record may be deleted (set when it closes); `None` while open.
    pub retain_until: Option<Timestamp>,
    /// The workflow, encoded by the vault; never a personal value.
    pub body: String,
    /// Personal details, sealed by the vault.
    pub sealed: Option<Vec<u8>>,
}

/// Which requests [`RequestStore::requests`] lists: every condition set must
/// hold. Listed by due date, then id; `after` continues a listing after the
/// last (due, id) it returned.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter<'a> {
    /// Only this subject's (by pseudonym).
    pub subject: Option<&'a str>,
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only these statuses (any when empty).
    pub statuses: &'a [&'a str],
    /// Only those due strictly before this day.
    pub due_before: Option<Date>,
    /// Only those received on or after this day.
    pub received_from: Option<Date>,
    /// Only those received strictly before this day.
    pub received_before: Option<Date>,
    /// Continue after this (due, id).
    pub after: Option<(Date, &'a str)>,
    /// At most this many (0: none).
    pub limit: usize,
}

/// What a new request's maker decides, seeing the subject's open requests of
/// the same kind: the record to insert and its audit events, or `None` to
/// insert nothing.
pub type NewRequest<'a> = dyn FnMut(&[RequestRecord]) -> Option<(RequestRecord, Vec<AuditEvent>)> + 'a;

/// What a change of one request decides, seeing it as stored: the record
/// replacing it and the change's audit events, or `None` to write nothing.
pub type RequestChange<'a> = dyn FnMut(&RequestRecord) -> Option<(RequestRecord, Vec<AuditEvent>)> + 'a;

/// Rights requests: record, change under a lock, read, list, prune.
pub trait RequestStore: Send + Sync {
    /// Records a new request of `kind` for the subject `subject`
    /// (pseudonym). `make` is called inside the transaction with the
    /// subject's requests of that kind that are open (status not
    /// `completed`, `denied` or `withdrawn`), while no other request of the
    /// same subject and kind can be recorded, so two submissions racing each
    /// other see each other; whatever it returns is inserted with its audit
    /// events. Returns whether a record was inserted. A record whose id is
    /// taken fails with [`StoreError::RequestExists`] and writes nothing.
    /// Refused with [`StoreError::KeyNotHeld`] when the store is keyed by a
    /// master key the writer does not hold (the details are sealed under it).
    fn insert_request(
        &self,
        subject: &str,
        kind: &str,
        make: &mut NewRequest<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<bool, StoreError>;

    /// Changes one request atomically: `change` sees it as stored, under a
    /// lock, and what it returns replaces it (the id, subject and kind are
    /// kept whatever it returns) with its audit events. Returns the record
    /// as it is afterwards (unchanged when `change` returned `None`).
    /// [`StoreError::RequestNotFound`] when there is no such request.
    fn update_request(
        &self,
        id: &str,
        change: &mut RequestChange<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<RequestRecord, StoreError>;

    /// One request, if recorded.
    fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError>;

    /// The requests `filter` selects, by due date then id, at most `filter.limit`.
    fn requests(&self, filter: &RequestFilter<'_>) -> Result<Vec<RequestRecord>, StoreError>;

    /// Deletes every request whose `retain_until` is before `before`, with
    /// `audit` appended when any was deleted; returns how many were.
    fn prune_requests(&self, before: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError>;
}

/// The statuses of a closed request, which [`RequestStore::insert_request`]
/// does not hand its maker.
pub const CLOSED_STATUSES: [&str; 3] = ["completed", "denied", "withdrawn"];

/// A shared store is a store: lets a vault or server hold `Arc<dyn Store>`.
impl<T: RequestStore + ?Sized> RequestStore for std::sync::Arc<T> {
    fn insert_request(
        &self,
        subject: &str,
        kind: &str,
        make: &mut NewRequest<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<bool, StoreError> {
        (**self).insert_request(subject, kind, make, held)
    }

    fn update_request(
        &self,
        id: &str,
        change: &mut RequestChange<'_>,
        held: &HeldKeys<'_>,
    ) -> Result<RequestRecord, StoreError> {
        (**self).update_request(id, change, held)
    }

    fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        (**self).request(id)
    }

    fn requests(&self, filter: &RequestFilter<'_>) -> Result<Vec<RequestRecord>, StoreError> {
        (**self).requests(filter)
    }

    fn prune_requests(&self, before: Timestamp, audit: &[AuditEvent]) -> Result<u64, StoreError> {
        (**self).prune_requests(before, audit)
    }
}
