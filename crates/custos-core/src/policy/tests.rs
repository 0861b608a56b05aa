//! Tests of policy loading and validation.
//!
//! Two halves: the shipped example (the AWS Privacy Notice of 24 January 2020)
//! loads, declares what the rest of Custos relies on, and lints as expected;
//! and every kind of mistake in a policy file is an error (or a warning) that
//! says what is wrong and where, built as one edit of a minimal valid policy.

use time::macros::date;

use super::*;
use crate::time::Period;

const EXAMPLE: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");

/// The smallest valid policy: one of everything that is required.
const MINIMAL: &str = r#"notice:
  id: test
  title: Test notice
  version: "1"
  effective: "2024-01-01"
sources:
  - id: provided
    kind: provided
    name: Information you give us
categories:
  - id: contact.email
    name: Email address
    ccpa: A
    group: Contact
    sources: [provided]
purposes:
  - id: service
    name: Provide the service
    description: To provide the service.
    categories: [contact.email]
    legal_basis:
      - jurisdiction: default
        basis: contract
    retention:
      period: 1 year
controllers:
  - id: acme
    name: Acme Ltd
    address: 1 Main Street
    country: GB
jurisdictions:
  - id: eea
    name: European Economic Area
    law: GDPR
    rights: [access]
    response:
      deadline: 1 month
      source: GDPR Art. 12(3)
    guardian_required_under: 16
    controller: acme
retention:
  statement: We keep data as long as needed.
  prior_versions: 1 year
"#;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `text` with `from` replaced by `to`; `from` must occur exactly once.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur exactly once");
    text.replacen(from, to, 1)
}

/// The minimal policy with one edit.
fn minimal_with(from: &str, to: &str) -> String {
    edit(MINIMAL, from, to)
}

/// The 1-based line and column where `needle` (which must occur once) starts.
fn position_of(text: &str, needle: &str) -> (u64, u64) {
    assert_eq!(text.matches(needle).count(), 1, "`{needle}` must occur exactly once");
    let i = text.find(needle).expect("found");
    let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
    let line = text[..i].matches('\n').count() + 1;
    let column = text[line_start..i].chars().count() + 1;
    (line as u64, column as u64)
}

/// The errors a policy text fails with (panics if it loads).
fn errors(text: &str) -> Vec<Diagnostic> {
    match Policy::from_yaml(text) {
        Ok(_) => panic!("the policy should not load"),
        Err(e) => {
            assert!(!e.diagnostics.is_empty());
            assert!(e.diagnostics.iter().all(|d| d.severity == Severity::Error));
            e.diagnostics
        }
    }
}

/// The only error a policy text fails with.
fn the_error(text: &str) -> Diagnostic {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().expect("one error")
}

fn load(text: &str) -> Policy {
    Policy::from_yaml(text).unwrap_or_else(|e| panic!("{}", e.display_in("policy")))
}

fn example() -> Policy {
    load(EXAMPLE)
}

/// The warnings of a policy text as of a fixed day.
fn warnings(text: &str) -> Vec<Diagnostic> {
    let ws = lint(&load(text), date!(2026 - 11 - 28));
    assert!(ws.iter().all(|d| d.severity == Severity::Warning));
    ws
}

/// A second jurisdiction appended to the minimal policy's list.
const SECOND_JURISDICTION: &str = "    controller: acme
  - id: california
    name: California
    law: CCPA
    framework: ccpa
    rights: [access, erasure]
    response:
      deadline: 45 days
      extension: 45 days
      source: 11 CCR 7021
    guardian_required_under: 16
    controller: acme
retention:";

fn assert_clean_message(d: &Diagnostic) {
    assert!(!d.message.is_empty());
    assert!(!d.message.contains('\n'), "message spans lines: {:?}", d.message);
    assert!(!d.message.contains("-->"), "message carries a source snippet: {:?}", d.message);
}

// ---------------------------------------------------------------------------
// The shipped example
// ---------------------------------------------------------------------------

#[test]
fn the_shipped_example_loads() {
    let policy = example();
    assert_eq!(policy.version(), "2020-01-24");
    assert_eq!(policy.effective(), date!(2020 - 01 - 24));
    assert_eq!(policy.prior_versions_retention(), Period::Years(1));
    assert!(!policy.document().notice.sells_personal_information);
}

