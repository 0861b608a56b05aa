//! Signed audit checkpoints in the vault: what `verify_audit` accepts and
//! refuses, the unsigned tail it reports, and when `sign_checkpoint` refuses
//! to sign. On SQLite, and on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.
//! Tampering goes through the store's own calls (planting checkpoints,
//! appending entries the vault did not make), as a database writer could.

use custos_vault::By;
use std::sync::Arc;

use custos_core::audit::{AuditAction, AuditEvent, GENESIS};
use custos_core::audit_checkpoint::{AuditBreak, AuditCheckpoint, CheckpointBreak, signed_message};
use custos_core::policy::Policy;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::signing::AuditSigner;
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{NewSubject, Vault};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn vault(store: TestStore, master: &str) -> TestResult<Vault<TestStore>> {
    let keys = Keyring::new(&MasterKey::from_hex(master)?)?;
    let clock = Arc::new(FixedClock::new(Timestamp(1_717_243_200_000_000)));
    Ok(Vault::new(Arc::new(Policy::from_yaml(POLICY)?), store, keys, clock))
}

const MASTER_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const MASTER_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn add(v: &Vault<TestStore>, id: &str) -> TestResult {
    v.add_subject(
        &NewSubject { id, jurisdiction: "california", region: None, birth_date: None, guardian: None },
        &By::Cli,
    )?;
    Ok(())
}

fn raw_append(v: &Vault<TestStore>) -> TestResult {
    v.store().append_audit(&[AuditEvent::new(Timestamp(5), AuditAction::DataRead, "controller")])?;
    Ok(())
}

fn sign(v: &Vault<TestStore>) -> TestResult<AuditCheckpoint> {
    v.sign_checkpoint()?.map_err(|b| format!("signing refused: {b}").into())
}

#[test]
fn entries_after_the_last_checkpoint_are_reported_unsigned() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    let found = v.verify_audit()?.map_err(|b| b.to_string())?;
    assert_eq!((found.head.seq, found.checkpoints, found.unsigned, found.latest), (0, 0, 0, None));
    add(&v, "a-1")?;
    add(&v, "a-2")?;
    let found = v.verify_audit()?.map_err(|b| b.to_string())?;
    assert_eq!((found.head.seq, found.checkpoints, found.unsigned), (2, 0, 2), "nothing signed yet");
    let cp = sign(&v)?;
    assert_eq!(cp.seq, 2);
    assert_eq!(sign(&v)?, cp, "an unchanged head is not signed twice");
    add(&v, "a-3")?;
    let found = v.verify_audit()?.map_err(|b| b.to_string())?;
    assert_eq!((found.head.seq, found.checkpoints, found.unsigned), (3, 1, 1));
    assert_eq!(found.latest, Some(cp));
    Ok(())
}

#[test]
fn a_checkpoint_of_the_empty_chain_verifies_and_a_wrong_one_does_not() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    let cp = sign(&v)?;
    assert_eq!((cp.seq, cp.head), (0, GENESIS));
    assert!(v.verify_audit()?.is_ok());
    let signer = v.audit_signer()?;
    let at = Timestamp(9);
    let key_id = signer.public_key().id().to_string();
    let head = [9; 32];
    let signature = signer.sign(&signed_message(0, &head, at, &key_id));
    v.store().record_checkpoint(&AuditCheckpoint { seq: 0, head, at, key_id: "x".into(), signature })?;
    // A planted row under another id is an unknown key, not a pass.
    let err = v.verify_audit()?.expect_err("a checkpoint by an unknown key");
    assert!(matches!(err, AuditBreak::Checkpoint(CheckpointBreak::UnknownKey { seq: 0, .. })), "{err}");
    Ok(())
}

#[test]
fn a_previous_master_keys_checkpoints_verify_only_when_trusted() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let old = vault(storage.open()?, MASTER_A)?;
    add(&old, "r-1")?;
    sign(&old)?;
    let old_key = old.audit_public_keys()?;
    drop(old);
    let new = vault(storage.open()?, MASTER_B)?;
    let err = new.verify_audit()?.expect_err("the old key is not trusted by default");
    assert!(matches!(err, AuditBreak::Checkpoint(CheckpointBreak::UnknownKey { seq: 1, .. })), "{err}");
    let found = new.verify_audit_with(&old_key, &[])?.map_err(|b| b.to_string())?;
    assert_eq!((found.checkpoints, found.unsigned), (1, 0));
    // The new key signs on from the old checkpoint (after checking the whole chain).
    add(&new, "r-2")?;
    let cp = sign(&new)?;
    assert_eq!(cp.seq, 2);
    assert_eq!(cp.key_id, new.audit_public_keys()?[0].id());
    assert!(new.verify_audit_with(&old_key, &[])?.is_ok());
    Ok(())
}

