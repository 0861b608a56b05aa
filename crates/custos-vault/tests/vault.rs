//! The vault as its users depend on it, end to end: the bundled AWS policy,
//! the SQLite store (PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`, see
//! `custos_test_support`), a real keyring and a clock the tests move.
//!
//! Each test names one promise. Every test ends by verifying the audit chain
//! and checking that no audit body holds a subject id or a stored value.

use std::fmt::Debug;
use std::sync::Arc;

use custos_core::audit::AuditEntry;
use custos_core::decision::DenyReason;
use custos_core::policy::Policy;
use custos_core::policy::document::LegalBasis;
use custos_core::subject::SubjectId;
use custos_core::time::{Clock, FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_store::StoredItem;
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, CONTROLLER, MAX_VALUE_BYTES, NewSubject, Put, Read, Vault, VaultError};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

/// A card number that passes Luhn (a well-known test number).
const CARD: &str = "5555 5555 5555 4444";
const CARD_DIGITS: &str = "5555555555554444";

// ---------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------

struct Fixture {
    vault: Vault<TestStore>,
    clock: Arc<FixedClock>,
    /// The store's data, deleted when the test ends (after the vault above).
    _storage: TestStorage,
}

fn at(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_datetime(t)
}

fn policy() -> TestResult<Arc<Policy>> {
    Ok(Arc::new(Policy::from_yaml(POLICY)?))
}

fn vault_over(store: TestStore, master: &MasterKey, clock: Arc<dyn Clock>) -> TestResult<Vault<TestStore>> {
    Ok(Vault::new(policy()?, store, Keyring::new(master)?, clock))
}

/// A vault over a fresh store (SQLite in memory, or a new PostgreSQL
/// database), with the clock at 2024-06-01 12:00 UTC.
fn fixture() -> TestResult<Fixture> {
    let clock = Arc::new(FixedClock::new(at(datetime!(2024-06-01 12:00 UTC))));
    let storage = TestStorage::fresh()?;
    let vault = vault_over(storage.open()?, &MasterKey::generate()?, clock.clone())?;
    Ok(Fixture { vault, clock, _storage: storage })
}

fn adult<'a>(id: &'a str, jurisdiction: &'a str) -> NewSubject<'a> {
    NewSubject { id, jurisdiction, region: None, birth_date: None, guardian: None }
}

fn child<'a>(id: &'a str, born: Date, guardian: &'a str) -> NewSubject<'a> {
    NewSubject { id, jurisdiction: "eea", region: None, birth_date: Some(born), guardian: Some(guardian) }
}

/// A value the subject provided, collected to provide the offerings.
fn put<'a>(subject: &'a str, category: &'a str, value: &'a str) -> Put<'a> {
    Put { subject, category, value, source: "provided", purpose: "provide_offerings" }
}

/// A read by the controller.
fn read<'a>(subject: &'a str, purpose: &'a str) -> Read<'a> {
    Read { subject, purpose, actor: CONTROLLER, scope: None, by: &By::Cli }
}

// ---------------------------------------------------------------------------
// Audit helpers
// ---------------------------------------------------------------------------

fn head(vault: &Vault<TestStore>) -> TestResult<u64> {
    Ok(vault.store().audit_head()?.seq)
}

fn entries_after(vault: &Vault<TestStore>, seq: u64) -> TestResult<Vec<AuditEntry>> {
    Ok(vault.store().audit_entries(seq, 1 << 30)?)
}

/// A string field of a canonical audit body, e.g. `field(body, "reason")`.
fn field<'b>(body: &'b str, name: &str) -> Option<&'b str> {
    let key = format!("\"{name}\":\"");
    let start = body.find(&key)? + key.len();
    let len = body[start..].find('"')?;
    Some(&body[start..start + len])
}

/// The `categories` list of a canonical audit body.
fn categories(body: &str) -> Vec<&str> {
    let key = "\"categories\":[";
    let Some(start) = body.find(key).map(|s| s + key.len()) else { return Vec::new() };
    let Some(len) = body[start..].find(']') else { return Vec::new() };
    body[start..start + len].split(',').map(|c| c.trim_matches('"')).filter(|c| !c.is_empty()).collect()
}

/// What a test expects of one audit entry.
#[derive(Debug, Default)]
struct Expect<'a> {
    action: &'a str,
    subject: Option<&'a str>,
    purpose: Option<&'a str>,
    categories: Option<&'a [&'a str]>,
    reason: Option<&'a str>,
    basis: Option<&'a str>,
}

/// Checks one entry against what is expected (the subject by its pseudonym).
fn check_entry(vault: &Vault<TestStore>, entry: &AuditEntry, want: &Expect<'_>) -> Result<(), String> {
    let body = &entry.body;
    let mismatch = |what: &str| Err(format!("entry {}: {what} differs from {want:?}: {body}", entry.seq));
    if field(body, "action") != Some(want.action) {
        return mismatch("action");
    }
    if let Some(s) = want.subject
        && field(body, "subject") != Some(vault.pseudonym(s).as_str())
    {
        return mismatch("subject pseudonym");
    }
    if want.purpose.is_some() && field(body, "purpose") != want.purpose {
        return mismatch("purpose");
    }
    if let Some(c) = want.categories
        && categories(body) != c
    {
        return mismatch("categories");
    }
    if field(body, "reason") != want.reason {
        return mismatch("reason");
    }
    if field(body, "basis") != want.basis {
        return mismatch("basis");
    }
    Ok(())
}

/// Runs `op` and checks that it was denied for `reason` and that exactly one
/// `access_denied` entry with that reason code was appended for `subject`.
fn denied_and_audited<T: Debug>(
    vault: &Vault<TestStore>,
    subject: &str,
    reason: DenyReason,
    op: impl FnOnce() -> Result<T, VaultError>,
) -> TestResult {
    let before = head(vault)?;
    match op() {
        Err(VaultError::Denied(d)) if d.reason == reason => {}
        other => return Err(format!("expected a denial `{}`, got {other:?}", reason.code()).into()),
    }
    let new = entries_after(vault, before)?;
    let [entry] = new.as_slice() else {
        return Err(format!("expected one audit entry for the denial, got {new:?}").into());
    };
    let want =
        Expect { action: "access_denied", subject: Some(subject), reason: Some(reason.code()), ..Expect::default() };
    Ok(check_entry(vault, entry, &want)?)
}

/// Runs `op`, a read that must be allowed, and checks that exactly one entry
/// of `action` with the basis, purpose and category was appended for `subject`.
fn read_and_audited<T>(
    vault: &Vault<TestStore>,
    subject: &str,
    want: Expect<'_>,
    op: impl FnOnce() -> Result<T, VaultError>,
) -> TestResult<T> {
    let before = head(vault)?;
    let out = op()?;
    let new = entries_after(vault, before)?;
    let [entry] = new.as_slice() else {
        return Err(format!("expected one audit entry for the read, got {new:?}").into());
    };
    check_entry(vault, entry, &Expect { subject: Some(subject), ..want })?;
    Ok(out)
}

