//! Rights requests: received, verified, extended, denied, withdrawn and
//! carried out, each step one audited change of the stored request.
//!
//! A request is recorded against a subject the vault knows, under the rule
//! the policy gives its kind in the subject's jurisdiction (deadline,
//! extension, confirmation of receipt, verification, clock pause). A kind
//! the jurisdiction does not grant is recorded and denied at once
//! (`right_not_available`), never silently accepted; a second request of a
//! kind the person already has open is recorded and denied as a
//! `duplicate` linked to the open one. The stored record names the subject
//! by pseudonym only; the subject's id, the requester's contact and every
//! free text are sealed (see `record.rs`). Every change is audited with the
//! request's id and kind, and appended to the request's own timeline.

pub mod email_code;
mod execute;
pub mod metrics;
mod record;
pub mod report;
pub mod response;
pub mod steps;

use custos_core::audit::AuditAction;
use custos_core::deadline::{DeadlineRule, days_left, overdue};
use custos_core::policy::JurisdictionId;
use custos_core::policy::document::Right;
use custos_core::policy::{RequestRule, Verification};
use custos_core::request::{DenialCode, RequestState, RequestStatus};
use custos_core::subject::SubjectId;
use custos_core::time::{Timestamp, format_date};
use custos_store::{RequestFilter, RequestRecord, Store, StoreError};
use serde::Serialize;
use time::Date;

use crate::identity::{IdentityError, hex};
use crate::*;
use record::{Body, Details, Step};

/// How long a closed request's record is kept: 24 months (CCPA §7101).
pub const RECORD_RETENTION_MONTHS: u32 = 24;

/// A request as submitted.
#[derive(Clone, Default)]
pub struct Submission<'a> {
    /// The subject's id.
    pub subject: &'a str,
    /// The request kind (`access`, `erasure`, …).
    pub kind: &'a str,
    /// The day it was received, when not today (a letter opened later); never in the future.
    pub received: Option<Date>,
    /// Where the person is answered (an email address), sealed.
    pub contact: Option<&'a str>,
    /// What the person wrote, sealed.
    pub note: Option<&'a str>,
    /// The purposes an objection or consent withdrawal names (policy ids).
    pub purposes: Vec<String>,
    /// A rectification's corrections: (category, corrected value); sealed,
    /// and cleared from the request once written.
    pub corrections: Vec<(String, String)>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery<'a> {
    /// Only this subject's.
    pub subject: Option<&'a str>,
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only this status.
    pub status: Option<RequestStatus>,
    /// Only those due before this day.
    pub due_before: Option<Date>,
    /// At most this many.
    pub limit: usize,
}

/// A request as the privacy office sees it (and the API and CLI print it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The subject's jurisdiction.
    pub jurisdiction: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// The day it was received.
    pub received: String,
    /// The due date in force (the extended one once extended).
    pub due: String,
    /// The day receipt must be confirmed by, where the law says so.
    pub confirm_by: Option<String>,
    /// Where an extension moves (or moved) the due date, if the rule allows one.
    pub extended_due: Option<String>,
    /// Days until due (negative once overdue; counted to the day it closed).
    pub days_left: i64,
    /// Whether it is past due and still open.
    pub overdue: bool,
    /// The verification the kind needs.
    pub verification: String,
    /// How the identity was verified, once it was.
    pub verified_by: Option<String>,
    /// Whether a wrong code too many times locked its verification.
    pub verification_locked: bool,
    /// The extension, once granted: when the person was told, and why.
    pub extension: Option<ExtensionView>,
    /// The refusal, if denied.
    pub denial: Option<DenialView>,
    /// The open request this one duplicates.
    pub duplicate_of: Option<String>,
    /// The day it closed.
    pub closed_on: Option<String>,
    /// Who answers it.
    pub controller: ControllerView,
    /// The legal source of its rule.
    pub source: Option<String>,
    /// What carrying it out did.
    pub outcome: Option<serde_json::Value>,
    /// Every step, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// An extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionView {
    /// The day the person was told.
    pub noticed_on: String,
    /// Why (told to the person).
    pub reason: Option<String>,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialView {
    /// The reason code.
    pub code: DenialCode,
    /// The explanation given to the person.
    pub text: Option<String>,
}

