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

use custos_core::audit::{ChainBreak, ChainHead, ChainVerifier, Hash, chain_hash};
use custos_core::audit_checkpoint::{AuditBreak, AuditCheckpoint, CheckpointBreak};
use custos_crypto::signing::{AuditPublicKey, AuditSigner};
use custos_store::{ChainItem, Store, StoreError};

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
        // Anchors are the caller's, in memory: their signatures are checked
        // now, and reported after any stored checkpoint's bad signature.
        let anchor_signature = anchors.iter().find_map(|cp| check_signature(&keys, cp).err());
        let mut sorted: Vec<&AuditCheckpoint> = anchors.iter().collect();
        sorted.sort_by_key(|c| c.seq);
        let mut walk = Walk::new(&keys, sorted);
        // Entries and stored checkpoints come in one stream, in one snapshot:
        // nothing is collected, however many of either there are.
        let scanned = self.store.scan_audit_with_checkpoints(&mut |item| walk.visit(item))?;
        walk.anchors_before(None);
        if let Some(b) = walk.signature {
            return Ok(Err(AuditBreak::Checkpoint(b)));
        }
        if let Some(b) = anchor_signature {
            return Ok(Err(AuditBreak::Anchor(b)));
        }
        if let Some(broken) = walk.broken {
            return Ok(Err(broken));
        }
        let Ok(recorded) = scanned else {
            // Only a bad signature stops the scan, and it was reported above.
            return Err(VaultError::Store(StoreError::Backend("the audit scan stopped early".into())));
        };
        let head = match walk.chain.finish(recorded) {
            Ok(head) => head,
            Err(broken) => return Ok(Err(AuditBreak::Chain(broken))),
        };
        if let Some(pin) = walk.short {
            return Ok(Err(pin.fail(CheckpointBreak::ChainTooShort { seq: pin.seq, found: head.seq })));
        }
        let latest = match (walk.latest_stored, walk.anchors.last()) {
            (Some(stored), Some(anchor)) if stored.seq > anchor.seq => Some(stored),
            (_, Some(anchor)) => Some((*anchor).clone()),
            (stored, None) => stored,
        };
        let unsigned = head.seq - latest.as_ref().map_or(0, |c| c.seq);
        Ok(Ok(AuditVerification { head, checkpoints: walk.stored, anchors: anchors.len(), latest, unsigned }))
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

/// A checkpoint to find in the chain, stored or anchored: where, and which kind.
#[derive(Clone, Copy)]
struct Pin {
    seq: u64,
    anchor: bool,
}

impl Pin {
    fn fail(&self, b: CheckpointBreak) -> AuditBreak {
        if self.anchor { AuditBreak::Anchor(b) } else { AuditBreak::Checkpoint(b) }
    }
}

/// The state of [`Vault::verify_audit_with`] along the stream of entries and
/// stored checkpoints (by sequence number, each checkpoint after the entry it
/// signs), into which the anchors are merged: bounded, whatever the length of
/// the chain or the number of checkpoints. What it finds is reported in the
/// order a verification always has: a stored checkpoint's bad signature (the
/// first), an anchor's, then the first break along the chain (a checkpoint
/// of the empty chain that is not the genesis hash comes before entry 1; an entry
/// is checked before the checkpoints of its seq), the recorded head, and
/// last a checkpoint the chain does not reach.
struct Walk<'a> {
    keys: &'a [AuditPublicKey],
    /// The anchors by sequence number; those before `next_anchor` are placed.
    anchors: Vec<&'a AuditCheckpoint>,
    next_anchor: usize,
    chain: ChainVerifier,
    /// The last entry verified.
    at: ChainHead,
    /// Stored checkpoints whose signature was checked.
    stored: usize,
    latest_stored: Option<AuditCheckpoint>,
    /// The first stored checkpoint with a bad signature: it stops the scan.
    signature: Option<CheckpointBreak>,
    /// The first break along the chain; after it only signatures are checked.
    broken: Option<AuditBreak>,
    /// The first checkpoint past every entry seen: the chain is too short,
    /// unless a later entry breaks it.
    short: Option<Pin>,
}

impl<'a> Walk<'a> {
    fn new(keys: &'a [AuditPublicKey], anchors: Vec<&'a AuditCheckpoint>) -> Walk<'a> {
        Walk {
            keys,
            anchors,
            next_anchor: 0,
            chain: ChainVerifier::default(),
            at: ChainHead::EMPTY,
            stored: 0,
            latest_stored: None,
            signature: None,
            broken: None,
            short: None,
        }
    }

    fn visit(&mut self, item: ChainItem<'_>) -> Result<(), ChainBreak> {
        match item {
            ChainItem::Entry { seq, prev_hash, body, hash } => {
                self.anchors_before(Some(seq));
                if self.broken.is_none() {
                    match self.chain.check(seq, prev_hash, body, hash) {
                        // Checked: `hash` is the 32-byte hash of the entry.
                        Ok(()) => match Hash::try_from(hash) {
                            Ok(hash) => self.at = ChainHead { seq, hash },
                            Err(_) => self.broken = Some(AuditBreak::Chain(ChainBreak::Content { seq })),
                        },
                        Err(b) => self.broken = Some(AuditBreak::Chain(b)),
                    }
                }
                Ok(())
            }
            ChainItem::Checkpoint(cp) => {
                self.anchors_before(Some(cp.seq));
                if let Err(b) = check_signature(self.keys, &cp) {
                    self.signature = Some(b);
                    // Nothing found later is reported before it: stop.
                    return Err(ChainBreak::Content { seq: cp.seq });
                }
                self.stored += 1;
                self.pin(Pin { seq: cp.seq, anchor: false }, &cp.head);
                self.latest_stored = Some(cp);
                Ok(())
            }
        }
    }

    /// Places the anchors signing entries before `seq` (every one left for `None`).
    fn anchors_before(&mut self, seq: Option<u64>) {
        while let Some(anchor) = self.anchors.get(self.next_anchor).filter(|a| seq.is_none_or(|s| a.seq < s)).copied() {
            self.next_anchor += 1;
            self.pin(Pin { seq: anchor.seq, anchor: true }, &anchor.head);
        }
    }

    /// Checks a checkpoint signing `head` at `pin.seq`, every entry before it
    /// having been seen.
    fn pin(&mut self, pin: Pin, head: &Hash) {
        if self.broken.is_some() || self.short.is_some() {
            return;
        }
        if pin.seq != self.at.seq {
            self.short = Some(pin);
        } else if *head != self.at.hash {
            self.broken = Some(pin.fail(CheckpointBreak::HashMismatch { seq: pin.seq }));
        }
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