/// The audit chain verifies, its head is the number of entries, and no body
/// holds any of `secrets` (subject ids and values).
fn audit_is_sound(vault: &Vault<TestStore>, secrets: &[&str]) -> TestResult {
    let verified = vault.verify_audit()?.map_err(|b| format!("the audit chain is broken: {b}"))?.head;
    let all = entries_after(vault, 0)?;
    if verified.seq != all.len() as u64 || verified.seq != head(vault)? {
        return Err(format!("head {} but {} entries", verified.seq, all.len()).into());
    }
    for e in &all {
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            if e.body.contains(s) {
                return Err(format!("audit entry {} holds `{s}`: {}", e.seq, e.body).into());
            }
        }
    }
    Ok(())
}

/// Every stored version of the subject's items (empty for an unknown subject).
fn stored(vault: &Vault<TestStore>, subject: &str) -> TestResult<Vec<StoredItem>> {
    let id = SubjectId::parse(subject)?;
    let mut all = Vec::new();
    for item in vault.store().current_items(&id, &[])? {
        all.extend(vault.store().history(&id, &item.category)?);
    }
    Ok(all)
}

/// Whether the Display or Debug of `err` shows `value` (or its digits, for card numbers).
fn leaks(err: &VaultError, value: &str) -> bool {
    let shown = format!("{err} {err:?}");
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    (!value.is_empty() && shown.contains(value)) || (digits.len() >= 8 && shown.contains(&digits))
}

// ---------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Invalid,
    SubjectNotFound,
    Denied(DenyReason),
}

#[test]
fn a_batch_with_one_invalid_item_writes_nothing_and_audits_only_a_denial() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, bob, gone, parent, kid) =
        ("alice@example.org", "bob@example.org", "gone@example.org", "parent@example.org", "kid@example.org");
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(bob, "california"), &By::Cli)?;
    v.add_subject(&adult(gone, "eea"), &By::Cli)?;
    v.put(&put(gone, "contact.name", "Gone Girl-Gonzalez"), &By::Cli)?;
    v.erase(gone, &By::Cli)?;
    v.add_subject(&adult(parent, "eea"), &By::Cli)?;
    v.add_subject(&child(kid, date!(2012 - 05 - 05), parent), &By::Cli)?;
    // Something stored already, so that "nothing written" also means "nothing superseded".
    v.put(&put(alice, "contact.email", "alice.old@example.org"), &By::Cli)?;

    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    let good = [
        put(alice, "contact.email", "alice.new@example.org"),
        put(alice, "contact.name", "Alice Liddell-Marsh"),
        put(bob, "contact.phone", "+1 415 555 0199"),
        put(alice, "payment.card_number", CARD),
    ];
    let cases: Vec<(&str, Put<'_>, Outcome)> = vec![
        ("unknown category", put(bob, "contact.fax", "+1 415 555 0100"), Outcome::Invalid),
        (
            "source not declared for the category",
            Put { source: "automatic", ..put(bob, "contact.name", "Robert Tables-Jones") },
            Outcome::Invalid,
        ),
        (
            "unknown source",
            Put { source: "telepathy", ..put(bob, "contact.name", "Robert Tables-Jones") },
            Outcome::Invalid,
        ),
        (
            "unknown purpose",
            Put { purpose: "world_domination", ..put(bob, "contact.name", "Robert Tables-Jones") },
            Outcome::Invalid,
        ),
        ("empty value", put(bob, "contact.address", ""), Outcome::Invalid),
        ("oversized value", put(bob, "contact.address", &big), Outcome::Invalid),
        ("card number failing Luhn", put(bob, "payment.card_number", "4111 1111 1111 1112"), Outcome::Invalid),
        ("card number with a letter", put(bob, "payment.card_number", "4111-1111-1111-111X"), Outcome::Invalid),
        ("card number too short", put(bob, "payment.card_number", "4111 1111"), Outcome::Invalid),
        ("malformed subject id", put("bob example", "contact.name", "Robert Tables-Jones"), Outcome::Invalid),
        ("unknown subject", put("nobody@example.org", "contact.name", "Nemo Nobody-Nowhere"), Outcome::SubjectNotFound),
        ("erased subject", put(gone, "contact.name", "Gone Girl-Gonzalez"), Outcome::Denied(DenyReason::Erased)),
        (
            "child without guardian consent",
            put(kid, "contact.name", "Kid Kiddington-Smythe"),
            Outcome::Denied(DenyReason::GuardianConsentMissing),
        ),
        (
            "purpose not declared for the category",
            Put { purpose: "marketing", ..put(bob, "payment.card_number", "5105 1051 0510 5100") },
            Outcome::Denied(DenyReason::PurposeNotDeclaredForCategory),
        ),
        (
            "consent-based purpose without consent",
            Put { purpose: "marketing", ..put(alice, "contact.name", "Alice Marketing-Target") },
            Outcome::Denied(DenyReason::ConsentMissing),
        ),
    ];
    let subjects = [alice, bob, gone, parent, kid];
    for (name, bad, outcome) in &cases {
        for position in 0..=good.len() {
            let mut batch = good.to_vec();
            batch.insert(position, *bad);
            let before_head = head(v)?;
            let before: Vec<Vec<StoredItem>> = subjects.iter().map(|s| stored(v, s)).collect::<TestResult<_>>()?;

            let result = v.put_batch(&batch, CONTROLLER, None, &By::Cli);

            let ctx = format!("{name}, bad item at {position}");
            let err = match result {
                Ok(versions) => panic!("{ctx}: the batch was accepted: {versions:?}"),
                Err(e) => e,
            };
            match (outcome, &err) {
                (Outcome::Invalid, VaultError::Input(_)) | (Outcome::SubjectNotFound, VaultError::SubjectNotFound) => {}
                (Outcome::Denied(r), VaultError::Denied(d)) => assert_eq!(d.reason, *r, "{ctx}"),
                _ => panic!("{ctx}: expected {outcome:?}, got {err:?}"),
            }
            assert!(err.is_client_error(), "{ctx}: {err:?}");
            let after: Vec<Vec<StoredItem>> = subjects.iter().map(|s| stored(v, s)).collect::<TestResult<_>>()?;
            assert_eq!(after, before, "{ctx}: items changed");

            let new = entries_after(v, before_head)?;
            match outcome {
                Outcome::Denied(reason) => {
                    assert_eq!(new.len(), 1, "{ctx}: {new:?}");
                    let cats = [bad.category];
                    let want = Expect {
                        action: "access_denied",
                        subject: Some(bad.subject),
                        purpose: Some(bad.purpose),
                        categories: Some(&cats),
                        reason: Some(reason.code()),
                        ..Expect::default()
                    };
                    check_entry(v, &new[0], &want).map_err(|e| format!("{ctx}: {e}"))?;
                }
                _ => assert!(new.is_empty(), "{ctx}: the audit head moved: {new:?}"),
            }
            for p in &batch {
                assert!(!leaks(&err, p.value), "{ctx}: the error shows a value: {err}");
            }
        }
    }

    // The same batch without the bad item goes through, in one piece.
    assert_eq!(v.put_batch(&good, CONTROLLER, None, &By::Cli)?, vec![2, 1, 1, 1]);
    let secrets = [alice, bob, gone, parent, kid, "alice.new@example.org", "Alice Liddell-Marsh", CARD_DIGITS];
    audit_is_sound(v, &secrets)
}

