//! Data subjects and what they have said: consents, objections, restriction.
//!
//! [`SubjectState`] is keyed by policy ids as strings, so it survives a change
//! of policy; the decision engine resolves them against the policy in force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::time::Timestamp;

/// A subject's identifier as the company knows them (customer id, account id).
///
/// Parsed at the boundary: 1 to 128 printable ASCII characters without spaces,
/// so that an id can never smuggle control characters into logs or files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectId(String);

impl SubjectId {
    /// Validates a subject id.
    pub fn parse(s: &str) -> Result<SubjectId, SubjectIdError> {
        if s.is_empty() || s.len() > 128 {
            return Err(SubjectIdError::Length);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SubjectIdError::Characters);
        }
        Ok(SubjectId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Warnings about an id that is itself personal data: one that looks like
    /// an email address or a phone number. Such an id is accepted (it may be
    /// what the company keys people by), but it names the person wherever it
    /// goes (URLs, logs of the caller, the subject row): prefer an opaque id.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if looks_like_email(&self.0) {
            out.push(
                "the subject id looks like an email address, which is personal data; prefer an opaque id (it is kept only as a pseudonym after erasure)",
            );
        }
        if looks_like_card_number(&self.0) {
            out.push(
                "the subject id looks like a payment card number, which is personal data; prefer an opaque id (it is kept only as a pseudonym after erasure)",
            );
        } else if looks_like_phone(&self.0) {
            out.push(
                "the subject id looks like a phone number, which is personal data; prefer an opaque id (it is kept only as a pseudonym after erasure)",
            );
        }
        out
    }
}

/// `local@domain.tld`: something before one `@`, and a dot inside what follows.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A phone number as people write one: an optional leading `+`, then 7 to 15
/// digits (E.164 allows at most 15), optionally separated by `-`, `.`, `(`, `)`.
fn looks_like_phone(s: &str) -> bool {
    let b = s.as_bytes();
    let iso_date = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    if iso_date {
        return false;
    }
    let rest = s.strip_prefix('+').unwrap_or(s);
    let digits = rest.bytes().filter(u8::is_ascii_digit).count();
    (7..=15).contains(&digits) && rest.bytes().all(|b| b.is_ascii_digit() || b"-.()".contains(&b))
}

/// A payment card number: 13 to 19 digits, not starting with 0, passing the Luhn check.
fn looks_like_card_number(s: &str) -> bool {
    let b = s.as_bytes();
    if !(13..=19).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
        return false;
    }
    let sum: u32 = b
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Why a text is not a subject id. Never carries the text: it may be a personal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubjectIdError {
    /// Empty or longer than 128 characters.
    #[error("a subject id must be 1 to 128 characters long")]
    Length,
    /// A space, a control character or a non-ASCII character.
    #[error("a subject id may contain only printable ASCII characters without spaces")]
    Characters,
}

impl TryFrom<String> for SubjectId {
    type Error = SubjectIdError;
    fn try_from(s: String) -> Result<Self, SubjectIdError> {
        SubjectId::parse(&s)
    }
}

impl From<SubjectId> for String {
    fn from(s: SubjectId) -> String {
        s.0
    }
}

impl std::fmt::Display for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A data subject as the vault decides about them.
///
/// `region`, `birth_date` and `guardian` are personal data: the store keeps
/// them only sealed under the subject's data key (one column), and a subject
/// loaded from the store has them empty until the vault opens them. After
/// erasure only a tombstone under a pseudonym of the id remains.
#[derive(Clone, PartialEq, Eq)]
pub struct Subject {
    /// Identifier.
    pub id: SubjectId,
    /// Jurisdiction id from the policy.
    pub jurisdiction: String,
    /// Home region (where the data is meant to live), e.g. `us-east-1` or `EU`.
    pub region: Option<String>,
    /// Birth date, when known; drives the guardian rule.
    pub birth_date: Option<Date>,
    /// Linked parent or guardian (another subject).
    pub guardian: Option<SubjectId>,
    /// When the subject was created.
    pub created_at: Timestamp,
    /// When the subject was erased (crypto-shredded), if so.
    pub erased_at: Option<Timestamp>,
    /// Consents, objections and restriction.
    pub state: SubjectState,
}

