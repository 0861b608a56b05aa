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

impl<S: Store> Vault<S> {
    /// Carries out a verified (or already started) request and completes it.
    /// Kinds whose execution Custos does not carry out yet (`access`,
    /// `portability`, `rectification`) are refused before anything moves.
    pub fn execute_request(&self, id: &str, by: &By) -> Result<RequestView, VaultError> {
        let record = self.request_record(id)?;
        let kind = Right::request_kind(&record.kind).ok_or_else(|| custos_store::corrupt("a request's kind"))?;
        if matches!(kind, Right::Access | Right::Portability | Right::Rectification) {
            return Err(VaultError::NotExecutable { kind: kind.as_str() });
        }
        if Body::decode(&record)?.status != RequestStatus::InProgress {
            self.change_request(id, by, |body, _, on| {
                apply(body, Move::Start, on)?;
                Ok(Change { step: "started", action: AuditAction::RequestStarted, reason: None })
            })?;
        }
        let details = Details::open(&self.keys, &record)?;
        let outcome = self.carry_out(kind, &record.jurisdiction, &details, by)?;
        self.change_request(id, by, |body, _, on| {
            apply(body, Move::Complete, on)?;
            body.outcome = Some(outcome.clone());
            Ok(Change { step: "completed", action: AuditAction::RequestCompleted, reason: None })
        })
    }

    /// The change a request of `kind` makes, and what it did (no personal value).
    fn carry_out(&self, kind: Right, jurisdiction: &str, details: &Details, by: &By) -> Result<Value, VaultError> {
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
                let erased = self.erase(subject, by)?;
                json!({ "item_versions_erased": erased })
            }
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
}
