//! Rectification requests (a new version with source `subject_correction`,
//! the prior one kept, the recipients to tell listed, the corrected values
//! gone from the request record once written) and the year's request
//! metrics (CCPA 11 CCR §7102). On PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::{FixedClock, Timestamp, parse_date};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, CONTROLLER, NewSubject, Put, Read, Submission, Vault, VaultError, VerifyMethod};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn vault(store: TestStore, clock: Arc<FixedClock>) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    Ok(Vault::new(policy, store, Keyring::new(&MasterKey::generate()?)?, clock))
}

fn on(day: &str) -> TestResult<Timestamp> {
    Ok(Timestamp::start_of(parse_date(day)?))
}

fn adult(v: &Vault<TestStore>, id: &str, jurisdiction: &str) -> TestResult {
    v.add_subject(&NewSubject { id, jurisdiction, region: None, birth_date: None, guardian: None }, &By::Cli)?;
    Ok(())
}

#[test]
fn a_rectification_writes_a_corrected_version_and_names_the_recipients_to_tell() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, Arc::new(FixedClock::new(on("2026-06-01")?)))?;
    adult(&v, "eu-c1", "eea")?;
    let old = "Old Misspelt Name";
    v.put(
        &Put {
            subject: "eu-c1",
            category: "contact.name",
            value: old,
            source: "provided",
            purpose: "provide_offerings",
        },
        &By::Cli,
    )?;
    let corrected = "Corrected Proper Name";
    let corrections =
        vec![("contact.name".to_string(), corrected.to_string()), ("contact.phone".to_string(), "+352 1".to_string())];
    let r = v.submit_request(
        &Submission { subject: "eu-c1", kind: "rectification", corrections, ..Default::default() },
        &By::Cli,
    )?;
    v.verify_request(&r.id, VerifyMethod::Session, &By::Cli)?;
    let done = v.execute_request(&r.id, &By::Cli)?;
    assert_eq!(done.status, RequestStatus::Completed);
    let outcome = done.outcome.ok_or("an outcome")?;
    assert_eq!(outcome["corrected"], serde_json::json!([{ "category": "contact.name", "version": 2 }]));
    assert_eq!(outcome["not_held"], serde_json::json!(["contact.phone"]), "nothing held to correct");
    assert!(outcome["recipients_to_notify"].as_array().is_some_and(|r| !r.is_empty()), "Art. 19: {outcome}");
    let read = Read { subject: "eu-c1", purpose: "provide_offerings", actor: CONTROLLER, scope: None, by: &By::Cli };
    let history = v.history(&read, "contact.name")?;
    let versions: Vec<(u32, &str, &str)> =
        history.iter().map(|h| (h.version, h.value.as_str(), h.source.as_str())).collect();
    assert_eq!(versions, [(2, corrected, "subject_correction"), (1, old, "provided")], "the prior version is kept");
    // The request outlives the subject (its sealed details keep the
    // categories, not the values: the vault's unit test checks that).
    v.erase("eu-c1", &By::Cli)?;
    let after = v.request(&r.id)?;
    assert_eq!(after.status, RequestStatus::Completed);
    Ok(())
}

#[test]
fn a_rectification_needs_corrections_and_callers_cannot_claim_the_correction_source() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, Arc::new(FixedClock::new(on("2026-06-01")?)))?;
    adult(&v, "eu-c2", "eea")?;
    let none =
        v.submit_request(&Submission { subject: "eu-c2", kind: "rectification", ..Default::default() }, &By::Cli);
    assert!(matches!(none, Err(VaultError::Input(_))), "a rectification names its corrections");
    let bad = vec![("contact.shoe_size".to_string(), "42".to_string())];
    let unknown = v.submit_request(
        &Submission { subject: "eu-c2", kind: "rectification", corrections: bad, ..Default::default() },
        &By::Cli,
    );
    assert!(matches!(unknown, Err(VaultError::Input(_))), "an undeclared category is refused");
    let claimed = v.put(
        &Put {
            subject: "eu-c2",
            category: "contact.name",
            value: "X",
            source: "subject_correction",
            purpose: "provide_offerings",
        },
        &By::Cli,
    );
    assert!(matches!(claimed, Err(VaultError::Input(_))), "only a rectification writes as `subject_correction`");
    Ok(())
}

#[test]
fn the_years_metrics_count_each_kind_and_the_days_to_respond() -> TestResult {
    let storage = TestStorage::fresh()?;
    let clock = Arc::new(FixedClock::new(on("2026-03-01")?));
    let v = vault(storage.open()?, clock.clone())?;
    for id in ["cal-m1", "cal-m2", "cal-m3"] {
        adult(&v, id, "california")?;
    }
    adult(&v, "eu-m1", "eea")?;
    let submit =
        |subject: &str, kind: &str| v.submit_request(&Submission { subject, kind, ..Default::default() }, &By::Cli);
    // Two erasures answered after 10 and 20 days, one denied after 4, one still open.
    let a = submit("cal-m1", "erasure")?;
    let b = submit("cal-m2", "erasure")?;
    let c = submit("cal-m3", "erasure")?;
    v.verify_request(&a.id, VerifyMethod::Session, &By::Cli)?;
    v.verify_request(&b.id, VerifyMethod::Session, &By::Cli)?;
    clock.set(on("2026-03-05")?);
    v.deny_request(&c.id, DenialCode::Unverifiable, "We could not match two data points.", &By::Cli)?;
    clock.set(on("2026-03-11")?);
    v.execute_request(&a.id, &By::Cli)?;
    clock.set(on("2026-03-21")?);
    v.execute_request(&b.id, &By::Cli)?;
    submit("eu-m1", "erasure")?;
    submit("eu-m1", "opt_out")?; // not granted in the EEA: received and denied at once
    let m = v.request_metrics(2026)?;
    let erasure = m.kinds.iter().find(|k| k.kind == "erasure").ok_or("erasure row")?;
    assert_eq!((erasure.received, erasure.complied, erasure.denied, erasure.open), (4, 2, 1, 1));
    assert_eq!(erasure.median_days, Some(10.0), "responses took 4, 10 and 20 days");
    assert!(erasure.mean_days.is_some_and(|d| (d - 34.0 / 3.0).abs() < 1e-9));
    let opt_out = m.kinds.iter().find(|k| k.kind == "opt_out").ok_or("opt_out row")?;
    assert_eq!((opt_out.received, opt_out.denied, opt_out.median_days), (1, 1, Some(0.0)));
    assert_eq!(m.kinds.len(), 10, "every request kind has a row");
    let last_year = v.request_metrics(2025)?;
    assert!(last_year.kinds.iter().all(|k| k.received == 0), "requests count in the year they were received");
    Ok(())
}
