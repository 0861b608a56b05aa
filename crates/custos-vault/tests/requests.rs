//! Rights requests through the vault: legal dates per jurisdiction,
//! refusals recorded as such (`right_not_available`, `duplicate`), the
//! workflow's steps and the ones it refuses, carrying each kind out through
//! the same state changes as the direct routes, and what is stored: the
//! requester's contact and texts only sealed, never in the audit log, and
//! the record outliving the subject's erasure. On PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::{FixedClock, Timestamp, parse_date};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, NewSubject, RequestQuery, RequestView, Submission, Vault, VaultError, VerifyMethod};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const CONTACT: &str = "requester.contact@example.org";
const NOTE: &str = "Please send everything you hold about my late-night orders";

fn vault(store: TestStore, clock: Arc<FixedClock>) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    Ok(Vault::new(policy, store, Keyring::new(&MasterKey::generate()?)?, clock))
}

fn clock_on(day: &str) -> TestResult<Arc<FixedClock>> {
    Ok(Arc::new(FixedClock::new(Timestamp::start_of(parse_date(day)?))))
}

fn adult<'a>(id: &'a str, jurisdiction: &'a str) -> NewSubject<'a> {
    NewSubject { id, jurisdiction, region: None, birth_date: None, guardian: None }
}

fn submit(v: &Vault<TestStore>, subject: &str, kind: &str, received: Option<&str>) -> TestResult<RequestView> {
    let received = received.map(parse_date).transpose()?;
    let s = Submission { subject, kind, received, contact: Some(CONTACT), note: Some(NOTE), ..Submission::default() };
    Ok(v.submit_request(&s, &By::Cli)?)
}

/// Every audit entry's body, oldest first.
fn audit_bodies(v: &Vault<TestStore>) -> TestResult<Vec<serde_json::Value>> {
    let entries = v.store().audit_entries(0, 10_000)?;
    Ok(entries.iter().map(|e| serde_json::from_str(&e.body)).collect::<Result<_, _>>()?)
}

fn chain_verifies(v: &Vault<TestStore>) -> TestResult {
    custos_vault::verify_chain(v.store())?.map_err(|b| format!("the audit chain breaks: {b}"))?;
    Ok(())
}

#[test]
fn submitted_requests_carry_the_legal_dates_of_their_jurisdiction() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-11-20")?)?;
    v.add_subject(&adult("cal-1", "california"), &By::Cli)?;
    v.add_subject(&adult("eu-1", "eea"), &By::Cli)?;
    // CCPA: 45 calendar days, confirmation within 10 business days (Veterans
    // Day 2026-11-11 is a holiday), extension by 45 days (11 CCR §7021).
    let access = submit(&v, "cal-1", "access", Some("2026-11-02"))?;
    assert_eq!((access.received.as_str(), access.due.as_str()), ("2026-11-02", "2026-12-17"));
    assert_eq!(access.confirm_by.as_deref(), Some("2026-11-17"));
    assert_eq!(access.extended_due.as_deref(), Some("2027-01-31"));
    assert_eq!((access.status, access.verification.as_str()), (RequestStatus::Received, "two_data_points"));
    assert_eq!(access.controller.id, "aws_inc", "California requests go to the controller the policy names");
    // An opt-out needs no verification and is due in 15 business days (§7026(f)):
    // Thanksgiving (26, 27 Nov) and the weekends do not count.
    let opt_out = submit(&v, "cal-1", "opt_out", None)?;
    assert_eq!((opt_out.status, opt_out.verified_by.as_deref()), (RequestStatus::Verified, Some("none")));
    assert_eq!(opt_out.due, "2026-12-15");
    // GDPR: one month, month-end clamped, no confirmation deadline (Art. 12(3)).
    let erasure = submit(&v, "eu-1", "erasure", Some("2026-01-31"))?;
    assert_eq!((erasure.due.as_str(), erasure.confirm_by.as_deref()), ("2026-02-28", None));
    assert_eq!(erasure.extended_due.as_deref(), Some("2026-04-28"), "two further months (Art. 12(3))");
    assert!(erasure.overdue, "received in January, still open in November");
    assert_eq!(erasure.controller.id, "aws_emea");
    let future = submit(&v, "eu-1", "access", Some("2026-11-21"));
    assert!(future.is_err(), "a request cannot be received tomorrow");
    chain_verifies(&v)
}

