//! Contract cases for signed checkpoints of the audit chain.

use custos_core::audit_checkpoint::AuditCheckpoint;

use crate::ChainItem;

use super::*;

/// A checkpoint with every field recognizable by `n` (the store does not
/// check signatures, so any bytes do; these include 0 and 255).
fn checkpoint(seq: u64, key_id: &str, n: u8, second: i64) -> AuditCheckpoint {
    let mut signature = vec![n; 64];
    signature[0] = 0;
    signature[63] = 255;
    AuditCheckpoint { seq, head: hash_of(n), at: at(second), key_id: key_id.into(), signature }
}

fn checkpoints(store: &dyn Store) -> Vec<AuditCheckpoint> {
    ok(store.checkpoints(), "listing checkpoints")
}

fn latest(store: &dyn Store) -> Option<AuditCheckpoint> {
    ok(store.latest_checkpoint(), "reading the latest checkpoint")
}

fn record(store: &dyn Store, checkpoint: &AuditCheckpoint) -> bool {
    ok(store.record_checkpoint(checkpoint), "recording a checkpoint")
}

/// A fresh store has no checkpoint.
pub fn a_fresh_store_has_no_checkpoints(store: &dyn Store) {
    assert_eq!(checkpoints(store), Vec::new(), "a fresh store lists no checkpoint");
    assert_eq!(latest(store), None, "a fresh store has no latest checkpoint");
}

/// Every field comes back byte for byte; the list is ordered by sequence
/// number whatever the order of recording, and the latest is the highest.
/// Recording a checkpoint appends nothing to the chain and leaves the head.
pub fn recorded_checkpoints_round_trip_in_sequence_order(store: &dyn Store) {
    create(store, "alice");
    let before = head(store);
    let (c0, c3, c9) = (checkpoint(0, "kid-a", 1, -5), checkpoint(3, "kid-a", 2, 7), checkpoint(9, "kid-a", 3, 9));
    assert!(record(store, &c3), "a new checkpoint is recorded");
    assert!(record(store, &c9));
    assert!(record(store, &c0));
    assert_eq!(checkpoints(store), [c0, c3, c9.clone()], "checkpoints list by sequence number");
    assert_eq!(latest(store), Some(c9), "the latest checkpoint is the one with the highest sequence number");
    assert_unchanged(store, before, "recording checkpoints");
    verify_chain(store);
}

/// The same key signs one sequence number once: a second checkpoint is
/// refused with `false` and the first kept. Another key may sign the same
/// sequence number; the list orders them by key id.
pub fn one_key_signs_a_sequence_number_once(store: &dyn Store) {
    let first = checkpoint(4, "kid-b", 1, 1);
    assert!(record(store, &first));
    let again = checkpoint(4, "kid-b", 2, 2);
    assert!(!record(store, &again), "a second checkpoint by the same key at the same seq is refused");
    assert_eq!(checkpoints(store), std::slice::from_ref(&first), "the first checkpoint stays");
    let other = checkpoint(4, "kid-a", 3, 3);
    assert!(record(store, &other), "another key may sign the same seq");
    assert_eq!(checkpoints(store), [other, first], "same seq: ordered by key id");
    assert_eq!(latest(store).map(|c| c.seq), Some(4));
}

/// What [`CheckpointStore::scan_audit_with_checkpoints`] handed over, owned.
#[derive(Debug, PartialEq, Eq)]
enum Scanned {
    Entry(u64, Vec<u8>, Vec<u8>, Vec<u8>),
    Checkpoint(AuditCheckpoint),
}

/// Scans with a visitor that stops after `stop_after` items; returns them and the outcome.
fn scan_with_checkpoints(store: &dyn Store, stop_after: usize) -> (Vec<Scanned>, Result<ChainHead, ChainBreak>) {
    let mut seen = Vec::new();
    let outcome = ok(
        store.scan_audit_with_checkpoints(&mut |item| {
            seen.push(match item {
                ChainItem::Entry { seq, prev_hash, body, hash } => {
                    Scanned::Entry(seq, prev_hash.to_vec(), body.to_vec(), hash.to_vec())
                }
                ChainItem::Checkpoint(c) => Scanned::Checkpoint(c),
            });
            if seen.len() == stop_after { Err(ChainBreak::Content { seq: 77 }) } else { Ok(()) }
        }),
        "scanning the audit log with its checkpoints",
    );
    (seen, outcome)
}

/// Entries and checkpoints stream together in chain order, every field byte
/// for byte: a checkpoint right after the entry it signs, one of the empty
/// chain before the first entry, one past the last entry after it, several at
/// one seq by key id. The recorded head is returned; a break from the visitor
/// stops the scan there and is returned.
pub fn the_chain_streams_with_its_checkpoints_in_order(store: &dyn Store) {
    let (seen, outcome) = scan_with_checkpoints(store, usize::MAX);
    assert_eq!((seen, outcome), (Vec::new(), Ok(head(store))), "a fresh store: nothing, and its head");

    let events: Vec<AuditEvent> = (1..=3).map(|s| event(AuditAction::DataRead, None, s)).collect();
    ok(store.append_audit(&events), "appending");
    let recorded = verify_chain(store);
    let entries = ok(store.audit_entries(0, 100), "reading audit entries");
    assert_eq!(entries.len(), 3);
    let entry = |i: usize| {
        let e = &entries[i];
        Scanned::Entry(e.seq, e.prev_hash.to_vec(), e.body.as_bytes().to_vec(), e.hash.to_vec())
    };
    let (past, b2, genesis, a2, a3) = (
        checkpoint(9, "kid-a", 1, 1),
        checkpoint(2, "kid-b", 2, 2),
        checkpoint(0, "kid-a", 3, 3),
        checkpoint(2, "kid-a", 4, 4),
        checkpoint(3, "kid-a", 5, 5),
    );
    for c in [&past, &b2, &genesis, &a2, &a3] {
        assert!(record(store, c));
    }
    let expected = vec![
        Scanned::Checkpoint(genesis),
        entry(0),
        entry(1),
        Scanned::Checkpoint(a2),
        Scanned::Checkpoint(b2),
        entry(2),
        Scanned::Checkpoint(a3),
        Scanned::Checkpoint(past),
    ];
    let (seen, outcome) = scan_with_checkpoints(store, usize::MAX);
    assert_eq!(seen, expected, "entries and checkpoints in chain order");
    assert_eq!(outcome, Ok(recorded), "the recorded head is returned");

    let (seen, outcome) = scan_with_checkpoints(store, 4);
    assert_eq!(seen, expected[..4], "the visitor's break stops the scan");
    assert_eq!(outcome, Err(ChainBreak::Content { seq: 77 }), "and is returned");
}
