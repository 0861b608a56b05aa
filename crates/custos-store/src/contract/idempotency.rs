//! Contract cases for idempotency records.

use super::*;

/// A recorded response comes back whole; a second one for the same key fails
/// with `IdempotencyKeyExists` and leaves the first. Keys are exact strings.
pub fn an_idempotent_response_round_trips_and_cannot_be_recorded_twice(store: &dyn Store) {
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), None);
    let before = head(store);
    let first = IdempotentResponse {
        fingerprint: hash_of(1),
        status: 201,
        body: b"{\"version\":1}\n\0\xff".to_vec(),
        created_at: at(1),
    };
    ok(store.save_idempotent_response("key_a:retry-1", &first), "recording a response");
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), Some(first.clone()));

    let second = IdempotentResponse { fingerprint: hash_of(2), status: 409, body: Vec::new(), created_at: at(2) };
    let result = store.save_idempotent_response("key_a:retry-1", &second);
    assert!(matches!(result, Err(StoreError::IdempotencyKeyExists)), "expected IdempotencyKeyExists, got {result:?}");
    assert_eq!(
        ok(store.idempotent_response("key_a:retry-1"), "looking up a response"),
        Some(first.clone()),
        "the first response stays"
    );

    // Another key (here: another caller's scope) is independent, and an empty body is kept as empty.
    ok(store.save_idempotent_response("key_b:retry-1", &second), "recording another key's response");
    assert_eq!(ok(store.idempotent_response("key_b:retry-1"), "looking up a response"), Some(second));
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), Some(first));
    assert_eq!(ok(store.idempotent_response("key_a:retry-2"), "looking up a response"), None);
    assert_unchanged(store, before, "recording idempotent responses");
}
