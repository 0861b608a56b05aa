//! Contract cases for idempotency records.

use super::*;

fn response(fingerprint: u8, status: u16, body: &[u8], second: i64, subjects: &[&str]) -> IdempotentResponse {
    IdempotentResponse {
        fingerprint: hash_of(fingerprint),
        status,
        body: body.to_vec(),
        created_at: at(second),
        subjects: subjects.iter().map(|s| pseudo(s)).collect(),
    }
}

/// A recorded response comes back whole (its subjects in pseudonym order);
/// a second one for the same key fails with `IdempotencyKeyExists` and
/// leaves the first. Keys are exact strings.
pub fn an_idempotent_response_round_trips_and_cannot_be_recorded_twice(store: &dyn Store) {
    let live = at(0);
    assert_eq!(ok(store.idempotent_response("key_a:retry-1", live), "looking up a response"), None);
    let before = head(store);
    let first = response(1, 201, b"{\"version\":1}\n\0\xff", 1, &["alice", "bob"]);
    ok(store.save_idempotent_response("key_a:retry-1", &first, live), "recording a response");
    assert_eq!(ok(store.idempotent_response("key_a:retry-1", live), "looking up a response"), Some(first.clone()));

    let second = response(2, 409, b"", 2, &[]);
    let result = store.save_idempotent_response("key_a:retry-1", &second, live);
    assert!(matches!(result, Err(StoreError::IdempotencyKeyExists)), "expected IdempotencyKeyExists, got {result:?}");
    assert_eq!(
        ok(store.idempotent_response("key_a:retry-1", live), "looking up a response"),
        Some(first.clone()),
        "the first response stays"
    );

    // Another key (here: another caller's scope) is independent, and an empty body is kept as empty.
    ok(store.save_idempotent_response("key_b:retry-1", &second, live), "recording another key's response");
    assert_eq!(ok(store.idempotent_response("key_b:retry-1", live), "looking up a response"), Some(second));
    assert_eq!(ok(store.idempotent_response("key_a:retry-1", live), "looking up a response"), Some(first));
    assert_eq!(ok(store.idempotent_response("key_a:retry-2", live), "looking up a response"), None);
    assert_unchanged(store, before, "recording idempotent responses");
}

/// A record made before `live_since` is absent; saving one for the same key
/// replaces it, and saving anything deletes every expired record (issue 8, defect 2).
pub fn an_expired_response_is_absent_replaced_and_pruned(store: &dyn Store) {
    let old = response(1, 200, b"old", 10, &["alice"]);
    let other_old = response(3, 200, b"other", 11, &["bob"]);
    ok(store.save_idempotent_response("k:1", &old, at(0)), "recording");
    ok(store.save_idempotent_response("k:2", &other_old, at(0)), "recording");
    assert_eq!(ok(store.idempotent_response("k:1", at(10)), "looking up"), Some(old.clone()), "live at its own time");
    assert_eq!(ok(store.idempotent_response("k:1", at(11)), "looking up"), None, "expired once older than live_since");

    // A new request with an expired key records anew, and prunes k:2 as well.
    let new = response(2, 201, b"new", 100, &["carol"]);
    ok(store.save_idempotent_response("k:1", &new, at(50)), "recording over an expired record");
    assert_eq!(ok(store.idempotent_response("k:1", at(0)), "looking up"), Some(new));
    assert_eq!(ok(store.idempotent_response("k:2", at(0)), "looking up"), None, "expired records are deleted on write");

    let kept = response(4, 200, b"kept", 200, &[]);
    ok(store.save_idempotent_response("k:3", &kept, at(50)), "recording");
    assert_eq!(ok(store.prune_idempotent_responses(at(150)), "pruning"), 1, "prunes exactly the older record");
    assert_eq!(ok(store.idempotent_response("k:1", at(0)), "looking up"), None);
    assert_eq!(ok(store.idempotent_response("k:3", at(0)), "looking up"), Some(kept));
    assert_eq!(ok(store.prune_idempotent_responses(at(150)), "pruning again"), 0);
}

/// Erasing a subject deletes, in its transaction, every idempotency record
/// whose request named them (also one that named others too), and nothing else.
pub fn erasure_deletes_every_idempotency_record_naming_the_subject(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    let live = at(0);
    ok(store.save_idempotent_response("k:alice", &response(1, 200, b"a", 1, &["alice"]), live), "recording");
    ok(store.save_idempotent_response("k:batch", &response(2, 200, b"ab", 1, &["alice", "bob"]), live), "recording");
    ok(store.save_idempotent_response("k:bob", &response(3, 200, b"b", 1, &["bob"]), live), "recording");
    ok(store.save_idempotent_response("k:none", &response(4, 200, b"-", 1, &[]), live), "recording");
    ok(erase(store, "alice", 5, &[]), "erasing");
    assert_eq!(ok(store.idempotent_response("k:alice", live), "looking up"), None);
    assert_eq!(ok(store.idempotent_response("k:batch", live), "looking up"), None);
    assert!(ok(store.idempotent_response("k:bob", live), "looking up").is_some());
    assert!(ok(store.idempotent_response("k:none", live), "looking up").is_some());
    // The batch's link to bob went with it: erasing bob leaves only k:none.
    ok(erase(store, "bob", 6, &[]), "erasing");
    assert_eq!(ok(store.idempotent_response("k:bob", live), "looking up"), None);
    assert!(ok(store.idempotent_response("k:none", live), "looking up").is_some());
    // A key freed by erasure can be recorded again.
    ok(store.save_idempotent_response("k:batch", &response(5, 200, b"again", 7, &[]), live), "recording again");
}
