//! The response to an access request: every item GDPR Art. 15(1)(a)–(h) and
//! 15(2) and CCPA §1798.110(a)(1)–(5) ask for, found by name; values the
//! policy never discloses named but not shown; card numbers masked; nothing
//! personal before the identity is verified; JSON, HTML (escaped) and CSV
//! (formula-safe); portability limited to what the person provided on
//! consent or contract; each production audited without values. On
//! PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::request::RequestStatus;
use custos_core::time::{FixedClock, Timestamp, parse_date};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::requests::report::LEGAL_ITEMS;
use custos_vault::{By, NewSubject, Put, ResponseFormat, Submission, Vault, VerifyMethod};
use serde_json::Value;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const EMAIL: &str = "first.address@example.org";
const NEW_EMAIL: &str = "<script>alert(1)</script>@example.org";
const PASSPORT: &str = "P-99887766-GOV";
const CARD: &str = "4111 1111 1111 1111";
const NAME: &str = "=HYPERLINK(\"http://evil\")";

fn vault(store: TestStore) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    let clock = FixedClock::new(Timestamp::start_of(parse_date("2026-06-01")?));
    Ok(Vault::new(policy, store, Keyring::new(&MasterKey::generate()?)?, Arc::new(clock)))
}

/// An EEA subject with a current and a prior email, a name, a card number
/// and a government id (never disclosed).
fn person(v: &Vault<TestStore>, id: &str) -> TestResult {
    v.add_subject(&NewSubject { id, jurisdiction: "eea", region: None, birth_date: None, guardian: None }, &By::Cli)?;
    for (category, value, purpose) in [
        ("contact.email", EMAIL, "provide_offerings"),
        ("contact.email", NEW_EMAIL, "provide_offerings"),
        ("contact.name", NAME, "provide_offerings"),
        ("payment.card_number", CARD, "provide_offerings"),
        ("identity.government_id", PASSPORT, "legal_obligations"),
    ] {
        v.put(&Put { subject: id, category, value, source: "provided", purpose }, &By::Cli)?;
    }
    Ok(())
}

fn request(v: &Vault<TestStore>, subject: &str, kind: &str) -> TestResult<String> {
    let r = v.submit_request(&Submission { subject, kind, ..Submission::default() }, &By::Cli)?;
    Ok(r.id)
}

fn carried_out(v: &Vault<TestStore>, subject: &str, kind: &str) -> TestResult<String> {
    let id = request(v, subject, kind)?;
    v.verify_request(&id, VerifyMethod::Session, &By::Cli)?;
    let done = v.execute_request(&id, &By::Cli)?;
    assert_eq!(done.status, RequestStatus::Completed);
    Ok(id)
}

fn json(v: &Vault<TestStore>, id: &str) -> TestResult<Value> {
    Ok(serde_json::from_str(&v.request_response(id, &By::Cli)?.render(ResponseFormat::Json))?)
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
    }
}

#[test]
fn an_access_response_answers_every_item_of_gdpr_art_15_and_ccpa_1798_110_by_name() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    person(&v, "eu-r1")?;
    let id = carried_out(&v, "eu-r1", "access")?;
    let response = json(&v, &id)?;
    let report = &response["report"];
    let items = report["legal_items"].as_object().ok_or("legal_items")?;
    for name in [
        "gdpr_15_1_confirmation",
        "gdpr_15_1_a_purposes",
        "gdpr_15_1_b_categories",
        "gdpr_15_1_c_recipients",
        "gdpr_15_1_d_retention",
        "gdpr_15_1_e_rights",
        "gdpr_15_1_f_complaint",
        "gdpr_15_1_g_sources",
        "gdpr_15_1_h_automated_decisions",
        "gdpr_15_2_transfer_safeguards",
        "ccpa_110_a_1_categories",
        "ccpa_110_a_2_sources",
        "ccpa_110_a_3_purposes",
        "ccpa_110_a_4_third_parties",
        "ccpa_110_a_5_specific_pieces",
    ] {
        let member = items.get(name).and_then(Value::as_str).ok_or_else(|| format!("`{name}` is not answered"))?;
        assert!(report.get(member).is_some(), "{name}: the report has no `{member}`");
    }
    assert_eq!(items.len(), LEGAL_ITEMS.len());
    assert_eq!(report["confirmation"], true, "(15(1)) personal data is processed");
    for member in ["categories", "data", "purposes", "recipients", "rights", "sources", "transfers"] {
        assert!(non_empty(&report[member]), "`{member}` is empty: {}", report[member]);
    }
    assert!(report["retention"]["per_purpose"].as_array().is_some_and(|p| !p.is_empty()), "(d) retention per purpose");
    assert!(report["complaint"]["supervisory_authority"].as_str().is_some_and(|a| a.contains("CNPD")), "(f)");
    assert!(report["automated_decisions"]["statements"].is_array(), "(h) stated, even when the notice states none");
    let purposes = report["purposes"].as_array().ok_or("purposes")?;
    assert!(
        purposes.iter().any(|p| p["id"] == "legal_obligations" && p["legal_basis"] == "legal_obligation"),
        "(a) with basis"
    );
    let transfers: Vec<&str> =
        report["transfers"].as_array().ok_or("transfers")?.iter().filter_map(|t| t["id"].as_str()).collect();
    assert!(!transfers.contains(&"eu_us_privacy_shield"), "an invalidated mechanism is no safeguard: {transfers:?}");
    let rights: Vec<&str> =
        report["rights"].as_array().ok_or("rights")?.iter().filter_map(|r| r["right"].as_str()).collect();
    for right in ["rectification", "erasure", "restriction", "objection"] {
        assert!(rights.contains(&right), "(e) names `{right}`: {rights:?}");
    }
    Ok(())
}