#[test]
fn the_shipped_example_has_the_required_ids() {
    let policy = example();
    for j in ["california", "canada", "eea", "japan", "south_korea"] {
        assert!(policy.jurisdiction(j).is_some(), "jurisdiction {j}");
    }
    for c in [
        "contact.name",
        "contact.email",
        "contact.phone",
        "contact.address",
        "payment.card_number",
        "device.ip_address",
        "account.customer_id",
        "order.id",
        "session.id",
    ] {
        assert!(policy.category(c).is_some(), "category {c}");
    }
    for s in ["provided", "automatic", "other_sources"] {
        assert!(policy.has_source(s), "source {s}");
    }
    for p in [
        "provide_offerings",
        "improve_offerings",
        "recommendations",
        "legal_obligations",
        "communicate",
        "marketing",
        "fraud_prevention",
        "consented_purposes",
    ] {
        assert!(policy.purpose(p).is_some(), "purpose {p}");
    }
    assert_eq!(policy.document().purposes.len(), 8, "the notice has eight purposes");
    for r in
        ["affiliates", "marketplace_sellers", "service_providers", "business_transfer", "protection", "at_your_option"]
    {
        assert!(policy.recipient(r).is_some(), "recipient {r}");
    }
    let controllers: Vec<&str> = policy.document().controllers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        controllers,
        [
            "Amazon Web Services, Inc.",
            "Amazon Web Services EMEA SARL",
            "Amazon Internet Services Private Limited",
            "Amazon Web Services Japan K.K."
        ]
    );
}

#[test]
fn the_shipped_example_sources_have_the_kinds_of_the_notice() {
    let doc = example().document().sources.iter().map(|s| (s.id.value.clone(), s.kind)).collect::<Vec<_>>();
    assert_eq!(
        doc,
        [
            ("provided".to_string(), SourceKind::Provided),
            ("automatic".to_string(), SourceKind::Automatic),
            ("other_sources".to_string(), SourceKind::ThirdParty),
        ]
    );
    let policy = example();
    let other = &policy.document().sources[2];
    assert!(other.parties.iter().any(|p| p == "credit bureaus"));
}

#[test]
fn the_card_number_is_tokenized_sensitive_customer_record_data_only_payment_may_recover() {
    let policy = example();
    let card = policy.category("payment.card_number").expect("declared");
    let doc = policy.category_doc(card);
    assert_eq!(doc.ccpa.value, "B");
    assert!(doc.sensitive);
    let protection = policy.tokenization(card).expect("tokenized");
    assert_eq!(protection.tokenize, TokenizeKind::PaymentCard);
    let purposes: Vec<&str> = protection.detokenize_purposes.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(purposes, ["provide_offerings"]);
}