#[test]
fn a_batch_for_several_subjects_audits_one_write_per_subject_and_returns_versions_in_input_order() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, bob, carol) = ("alice@example.org", "bob@example.org", "carol@example.org");
    for s in [alice, bob, carol] {
        v.add_subject(&adult(s, "eea"), &By::Cli)?;
    }
    assert_eq!(v.put(&put(alice, "contact.email", "alice.1@example.org"), &By::Cli)?, 1);
    let before = head(v)?;

    let batch = [
        put(bob, "contact.name", "Bob Bobson-Smith"),
        put(alice, "contact.email", "alice.2@example.org"),
        put(carol, "contact.phone", "+44 20 7946 0958"),
        put(alice, "contact.email", "alice.3@example.org"),
        put(bob, "contact.email", "bob@mail.example.net"),
        put(alice, "contact.name", "Alice Liddell-Marsh"),
    ];
    let versions = v.put_batch(&batch, CONTROLLER, None, &By::Cli)?;
    assert_eq!(versions, vec![1, 2, 1, 3, 1, 1]);

    let new = entries_after(v, before)?;
    assert_eq!(new.len(), 3, "one data_written entry per subject: {new:?}");
    for (subject, cats) in [
        (alice, &["contact.email", "contact.name"][..]),
        (bob, &["contact.name", "contact.email"][..]),
        (carol, &["contact.phone"][..]),
    ] {
        let pseudonym = v.pseudonym(subject);
        let entry = new
            .iter()
            .find(|e| field(&e.body, "subject") == Some(pseudonym.as_str()))
            .unwrap_or_else(|| panic!("no entry for {subject}: {new:?}"));
        let want = Expect {
            action: "data_written",
            subject: Some(subject),
            purpose: Some("provide_offerings"),
            categories: Some(cats),
            ..Expect::default()
        };
        check_entry(v, entry, &want)?;
    }

    // The later of two puts of one category in a batch is the current value.
    let current = v.get(&read(alice, "provide_offerings"), "contact.email")?;
    assert_eq!((current.value.as_str(), current.version), ("alice.3@example.org", 3));
    let history = v.history(&read(alice, "provide_offerings"), "contact.email")?;
    let seen: Vec<(&str, u32)> = history.iter().map(|r| (r.value.as_str(), r.version)).collect();
    assert_eq!(seen, vec![("alice.3@example.org", 3), ("alice.2@example.org", 2), ("alice.1@example.org", 1)]);
    assert_eq!(history[1].superseded_at, Some(f.clock.now()), "superseded within the same batch");

    let values: Vec<&str> = batch.iter().map(|p| p.value).collect();
    audit_is_sound(v, &[&[alice, bob, carol, "alice.1@example.org"][..], values.as_slice()].concat())
}

#[test]
fn a_read_returns_exactly_the_value_written_with_its_metadata() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    let value = "  Ålice \"Quoted\" Liddell\t— 日本語 \u{1F600}  ";
    assert_eq!(v.put(&put(alice, "contact.name", value), &By::Cli)?, 1);
    let r = v.get(&read(alice, "provide_offerings"), "contact.name")?;
    assert_eq!(r.value.as_str(), value);
    assert_eq!(
        (r.category.as_str(), r.source.as_str(), r.collected_for.as_str()),
        ("contact.name", "provided", "provide_offerings")
    );
    assert_eq!((r.collected_at, r.notice_version.as_str()), (f.clock.now(), "2020-01-24"));
    assert_eq!((r.superseded_at, r.delete_after, r.basis), (None, None, LegalBasis::Contract));
    // The largest value accepted is accepted.
    let largest = "y".repeat(MAX_VALUE_BYTES);
    assert_eq!(v.put(&put(alice, "contact.address", &largest), &By::Cli)?, 1);
    assert_eq!(v.get(&read(alice, "provide_offerings"), "contact.address")?.value.as_str(), largest);
    audit_is_sound(v, &[alice, value, &largest])
}

// ---------------------------------------------------------------------------
// Decisions and their audit
// ---------------------------------------------------------------------------

#[test]
fn every_denial_is_audited_with_its_reason_and_every_allowed_read_with_its_basis() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, bob) = ("alice@example.org", "bob@example.org");
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(bob, "california"), &By::Cli)?;
    v.put_batch(
        &[
            put(alice, "contact.email", "alice@mail.example.net"),
            put(alice, "contact.name", "Alice Liddell-Marsh"),
            put(alice, "payment.card_number", CARD),
            put(bob, "contact.email", "bob@mail.example.net"),
        ],
        CONTROLLER,
        None,
        &By::Cli,
    )?;
    let get = |s, purpose, actor| {
        move || v.get(&Read { subject: s, purpose, actor, scope: None, by: &By::Cli }, "contact.email")
    };
    let read_expect = |purpose, basis| Expect {
        action: "data_read",
        purpose: Some(purpose),
        categories: Some(&["contact.email"][..]),
        basis: Some(basis),
        ..Expect::default()
    };

    // Allowed reads, each with the basis the policy gives in the subject's jurisdiction.
    for (purpose, basis) in [
        ("provide_offerings", "contract"),
        ("fraud_prevention", "legitimate_interest"),
        ("legal_obligations", "legal_obligation"),
    ] {
        let r = read_and_audited(v, alice, read_expect(purpose, basis), get(alice, purpose, CONTROLLER))?;
        assert_eq!(r.basis.as_str(), basis);
    }
    // A declared recipient, for a purpose and category it is declared for.
    read_and_audited(v, alice, read_expect("communicate", "contract"), get(alice, "communicate", "marketo"))?;

    // Denials, each with its reason code.
    denied_and_audited(
        v,
        alice,
        DenyReason::PurposeNotDeclaredForCategory,
        get(alice, "improve_offerings", CONTROLLER),
    )?;
    denied_and_audited(
        v,
        alice,
        DenyReason::RecipientNotAllowed,
        get(alice, "provide_offerings", "advertising_partners"),
    )?;
    denied_and_audited(v, alice, DenyReason::ActorNotDeclared, get(alice, "provide_offerings", "someone-else"))?;
    // Marketing rests on consent in the EEA...
    denied_and_audited(v, alice, DenyReason::ConsentMissing, get(alice, "marketing", CONTROLLER))?;
    v.grant_consent(alice, "marketing", None, &By::Cli)?;
    read_and_audited(v, alice, read_expect("marketing", "consent"), get(alice, "marketing", CONTROLLER))?;
    v.withdraw_consent(alice, "marketing", None, &By::Cli)?;
    denied_and_audited(v, alice, DenyReason::ConsentWithdrawn, get(alice, "marketing", CONTROLLER))?;
    // ... and on legitimate interest in California, where an objection stops it.
    read_and_audited(v, bob, read_expect("marketing", "legitimate_interest"), get(bob, "marketing", CONTROLLER))?;
    // California's notice grants no objection (its law grants opt-outs, not
    // objections): refused with `right_not_available`, the refusal audited,
    // and nothing changes.
    let before = head(v)?;
    match v.object(bob, "marketing", &By::Cli) {
        Err(VaultError::RightNotAvailable { right: "objection", jurisdiction }) => {
            assert_eq!(jurisdiction, "california")
        }
        other => panic!("expected right_not_available, got {other:?}"),
    }
    let refusal = v.store().audit_entries(before, 10)?;
    assert_eq!(refusal.len(), 1, "one audited refusal");
    assert!(refusal[0].body.contains("\"reason\":\"right_not_available\""), "{}", refusal[0].body);
    read_and_audited(v, bob, read_expect("marketing", "legitimate_interest"), get(bob, "marketing", CONTROLLER))?;
    // An objection to a legitimate-interest purpose stops it too.
    v.object(alice, "fraud_prevention", &By::Cli)?;
    denied_and_audited(v, alice, DenyReason::Objected, get(alice, "fraud_prevention", CONTROLLER))?;
    // Writes are decided as reads are.
    denied_and_audited(v, alice, DenyReason::ConsentWithdrawn, || {
        v.put(&Put { purpose: "marketing", ..put(alice, "contact.email", "alice.promo@example.net") }, &By::Cli)
    })?;

    // A writer that is not a declared recipient writes nothing.
    denied_and_audited(v, bob, DenyReason::ActorNotDeclared, || {
        v.put_batch(&[put(bob, "contact.phone", "+1 415 555 0123")], "someone-else", None, &By::Cli)
    })?;
    assert!(matches!(v.get(&read(bob, "provide_offerings"), "contact.phone"), Err(VaultError::ItemNotFound(_))));

    // History and detokenization are audited with their basis too.
    let history_expect = Expect { action: "history_read", ..read_expect("provide_offerings", "contract") };
    read_and_audited(v, alice, history_expect, || v.history(&read(alice, "provide_offerings"), "contact.email"))?;
    let card = v.get(&read(alice, "provide_offerings"), "payment.card_number")?;
    let token = card.value.get(..36).unwrap_or_default().to_string();
    let detok_expect = Expect {
        action: "detokenized",
        purpose: Some("provide_offerings"),
        categories: Some(&["payment.card_number"][..]),
        basis: Some("contract"),
        ..Expect::default()
    };
    let pan = read_and_audited(v, alice, detok_expect, || {
        v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli)
    })?;
    assert_eq!(pan.as_str(), CARD_DIGITS);

    audit_is_sound(
        v,
        &[alice, bob, "alice@mail.example.net", "Alice Liddell-Marsh", CARD_DIGITS, "bob@mail.example.net"],
    )
}