#[test]
fn never_disclosed_values_are_named_not_shown_and_cards_are_masked_in_every_format() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    person(&v, "eu-r2")?;
    let id = carried_out(&v, "eu-r2", "access")?;
    let response = v.request_response(&id, &By::Cli)?;
    let report = response.report.as_ref().ok_or("a report")?;
    let gov = report.categories.iter().find(|c| c.id == "identity.government_id").ok_or("named")?;
    assert!(!gov.shown && gov.values_held == 1, "named with its count, not shown");
    let emails: Vec<(u32, bool)> = report
        .data
        .iter()
        .flat_map(|g| &g.items)
        .filter(|p| p.category == "contact.email")
        .map(|p| (p.version, p.current))
        .collect();
    assert_eq!(emails, [(2, true), (1, false)], "the current version and the prior one kept");
    let html = response.render(ResponseFormat::Html);
    let csv = response.render(ResponseFormat::Csv);
    let json = response.render(ResponseFormat::Json);
    for (format, text) in [("json", &json), ("html", &html), ("csv", &csv)] {
        assert!(!text.contains(PASSPORT), "{format}: the government id is never disclosed");
        assert!(!text.contains(CARD) && !text.contains("4111111111111111"), "{format}: the card number is masked");
        assert!(text.contains("1111"), "{format}: the last four digits are shown");
        assert!(text.contains("first.address@example.org"), "{format}: the prior version is in the copy");
    }
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "HTML escapes values");
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "CSV defuses formulas: {csv}");
    assert!(html.contains("CNPD"), "the page names the supervisory authority");
    Ok(())
}

#[test]
fn nothing_personal_is_in_a_response_before_the_identity_is_verified() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    person(&v, "eu-r3")?;
    let id = request(&v, "eu-r3", "access")?;
    let response = v.request_response(&id, &By::Cli)?;
    assert!(response.report.is_none());
    let text = response.render(ResponseFormat::Json) + &response.render(ResponseFormat::Html);
    assert!(!text.contains("first.address") && !text.contains("eu-r3"), "no data, not even the subject id");
    v.verify_request(&id, VerifyMethod::Session, &By::Cli)?;
    assert!(v.request_response(&id, &By::Cli)?.report.is_none(), "verified but not yet started: still nothing");
    Ok(())
}

#[test]
fn portability_holds_only_what_the_person_provided_on_consent_or_contract() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    person(&v, "eu-r4")?;
    let id = carried_out(&v, "eu-r4", "portability")?;
    let report = v.request_response(&id, &By::Cli)?.report.ok_or("a report")?;
    assert_eq!(report.scope, "portability");
    let categories: Vec<&str> = report.categories.iter().map(|c| c.id.as_str()).collect();
    assert!(categories.contains(&"contact.email"), "provided, for the contract: {categories:?}");
    assert!(!categories.contains(&"identity.government_id"), "a legal obligation is not portable: {categories:?}");
    Ok(())
}

#[test]
fn producing_a_report_is_audited_with_categories_and_no_value() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    person(&v, "eu-r5")?;
    let id = carried_out(&v, "eu-r5", "access")?;
    v.request_response(&id, &By::Cli)?;
    let entries = v.store().audit_entries(0, 1000)?;
    let produced: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.body))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|e| e["action"] == "access_report_produced")
        .collect();
    assert_eq!(produced.len(), 2, "once when carried out, once for the response");
    assert!(
        produced
            .iter()
            .all(|e| e["request"] == id.as_str() && e["categories"].as_array().is_some_and(|c| c.len() == 4))
    );
    let all: String = entries.iter().map(|e| e.body.as_str()).collect();
    for secret in [EMAIL, PASSPORT, CARD, "eu-r5"] {
        assert!(!all.contains(secret), "`{secret}` is in the audit log");
    }
    custos_vault::verify_chain(v.store())?.map_err(|b| format!("the chain breaks: {b}"))?;
    Ok(())
}