#[test]
fn the_example_covers_every_ccpa_category_of_the_notice() {
    let policy = example();
    let mut letters: Vec<&str> = policy.document().categories.iter().map(|c| c.ccpa.value.as_str()).collect();
    letters.sort_unstable();
    letters.dedup();
    // The 2020 notice lists A to K; sensitive personal information (L) is the `sensitive` flag.
    assert_eq!(letters, ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"]);
    assert!(policy.document().categories.iter().any(|c| c.sensitive));
}

#[test]
fn the_example_purposes_have_the_bases_the_notice_gives() {
    let policy = example();
    let basis = |p: &str, j: &str| {
        policy
            .purpose_rules(policy.purpose(p).expect("purpose"))
            .basis_in(policy.jurisdiction(j).expect("jurisdiction"))
    };
    for j in ["california", "canada", "eea", "japan", "south_korea"] {
        assert_eq!(basis("provide_offerings", j), Some(LegalBasis::Contract), "{j}");
        assert_eq!(basis("fraud_prevention", j), Some(LegalBasis::LegitimateInterest), "{j}");
        assert_eq!(basis("legal_obligations", j), Some(LegalBasis::LegalObligation), "{j}");
        assert_eq!(basis("consented_purposes", j), Some(LegalBasis::Consent), "{j}");
        let marketing = if j == "eea" { LegalBasis::Consent } else { LegalBasis::LegitimateInterest };
        assert_eq!(basis("marketing", j), Some(marketing), "{j}");
    }
    let marketing = policy.purpose("marketing").expect("marketing");
    assert!(policy.purpose_rules(marketing).direct_marketing);
    assert!(!policy.purpose_rules(marketing).allows(policy.category("payment.card_number").expect("card")));
    let legal = policy.purpose("legal_obligations").expect("legal");
    assert!(policy.purpose_rules(legal).allowed_when_restricted);
}

#[test]
fn every_example_category_is_used_and_every_purpose_has_a_retention_rule() {
    let policy = example();
    for c in policy.category_ids() {
        assert!(
            policy.purpose_ids().any(|p| policy.purpose_rules(p).allows(c)),
            "category {} is used by no purpose",
            policy.category_doc(c).id.value
        );
    }
    let open_ended: Vec<&str> = policy
        .document()
        .purposes
        .iter()
        .filter(|p| p.retention.as_long_as_required)
        .map(|p| p.id.value.as_str())
        .collect();
    assert!(open_ended.len() <= 1, "only one purpose may say just \"as long as required\": {open_ended:?}");
    for p in &policy.document().purposes {
        assert!(p.retention.period.is_some() || p.retention.as_long_as_required, "{}", p.id.value);
    }
}

#[test]
fn the_example_jurisdictions_have_the_deadlines_and_guardian_age_of_the_law_and_notice() {
    let policy = example();
    let rules = |j: &str| policy.jurisdiction_rules(policy.jurisdiction(j).expect("jurisdiction"));
    assert_eq!(
        (rules("california").deadline, rules("california").extension),
        (Period::Days(45), Some(Period::Days(45)))
    );
    assert_eq!((rules("canada").deadline, rules("canada").extension), (Period::Days(30), Some(Period::Days(30))));
    assert_eq!((rules("eea").deadline, rules("eea").extension), (Period::Months(1), Some(Period::Months(2))));
    assert_eq!((rules("south_korea").deadline, rules("south_korea").extension), (Period::Days(10), None));
    assert_eq!(rules("japan").deadline, Period::Days(14));
    let japan = policy.jurisdiction_doc(policy.jurisdiction("japan").expect("japan"));
    assert!(japan.response.source.contains("without delay"));
    for j in policy.jurisdiction_ids() {
        assert_eq!(policy.jurisdiction_rules(j).guardian_required_under, 18);
    }
    let eea = policy.jurisdiction_doc(policy.jurisdiction("eea").expect("eea"));
    for right in [
        Right::Access,
        Right::Rectification,
        Right::Erasure,
        Right::Restriction,
        Right::Objection,
        Right::Portability,
        Right::Complaint,
        Right::WithdrawConsent,
    ] {
        assert!(eea.rights.contains(&right), "eea lacks {}", right.as_str());
    }
    assert_eq!(eea.controller.value, "aws_emea");
    let california = policy.jurisdiction_doc(policy.jurisdiction("california").expect("california"));
    assert!(california.rights.contains(&Right::NonDiscrimination));
    assert!(!california.rights.contains(&Right::OptOut), "nothing is sold, so there is nothing to opt out of");
}

#[test]
fn the_korean_processors_are_named_in_south_korea_with_their_functions() {
    let policy = example();
    for (id, function) in [
        ("marketo", "Customer communications"),
        ("salesforce", "Customer relationship management"),
        ("paymenttech", "Payment instrument processing"),
    ] {
        let r = policy.recipient_doc(policy.recipient(id).expect(id));
        assert_eq!(r.kind, RecipientKind::ServiceProvider);
        assert_eq!(r.functions, [function]);
        assert_eq!(r.named_in.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(), ["south_korea"]);
    }
    let paymenttech = policy.recipient("paymenttech").expect("paymenttech");
    let card = policy.category("payment.card_number").expect("card");
    let provide = policy.purpose("provide_offerings").expect("provide");
    let marketing = policy.purpose("marketing").expect("marketing");
    assert!(policy.recipient_rules(paymenttech).may_receive(provide, card));
    assert!(!policy.recipient_rules(paymenttech).may_receive(marketing, card));
}

#[test]
fn japan_declares_joint_use_and_de_identification_from_the_notice_identifiers() {
    let policy = example();
    let doc = policy.document();
    let joint = doc.joint_use.as_ref().expect("joint use");
    assert_eq!(joint.jurisdiction.value, "japan");
    assert_eq!(joint.responsible.value, "aws_japan");
    let de = doc.deidentification.as_ref().expect("de-identification");
    assert_eq!(de.jurisdiction.value, "japan");
    let cats: Vec<&str> = de.categories.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(
        cats,
        ["contact.email", "contact.name", "contact.address", "account.customer_id", "order.id", "session.id"]
    );
}

#[test]
fn the_example_keeps_legal_holds_for_tax_and_accounting_and_legal_claims() {
    let policy = example();
    let holds = &policy.document().retention.legal_holds;
    let ids: Vec<&str> = holds.iter().map(|h| h.id.value.as_str()).collect();
    assert_eq!(ids, ["tax_and_accounting", "legal_claims"]);
    for h in holds {
        assert!(!h.citation.is_empty());
        assert!(Period::parse(&h.period.value).is_ok());
    }
}

#[test]
fn each_legal_hold_serves_a_declared_purpose_and_tax_records_are_held_by_rule() {
    let policy = example();
    let obligations = policy.purpose("legal_obligations");
    assert!(obligations.is_some());
    for h in policy.legal_holds() {
        assert_eq!(Some(h.purpose), obligations, "{}", h.id);
    }
    let tax = policy.legal_hold("tax_and_accounting").map(|h| h.applies_while_recent);
    assert_eq!(tax, Some(policy.category("commerce.purchase_history")));
    assert_eq!(policy.legal_hold("legal_claims").map(|h| h.applies_while_recent), Some(None));
}

#[test]
fn a_legal_hold_serving_an_undeclared_purpose_is_refused() {
    let text = EXAMPLE.replace("      purpose: legal_obligations\n", "      purpose: legal_obligation\n");
    let err = Policy::from_yaml(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("unknown purpose `legal_obligation`"), "{err}");
}

#[test]
fn lint_of_the_example_warns_that_privacy_shield_ended_on_2020_07_16_and_names_a_replacement() {
    let ws = lint(&example(), date!(2026 - 11 - 28));
    let shield = ws
        .iter()
        .find(|d| d.message.contains("`eu_us_privacy_shield`"))
        .unwrap_or_else(|| panic!("no Privacy Shield warning in {ws:#?}"));
    assert!(shield.message.contains("2020-07-16"), "{}", shield.message);
    assert!(shield.message.contains("Schrems II"), "{}", shield.message);
    assert!(
        shield.message.contains("Data Privacy Framework") && shield.message.contains("Standard Contractual Clauses"),
        "{}",
        shield.message
    );
    // The warning stands on the `valid_until` date.
    let (line, _) = position_of(EXAMPLE, "valid_until: \"2020-07-16\"");
    assert_eq!(shield.line, line);

    let swiss = ws.iter().find(|d| d.message.contains("`swiss_us_privacy_shield`")).expect("Swiss-US warning");
    assert!(swiss.message.contains("2020-09-08"), "{}", swiss.message);
    assert!(!ws.iter().any(|d| d.message.contains("`standard_contractual_clauses`")), "current SCCs are valid");
}

#[test]
fn lint_of_the_example_warns_about_the_purposes_resting_on_consent() {
    let ws = lint(&example(), date!(2026 - 11 - 28));
    let marketing = ws
        .iter()
        .find(|d| d.message.starts_with("purpose `marketing` rests on consent"))
        .unwrap_or_else(|| panic!("no consent warning for marketing in {ws:#?}"));
    assert!(marketing.message.contains("`eea`"));
    assert!(!marketing.message.contains("`california`"));
    assert!(ws.iter().any(|d| d.message.starts_with("purpose `consented_purposes` rests on consent")));
    assert_eq!((marketing.line, marketing.column), position_of(EXAMPLE, "marketing\n    name: Marketing"));
}

#[test]
fn lint_of_the_example_has_only_the_expected_warnings() {
    let ws = lint(&example(), date!(2026 - 11 - 28));
    let expected = [
        "purpose `marketing` rests on consent",
        "purpose `consented_purposes` rests on consent",
        "purpose `consented_purposes` keeps data only \"as long as required\"",
        "transfer mechanism `eu_us_privacy_shield`",
        "transfer mechanism `swiss_us_privacy_shield`",
        "transfer mechanism `standard_contractual_clauses_2010`",
    ];
    for d in &ws {
        assert!(expected.iter().any(|e| d.message.starts_with(e)), "unexpected warning: {}", d.display_in("example"));
    }
    assert_eq!(ws.len(), expected.len(), "{ws:#?}");
    let mut sorted = ws.clone();
    sorted.sort_by_key(|d| (d.line, d.column));
    assert_eq!(ws, sorted, "warnings come in file order");
}

#[test]
fn privacy_shield_is_not_flagged_before_schrems_ii() {
    let ws = lint(&example(), date!(2020 - 03 - 01));
    assert!(!ws.iter().any(|d| d.message.contains("privacy_shield")), "{ws:#?}");
    assert!(!ws.iter().any(|d| d.message.contains("`standard_contractual_clauses_2010`")));
}

// ---------------------------------------------------------------------------
// Errors carry their line and column
// ---------------------------------------------------------------------------

#[test]
fn the_minimal_policy_loads_and_lints_clean() {
    let policy = load(MINIMAL);
    assert!(lint(&policy, date!(2026 - 11 - 28)).is_empty());
    assert_eq!(policy.jurisdiction_rules(policy.jurisdiction("eea").expect("eea")).deadline, Period::Months(1));
}

#[test]
fn a_yaml_syntax_error_has_its_line_and_column() {
    let text = minimal_with("  title: Test notice\n", "  title: Test: notice\n");
    let d = the_error(&text);
    let (line, column) = position_of(&text, ": notice");
    assert_eq!((d.line, d.column), (line, column));
    assert!(d.message.ends_with("mapping values are not allowed in this context"), "{:?}", d.message);
    assert_clean_message(&d);
}

#[test]
fn an_unknown_key_is_an_error_at_the_key() {
    let text = minimal_with("    group: Contact\n", "    group: Contact\n    colour: blue\n");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "colour"));
    assert!(d.message.contains("unknown field `colour`"), "{:?}", d.message);
    assert!(d.message.contains("expected one of id, name, ccpa"), "{:?}", d.message);
    assert_clean_message(&d);
}