#[test]
fn every_state_change_is_audited_under_the_subjects_pseudonym() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, parent, kid) = ("alice@example.org", "parent@example.org", "kid@example.org");
    let before = head(v)?;
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(parent, "eea"), &By::Cli)?;
    v.add_subject(&child(kid, date!(2012 - 05 - 05), parent), &By::Cli)?;
    v.grant_consent(alice, "marketing", None, &By::Cli)?;
    v.withdraw_consent(alice, "marketing", None, &By::Cli)?;
    v.grant_consent(kid, "provide_offerings", Some(parent), &By::Cli)?;
    v.object(alice, "recommendations", &By::Cli)?;
    v.set_restricted(alice, true, &By::Cli)?;
    v.set_restricted(alice, false, &By::Cli)?;
    v.erase(alice, &By::Cli)?;
    let new = entries_after(v, before)?;
    let want = [
        ("subject_created", alice, None),
        ("subject_created", parent, None),
        ("subject_created", kid, None),
        ("consent_granted", alice, Some("marketing")),
        ("consent_withdrawn", alice, Some("marketing")),
        ("consent_granted", kid, Some("provide_offerings")),
        ("objection_recorded", alice, Some("recommendations")),
        ("restriction_set", alice, None),
        ("restriction_lifted", alice, None),
        ("subject_erased", alice, None),
    ];
    assert_eq!(new.len(), want.len(), "{new:?}");
    for (entry, (action, subject, purpose)) in new.iter().zip(want) {
        check_entry(v, entry, &Expect { action, subject: Some(subject), purpose, ..Expect::default() })?;
    }
    // Choices are recorded by the controller and name the acting principal
    // (here the CLI operator), never a guess at who acted.
    assert_eq!(field(&new[5].body, "actor"), Some("controller"));
    for entry in &new {
        assert_eq!(field(&entry.body, "by"), Some("cli"), "{}", entry.body);
    }
    audit_is_sound(v, &[alice, parent, kid])
}

// ---------------------------------------------------------------------------
// Guardians over time
// ---------------------------------------------------------------------------

#[test]
fn a_child_needs_their_guardians_consent_until_their_eighteenth_birthday() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (parent, kid, stranger) = ("parent@example.org", "kid@example.org", "stranger@example.org");
    v.add_subject(&adult(parent, "eea"), &By::Cli)?;
    v.add_subject(&adult(stranger, "eea"), &By::Cli)?;
    // 17 on 2024-06-01; 18 on 2025-03-10 (the example requires a guardian under 18 everywhere).
    v.add_subject(&child(kid, date!(2007 - 03 - 10), parent), &By::Cli)?;
    let email = put(kid, "contact.email", "kid@mail.example.net");
    let get = |purpose| move || v.get(&read(kid, purpose), "contact.email");

    // A contract-based write is refused without the guardian...
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, || v.put(&email, &By::Cli))?;
    // ... but a legal obligation needs no guardian.
    v.put(&Put { purpose: "legal_obligations", ..email }, &By::Cli)?;
    read_and_audited(
        v,
        kid,
        Expect { action: "data_read", basis: Some("legal_obligation"), ..Expect::default() },
        get("legal_obligations"),
    )?;
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, get("provide_offerings"))?;

    // The child's own consent, or a consent by someone who is not their guardian, does not do.
    v.grant_consent(kid, "provide_offerings", None, &By::Cli)?;
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, get("provide_offerings"))?;
    let before = head(v)?;
    let refused = v.grant_consent(kid, "provide_offerings", Some(stranger), &By::Cli);
    assert!(matches!(refused, Err(VaultError::Input(custos_vault::InputError::GuardianNotLinked))), "{refused:?}");
    let refused = v.grant_consent(kid, "provide_offerings", Some("nobody@example.org"), &By::Cli);
    assert!(matches!(refused, Err(VaultError::Input(_))), "{refused:?}");
    assert_eq!(head(v)?, before, "a refused consent changes nothing");
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, get("provide_offerings"))?;

    // The linked guardian's consent does.
    v.grant_consent(kid, "provide_offerings", Some(parent), &By::Cli)?;
    assert_eq!(v.put(&email, &By::Cli)?, 2);
    let r = get("provide_offerings")()?;
    assert_eq!((r.value.as_str(), r.basis), ("kid@mail.example.net", LegalBasis::Contract));
    // ... until the guardian withdraws it.
    v.withdraw_consent(kid, "provide_offerings", Some(parent), &By::Cli)?;
    denied_and_audited(v, kid, DenyReason::ConsentWithdrawn, get("provide_offerings"))?;
    // Consent-based purposes: the child's own consent does not count either.
    v.grant_consent(kid, "consented_purposes", None, &By::Cli)?;
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, get("consented_purposes"))?;

    // The last moment of being 17.
    f.clock.set(at(datetime!(2025-03-09 23:59:59.999999 UTC)));
    denied_and_audited(v, kid, DenyReason::ConsentWithdrawn, get("provide_offerings"))?;
    denied_and_audited(v, kid, DenyReason::GuardianConsentMissing, get("consented_purposes"))?;

    // Eighteen: the contract basis and their own consent are enough.
    f.clock.set(at(datetime!(2025-03-10 00:00 UTC)));
    let r = get("provide_offerings")()?;
    assert_eq!(r.basis, LegalBasis::Contract);
    let r = get("consented_purposes")()?;
    assert_eq!(r.basis, LegalBasis::Consent);
    v.put(&Put { purpose: "consented_purposes", ..put(kid, "contact.name", "Kid Kiddington-Smythe") }, &By::Cli)?;
    // And their own withdrawal now stops it.
    v.withdraw_consent(kid, "consented_purposes", None, &By::Cli)?;
    denied_and_audited(v, kid, DenyReason::ConsentWithdrawn, get("consented_purposes"))?;

    audit_is_sound(v, &[parent, kid, stranger, "kid@mail.example.net", "Kid Kiddington-Smythe"])
}

