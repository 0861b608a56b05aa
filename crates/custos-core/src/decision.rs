//! The decision engine: may this actor read this category of this subject's
//! data for this purpose, now?
//!
//! [`decide`] is one pure function of (policy, subject, request). It does not
//! allocate; the sentence explaining a denial is built only on demand by
//! [`Denial::sentence`]. The checks run in a fixed order, so one request always
//! yields one reason:
//!
//! 1. the actor is neither the controller nor a recipient declared in the
//!    policy → `actor_not_declared`
//! 2. the caller's API key is bound to purposes and this is not one of them →
//!    `purpose_not_bound`
//! 3. the subject has been erased → `erased`
//! 4. the purpose may not use the category → `purpose_not_declared_for_category`
//! 5. the request recovers a tokenized value and the policy does not list the
//!    purpose as one that may detokenize the category → `detokenize_not_allowed`
//! 6. the actor is a recipient not declared for this purpose and category → `recipient_not_allowed`
//! 7. processing is restricted and the purpose is not allowed then → `restricted`
//! 8. the subject opted out of sale and sharing and the purpose sells, shares
//!    or targets advertising → `opted_out`
//! 9. the subject limited the use of sensitive information, the category is
//!    sensitive and the purpose is not one CCPA §7027(m) still permits →
//!    `sensitive_use_limited`
//! 10. the purpose has no legal basis in the subject's jurisdiction → `no_legal_basis`
//! 11. the subject is under the jurisdiction's guardian age (whole years on the UTC
//!     date of the request; no birth date = adult), the purpose's basis is not legal
//!     obligation, and the consent recorded for this purpose is not one granted by
//!     the linked guardian → `guardian_consent_missing` (`consent_withdrawn` if the
//!     linked guardian withdrew it)
//! 12. the purpose is direct marketing and the subject objected to it or to any
//!     other direct-marketing purpose of the policy (an objection to direct
//!     marketing covers all of it, GDPR Art. 21(3)) → `objected`
//! 13. the basis is consent with no live consent → `consent_missing` / `consent_withdrawn`;
//!     the basis is legitimate interest and the subject objected → `objected`
//!
//! Checks 1 and 2 depend only on who asks and why; [`admit`] runs them alone,
//! so that a caller can be refused before anything about the subject is
//! looked up (and [`decide`] runs them first, so the answer is the same).

use serde::Serialize;

use crate::policy::document::LegalBasis;
use crate::policy::{CategoryId, JurisdictionId, Policy, PurposeId, PurposeSet, RecipientId};
use crate::subject::{ConsentStatus, Subject, SubjectState};
use crate::time::{Timestamp, age_on};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The controller itself (its own staff and systems).
    Controller,
    /// A declared recipient.
    Recipient(RecipientId),
    /// Someone the policy does not declare (a name that resolves to neither
    /// the controller nor a recipient, e.g. a key whose recipient was since
    /// removed from the policy). Always denied.
    Undeclared,
}

/// The purposes a caller may act for, whatever the policy would allow.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// No limit beyond the policy (the controller's own callers: admin keys, the CLI).
    Unlimited,
    /// Only these purposes (the purposes a service key is bound to).
    Bound(&'a PurposeSet),
}

impl Scope<'_> {
    /// Whether the scope includes `purpose`.
    pub fn includes(self, purpose: PurposeId) -> bool {
        match self {
            Scope::Unlimited => true,
            Scope::Bound(set) => set.contains(purpose),
        }
    }
}

/// What the request does with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reads it (the current value or its history); a tokenized value is
    /// released as its token.
    Read,
    /// Stores a new version of it.
    Write,
    /// Recovers the full value behind a token.
    Detokenize,
}

/// One access request, resolved against the policy.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Why.
    pub purpose: PurposeId,
    /// What.
    pub category: CategoryId,
    /// Who.
    pub actor: Actor,
    /// Within which purposes the caller may act.
    pub scope: Scope<'a>,
    /// What is done with the value.
    pub operation: Operation,
    /// When (from the injected clock).
    pub at: Timestamp,
}

/// Why a request was denied: a stable, machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The subject was erased (crypto-shredded).
    Erased,
    /// The policy does not let this purpose use this category.
    PurposeNotDeclaredForCategory,
    /// The actor is not a recipient declared for this purpose and category.
    RecipientNotAllowed,
    /// Processing is restricted (GDPR Art. 18).
    Restricted,
    /// The subject opted out of sale and sharing (CCPA §1798.120).
    OptedOut,
    /// The subject limited the use of sensitive information (CCPA §1798.121).
    SensitiveUseLimited,
    /// The subject's jurisdiction is unknown to the policy, or the purpose has no basis there.
    NoLegalBasis,
    /// The subject is a child without a linked guardian's consent.
    GuardianConsentMissing,
    /// The subject objected.
    Objected,
    /// A consent-based purpose with no consent record.
    ConsentMissing,
    /// A consent-based purpose whose consent was withdrawn.
    ConsentWithdrawn,
    /// The actor is neither the controller nor a recipient declared in the policy.
    ActorNotDeclared,
    /// The caller's API key is not bound to this purpose.
    PurposeNotBound,
    /// The policy does not let this purpose recover the full value of this tokenized category.
    DetokenizeNotAllowed,
}