#[test]
fn an_unknown_key_at_the_top_level_is_an_error() {
    let text = format!("{MINIMAL}extras: true\n");
    let d = the_error(&text);
    assert_eq!(d.line, position_of(&text, "extras").0);
    assert!(d.message.contains("unknown field `extras`"), "{:?}", d.message);
}

#[test]
fn a_wrong_type_is_an_error_at_the_value() {
    let text = minimal_with("guardian_required_under: 16", "guardian_required_under: sixteen");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "sixteen"));
    assert!(d.message.ends_with("invalid u8"), "{:?}", d.message);
    assert_clean_message(&d);

    let text = minimal_with("    rights: [access]", "    rights: access");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "access\n"));
    assert!(d.message.ends_with("expected sequence start"), "{:?}", d.message);
}

#[test]
fn an_unknown_enum_value_lists_the_accepted_ones() {
    let text = minimal_with("basis: contract", "basis: contrat");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "contrat"));
    assert!(
        d.message.ends_with(
            "unknown variant `contrat`, expected one of contract, legitimate_interest, legal_obligation, consent"
        ),
        "{:?}",
        d.message
    );
}

#[test]
fn a_missing_field_is_an_error_that_names_it() {
    let text = minimal_with("    law: GDPR\n", "");
    let d = the_error(&text);
    assert!(d.message.ends_with("missing field `law`"), "{:?}", d.message);
    assert!(d.line > 0, "a missing field still points into the jurisdiction");
}