/// The controller that answers a request, and where the person reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerView {
    /// Its policy id.
    pub id: String,
    /// Its legal name.
    pub name: String,
    /// Its postal address.
    pub address: String,
    /// Where privacy requests go: the jurisdiction's contact, or the controller's email.
    pub contact: Option<String>,
}

/// One step of a request's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// When (RFC 3339).
    pub at: String,
    /// What: `received`, `verified`, `extended`, …
    pub step: String,
    /// The status after it.
    pub status: RequestStatus,
    /// Who: `key:<id>`, `cli`, `public`.
    pub by: String,
}

impl<S: Store> Vault<S> {
    /// Records a request. A kind the subject's jurisdiction does not grant
    /// is recorded denied (`right_not_available`), as is a second request of
    /// a kind the person has open (`duplicate`, linked to it); the returned
    /// view says so. A kind that needs no verification is verified at once.
    pub fn submit_request(&self, submission: &Submission<'_>, by: &By) -> Result<RequestView, VaultError> {
        let kind = Right::request_kind(submission.kind).ok_or(InputError::RequestKind)?;
        let sid = SubjectId::parse(submission.subject).map_err(InputError::SubjectId)?;
        for p in &submission.purposes {
            self.resolve(p, None)?;
        }
        if kind == Right::Objection && submission.purposes.is_empty() {
            return Err(InputError::PurposesMissing.into());
        }
        if !submission.purposes.is_empty() && !matches!(kind, Right::Objection | Right::WithdrawConsent) {
            return Err(InputError::NotForKind { field: "purposes" }.into());
        }
        if !submission.corrections.is_empty() && kind != Right::Rectification {
            return Err(InputError::NotForKind { field: "corrections" }.into());
        }
        if let Some(contact) = submission.contact {
            check_contact(contact)?;
        }
        if let Some(note) = submission.note {
            steps::required_text(note)?;
        }
        self.check_corrections(kind, &submission.corrections)?;
        let subject = self.subject(sid.as_str())?;
        if subject.erased_at.is_some() {
            return Err(self.erased_refusal(CONTROLLER, sid.as_str(), None, by));
        }
        let now = self.clock.now();
        let today = now.date();
        let received = submission.received.unwrap_or(today);
        if received > today {
            return Err(InputError::ReceivedInFuture.into());
        }
        let jurisdiction = self.policy.jurisdiction(&subject.jurisdiction);
        let rule = jurisdiction.and_then(|j| self.policy.request_rule(j, kind));
        let id = new_request_id()?;
        let details = Details {
            subject: sid.as_str().to_string(),
            contact: submission.contact.map(str::to_string),
            note: submission.note.map(str::to_string),
            purposes: submission.purposes.clone(),
            corrections: submission
                .corrections
                .iter()
                .map(|(category, value)| record::Correction { category: category.clone(), value: value.clone() })
                .collect(),
            ..Details::default()
        };
        let sealed = details.seal(&self.keys, &id)?;
        let mut denied_details = None;
        let pseudonym = self.keys.pseudonym(sid.as_str());
        // A kind not granted is refused as received, before any verification.
        let needs_verification = rule.is_none_or(|r| r.verification != Verification::None);
        let state = RequestState::received(received, needs_verification);
        let verification = rule.map_or("none", |r| r.verification.as_str()).to_string();
        let body = Body {
            status: state.status,
            received,
            latest: received,
            pauses: Vec::new(),
            extended_on: None,
            closed_on: None,
            verified_by: (!needs_verification && rule.is_some()).then(|| "none".to_string()),
            verification,
            code: None,
            locked: false,
            denial: None,
            duplicate_of: None,
            confirm_by: None,
            extended_due: None,
            outcome: None,
            timeline: Vec::new(),
        };
        let record = RequestRecord {
            id: id.clone(),
            subject: pseudonym.clone(),
            kind: kind.as_str().to_string(),
            jurisdiction: subject.jurisdiction.clone(),
            status: String::new(),
            received,
            due: received,
            created_at: now,
            retain_until: None,
            body: String::new(),
            sealed: Some(sealed),
        };
        let label = by.audit_label();
        let mut made = None;
        let inserted = self.with_held_keys(|held| {
            self.store.insert_request(
                &pseudonym,
                kind.as_str(),
                &mut |open| {
                    let (mut state, mut body, mut record) = (state.clone(), body.clone(), record.clone());
                    let mut events = vec![self.request_event(now, AuditAction::RequestReceived, &record, by)];
                    body.timeline.push(Step {
                        at: now,
                        step: "received".into(),
                        status: state.status,
                        by: label.clone(),
                    });
                    let denial = match (rule, open.first()) {
                        (None, _) => Some((
                            DenialCode::RightNotAvailable,
                            format!(
                                "The right `{}` is not available in {} under this notice.",
                                kind.as_str(),
                                jurisdiction.map_or(subject.jurisdiction.as_str(), |j| self
                                    .policy
                                    .jurisdiction_doc(j)
                                    .name
                                    .as_str())
                            ),
                        )),
                        (Some(_), Some(first)) => {
                            body.duplicate_of = Some(first.id.clone());
                            Some((DenialCode::Duplicate, format!("Your open request {} covers this one.", first.id)))
                        }
                        _ => None,
                    };
                    if let Some((code, text)) = denial {
                        let mut details = details.clone();
                        details.denial_text = Some(text);
                        record.sealed = Some(details.seal(&self.keys, &record.id).ok()?);
                        denied_details = Some(details);
                        // A step on the day of receipt from a fresh state cannot fail.
                        state.apply(custos_core::request::Step::Deny(code), received).ok()?;
                        body.denial = Some(code);
                        body.timeline.push(Step {
                            at: now,
                            step: "denied".into(),
                            status: state.status,
                            by: label.clone(),
                        });
                        let mut ev = self.request_event(now, AuditAction::RequestDenied, &record, by);
                        ev.reason = Some(code.as_str().to_string());
                        events.push(ev);
                    }
                    body.set_state(&state);
                    self.refresh(&mut record, &mut body, rule, now);
                    record.body = body.encode();
                    made = Some(record.clone());
                    Some((record, events))
                },
                held,
            )
        })?;
        match (inserted, made) {
            (true, Some(record)) => self.view(&record, Some(denied_details.as_ref().unwrap_or(&details))),
            _ => Err(StoreError::Backend("the request was not recorded".into()).into()),
        }
    }

