//! The audit chain: what an entry says, how it is encoded, how it is chained
//! and how a chain is verified.
//!
//! An entry's body is canonical JSON of an [`AuditEvent`] (fields in a fixed
//! order). Its hash is `SHA-256("custos-audit-v1" || seq (8 bytes, big endian)
//! || previous hash || body)`; the first entry's previous hash is 32 zero
//! bytes. Any edit, deletion, insertion or reordering of stored entries breaks
//! the recomputed chain, and [`ChainVerifier`] names the first entry that does
//! not match. Entries never hold personal values: subjects appear only as
//! pseudonyms (a keyed hash computed by the vault).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// A 32-byte chain hash.
pub type Hash = [u8; 32];

/// The previous hash of the first entry.
pub const GENESIS: Hash = [0; 32];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A subject was created.
    SubjectCreated,
    /// Items were written (one entry per subject per write).
    DataWritten,
    /// Items were read (allowed).
    DataRead,
    /// A read was denied.
    AccessDenied,
    /// An item's history was read.
    HistoryRead,
    /// A tokenized value was detokenized.
    Detokenized,
    /// Consent granted.
    ConsentGranted,
    /// Consent withdrawn.
    ConsentWithdrawn,
    /// Objection recorded.
    ObjectionRecorded,
    /// Processing restricted.
    RestrictionSet,
    /// Restriction lifted.
    RestrictionLifted,
    /// The subject's data key was destroyed.
    SubjectErased,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// The store's identity (master key check, notice) was recorded.
    StoreIdentityRecorded,
    /// A newer version of the store's notice was adopted.
    NoticeVersionAdopted,
    /// A batch of data keys was re-wrapped under a new master key.
    DataKeysRewrapped,
    /// The store's key check moved to a new master key (rotation complete).
    MasterKeyRotated,
    /// A subject's sealed metadata (region, birth date, guardian) was opened
    /// and released for a purpose.
    MetadataRead,
    /// A batch of legacy item values was re-sealed bound to their versions
    /// (the entry's `count` says how many).
    ItemsResealed,
    /// Every item value of the store is bound to its version; legacy values
    /// are refused from now on.
    ItemsBound,
    /// The subject opted out of sale and sharing (CCPA §1798.120).
    OptOutRecorded,
    /// The subject opted back in to sale and sharing.
    OptOutLifted,
    /// The subject limited the use of their sensitive information (CCPA §1798.121).
    SensitiveUseLimited,
    /// The subject lifted that limit.
    SensitiveLimitLifted,
    /// A rights request was received (the entry's `request` names it, its
    /// `kind` the request kind; a refused one is received and denied).
    RequestReceived,
    /// A verification was started for a request (a code sent; never the code).
    VerificationStarted,
    /// A verification attempt failed (a wrong or expired code; never the code).
    VerificationFailed,
    /// The requester's identity was verified.
    RequestVerified,
    /// Work on a request began.
    RequestStarted,
    /// A request waits for the person's answer.
    RequestAwaitingSubject,
    /// The person answered; work goes on.
    RequestResumed,
    /// A request's deadline was extended (the person was told).
    RequestExtended,
    /// A request was carried out and answered.
    RequestCompleted,
    /// A request was refused (`reason` is its denial code).
    RequestDenied,
    /// A request was withdrawn by the person.
    RequestWithdrawn,
    /// Request records past their retention were deleted (`count` says how many).
    RequestRecordsDeleted,
    /// An access or portability response was produced for a request (the
    /// entry's `categories` name what it holds; never a value).
    AccessReportProduced,
}

/// One audited event, as the vault describes it (no personal values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: Timestamp,
    /// What.
    pub action: AuditAction,
    /// Who: `controller`, a recipient id, or an API key's actor.
    pub actor: String,
    /// Pseudonym of the subject (keyed hash), if the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Purpose named by the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Categories concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Denial reason code, for `access_denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Legal basis the allowed processing rested on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// Notice version in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// The API key concerned (its public id), for key management events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Who acted: `key:<id>` for an API key, `cli` for the operator at the
    /// command line (later `session:<id>` for a subject's own session). Absent
    /// only in entries written before it was recorded; the body includes it
    /// only when set, so those entries still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For a choice a linked guardian made on the subject's behalf: the
    /// guardian's pseudonym (the same keyed hash as `subject`). Absent
    /// otherwise, and in entries written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<String>,
    /// How many things a maintenance entry concerns (e.g. values re-sealed);
    /// never a value. In the body only when set, so older entries verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The rights request concerned (its public id, random). In the body
    /// only when set, so older entries verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The rights request's kind (`access`, `erasure`, …). In the body only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl AuditEvent {
    /// An event with only the required fields set.
    pub fn new(at: Timestamp, action: AuditAction, actor: impl Into<String>) -> Self {
        AuditEvent {
            at,
            action,
            actor: actor.into(),
            subject: None,
            purpose: None,
            categories: Vec::new(),
            reason: None,
            basis: None,
            notice_version: None,
            key: None,
            by: None,
            guardian: None,
            count: None,
            request: None,
            kind: None,
        }
    }

    /// The canonical body stored in the chain.
    pub fn to_body(&self) -> String {
        // Serializing a plain struct of strings, numbers and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of the previous entry.
    pub prev_hash: Hash,
    /// Canonical JSON of the event.
    pub body: String,
    /// This entry's hash.
    pub hash: Hash,
}