#[test]
fn an_unknown_category_in_a_purpose_points_at_the_reference() {
    let text = minimal_with("categories: [contact.email]", "categories: [contact.emial]");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), (20, 18));
    assert_eq!((d.line, d.column), position_of(&text, "contact.emial"));
    assert_eq!(d.message, "unknown category `contact.emial` (did you mean `contact.email`?)");
    assert_eq!(
        d.display_in("policy.yaml"),
        "policy.yaml:20:18: error: unknown category `contact.emial` (did you mean `contact.email`?)"
    );
}

#[test]
fn an_unknown_reference_far_from_any_name_gets_no_suggestion() {
    let text = minimal_with("    controller: acme\n", "    controller: globex\n");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "globex"));
    assert_eq!(d.message, "unknown controller `globex`");
}

#[test]
fn an_unknown_source_of_a_category_is_an_error() {
    let text = minimal_with("    sources: [provided]", "    sources: [provide]");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "provide]"));
    assert_eq!(d.message, "unknown source `provide` (did you mean `provided`?)");
}

#[test]
fn a_duplicate_id_is_an_error_at_the_second_declaration() {
    let text = minimal_with(
        "    sources: [provided]\n",
        "    sources: [provided]\n  - id: contact.email\n    name: Email again\n    ccpa: A\n    group: Contact\n    sources: [provided]\n",
    );
    let d = the_error(&text);
    assert_eq!(d.message, "category `contact.email` is declared twice");
    assert_eq!((d.line, d.column), position_of(&text, "contact.email\n    name: Email again"));
}