    /// One request.
    pub fn request(&self, id: &str) -> Result<RequestView, VaultError> {
        let record = self.request_record(id)?;
        let details = Details::open(&self.keys, &record)?;
        self.view(&record, Some(&details))
    }

    /// The requests `query` selects, by due date.
    pub fn requests(&self, query: &RequestQuery<'_>) -> Result<Vec<RequestView>, VaultError> {
        if let Some(kind) = query.kind {
            Right::request_kind(kind).ok_or(InputError::RequestKind)?;
        }
        let pseudonym = match query.subject {
            Some(s) => Some(self.keys.pseudonym(SubjectId::parse(s).map_err(InputError::SubjectId)?.as_str())),
            None => None,
        };
        let status = query.status.map(RequestStatus::as_str);
        let statuses: Vec<&str> = status.into_iter().collect();
        let filter = RequestFilter {
            subject: pseudonym.as_deref(),
            kind: query.kind,
            statuses: &statuses,
            due_before: query.due_before,
            limit: query.limit,
            ..RequestFilter::default()
        };
        let records = self.store.requests(&filter)?;
        records
            .iter()
            .map(|r| {
                let details = Details::open(&self.keys, r)?;
                self.view(r, Some(&details))
            })
            .collect()
    }

    /// Deletes the records of requests closed more than
    /// [`RECORD_RETENTION_MONTHS`] ago, audited with how many; returns how many.
    pub fn prune_request_records(&self, by: &By) -> Result<u64, VaultError> {
        let now = self.clock.now();
        let mut ev = AuditEvent::new(now, AuditAction::RequestRecordsDeleted, CONTROLLER);
        ev.by = Some(by.audit_label());
        // The store counts; the entry states the cutoff's effect, not the rows.
        let n = self.store.prune_requests(now, &[ev.clone()])?;
        Ok(n)
    }

