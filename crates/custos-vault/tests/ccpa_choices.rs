//! CCPA's standing choices: a request to limit the use of sensitive personal
//! information (§1798.121) stops every purpose the policy does not mark
//! `sensitive_use_permitted` from using sensitive categories, and an opt-out
//! of sale and sharing (§1798.120) stops the purposes marked
//! `sale_or_sharing`. Both are refused with `right_not_available` where the
//! jurisdiction grants no such right; lifting either is always allowed; every
//! change is audited. On PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::decision::DenyReason;
use custos_core::policy::Policy;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, CONTROLLER, NewSubject, Put, Read, Vault, VaultError};
use time::macros::datetime;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn vault_with(store: TestStore, policy: &str) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(policy)?);
    let clock = FixedClock::new(Timestamp::from_datetime(datetime!(2026-06-01 12:00 UTC)));
    Ok(Vault::new(policy, store, Keyring::new(&MasterKey::generate()?)?, Arc::new(clock)))
}

fn adult<'a>(id: &'a str, jurisdiction: &'a str) -> NewSubject<'a> {
    NewSubject { id, jurisdiction, region: None, birth_date: None, guardian: None }
}

fn read<'a>(subject: &'a str, purpose: &'a str) -> Read<'a> {
    Read { subject, purpose, actor: CONTROLLER, scope: None, by: &By::Cli }
}

/// The reason `result` was denied for, or `None` if it was not a denial.
fn denial<T>(result: Result<T, VaultError>) -> Option<DenyReason> {
    match result {
        Err(VaultError::Denied(d)) => Some(d.reason),
        _ => None,
    }
}

/// The newest audit entry's body.
fn last_event(v: &Vault<TestStore>) -> TestResult<serde_json::Value> {
    let head = v.store().audit_head()?.seq;
    let entry = v.store().audit_entries(head - 1, 1)?.pop().ok_or("no audit entry")?;
    Ok(serde_json::from_str(&entry.body)?)
}

#[test]
fn a_limit_on_sensitive_information_stops_only_the_purposes_that_may_not_keep_it() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault_with(storage.open()?, POLICY)?;
    let carol = "carol-ccpa";
    v.add_subject(&adult(carol, "california"), &By::Cli)?;
    let voice = "voice sample of carol";
    let put = Put {
        subject: carol,
        category: "biometric.image_voice",
        value: voice,
        source: "provided",
        purpose: "provide_offerings",
    };
    v.put(&put, &By::Cli)?;
    v.put(&Put { category: "contact.email", value: "carol@mail.example.net", ..put }, &By::Cli)?;
    v.grant_consent(carol, "consented_purposes", None, &By::Cli)?;
    assert_eq!(v.get(&read(carol, "consented_purposes"), "biometric.image_voice")?.value.as_str(), voice);

    v.set_sensitive_limited(carol, true, &By::Key("k1".into()))?;
    let limited = last_event(&v)?;
    assert_eq!(limited["action"], "sensitive_use_limited", "{limited}");
    assert_eq!(limited["by"], "key:k1", "{limited}");
    assert!(!limited.to_string().contains(carol), "the subject is named by pseudonym: {limited}");
    let since = v.subject(carol)?.state.sensitive_limited_since;
    assert!(since.is_some());

    // A consent-based purpose the policy does not mark §7027(m) loses the
    // sensitive category, and the denial is audited with its reason...
    let denied = denial(v.get(&read(carol, "consented_purposes"), "biometric.image_voice"));
    assert_eq!(denied, Some(DenyReason::SensitiveUseLimited));
    let refusal = last_event(&v)?;
    assert_eq!(
        (refusal["action"].as_str(), refusal["reason"].as_str()),
        (Some("access_denied"), Some("sensitive_use_limited"))
    );
    // ... a write for it is refused the same way ...
    let rewrite = Put { purpose: "consented_purposes", value: "another sample", ..put };
    assert_eq!(denial(v.put(&rewrite, &By::Cli)), Some(DenyReason::SensitiveUseLimited));
    // ... while performing the services goes on, and what is not sensitive is untouched.
    assert_eq!(v.get(&read(carol, "provide_offerings"), "biometric.image_voice")?.value.as_str(), voice);
    assert_eq!(v.get(&read(carol, "provide_offerings"), "contact.email")?.value.as_str(), "carol@mail.example.net");

    // Limiting again keeps the first date; lifting restores the purpose.
    v.set_sensitive_limited(carol, true, &By::Cli)?;
    assert_eq!(v.subject(carol)?.state.sensitive_limited_since, since);
    v.set_sensitive_limited(carol, false, &By::Cli)?;
    assert_eq!(last_event(&v)?["action"], "sensitive_limit_lifted");
    assert_eq!(v.subject(carol)?.state.sensitive_limited_since, None);
    assert_eq!(v.get(&read(carol, "consented_purposes"), "biometric.image_voice")?.value.as_str(), voice);
    assert!(v.verify_audit()?.is_ok(), "the audit chain verifies");
    Ok(())
}

