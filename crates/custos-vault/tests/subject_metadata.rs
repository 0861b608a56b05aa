//! A subject's metadata at rest (issue 8, defect 5): sealed under the
//! subject's key, gone with it at erasure, and a tombstone that holds only a
//! pseudonym and a time. Each test scans what the storage holds: the SQLite
//! file and its WAL byte for byte, or (with `CUSTOS_TEST_BACKEND=postgres`)
//! every row of every table of the PostgreSQL database.

use custos_vault::By;
use std::sync::Arc;

use custos_core::decision::DenyReason;
use custos_core::policy::Policy;
use custos_core::subject::SubjectId;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_store::Tombstone;
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{CONTROLLER, NewSubject, Put, Read, Vault, VaultError};
use time::macros::{date, datetime};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");

fn now() -> Timestamp {
    Timestamp::from_datetime(datetime!(2024-06-01 12:00 UTC))
}

fn vault(store: TestStore, master: &MasterKey) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    Ok(Vault::new(policy, store, Keyring::new(master)?, Arc::new(FixedClock::new(now()))))
}

fn read<'a>(subject: &'a str, purpose: &'a str) -> Read<'a> {
    Read { subject, purpose, actor: CONTROLLER, scope: None, by: &By::Cli }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn denial(result: Result<impl std::fmt::Debug, VaultError>) -> DenyReason {
    match result {
        Err(VaultError::Denied(d)) => d.reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn regression_subject_metadata_is_sealed_at_rest() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    {
        let v = vault(storage.open()?, &master)?;
        v.add_subject(
            &NewSubject { id: "parent-7x", jurisdiction: "eea", region: None, birth_date: None, guardian: None },
            &By::Cli,
        )?;
        v.add_subject(
            &NewSubject {
                id: "kid-7x",
                jurisdiction: "eea",
                region: Some("xq-sealed-region-7"),
                birth_date: Some(date!(2012 - 05 - 05)),
                guardian: Some("parent-7x"),
            },
            &By::Cli,
        )?;
    }
    let dump = storage.dump()?;
    assert!(contains(&dump, "kid-7x"), "the scan sees what is stored (the id)");
    assert!(!contains(&dump, "2012-05-05"), "the birth date is stored in clear");
    assert!(!contains(&dump, "xq-sealed-region-7"), "the region is stored in clear");

    // Sealed, not lost: the decisions and the metadata read still see them.
    let v = vault(storage.open()?, &master)?;
    let name = Put {
        subject: "kid-7x",
        category: "contact.name",
        value: "Kid",
        source: "provided",
        purpose: "provide_offerings",
    };
    assert_eq!(
        denial(v.put_batch(std::slice::from_ref(&name), CONTROLLER, None, &By::Cli)),
        DenyReason::GuardianConsentMissing
    );
    assert_eq!(denial(v.subject_metadata(&read("kid-7x", "provide_offerings"))), DenyReason::GuardianConsentMissing);
    // The linked guardian (opened from the sealed metadata) may consent; no one else.
    assert!(v.grant_consent("kid-7x", "provide_offerings", Some("someone-else"), &By::Cli).is_err());
    v.grant_consent("kid-7x", "provide_offerings", Some("parent-7x"), &By::Cli)?;
    v.put_batch(std::slice::from_ref(&name), CONTROLLER, None, &By::Cli)?;
    assert_eq!(v.get(&read("kid-7x", "provide_offerings"), "contact.name")?.value.as_str(), "Kid");
    let s = v.subject_metadata(&read("kid-7x", "provide_offerings"))?;
    assert_eq!(s.region.as_deref(), Some("xq-sealed-region-7"));
    assert_eq!(s.birth_date, Some(date!(2012 - 05 - 05)));
    assert_eq!(s.guardian.as_ref().map(SubjectId::as_str), Some("parent-7x"));
    // Without a decision, nothing of it is opened.
    let plain = v.subject("kid-7x")?;
    assert_eq!((plain.region, plain.birth_date, plain.guardian), (None, None, None));
    Ok(())
}

#[test]
fn regression_tombstone_holds_no_metadata() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    let id = "tomb-subject-7x";
    let pseudonym;
    {
        let v = vault(storage.open()?, &master)?;
        pseudonym = v.pseudonym(id);
        v.add_subject(
            &NewSubject {
                id,
                jurisdiction: "eea",
                region: Some("xq-tomb-region-7"),
                birth_date: Some(date!(2001 - 02 - 03)),
                guardian: None,
            },
            &By::Cli,
        )?;
        v.put_batch(
            &[Put {
                subject: id,
                category: "contact.name",
                value: "Tomb",
                source: "provided",
                purpose: "provide_offerings",
            }],
            CONTROLLER,
            None,
            &By::Cli,
        )?;
        assert!(v.subject_metadata(&read(id, "provide_offerings"))?.region.is_some());
        v.erase(id, &By::Cli)?;
        let sid = SubjectId::parse(id)?;
        assert_eq!(v.store().subject(&sid)?, None, "the subject row (key, metadata, jurisdiction, state) is gone");
        assert_eq!(
            v.store().tombstone(&pseudonym)?,
            Some(Tombstone { pseudonym: pseudonym.clone(), erased_at: now() })
        );
        assert_eq!(denial(v.subject_metadata(&read(id, "provide_offerings"))), DenyReason::Erased);
        let s = v.subject(id)?;
        assert_eq!(s.erased_at, Some(now()));
        assert_eq!((s.region, s.birth_date, s.guardian, s.jurisdiction.as_str()), (None, None, None, ""));
        assert!(matches!(
            v.add_subject(
                &NewSubject { id, jurisdiction: "eea", region: None, birth_date: None, guardian: None },
                &By::Cli
            ),
            Err(VaultError::SubjectExists)
        ));
    }
    let dump = storage.dump()?;
    assert!(contains(&dump, &pseudonym), "the scan sees the tombstone");
    for clear in ["2001-02-03", "xq-tomb-region-7"] {
        assert!(!contains(&dump, clear), "`{clear}` is still stored after erasure");
    }
    Ok(())
}

#[test]
fn regression_email_like_subject_id_warns_and_tombstone_is_pseudonymous() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    let id = "erin.tomb+7x@example.org";
    assert_eq!(SubjectId::parse(id)?.warnings().len(), 1, "an email-like id warns");
    {
        let v = vault(storage.open()?, &master)?;
        v.add_subject(
            &NewSubject { id, jurisdiction: "eea", region: Some("xq-r"), birth_date: None, guardian: None },
            &By::Cli,
        )?;
        v.put_batch(
            &[Put {
                subject: id,
                category: "contact.name",
                value: "Erin",
                source: "provided",
                purpose: "provide_offerings",
            }],
            CONTROLLER,
            None,
            &By::Cli,
        )?;
        v.erase(id, &By::Cli)?;
        assert_eq!(denial(v.get(&read(id, "provide_offerings"), "contact.name")), DenyReason::Erased);
        assert!(v.store().tombstone(&v.pseudonym(id))?.is_some(), "the tombstone is kept under the pseudonym");
    }
    // Closed: on SQLite the WAL is checkpointed into the file and removed.
    let dump = storage.dump()?;
    assert!(!contains(&dump, id), "the email address is still stored after erasure");
    assert!(!contains(&dump, "erin.tomb"), "part of the email address is still stored after erasure");
    Ok(())
}