#[test]
fn a_minors_own_consent_does_not_cancel_their_guardians_consent() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (parent, kid) = ("parent@example.org", "kid@example.org");
    v.add_subject(&adult(parent, "eea"), &By::Cli)?;
    v.add_subject(&child(kid, date!(2012 - 05 - 05), parent), &By::Cli)?;
    v.grant_consent(kid, "provide_offerings", Some(parent), &By::Cli)?;
    v.put(&put(kid, "contact.email", "kid@mail.example.net"), &By::Cli)?;
    // The child ticks "I agree" too.
    v.grant_consent(kid, "provide_offerings", None, &By::Cli)?;
    let r = v.get(&read(kid, "provide_offerings"), "contact.email");
    assert!(r.is_ok(), "the guardian's consent was lost: {r:?}");
    audit_is_sound(v, &[parent, kid, "kid@mail.example.net"])
}

// ---------------------------------------------------------------------------
// Restriction
// ---------------------------------------------------------------------------

#[test]
fn while_processing_is_restricted_only_legal_obligations_may_read_and_lifting_restores_access() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.put(&put(alice, "contact.email", "alice@mail.example.net"), &By::Cli)?;
    v.set_restricted(alice, true, &By::Cli)?;
    // Restricting twice keeps the first date.
    let since = v.subject(alice)?.state.restricted_since;
    f.clock.advance_micros(1_000_000);
    v.set_restricted(alice, true, &By::Cli)?;
    assert_eq!(v.subject(alice)?.state.restricted_since, since);

    for purpose in ["provide_offerings", "fraud_prevention", "communicate"] {
        denied_and_audited(v, alice, DenyReason::Restricted, || v.get(&read(alice, purpose), "contact.email"))?;
    }
    denied_and_audited(v, alice, DenyReason::Restricted, || {
        v.put(&put(alice, "contact.email", "alice.2@mail.example.net"), &By::Cli)
    })?;
    denied_and_audited(v, alice, DenyReason::Restricted, || v.get_all(&read(alice, "provide_offerings")))?;
    let r = v.get(&read(alice, "legal_obligations"), "contact.email")?;
    assert_eq!((r.value.as_str(), r.basis), ("alice@mail.example.net", LegalBasis::LegalObligation));

    v.set_restricted(alice, false, &By::Cli)?;
    assert_eq!(v.subject(alice)?.state.restricted_since, None);
    assert_eq!(v.get(&read(alice, "provide_offerings"), "contact.email")?.value.as_str(), "alice@mail.example.net");
    assert_eq!(v.put(&put(alice, "contact.email", "alice.2@mail.example.net"), &By::Cli)?, 2);
    audit_is_sound(v, &[alice, "alice@mail.example.net", "alice.2@mail.example.net"])
}

// ---------------------------------------------------------------------------
// Reading everything
// ---------------------------------------------------------------------------

#[test]
fn get_all_returns_the_allowed_categories_and_lists_the_denied_ones() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, bob) = ("alice@example.org", "bob@example.org");
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(bob, "eea"), &By::Cli)?;
    v.put_batch(
        &[
            put(alice, "contact.email", "alice@mail.example.net"),
            put(alice, "payment.card_number", CARD),
            put(alice, "account.credentials", "hunter2-correct-horse"),
            Put {
                source: "automatic",
                purpose: "improve_offerings",
                ..put(alice, "device.info", "Firefox 126 on Linux")
            },
        ],
        CONTROLLER,
        None,
        &By::Cli,
    )?;

    // The controller sees every category the purpose uses (device.info is not one of them).
    let (values, denied) = v.get_all(&read(alice, "provide_offerings"))?;
    let mut seen: Vec<(&str, &str)> = values.iter().map(|r| (r.category.as_str(), r.value.as_str())).collect();
    seen.sort_unstable();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], ("account.credentials", "hunter2-correct-horse"));
    assert_eq!(seen[1], ("contact.email", "alice@mail.example.net"));
    assert_eq!(seen[2].0, "payment.card_number");
    assert!(seen[2].1.starts_with("tok_") && seen[2].1.ends_with("(card ending 4444)"), "{}", seen[2].1);
    assert!(!seen[2].1.contains(CARD_DIGITS));
    assert!(denied.is_empty(), "{denied:?}");

    // A recipient sees what it is declared for; the rest is listed as denied, with the reason, and audited.
    let before = head(v)?;
    let (values, denied) = v.get_all(&Read { actor: "marketplace_sellers", ..read(alice, "provide_offerings") })?;
    let allowed: Vec<&str> = values.iter().map(|r| r.category.as_str()).collect();
    assert_eq!(allowed, vec!["contact.email"]);
    let mut refused: Vec<(&str, DenyReason)> = denied.iter().map(|(c, d)| (c.as_str(), d.reason)).collect();
    refused.sort_unstable_by_key(|(c, _)| *c);
    assert_eq!(
        refused,
        vec![
            ("account.credentials", DenyReason::RecipientNotAllowed),
            ("payment.card_number", DenyReason::RecipientNotAllowed)
        ]
    );
    let new = entries_after(v, before)?;
    let denials = new.iter().filter(|e| field(&e.body, "action") == Some("access_denied")).count();
    let reads: Vec<&AuditEntry> = new.iter().filter(|e| field(&e.body, "action") == Some("data_read")).collect();
    assert_eq!((new.len(), denials, reads.len()), (3, 2, 1), "{new:?}");
    assert_eq!(categories(&reads[0].body), vec!["contact.email"]);

    // Nothing stored yet: an empty answer, not an error.
    let (values, denied) = v.get_all(&read(bob, "provide_offerings"))?;
    assert!(values.is_empty() && denied.is_empty());

    // Every category denied: the denial is the error.
    denied_and_audited(v, alice, DenyReason::ConsentMissing, || v.get_all(&read(alice, "marketing")))?;

    // An erased subject: `erased`, audited.
    v.erase(alice, &By::Cli)?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.get_all(&read(alice, "provide_offerings")))?;
    let unknown = v.get_all(&read(alice, "no_such_purpose"));
    assert!(matches!(unknown, Err(VaultError::Input(_))), "{unknown:?}");

    audit_is_sound(v, &[alice, bob, "alice@mail.example.net", CARD_DIGITS, "hunter2-correct-horse", "Firefox 126"])
}