#[test]
fn a_kind_the_jurisdiction_does_not_grant_is_recorded_and_denied_with_its_reason() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-2", "eea"), &By::Cli)?;
    let refused = submit(&v, "eu-2", "opt_out", None)?;
    assert_eq!(refused.status, RequestStatus::Denied);
    let denial = refused.denial.as_ref().ok_or("no denial")?;
    assert_eq!(denial.code, DenialCode::RightNotAvailable);
    assert!(denial.text.as_deref().is_some_and(|t| t.contains("European Economic Area")), "{denial:?}");
    assert_eq!(refused.due, "2026-07-01", "the refusal is answered within the general month (Art. 12(4))");
    let events = audit_bodies(&v)?;
    let last: Vec<(&str, Option<&str>)> =
        events.iter().rev().take(2).rev().map(|e| (e["action"].as_str().unwrap_or(""), e["reason"].as_str())).collect();
    assert_eq!(last, [("request_received", None), ("request_denied", Some("right_not_available"))]);
    assert!(events.iter().rev().take(2).all(|e| e["request"] == refused.id.as_str() && e["kind"] == "opt_out"));
    // The direct route refuses the same right the same way.
    assert!(matches!(v.set_opted_out("eu-2", true, &By::Cli), Err(VaultError::RightNotAvailable { .. })));
    let unknown =
        v.submit_request(&Submission { subject: "eu-2", kind: "delete_everything", ..Default::default() }, &By::Cli);
    assert!(matches!(unknown, Err(VaultError::Input(_))), "an unknown kind is bad input");
    chain_verifies(&v)
}

#[test]
fn a_second_open_request_of_a_kind_is_linked_to_the_first_as_a_duplicate() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-3", "eea"), &By::Cli)?;
    let first = submit(&v, "eu-3", "access", None)?;
    let second = submit(&v, "eu-3", "access", None)?;
    assert_eq!(second.status, RequestStatus::Denied);
    assert_eq!(second.denial.as_ref().map(|d| d.code), Some(DenialCode::Duplicate));
    assert_eq!(second.duplicate_of.as_deref(), Some(first.id.as_str()));
    let other_kind = submit(&v, "eu-3", "erasure", None)?;
    assert_eq!(other_kind.status, RequestStatus::Received, "another kind is not a duplicate");
    v.withdraw_request(&first.id, &By::Cli)?;
    let after = submit(&v, "eu-3", "access", None)?;
    assert_eq!(after.status, RequestStatus::Received, "a closed request no longer covers a new one");
    Ok(())
}

#[test]
fn the_workflow_refuses_steps_it_does_not_have_and_changes_nothing() -> TestResult {
    let storage = TestStorage::fresh()?;
    let clock = clock_on("2026-03-02")?;
    let v = vault(storage.open()?, clock.clone())?;
    v.add_subject(&adult("cal-4", "california"), &By::Cli)?;
    let r = submit(&v, "cal-4", "erasure", None)?;
    // Carrying out an unverified request is refused.
    assert!(matches!(v.execute_request(&r.id, &By::Cli), Err(VaultError::RequestStep(_))));
    assert_eq!(v.request(&r.id)?, r, "a refused step changes nothing");
    let verified = v.verify_request(&r.id, VerifyMethod::TwoDataPoints, &By::Cli)?;
    assert_eq!((verified.status, verified.verified_by.as_deref()), (RequestStatus::Verified, Some("two_data_points")));
    let extended = v.extend_request(&r.id, "Backups span several systems", &By::Cli)?;
    assert_eq!((r.due.as_str(), r.extended_due.as_deref()), ("2026-04-16", Some("2026-05-31")));
    assert_eq!(extended.due, "2026-05-31", "45 more days (11 CCR §7021(b))");
    assert_eq!(extended.extension.as_ref().and_then(|e| e.reason.as_deref()), Some("Backups span several systems"));
    let again = v.extend_request(&r.id, "once more", &By::Cli);
    assert!(matches!(again, Err(VaultError::RequestStep(_))), "a request is extended once");
    assert!(matches!(v.extend_request(&r.id, "   ", &By::Cli), Err(VaultError::Input(_))), "a reason is required");
    let denied =
        v.deny_request(&r.id, DenialCode::Exempt, "Kept for a pending legal claim (§1798.105(d)(6))", &By::Cli)?;
    assert_eq!(denied.status, RequestStatus::Denied);
    assert!(
        matches!(v.withdraw_request(&r.id, &By::Cli), Err(VaultError::RequestStep(_))),
        "a closed request stays closed"
    );
    assert!(matches!(v.request("rq_00000000000000000000000000000000"), Err(VaultError::RequestNotFound)));
    assert!(matches!(v.request("../etc/passwd"), Err(VaultError::RequestNotFound)));
    let steps: Vec<&str> = denied.timeline.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["received", "verified", "extended", "denied"], "the timeline holds every step");
    chain_verifies(&v)
}

