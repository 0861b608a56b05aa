//! Regression tests of policy compilation, linting and rendering, each named
//! after the defect it guards (issue 8, "Decision engine" and "Structure").

use serde_saphyr::{Location, Spanned};

use super::*;
use crate::policy::render::{Format, render};

fn spanned(s: impl Into<String>) -> Spanned<String> {
    Spanned::new(s.into(), Location::UNKNOWN, Location::UNKNOWN)
}

/// The minimal policy as a document, to grow tables beyond what YAML by hand could.
fn minimal_document() -> PolicyDocument {
    match serde_saphyr::from_str(MINIMAL) {
        Ok(doc) => doc,
        Err(e) => panic!("the minimal policy does not parse: {e}"),
    }
}

fn recipient(id: &str, purpose: &str) -> RecipientDoc {
    RecipientDoc {
        id: spanned(id),
        name: format!("Recipient {id}"),
        kind: RecipientKind::ServiceProvider,
        functions: Vec::new(),
        purposes: vec![spanned(purpose)],
        categories: Vec::new(),
        countries: Vec::new(),
        named_in: Vec::new(),
        description: String::new(),
    }
}

fn jurisdiction(id: &str) -> JurisdictionDoc {
    JurisdictionDoc {
        id: spanned(id),
        name: format!("Jurisdiction {id}"),
        law: "A law".into(),
        framework: None,
        rights: vec![Right::Access],
        response: ResponseDoc { deadline: spanned("1 month"), extension: None, source: "the law".into() },
        requests: Vec::new(),
        calendar: None,
        guardian_required_under: 16,
        controller: spanned("acme"),
        contact: None,
        supervisory_authority: None,
        statements: Vec::new(),
        countries: Vec::new(),
    }
}

fn compile_errors(doc: PolicyDocument) -> Vec<String> {
    match Policy::compile(doc) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.into_iter().map(|d| d.message).collect(),
    }
}

/// Ids are `u16`: recipient number 65,537 (index 65,536) was cast to
/// recipient 0 and read with recipient 0's rules. A table that long is now
/// refused when the policy is compiled, at the first entry beyond the limit.
#[test]
fn regression_recipient_count_over_u16_is_refused() {
    let mut doc = minimal_document();
    for i in 0..=usize::from(u16::MAX) + 1 {
        doc.recipients.push(recipient(&format!("r{i}"), "service"));
    }
    assert_eq!(doc.recipients.len(), 65_537);
    let errs = compile_errors(doc);
    assert_eq!(
        errs,
        ["recipient `r65535` is beyond the limit: a policy may declare at most 65535 recipients"],
        "a 65,537-recipient policy must be refused, not wrapped"
    );

    // One fewer loads, and the last recipient keeps its own rules.
    let mut doc = minimal_document();
    for i in 0..MAX_TABLE_LEN {
        doc.recipients.push(recipient(&format!("r{i}"), "service"));
    }
    let policy = match Policy::compile(doc) {
        Ok(p) => p,
        Err(e) => panic!("65,535 recipients must load: {e}"),
    };
    let last = policy.recipient("r65534").expect("the last recipient resolves");
    assert_eq!(policy.recipient_doc(last).id.value, "r65534");
    assert_eq!(policy.recipient_ids().count(), MAX_TABLE_LEN);
}

/// The same for jurisdictions: the 65,537th would have shared the first
/// one's legal bases and guardian age.
#[test]
fn regression_jurisdiction_count_over_u16_is_refused() {
    let mut doc = minimal_document();
    for i in 1..=usize::from(u16::MAX) + 1 {
        doc.jurisdictions.push(jurisdiction(&format!("j{i}")));
    }
    let errs = compile_errors(doc);
    assert_eq!(errs, ["jurisdiction `j65535` is beyond the limit: a policy may declare at most 65535 jurisdictions"]);
}

