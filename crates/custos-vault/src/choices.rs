//! A subject's choices: consents, objections and restriction, changed atomically and audited.
//!
//! Every change is audited with the decision actor recording it (`controller`
//! for the controller's own staff and systems) and the acting principal
//! ([`By`]: which API key, the operator at the CLI, later the subject's own
//! session). Who may change choices at all is the caller's to check: over
//! HTTP only admin keys may (a service key could otherwise grant itself a
//! consent it reads under).

use custos_core::audit::AuditAction;
use custos_core::decision::DenyReason;
use custos_core::policy::document::Right;
use custos_core::subject::{ConsentRecord, ConsentStatus, Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;
use custos_store::{StateChange, Store};

use crate::access::Principal;
use crate::*;

/// The reason code audited when a key's role may not change a subject's
/// choices (a service or auditor key calling the consent, objection or
/// restriction routes).
pub const ROLE_NOT_ALLOWED: &str = "role_not_allowed";

impl<S: Store> Vault<S> {
    /// Audits a change of choices refused because of the key's role:
    /// `access_denied` with reason [`ROLE_NOT_ALLOWED`], the key's actor and
    /// id, the subject by pseudonym, and the purpose only if the policy
    /// declares it (an undeclared one may be anything, even a personal value).
    pub fn audit_role_refusal(
        &self,
        principal: &Principal,
        subject: &str,
        purpose: Option<&str>,
    ) -> Result<(), VaultError> {
        let mut ev =
            self.event(self.clock.now(), AuditAction::AccessDenied, &principal.actor, subject, &principal.by());
        ev.purpose = purpose.filter(|p| self.policy.purpose(p).is_some()).map(str::to_string);
        ev.reason = Some(ROLE_NOT_ALLOWED.to_string());
        ev.key = Some(principal.key_id.clone());
        self.store.append_audit(&[ev])?;
        Ok(())
    }

    /// Records a consent (granted), given by the subject or by their linked
    /// guardian, as recorded by `by`.
    pub fn grant_consent(
        &self,
        subject: &str,
        purpose: &str,
        by_guardian: Option<&str>,
        by: &By,
    ) -> Result<(), VaultError> {
        self.consent(subject, purpose, by_guardian, ConsentStatus::Granted, by)
    }

    /// Withdraws a consent; processing for that purpose stops at once.
    pub fn withdraw_consent(
        &self,
        subject: &str,
        purpose: &str,
        by_guardian: Option<&str>,
        by: &By,
    ) -> Result<(), VaultError> {
        self.consent(subject, purpose, by_guardian, ConsentStatus::Withdrawn, by)
    }

    pub(crate) fn consent(
        &self,
        subject: &str,
        purpose: &str,
        by_guardian: Option<&str>,
        status: ConsentStatus,
        by: &By,
    ) -> Result<(), VaultError> {
        self.resolve(purpose, None)?;
        let sid = SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        let guardian = by_guardian.map(|g| SubjectId::parse(g).map_err(InputError::GuardianId)).transpose()?;
        let action = match status {
            ConsentStatus::Granted => AuditAction::ConsentGranted,
            ConsentStatus::Withdrawn => AuditAction::ConsentWithdrawn,
        };
        self.update_choices(&sid, CONTROLLER, Some(purpose), guardian.as_ref(), by, |s, state, now| {
            if guardian.is_some() && s.guardian != guardian {
                return Err(InputError::GuardianNotLinked.into());
            }
            // A subject's own grant adds nothing to a live grant by their linked
            // guardian, and must not replace it (a minor would lose the service).
            let guardian_granted = state
                .consents
                .get(purpose)
                .is_some_and(|c| c.status == ConsentStatus::Granted && c.by_guardian && s.guardian.is_some());
            if !(status == ConsentStatus::Granted && guardian.is_none() && guardian_granted) {
                state
                    .consents
                    .insert(purpose.to_string(), ConsentRecord { status, at: now, by_guardian: guardian.is_some() });
            }
            Ok(action)
        })
    }

    /// Records an objection to a purpose (GDPR Art. 21). Refused with
    /// `right_not_available` (and audited) where the subject's jurisdiction
    /// grants no objection.
    pub fn object(&self, subject: &str, purpose: &str, by: &By) -> Result<(), VaultError> {
        self.resolve(purpose, None)?;
        let sid = SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        self.update_choices(&sid, CONTROLLER, Some(purpose), None, by, |subject, state, now| {
            self.require_right(subject, Right::Objection)?;
            state.objections.entry(purpose.to_string()).or_insert(now);
            Ok(AuditAction::ObjectionRecorded)
        })
    }

    /// Restricts processing (GDPR Art. 18), or lifts the restriction. A
    /// restriction is refused with `right_not_available` (and audited) where
    /// the subject's jurisdiction grants none; lifting one is always allowed.
    pub fn set_restricted(&self, subject: &str, restricted: bool, by: &By) -> Result<(), VaultError> {
        let switch = Switch {
            right: Right::Restriction,
            since: |s| &mut s.restricted_since,
            on: AuditAction::RestrictionSet,
            off: AuditAction::RestrictionLifted,
        };
        self.switch(subject, restricted, switch, by)
    }

    /// Opts the subject out of the sale and sharing of their personal
    /// information and of targeted advertising (CCPA §1798.120), or back in.
    /// Purposes the policy marks `sale_or_sharing` are then denied
    /// (`opted_out`). An opt-out is refused with `right_not_available` (and
    /// audited) where the jurisdiction grants none; opting back in is always
    /// allowed.
    pub fn set_opted_out(&self, subject: &str, opted_out: bool, by: &By) -> Result<(), VaultError> {
        let switch = Switch {
            right: Right::OptOut,
            since: |s| &mut s.opted_out_since,
            on: AuditAction::OptOutRecorded,
            off: AuditAction::OptOutLifted,
        };
        self.switch(subject, opted_out, switch, by)
    }

    /// Limits the use of the subject's sensitive personal information to the
    /// purposes CCPA §7027(m) permits (CCPA §1798.121), or lifts the limit.
    /// Other purposes are then denied sensitive categories
    /// (`sensitive_use_limited`). Refused like an opt-out where the
    /// jurisdiction grants no such right; lifting is always allowed.
    pub fn set_sensitive_limited(&self, subject: &str, limited: bool, by: &By) -> Result<(), VaultError> {
        let switch = Switch {
            right: Right::LimitSensitive,
            since: |s| &mut s.sensitive_limited_since,
            on: AuditAction::SensitiveUseLimited,
            off: AuditAction::SensitiveLimitLifted,
        };
        self.switch(subject, limited, switch, by)
    }

    /// Turns one of the subject's standing choices on (since now, unless it
    /// already was) or off, audited. Turning it on needs the right in the
    /// subject's jurisdiction; turning it off never does.
    fn switch(&self, subject: &str, on: bool, switch: Switch, by: &By) -> Result<(), VaultError> {
        let sid = SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        self.update_choices(&sid, CONTROLLER, None, None, by, |subject, state, now| {
            let since = (switch.since)(state);
            Ok(if on {
                self.require_right(subject, switch.right)?;
                since.get_or_insert(now);
                switch.on
            } else {
                *since = None;
                switch.off
            })
        })
    }

    /// Refuses, with `right_not_available`, a right the subject's jurisdiction
    /// does not grant; inside [`Vault::update_choices`]'s change, whose
    /// [`Vault::refused`] audits the refusal.
    pub(crate) fn require_right(&self, subject: &Subject, right: Right) -> Result<(), VaultError> {
        let granted = self.policy.jurisdiction(&subject.jurisdiction).and_then(|j| self.policy.request_rule(j, right));
        match granted {
            Some(_) => Ok(()),
            None => {
                Err(VaultError::RightNotAvailable { right: right.as_str(), jurisdiction: subject.jurisdiction.clone() })
            }
        }
    }

    /// Changes a subject's choices atomically and audits the change. `change`
    /// edits the state and names the audited action, or refuses; an erased
    /// subject is refused (and the refusal audited) before `change` runs. A
    /// choice made by the subject's linked `guardian` is audited with the
    /// guardian's pseudonym.
    pub(crate) fn update_choices(
        &self,
        sid: &SubjectId,
        actor: &str,
        purpose: Option<&str>,
        guardian: Option<&SubjectId>,
        by: &By,
        mut change: impl FnMut(&Subject, &mut SubjectState, Timestamp) -> Result<AuditAction, VaultError>,
    ) -> Result<(), VaultError> {
        let now = self.clock.now();
        let mut problem = None;
        // Metadata never changes after creation: open it once, before the
        // store's lock, and combine it with the state read under the lock.
        let opened = self.record(sid.as_str())?.subject;
        if opened.erased_at.is_some() {
            return self.refused(Some(erased_denial()), actor, sid.as_str(), purpose, by);
        }
        let updated = self.store.update_state(sid, &mut |s| {
            if s.erased_at.is_some() {
                problem = Some(erased_denial());
                return None;
            }
            let mut state = s.state.clone();
            let s = &Subject { state: s.state.clone(), ..opened.clone() };
            match change(s, &mut state, now) {
                Ok(action) => {
                    let mut ev = self.event(now, action, actor, sid.as_str(), by);
                    ev.purpose = purpose.map(str::to_string);
                    ev.guardian = guardian.map(|g| self.keys.pseudonym(g.as_str()));
                    Some(StateChange { state, audit: vec![ev] })
                }
                Err(e) => {
                    problem = Some(e);
                    None
                }
            }
        });
        match updated {
            // Erased between the lookup and the lock: the row is gone, the tombstone is there.
            Err(custos_store::StoreError::SubjectNotFound) if self.tombstone_record(sid)?.is_some() => {
                problem = Some(erased_denial());
            }
            other => {
                other?;
            }
        }
        self.refused(problem, actor, sid.as_str(), purpose, by)
    }

    /// The outcome of a state change; a refusal because the subject was erased,
    /// or because the jurisdiction grants no such right, is audited like every
    /// other denial.
    pub(crate) fn refused(
        &self,
        problem: Option<VaultError>,
        actor: &str,
        subject: &str,
        purpose: Option<&str>,
        by: &By,
    ) -> Result<(), VaultError> {
        match problem {
            None => Ok(()),
            Some(VaultError::Denied(d)) if d.reason == DenyReason::Erased => {
                Err(self.erased_refusal(actor, subject, purpose, by))
            }
            Some(e @ VaultError::RightNotAvailable { .. }) => {
                let mut ev = self.event(self.clock.now(), AuditAction::AccessDenied, actor, subject, by);
                ev.purpose = purpose.map(str::to_string);
                ev.reason = Some("right_not_available".to_string());
                self.store.append_audit(&[ev])?;
                Err(e)
            }
            Some(other) => Err(other),
        }
    }

    /// Audits a request refused because the subject was erased, and returns the denial.
    pub(crate) fn erased_refusal(&self, actor: &str, subject: &str, purpose: Option<&str>, by: &By) -> VaultError {
        let mut ev = self.event(self.clock.now(), AuditAction::AccessDenied, actor, subject, by);
        ev.purpose = purpose.map(str::to_string);
        ev.reason = Some(DenyReason::Erased.code().to_string());
        match self.store.append_audit(&[ev]) {
            Ok(_) => erased_denial(),
            Err(e) => e.into(),
        }
    }
}

/// A standing choice that is on since a time or off: restriction, opt-out of
/// sale and sharing, limited use of sensitive information.
struct Switch {
    /// The right that turning it on exercises.
    right: Right,
    /// Where the state keeps it.
    since: fn(&mut SubjectState) -> &mut Option<Timestamp>,
    /// The audited actions for on and off.
    on: AuditAction,
    off: AuditAction,
}
