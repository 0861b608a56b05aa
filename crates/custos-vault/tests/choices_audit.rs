//! Who made a choice is in the audit log: a consent given or withdrawn by a
//! subject's linked guardian names the guardian (by pseudonym, never by id);
//! the subject's own choice names no guardian.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, NewSubject, Vault};
use time::macros::{date, datetime};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn vault(store: TestStore) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    let clock = FixedClock::new(Timestamp::from_datetime(datetime!(2024-06-01 12:00 UTC)));
    Ok(Vault::new(policy, store, Keyring::new(&MasterKey::generate()?)?, Arc::new(clock)))
}

/// The newest audit entry's body.
fn last_event(v: &Vault<TestStore>) -> TestResult<serde_json::Value> {
    let head = v.store().audit_head()?.seq;
    let entry = v.store().audit_entries(head - 1, 1)?.pop().ok_or("no audit entry")?;
    Ok(serde_json::from_str(&entry.body)?)
}

#[test]
fn a_guardians_consent_is_audited_as_the_guardians() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?)?;
    let parent = NewSubject { id: "parent-ga", jurisdiction: "eea", region: None, birth_date: None, guardian: None };
    v.add_subject(&parent, &By::Cli)?;
    let kid = NewSubject {
        id: "kid-ga",
        jurisdiction: "eea",
        region: None,
        birth_date: Some(date!(2015 - 03 - 03)),
        guardian: Some("parent-ga"),
    };
    v.add_subject(&kid, &By::Cli)?;

    v.grant_consent("kid-ga", "provide_offerings", Some("parent-ga"), &By::Key("k1".into()))?;
    let granted = last_event(&v)?;
    assert_eq!(granted["action"], "consent_granted", "{granted}");
    assert_eq!(granted["subject"], v.pseudonym("kid-ga"), "{granted}");
    assert_eq!(granted["guardian"], v.pseudonym("parent-ga"), "{granted}");
    assert_eq!(granted["by"], "key:k1", "{granted}");
    assert!(!granted.to_string().contains("parent-ga"), "the guardian's id is not in the log: {granted}");
    // Nor in the subject's state, which the store keeps in clear: only the fact.
    let kid_id = custos_core::subject::SubjectId::parse("kid-ga")?;
    let stored = v.store().subject(&kid_id)?.ok_or("the subject")?;
    let state = serde_json::to_string(&stored.subject.state)?;
    assert!(!state.contains("parent-ga") && state.contains("\"by_guardian\":true"), "{state}");

    v.withdraw_consent("kid-ga", "provide_offerings", Some("parent-ga"), &By::Cli)?;
    let withdrawn = last_event(&v)?;
    assert_eq!(withdrawn["action"], "consent_withdrawn", "{withdrawn}");
    assert_eq!(withdrawn["guardian"], v.pseudonym("parent-ga"), "{withdrawn}");

    // The subject's own choice names no guardian.
    v.grant_consent("parent-ga", "marketing", None, &By::Cli)?;
    let own = last_event(&v)?;
    assert_eq!(own["action"], "consent_granted", "{own}");
    assert!(own.get("guardian").is_none(), "{own}");
    assert!(v.verify_audit()?.is_ok(), "the chain still verifies");
    Ok(())
}