#[test]
fn get_all_audits_its_read_with_the_legal_basis() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.put(&put(alice, "contact.email", "alice@mail.example.net"), &By::Cli)?;
    let want = Expect {
        action: "data_read",
        purpose: Some("provide_offerings"),
        categories: Some(&["contact.email"][..]),
        basis: Some("contract"),
        ..Expect::default()
    };
    read_and_audited(v, alice, want, || v.get_all(&read(alice, "provide_offerings")))?;
    audit_is_sound(v, &[alice, "alice@mail.example.net"])
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

#[test]
fn a_prior_version_is_due_for_deletion_the_policys_retention_after_it_was_superseded() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    let t1 = at(datetime!(2023-11-05 08:00 UTC));
    let t2 = at(datetime!(2024-02-29 17:30 UTC));
    let t3 = at(datetime!(2024-06-01 12:00 UTC));
    f.clock.set(t1);
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    for (t, value) in [(t1, "alice.1@example.org"), (t2, "alice.2@example.org"), (t3, "alice.3@example.org")] {
        f.clock.set(t);
        v.put(&put(alice, "contact.email", value), &By::Cli)?;
    }
    let h = v.history(&read(alice, "provide_offerings"), "contact.email")?;
    let seen: Vec<_> =
        h.iter().map(|r| (r.version, r.value.as_str(), r.collected_at, r.superseded_at, r.delete_after)).collect();
    // The example keeps prior versions one year; a leap day ends on 28 February.
    assert_eq!(
        seen,
        vec![
            (3, "alice.3@example.org", t3, None, None),
            (2, "alice.2@example.org", t2, Some(t3), Some(date!(2025 - 06 - 01))),
            (1, "alice.1@example.org", t1, Some(t2), Some(date!(2025 - 02 - 28))),
        ]
    );
    let retention = v.policy().prior_versions_retention();
    for r in &h {
        assert_eq!(r.delete_after, r.superseded_at.map(|s| retention.after(s.date())));
    }
    // A purpose that may not use the category may not read its history; a missing item is `ItemNotFound`.
    denied_and_audited(v, alice, DenyReason::PurposeNotDeclaredForCategory, || {
        v.history(&read(alice, "improve_offerings"), "contact.email")
    })?;
    let missing = v.history(&read(alice, "provide_offerings"), "contact.phone");
    assert!(matches!(missing, Err(VaultError::ItemNotFound(ref c)) if c == "contact.phone"), "{missing:?}");
    audit_is_sound(v, &[alice, "alice.1@example.org", "alice.2@example.org", "alice.3@example.org"])
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[test]
fn a_card_number_is_detokenized_only_for_the_purposes_the_policy_lists() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    // In the EEA, whose notice grants restriction (used below).
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.put(&put(alice, "payment.card_number", CARD), &By::Cli)?;
    // Reads show the token and the last four digits, never the number.
    let shown = v.get(&read(alice, "provide_offerings"), "payment.card_number")?;
    assert!(!shown.value.contains(CARD_DIGITS) && !shown.value.contains(CARD), "{}", shown.value.as_str());
    let token = shown.value.get(..36).unwrap_or_default().to_string();
    assert!(token.starts_with("tok_"), "{token}");
    assert_eq!(shown.value.as_str(), format!("{token} (card ending 4444)"));

    assert_eq!(v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli)?.as_str(), CARD_DIGITS);
    assert_eq!(v.detokenize(&token, "provide_offerings", "paymenttech", None, &By::Cli)?.as_str(), CARD_DIGITS);
    // Marketing may not; fraud prevention may read the token but not detokenize it.
    denied_and_audited(v, alice, DenyReason::PurposeNotDeclaredForCategory, || {
        v.detokenize(&token, "marketing", CONTROLLER, None, &By::Cli)
    })?;
    assert!(v.get(&read(alice, "fraud_prevention"), "payment.card_number").is_ok());
    denied_and_audited(v, alice, DenyReason::DetokenizeNotAllowed, || {
        v.detokenize(&token, "fraud_prevention", CONTROLLER, None, &By::Cli)
    })?;
    // A recipient not declared for the card may not.
    denied_and_audited(v, alice, DenyReason::RecipientNotAllowed, || {
        v.detokenize(&token, "provide_offerings", "marketplace_sellers", None, &By::Cli)
    })?;
    // Restriction applies to detokenization too.
    v.set_restricted(alice, true, &By::Cli)?;
    denied_and_audited(v, alice, DenyReason::Restricted, || {
        v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli)
    })?;
    v.set_restricted(alice, false, &By::Cli)?;

    let before = head(v)?;
    for malformed in
        ["", "tok_", "tok_123", "4242424242424242", &format!("tok_{}", "z".repeat(32)), &format!("{token}0")]
    {
        let r = v.detokenize(malformed, "provide_offerings", CONTROLLER, None, &By::Cli);
        assert!(matches!(r, Err(VaultError::Input(_))), "{malformed}: {r:?}");
    }
    let unknown = format!("tok_{}", "0".repeat(32));
    let r = v.detokenize(&unknown, "provide_offerings", CONTROLLER, None, &By::Cli);
    assert!(matches!(r, Err(VaultError::TokenNotFound)), "{r:?}");
    let r = v.detokenize(&token, "no_such_purpose", CONTROLLER, None, &By::Cli);
    assert!(matches!(r, Err(VaultError::Input(_))), "{r:?}");
    assert_eq!(head(v)?, before, "bad requests change nothing");

    // After erasure the token is gone.
    v.erase(alice, &By::Cli)?;
    let r = v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli);
    assert!(matches!(r, Err(VaultError::TokenNotFound)), "{r:?}");
    audit_is_sound(v, &[alice, CARD_DIGITS])
}

// ---------------------------------------------------------------------------
// Erasure
// ---------------------------------------------------------------------------

#[test]
fn after_erasure_every_read_and_write_is_denied_as_erased_and_other_subjects_are_untouched() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, bob) = ("alice@example.org", "bob@example.org");
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(bob, "eea"), &By::Cli)?;
    v.put_batch(
        &[
            put(alice, "contact.email", "alice.1@example.org"),
            put(alice, "contact.email", "alice.2@example.org"),
            put(alice, "payment.card_number", CARD),
            put(bob, "contact.email", "bob@mail.example.net"),
        ],
        CONTROLLER,
        None,
        &By::Cli,
    )?;
    assert_eq!(v.erase(alice, &By::Cli)?, 3, "every version counts");
    assert!(stored(v, alice)?.is_empty(), "the sealed values are deleted");
    assert!(v.subject(alice)?.erased_at.is_some(), "the subject remains as a tombstone");

    denied_and_audited(v, alice, DenyReason::Erased, || v.get(&read(alice, "provide_offerings"), "contact.email"))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.get(&read(alice, "legal_obligations"), "contact.email"))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.history(&read(alice, "provide_offerings"), "contact.email"))?;
    denied_and_audited(v, alice, DenyReason::Erased, || {
        v.put(&put(alice, "contact.email", "alice.3@example.org"), &By::Cli)
    })?;
    for r in [
        v.grant_consent(alice, "marketing", None, &By::Cli),
        v.object(alice, "marketing", &By::Cli),
        v.set_restricted(alice, true, &By::Cli),
    ] {
        assert!(matches!(r, Err(VaultError::Denied(ref d)) if d.reason == DenyReason::Erased), "{r:?}");
    }
    let again = v.erase(alice, &By::Cli);
    assert!(matches!(again, Err(VaultError::Denied(ref d)) if d.reason == DenyReason::Erased), "{again:?}");
    // The same id cannot be reused to resurrect the subject.
    assert!(matches!(v.add_subject(&adult(alice, "eea"), &By::Cli), Err(VaultError::SubjectExists)));
    // A guardian who was erased cannot be linked.
    assert!(matches!(
        v.add_subject(&child("kid@example.org", date!(2012 - 01 - 01), alice), &By::Cli),
        Err(VaultError::Input(_))
    ));

    assert_eq!(v.get(&read(bob, "provide_offerings"), "contact.email")?.value.as_str(), "bob@mail.example.net");
    audit_is_sound(v, &[alice, bob, "alice.1@example.org", "alice.2@example.org", CARD_DIGITS, "bob@mail.example.net"])
}

