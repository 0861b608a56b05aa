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
    pub fn parse(s: &str) -> Result<SubjectId, String> {
        if s.is_empty() || s.len() > 128 {
            return Err("a subject id must be 1 to 128 characters long".into());
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a subject id may contain only printable ASCII characters without spaces".into());
        }
        Ok(SubjectId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubjectId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
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

/// A data subject's metadata (no personal values: those live encrypted in items).
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// The latest consent event for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Granted (live) or withdrawn.
    pub status: ConsentStatus,
    /// When.
    pub at: Timestamp,
    /// Given by a guardian on the subject's behalf (their subject id), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_guardian: Option<SubjectId>,
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