/// `allowed_when_restricted` was a free flag: any purpose could declare that
/// it goes on while processing is restricted. The policy now states the
/// ground (GDPR Art. 18(2): storage or legal claims); a bare `true`, or the
/// flag on a direct-marketing purpose, is a warning at the purpose.
#[test]
fn regression_allowed_when_restricted_on_a_purpose_that_is_not_storage_or_legal_claims_warns() {
    let flagged = |value: &str| {
        minimal_with("      period: 1 year\n", &format!("      period: 1 year\n    allowed_when_restricted: {value}\n"))
    };

    let text = flagged("true");
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    let (line, column) = position_of(&text, "id: service\n");
    assert_eq!((ws[0].line, ws[0].column), (line, column + 4));
    assert!(
        ws[0].message.starts_with("purpose `service` continues while processing is restricted"),
        "{}",
        ws[0].message
    );
    assert!(ws[0].message.contains("`allowed_when_restricted: storage` or `legal_claims`"), "{}", ws[0].message);
    assert!(load(&text).purpose_rules(PurposeId(0)).allowed_when_restricted);

    for ground in ["storage", "legal_claims"] {
        let text = flagged(ground);
        assert!(warnings(&text).is_empty(), "{ground}: {:#?}", warnings(&text));
        assert!(load(&text).purpose_rules(PurposeId(0)).allowed_when_restricted, "{ground}");
    }
    assert!(!load(&flagged("false")).purpose_rules(PurposeId(0)).allowed_when_restricted);
    assert!(warnings(&flagged("false")).is_empty());

    // Direct marketing is never storage or legal claims.
    for value in ["true", "storage", "legal_claims"] {
        let text = edit(
            &flagged(value),
            "    allowed_when_restricted",
            "    direct_marketing: true\n    allowed_when_restricted",
        );
        let ws = warnings(&text);
        assert_eq!(ws.len(), 1, "{value}: {ws:#?}");
        assert!(ws[0].message.starts_with("purpose `service` is direct marketing"), "{}", ws[0].message);
    }

    // Anything else is an error that lists what is accepted.
    let e = the_error(&flagged("sometimes"));
    assert!(e.message.contains("`false`, `true`, `storage` or `legal_claims`"), "{}", e.message);
}

/// The minimal policy with its jurisdiction replaced by one with this id,
/// law text and framework line.
fn with_jurisdiction(id: &str, law: &str, framework: &str) -> String {
    minimal_with(
        "  - id: eea\n    name: European Economic Area\n    law: GDPR\n",
        &format!("  - id: {id}\n    name: Somewhere\n    law: {law}\n{framework}"),
    )
}

/// `render.rs` chose the jurisdiction that gets the CCPA disclosures by the
/// id `california` (or words in its `law`). The policy now says it:
/// `framework: ccpa`, whatever the id and the name of the law.
#[test]
fn regression_ccpa_section_is_derived_from_the_policy_not_the_id_california() {
    const DISCLOSURES: &str = "Categories of personal information collected.";

    let declared = load(&with_jurisdiction("us-ca", "Cal. Civ. Code §1798.100 et seq.", "    framework: ccpa\n"));
    let md = render(&declared, Format::Markdown);
    assert!(md.contains(DISCLOSURES), "framework: ccpa must bring the CCPA disclosures:\n{md}");
    assert!(md.contains("Identifiers (A):"), "{md}");

    let by_id_only = load(&with_jurisdiction("california", "A state law", ""));
    let md = render(&by_id_only, Format::Markdown);
    assert!(!md.contains(DISCLOSURES), "the id `california` alone must not bring the CCPA disclosures");

    let gdpr = load(&with_jurisdiction("california", "GDPR", "    framework: gdpr\n"));
    assert!(!render(&gdpr, Format::Markdown).contains(DISCLOSURES));
    assert!(!render(&gdpr, Format::Html).contains(DISCLOSURES));

    // The shipped example declares it, so its California section keeps them.
    let md = render(&example(), Format::Markdown);
    let ca = &md[md.find("### California").expect("california")..md.find("### Canada").expect("canada")];
    assert!(ca.contains(DISCLOSURES));
}

/// A policy written before `framework` existed names the CCPA in its `law`
/// text only: the linter says what to add instead of the disclosures
/// disappearing unnoticed.
#[test]
fn a_jurisdiction_naming_the_ccpa_without_a_framework_warns() {
    let text = with_jurisdiction("us-ca", "California Consumer Privacy Act (CCPA)", "");
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert!(ws[0].message.contains("add `framework: ccpa`"), "{}", ws[0].message);
    assert!(
        warnings(&with_jurisdiction("us-ca", "California Consumer Privacy Act (CCPA)", "    framework: ccpa\n"))
            .is_empty()
    );
}

#[test]
fn an_unknown_framework_is_an_error_that_lists_the_known_ones() {
    let e = the_error(&with_jurisdiction("us-ca", "A law", "    framework: cpra\n"));
    assert!(e.message.contains("ccpa") && e.message.contains("gdpr"), "{}", e.message);
}