#[test]
fn the_extension_moves_the_due_date_by_the_rules_extension() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-03-10")?)?;
    v.add_subject(&adult("eu-5", "eea"), &By::Cli)?;
    let r = submit(&v, "eu-5", "access", Some("2026-03-02"))?;
    assert_eq!((r.due.as_str(), r.extended_due.as_deref()), ("2026-04-02", Some("2026-06-02")));
    let extended = v.extend_request(&r.id, "Complex request", &By::Cli)?;
    assert_eq!(extended.due, "2026-06-02", "the due date in force is the extended one");
    assert_eq!(extended.extension.as_ref().map(|e| e.noticed_on.as_str()), Some("2026-03-10"));
    Ok(())
}

#[test]
fn each_kind_is_carried_out_through_the_same_change_as_its_direct_route() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-6", "eea"), &By::Cli)?;
    v.add_subject(&adult("cal-6", "california"), &By::Cli)?;
    let run = |subject: &str, kind: &str, purposes: &[&str]| -> TestResult<RequestView> {
        let purposes = purposes.iter().map(|p| p.to_string()).collect();
        let r = v.submit_request(&Submission { subject, kind, purposes, ..Default::default() }, &By::Cli)?;
        if r.status != RequestStatus::Verified {
            v.verify_request(&r.id, VerifyMethod::Session, &By::Cli)?;
        }
        let done = v.execute_request(&r.id, &By::Cli)?;
        assert_eq!(done.status, RequestStatus::Completed, "{kind}");
        Ok(done)
    };
    run("eu-6", "restriction", &[])?;
    assert!(v.subject("eu-6")?.state.restricted_since.is_some());
    run("eu-6", "objection", &["marketing"])?;
    assert!(v.subject("eu-6")?.state.objections.contains_key("marketing"));
    v.grant_consent("eu-6", "marketing", None, &By::Cli)?;
    let withdrawn = run("eu-6", "withdraw_consent", &[])?;
    assert_eq!(
        withdrawn.outcome.as_ref().map(|o| o["consents_withdrawn"].clone()),
        Some(serde_json::json!(["marketing"]))
    );
    run("cal-6", "opt_out", &[])?;
    assert!(v.subject("cal-6")?.state.opted_out_since.is_some());
    run("cal-6", "limit_sensitive", &[])?;
    assert!(v.subject("cal-6")?.state.sensitive_limited_since.is_some());
    let complaint = run("eu-6", "complaint", &[])?;
    let authority = complaint.outcome.as_ref().and_then(|o| o["supervisory_authority"].as_str().map(str::to_string));
    assert!(authority.is_some_and(|a| a.contains("CNPD")), "the response names the supervisory authority");
    let objection_without_purpose =
        v.submit_request(&Submission { subject: "eu-6", kind: "objection", ..Default::default() }, &By::Cli);
    assert!(matches!(objection_without_purpose, Err(VaultError::Input(_))));
    chain_verifies(&v)
}

