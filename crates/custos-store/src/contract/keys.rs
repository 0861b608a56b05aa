//! Contract cases for API keys: creation, lookup by hash, listing, revocation.

use super::*;

/// Every field of an API key survives a round trip, and the key is found by its hash.
pub fn an_api_key_round_trips_every_field_and_is_found_by_its_hash(store: &dyn Store) {
    let before = head(store);
    let service = service_key("key_service", 1, 1);
    let events = key_created(&service.id, 1);
    ok(store.create_api_key(&service, &events), "creating a service key");
    assert_appended(store, before, &events, "create_api_key");
    let admin = admin_key("key_admin", 2, 2);
    create_key(store, &admin);
    let revoked = ApiKeyRecord { revoked_at: Some(at(4)), ..service_key("key_revoked", 3, 3) };
    create_key(store, &revoked);
    assert_eq!(key_by_hash(store, &service.secret_hash), Some(service), "a service key keeps every field");
    assert_eq!(key_by_hash(store, &admin.secret_hash), Some(admin), "empty optional fields stay empty");
    assert_eq!(key_by_hash(store, &revoked.secret_hash), Some(revoked), "a revoked key is found too");
}

/// A hash no key has finds nothing, in an empty store and in one with keys.
pub fn an_unknown_hash_finds_no_api_key(store: &dyn Store) {
    assert_eq!(key_by_hash(store, &hash_of(1)), None);
    assert!(ok(store.api_keys(), "listing API keys").is_empty());
    create_key(store, &service_key("key_a", 1, 1));
    assert_eq!(key_by_hash(store, &hash_of(2)), None);
    assert_eq!(key_by_hash(store, &[0; 32]), None);
}

/// A second key with a taken id or a taken hash fails with `KeyExists`,
/// changes nothing and appends nothing; the chain goes on afterwards.
pub fn creating_an_api_key_with_a_taken_id_or_hash_fails_and_appends_nothing(store: &dyn Store) {
    let original = service_key("key_a", 1, 1);
    create_key(store, &original);
    let before = head(store);
    let same_id = admin_key("key_a", 2, 2);
    let result = store.create_api_key(&same_id, &key_created("key_a", 2));
    assert!(matches!(result, Err(StoreError::KeyExists)), "a taken id: expected KeyExists, got {result:?}");
    let same_hash = admin_key("key_b", 1, 2);
    let result = store.create_api_key(&same_hash, &key_created("key_b", 2));
    assert!(matches!(result, Err(StoreError::KeyExists)), "a taken hash: expected KeyExists, got {result:?}");
    assert_unchanged(store, before, "a key that exists");
    assert_eq!(ok(store.api_keys(), "listing API keys"), std::slice::from_ref(&original), "no key was added");
    assert_eq!(key_by_hash(store, &hash_of(2)), None, "the refused key is not stored");
    assert_eq!(key_by_hash(store, &original.secret_hash), Some(original), "the first key is untouched");
    let next = key_created("key_b", 3);
    ok(store.create_api_key(&admin_key("key_b", 2, 3), &next), "creating a key after the failures");
    assert_appended(store, before, &next, "create_api_key after failures");
    verify_chain(store);
}

/// `api_keys` lists every key, revoked or not, oldest first.
pub fn api_keys_lists_oldest_first(store: &dyn Store) {
    // Created out of order, and with ids that do not sort by age.
    let keys = [service_key("key_c", 3, 30), admin_key("key_a", 1, 10), admin_key("key_z", 4, 20)];
    for key in &keys {
        create_key(store, key);
    }
    ok(store.revoke_api_key("key_z", at(40), &key_revoked("key_z", 40)), "revoking");
    let listed = ok(store.api_keys(), "listing API keys");
    let ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["key_a", "key_z", "key_c"], "oldest first");
    assert_eq!(listed[0], keys[1]);
    assert_eq!(listed[1], ApiKeyRecord { revoked_at: Some(at(40)), ..keys[2].clone() });
    assert_eq!(listed[2], keys[0]);
}

/// Revoking sets `revoked_at` and appends the events; a second revocation
/// returns false, keeps the first time and appends nothing.
pub fn revoking_an_api_key_sets_revoked_at_and_audits_once(store: &dyn Store) {
    let key = service_key("key_a", 1, 1);
    let other = admin_key("key_b", 2, 2);
    create_key(store, &key);
    create_key(store, &other);
    let before = head(store);
    let events = key_revoked("key_a", 5);
    assert!(ok(store.revoke_api_key("key_a", at(5), &events), "revoking"), "the first revocation reports a change");
    assert_appended(store, before, &events, "revoke_api_key");
    let revoked = ApiKeyRecord { revoked_at: Some(at(5)), ..key };
    assert_eq!(key_by_hash(store, &revoked.secret_hash), Some(revoked.clone()), "only revoked_at changes");
    assert_eq!(key_by_hash(store, &other.secret_hash), Some(other), "other keys stay valid");

    let before = head(store);
    let again = ok(store.revoke_api_key("key_a", at(6), &key_revoked("key_a", 6)), "revoking again");
    assert!(!again, "a second revocation reports no change");
    assert_eq!(key_by_hash(store, &revoked.secret_hash), Some(revoked), "the first revocation time stays");
    assert_unchanged(store, before, "a second revocation");
    verify_chain(store);
}

/// Revoking a key that does not exist returns false and appends nothing.
pub fn revoking_an_unknown_api_key_returns_false_and_appends_nothing(store: &dyn Store) {
    create_key(store, &service_key("key_a", 1, 1));
    let before = head(store);
    let revoked =
        ok(store.revoke_api_key("key_unknown", at(5), &key_revoked("key_unknown", 5)), "revoking an unknown key");
    assert!(!revoked, "revoking an unknown key reports no change");
    assert_unchanged(store, before, "revoking an unknown key");
    assert_eq!(key_by_hash(store, &hash_of(1)).and_then(|k| k.revoked_at), None, "other keys stay valid");
}
