//! Verification by an email code through the vault, on its injected clock:
//! codes are eight digits, sent only for an open, unverified `email_code`
//! request with a contact address, valid ten minutes (9:59 verifies, 10:01
//! is `code_expired`), locked after five wrong codes whatever the re-sends,
//! every send and attempt audited, and neither the code nor the address
//! stored or audited. The mail transport is the caller's: here an outbox
//! that records what the vault hands it (the SMTP path is the CLI test's).
//! On PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::{Arc, Mutex, PoisonError};

use custos_core::policy::Policy;
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::{FixedClock, Timestamp, parse_date};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{
    By, CODE_DIGITS, CODE_VALID_MINUTES, CodeMessage, CodeSender, MAX_CODE_TRIES, NewSubject, RequestView, SendError,
    Submission, Vault, VaultError, VerifyMethod,
};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const CONTACT: &str = "code.requester@example.org";
const MINUTE: i64 = 60 * 1_000_000;
const SECOND: i64 = 1_000_000;

/// One mail as the vault handed it over.
#[derive(Debug, Clone)]
struct Mail {
    to: String,
    code: String,
    request: String,
    kind: String,
    controller: String,
    valid_minutes: u32,
}

/// Records every code the vault sends.
#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

impl Outbox {
    fn mails(&self) -> Vec<Mail> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn last_code(&self) -> TestResult<String> {
        Ok(self.mails().last().ok_or("no mail was sent")?.code.clone())
    }
}

impl CodeSender for Outbox {
    fn send_code(&self, m: &CodeMessage<'_>) -> Result<(), SendError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(Mail {
            to: m.to.to_string(),
            code: m.code.to_string(),
            request: m.request_id.to_string(),
            kind: m.kind.to_string(),
            controller: m.controller.id.clone(),
            valid_minutes: m.valid_minutes,
        });
        Ok(())
    }
}

/// A mail server that refuses everything with `0`.
struct Refusing(SendError);

impl CodeSender for Refusing {
    fn send_code(&self, _: &CodeMessage<'_>) -> Result<(), SendError> {
        Err(self.0)
    }
}

struct Fixture {
    storage: TestStorage,
    v: Vault<TestStore>,
    clock: Arc<FixedClock>,
    outbox: Outbox,
}

fn fixture(storage: TestStorage) -> TestResult<Fixture> {
    let clock =
        Arc::new(FixedClock::new(Timestamp(Timestamp::start_of(parse_date("2026-06-01")?).0 + 9 * 60 * MINUTE)));
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    let v = Vault::new(policy, storage.open()?, Keyring::new(&MasterKey::generate()?)?, clock.clone());
    for (id, jurisdiction) in [("eu-1", "eea"), ("eu-2", "eea"), ("eu-3", "eea"), ("cal-1", "california")] {
        v.add_subject(&NewSubject { id, jurisdiction, region: None, birth_date: None, guardian: None }, &By::Cli)?;
    }
    Ok(Fixture { storage, v, clock, outbox: Outbox::default() })
}

impl Fixture {
    fn submit(&self, subject: &str, kind: &str, contact: Option<&str>) -> TestResult<RequestView> {
        Ok(self.v.submit_request(&Submission { subject, kind, contact, ..Submission::default() }, &By::Cli)?)
    }

    fn send(&self, id: &str) -> Result<RequestView, VaultError> {
        self.v.send_verification_code(id, &self.outbox, &By::Cli)
    }

    fn check(&self, id: &str, code: &str) -> Result<RequestView, VaultError> {
        self.v.check_verification_code(id, code, &By::Cli)
    }

    /// The `(action, reason, count)` of every audit entry about request `id`, oldest first.
    fn audit_of(&self, id: &str) -> TestResult<Vec<Entry>> {
        let mut out = Vec::new();
        for e in self.v.store().audit_entries(0, 10_000)? {
            let body: serde_json::Value = serde_json::from_str(&e.body)?;
            if body["request"] == id {
                out.push((
                    body["action"].as_str().unwrap_or_default().to_string(),
                    body["reason"].as_str().map(str::to_string),
                    body["count"].as_u64(),
                ));
            }
        }
        Ok(out)
    }

    fn audit_text(&self) -> TestResult<String> {
        let entries = self.v.store().audit_entries(0, 10_000)?;
        Ok(entries.iter().map(|e| e.body.as_str()).collect::<Vec<_>>().join("\n"))
    }

    fn chain_verifies(&self) -> TestResult {
        custos_vault::verify_chain(self.v.store())?.map_err(|b| format!("the audit chain breaks: {b}"))?;
        Ok(())
    }
}

/// An audit entry's action, reason and count.
type Entry = (String, Option<String>, Option<u64>);

