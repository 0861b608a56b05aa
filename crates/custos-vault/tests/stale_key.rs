//! A process left running with only the old master key after another process
//! rotated the store (the attack report's F2): it must stop wrapping new data
//! keys under the old key (they would be lost with it) and say why, instead of
//! writing data nobody can read once the old key is destroyed. On SQLite, and
//! on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{CryptoError, Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, CONTROLLER, IdentityError, NewSubject, Put, Read, Vault, VaultError, bind_store};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// A vault bound to the store as a process starting up binds it.
fn open(store: TestStore, master: &str, previous: Option<&str>) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    let mut keys = Keyring::new(&MasterKey::from_hex(master)?)?;
    if let Some(p) = previous {
        keys = keys.with_previous(&MasterKey::from_hex(p)?)?;
    }
    let now = Timestamp(1_717_243_200_000_000);
    bind_store(&store, &mut keys, &policy, now)?;
    Ok(Vault::new(policy, store, keys, Arc::new(FixedClock::new(now))))
}

fn add(v: &Vault<TestStore>, id: &str) -> Result<(), VaultError> {
    v.add_subject(
        &NewSubject { id, jurisdiction: "california", region: None, birth_date: None, guardian: None },
        &By::Cli,
    )?;
    let put = Put {
        subject: id,
        category: "contact.name",
        value: "Ada Lovelace",
        source: "provided",
        purpose: "provide_offerings",
    };
    v.put(&put, &By::Cli)?;
    Ok(())
}

fn read(v: &Vault<TestStore>, id: &str) -> Result<String, VaultError> {
    let r = Read { subject: id, purpose: "provide_offerings", actor: CONTROLLER, scope: None, by: &By::Cli };
    Ok(v.get(&r, "contact.name")?.value.as_str().to_string())
}

#[test]
fn a_process_with_only_the_old_key_refuses_new_subjects_after_another_rotated_the_store() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let stale = open(storage.open()?, OLD, None)?;
    add(&stale, "before-rotation")?;
    assert!(stale.check_master_key().is_ok());

    let rotating = open(storage.open()?, NEW, Some(OLD))?;
    let done = rotating.rotate_master_key(100)?;
    assert!(done.key_check_moved && done.rewrapped == 1, "{done:?}");

    // The stale process notices: no new subject under the old key…
    match stale.check_master_key() {
        Err(VaultError::Identity(IdentityError::RotatedAway { .. })) => {}
        other => panic!("expected RotatedAway, got {other:?}"),
    }
    match add(&stale, "after-rotation") {
        Err(VaultError::Identity(IdentityError::RotatedAway { recorded, held })) => {
            assert_ne!(recorded, held);
        }
        other => panic!("a new subject under the old key must be refused, got {other:?}"),
    }
    // …and a re-wrapped key is one it does not hold (the server answers 503 for it).
    assert!(matches!(read(&stale, "before-rotation"), Err(VaultError::Crypto(CryptoError::UnknownKey))));

    // Nothing was lost: with the new key alone everything reads, and the
    // refused subject does not exist.
    let fresh = open(storage.open()?, NEW, None)?;
    assert_eq!(read(&fresh, "before-rotation")?, "Ada Lovelace");
    assert!(matches!(fresh.subject("after-rotation"), Err(VaultError::SubjectNotFound)));
    assert!(fresh.check_master_key().is_ok());
    // A process holding both keys is fine during and after the rotation.
    assert!(rotating.check_master_key().is_ok());
    add(&rotating, "with-both-keys")?;
    assert_eq!(read(&fresh, "with-both-keys")?, "Ada Lovelace");
    Ok(())
}
