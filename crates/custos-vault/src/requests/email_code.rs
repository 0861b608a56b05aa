//! Verifying a requester's identity by a code sent to the request's contact
//! address, for kinds whose verification level is `email_code`.
//!
//! A code is [`CODE_DIGITS`] decimal digits drawn uniformly (rejection
//! sampling over the CSPRNG's bytes). Only its keyed hash is stored
//! (HMAC-SHA256 under a key derived from the master key with its own label,
//! over a domain tag, the request id and the code), with when it expires
//! ([`CODE_VALID_MINUTES`] by the vault's clock) and how many wrong codes the
//! request has had. A typed code is compared with the stored hash in
//! constant time (`ring::hmac::verify`). [`MAX_CODE_TRIES`] wrong codes lock
//! the verification for good: the count survives re-sends, and once locked
//! no code is sent or checked any more (the request is left for the
//! officer to deny as `unverifiable`).
//!
//! Sending records the new code's hash first (one atomic change of the
//! request, audited `verification_started`) and then hands the code to the
//! caller's [`CodeSender`]; a failed send is audited `verification_failed`
//! (`not_sent`) and returned with the failure's class. Every check is
//! audited: `request_verified` on success, else `verification_failed` with
//! `wrong_code` (counted, with the count), `code_expired`, `no_code` or
//! `locked`. Neither the code nor the address is in any audit entry, error
//! or stored column: the address stays in the request's sealed details.

use std::fmt;

use custos_core::audit::AuditAction;
use custos_core::request::{RequestStatus, Step as Move, StepError};
use custos_core::time::Timestamp;
use custos_store::{RequestRecord, Store, StoreError};
use zeroize::Zeroizing;

use super::record::{Body, Details, PendingCode, Step};
use super::steps::apply;
use super::*;

/// How many decimal digits a code has.
pub const CODE_DIGITS: u32 = 8;
/// How long a code is valid after it is sent, in minutes.
pub const CODE_VALID_MINUTES: u32 = 10;
/// How many wrong codes lock a request's verification.
pub const MAX_CODE_TRIES: u8 = 5;

/// The label of the key codes are hashed under.
const CODE_KEY: &[u8] = b"custos request email codes v1";
/// The first part of every code's hash (domain separation within the key).
const CODE_DOMAIN: &[u8] = b"custos-email-code-v1";
/// The verification level (and method) this module serves.
const EMAIL_CODE: &str = "email_code";
/// A typed code longer than this is not hashed (it cannot be a code).
const MAX_TYPED_BYTES: usize = 64;

/// The mail a [`CodeSender`] sends: the code, where to, and what the
/// person is told about who asks and for how long it is valid.
pub struct CodeMessage<'a> {
    /// The requester's address (from the request's sealed details).
    pub to: &'a str,
    /// The code, [`CODE_DIGITS`] digits.
    pub code: &'a str,
    /// The request's id, for the person's reference.
    pub request_id: &'a str,
    /// The request's kind (`access`, `erasure`, …).
    pub kind: &'a str,
    /// The controller that answers the request, named in the mail.
    pub controller: &'a ControllerView,
    /// How long the code is valid, in minutes.
    pub valid_minutes: u32,
}

impl fmt::Debug for CodeMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeMessage")
            .field("to", &"<redacted>")
            .field("code", &"<redacted>")
            .field("request_id", &self.request_id)
            .field("kind", &self.kind)
            .field("controller", &self.controller.id)
            .field("valid_minutes", &self.valid_minutes)
            .finish()
    }
}