#[test]
fn a_jurisdiction_that_grants_no_such_right_refuses_the_choice_and_changes_nothing() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault_with(storage.open()?, POLICY)?;
    let erik = "erik-eea";
    v.add_subject(&adult(erik, "eea"), &By::Cli)?;
    for (attempt, right) in [
        (v.set_opted_out(erik, true, &By::Cli), "opt_out"),
        (v.set_sensitive_limited(erik, true, &By::Cli), "limit_sensitive"),
    ] {
        match attempt {
            Err(VaultError::RightNotAvailable { right: r, jurisdiction }) => {
                assert_eq!((r, jurisdiction.as_str()), (right, "eea"))
            }
            other => panic!("expected right_not_available for {right}, got {other:?}"),
        }
        let refusal = last_event(&v)?;
        assert_eq!(refusal["reason"], "right_not_available", "{refusal}");
    }
    let state = v.subject(erik)?.state;
    assert_eq!((state.opted_out_since, state.sensitive_limited_since), (None, None));
    // Lifting what was never set is allowed everywhere (and changes nothing).
    v.set_opted_out(erik, false, &By::Cli)?;
    v.set_sensitive_limited(erik, false, &By::Cli)?;
    assert_eq!(last_event(&v)?["action"], "sensitive_limit_lifted");
    Ok(())
}

/// The bundled notice sells and shares nothing, so an opt-out there changes
/// no decision; another company's policy marks its ad-targeting purpose.
#[test]
fn an_opt_out_stops_the_purposes_that_sell_or_share_and_opting_back_in_restores_them() -> TestResult {
    let with_sharing = POLICY.replacen("  - id: marketing\n", "  - id: marketing\n    sale_or_sharing: true\n", 1);
    assert_ne!(with_sharing, POLICY, "the example has a marketing purpose");
    let storage = TestStorage::fresh()?;
    let v = vault_with(storage.open()?, &with_sharing)?;
    let dana = "dana-ccpa";
    v.add_subject(&adult(dana, "california"), &By::Cli)?;
    let put = Put {
        subject: dana,
        category: "contact.email",
        value: "dana@mail.example.net",
        source: "provided",
        purpose: "provide_offerings",
    };
    v.put(&put, &By::Cli)?;
    assert_eq!(v.get(&read(dana, "marketing"), "contact.email")?.value.as_str(), "dana@mail.example.net");

    v.set_opted_out(dana, true, &By::Cli)?;
    assert_eq!(last_event(&v)?["action"], "opt_out_recorded");
    assert_eq!(denial(v.get(&read(dana, "marketing"), "contact.email")), Some(DenyReason::OptedOut));
    assert_eq!(last_event(&v)?["reason"], "opted_out");
    // Providing the services is not a sale.
    assert_eq!(v.get(&read(dana, "provide_offerings"), "contact.email")?.value.as_str(), "dana@mail.example.net");

    v.set_opted_out(dana, false, &By::Cli)?;
    assert_eq!(last_event(&v)?["action"], "opt_out_lifted");
    assert_eq!(v.get(&read(dana, "marketing"), "contact.email")?.value.as_str(), "dana@mail.example.net");
    assert!(v.verify_audit()?.is_ok(), "the audit chain verifies");
    Ok(())
}