    pub(crate) fn request_record(&self, id: &str) -> Result<RequestRecord, VaultError> {
        checked_request_id(id)?;
        self.store.request(id)?.ok_or(VaultError::RequestNotFound)
    }

    /// The audit event of a step of `record`.
    pub(crate) fn request_event(
        &self,
        at: Timestamp,
        action: AuditAction,
        record: &RequestRecord,
        by: &By,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(at, action, CONTROLLER);
        e.by = Some(by.audit_label());
        e.subject = Some(record.subject.clone());
        e.notice_version = Some(self.policy.version().to_string());
        e.request = Some(record.id.clone());
        e.kind = Some(record.kind.clone());
        e
    }

    /// The rule of `record`'s kind in its jurisdiction, if the policy (still) grants it.
    pub(crate) fn rule_of(&self, record: &RequestRecord) -> Option<(JurisdictionId, &RequestRule)> {
        let j = self.policy.jurisdiction(&record.jurisdiction)?;
        let kind = Right::request_kind(&record.kind)?;
        Some((j, self.policy.request_rule(j, kind)?))
    }

    /// Recomputes the dates of `record` under `rule` as of `now`: the due
    /// date in force (the record's column), the confirm-by and extended due
    /// dates (the body's), and, once closed, until when the record is kept.
    pub(crate) fn refresh(
        &self,
        record: &mut RequestRecord,
        body: &mut Body,
        rule: Option<&RequestRule>,
        now: Timestamp,
    ) {
        record.status = body.status.as_str().to_string();
        if let Some(j) = self.policy.jurisdiction(&record.jurisdiction) {
            let rules = self.policy.jurisdiction_rules(j);
            // A kind not granted is still answered by the jurisdiction's
            // general deadline (GDPR Art. 12(4): the reasons for not acting).
            let general = DeadlineRule { extension: rules.extension, ..DeadlineRule::new(rules.deadline) };
            let deadline = rule.map_or(&general, |r| &r.deadline);
            let state = body.state();
            let dates = state.deadlines(deadline, &rules.calendar, now.date());
            record.due = dates.due_in_force(state.extension.is_some());
            body.confirm_by = dates.confirm_by;
            body.extended_due = dates.extended_due;
        }
        record.retain_until = body.closed_on.map(|closed| {
            Timestamp::start_of(custos_core::time::Period::Months(RECORD_RETENTION_MONTHS).after(closed))
        });
    }

