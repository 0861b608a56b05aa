//! Carrying out a verified request: started (audited), the kind's own
//! change applied through the same vault calls as the direct routes
//! (restriction, objection, consent withdrawal, opt-out, limit on sensitive
//! information, erasure), then completed with what it did as the outcome.
//! A crash between the change and the completion leaves the request
//! `in_progress`; carrying it out again repeats the change, which is
//! idempotent, and completes it.

use custos_core::audit::AuditAction;
use custos_core::policy::document::Right;
use custos_core::request::{RequestStatus, Step as Move};
use custos_core::subject::ConsentStatus;
use custos_core::time::format_date;
use custos_store::Store;
use serde_json::{Value, json};

use super::record::{Body, Details};
use super::steps::{Change, apply};
use super::*;
use crate::write::{SUBJECT_CORRECTION, WriteMode};

impl<S: Store> Vault<S> {
    /// Carries out a verified (or already started) request and completes it.
    /// An access or portability request assembles its report (audited; the
    /// person receives it as the request's response, assembled again on
    /// demand and never stored). A rectification writes each corrected value
    /// as a new version with source `subject_correction` (the prior version
    /// kept by its retention) and lists the recipients to tell (Art. 19).
    pub fn execute_request(&self, id: &str, by: &By) -> Result<RequestView, VaultError> {
        let record = self.request_record(id)?;
        let kind = Right::request_kind(&record.kind).ok_or_else(|| custos_store::corrupt("a request's kind"))?;
        if Body::decode(&record)?.status != RequestStatus::InProgress {
            self.change_request(id, by, |body, _, on| {
                apply(body, Move::Start, on)?;
                Ok(Change { step: "started", action: AuditAction::RequestStarted, reason: None })
            })?;
        }
        let details = Details::open(&self.keys, &record)?;
        let outcome = self.carry_out(kind, &record, &details, by)?;
        self.change_request(id, by, |body, details, on| {
            apply(body, Move::Complete, on)?;
            // Written now: the request keeps which categories, never the values.
            for c in &mut details.corrections {
                c.value.clear();
            }
            body.outcome = Some(outcome.clone());
            Ok(Change { step: "completed", action: AuditAction::RequestCompleted, reason: None })
        })
    }

    /// The change a request of `kind` makes, and what it did (no personal value).
    fn carry_out(&self, kind: Right, record: &RequestRecord, details: &Details, by: &By) -> Result<Value, VaultError> {
        let jurisdiction = record.jurisdiction.as_str();
        let subject = details.subject.as_str();
        let today = format_date(self.clock.now().date());
        Ok(match kind {
            Right::Restriction => {
                self.set_restricted(subject, true, by)?;
                json!({ "restricted_since": today })
            }
            Right::OptOut => {
                self.set_opted_out(subject, true, by)?;
                json!({ "opted_out_since": today })
            }
            Right::LimitSensitive => {
                self.set_sensitive_limited(subject, true, by)?;
                json!({ "sensitive_use_limited_since": today })
            }
            Right::Objection => {
                for purpose in &details.purposes {
                    self.object(subject, purpose, by)?;
                }
                json!({ "objected_to": details.purposes })
            }
            Right::WithdrawConsent => {
                let purposes = if details.purposes.is_empty() {
                    let state = self.subject(subject)?.state;
                    state
                        .consents
                        .iter()
                        .filter(|(_, c)| c.status == ConsentStatus::Granted)
                        .map(|(p, _)| p.clone())
                        .collect()
                } else {
                    details.purposes.clone()
                };
                for purpose in &purposes {
                    self.withdraw_consent(subject, purpose, None, by)?;
                }
                json!({ "consents_withdrawn": purposes })
            }
            Right::Erasure => {
                // Erased already (directly, or before a crash left the request
                // in progress): the erasure is done, with nothing more to destroy.
                let erased = match self.erase(subject, by) {
                    Err(VaultError::Denied(d)) if d.reason == custos_core::decision::DenyReason::Erased => 0,
                    other => other?,
                };
                json!({ "item_versions_erased": erased })
            }
            Right::Access | Right::Portability => {
                let report = self.access_report(subject, kind == Right::Portability, record, by)?;
                let values: usize = report.data.iter().map(|g| g.items.len()).sum();
                json!({ "categories": report.categories.len(), "values": values })
            }
            Right::Rectification => self.rectify(subject, details, by)?,
            Right::Complaint => {
                let authority = self
                    .policy
                    .jurisdiction(jurisdiction)
                    .and_then(|j| self.policy.jurisdiction_doc(j).supervisory_authority.clone());
                json!({ "acknowledged": today, "supervisory_authority": authority })
            }
            other => return Err(VaultError::NotExecutable { kind: other.as_str() }),
        })
    }

