//! Labels for the policy's enumerations and small text helpers (dates, lists, anchors).

use std::fmt::Write as _;

use crate::policy::document::{LegalBasis, RecipientKind, RetentionRuleDoc, RetentionStart, Right, TransferKind};
use crate::policy::{Policy, Verification};
use crate::time::parse_date;

pub(super) fn ccpa_label(letter: &str) -> &'static str {
    match letter {
        "A" => "Identifiers",
        "B" => "Personal information described in Cal. Civ. Code §1798.80(e)",
        "C" => "Characteristics of protected classifications under California or federal law",
        "D" => "Commercial information",
        "E" => "Biometric information",
        "F" => "Internet or other electronic network activity information",
        "G" => "Geolocation data",
        "H" => "Audio, electronic, visual, thermal, olfactory, or similar information",
        "I" => "Professional or employment-related information",
        "J" => "Education information",
        "K" => "Inferences drawn to create a profile",
        "L" => "Sensitive personal information",
        _ => "Other",
    }
}

pub(super) fn basis_label(b: LegalBasis) -> &'static str {
    match b {
        LegalBasis::Contract => "performance of a contract",
        LegalBasis::LegitimateInterest => "legitimate interest",
        LegalBasis::LegalObligation => "legal obligation",
        LegalBasis::Consent => "your consent",
    }
}

pub(super) fn right_label(r: Right) -> &'static str {
    match r {
        Right::Access => {
            "ask whether we hold personal information about you and request a copy of it and information about how it is processed"
        }
        Right::Rectification => "request that inaccurate personal information is corrected",
        Right::Erasure => "request deletion of your personal information",
        Right::Restriction => "request us to restrict the processing of your personal information",
        Right::Objection => "object to the processing of your personal information",
        Right::Portability => "request portability of personal information that you have provided to us",
        Right::Complaint => "lodge a complaint",
        Right::WithdrawConsent => {
            "withdraw your consent at any time, after which we stop any further processing for that purpose"
        }
        Right::OptOut => {
            "opt out of the sale or sharing of your personal information, and of its use for targeted advertising"
        }
        Right::LimitSensitive => "limit the use and disclosure of your sensitive personal information",
        Right::NonDiscrimination => "not be discriminated against for exercising your rights",
        Right::Confirmation => "ask whether we process personal information about you",
        Right::Anonymisation => "request anonymisation of personal information that is unnecessary or excessive",
        Right::SharingInformation => "be told which companies we share your personal information with",
        Right::AutomatedDecisions => {
            "not be subject to a decision based solely on automated processing that significantly affects you"
        }
    }
}

pub(super) fn recipient_kind_label(k: RecipientKind) -> &'static str {
    match k {
        RecipientKind::Affiliate => "affiliates",
        RecipientKind::ServiceProvider => "service provider",
        RecipientKind::TransactionParty => "transactions involving third parties",
        RecipientKind::BusinessTransfer => "business transfers",
        RecipientKind::LegalAndProtection => "protection of us and others",
        RecipientKind::AtYourOption => "at your option",
    }
}

pub(super) fn transfer_kind_label(k: TransferKind) -> &'static str {
    match k {
        TransferKind::Adequacy => "adequacy decision",
        TransferKind::StandardContractualClauses => "standard contractual clauses",
        TransferKind::BindingCorporateRules => "binding corporate rules",
        TransferKind::Derogation => "derogation under GDPR Art. 49",
    }
}

pub(super) fn retention_label(r: &RetentionRuleDoc) -> String {
    let mut s = match (&r.period, r.as_long_as_required) {
        (Some(p), _) => {
            let from = match r.from {
                Some(RetentionStart::Collection) | None => "from collection",
                Some(RetentionStart::AccountClosure) => "after your account is closed",
                Some(RetentionStart::LastUse) => "after last use",
            };
            format!("{} {from}.", p.value)
        }
        (None, _) => "as long as required to fulfill this purpose.".to_string(),
    };
    if let Some(c) = &r.criteria {
        let _ = write!(s, " {c}");
    }
    s
}

pub(super) fn category_names<'a>(policy: &Policy, ids: impl Iterator<Item = &'a str>) -> String {
    ids.map(|id| policy.category(id).map_or(id, |c| policy.category_doc(c).name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn jurisdiction_name<'a>(policy: &'a Policy, id: &'a str) -> &'a str {
    policy.jurisdiction(id).map_or(id, |j| policy.jurisdiction_doc(j).name.as_str())
}

pub(super) fn controller_line(policy: &Policy, id: &str) -> String {
    policy
        .document()
        .controllers
        .iter()
        .find(|c| c.id.value == id)
        .map_or_else(|| id.to_string(), |c| format!("{}, {}", c.name, c.address))
}

/// "a", "a and b", "a, b and c".
pub(super) fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `2020-01-24` → `January 24, 2020`; anything else as written.
pub(super) fn long_date(s: &str) -> String {
    parse_date(s).map_or_else(|_| s.to_string(), |d| format!("{} {}, {}", d.month(), d.day(), d.year()))
}

/// A heading's anchor: lower-case ASCII letters and digits, words joined by `-`.
pub(super) fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if (ch.is_whitespace() || ch == '-') && !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A request kind as the notice names it in its list of response times.
pub(super) fn request_label(r: Right) -> &'static str {
    match r {
        Right::Access => "Access (requests to know)",
        Right::Rectification => "Correction",
        Right::Erasure => "Deletion",
        Right::Restriction => "Restriction",
        Right::Objection => "Objection",
        Right::Portability => "Portability",
        Right::Complaint => "Complaints",
        Right::WithdrawConsent => "Withdrawing consent",
        Right::OptOut => "Opting out of sale, sharing and targeted advertising",
        Right::LimitSensitive => "Limiting the use of sensitive personal information",
        Right::NonDiscrimination
        | Right::Confirmation
        | Right::Anonymisation
        | Right::SharingInformation
        | Right::AutomatedDecisions => right_label(r),
    }
}

/// How a request's identity check is described to the person.
pub(super) fn verification_label(v: Verification) -> &'static str {
    match v {
        Verification::None => "no identity check is needed",
        Verification::EmailCode => "we confirm it with a code sent to your email address",
        Verification::TwoDataPoints => "we match two pieces of information you give us against what we hold",
        Verification::ThreeDataPointsAndDeclaration => {
            "we match three pieces of information you give us against what we hold, with a declaration you sign"
        }
        Verification::Session => "you make it while signed in to your account",
    }
}