/// Rows an older version left (metadata in clear columns, an erased row kept
/// under its id) are sealed and turned into a tombstone when the vault opens
/// the store, and nothing of them stays in clear.
#[test]
fn metadata_stored_in_clear_by_an_older_version_is_sealed_at_open() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    let gone = "old-gone.7x@example.org";
    {
        let v = vault(storage.open()?, &master)?;
        for id in ["parent-old", "kid-old", gone] {
            v.add_subject(
                &NewSubject { id, jurisdiction: "eea", region: None, birth_date: None, guardian: None },
                &By::Cli,
            )?;
        }
    }
    storage.execute(
        "UPDATE subjects SET region = 'xq-old-region', birth_date = '2012-05-05', guardian = 'parent-old' \
         WHERE id = 'kid-old'",
    )?;
    storage.execute(&format!("UPDATE subjects SET wrapped_key = NULL, erased_at = 5 WHERE id = '{gone}'"))?;
    let v = vault(storage.open()?, &master)?;
    assert_eq!(v.seal_legacy_subjects()?, 2);
    assert_eq!(v.seal_legacy_subjects()?, 0, "nothing is left to upgrade");
    // The child's metadata is sealed and still decides: the guardian rule applies.
    assert_eq!(denial(v.subject_metadata(&read("kid-old", "provide_offerings"))), DenyReason::GuardianConsentMissing);
    v.grant_consent("kid-old", "provide_offerings", Some("parent-old"), &By::Cli)?;
    let kid = v.subject_metadata(&read("kid-old", "provide_offerings"))?;
    assert_eq!(kid.region.as_deref(), Some("xq-old-region"));
    assert_eq!(kid.birth_date, Some(date!(2012 - 05 - 05)));
    // The erased row became a tombstone under the pseudonym.
    assert!(v.store().tombstone(&v.pseudonym(gone))?.is_some());
    assert_eq!(v.subject(gone)?.erased_at, Some(Timestamp(5)));
    drop(v);
    let dump = storage.dump()?;
    for clear in ["xq-old-region", "2012-05-05", gone] {
        assert!(!contains(&dump, clear), "`{clear}` is still stored in clear");
    }
    Ok(())
}