#[test]
fn a_retention_period_in_words_is_an_error() {
    let text = minimal_with("      period: 1 year", "      period: as long as required");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "as long as required"));
    assert!(d.message.starts_with("`as long as required` is not a period"), "{:?}", d.message);
    assert!(d.message.contains("e.g. \"45 days\""));
}

#[test]
fn other_bad_periods_are_errors() {
    for bad in ["0 days", "ten days", "3 fortnights", "1"] {
        let text = minimal_with("deadline: 1 month", &format!("deadline: {bad}"));
        let d = the_error(&text);
        let (line, column) = position_of(&text, &format!("deadline: {bad}\n"));
        assert_eq!((d.line, d.column), (line, column + "deadline: ".len() as u64), "{bad}");
        assert!(d.message.starts_with(&format!("`{bad}` is")), "{:?}", d.message);
    }
}

#[test]
fn a_period_together_with_as_long_as_required_is_an_error() {
    let text = minimal_with("      period: 1 year", "      period: 1 year\n      as_long_as_required: true");
    let d = the_error(&text);
    assert_eq!(d.message, "give either a retention period or `as_long_as_required`, not both");
    assert_eq!(d.line, position_of(&text, "period: 1 year\n      as_long").0);
}

#[test]
fn a_retention_rule_with_neither_period_nor_as_long_as_required_is_an_error() {
    let text = minimal_with("      period: 1 year", "      from: collection");
    let d = the_error(&text);
    assert!(d.message.contains("needs a retention `period` or `as_long_as_required: true`"), "{:?}", d.message);
    assert!(d.line > 0 && d.column > 0, "the error points at the purpose: {d:?}");
}

#[test]
fn a_bad_ccpa_letter_is_an_error() {
    let text = minimal_with("ccpa: A", "ccpa: M");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "M\n"));
    assert_eq!(d.message, "`M` is not a CCPA category: use a letter from A to L (§1798.140(v)(1))");
}

#[test]
fn a_bad_date_is_an_error() {
    let text = minimal_with("effective: \"2024-01-01\"", "effective: \"1 January 2024\"");
    let d = the_error(&text);
    assert_eq!(d.line, position_of(&text, "1 January 2024").0);
    assert!(d.message.contains("is not a date of the form YYYY-MM-DD"), "{:?}", d.message);
}

#[test]
fn an_invalid_identifier_is_an_error() {
    let text = minimal_with("  - id: service\n", "  - id: Provide Service\n");
    let d = the_error(&text);
    assert_eq!((d.line, d.column), position_of(&text, "Provide Service"));
    assert!(d.message.contains("is not a valid identifier"), "{:?}", d.message);
}

#[test]
fn default_is_reserved_as_a_jurisdiction_id() {
    let text = minimal_with("  - id: eea\n", "  - id: default\n");
    let d = the_error(&text);
    assert!(d.message.starts_with("`default` is reserved"), "{:?}", d.message);
}

#[test]
fn a_legal_basis_given_twice_for_one_jurisdiction_is_an_error() {
    let text = minimal_with(
        "        basis: contract\n",
        "        basis: contract\n      - jurisdiction: default\n        basis: consent\n",
    );
    let d = the_error(&text);
    assert_eq!(d.message, "purpose `service` gives a legal basis for `default` twice");
}

#[test]
fn a_transfer_that_ends_before_it_starts_is_an_error() {
    let text = minimal_with(
        "retention:\n  statement",
        "transfers:\n  - id: shield\n    name: Shield\n    kind: adequacy\n    from: [eea]\n    to: [US]\n    valid_from: \"2020-01-01\"\n    valid_until: \"2019-01-01\"\nretention:\n  statement",
    );
    let d = the_error(&text);
    assert_eq!(d.message, "valid_until must be after valid_from");
    assert_eq!(d.line, position_of(&text, "2019-01-01").0);
}