/// Delivers a verification code (the caller's mail transport).
pub trait CodeSender: Send + Sync {
    /// Sends `message`; a failure names its class, never the address.
    fn send_code(&self, message: &CodeMessage<'_>) -> Result<(), SendError>;
}

/// Why a code could not be sent: the class of the failure, never the
/// address nor the mail server's own words (which may quote it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The mail server could not be reached, or the connection broke.
    #[error("the mail server could not be reached (connection failed)")]
    Connection,
    /// The mail server did not answer in time.
    #[error("the mail server did not answer in time")]
    Timeout,
    /// The TLS handshake failed (certificate, protocol).
    #[error("the TLS connection to the mail server failed")]
    Tls,
    /// The mail server refused for good (an SMTP 5xx: recipient, sender, credentials).
    #[error("the mail server rejected the message (SMTP {0})")]
    Rejected(u16),
    /// The mail server refused for now (an SMTP 4xx).
    #[error("the mail server deferred the message (SMTP {0}); try again later")]
    Deferred(u16),
    /// The mail server's answer was not understood.
    #[error("the mail server's answer was not understood")]
    Protocol,
    /// The mail server lacks what sending needs (STARTTLS, a login
    /// mechanism, UTF-8 addresses).
    #[error("the mail server does not offer what sending needs (STARTTLS, a login mechanism or UTF-8 addresses)")]
    Unsupported,
    /// The contact is not an address a mail can be sent to.
    #[error("the request's contact is not a valid email address")]
    InvalidAddress,
    /// The message could not be built.
    #[error("the message could not be built")]
    Message,
}

/// What one attempt (a send or a check) did to the request.
struct Attempt {
    /// The timeline step when the attempt changes the request; `None`: it
    /// is only audited, the request stays as it was.
    step: Option<&'static str>,
    action: AuditAction,
    reason: Option<&'static str>,
    count: Option<u64>,
    /// The error the caller gets once the attempt is recorded.
    refusal: Option<VaultError>,
}

impl Attempt {
    /// A failed attempt that changes nothing but the audit log.
    fn failed(reason: &'static str, refusal: VaultError) -> Attempt {
        Attempt {
            step: None,
            action: AuditAction::VerificationFailed,
            reason: Some(reason),
            count: None,
            refusal: Some(refusal),
        }
    }
}

impl<S: Store> Vault<S> {
    /// Sends a new verification code to the request's contact address:
    /// for a kind whose level is `email_code`, open and not yet verified,
    /// not locked, with a contact address. The code's hash replaces any
    /// earlier one (the wrong-code count stays) and is recorded before
    /// `sender` is called; a failed send is returned as
    /// [`VaultError::CodeNotSent`].
    pub fn send_verification_code(
        &self,
        id: &str,
        sender: &dyn CodeSender,
        by: &By,
    ) -> Result<RequestView, VaultError> {
        let key = self.keys.keyed_hash_key(CODE_KEY)?;
        let mut sent: Option<(Zeroizing<String>, String)> = None;
        let (record, details) = self.attempt_on(id, by, |body, details, now, on| {
            sent = None;
            still_unverified(body, "sent a verification code")?;
            needs_email_code(body)?;
            if body.locked {
                return Ok(Attempt::failed("locked", VaultError::VerificationLocked));
            }
            let contact = details.contact.as_deref().map(str::trim).filter(|c| c.contains('@'));
            let Some(contact) = contact else {
                return Err(VaultError::NoContact);
            };
            let code = new_code()?;
            let tries = body.code.as_ref().map_or(0, |c| c.tries);
            body.code = Some(PendingCode {
                hash: hex(&key.hash(&code_parts(id, &code))),
                expires_at: Timestamp(now.0 + i64::from(CODE_VALID_MINUTES) * 60 * 1_000_000),
                tries,
            });
            if body.status == RequestStatus::Received {
                apply(body, Move::AwaitVerification, on)?;
            }
            sent = Some((code, contact.to_string()));
            Ok(Attempt {
                step: Some("verification_code_sent"),
                action: AuditAction::VerificationStarted,
                reason: Some(EMAIL_CODE),
                count: None,
                refusal: None,
            })
        })?;
        let (code, to) = sent.ok_or_else(|| StoreError::Backend("the code was not recorded".into()))?;
        let controller = self.controller_of(&record.jurisdiction);
        let message = CodeMessage {
            to: &to,
            code: &code,
            request_id: &record.id,
            kind: &record.kind,
            controller: &controller,
            valid_minutes: CODE_VALID_MINUTES,
        };
        if let Err(e) = sender.send_code(&message) {
            let mut ev = self.request_event(self.clock.now(), AuditAction::VerificationFailed, &record, by);
            ev.reason = Some("not_sent".into());
            self.store.append_audit(&[ev])?;
            return Err(VaultError::CodeNotSent(e));
        }
        self.view(&record, Some(&details))
    }

