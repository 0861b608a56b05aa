//! Group commit of audit appends, shared by the backends.
//!
//! Every audited read appends an entry that must be durable before the read
//! returns. One commit per read would cap throughput at the commit rate, so
//! callers queue their events and whoever becomes leader commits every queued
//! append in one transaction; the others find their outcome waiting when
//! their turn comes and return at once (DESIGN.md, invariant 3).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use custos_core::audit::{AuditEvent, ChainHead};

use crate::StoreError;

type Outcome = Arc<Mutex<Option<Result<ChainHead, GroupFailure>>>>;

/// Why a queued append did not commit, as every member of the group sees it
/// (a [`StoreError`] is not `Clone`: the leader's error is kept as its message).
#[derive(Debug, Clone, thiserror::Error)]
enum GroupFailure {
    /// The group's transaction failed.
    #[error("{0}")]
    Commit(String),
    /// The append's outcome was never set (a defect: every queued append is in some group).
    #[error("an audit append was lost from the commit queue")]
    Lost,
}

impl From<GroupFailure> for StoreError {
    fn from(e: GroupFailure) -> Self {
        match e {
            GroupFailure::Commit(msg) => StoreError::Backend(msg),
            lost @ GroupFailure::Lost => StoreError::Backend(lost.to_string()),
        }
    }
}

struct Pending {
    events: Vec<AuditEvent>,
    outcome: Outcome,
}

/// A queue of audit appends committed in groups.
#[derive(Default)]
pub struct AuditGroupCommit {
    queue: Mutex<Vec<Pending>>,
    leader: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditGroupCommit {
    /// Appends `events` as part of a group. `commit` receives every queued
    /// group, in order, must commit them all in one transaction, and returns
    /// the chain head just after each group. Returns the head after `events`.
    pub fn append(
        &self,
        events: &[AuditEvent],
        commit: impl FnOnce(&[&[AuditEvent]]) -> Result<Vec<ChainHead>, StoreError>,
    ) -> Result<ChainHead, StoreError> {
        let outcome: Outcome = Arc::new(Mutex::new(None));
        lock(&self.queue).push(Pending { events: events.to_vec(), outcome: outcome.clone() });
        let leader = lock(&self.leader);
        if let Some(done) = lock(&outcome).take() {
            return done.map_err(StoreError::from);
        }
        let batch = std::mem::take(&mut *lock(&self.queue));
        let groups: Vec<&[AuditEvent]> = batch.iter().map(|p| p.events.as_slice()).collect();
        match commit(&groups) {
            Ok(heads) => {
                for (pending, head) in batch.iter().zip(heads) {
                    *lock(&pending.outcome) = Some(Ok(head));
                }
            }
            Err(e) => {
                let failure = GroupFailure::Commit(match e {
                    StoreError::Backend(m) => m,
                    other => other.to_string(),
                });
                for pending in &batch {
                    *lock(&pending.outcome) = Some(Err(failure.clone()));
                }
            }
        }
        drop(leader);
        lock(&outcome).take().unwrap_or(Err(GroupFailure::Lost)).map_err(StoreError::from)
    }
}