#[test]
fn several_errors_are_all_reported_in_file_order() {
    let text = minimal_with("ccpa: A", "ccpa: Z");
    let text = edit(&text, "categories: [contact.email]", "categories: [nothing]");
    let text = edit(&text, "    controller: acme\n", "    controller: nobody\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.windows(2).all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
    assert!(errs[0].message.contains("`Z`"));
    assert!(errs[1].message.contains("`nothing`"));
    assert!(errs[2].message.contains("`nobody`"));
    let shown = PolicyError { diagnostics: errs }.display_in("p.yaml");
    assert_eq!(shown.lines().count(), 3);
    assert!(shown.lines().all(|l| l.starts_with("p.yaml:") && l.contains(": error: ")));
}

#[test]
fn an_empty_or_non_mapping_document_is_an_error() {
    for text in ["", "just a string\n", "- a\n- b\n"] {
        let errs = errors(text);
        assert_clean_message(&errs[0]);
    }
}

#[test]
fn yaml_error_messages_keep_their_text_on_one_line() {
    // serde-saphyr appends a source snippet after the first line; only the
    // first line is kept.
    for (from, to) in [
        ("  title: Test notice\n", "  title: Test: notice\n"),
        ("    group: Contact\n", "    group: Contact\n    colour: blue\n"),
        ("guardian_required_under: 16", "guardian_required_under: -1"),
    ] {
        let d = the_error(&minimal_with(from, to));
        assert_clean_message(&d);
        assert!(d.line > 0 && d.column > 0);
    }
}

/// `Diagnostic.message` is the message alone: the position is in `line`/`column`
/// (serde-saphyr 2.2 writes "error: line 15 column 5: unknown field ...").
#[test]
fn yaml_error_messages_carry_no_position() {
    let d = the_error(&minimal_with("    group: Contact\n", "    group: Contact\n    colour: blue\n"));
    assert!(d.message.starts_with("unknown field `colour`"), "{:?}", d.message);
}

// ---------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------

#[test]
fn a_purpose_with_no_basis_for_a_jurisdiction_warns() {
    let text = minimal_with("    controller: acme\nretention:", SECOND_JURISDICTION);
    let text = edit(&text, "- jurisdiction: default", "- jurisdiction: eea");
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    let (line, column) = position_of(&text, "id: service\n");
    assert_eq!((ws[0].line, ws[0].column), (line, column + 4));
    assert!(ws[0].message.starts_with("purpose `service` has no legal basis in `california`"), "{}", ws[0].message);
    // With a `default` entry the gap is filled.
    let text = minimal_with("    controller: acme\nretention:", SECOND_JURISDICTION);
    assert!(warnings(&text).is_empty());
}

#[test]
fn a_category_used_by_no_purpose_warns() {
    let text = minimal_with(
        "    sources: [provided]\n",
        "    sources: [provided]\n  - id: contact.phone\n    name: Phone\n    ccpa: A\n    group: Contact\n    sources: [provided]\n",
    );
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert_eq!((ws[0].line, ws[0].column), position_of(&text, "contact.phone"));
    assert_eq!(ws[0].message, "category `contact.phone` is used by no purpose: it can be stored but never read");
}

#[test]
fn an_as_long_as_required_retention_warns() {
    let text = minimal_with("      period: 1 year", "      as_long_as_required: true");
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert!(ws[0].message.contains("\"as long as required\""), "{}", ws[0].message);
    assert!(ws[0].message.contains("§1798.100(a)(3)"), "{}", ws[0].message);
}

#[test]
fn a_consent_based_purpose_warns() {
    let text = minimal_with("basis: contract", "basis: consent");
    let ws = warnings(&text);
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert!(ws[0].message.starts_with("purpose `service` rests on consent in `eea`"), "{}", ws[0].message);
}

#[test]
fn an_expired_transfer_warns_only_once_it_has_ended() {
    let text = minimal_with(
        "retention:\n  statement",
        "transfers:\n  - id: shield\n    name: Shield\n    kind: adequacy\n    from: [eea]\n    to: [US]\n    valid_from: \"2016-08-01\"\n    valid_until: \"2020-07-16\"\n    replaced_by: [Standard Contractual Clauses]\nretention:\n  statement",
    );
    let policy = load(&text);
    assert!(lint(&policy, date!(2020 - 07 - 15)).is_empty());
    let ws = lint(&policy, date!(2020 - 07 - 16));
    assert_eq!(ws.len(), 1, "{ws:#?}");
    assert_eq!(ws[0].line, position_of(&text, "\"2020-07-16\"").0);
    assert_eq!(
        ws[0].message,
        "transfer mechanism `shield` (Shield) is no longer valid since 2020-07-16: no new transfer may rely on it; use instead: Standard Contractual Clauses"
    );
}

mod regression;
mod requests;
