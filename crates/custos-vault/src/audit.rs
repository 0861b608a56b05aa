//! Verifying the audit chain, and signing checkpoints of it.
//!
//! The chain alone is self-consistent, not authentic: whoever can write the
//! database can recompute every hash and the head. Signed checkpoints
//! ([`AuditCheckpoint`]) pin it: [`Vault::sign_checkpoint`] signs the current
//! head with the Ed25519 key derived from the master key (never stored), and
//! [`Vault::verify_audit_with`] checks every stored checkpoint's signature
//! against the trusted keys, that the chain has the signed hash at each signed
//! position, and that it is not shorter than any of them. Entries after the
//! last checkpoint are reported as unsigned: nothing vouches for them yet.

use custos_core::audit::{ChainBreak, ChainHead, ChainVerifier, GENESIS, Hash, chain_hash};
use custos_core::audit_checkpoint::{AuditBreak, AuditCheckpoint, CheckpointBreak};
use custos_crypto::signing::{AuditPublicKey, AuditSigner};
use custos_store::Store;

use crate::*;

/// What a verification of the audit log found, when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// The verified head of the chain (its entry count and last hash).
    pub head: ChainHead,
    /// Stored checkpoints whose signature and position were checked.
    pub checkpoints: usize,
    /// Anchored (exported) checkpoints checked.
    pub anchors: usize,
    /// The checkpoint (stored or anchored) furthest along the chain.
    pub latest: Option<AuditCheckpoint>,
    /// Entries after [`AuditVerification::latest`]: no signature vouches for them yet.
    pub unsigned: u64,
}

impl<S: Store> Vault<S> {
    /// Verifies the audit chain and every stored checkpoint, trusting only
    /// this master key's checkpoint key.
    pub fn verify_audit(&self) -> Result<Result<AuditVerification, AuditBreak>, VaultError> {
        self.verify_audit_with(&[], &[])
    }

    /// Verifies the audit chain end to end, every stored checkpoint (its
    /// signature, by a key in [`Vault::audit_public_keys`] or `trusted`, and
    /// that the chain holds the signed hash at the signed position), and each
    /// of `anchors` (checkpoints exported earlier and kept elsewhere) the same
    /// way. A checkpoint by a key that is not trusted fails the verification.
    pub fn verify_audit_with(
        &self,
        trusted: &[AuditPublicKey],
        anchors: &[AuditCheckpoint],
    ) -> Result<Result<AuditVerification, AuditBreak>, VaultError> {
        let mut keys = self.audit_public_keys()?;
        keys.extend(trusted.iter().cloned());
        // Read before the scan: the chain only grows, so every checkpoint read
        // here lies within the chain the scan sees.
        let stored = self.store.checkpoints()?;
        for cp in &stored {
            if let Err(b) = check_signature(&keys, cp) {
                return Ok(Err(AuditBreak::Checkpoint(b)));
            }
        }
        for cp in anchors {
            if let Err(b) = check_signature(&keys, cp) {
                return Ok(Err(AuditBreak::Anchor(b)));
            }
        }
        let mut pins: Vec<Pin<'_>> = stored
            .iter()
            .map(|c| Pin { checkpoint: c, anchor: false })
            .chain(anchors.iter().map(|c| Pin { checkpoint: c, anchor: true }))
            .collect();
        pins.sort_by_key(|p| p.checkpoint.seq);
        let latest = pins.last().map(|p| p.checkpoint.clone());

        let mut next = 0;
        while let Some(pin) = pins.get(next).filter(|p| p.checkpoint.seq == 0) {
            if pin.checkpoint.head != GENESIS {
                return Ok(Err(pin.fail(CheckpointBreak::HashMismatch { seq: 0 })));
            }
            next += 1;
        }
        let mut mismatch = None;
        let mut v = ChainVerifier::default();
        let scanned = self.store.scan_audit(&mut |seq, prev, body, hash| {
            v.check(seq, prev, body, hash)?;
            while let Some(pin) = pins.get(next).filter(|p| p.checkpoint.seq == seq) {
                if pin.checkpoint.head[..] != *hash {
                    mismatch = Some(pin.fail(CheckpointBreak::HashMismatch { seq }));
                    // Stops the scan; `mismatch` says why.
                    return Err(ChainBreak::Content { seq });
                }
                next += 1;
            }
            Ok(())
        })?;
        let head = match scanned {
            Err(broken) => return Ok(Err(mismatch.unwrap_or(AuditBreak::Chain(broken)))),
            Ok(recorded) => match v.finish(recorded) {
                Ok(head) => head,
                Err(broken) => return Ok(Err(AuditBreak::Chain(broken))),
            },
        };
        if let Some(pin) = pins.get(next) {
            let seq = pin.checkpoint.seq;
            return Ok(Err(pin.fail(CheckpointBreak::ChainTooShort { seq, found: head.seq })));
        }
        let unsigned = head.seq - latest.as_ref().map_or(0, |c| c.seq);
        Ok(Ok(AuditVerification { head, checkpoints: stored.len(), anchors: anchors.len(), latest, unsigned }))
    }

    /// The key this vault signs checkpoints with, derived from the master key.
    pub fn audit_signer(&self) -> Result<AuditSigner, VaultError> {
        Ok(AuditSigner::from_keyring(&self.keys)?)
    }

    /// The public keys whose checkpoints this vault trusts and publishes
    /// (`/.well-known/custos/audit-keys`): today the current master key's.
    pub fn audit_public_keys(&self) -> Result<Vec<AuditPublicKey>, VaultError> {
        Ok(vec![self.audit_signer()?.public_key().clone()])
    }

