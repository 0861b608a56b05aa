//! The steps that move a request: verify, extend, deny, withdraw, start,
//! complete. Each is one atomic change of the stored request (under the
//! store's lock) with one audit entry, appended to the request's timeline;
//! a step the workflow does not have from where the request stands is
//! refused and changes nothing.

use custos_core::audit::AuditAction;
use custos_core::request::{DenialCode, Step as Move, StepError};
use custos_core::time::Timestamp;
use custos_store::{RequestRecord, Store};

use super::record::{Body, Details, Step};
use super::*;

/// How a request's identity was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMethod {
    /// The company's own application attests a signed-in person (an admin or service call).
    Session,
    /// Two data points matched by the privacy office.
    TwoDataPoints,
    /// Three data points and a signed declaration, checked by the privacy office.
    ThreeDataPointsAndDeclaration,
}

impl VerifyMethod {
    /// The method's name (as the policy names verification levels).
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMethod::Session => "session",
            VerifyMethod::TwoDataPoints => "two_data_points",
            VerifyMethod::ThreeDataPointsAndDeclaration => "three_data_points_and_declaration",
        }
    }

    /// The method named `s`.
    pub fn parse(s: &str) -> Option<VerifyMethod> {
        [VerifyMethod::Session, VerifyMethod::TwoDataPoints, VerifyMethod::ThreeDataPointsAndDeclaration]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// Whether this method meets the `required` level: a session or the
    /// stronger data-point check meets any level; two data points meet
    /// two data points and an email code.
    fn meets(self, required: &str) -> bool {
        match self {
            VerifyMethod::Session | VerifyMethod::ThreeDataPointsAndDeclaration => true,
            VerifyMethod::TwoDataPoints => matches!(required, "none" | "email_code" | "two_data_points"),
        }
    }
}

/// What a change of a request did: the step's name, its audited action, and a reason code.
pub(crate) struct Change {
    pub step: &'static str,
    pub action: AuditAction,
    pub reason: Option<&'static str>,
}

impl<S: Store> Vault<S> {
    /// Records that the requester's identity was verified by `method` (the
    /// officer or the company's application attests it). A method weaker
    /// than the kind's level is refused.
    pub fn verify_request(&self, id: &str, method: VerifyMethod, by: &By) -> Result<RequestView, VaultError> {
        self.change_request(id, by, |body, _details, on| {
            if body.locked {
                return Err(VaultError::VerificationLocked);
            }
            if !method.meets(&body.verification) {
                return Err(VaultError::VerificationTooWeak {
                    method: method.as_str(),
                    required: body.verification.clone(),
                });
            }
            apply(body, Move::Verify, on)?;
            body.verified_by = Some(method.as_str().to_string());
            body.code = None;
            Ok(Change { step: "verified", action: AuditAction::RequestVerified, reason: Some(method.as_str()) })
        })
    }

    /// Extends a request's deadline where its rule allows it, once, no
    /// later than the unextended due date; `reason` is what the person is told.
    pub fn extend_request(&self, id: &str, reason: &str, by: &By) -> Result<RequestView, VaultError> {
        let reason = required_text(reason)?;
        let record = self.request_record(id)?;
        let Some((j, rule)) = self.rule_of(&record) else {
            return Err(VaultError::RequestStep(StepError::NoExtension));
        };
        let calendar = &self.policy.jurisdiction_rules(j).calendar;
        self.change_request(id, by, |body, details, on| {
            let mut state = body.state();
            state.extend(&rule.deadline, calendar, on).map_err(VaultError::RequestStep)?;
            body.set_state(&state);
            details.extension_reason = Some(reason.clone());
            Ok(Change { step: "extended", action: AuditAction::RequestExtended, reason: None })
        })
    }

    /// Refuses a request with a reason code and the explanation the person is told.
    pub fn deny_request(&self, id: &str, code: DenialCode, text: &str, by: &By) -> Result<RequestView, VaultError> {
        let text = required_text(text)?;
        self.change_request(id, by, |body, details, on| {
            apply(body, Move::Deny(code), on)?;
            body.denial = Some(code);
            details.denial_text = Some(text.clone());
            Ok(Change { step: "denied", action: AuditAction::RequestDenied, reason: Some(code.as_str()) })
        })
    }

    /// Records that the person withdrew the request.
    pub fn withdraw_request(&self, id: &str, by: &By) -> Result<RequestView, VaultError> {
        self.change_request(id, by, |body, _details, on| {
            apply(body, Move::Withdraw, on)?;
            Ok(Change { step: "withdrawn", action: AuditAction::RequestWithdrawn, reason: None })
        })
    }

    /// Changes one request atomically: `change` edits its workflow and
    /// details as of today, or refuses (then nothing is written); the change
    /// is appended to the timeline, audited, and the dates recomputed.
    pub(crate) fn change_request(
        &self,
        id: &str,
        by: &By,
        mut change: impl FnMut(&mut Body, &mut Details, time::Date) -> Result<Change, VaultError>,
    ) -> Result<RequestView, VaultError> {
        // Checked before the store's lock: an id of the wrong form is never
        // looked up; a missing one is `RequestNotFound` from the locked read.
        checked_request_id(id)?;
        let now = self.clock.now();
        let mut problem = None;
        let mut opened = None;
        let record = self.with_held_keys(|held| {
            self.store.update_request(
                id,
                &mut |stored| {
                    // A store may call this again (a retry): only the last call counts.
                    problem = None;
                    match self.step(stored, now, by, &mut change) {
                        Ok((record, details, events)) => {
                            opened = Some(details);
                            Some((record, events))
                        }
                        Err(e) => {
                            problem = Some(e);
                            None
                        }
                    }
                },
                held,
            )
        })?;
        if let Some(e) = problem {
            return Err(e);
        }
        self.view(&record, opened.as_ref())
    }

    fn step(
        &self,
        stored: &RequestRecord,
        now: Timestamp,
        by: &By,
        change: &mut impl FnMut(&mut Body, &mut Details, time::Date) -> Result<Change, VaultError>,
    ) -> Result<(RequestRecord, Details, Vec<AuditEvent>), VaultError> {
        let mut body = Body::decode(stored)?;
        let mut details = Details::open(&self.keys, stored)?;
        let before = details.clone();
        // A step is dated today, and never before the request's latest step
        // (a request received "tomorrow" by a clock skew is stepped on that day).
        let on = now.date().max(body.latest);
        let done = change(&mut body, &mut details, on)?;
        body.timeline.push(Step { at: now, step: done.step.into(), status: body.status, by: by.audit_label() });
        let mut record = stored.clone();
        let rule = self.rule_of(stored).map(|(_, r)| r);
        self.refresh(&mut record, &mut body, rule, now);
        record.body = body.encode();
        if details != before {
            record.sealed = Some(details.seal(&self.keys, &record.id)?);
        }
        let mut ev = self.request_event(now, done.action, &record, by);
        ev.reason = done.reason.map(str::to_string);
        Ok((record, details, vec![ev]))
    }
}

/// Takes a workflow step on `body`.
pub(crate) fn apply(body: &mut Body, step: Move, on: time::Date) -> Result<(), VaultError> {
    let mut state = body.state();
    state.apply(step, on).map_err(VaultError::RequestStep)?;
    body.set_state(&state);
    Ok(())
}

/// A text the person is told (a reason, an explanation): not empty, at most 4 KiB.
pub(crate) fn required_text(text: &str) -> Result<String, VaultError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(InputError::TextMissing.into());
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(InputError::TextTooLong { max: MAX_TEXT_BYTES }.into());
    }
    Ok(text.to_string())
}

/// The longest reason or explanation accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