#[test]
fn a_state_change_refused_because_the_subject_was_erased_is_audited() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let alice = "alice@example.org";
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.erase(alice, &By::Cli)?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.grant_consent(alice, "marketing", None, &By::Cli))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.withdraw_consent(alice, "marketing", None, &By::Cli))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.object(alice, "marketing", &By::Cli))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.set_restricted(alice, true, &By::Cli))?;
    denied_and_audited(v, alice, DenyReason::Erased, || v.erase(alice, &By::Cli))?;
    audit_is_sound(v, &[alice])
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

#[test]
fn a_vault_with_another_master_key_cannot_read_the_values_and_says_so() -> TestResult {
    // A SQLite file, or a PostgreSQL database, opened three times.
    let storage = TestStorage::reopenable()?;
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(at(datetime!(2024-06-01 12:00 UTC))));
    let right = MasterKey::generate()?;
    let alice = "alice@example.org";
    let token = {
        let v = vault_over(storage.open()?, &right, clock.clone())?;
        v.add_subject(&adult(alice, "eea"), &By::Cli)?;
        v.put_batch(
            &[put(alice, "contact.email", "alice@mail.example.net"), put(alice, "payment.card_number", CARD)],
            CONTROLLER,
            None,
            &By::Cli,
        )?;
        let card = v.get(&read(alice, "provide_offerings"), "payment.card_number")?;
        card.value.get(..36).unwrap_or_default().to_string()
    };

    let wrong = vault_over(storage.open()?, &MasterKey::generate()?, clock.clone())?;
    let crypto = |r: Result<String, VaultError>| match r {
        Err(e @ VaultError::Crypto(_)) => {
            assert!(!e.is_client_error());
            assert!(e.to_string().contains("master key"), "{e}");
            Ok(())
        }
        other => Err(format!("expected a crypto error, got {other:?}")),
    };
    let r = read(alice, "provide_offerings");
    crypto(wrong.get(&r, "contact.email").map(|x| x.value.to_string()))?;
    crypto(wrong.get_all(&r).map(|x| format!("{} values", x.0.len())))?;
    crypto(wrong.history(&r, "contact.email").map(|x| format!("{} versions", x.len())))?;
    crypto(wrong.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli).map(|x| x.to_string()))?;
    crypto(wrong.put(&put(alice, "contact.email", "mallory@example.org"), &By::Cli).map(|x| x.to_string()))?;
    // The audit chain does not depend on the key: it still verifies.
    audit_is_sound(&wrong, &[alice, "alice@mail.example.net", CARD_DIGITS])?;
    drop(wrong);

    // The right key still reads everything, from the stored data.
    let v = vault_over(storage.open()?, &right, clock)?;
    assert_eq!(v.get(&r, "contact.email")?.value.as_str(), "alice@mail.example.net");
    assert_eq!(v.detokenize(&token, "provide_offerings", CONTROLLER, None, &By::Cli)?.as_str(), CARD_DIGITS);
    audit_is_sound(&v, &[alice, "alice@mail.example.net", CARD_DIGITS])
}

// ---------------------------------------------------------------------------
// Bad requests
// ---------------------------------------------------------------------------

#[test]
fn consent_by_an_unlinked_guardian_or_for_an_unknown_purpose_is_refused_and_changes_nothing() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let (alice, parent, kid) = ("alice@example.org", "parent@example.org", "kid@example.org");
    v.add_subject(&adult(alice, "eea"), &By::Cli)?;
    v.add_subject(&adult(parent, "eea"), &By::Cli)?;
    v.add_subject(&child(kid, date!(2012 - 05 - 05), parent), &By::Cli)?;
    let before = head(v)?;
    let state = |s| v.subject(s).map(|s| s.state);
    let (alice_state, kid_state) = (state(alice)?, state(kid)?);

    // Alice has no guardian at all; the kid's guardian is someone else.
    for (subject, guardian) in [(alice, parent), (kid, alice), (kid, kid)] {
        for r in [
            v.grant_consent(subject, "marketing", Some(guardian), &By::Cli),
            v.withdraw_consent(subject, "marketing", Some(guardian), &By::Cli),
        ] {
            assert!(matches!(r, Err(VaultError::Input(custos_vault::InputError::GuardianNotLinked))), "{r:?}");
        }
    }
    for r in [
        v.grant_consent(alice, "no_such_purpose", None, &By::Cli),
        v.withdraw_consent(alice, "Marketing", None, &By::Cli),
        v.object(alice, "no_such_purpose", &By::Cli),
        v.grant_consent(kid, "no_such_purpose", Some(parent), &By::Cli),
        v.grant_consent(alice, "marketing", Some("not a valid id"), &By::Cli),
    ] {
        assert!(matches!(r, Err(VaultError::Input(_))), "{r:?}");
    }
    assert_eq!(head(v)?, before, "refusals are not audited as changes");
    assert_eq!((state(alice)?, state(kid)?), (alice_state, kid_state));
    audit_is_sound(v, &[alice, parent, kid])
}

#[test]
fn every_operation_on_an_unknown_subject_is_subject_not_found_and_changes_nothing() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    v.add_subject(&adult("alice@example.org", "eea"), &By::Cli)?;
    let before = head(v)?;
    let nobody = "nobody@example.org";
    let r = read(nobody, "provide_offerings");
    let results: Vec<(&str, Result<(), VaultError>)> = vec![
        ("subject", v.subject(nobody).map(drop)),
        ("put", v.put(&put(nobody, "contact.email", "nobody@mail.example.net"), &By::Cli).map(drop)),
        ("get", v.get(&r, "contact.email").map(drop)),
        ("get_all", v.get_all(&r).map(drop)),
        ("history", v.history(&r, "contact.email").map(drop)),
        ("grant_consent", v.grant_consent(nobody, "marketing", None, &By::Cli)),
        ("withdraw_consent", v.withdraw_consent(nobody, "marketing", None, &By::Cli)),
        ("object", v.object(nobody, "marketing", &By::Cli)),
        ("set_restricted", v.set_restricted(nobody, true, &By::Cli)),
        ("erase", v.erase(nobody, &By::Cli).map(drop)),
        (
            "add a child of an unknown guardian",
            v.add_subject(&child("kid@example.org", date!(2012 - 01 - 01), nobody), &By::Cli).map(drop),
        ),
    ];
    for (what, r) in results {
        let ok = if what.starts_with("add") {
            matches!(r, Err(VaultError::Input(_)))
        } else {
            matches!(r, Err(VaultError::SubjectNotFound))
        };
        assert!(ok, "{what}: {r:?}");
    }
    assert_eq!(head(v)?, before);
    audit_is_sound(v, &["alice@example.org", nobody])
}