    /// Signs the current head of the chain and records the checkpoint, unless
    /// this key has signed that head already (then that checkpoint is
    /// returned). Before signing, the entries since this key's last valid
    /// checkpoint must chain from it to the head: a checkpoint only ever
    /// extends a chain that verifies, and a chain that no longer reaches a
    /// signed entry is refused.
    pub fn sign_checkpoint(&self) -> Result<Result<AuditCheckpoint, AuditBreak>, VaultError> {
        let signer = self.audit_signer()?;
        let key = signer.public_key();
        let head = self.store.audit_head()?;
        let is_own = |c: &AuditCheckpoint| c.key_id == key.id() && key.verify(&c.signed_message(), &c.signature);
        // Usually the latest checkpoint is this key's own (one read); only
        // after a key change or a planted row are all of them searched.
        let base = match self.store.latest_checkpoint()? {
            Some(latest) if is_own(&latest) => Some(latest),
            None => None,
            Some(_) => self.store.checkpoints()?.into_iter().rfind(|c| is_own(c)),
        };
        if let Some(beyond) = base.as_ref().filter(|b| b.seq > head.seq) {
            let seq = beyond.seq;
            return Ok(Err(AuditBreak::Checkpoint(CheckpointBreak::ChainTooShort { seq, found: head.seq })));
        }
        if let Some(b) = base.as_ref().filter(|b| b.seq == head.seq && b.head == head.hash) {
            return Ok(Ok(b.clone()));
        }
        let from = base.as_ref().map_or(ChainHead::EMPTY, |b| ChainHead { seq: b.seq, hash: b.head });
        if let Err(broken) = self.check_segment(from, head)? {
            return Ok(Err(match broken {
                Segment::Chain(b) => AuditBreak::Chain(b),
                Segment::Base => AuditBreak::Checkpoint(CheckpointBreak::HashMismatch { seq: from.seq }),
            }));
        }
        let mut checkpoint = AuditCheckpoint {
            seq: head.seq,
            head: head.hash,
            at: self.clock.now(),
            key_id: key.id().to_string(),
            signature: Vec::new(),
        };
        checkpoint.signature = signer.sign(&checkpoint.signed_message());
        // `false`: another process signed this head with this key meanwhile;
        // this checkpoint is as valid as that one.
        self.store.record_checkpoint(&checkpoint)?;
        Ok(Ok(checkpoint))
    }

    /// Whether the entries after `from` chain from it up to `to` (read in pages).
    fn check_segment(&self, from: ChainHead, to: ChainHead) -> Result<Result<(), Segment>, VaultError> {
        const PAGE: usize = 1000;
        let mut at = from;
        while at.seq < to.seq {
            let page = self.store.audit_entries(at.seq, PAGE)?;
            if page.is_empty() {
                return Ok(Err(Segment::Chain(ChainBreak::Head { expected: to.seq, found: at.seq })));
            }
            for e in page.into_iter().take_while(|e| e.seq <= to.seq) {
                if e.seq != at.seq + 1 {
                    return Ok(Err(Segment::Chain(ChainBreak::Sequence { expected: at.seq + 1, found: e.seq })));
                }
                if e.prev_hash != at.hash {
                    // The first entry after a checkpoint not pointing at it: the checkpointed entry was replaced.
                    let base_moved = e.seq == from.seq + 1 && from.seq > 0;
                    return Ok(Err(if base_moved {
                        Segment::Base
                    } else {
                        Segment::Chain(ChainBreak::Link { seq: e.seq })
                    }));
                }
                let hash: Hash = chain_hash(e.seq, &at.hash, e.body.as_bytes());
                if hash != e.hash {
                    return Ok(Err(Segment::Chain(ChainBreak::Content { seq: e.seq })));
                }
                at = ChainHead { seq: e.seq, hash };
            }
        }
        if at != to {
            return Ok(Err(if at.seq == from.seq && from.seq > 0 {
                Segment::Base
            } else {
                Segment::Chain(ChainBreak::Head { expected: to.seq, found: at.seq })
            }));
        }
        Ok(Ok(()))
    }
}

/// Why the entries since the last checkpoint do not extend it.
enum Segment {
    Chain(ChainBreak),
    /// The chain no longer has the checkpoint's hash at its position.
    Base,
}

/// A checkpoint to find in the chain, stored or anchored.
struct Pin<'a> {
    checkpoint: &'a AuditCheckpoint,
    anchor: bool,
}

impl Pin<'_> {
    fn fail(&self, b: CheckpointBreak) -> AuditBreak {
        if self.anchor { AuditBreak::Anchor(b) } else { AuditBreak::Checkpoint(b) }
    }
}

/// Whether `cp` is signed by one of `keys`.
fn check_signature(keys: &[AuditPublicKey], cp: &AuditCheckpoint) -> Result<(), CheckpointBreak> {
    let Some(key) = keys.iter().find(|k| k.id() == cp.key_id) else {
        return Err(CheckpointBreak::UnknownKey { seq: cp.seq, key_id: printable(&cp.key_id) });
    };
    if !key.verify(&cp.signed_message(), &cp.signature) {
        return Err(CheckpointBreak::BadSignature { seq: cp.seq });
    }
    Ok(())
}

/// A stored key id as it may be shown: at most 64 printable characters (it
/// came from the database, which anyone verifying distrusts).
fn printable(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// Verifies a store's audit chain against its recorded head (the hash chain
/// only; [`Vault::verify_audit`] also checks the signed checkpoints).
pub fn verify_chain(store: &dyn Store) -> Result<Result<ChainHead, ChainBreak>, VaultError> {
    let mut v = ChainVerifier::default();
    match store.scan_audit(&mut |seq, prev, body, hash| v.check(seq, prev, body, hash))? {
        Ok(head) => Ok(v.finish(head)),
        Err(broken) => Ok(Err(broken)),
    }
}