impl DenyReason {
    /// Every reason, in check order.
    pub const ALL: [DenyReason; 14] = [
        DenyReason::ActorNotDeclared,
        DenyReason::PurposeNotBound,
        DenyReason::Erased,
        DenyReason::PurposeNotDeclaredForCategory,
        DenyReason::DetokenizeNotAllowed,
        DenyReason::RecipientNotAllowed,
        DenyReason::Restricted,
        DenyReason::OptedOut,
        DenyReason::SensitiveUseLimited,
        DenyReason::NoLegalBasis,
        DenyReason::GuardianConsentMissing,
        DenyReason::Objected,
        DenyReason::ConsentMissing,
        DenyReason::ConsentWithdrawn,
    ];

    /// The reason code, e.g. `consent_missing`.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::Erased => "erased",
            DenyReason::PurposeNotDeclaredForCategory => "purpose_not_declared_for_category",
            DenyReason::RecipientNotAllowed => "recipient_not_allowed",
            DenyReason::Restricted => "restricted",
            DenyReason::OptedOut => "opted_out",
            DenyReason::SensitiveUseLimited => "sensitive_use_limited",
            DenyReason::NoLegalBasis => "no_legal_basis",
            DenyReason::GuardianConsentMissing => "guardian_consent_missing",
            DenyReason::Objected => "objected",
            DenyReason::ConsentMissing => "consent_missing",
            DenyReason::ConsentWithdrawn => "consent_withdrawn",
            DenyReason::ActorNotDeclared => "actor_not_declared",
            DenyReason::PurposeNotBound => "purpose_not_bound",
            DenyReason::DetokenizeNotAllowed => "detokenize_not_allowed",
        }
    }
}

/// A denial: the reason and what it applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// The reason code.
    pub reason: DenyReason,
    /// The request it answers.
    pub purpose: PurposeId,
    /// The category asked for; `None` for a caller refused by [`admit`]
    /// before any category was in question.
    pub category: Option<CategoryId>,
    /// The actor who asked.
    pub actor: Actor,
}

impl Denial {
    /// One sentence a person can read; it names policy ids, never personal values.
    pub fn sentence(&self, policy: &Policy) -> String {
        let p = &policy.purpose_doc(self.purpose).id.value;
        let c = match self.category {
            Some(c) => format!("`{}`", policy.category_doc(c).id.value),
            None => "personal data".to_string(),
        };
        match self.reason {
            DenyReason::Erased => match self.category {
                Some(_) => {
                    format!("the subject's data was erased and can no longer be read (purpose `{p}`, category {c})")
                }
                None => format!("the subject's data was erased and can no longer be read (purpose `{p}`)"),
            },
            DenyReason::PurposeNotDeclaredForCategory => {
                format!("the policy does not allow purpose `{p}` to use category {c}")
            }
            DenyReason::RecipientNotAllowed => match self.actor {
                Actor::Recipient(r) => format!(
                    "recipient `{}` is not declared to receive {c} for purpose `{p}`",
                    policy.recipient_doc(r).id.value
                ),
                Actor::Controller | Actor::Undeclared => {
                    format!("the actor is not declared to receive {c} for purpose `{p}`")
                }
            },
            DenyReason::Restricted => {
                format!(
                    "processing of this subject's data is restricted; purpose `{p}` may not read {c} while restricted"
                )
            }
            DenyReason::OptedOut => format!(
                "the subject opted out of the sale and sharing of their personal information; purpose `{p}` sells, shares or targets advertising and may not read {c}"
            ),
            DenyReason::SensitiveUseLimited => format!(
                "the subject limited the use of their sensitive personal information; purpose `{p}` is not one of the uses still permitted and may not read {c}"
            ),
            DenyReason::NoLegalBasis => {
                format!("purpose `{p}` has no legal basis in the subject's jurisdiction, so {c} cannot be read for it")
            }
            DenyReason::GuardianConsentMissing => format!(
                "the subject is under the age that needs a parent or guardian, and no linked guardian has consented to purpose `{p}` (category {c})"
            ),
            DenyReason::Objected => {
                format!("the subject has objected to processing for purpose `{p}` (category {c})")
            }
            DenyReason::ConsentMissing => {
                format!("purpose `{p}` rests on consent and the subject has not consented (category {c})")
            }
            DenyReason::ConsentWithdrawn => {
                format!("purpose `{p}` rests on consent and the consent was withdrawn (category {c})")
            }
            DenyReason::ActorNotDeclared => format!(
                "the actor is neither the controller nor a recipient declared in the policy, so it may not have {c} for purpose `{p}`"
            ),
            DenyReason::PurposeNotBound => {
                format!("this API key is not bound to purpose `{p}`, so it may not have {c} for it")
            }
            DenyReason::DetokenizeNotAllowed => {
                format!("the policy does not allow purpose `{p}` to recover the full value of {c}")
            }
        }
    }
}