fn entry(action: &str, reason: Option<&str>, count: Option<u64>) -> Entry {
    (action.to_string(), reason.map(str::to_string), count)
}

/// A code that is not `code`: its last digit changed.
fn other_than(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let last = if last == "0" { "1" } else { "0" };
    format!("{head}{last}")
}

/// Whether `code` occurs in `text` as a run of digits of its own (not inside a longer number).
fn has_code(text: &[u8], code: &str) -> bool {
    let code = code.as_bytes();
    text.windows(code.len()).enumerate().any(|(i, w)| {
        w == code
            && (i == 0 || !text[i - 1].is_ascii_digit())
            && text.get(i + code.len()).is_none_or(|b| !b.is_ascii_digit())
    })
}

#[test]
fn a_code_of_eight_digits_goes_to_the_contact_address_and_verifies_the_request() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    let r = f.submit("eu-1", "access", Some(CONTACT))?;
    assert_eq!((r.status, r.verification.as_str()), (RequestStatus::Received, "email_code"));
    let sent = f.send(&r.id)?;
    assert_eq!(sent.status, RequestStatus::IdentityUnverified, "waiting for the code");
    assert!(!sent.verification_locked);
    let mails = f.outbox.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!((m.to.as_str(), m.request.as_str(), m.kind.as_str()), (CONTACT, r.id.as_str(), "access"));
    assert_eq!((m.controller.as_str(), m.valid_minutes), ("aws_emea", CODE_VALID_MINUTES));
    assert_eq!(m.code.len(), CODE_DIGITS as usize);
    assert!(m.code.bytes().all(|b| b.is_ascii_digit()), "{}", m.code);
    // Typed as people type it: with a space in the middle.
    let typed = format!("{} {}", &m.code[..4], &m.code[4..]);
    let verified = f.check(&r.id, &typed)?;
    assert_eq!(verified.status, RequestStatus::Verified);
    assert_eq!(verified.verified_by.as_deref(), Some("email_code"));
    let steps: Vec<&str> = verified.timeline.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["received", "verification_code_sent", "verified"]);
    assert_eq!(
        f.audit_of(&r.id)?,
        [
            entry("request_received", None, None),
            entry("verification_started", Some("email_code"), None),
            entry("request_verified", Some("email_code"), None),
        ]
    );
    // A verified request takes no more codes.
    assert!(matches!(f.send(&r.id), Err(VaultError::RequestStep(_))));
    assert!(matches!(f.check(&r.id, &m.code), Err(VaultError::RequestStep(_))));
    assert_eq!(f.outbox.mails().len(), 1);
    f.chain_verifies()
}

#[test]
fn a_code_is_valid_for_ten_minutes_by_the_vaults_clock() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    let in_time = f.submit("eu-1", "access", Some(CONTACT))?;
    f.send(&in_time.id)?;
    f.clock.advance_micros(9 * MINUTE + 59 * SECOND);
    assert_eq!(f.check(&in_time.id, &f.outbox.last_code()?)?.status, RequestStatus::Verified, "at 9:59");

    let late = f.submit("eu-2", "access", Some(CONTACT))?;
    f.send(&late.id)?;
    let code = f.outbox.last_code()?;
    f.clock.advance_micros(10 * MINUTE + SECOND);
    assert!(matches!(f.check(&late.id, &code), Err(VaultError::CodeExpired)), "at 10:01");
    assert!(matches!(f.check(&late.id, &other_than(&code)), Err(VaultError::CodeExpired)));
    let view = f.v.request(&late.id)?;
    assert_eq!(view.status, RequestStatus::IdentityUnverified);
    assert_eq!(view.timeline.len(), 2, "an expired code changes nothing but the audit log");
    // Expired attempts are not wrong codes: a new code has all its tries.
    f.send(&late.id)?;
    let fresh = f.outbox.last_code()?;
    let wrong = f.check(&late.id, &other_than(&fresh));
    assert!(
        matches!(wrong, Err(VaultError::WrongCode { tries_left }) if tries_left == MAX_CODE_TRIES - 1),
        "{wrong:?}"
    );
    assert_eq!(f.check(&late.id, &fresh)?.status, RequestStatus::Verified);
    assert_eq!(
        f.audit_of(&late.id)?,
        [
            entry("request_received", None, None),
            entry("verification_started", Some("email_code"), None),
            entry("verification_failed", Some("code_expired"), None),
            entry("verification_failed", Some("code_expired"), None),
            entry("verification_started", Some("email_code"), None),
            entry("verification_failed", Some("wrong_code"), Some(1)),
            entry("request_verified", Some("email_code"), None),
        ]
    );
    f.chain_verifies()
}