#[test]
fn adding_a_subject_refuses_bad_input_and_changes_nothing() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    v.add_subject(&adult("alice@example.org", "eea"), &By::Cli)?;
    let before = head(v)?;
    let tomorrow = date!(2024 - 06 - 02);
    let bad: Vec<(&str, NewSubject<'_>)> = vec![
        ("empty id", adult("", "eea")),
        ("id with a space", adult("alice example", "eea")),
        ("unknown jurisdiction", adult("bob@example.org", "atlantis")),
        ("bad region", NewSubject { region: Some("Île de France"), ..adult("bob@example.org", "eea") }),
        ("born tomorrow", NewSubject { birth_date: Some(tomorrow), ..adult("bob@example.org", "eea") }),
        ("own guardian", child("bob@example.org", date!(2012 - 01 - 01), "bob@example.org")),
    ];
    for (what, s) in bad {
        let r = v.add_subject(&s, &By::Cli);
        assert!(matches!(r, Err(VaultError::Input(_))), "{what}: {r:?}");
    }
    assert!(matches!(
        v.add_subject(&adult("alice@example.org", "california"), &By::Cli),
        Err(VaultError::SubjectExists)
    ));
    assert_eq!(head(v)?, before);
    assert_eq!(v.subject("alice@example.org")?.jurisdiction, "eea");
    audit_is_sound(v, &["alice@example.org", "bob@example.org"])
}

// ---------------------------------------------------------------------------
// Property: values round-trip and never leak
// ---------------------------------------------------------------------------

/// One case of the property: `value` goes in and comes out unchanged, and
/// neither the errors of invalid requests carrying it nor the audit show it.
fn round_trip_without_leaks(v: &Vault<TestStore>, subject: &str, value: &str) -> Result<(), TestCaseError> {
    let fail = |m: String| TestCaseError::fail(m);
    let before = head(v).map_err(|e| fail(e.to_string()))?;
    let good = put(subject, "contact.name", value);
    v.put(&good, &By::Cli).map_err(|e| fail(format!("put: {e}")))?;
    let got = v.get(&read(subject, "provide_offerings"), "contact.name").map_err(|e| fail(format!("get: {e}")))?;
    if got.value.as_str() != value {
        return Err(fail(format!("put {value:?}, got {:?}", got.value.as_str())));
    }

    // Invalid requests nearby, each carrying the value somewhere.
    let invalid: Vec<Vec<Put<'_>>> = vec![
        vec![put(subject, "contact.fax", value)],
        vec![Put { source: "automatic", ..good }],
        vec![Put { purpose: "no_such_purpose", ..good }],
        vec![put("nobody@example.org", "contact.name", value)],
        vec![put(value, "contact.name", value)],
        vec![put(subject, "payment.card_number", value)],
        vec![Put { purpose: "marketing", ..good }],
        vec![put(subject, "contact.email", value), put(subject, "contact.address", "")],
    ];
    // (A random value may be a valid card number: then it is simply stored.)
    let mut errors: Vec<VaultError> =
        invalid.iter().filter_map(|b| v.put_batch(b, CONTROLLER, None, &By::Cli).err()).collect();
    errors.extend(v.get(&read(value, "provide_offerings"), "contact.name").err());
    errors.extend(v.get_all(&read(value, "provide_offerings")).err());
    errors.extend(v.grant_consent(value, "marketing", None, &By::Cli).err());
    errors.extend(v.erase(value, &By::Cli).err());

    // The value is still what it was: the failed batches wrote nothing.
    let again = v.get(&read(subject, "provide_offerings"), "contact.name").map_err(|e| fail(format!("get: {e}")))?;
    if again.value.as_str() != value || again.version != got.version {
        return Err(fail(format!("a failed batch changed the value: {:?}", again.value.as_str())));
    }
    // Short values are found in any text by chance; the check needs a distinctive one.
    if value.chars().count() >= 8 {
        for e in &errors {
            if leaks(e, value) {
                return Err(fail(format!("the error shows the value {value:?}: {e} / {e:?}")));
            }
        }
        let new = entries_after(v, before).map_err(|e| fail(e.to_string()))?;
        for e in &new {
            if e.body.contains(value) {
                return Err(fail(format!("audit entry {} shows the value {value:?}: {}", e.seq, e.body)));
            }
        }
    }
    Ok(())
}

#[test]
fn any_printable_value_round_trips_and_never_appears_in_errors_or_the_audit() -> TestResult {
    let f = fixture()?;
    let v = &f.vault;
    let subject = "prop@example.org";
    v.add_subject(&adult(subject, "eea"), &By::Cli)?;
    // Any printable Unicode, then printable ASCII (quotes, backslashes, digits, `%`...): 100 cases each.
    for pattern in ["\\PC{1,64}", "[ -~]{1,64}"] {
        let mut runner = TestRunner::new(Config { cases: 100, failure_persistence: None, ..Config::default() });
        runner
            .run(&pattern, |value| round_trip_without_leaks(v, subject, &value))
            .map_err(|e| format!("property failed for {pattern}: {e}"))?;
    }
    audit_is_sound(v, &[subject])
}

/// Issue 8, defect 10: types holding values printed them in `Debug` (a
/// panic message or a log line could carry a value); they show `<redacted>`.
#[test]
fn regression_debug_output_never_shows_a_value() -> TestResult {
    let put = Put {
        subject: "alice",
        category: "contact.email",
        value: "alice@example.org",
        source: "provided",
        purpose: "provide_offerings",
    };
    let shown = format!("{put:?}");
    assert!(!shown.contains("alice@example.org") && shown.contains("<redacted>"), "{shown}");
    let new = NewSubject {
        id: "kid",
        jurisdiction: "california",
        region: Some("us-west-2"),
        birth_date: Some(time::macros::date!(2015 - 05 - 01)),
        guardian: Some("parent"),
    };
    let shown = format!("{new:?}");
    assert!(!shown.contains("2015") && !shown.contains("parent") && !shown.contains("us-west-2"), "{shown}");
    let mut subject = custos_core::subject::Subject::new(
        custos_core::subject::SubjectId::parse("kid").expect("id"),
        "california",
        custos_core::time::Timestamp(0),
    );
    subject.birth_date = Some(time::macros::date!(2015 - 05 - 01));
    subject.region = Some("us-west-2".into());
    let shown = format!("{subject:?}");
    assert!(!shown.contains("2015") && !shown.contains("us-west-2"), "{shown}");
    let f = fixture()?;
    let v = &f.vault;
    v.add_subject(&adult("alice", "eea"), &By::Cli)?;
    v.put(&put, &By::Cli)?;
    let revealed = v.get(&read("alice", "provide_offerings"), "contact.email")?;
    let shown = format!("{revealed:?}");
    assert!(!shown.contains("alice@example.org"), "{shown}");
    let key = v.create_api_key(custos_vault::access::Role::Admin, None, &[], &By::Cli)?;
    let shown = format!("{key:?}");
    assert!(!shown.contains(key.secret.as_str()), "{shown}");
    Ok(())
}