    /// The view of a record, with its opened details.
    pub(crate) fn view(&self, record: &RequestRecord, details: Option<&Details>) -> Result<RequestView, VaultError> {
        let body = Body::decode(record)?;
        let today = self.clock.now().date();
        let until = body.closed_on.unwrap_or(today);
        let rule = self.rule_of(record).map(|(_, r)| r);
        Ok(RequestView {
            id: record.id.clone(),
            kind: record.kind.clone(),
            jurisdiction: record.jurisdiction.clone(),
            status: body.status,
            received: format_date(record.received),
            due: format_date(record.due),
            confirm_by: body.confirm_by.map(format_date),
            extended_due: body.extended_due.map(format_date),
            days_left: days_left(record.due, until),
            overdue: !body.status.is_closed() && overdue(record.due, today),
            verification: body.verification.clone(),
            verified_by: body.verified_by.clone(),
            verification_locked: body.locked,
            extension: body.extended_on.map(|d| ExtensionView {
                noticed_on: format_date(d),
                reason: details.and_then(|d| d.extension_reason.clone()),
            }),
            denial: body.denial.map(|code| DenialView { code, text: details.and_then(|d| d.denial_text.clone()) }),
            duplicate_of: body.duplicate_of.clone(),
            closed_on: body.closed_on.map(format_date),
            controller: self.controller_of(&record.jurisdiction),
            source: rule.map(|r| r.source.clone()),
            outcome: body.outcome.clone(),
            timeline: body
                .timeline
                .iter()
                .map(|s| TimelineEntry {
                    at: s.at.to_string(),
                    step: s.step.clone(),
                    status: s.status,
                    by: s.by.clone(),
                })
                .collect(),
        })
    }

    /// The controller the policy names for a jurisdiction, and its contact.
    pub(crate) fn controller_of(&self, jurisdiction: &str) -> ControllerView {
        let Some(j) = self.policy.jurisdiction(jurisdiction) else {
            return ControllerView { id: String::new(), name: String::new(), address: String::new(), contact: None };
        };
        let doc = self.policy.jurisdiction_doc(j);
        let controller = self.policy.document().controllers.iter().find(|c| c.id.value == doc.controller.value);
        ControllerView {
            id: doc.controller.value.clone(),
            name: controller.map(|c| c.name.clone()).unwrap_or_default(),
            address: controller.map(|c| c.address.clone()).unwrap_or_default(),
            contact: doc.contact.clone().or_else(|| controller.and_then(|c| c.email.clone())),
        }
    }

    /// Runs `f` with the master keys this vault holds, as the store checks them.
    pub(crate) fn with_held_keys<T>(
        &self,
        f: impl FnOnce(&custos_store::HeldKeys<'_>) -> Result<T, StoreError>,
    ) -> Result<T, VaultError> {
        let (key_id, check) = (self.keys.key_id(), self.keys.key_check());
        let previous = self.keys.previous_key();
        let held = custos_store::HeldKeys {
            current: (&key_id, &check),
            previous: previous.as_ref().map(|(i, c)| (&i[..], &c[..])),
        };
        f(&held).map_err(|e| match e {
            StoreError::KeyNotHeld { recorded } => {
                IdentityError::RotatedAway { recorded: hex(&recorded), held: hex(&key_id) }.into()
            }
            StoreError::RequestNotFound => VaultError::RequestNotFound,
            other => other.into(),
        })
    }
}

/// The longest contact address accepted (RFC 5321's path limit).
pub const MAX_CONTACT_BYTES: usize = 254;

/// An email address to answer at: `local@domain`, no space or control
/// character, at most [`MAX_CONTACT_BYTES`]. Never quoted in the error.
fn check_contact(contact: &str) -> Result<(), VaultError> {
    let well_formed = contact.len() <= MAX_CONTACT_BYTES
        && !contact.chars().any(|c| c.is_whitespace() || c.is_control())
        && contact
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if well_formed { Ok(()) } else { Err(InputError::Contact.into()) }
}

/// A new request id: `rq_` and 32 random hexadecimal digits.
fn new_request_id() -> Result<String, VaultError> {
    let mut b = [0u8; 16];
    custos_crypto::random_bytes(&mut b)?;
    Ok(format!("rq_{}", hex(&b)))
}

/// Refuses, as not found, an id that does not have the form of a request id
/// (checked before the store is asked; the store answers for the rest).
pub(crate) fn checked_request_id(id: &str) -> Result<(), VaultError> {
    if valid_request_id(id) { Ok(()) } else { Err(VaultError::RequestNotFound) }
}

/// Whether `id` has the form of a request id (anything else is not looked up).
pub fn valid_request_id(id: &str) -> bool {
    id.strip_prefix("rq_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