/// The latest entry of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the latest entry (0 for an empty chain).
    pub seq: u64,
    /// Its hash ([`GENESIS`] for an empty chain).
    pub hash: Hash,
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: GENESIS };

    /// Appends a body after this head, returning the new entry and moving the head.
    pub fn append(&mut self, body: String) -> AuditEntry {
        let seq = self.seq + 1;
        let hash = chain_hash(seq, &self.hash, body.as_bytes());
        let entry = AuditEntry { seq, prev_hash: self.hash, body, hash };
        *self = ChainHead { seq, hash };
        entry
    }
}

/// The hash of entry `seq` with body `body` after `prev`.
pub fn chain_hash(seq: u64, prev: &Hash, body: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"custos-audit-v1");
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

/// Why a chain failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// An entry's sequence number is not the next one (an entry was deleted, inserted or reordered).
    #[error("entry {found}: expected sequence number {expected} (an entry was deleted, inserted or reordered)")]
    Sequence {
        /// Expected seq.
        expected: u64,
        /// Seq found.
        found: u64,
    },
    /// An entry does not point at the previous entry's hash.
    #[error("entry {seq}: its previous-hash does not match entry {} (the chain was cut or reordered)", seq - 1)]
    Link {
        /// Entry seq.
        seq: u64,
    },
    /// An entry's content does not match its hash.
    #[error("entry {seq}: its content does not match its hash (the entry was edited)")]
    Content {
        /// Entry seq.
        seq: u64,
    },
    /// The chain ends before or after the recorded head.
    #[error(
        "the chain ends at entry {found} but the recorded head is entry {expected} (entries were removed or the head was altered)"
    )]
    Head {
        /// Head seq recorded by the store.
        expected: u64,
        /// Last seq found.
        found: u64,
    },
}

/// Verifies a chain entry by entry, in sequence order.
#[derive(Debug)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { head: ChainHead::EMPTY }
    }
}

impl ChainVerifier {
    /// Checks the next entry.
    pub fn check(&mut self, seq: u64, prev_hash: &[u8], body: &[u8], hash: &[u8]) -> Result<(), ChainBreak> {
        let expected = self.head.seq + 1;
        if seq != expected {
            return Err(ChainBreak::Sequence { expected, found: seq });
        }
        if prev_hash != self.head.hash {
            return Err(ChainBreak::Link { seq });
        }
        let computed = chain_hash(seq, &self.head.hash, body);
        if hash != computed {
            return Err(ChainBreak::Content { seq });
        }
        self.head = ChainHead { seq, hash: computed };
        Ok(())
    }

    /// Ends verification against the head the store recorded.
    pub fn finish(self, recorded: ChainHead) -> Result<ChainHead, ChainBreak> {
        if recorded != self.head {
            return Err(ChainBreak::Head { expected: recorded.seq, found: self.head.seq });
        }
        Ok(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut head = ChainHead::EMPTY;
        (0..n)
            .map(|i| {
                let ev = AuditEvent::new(Timestamp(i as i64), AuditAction::DataRead, "controller");
                head.append(ev.to_body())
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry], head: ChainHead) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.check(e.seq, &e.prev_hash, e.body.as_bytes(), &e.hash)?;
        }
        v.finish(head)
    }

    fn head_of(entries: &[AuditEntry]) -> ChainHead {
        entries.last().map_or(ChainHead::EMPTY, |e| ChainHead { seq: e.seq, hash: e.hash })
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c, head_of(&c)).map(|h| h.seq), Ok(5));
        assert_eq!(verify(&[], ChainHead::EMPTY).map(|h| h.seq), Ok(0));
    }

    #[test]
    fn editing_one_byte_of_a_body_is_caught_at_that_entry() {
        let mut c = chain(5);
        let head = head_of(&c);
        c[2].body = c[2].body.replacen("data_read", "data_reaD", 1);
        assert_eq!(verify(&c, head), Err(ChainBreak::Content { seq: 3 }));
    }

    #[test]
    fn deleting_an_entry_is_caught() {
        let mut c = chain(5);
        let head = head_of(&c);
        c.remove(1);
        assert_eq!(verify(&c, head), Err(ChainBreak::Sequence { expected: 2, found: 3 }));
    }

    #[test]
    fn deleting_the_last_entry_is_caught_by_the_head() {
        let mut c = chain(5);
        let head = head_of(&c);
        c.pop();
        assert_eq!(verify(&c, head), Err(ChainBreak::Head { expected: 5, found: 4 }));
    }

    #[test]
    fn reordering_entries_is_caught() {
        let mut c = chain(5);
        let head = head_of(&c);
        c.swap(1, 2);
        assert!(verify(&c, head).is_err());
        // Renumbering the swapped entries does not help: the links break.
        let mut c = chain(5);
        let (a, b) = (c[1].body.clone(), c[2].body.clone());
        c[1].body = b;
        c[2].body = a;
        assert_eq!(verify(&c, head), Err(ChainBreak::Content { seq: 2 }));
    }

    #[test]
    fn the_acting_key_is_in_the_body_only_when_set() {
        let mut ev = AuditEvent::new(Timestamp(1), AuditAction::ConsentGranted, "controller");
        let old = ev.to_body();
        assert!(!old.contains("\"by\""), "{old}");
        ev.by = Some("key:0a1b2c3d".into());
        assert!(ev.to_body().ends_with(",\"by\":\"key:0a1b2c3d\"}"), "{}", ev.to_body());
        // An old body still reads, without an acting key.
        let back: AuditEvent = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.by, None);
    }

    #[test]
    fn a_rewritten_hash_breaks_the_next_link() {
        let mut c = chain(5);
        let head = head_of(&c);
        c[1].body.push(' ');
        c[1].hash = chain_hash(2, &c[0].hash, c[1].body.as_bytes());
        assert_eq!(verify(&c, head), Err(ChainBreak::Link { seq: 3 }));
    }
}