    /// Refuses a rectification without corrections, and corrections of
    /// undeclared categories or with empty or oversized values.
    pub(crate) fn check_corrections(&self, kind: Right, corrections: &[(String, String)]) -> Result<(), VaultError> {
        if kind != Right::Rectification {
            return Ok(());
        }
        if corrections.is_empty() {
            return Err(InputError::CorrectionsMissing.into());
        }
        for (category, value) in corrections {
            if self.policy.category(category).is_none() {
                let known = self.policy.category_ids().map(|c| &self.policy.category_doc(c).id.value);
                return Err(invalid_ref(PolicyIdKind::Category, category, known));
            }
            if value.is_empty() {
                return Err(InputError::EmptyValue { category: category.clone() }.into());
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(InputError::ValueTooLarge { category: category.clone(), max: MAX_VALUE_BYTES }.into());
            }
        }
        Ok(())
    }

    /// Writes a rectification's corrections, each for the purpose its current
    /// version was collected for, and names the recipients to tell.
    fn rectify(&self, subject: &str, details: &Details, by: &By) -> Result<Value, VaultError> {
        let sid = custos_core::subject::SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        let categories: Vec<&str> = details.corrections.iter().map(|c| c.category.as_str()).collect();
        let current = self.store.current_items(&sid, &categories)?;
        let mut puts = Vec::new();
        let mut not_held = Vec::new();
        for c in &details.corrections {
            match current.iter().find(|i| i.category == c.category) {
                // Cleared once written: carried out again, it writes nothing twice.
                Some(_) if c.value.is_empty() => {}
                Some(item) => puts.push(Put {
                    subject,
                    category: &c.category,
                    value: &c.value,
                    source: SUBJECT_CORRECTION,
                    purpose: &item.purpose,
                }),
                None => not_held.push(c.category.clone()),
            }
        }
        let access = Access { actor: CONTROLLER, scope: None, operation: custos_core::decision::Operation::Write };
        let versions: Vec<u32> =
            self.write_items(&puts, access, WriteMode::Correction, by)?.into_iter().collect::<Result<_, _>>()?;
        let corrected: Vec<Value> =
            puts.iter().zip(&versions).map(|(p, v)| json!({ "category": p.category, "version": v })).collect();
        let notify: Vec<Value> = self
            .policy
            .recipient_ids()
            .filter(|r| {
                puts.iter().any(|p| {
                    self.policy.category(p.category).is_some_and(|c| {
                        self.policy.purpose_ids().any(|pid| self.policy.recipient_rules(*r).may_receive(pid, c))
                    })
                })
            })
            .map(|r| {
                let doc = self.policy.recipient_doc(r);
                json!({ "id": doc.id.value, "name": doc.name })
            })
            .collect();
        Ok(json!({ "corrected": corrected, "not_held": not_held, "recipients_to_notify": notify }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use custos_core::policy::Policy;
    use custos_core::time::{FixedClock, Timestamp};
    use custos_crypto::{Keyring, MasterKey};
    use custos_test_support::TestStorage;

    use super::*;
    use crate::{NewSubject, Submission, VerifyMethod};

    /// The request record outlives the subject's erasure: once written, a
    /// correction's value is gone from its sealed details, its category kept.
    #[test]
    fn a_written_correction_leaves_only_its_category_in_the_request() -> Result<(), Box<dyn std::error::Error>> {
        let policy =
            Arc::new(Policy::from_yaml(include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml"))?);
        let storage = TestStorage::fresh()?;
        let clock = Arc::new(FixedClock::new(Timestamp(1_780_000_000_000_000)));
        let v = Vault::new(policy, storage.open()?, Keyring::new(&MasterKey::generate()?)?, clock);
        let subject = NewSubject { id: "eu-u1", jurisdiction: "eea", region: None, birth_date: None, guardian: None };
        v.add_subject(&subject, &By::Cli)?;
        let put = Put {
            subject: "eu-u1",
            category: "contact.name",
            value: "Old",
            source: "provided",
            purpose: "provide_offerings",
        };
        v.put(&put, &By::Cli)?;
        let corrections = vec![("contact.name".to_string(), "New Name".to_string())];
        let submission = Submission { subject: "eu-u1", kind: "rectification", corrections, ..Submission::default() };
        let r = v.submit_request(&submission, &By::Cli)?;
        let pending = Details::open(&v.keys, &v.request_record(&r.id)?)?;
        assert_eq!(pending.corrections[0].value, "New Name", "kept, sealed, until written");
        v.verify_request(&r.id, VerifyMethod::Session, &By::Cli)?;
        v.execute_request(&r.id, &By::Cli)?;
        let written = Details::open(&v.keys, &v.request_record(&r.id)?)?;
        let kept: Vec<(&str, &str)> =
            written.corrections.iter().map(|c| (c.category.as_str(), c.value.as_str())).collect();
        assert_eq!(kept, [("contact.name", "")]);
        Ok(())
    }
}