#[test]
fn a_forged_signature_and_a_checkpoint_past_the_chain_fail_verify_and_block_signing() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    add(&v, "f-1")?;
    let mut cp = sign(&v)?;
    // One flipped byte of a planted copy, at another seq, and the signature no longer matches.
    cp.seq = 9;
    cp.signature[10] ^= 1;
    v.store().record_checkpoint(&cp)?;
    let err = v.verify_audit()?.expect_err("a forged signature");
    assert_eq!(err, AuditBreak::Checkpoint(CheckpointBreak::BadSignature { seq: 9 }));

    // A valid signature of an entry the chain does not reach: truncation.
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    let signer = AuditSigner::from_keyring(&Keyring::new(&MasterKey::from_hex(MASTER_A)?)?)?;
    let key_id = signer.public_key().id().to_string();
    let (head, at) = ([3; 32], Timestamp(1));
    let signature = signer.sign(&signed_message(4, &head, at, &key_id));
    v.store().record_checkpoint(&AuditCheckpoint { seq: 4, head, at, key_id, signature })?;
    let err = v.verify_audit()?.expect_err("a chain shorter than a checkpoint");
    assert_eq!(err, AuditBreak::Checkpoint(CheckpointBreak::ChainTooShort { seq: 4, found: 0 }));
    let refused = v.sign_checkpoint()?.expect_err("nothing is signed over a truncated chain");
    assert_eq!(refused, AuditBreak::Checkpoint(CheckpointBreak::ChainTooShort { seq: 4, found: 0 }));
    Ok(())
}

#[test]
fn signing_extends_only_a_chain_that_verifies_since_the_last_checkpoint() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    add(&v, "s-1")?;
    sign(&v)?;
    raw_append(&v)?;
    raw_append(&v)?;
    // Entries appended by another writer that chain correctly are signed.
    assert_eq!(sign(&v)?.seq, 3);
    // An anchor of a head that is not in the chain fails, naming the anchor.
    let mut anchor = sign(&v)?;
    anchor.head[0] ^= 1;
    let signer = v.audit_signer()?;
    anchor.signature = signer.sign(&anchor.signed_message());
    let err = v.verify_audit_with(&[], &[anchor])?.expect_err("an anchor off the chain");
    assert_eq!(err, AuditBreak::Anchor(CheckpointBreak::HashMismatch { seq: 3 }));
    assert!(err.to_string().starts_with("the anchored checkpoint at entry 3"), "{err}");
    Ok(())
}

/// Verification streams the entries and the stored checkpoints together,
/// collecting neither: over a chain with a checkpoint after every entry, and
/// anchors merged in, every checkpoint is counted and the verdicts are those
/// of a short chain. Checkpoints far along are still caught: a trusted key's
/// signature of a head the chain does not have, and, reported before it as
/// every bad signature is, a forged signature further on.
#[test]
fn many_checkpoints_verify_in_one_stream_and_late_tampered_ones_are_caught() -> TestResult {
    let storage = TestStorage::fresh()?;
    let v = vault(storage.open()?, MASTER_A)?;
    let mut signed = Vec::new();
    for _ in 0..40 {
        raw_append(&v)?;
        signed.push(sign(&v)?);
    }
    raw_append(&v)?;
    raw_append(&v)?;
    let found = v.verify_audit()?.map_err(|b| b.to_string())?;
    assert_eq!((found.head.seq, found.checkpoints, found.anchors, found.unsigned), (42, 40, 0, 2));
    assert_eq!(found.latest.as_ref(), signed.last());
    let anchors = [signed[39].clone(), signed[3].clone()];
    let found = v.verify_audit_with(&[], &anchors)?.map_err(|b| b.to_string())?;
    assert_eq!((found.checkpoints, found.anchors, found.unsigned), (40, 2, 2));
    assert_eq!(found.latest.as_ref(), Some(&signed[39]));

    // Another key, trusted, signs a head that entry 35 does not have.
    let other = AuditSigner::from_keyring(&Keyring::new(&MasterKey::from_hex(MASTER_B)?)?)?;
    let trusted = [other.public_key().clone()];
    let key_id = other.public_key().id().to_string();
    let (head, at) = ([7; 32], Timestamp(3));
    let signature = other.sign(&signed_message(35, &head, at, &key_id));
    v.store().record_checkpoint(&AuditCheckpoint { seq: 35, head, at, key_id, signature })?;
    let err = v.verify_audit_with(&trusted, &[])?.expect_err("a signed head off the chain");
    assert_eq!(err, AuditBreak::Checkpoint(CheckpointBreak::HashMismatch { seq: 35 }));
    let err = v.verify_audit()?.expect_err("an untrusted key");
    assert!(matches!(err, AuditBreak::Checkpoint(CheckpointBreak::UnknownKey { seq: 35, .. })), "{err}");

    // A forged copy of checkpoint 38's signature at entry 38 by the same key.
    let mut forged = signed[37].clone();
    forged.key_id = trusted[0].id().to_string();
    v.store().record_checkpoint(&forged)?;
    let err = v.verify_audit_with(&trusted, &anchors)?.expect_err("a forged signature");
    assert_eq!(err, AuditBreak::Checkpoint(CheckpointBreak::BadSignature { seq: 38 }));
    Ok(())
}
