//! Signed checkpoints of the audit chain: what is signed, and how a
//! verification against them fails.
//!
//! The hash chain ([`crate::audit`]) catches any edit that leaves the
//! recomputed hashes and the recorded head inconsistent, but whoever can write
//! the database can also recompute every hash and the head. A checkpoint pins
//! the chain at one point: its sequence number and the hash of that entry,
//! signed (Ed25519, by the crypto layer) under a key that never enters the
//! database. A rewritten chain no longer has the signed hash at the signed
//! position, and a truncated one no longer reaches it.
//!
//! The signed message is domain-separated and has one encoding:
//! `"custos-audit-checkpoint-v1" || 0x00 || seq (8 bytes, big endian) ||
//! head hash (32 bytes) || time (µs since the epoch, 8 bytes, big endian,
//! two's complement) || key id length (4 bytes, big endian) || key id (UTF-8)`.
//! Everything before the key id has a fixed length and the key id is
//! length-prefixed, so no two checkpoints share a message.

use crate::audit::{ChainBreak, Hash};
use crate::time::Timestamp;

/// The domain separation label at the start of every signed message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"custos-audit-checkpoint-v1";

/// A signed head of the audit chain, as stored beside the chain and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// Sequence number of the entry signed (0: the empty chain).
    pub seq: u64,
    /// The chain hash of that entry ([`crate::audit::GENESIS`] for seq 0).
    pub head: Hash,
    /// When it was signed.
    pub at: Timestamp,
    /// The signing key's id (a hash of its public key).
    pub key_id: String,
    /// The Ed25519 signature of [`AuditCheckpoint::signed_message`] (64 bytes).
    pub signature: Vec<u8>,
}

impl AuditCheckpoint {
    /// The bytes the signature covers (everything but the signature).
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(self.seq, &self.head, self.at, &self.key_id)
    }
}

/// The bytes signed for a checkpoint of entry `seq` with hash `head`, made at
/// `at` by the key `key_id`.
pub fn signed_message(seq: u64, head: &Hash, at: Timestamp, key_id: &str) -> Vec<u8> {
    let id = key_id.as_bytes();
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 1 + 8 + 32 + 8 + 4 + id.len());
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.push(0);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&at.0.to_be_bytes());
    // A key id longer than 4 GiB cannot exist; saturating keeps this total.
    m.extend_from_slice(&u32::try_from(id.len()).unwrap_or(u32::MAX).to_be_bytes());
    m.extend_from_slice(id);
    m
}

/// Why a checkpoint does not vouch for the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointBreak {
    /// The checkpoint names a key that is not trusted (not derived from this
    /// master key, nor listed with `--trusted-keys`): it proves nothing.
    #[error("checkpoint at entry {seq}: signed by key `{key_id}`, which is not a trusted audit key")]
    UnknownKey {
        /// Entry the checkpoint signs.
        seq: u64,
        /// Key id it names.
        key_id: String,
    },
    /// The signature does not verify under the named key: forged or altered.
    #[error("checkpoint at entry {seq}: its signature does not match (the checkpoint was forged or altered)")]
    BadSignature {
        /// Entry the checkpoint signs.
        seq: u64,
    },
    /// The chain's entry at the signed position has another hash: the chain was rewritten.
    #[error(
        "checkpoint at entry {seq}: the signed head hash does not match the chain's entry {seq} (the chain was rewritten)"
    )]
    HashMismatch {
        /// Entry the checkpoint signs.
        seq: u64,
    },
    /// The chain ends before the signed entry: signed entries were removed.
    #[error(
        "checkpoint at entry {seq}: the chain ends at entry {found}, before the signed entry (signed entries were removed)"
    )]
    ChainTooShort {
        /// Entry the checkpoint signs.
        seq: u64,
        /// Last entry of the chain.
        found: u64,
    },
}

/// Why a verification of the audit log failed: the chain itself, one of the
/// checkpoints stored beside it, or a checkpoint anchored elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditBreak {
    /// The hash chain is broken.
    #[error("{0}")]
    Chain(ChainBreak),
    /// A stored checkpoint does not verify or does not match the chain.
    #[error("{0}")]
    Checkpoint(CheckpointBreak),
    /// An exported checkpoint given to check against the chain does not verify or match.
    #[error("the anchored {0}")]
    Anchor(CheckpointBreak),
}

impl AuditBreak {
    /// Whether the failure concerns a signature or a signed checkpoint (as
    /// opposed to the hash chain alone).
    pub fn is_checkpoint(&self) -> bool {
        !matches!(self, AuditBreak::Chain(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Vec<u8> {
        signed_message(7, &[0xab; 32], Timestamp(1_579_824_000_000_000), "kid-1")
    }

    #[test]
    fn the_signed_message_has_its_documented_layout() {
        let m = message();
        let mut expected = b"custos-audit-checkpoint-v1\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0xab; 32]);
        expected.extend_from_slice(&1_579_824_000_000_000i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 5]);
        expected.extend_from_slice(b"kid-1");
        assert_eq!(m, expected);
    }

    #[test]
    fn every_field_changes_the_signed_message() {
        let base = message();
        let variants = [
            signed_message(8, &[0xab; 32], Timestamp(1_579_824_000_000_000), "kid-1"),
            signed_message(7, &[0xac; 32], Timestamp(1_579_824_000_000_000), "kid-1"),
            signed_message(7, &[0xab; 32], Timestamp(1_579_824_000_000_001), "kid-1"),
            signed_message(7, &[0xab; 32], Timestamp(1_579_824_000_000_000), "kid-2"),
            signed_message(7, &[0xab; 32], Timestamp(1_579_824_000_000_000), "kid-1\0"),
        ];
        for v in &variants {
            assert_ne!(v, &base);
        }
    }

    #[test]
    fn the_message_of_a_checkpoint_leaves_out_the_signature() {
        let cp = AuditCheckpoint {
            seq: 7,
            head: [0xab; 32],
            at: Timestamp(1_579_824_000_000_000),
            key_id: "kid-1".into(),
            signature: vec![1; 64],
        };
        assert_eq!(cp.signed_message(), message());
        assert_eq!(AuditCheckpoint { signature: vec![2; 64], ..cp.clone() }.signed_message(), message());
    }

    #[test]
    fn a_negative_time_is_encoded_in_twos_complement() {
        let m = signed_message(0, &[0; 32], Timestamp(-1), "");
        let at = &m[CHECKPOINT_DOMAIN.len() + 1 + 8 + 32..][..8];
        assert_eq!(at, [0xff; 8]);
        assert_eq!(&m[m.len() - 4..], [0, 0, 0, 0]);
    }

    #[test]
    fn failures_name_the_checkpoint_and_say_what_happened() {
        let b = AuditBreak::Checkpoint(CheckpointBreak::HashMismatch { seq: 5 });
        assert!(b.to_string().contains("checkpoint at entry 5") && b.to_string().contains("rewritten"), "{b}");
        assert!(b.is_checkpoint());
        let b = AuditBreak::Anchor(CheckpointBreak::ChainTooShort { seq: 5, found: 0 });
        assert!(b.to_string().starts_with("the anchored checkpoint at entry 5"), "{b}");
        assert!(!AuditBreak::Chain(ChainBreak::Content { seq: 1 }).is_checkpoint());
    }
}
