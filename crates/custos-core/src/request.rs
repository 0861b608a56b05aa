//! The life of a rights request, pure: its states, the steps that move it,
//! the waits that stop its clock, and its extension.
//!
//! ```text
//! received ─► identity_unverified ─► verified ─► in_progress ⇄ awaiting_subject
//!     └──────────────(verify)──────────►┘             │
//!                                                     ▼
//!                               completed | denied | withdrawn
//! ```
//!
//! A request received with nothing to verify (a kind whose rule needs no
//! verification) is verified at once. `denied` and `withdrawn` can be
//! reached from any open state; `completed` only from `in_progress`.
//! Time in `awaiting_subject` is recorded as a [`Pause`] (it stops the
//! clock where the rule says so). `extended` is a flag, not a state: set at
//! most once, while the request is open, no later than the unextended due
//! date (the day by which the person must be told), where the rule allows an
//! extension. Nothing here reads a clock: every step carries its date.

use time::Date;

use crate::deadline::{Calendar, DeadlineRule, Deadlines, Pause};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Recorded, nothing done yet.
    Received,
    /// Waiting for the person to prove who they are.
    IdentityUnverified,
    /// Identity verified (or none needed); not yet being worked on.
    Verified,
    /// Being carried out.
    InProgress,
    /// Waiting for the person's answer (clarification, more information).
    AwaitingSubject,
    /// Carried out; the response was given.
    Completed,
    /// Refused, with a reason.
    Denied,
    /// Withdrawn by the person.
    Withdrawn,
}

impl RequestStatus {
    /// The status named `s`.
    pub fn parse(s: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Every status, in workflow order.
    pub const ALL: [RequestStatus; 8] = [
        RequestStatus::Received,
        RequestStatus::IdentityUnverified,
        RequestStatus::Verified,
        RequestStatus::InProgress,
        RequestStatus::AwaitingSubject,
        RequestStatus::Completed,
        RequestStatus::Denied,
        RequestStatus::Withdrawn,
    ];

    /// The snake_case name used in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Received => "received",
            RequestStatus::IdentityUnverified => "identity_unverified",
            RequestStatus::Verified => "verified",
            RequestStatus::InProgress => "in_progress",
            RequestStatus::AwaitingSubject => "awaiting_subject",
            RequestStatus::Completed => "completed",
            RequestStatus::Denied => "denied",
            RequestStatus::Withdrawn => "withdrawn",
        }
    }

    /// Whether the request is finished (nothing moves it any more).
    pub fn is_closed(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Denied | RequestStatus::Withdrawn)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialCode {
    /// The person's identity could not be verified.
    Unverifiable,
    /// Manifestly unfounded (GDPR Art. 12(5)).
    ManifestlyUnfounded,
    /// Excessive, in particular repetitive (GDPR Art. 12(5)).
    Excessive,
    /// An exception or legal hold applies (cited in the denial).
    Exempt,
    /// The person's jurisdiction does not grant the right.
    RightNotAvailable,
    /// Another open request of the same person and kind covers it.
    Duplicate,
}

impl DenialCode {
    /// Every code.
    pub const ALL: [DenialCode; 6] = [
        DenialCode::Unverifiable,
        DenialCode::ManifestlyUnfounded,
        DenialCode::Excessive,
        DenialCode::Exempt,
        DenialCode::RightNotAvailable,
        DenialCode::Duplicate,
    ];

    /// The code named `s`.
    pub fn parse(s: &str) -> Option<DenialCode> {
        DenialCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialCode::Unverifiable => "unverifiable",
            DenialCode::ManifestlyUnfounded => "manifestly_unfounded",
            DenialCode::Excessive => "excessive",
            DenialCode::Exempt => "exempt",
            DenialCode::RightNotAvailable => "right_not_available",
            DenialCode::Duplicate => "duplicate",
        }
    }
}

/// What moves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A verification was started (a code sent, data points asked for).
    AwaitVerification,
    /// The person's identity was verified.
    Verify,
    /// Work on the request began.
    Start,
    /// The controller asked the person something and waits.
    AskSubject,
    /// The person answered.
    SubjectAnswered,
    /// The response was given.
    Complete,
    /// Refused.
    Deny(DenialCode),
    /// The person withdrew it.
    Withdraw,
}

/// A step that cannot be taken from where the request stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Not a move the workflow has from this status.
    #[error("a request that is {} cannot be {step}", .from.as_str())]
    NotFrom {
        /// Where the request stands.
        from: RequestStatus,
        /// The step, as a past participle ("completed").
        step: &'static str,
    },
    /// A step dated before the request's latest step.
    #[error("the step is dated before the request's latest step")]
    BeforeLatest,
    /// The rule of this kind allows no extension.
    #[error("the rule of this request kind allows no extension")]
    NoExtension,
    /// Extended already.
    #[error("the request was extended already")]
    ExtendedAlready,
    /// Too late: the person had to be told of an extension by the unextended due date.
    #[error("too late to extend: the person had to be told by {0}")]
    TooLateToExtend(Date),
    /// The request is closed.
    #[error("the request is closed")]
    Closed,
}

