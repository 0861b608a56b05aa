//! One place decides: the refusals the vault used to make itself (a
//! detokenization for a purpose the policy does not list, an actor the policy
//! does not declare, a service key's purpose scope) are now `decide`'s, each
//! with its own `DenyReason`, and each audited exactly once with that code.
//! On SQLite, or on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres` (see `custos_test_support`).

use custos_vault::By;
use std::sync::Arc;

use custos_core::audit::AuditEntry;
use custos_core::decision::DenyReason;
use custos_core::policy::Policy;
use custos_core::time::SystemClock;
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::access::{Principal, Role};
use custos_vault::{CONTROLLER, NewSubject, Put, Read, Vault, VaultError};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const SUBJECT: &str = "subj-4T7QW2";
const CARD: &str = "5555 5555 5555 4444";
const NAME: &str = "Ottilie Quennell-Brask";

/// A vault over a fresh store with one subject holding a name and a card
/// number (collected to provide the offerings), and the token of the card.
fn fixture() -> TestResult<(Vault<TestStore>, TestStorage, String)> {
    let policy = Policy::from_yaml(include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml"))?;
    let master = MasterKey::generate()?;
    let storage = TestStorage::fresh()?;
    let v = Vault::new(Arc::new(policy), storage.open()?, Keyring::new(&master)?, Arc::new(SystemClock));
    v.add_subject(
        &NewSubject { id: SUBJECT, jurisdiction: "eea", region: None, birth_date: None, guardian: None },
        &By::Cli,
    )?;
    let put =
        |category, value| Put { subject: SUBJECT, category, value, source: "provided", purpose: "provide_offerings" };
    v.put_batch(&[put("contact.name", NAME), put("payment.card_number", CARD)], CONTROLLER, None, &By::Cli)?;
    let shown = v.get(&read(CONTROLLER, "provide_offerings", None), "payment.card_number")?;
    let token = shown.value.get(..36).unwrap_or_default().to_string();
    Ok((v, storage, token))
}

fn read<'a>(actor: &'a str, purpose: &'a str, principal: Option<&'a Principal>) -> Read<'a> {
    Read { subject: SUBJECT, purpose, actor, scope: principal.and_then(|p| p.scope.as_deref()), by: &By::Cli }
}

/// A string field of a canonical audit body.
fn field<'b>(body: &'b str, name: &str) -> Option<&'b str> {
    let key = format!("\"{name}\":\"");
    let start = body.find(&key)? + key.len();
    let len = body[start..].find('"')?;
    Some(&body[start..start + len])
}

/// Runs `op`, which must be denied with `reason`, and returns the one audit
/// entry it appended: `access_denied`, with `reason`'s code.
fn denied_once<T: std::fmt::Debug>(
    v: &Vault<TestStore>,
    reason: DenyReason,
    op: impl FnOnce() -> Result<T, VaultError>,
) -> TestResult<AuditEntry> {
    let before = v.store().audit_head()?.seq;
    match op() {
        Err(VaultError::Denied(d)) if d.reason == reason => {
            assert!(!d.sentence.contains(SUBJECT) && !d.sentence.contains(NAME), "{}", d.sentence);
        }
        other => return Err(format!("expected a denial `{}`, got {other:?}", reason.code()).into()),
    }
    let mut new = v.store().audit_entries(before, 100)?;
    if new.len() != 1 {
        return Err(format!("expected exactly one audit entry, got {new:?}").into());
    }
    let entry = new.remove(0);
    assert_eq!(field(&entry.body, "action"), Some("access_denied"), "{}", entry.body);
    assert_eq!(field(&entry.body, "reason"), Some(reason.code()), "{}", entry.body);
    assert!(!entry.body.contains(SUBJECT) && !entry.body.contains(NAME), "{}", entry.body);
    Ok(entry)
}

/// Every audited reason code is one of the decision engine's.
fn every_audited_reason_is_a_deny_reason(v: &Vault<TestStore>) -> TestResult {
    for e in v.store().audit_entries(0, 10_000)? {
        if let Some(code) = field(&e.body, "reason") {
            assert!(DenyReason::ALL.iter().any(|r| r.code() == code), "`{code}` is not a DenyReason: {}", e.body);
        }
    }
    assert!(v.verify_audit()?.is_ok());
    Ok(())
}

#[test]
fn regression_detokenize_purpose_not_listed_is_denied_by_decide() -> TestResult {
    let (v, _storage, token) = fixture()?;
    // Fraud prevention may read the card (as its token), not recover the number.
    assert!(v.get(&read(CONTROLLER, "fraud_prevention", None), "payment.card_number").is_ok());
    let entry = denied_once(&v, DenyReason::DetokenizeNotAllowed, || {
        v.detokenize(&token, "fraud_prevention", CONTROLLER, None, &By::Cli)
    })?;
    assert_eq!(field(&entry.body, "purpose"), Some("fraud_prevention"));
    assert!(entry.body.contains("\"categories\":[\"payment.card_number\"]"), "{}", entry.body);
    assert_eq!(field(&entry.body, "subject"), Some(v.pseudonym(SUBJECT).as_str()));
    // The purpose the policy lists still recovers it.
    assert_eq!(v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli)?.as_str(), "5555555555554444");
    every_audited_reason_is_a_deny_reason(&v)
}