#[test]
fn five_wrong_codes_lock_the_verification_whatever_the_re_sends() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    let r = f.submit("eu-1", "access", Some(CONTACT))?;
    f.send(&r.id)?;
    let first = f.outbox.last_code()?;
    for left in [4, 3] {
        let e = f.check(&r.id, &other_than(&first));
        assert!(matches!(e, Err(VaultError::WrongCode { tries_left }) if tries_left == left), "{e:?}");
    }
    // A re-send replaces the code and keeps the count.
    f.send(&r.id)?;
    let second = f.outbox.last_code()?;
    assert_eq!(f.outbox.mails().len(), 2);
    let old = if first == second { other_than(&second) } else { first.clone() };
    let e = f.check(&r.id, &old);
    assert!(matches!(e, Err(VaultError::WrongCode { tries_left: 2 })), "the first code is void: {e:?}");
    let e = f.check(&r.id, &other_than(&second));
    assert!(matches!(e, Err(VaultError::WrongCode { tries_left: 1 })), "{e:?}");
    let e = f.check(&r.id, &other_than(&second));
    assert!(matches!(e, Err(VaultError::VerificationLocked)), "the fifth wrong code locks: {e:?}");
    // Locked: the right code, a re-send and a new code are refused.
    assert!(matches!(f.check(&r.id, &second), Err(VaultError::VerificationLocked)));
    assert!(matches!(f.send(&r.id), Err(VaultError::VerificationLocked)));
    assert_eq!(f.outbox.mails().len(), 2, "nothing is sent once locked");
    let view = f.v.request(&r.id)?;
    assert!(view.verification_locked);
    assert_eq!((view.status, view.verified_by.as_deref()), (RequestStatus::IdentityUnverified, None));
    assert_eq!(
        f.audit_of(&r.id)?,
        [
            entry("request_received", None, None),
            entry("verification_started", Some("email_code"), None),
            entry("verification_failed", Some("wrong_code"), Some(1)),
            entry("verification_failed", Some("wrong_code"), Some(2)),
            entry("verification_started", Some("email_code"), None),
            entry("verification_failed", Some("wrong_code"), Some(3)),
            entry("verification_failed", Some("wrong_code"), Some(4)),
            entry("verification_failed", Some("wrong_code"), Some(5)),
            entry("verification_failed", Some("locked"), None),
            entry("verification_failed", Some("locked"), None),
        ]
    );
    let message = VaultError::VerificationLocked.to_string();
    assert!(message.contains("unverifiable"), "the officer is told what is left: {message}");
    let denied = f.v.deny_request(&r.id, DenialCode::Unverifiable, "We could not verify your identity.", &By::Cli)?;
    assert_eq!(denied.status, RequestStatus::Denied);
    f.chain_verifies()
}

#[test]
fn a_wrong_code_never_verifies() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    let r = f.submit("eu-1", "access", Some(CONTACT))?;
    f.send(&r.id)?;
    let code = f.outbox.last_code()?;
    let wrong = [other_than(&code), code[..7].to_string(), format!("{code}0"), String::new()];
    for (n, typed) in wrong.iter().enumerate() {
        let e = f.check(&r.id, typed);
        let left = MAX_CODE_TRIES - 1 - n as u8;
        assert!(matches!(e, Err(VaultError::WrongCode { tries_left }) if tries_left == left), "{n}: {e:?}");
        assert_eq!(f.v.request(&r.id)?.status, RequestStatus::IdentityUnverified);
    }
    let e = f.check(&r.id, &"9".repeat(100));
    assert!(matches!(e, Err(VaultError::VerificationLocked)), "a long input counts too: {e:?}");
    assert!(matches!(f.check(&r.id, &code), Err(VaultError::VerificationLocked)));
    assert_eq!(f.v.request(&r.id)?.verified_by, None);
    f.chain_verifies()
}