/// The outcome of a decision.
pub type Decision = Result<LegalBasis, Denial>;

/// The checks that depend only on who asks and why (1 and 2 of the order
/// above): whether the actor is declared, and whether the caller's scope
/// includes the purpose.
pub fn admit(actor: Actor, scope: Scope<'_>, purpose: PurposeId) -> Result<(), DenyReason> {
    if actor == Actor::Undeclared {
        return Err(DenyReason::ActorNotDeclared);
    }
    if !scope.includes(purpose) {
        return Err(DenyReason::PurposeNotBound);
    }
    Ok(())
}

/// Check 3 of the order above, on its own: whether the subject's data can
/// still be read at all (for a request that names no category, such as
/// reading every value of a subject who has none left).
pub fn readable(subject: &Subject) -> Result<(), DenyReason> {
    if subject.erased_at.is_some() { Err(DenyReason::Erased) } else { Ok(()) }
}

/// Decides one request. Returns the legal basis the read rests on, or a denial.
pub fn decide(policy: &Policy, subject: &Subject, req: &AccessRequest<'_>) -> Decision {
    let deny = |reason| Err(Denial { reason, purpose: req.purpose, category: Some(req.category), actor: req.actor });
    if let Err(reason) = admit(req.actor, req.scope, req.purpose) {
        return deny(reason);
    }
    if let Err(reason) = readable(subject) {
        return deny(reason);
    }
    let rules = policy.purpose_rules(req.purpose);
    if !rules.allows(req.category) {
        return deny(DenyReason::PurposeNotDeclaredForCategory);
    }
    if req.operation == Operation::Detokenize && !policy.may_detokenize(req.purpose, req.category) {
        return deny(DenyReason::DetokenizeNotAllowed);
    }
    if let Actor::Recipient(r) = req.actor
        && !policy.recipient_rules(r).may_receive(req.purpose, req.category)
    {
        return deny(DenyReason::RecipientNotAllowed);
    }
    let state = &subject.state;
    if state.restricted_since.is_some() && !rules.allowed_when_restricted {
        return deny(DenyReason::Restricted);
    }
    if state.opted_out_since.is_some() && rules.sale_or_sharing {
        return deny(DenyReason::OptedOut);
    }
    if state.sensitive_limited_since.is_some()
        && !rules.sensitive_use_permitted
        && policy.category_doc(req.category).sensitive
    {
        return deny(DenyReason::SensitiveUseLimited);
    }
    let Some(jurisdiction) = policy.jurisdiction(&subject.jurisdiction) else {
        return deny(DenyReason::NoLegalBasis);
    };
    let Some(basis) = rules.basis_in(jurisdiction) else {
        return deny(DenyReason::NoLegalBasis);
    };
    let purpose_id = policy.purpose_doc(req.purpose).id.value.as_str();
    let consent = state.consents.get(purpose_id);
    if is_minor(policy, subject, jurisdiction, req.at) && basis != LegalBasis::LegalObligation {
        // Guardian links never change after creation: a consent marked as the
        // guardian's was given by this subject's linked guardian.
        let by_guardian = consent.filter(|c| c.by_guardian && subject.guardian.is_some());
        match by_guardian.map(|c| c.status) {
            Some(ConsentStatus::Granted) => {}
            Some(ConsentStatus::Withdrawn) => return deny(DenyReason::ConsentWithdrawn),
            None => return deny(DenyReason::GuardianConsentMissing),
        }
    }
    let objected = state.objections.contains_key(purpose_id);
    if rules.direct_marketing && (objected || objected_to_direct_marketing(policy, state)) {
        return deny(DenyReason::Objected);
    }
    match basis {
        LegalBasis::Consent => match consent.map(|c| c.status) {
            Some(ConsentStatus::Granted) => {}
            Some(ConsentStatus::Withdrawn) => return deny(DenyReason::ConsentWithdrawn),
            None => return deny(DenyReason::ConsentMissing),
        },
        LegalBasis::LegitimateInterest if objected => return deny(DenyReason::Objected),
        LegalBasis::LegitimateInterest | LegalBasis::Contract | LegalBasis::LegalObligation => {}
    }
    Ok(basis)
}

/// Whether the subject objected to any direct-marketing purpose of the policy.
fn objected_to_direct_marketing(policy: &Policy, state: &SubjectState) -> bool {
    policy
        .direct_marketing_purposes()
        .iter()
        .any(|&p| state.objections.contains_key(policy.purpose_doc(p).id.value.as_str()))
}

/// Whether the subject is under the guardian age of their jurisdiction at `at`.
///
/// A subject without a birth date is treated as an adult: the guardian rule
/// can only apply to people whose age the company knows.
pub fn is_minor(policy: &Policy, subject: &Subject, jurisdiction: JurisdictionId, at: Timestamp) -> bool {
    let under = policy.jurisdiction_rules(jurisdiction).guardian_required_under;
    subject.birth_date.is_some_and(|b| age_on(b, at.date()) < i32::from(under))
}

#[cfg(test)]
mod tests;