#[test]
fn regression_unknown_actor_is_denied_by_decide_with_its_own_reason() -> TestResult {
    let (v, _storage, token) = fixture()?;
    let stranger = "someone-else";
    denied_once(&v, DenyReason::ActorNotDeclared, || {
        v.get(&read(stranger, "provide_offerings", None), "contact.name")
    })?;
    denied_once(&v, DenyReason::ActorNotDeclared, || v.get_all(&read(stranger, "provide_offerings", None)))?;
    denied_once(&v, DenyReason::ActorNotDeclared, || {
        v.history(&read(stranger, "provide_offerings", None), "contact.name")
    })?;
    denied_once(&v, DenyReason::ActorNotDeclared, || {
        v.detokenize(&token, "provide_offerings", stranger, None, &By::Cli)
    })?;
    let entry = denied_once(&v, DenyReason::ActorNotDeclared, || {
        let put = Put {
            subject: SUBJECT,
            category: "contact.name",
            value: "Someone Else-Entirely",
            source: "provided",
            purpose: "provide_offerings",
        };
        v.put_batch(&[put], stranger, None, &By::Cli)
    })?;
    // A name the policy does not declare may be anything (an email address):
    // the audit log records it as undeclared, never as typed.
    assert_eq!(field(&entry.body, "actor"), Some(custos_vault::UNDECLARED_ACTOR));
    assert!(!entry.body.contains(stranger), "{}", entry.body);
    // A declared recipient that is not declared for the purpose keeps its own reason.
    denied_once(&v, DenyReason::RecipientNotAllowed, || {
        v.get(&read("advertising_partners", "provide_offerings", None), "contact.name")
    })?;
    assert_eq!(v.get(&read(CONTROLLER, "provide_offerings", None), "contact.name")?.value.as_str(), NAME);
    every_audited_reason_is_a_deny_reason(&v)
}

#[test]
fn regression_service_key_scope_is_a_deny_reason_decided_by_decide() -> TestResult {
    let (v, _storage, token) = fixture()?;
    let key = v.create_api_key(Role::Service, Some("paymenttech"), &["provide_offerings".to_string()], &By::Cli)?;
    let p = v.authenticate(&key.secret)?.ok_or("the key authenticates")?;
    let actor = p.actor.as_str();

    // In scope: the policy decides as for any recipient.
    assert_eq!(v.get(&read(actor, "provide_offerings", Some(&p)), "contact.name")?.value.as_str(), NAME);
    // fraud_prevention is declared for paymenttech in the policy, but not bound to this key.
    for (what, entry) in [
        (
            "get",
            denied_once(&v, DenyReason::PurposeNotBound, || {
                v.get(&read(actor, "fraud_prevention", Some(&p)), "contact.name")
            })?,
        ),
        (
            "get_all",
            denied_once(&v, DenyReason::PurposeNotBound, || v.get_all(&read(actor, "fraud_prevention", Some(&p))))?,
        ),
        (
            "history",
            denied_once(&v, DenyReason::PurposeNotBound, || {
                v.history(&read(actor, "fraud_prevention", Some(&p)), "contact.name")
            })?,
        ),
        (
            "detokenize",
            denied_once(&v, DenyReason::PurposeNotBound, || {
                v.detokenize(&token, "fraud_prevention", actor, p.scope.as_deref(), &By::Cli)
            })?,
        ),
    ] {
        assert_eq!(field(&entry.body, "actor"), Some("paymenttech"), "{what}: {}", entry.body);
        assert_eq!(field(&entry.body, "purpose"), Some("fraud_prevention"), "{what}: {}", entry.body);
        assert_eq!(field(&entry.body, "key"), Some(key.id.as_str()), "{what}: {}", entry.body);
    }
    // Refused before anything is looked up: an unknown subject or token
    // answers the same, so the scope reveals nothing about what is stored.
    denied_once(&v, DenyReason::PurposeNotBound, || {
        v.get(&Read { subject: "nobody-9XK2", ..read(actor, "fraud_prevention", Some(&p)) }, "contact.name")
    })?;
    denied_once(&v, DenyReason::PurposeNotBound, || {
        v.detokenize(&format!("tok_{}", "0".repeat(32)), "fraud_prevention", actor, p.scope.as_deref(), &By::Cli)
    })?;
    every_audited_reason_is_a_deny_reason(&v)
}