#[test]
fn a_code_is_sent_only_for_an_open_unverified_email_code_request_with_a_contact() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    // California's access requests need two data points: a code does not meet that level.
    let cal = f.submit("cal-1", "access", Some(CONTACT))?;
    assert_eq!(cal.verification, "two_data_points");
    assert!(matches!(f.send(&cal.id), Err(VaultError::VerificationTooWeak { .. })));
    assert!(matches!(f.check(&cal.id, "12345678"), Err(VaultError::VerificationTooWeak { .. })));
    // A kind needing no verification is verified at once.
    let opt_out = f.submit("cal-1", "opt_out", Some(CONTACT))?;
    assert_eq!(opt_out.status, RequestStatus::Verified);
    assert!(matches!(f.send(&opt_out.id), Err(VaultError::RequestStep(_))));
    let no_contact = f.submit("eu-1", "access", None)?;
    let e = f.send(&no_contact.id);
    assert!(matches!(e, Err(VaultError::NoContact)), "{e:?}");
    let postal = f.submit("eu-2", "access", Some("12 Example Street, Luxembourg"));
    assert!(
        postal.is_err_and(|e| e.to_string().contains("not an email address")),
        "a contact that is no email address is refused when submitted"
    );
    assert!(matches!(f.check(&no_contact.id, "12345678"), Err(VaultError::NoCode)));
    let verified = f.submit("eu-3", "erasure", Some(CONTACT))?;
    f.v.verify_request(&verified.id, VerifyMethod::Session, &By::Cli)?;
    assert!(matches!(f.send(&verified.id), Err(VaultError::RequestStep(_))));
    let withdrawn = f.submit("eu-3", "access", Some(CONTACT))?;
    f.v.withdraw_request(&withdrawn.id, &By::Cli)?;
    assert!(matches!(f.send(&withdrawn.id), Err(VaultError::RequestStep(_))));
    assert!(matches!(f.send("rq_0123456789abcdef0123456789abcdef"), Err(VaultError::RequestNotFound)));
    assert!(f.outbox.mails().is_empty(), "no refused send reached the mail server");
    // A refused send changes nothing; a check without a code is audited.
    assert_eq!(f.v.request(&no_contact.id)?.status, RequestStatus::Received);
    let audited: Vec<_> = f.audit_of(&no_contact.id)?.into_iter().map(|(a, r, _)| (a, r)).collect();
    assert_eq!(
        audited,
        [("request_received".to_string(), None), ("verification_failed".to_string(), Some("no_code".to_string()))]
    );
    f.chain_verifies()
}

#[test]
fn a_failed_send_names_its_class_not_the_address_and_is_audited() -> TestResult {
    let f = fixture(TestStorage::fresh()?)?;
    let r = f.submit("eu-1", "access", Some(CONTACT))?;
    let e = f.v.send_verification_code(&r.id, &Refusing(SendError::Rejected(550)), &By::Cli);
    let Err(e @ VaultError::CodeNotSent(SendError::Rejected(550))) = e else {
        return Err(format!("expected a rejected send, got {e:?}").into());
    };
    assert!(e.to_string().contains("550") && !e.to_string().contains(CONTACT), "{e}");
    assert!(!e.is_client_error(), "a mail server's failure is not the caller's");
    // Sending again works and the first (unsent) code is void.
    f.send(&r.id)?;
    assert_eq!(f.check(&r.id, &f.outbox.last_code()?)?.status, RequestStatus::Verified);
    let actions: Vec<_> =
        f.audit_of(&r.id)?.into_iter().map(|(a, r, _)| format!("{a}:{}", r.unwrap_or_default())).collect();
    assert_eq!(
        actions,
        [
            "request_received:",
            "verification_started:email_code",
            "verification_failed:not_sent",
            "verification_started:email_code",
            "request_verified:email_code",
        ]
    );
    f.chain_verifies()
}

#[test]
fn neither_the_code_nor_the_address_is_stored_audited_or_in_an_error() -> TestResult {
    let f = fixture(TestStorage::reopenable()?)?;
    let r = f.submit("eu-1", "access", Some(CONTACT))?;
    let mut errors = Vec::new();
    f.send(&r.id)?;
    let first = f.outbox.last_code()?;
    errors.push(f.check(&r.id, &other_than(&first)).err().ok_or("a wrong code is refused")?.to_string());
    f.send(&r.id)?;
    let second = f.outbox.last_code()?;
    f.clock.advance_micros(11 * MINUTE);
    errors.push(f.check(&r.id, &second).err().ok_or("an expired code is refused")?.to_string());
    f.send(&r.id)?;
    let third = f.outbox.last_code()?;
    errors.push(format!("{:?}", f.check(&r.id, &other_than(&third)).err().ok_or("a wrong code is refused")?));
    let verified = f.check(&r.id, &third)?;
    assert_eq!(verified.status, RequestStatus::Verified);
    let codes = [first, second, third];
    let dump = f.storage.dump()?;
    let audit = f.audit_text()?;
    let view = serde_json::to_string(&verified)?;
    for code in &codes {
        assert!(!has_code(&dump, code), "a code is stored in clear");
        assert!(!has_code(audit.as_bytes(), code), "a code is in the audit log");
        assert!(!has_code(view.as_bytes(), code), "a code is in the view");
        assert!(errors.iter().all(|e| !has_code(e.as_bytes(), code)), "a code is in an error: {errors:?}");
    }
    assert!(!dump.windows(CONTACT.len()).any(|w| w == CONTACT.as_bytes()), "the address is stored in clear");
    for text in [&audit, &view] {
        assert!(!text.contains(CONTACT) && !text.contains("eu-1"), "the address or subject leaks: {text}");
    }
    assert!(errors.iter().all(|e| !e.contains(CONTACT)), "{errors:?}");
    f.chain_verifies()
}
