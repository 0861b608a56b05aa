//! Warnings about a policy that loads but deserves a look.

use super::document::{LegalBasis, TransferDoc, WhenRestricted};
use super::{Diagnostic, Policy, Severity};
use crate::time::parse_date;
use time::Date;

/// Lints a compiled policy as of `today`; returns warnings in file order.
pub fn lint(policy: &Policy, today: Date) -> Vec<Diagnostic> {
    let doc = policy.document();
    let mut out = Vec::new();
    let mut warn = |loc: serde_saphyr::Location, message: String| {
        out.push(Diagnostic::at(Severity::Warning, loc, message));
    };

    for t in &doc.transfers {
        if let Some(msg) = expired_transfer(t, today) {
            let loc = t.valid_until.as_ref().map_or(t.id.referenced, |u| u.referenced);
            warn(loc, msg);
        }
    }

    for p in policy.purpose_ids() {
        let pd = policy.purpose_doc(p);
        let rules = policy.purpose_rules(p);
        let mut missing = Vec::new();
        let mut consent_in = Vec::new();
        for j in policy.jurisdiction_ids() {
            let jid = &policy.jurisdiction_doc(j).id.value;
            match rules.basis_in(j) {
                None => missing.push(jid.as_str()),
                Some(LegalBasis::Consent) => consent_in.push(jid.as_str()),
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            warn(
                pd.id.referenced,
                format!(
                    "purpose `{}` has no legal basis in {}: every read for it there will be denied (add a `legal_basis` entry or a `default`)",
                    pd.id.value,
                    list(&missing)
                ),
            );
        }
        if !consent_in.is_empty() {
            warn(
                pd.id.referenced,
                format!(
                    "purpose `{}` rests on consent in {}: reads there need a live consent record, and withdrawal stops them at once",
                    pd.id.value,
                    list(&consent_in)
                ),
            );
        }
        match (pd.allowed_when_restricted, pd.direct_marketing) {
            (WhenRestricted::Stops, _) => {}
            (when, true) => warn(
                pd.id.referenced,
                format!(
                    "purpose `{}` is direct marketing, which is neither storage nor legal claims, yet it continues while processing is restricted (`allowed_when_restricted: {}`): remove the flag",
                    pd.id.value,
                    when.ground().unwrap_or("true")
                ),
            ),
            (WhenRestricted::Continues, false) => warn(
                pd.id.referenced,
                format!(
                    "purpose `{}` continues while processing is restricted, but GDPR Art. 18(2) lets restricted data only be stored or used for legal claims: state the ground (`allowed_when_restricted: storage` or `legal_claims`) or remove the flag",
                    pd.id.value
                ),
            ),
            (WhenRestricted::Storage | WhenRestricted::LegalClaims, false) => {}
        }
        if pd.retention.as_long_as_required {
            warn(
                pd.id.referenced,
                format!(
                    "purpose `{}` keeps data only \"as long as required\": state a period or the criteria for one (CCPA §1798.100(a)(3)), or automatic deletion cannot run",
                    pd.id.value
                ),
            );
        }
    }

    for j in policy.jurisdiction_ids() {
        let jd = policy.jurisdiction_doc(j);
        if jd.framework.is_none() && (jd.law.contains("CCPA") || jd.law.contains("California Consumer Privacy Act")) {
            warn(
                jd.id.referenced,
                format!(
                    "jurisdiction `{}` names the CCPA but declares no `framework`: add `framework: ccpa`, or the notice leaves out the CCPA disclosures",
                    jd.id.value
                ),
            );
        }
    }

    for c in policy.category_ids() {
        if !policy.purpose_ids().any(|p| policy.purpose_rules(p).allows(c)) {
            let cd = policy.category_doc(c);
            warn(
                cd.id.referenced,
                format!("category `{}` is used by no purpose: it can be stored but never read", cd.id.value),
            );
        }
    }

    out.sort_by_key(|d| (d.line, d.column));
    out
}

fn expired_transfer(t: &TransferDoc, today: Date) -> Option<String> {
    let until = parse_date(&t.valid_until.as_ref()?.value).ok()?;
    if until > today {
        return None;
    }
    let mut msg = format!(
        "transfer mechanism `{}` ({}) is no longer valid since {}",
        t.id.value,
        t.name,
        crate::time::format_date(until)
    );
    if let Some(why) = &t.invalidated_by {
        msg.push_str(&format!(" ({why})"));
    }
    msg.push_str(": no new transfer may rely on it");
    if !t.replaced_by.is_empty() {
        msg.push_str(&format!("; use instead: {}", t.replaced_by.join(" or ")));
    }
    Some(msg)
}

fn list(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}