#[test]
fn an_erasure_request_outlives_the_subject_with_its_details_sealed_and_out_of_the_audit_log() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-7", "eea"), &By::Cli)?;
    let r = submit(&v, "eu-7", "erasure", None)?;
    v.verify_request(&r.id, VerifyMethod::Session, &By::Cli)?;
    v.extend_request(&r.id, "Reason-text-for-the-person", &By::Cli)?;
    let done = v.execute_request(&r.id, &By::Cli)?;
    assert_eq!(done.status, RequestStatus::Completed);
    assert!(v.subject("eu-7")?.erased_at.is_some(), "the subject is erased");
    let after = v.request(&r.id)?;
    assert_eq!(after.status, RequestStatus::Completed, "the record stays after the erasure");
    assert_eq!(after.extension.and_then(|e| e.reason).as_deref(), Some("Reason-text-for-the-person"));
    let listed = v.requests(&RequestQuery { subject: Some("eu-7"), limit: 10, ..Default::default() })?;
    assert_eq!(listed.len(), 1, "listed by the erased subject's id");
    // Nothing the person wrote or where they are answered is stored or audited in clear.
    let dump = storage.dump()?;
    for secret in [CONTACT, NOTE, "Reason-text-for-the-person"] {
        assert!(!contains(&dump, secret.as_bytes()), "`{secret}` is stored in clear");
    }
    let audit = serde_json::to_string(&audit_bodies(&v)?)?;
    for secret in [CONTACT, NOTE, "Reason-text-for-the-person", "eu-7"] {
        assert!(!audit.contains(secret), "`{secret}` is in the audit log");
    }
    chain_verifies(&v)
}

#[test]
fn another_master_key_opens_no_request_details() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let clock = clock_on("2026-06-01")?;
    let v = vault(storage.open()?, clock.clone())?;
    v.add_subject(&adult("eu-8", "eea"), &By::Cli)?;
    let r = submit(&v, "eu-8", "access", None)?;
    let other = vault(storage.open()?, clock)?;
    assert!(matches!(other.request(&r.id), Err(VaultError::Crypto(_))), "sealed under the first master key");
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_erasure_request_of_a_subject_erased_already_completes_with_nothing_more_to_destroy() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-9", "eea"), &By::Cli)?;
    let r = submit(&v, "eu-9", "erasure", None)?;
    v.verify_request(&r.id, VerifyMethod::Session, &By::Cli)?;
    v.erase("eu-9", &By::Cli)?;
    let done = v.execute_request(&r.id, &By::Cli)?;
    assert_eq!(done.status, RequestStatus::Completed, "not stuck in progress");
    assert_eq!(done.outcome.map(|o| o["item_versions_erased"].clone()), Some(serde_json::json!(0)));
    Ok(())
}

#[test]
fn a_submission_with_fields_its_kind_does_not_take_or_a_bad_contact_is_refused() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, clock_on("2026-06-01")?)?;
    v.add_subject(&adult("eu-10", "eea"), &By::Cli)?;
    let purposes = vec!["marketing".to_string()];
    let access = Submission { subject: "eu-10", kind: "access", purposes, ..Default::default() };
    assert!(
        matches!(v.submit_request(&access, &By::Cli), Err(VaultError::Input(_))),
        "an access request names no purpose"
    );
    for contact in ["", "no-at-sign", "two words@example.org", "a@b", &format!("{}@example.org", "x".repeat(260))] {
        let s = Submission { subject: "eu-10", kind: "access", contact: Some(contact), ..Default::default() };
        match v.submit_request(&s, &By::Cli) {
            Err(VaultError::Input(e)) => {
                assert!(!e.to_string().contains(contact) || contact.is_empty(), "not quoted: {e}")
            }
            other => panic!("`{contact}` accepted: {other:?}"),
        }
    }
    let empty_note = Submission { subject: "eu-10", kind: "access", note: Some("  "), ..Default::default() };
    assert!(matches!(v.submit_request(&empty_note, &By::Cli), Err(VaultError::Input(_))));
    assert!(
        v.requests(&RequestQuery { subject: Some("eu-10"), limit: 10, ..Default::default() })?.is_empty(),
        "nothing recorded"
    );
    Ok(())
}