    /// Checks a code the requester typed. The right one, in time, verifies
    /// the request (`verified_by: email_code`); a wrong one is counted and
    /// returned as [`VaultError::WrongCode`], the last allowed as
    /// [`VaultError::VerificationLocked`]; an expired one is
    /// [`VaultError::CodeExpired`] (not counted). Each is audited.
    pub fn check_verification_code(&self, id: &str, code: &str, by: &By) -> Result<RequestView, VaultError> {
        let key = self.keys.keyed_hash_key(CODE_KEY)?;
        // People type codes with spaces or dashes; anything far longer is no code.
        let typed: Zeroizing<String> = Zeroizing::new(if code.len() > MAX_TYPED_BYTES {
            String::new()
        } else {
            code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
        });
        let (record, details) = self.attempt_on(id, by, |body, _, now, on| {
            still_unverified(body, "verified by an email code")?;
            needs_email_code(body)?;
            if body.locked {
                return Ok(Attempt::failed("locked", VaultError::VerificationLocked));
            }
            let Some(pending) = &body.code else {
                return Ok(Attempt::failed("no_code", VaultError::NoCode));
            };
            if now >= pending.expires_at {
                return Ok(Attempt::failed("code_expired", VaultError::CodeExpired));
            }
            let right = !typed.is_empty()
                && unhex32(&pending.hash).is_some_and(|tag| key.verify(&code_parts(id, &typed), &tag));
            if right {
                apply(body, Move::Verify, on)?;
                body.verified_by = Some(EMAIL_CODE.to_string());
                body.code = None;
                return Ok(Attempt {
                    step: Some("verified"),
                    action: AuditAction::RequestVerified,
                    reason: Some(EMAIL_CODE),
                    count: None,
                    refusal: None,
                });
            }
            let tries = pending.tries.saturating_add(1);
            let (step, refusal) = if tries >= MAX_CODE_TRIES {
                // The hash is of no use any more; the lock is for good.
                body.code = None;
                body.locked = true;
                ("verification_locked", VaultError::VerificationLocked)
            } else {
                if let Some(p) = body.code.as_mut() {
                    p.tries = tries;
                }
                ("verification_failed", VaultError::WrongCode { tries_left: MAX_CODE_TRIES - tries })
            };
            Ok(Attempt {
                step: Some(step),
                action: AuditAction::VerificationFailed,
                reason: Some("wrong_code"),
                count: Some(u64::from(tries)),
                refusal: Some(refusal),
            })
        })?;
        self.view(&record, Some(&details))
    }

