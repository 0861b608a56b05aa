//! API keys: creation checked against the policy, authentication, revocation.
//! On SQLite, or on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres` (see `custos_test_support`).

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::time::SystemClock;
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::access::Role;
use custos_vault::{By, CONTROLLER, Vault, VaultError};

/// A vault over a fresh store, and the storage to keep until the test ends.
fn vault() -> (Vault<TestStore>, TestStorage) {
    let policy = Policy::from_yaml(include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml"))
        .unwrap_or_else(|e| panic!("the bundled policy loads: {e}"));
    let master = MasterKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let keys = Keyring::new(&master).unwrap_or_else(|e| panic!("{e}"));
    let storage = TestStorage::fresh().unwrap_or_else(|e| panic!("{e}"));
    let store = storage.open().unwrap_or_else(|e| panic!("{e}"));
    (Vault::new(Arc::new(policy), store, keys, Arc::new(SystemClock)), storage)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_admin_key_authenticates_as_the_controller_and_only_its_hash_is_stored() {
    let (v, _storage) = vault();
    let key = v.create_api_key(Role::Admin, None, &[], &By::Cli).expect("create");
    assert!(key.secret.starts_with(&format!("cst_{}_", key.id)));
    let p = v.authenticate(&key.secret).expect("auth").expect("known key");
    assert_eq!((p.role, p.actor.as_str(), p.key_id.as_str()), (Role::Admin, CONTROLLER, key.id.as_str()));
    assert!(p.scope.is_none(), "an admin key is not limited by a key scope");
    let stored = v.api_keys().expect("list");
    assert_eq!(stored.len(), 1);
    assert_ne!(&stored[0].secret_hash[..], key.secret.as_bytes());
    let entries = v.store().audit_entries(0, 10).expect("audit");
    assert!(entries.iter().any(|e| e.body.contains("api_key_created") && e.body.contains(&key.id)));
    assert!(entries.iter().all(|e| !e.body.contains(key.secret.as_str())));
}

#[test]
fn a_service_key_is_bound_to_its_recipient_and_purposes() {
    let (v, _storage) = vault();
    let key = v
        .create_api_key(Role::Service, Some("paymenttech"), &strings(&["provide_offerings"]), &By::Cli)
        .expect("create");
    let p = v.authenticate(&key.secret).expect("auth").expect("known key");
    assert_eq!(p.actor, "paymenttech");
    let scope = p.scope.as_ref().expect("a service key has a scope");
    assert_eq!(scope.key_id, key.id);
    let bound = |purpose: &str| scope.purposes.contains(v.policy().purpose(purpose).expect("declared"));
    assert!(bound("provide_offerings"));
    assert!(!bound("fraud_prevention"), "only the purposes the key was given");
    assert!(!bound("marketing"));
}

#[test]
fn a_service_key_must_match_the_policy() {
    let (v, _storage) = vault();
    let cases: [(Option<&str>, &[&str], &str); 5] = [
        (None, &["marketing"], "--actor"),
        (Some("nobody"), &["marketing"], "unknown recipient"),
        (Some("marketo"), &[], "--purposes"),
        (Some("marketo"), &["world_domination"], "unknown purpose"),
        (Some("marketo"), &["fraud_prevention"], "not declared for purpose"),
    ];
    for (actor, purposes, msg) in cases {
        match v.create_api_key(Role::Service, actor, &strings(purposes), &By::Cli) {
            Err(VaultError::Input(e)) => {
                let m = e.to_string();
                assert!(m.contains(msg) && !m.contains("nobody") && !m.contains("world_domination"), "{m}");
            }
            other => panic!("{actor:?} {purposes:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(v.create_api_key(Role::Auditor, Some("marketo"), &[], &By::Cli), Err(VaultError::Input(_))));
    assert!(v.api_keys().expect("list").is_empty(), "refused keys are not stored");
}

#[test]
fn unknown_malformed_and_revoked_keys_do_not_authenticate() {
    let (v, _storage) = vault();
    let key = v.create_api_key(Role::Auditor, None, &[], &By::Cli).expect("create");
    assert!(v.authenticate("").expect("auth").is_none());
    assert!(v.authenticate("Bearer something").expect("auth").is_none());
    let mut forged = key.secret.to_string();
    forged.pop();
    forged.push(if key.secret.ends_with('0') { '1' } else { '0' });
    assert!(v.authenticate(&forged).expect("auth").is_none(), "one changed character is another key");
    assert!(v.revoke_api_key(&key.id, &By::Cli).expect("revoke"));
    assert!(v.authenticate(&key.secret).expect("auth").is_none());
    assert!(!v.revoke_api_key(&key.id, &By::Cli).expect("second revoke"), "revoking twice reports nothing to do");
    assert!(!v.revoke_api_key("nosuchid", &By::Cli).expect("unknown revoke"));
}