/// Shows the id, jurisdiction, times and choices; the metadata only as
/// present or absent (it is personal data).
impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("id", &self.id)
            .field("jurisdiction", &self.jurisdiction)
            .field("region", &self.region.as_ref().map(|_| "<redacted>"))
            .field("birth_date", &self.birth_date.as_ref().map(|_| "<redacted>"))
            .field("guardian", &self.guardian.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("erased_at", &self.erased_at)
            .field("state", &self.state)
            .finish()
    }
}

impl Subject {
    /// A subject known only by id, jurisdiction and creation time: no region,
    /// birth date or guardian, not erased, and no choices recorded yet.
    pub fn new(id: SubjectId, jurisdiction: impl Into<String>, created_at: Timestamp) -> Subject {
        Subject {
            id,
            jurisdiction: jurisdiction.into(),
            region: None,
            birth_date: None,
            guardian: None,
            created_at,
            erased_at: None,
            state: SubjectState::default(),
        }
    }

    /// Whether any of the sealed metadata (region, birth date, guardian) is set.
    pub fn has_metadata(&self) -> bool {
        self.region.is_some() || self.birth_date.is_some() || self.guardian.is_some()
    }
}

/// What a subject has said about processing of their data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    /// The latest consent event per purpose id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consents: BTreeMap<String, ConsentRecord>,
    /// Objections per purpose id, with when they were made.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objections: BTreeMap<String, Timestamp>,
    /// Processing restricted since (GDPR Art. 18), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_since: Option<Timestamp>,
    /// Opted out of sale and sharing, and of targeted advertising, since
    /// (CCPA §1798.120), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opted_out_since: Option<Timestamp>,
    /// The use of sensitive personal information limited since (CCPA
    /// §1798.121), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_limited_since: Option<Timestamp>,
}

/// The latest consent event for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Granted (live) or withdrawn.
    pub status: ConsentStatus,
    /// When.
    pub at: Timestamp,
    /// Given by the subject's linked guardian on their behalf. Only the fact
    /// is kept: the state is stored in clear, and the guardian's id is
    /// personal data (it lives sealed in the subject's metadata; the audit
    /// entry names the guardian by pseudonym). Entries written before held the
    /// guardian's id here: they read as `true` (and migrations rewrote them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not", deserialize_with = "guardian_flag")]
    pub by_guardian: bool,
}

/// `by_guardian` as stored: a flag, or (before) the guardian's id, meaning yes.
fn guardian_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Flag(bool),
        LegacyId(#[allow(dead_code)] String),
        Null(()),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Flag(b) => b,
        Stored::LegacyId(_) => true,
        Stored::Null(()) => false,
    })
}

/// Whether a consent is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Consent given and not withdrawn.
    Granted,
    /// Consent withdrawn (not retroactive: stops further processing).
    Withdrawn,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warns(id: &str) -> usize {
        SubjectId::parse(id).map(|s| s.warnings().len()).unwrap_or(99)
    }

    #[test]
    fn ids_that_look_like_email_addresses_or_phone_numbers_warn() {
        assert_eq!(warns("alice@example.org"), 1);
        assert_eq!(warns("a.b+tag@mail.example.co.uk"), 1);
        assert_eq!(warns("+14155550123"), 1);
        assert_eq!(warns("+1-415-555-0123"), 1);
        assert_eq!(warns("(415)555.0123"), 1);
        assert_eq!(warns("0301234567"), 1);
        assert_eq!(warns("4111111111111111"), 1);
        assert!(SubjectId::parse("4111111111111111").unwrap().warnings()[0].contains("payment card"));
        assert_eq!(warns("4111111111111112"), 0);
    }

    #[test]
    fn an_invalid_id_gets_the_reason_kind_and_no_text() {
        assert_eq!(SubjectId::parse(""), Err(SubjectIdError::Length));
        assert_eq!(SubjectId::parse(&"a".repeat(129)), Err(SubjectIdError::Length));
        assert_eq!(SubjectId::parse("alice smith"), Err(SubjectIdError::Characters));
        assert!(!SubjectId::parse("alice smith").unwrap_err().to_string().contains("alice"));
    }

    #[test]
    fn opaque_ids_do_not_warn() {
        for id in [
            "alice",
            "cus_8f3a2b",
            "user-42",
            "123456",
            "order@",
            "@example.org",
            "a@b",
            "2024-01-01",
            "550e8400-e29b-41d4",
        ] {
            assert_eq!(warns(id), 0, "{id}");
        }
    }
}