    /// Records one attempt on a request atomically, under the store's lock:
    /// `attempt` looks at (and may change) the workflow as of now; what it
    /// returns is audited, and appended to the timeline when it names a
    /// step. An error from `attempt` writes nothing; a refusal it returns is
    /// written first, then returned.
    fn attempt_on(
        &self,
        id: &str,
        by: &By,
        mut attempt: impl FnMut(&mut Body, &Details, Timestamp, time::Date) -> Result<Attempt, VaultError>,
    ) -> Result<(RequestRecord, Details), VaultError> {
        // Checked before the store's lock: an id of the wrong form is never
        // looked up; a missing one is `RequestNotFound` from the locked read.
        checked_request_id(id)?;
        let now = self.clock.now();
        let mut outcome: Option<Result<(Details, Option<VaultError>), VaultError>> = None;
        let record = self.with_held_keys(|held| {
            self.store.update_request(
                id,
                &mut |stored| match self.apply_attempt(stored, now, by, &mut attempt) {
                    Ok((record, details, events, refusal)) => {
                        outcome = Some(Ok((details, refusal)));
                        Some((record, events))
                    }
                    Err(e) => {
                        outcome = Some(Err(e));
                        None
                    }
                },
                held,
            )
        })?;
        match outcome {
            Some(Ok((details, None))) => Ok((record, details)),
            Some(Ok((_, Some(refusal)))) => Err(refusal),
            Some(Err(e)) => Err(e),
            None => Err(StoreError::Backend("the request was not changed".into()).into()),
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply_attempt(
        &self,
        stored: &RequestRecord,
        now: Timestamp,
        by: &By,
        attempt: &mut impl FnMut(&mut Body, &Details, Timestamp, time::Date) -> Result<Attempt, VaultError>,
    ) -> Result<(RequestRecord, Details, Vec<AuditEvent>, Option<VaultError>), VaultError> {
        let mut body = Body::decode(stored)?;
        let details = Details::open(&self.keys, stored)?;
        let on = now.date().max(body.latest);
        let done = attempt(&mut body, &details, now, on)?;
        let mut record = stored.clone();
        if let Some(step) = done.step {
            body.timeline.push(Step { at: now, step: step.into(), status: body.status, by: by.audit_label() });
            let rule = self.rule_of(stored).map(|(_, r)| r);
            self.refresh(&mut record, &mut body, rule, now);
            record.body = body.encode();
        }
        let mut ev = self.request_event(now, done.action, &record, by);
        ev.reason = done.reason.map(str::to_string);
        ev.count = done.count;
        Ok((record, details, vec![ev], done.refusal))
    }
}

/// Refuses a request whose kind's level is not `email_code`: a code does
/// not meet a stronger level (a kind needing none is verified already).
fn needs_email_code(body: &Body) -> Result<(), VaultError> {
    if body.verification == EMAIL_CODE {
        Ok(())
    } else {
        Err(VaultError::VerificationTooWeak { method: EMAIL_CODE, required: body.verification.clone() })
    }
}

/// Refuses a request that is verified already or closed.
fn still_unverified(body: &Body, step: &'static str) -> Result<(), VaultError> {
    match body.status {
        RequestStatus::Received | RequestStatus::IdentityUnverified => Ok(()),
        from => Err(VaultError::RequestStep(StepError::NotFrom { from, step })),
    }
}

/// The parts a code's hash is computed over: the domain tag, the request, the code.
fn code_parts<'a>(request: &'a str, code: &'a str) -> [&'a [u8]; 3] {
    [CODE_DOMAIN, request.as_bytes(), code.as_bytes()]
}

/// A new code: [`CODE_DIGITS`] digits, uniform. Four random bytes are drawn
/// until they fall below the largest multiple of 10^digits that fits in a
/// `u32` (about 2 % are redrawn), so no code is likelier than another.
fn new_code() -> Result<Zeroizing<String>, VaultError> {
    const RANGE: u32 = 10u32.pow(CODE_DIGITS);
    const LIMIT: u32 = (u32::MAX / RANGE) * RANGE;
    let mut bytes = Zeroizing::new([0u8; 4]);
    // 64 draws all rejected happen with probability 0.022^64: only a broken generator.
    for _ in 0..64 {
        custos_crypto::random_bytes(&mut bytes[..])?;
        let n = Zeroizing::new(u32::from_be_bytes(*bytes));
        if *n < LIMIT {
            return Ok(Zeroizing::new(format!("{:0width$}", *n % RANGE, width = CODE_DIGITS as usize)));
        }
    }
    Err(custos_crypto::CryptoError::Random.into())
}

/// 64 hexadecimal digits as 32 bytes.
fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_eight_digits_and_every_digit_occurs_in_every_place() {
        let mut seen = [[false; 10]; CODE_DIGITS as usize];
        for _ in 0..2_000 {
            let code = new_code().expect("a code");
            assert_eq!(code.len(), CODE_DIGITS as usize, "{}", code.as_str());
            for (place, c) in code.bytes().enumerate() {
                assert!(c.is_ascii_digit());
                seen[place][usize::from(c - b'0')] = true;
            }
        }
        assert!(seen.iter().all(|p| p.iter().all(|&d| d)), "{seen:?}");
    }

    #[test]
    fn a_hash_decodes_from_its_hex_and_nothing_else_does() {
        let tag: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex32(&hex(&tag)), Some(tag));
        assert_eq!(unhex32(&hex(&tag[..31])), None);
        assert_eq!(unhex32(&"zz".repeat(32)), None);
    }
}