fn participle(step: Step) -> &'static str {
    match step {
        Step::AwaitVerification => "put to verification",
        Step::Verify => "verified",
        Step::Start => "started",
        Step::AskSubject => "put on hold for the person",
        Step::SubjectAnswered => "resumed",
        Step::Complete => "completed",
        Step::Deny(_) => "denied",
        Step::Withdraw => "withdrawn",
    }
}

/// Where `step` takes a request that is `from`, if the workflow has that move.
pub fn next(from: RequestStatus, step: Step) -> Result<RequestStatus, StepError> {
    use RequestStatus::*;
    let to = match (from, step) {
        (Received, Step::AwaitVerification) => IdentityUnverified,
        (Received | IdentityUnverified, Step::Verify) => Verified,
        (Verified, Step::Start) => InProgress,
        (InProgress, Step::AskSubject) => AwaitingSubject,
        (AwaitingSubject, Step::SubjectAnswered) => InProgress,
        (InProgress, Step::Complete) => Completed,
        (f, Step::Deny(_)) if !f.is_closed() => Denied,
        (f, Step::Withdraw) if !f.is_closed() => Withdrawn,
        _ => return Err(StepError::NotFrom { from, step: participle(step) }),
    };
    Ok(to)
}

/// The extension of a request: when the person was told (the reason is
/// kept with the request's sealed details, not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// The day the person was told.
    pub noticed_on: Date,
}

/// A request's workflow state: status, dates, waits and extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    /// Where it stands.
    pub status: RequestStatus,
    /// The day it was received.
    pub received: Date,
    /// The day of its latest step.
    pub latest: Date,
    /// Each wait for the person, the last one open while `awaiting_subject`.
    pub pauses: Vec<Pause>,
    /// Set once extended.
    pub extension: Option<Extension>,
    /// The day it was closed.
    pub closed_on: Option<Date>,
}

impl RequestState {
    /// A request received on `received`; verified at once when its kind needs no verification.
    pub fn received(received: Date, needs_verification: bool) -> RequestState {
        let status = if needs_verification { RequestStatus::Received } else { RequestStatus::Verified };
        RequestState { status, received, latest: received, pauses: Vec::new(), extension: None, closed_on: None }
    }

    /// Takes `step` on `on`; on error nothing changes.
    pub fn apply(&mut self, step: Step, on: Date) -> Result<(), StepError> {
        if on < self.latest {
            return Err(StepError::BeforeLatest);
        }
        let to = next(self.status, step)?;
        if self.status == RequestStatus::AwaitingSubject
            && let Some(open) = self.pauses.last_mut().filter(|p| p.until.is_none())
        {
            open.until = Some(on);
        }
        if to == RequestStatus::AwaitingSubject {
            self.pauses.push(Pause { from: on, until: None });
        }
        if to.is_closed() {
            self.closed_on = Some(on);
        }
        self.status = to;
        self.latest = on;
        Ok(())
    }

    /// The request's dates under `rule` as of `today`.
    pub fn deadlines(&self, rule: &DeadlineRule, calendar: &Calendar, today: Date) -> Deadlines {
        // A closed request's clock stopped when it closed.
        let today = self.closed_on.unwrap_or(today).max(self.received);
        Deadlines::compute(rule, calendar, self.received, &self.pauses, today)
    }

    /// The due date in force as of `today` (the extended one once extended).
    pub fn due(&self, rule: &DeadlineRule, calendar: &Calendar, today: Date) -> Date {
        self.deadlines(rule, calendar, today).due_in_force(self.extension.is_some())
    }

    /// Extends the request on `on` (the day the person is told), where the
    /// rule allows it, once, while open, and no later than the unextended due date.
    pub fn extend(&mut self, rule: &DeadlineRule, calendar: &Calendar, on: Date) -> Result<(), StepError> {
        if self.status.is_closed() {
            return Err(StepError::Closed);
        }
        if on < self.latest {
            return Err(StepError::BeforeLatest);
        }
        if rule.extension.is_none() {
            return Err(StepError::NoExtension);
        }
        if self.extension.is_some() {
            return Err(StepError::ExtendedAlready);
        }
        let notice_by = self.deadlines(rule, calendar, on).due;
        if on > notice_by {
            return Err(StepError::TooLateToExtend(notice_by));
        }
        self.extension = Some(Extension { noticed_on: on });
        self.latest = on;
        Ok(())
    }
}
