//! How the vault stores a request: the workflow body (JSON, no personal
//! value) and the sealed details (the subject's id, the requester's contact,
//! free texts), sealed under a key derived from the master key and bound to
//! the request's id, so a sealed blob moved to another request does not open.

use custos_core::deadline::Pause;
use custos_core::request::{DenialCode, Extension, RequestState, RequestStatus};
use custos_core::time::{Timestamp, format_date, parse_date};
use custos_crypto::Keyring;
use custos_store::{RequestRecord, corrupt};
use serde::{Deserialize, Serialize};
use time::Date;
use zeroize::Zeroizing;

use crate::VaultError;

/// The label of the key request details are sealed under.
const DETAILS_KEY: &[u8] = b"custos-request-details-v1";

/// Dates in the body are `YYYY-MM-DD`.
mod day {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_date(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        parse_date(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&format_date(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => parse_date(&text).map(Some).map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

/// One wait for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredPause {
    #[serde(with = "day")]
    pub from: Date,
    #[serde(with = "day::option", default)]
    pub until: Option<Date>,
}

/// One step of the timeline: when, what, by whom (`key:<id>`, `cli`, `public`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub at: Timestamp,
    /// The step: `received`, `verified`, `extended`, `denied`, …
    pub step: String,
    /// The status after it.
    pub status: RequestStatus,
    pub by: String,
}

/// A pending email code: its keyed hash (never the code), when it expires,
/// and how many wrong tries it has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCode {
    pub hash: String,
    pub expires_at: Timestamp,
    pub tries: u8,
}

/// The workflow, as stored in the record's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub status: RequestStatus,
    #[serde(with = "day")]
    pub received: Date,
    #[serde(with = "day")]
    pub latest: Date,
    #[serde(default)]
    pub pauses: Vec<StoredPause>,
    /// The day the person was told of the extension.
    #[serde(with = "day::option", default)]
    pub extended_on: Option<Date>,
    #[serde(with = "day::option", default)]
    pub closed_on: Option<Date>,
    /// The verification the kind needs (`none`, `email_code`, …).
    pub verification: String,
    /// How the identity was verified, once it was.
    #[serde(default)]
    pub verified_by: Option<String>,
    #[serde(default)]
    pub code: Option<PendingCode>,
    /// Whether the verification is locked (too many wrong codes).
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub denial: Option<DenialCode>,
    /// The open request this one duplicates.
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// The dates as last computed.
    #[serde(with = "day::option", default)]
    pub confirm_by: Option<Date>,
    #[serde(with = "day::option", default)]
    pub extended_due: Option<Date>,
    /// What carrying it out did, for the response (no personal value).
    #[serde(default)]
    pub outcome: Option<serde_json::Value>,
    pub timeline: Vec<Step>,
}

impl Body {
    pub(crate) fn state(&self) -> RequestState {
        RequestState {
            status: self.status,
            received: self.received,
            latest: self.latest,
            pauses: self.pauses.iter().map(|p| Pause { from: p.from, until: p.until }).collect(),
            extension: self.extended_on.map(|noticed_on| Extension { noticed_on }),
            closed_on: self.closed_on,
        }
    }

    pub(crate) fn set_state(&mut self, state: &RequestState) {
        self.status = state.status;
        self.received = state.received;
        self.latest = state.latest;
        self.pauses = state.pauses.iter().map(|p| StoredPause { from: p.from, until: p.until }).collect();
        self.extended_on = state.extension.map(|e| e.noticed_on);
        self.closed_on = state.closed_on;
    }

    pub(crate) fn decode(record: &RequestRecord) -> Result<Body, VaultError> {
        serde_json::from_str(&record.body).map_err(|_| corrupt("a request's workflow does not decode").into())
    }

    pub(crate) fn encode(&self) -> String {
        // A struct of strings, dates, numbers and enums always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The personal details of a request, sealed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Details {
    /// The subject's id.
    pub subject: String,
    /// Where the person is answered (email address), if given.
    #[serde(default)]
    pub contact: Option<String>,
    /// What the person wrote.
    #[serde(default)]
    pub note: Option<String>,
    /// The purposes an objection or consent withdrawal names.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// A rectification's corrections; the values are cleared once written
    /// (the record outlives the subject's erasure, the values must not).
    #[serde(default)]
    pub corrections: Vec<Correction>,
    /// Why it was extended (told to the person).
    #[serde(default)]
    pub extension_reason: Option<String>,
    /// Why it was denied (told to the person).
    #[serde(default)]
    pub denial_text: Option<String>,
}

/// One correction: the category and its corrected value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The category.
    pub category: String,
    /// The corrected value (empty once written).
    pub value: String,
}

impl Details {
    pub(crate) fn seal(&self, keys: &Keyring, request: &str) -> Result<Vec<u8>, VaultError> {
        let plain = Zeroizing::new(serde_json::to_vec(self).unwrap_or_default());
        Ok(keys.derived_data_key(DETAILS_KEY)?.seal(&context(request), &plain)?)
    }

    pub(crate) fn open(keys: &Keyring, record: &RequestRecord) -> Result<Details, VaultError> {
        let Some(sealed) = &record.sealed else {
            return Err(corrupt("a request has no sealed details").into());
        };
        let plain = keys.derived_data_key(DETAILS_KEY)?.open(&context(&record.id), sealed)?;
        serde_json::from_slice(&plain).map_err(|_| corrupt("a request's details do not decode").into())
    }
}

fn context(request: &str) -> Vec<u8> {
    let mut c = b"custos-request\0".to_vec();
    c.extend_from_slice(request.as_bytes());
    c
}
