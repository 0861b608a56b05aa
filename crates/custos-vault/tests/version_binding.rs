//! Item values bound to their versions (issue 8, defect 10): an old
//! version's ciphertext copied into the current row must not open, and the
//! values an older build sealed without the version are re-sealed when the
//! store is opened, audited by count, after which a legacy value is refused.
//! Both tests run on SQLite and (with `CUSTOS_TEST_BACKEND=postgres`) on
//! PostgreSQL, tampering with the rows directly as someone who can write the
//! database would.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::subject::SubjectId;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{ITEM_FORMAT_BOUND, Keyring, MasterKey, item_context};
use custos_store::{ItemKey, NewItem, Reseal};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, CONTROLLER, NewSubject, Put, Read, Vault, VaultError};
use time::macros::datetime;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const EMAIL: &str = "contact.email";

fn now() -> Timestamp {
    Timestamp::from_datetime(datetime!(2024-06-01 12:00 UTC))
}

fn vault(store: TestStore, master: &MasterKey) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    Ok(Vault::new(policy, store, Keyring::new(master)?, Arc::new(FixedClock::new(now()))))
}

fn read(subject: &str) -> Read<'_> {
    Read { subject, purpose: "provide_offerings", actor: CONTROLLER, scope: None, by: &By::Cli }
}

fn add(v: &Vault<TestStore>, id: &str) -> TestResult {
    v.add_subject(&NewSubject { id, jurisdiction: "eea", region: None, birth_date: None, guardian: None }, &By::Cli)?;
    Ok(())
}

fn put(v: &Vault<TestStore>, subject: &str, value: &str) -> TestResult<u32> {
    let p = Put { subject, category: EMAIL, value, source: "provided", purpose: "provide_offerings" };
    Ok(v.put(&p, &By::Cli)?)
}

fn refused(result: Result<impl std::fmt::Debug, VaultError>, what: &str) {
    match result {
        Err(VaultError::Crypto(_)) => {}
        other => panic!("{what}: expected the value to be refused as not authentic, got {other:?}"),
    }
}

fn stored(v: &Vault<TestStore>, subject: &str) -> TestResult<Vec<Vec<u8>>> {
    let id = SubjectId::parse(subject)?;
    Ok(v.store().history(&id, EMAIL)?.into_iter().map(|i| i.sealed).collect())
}

#[test]
fn an_old_versions_ciphertext_pasted_into_the_current_row_does_not_open() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    let v = vault(storage.open()?, &master)?;
    add(&v, "paste-7x")?;
    assert_eq!(put(&v, "paste-7x", "old.7x@example.org")?, 1);
    assert_eq!(put(&v, "paste-7x", "new.7x@example.org")?, 2);
    assert_eq!(&*v.get(&read("paste-7x"), EMAIL)?.value, "new.7x@example.org");

    // Someone who can write the database copies version 1's ciphertext over version 2's.
    storage.execute(
        "UPDATE items SET sealed = (SELECT o.sealed FROM items o \
           WHERE o.subject = 'paste-7x' AND o.category = 'contact.email' AND o.version = 1) \
         WHERE subject = 'paste-7x' AND category = 'contact.email' AND version = 2",
    )?;
    let h = stored(&v, "paste-7x")?;
    assert_eq!(h[0], h[1], "the old ciphertext is now in the current row");
    refused(v.get(&read("paste-7x"), EMAIL), "the current read");
    refused(v.history(&read("paste-7x"), EMAIL), "the history read");
    Ok(())
}

#[test]
fn legacy_values_are_resealed_for_their_version_audited_and_a_legacy_value_is_refused_afterwards() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let master = MasterKey::generate()?;
    let v = vault(storage.open()?, &master)?;
    for id in ["legacy-a", "legacy-b"] {
        add(&v, id)?;
    }
    // Written as an older build did: sealed for subject and category only.
    let keys = Keyring::new(&master)?;
    let mut legacy = Vec::new();
    for (subject, values) in
        [("legacy-a", &["a-old.7x@example.org", "a-new.7x@example.org"][..]), ("legacy-b", &["b.7x@example.org"][..])]
    {
        let id = SubjectId::parse(subject)?;
        let record = v.store().subjects(std::slice::from_ref(&id))?.remove(0);
        let dk = keys.unwrap_data_key(subject, record.wrapped_key.as_deref().ok_or("no key")?)?;
        for (n, value) in values.iter().enumerate() {
            let sealed = dk.seal(&item_context(subject, EMAIL), value.as_bytes())?;
            let item = NewItem {
                subject: id.clone(),
                category: EMAIL.into(),
                source: "provided".into(),
                purpose: "provide_offerings".into(),
                collected_at: Timestamp(now().0 + n as i64),
                notice_version: "2020-01-24".into(),
                token: None,
                lookup: None,
            };
            v.store().put_items(&[item], &|_, _| Ok(sealed.clone()), &[])?;
            legacy.push(sealed);
        }
    }
    // Until re-sealed, a legacy value is refused (it could be any version's).
    refused(v.get(&read("legacy-a"), EMAIL), "a legacy value before re-sealing");

    // Interrupted earlier: one value was re-sealed already; the run picks up the rest.
    let a = SubjectId::parse("legacy-a")?;
    let dk = keys.unwrap_data_key(
        "legacy-a",
        v.store().subjects(std::slice::from_ref(&a))?[0].wrapped_key.as_deref().ok_or("no key")?,
    )?;
    let first = ItemKey { subject: a.clone(), category: EMAIL.into(), version: 1 };
    let bound = dk.seal_item("legacy-a", EMAIL, 1, b"a-old.7x@example.org")?;
    assert_eq!(v.store().reseal_items(&[Reseal { key: first, old: legacy[0].clone(), new: bound }], &[])?, 1);

    let before = v.store().audit_head()?.seq;
    let done = v.bind_item_versions(1, &By::Cli)?;
    assert_eq!((done.resealed, done.batches, done.unreadable, done.already_bound), (2, 2, 0, false));
    // Readable, every version, each now in the bound format.
    assert_eq!(&*v.get(&read("legacy-a"), EMAIL)?.value, "a-new.7x@example.org");
    assert_eq!(&*v.get(&read("legacy-b"), EMAIL)?.value, "b.7x@example.org");
    let history: Vec<String> = v.history(&read("legacy-a"), EMAIL)?.into_iter().map(|r| r.value.to_string()).collect();
    assert_eq!(history, ["a-new.7x@example.org", "a-old.7x@example.org"]);
    for subject in ["legacy-a", "legacy-b"] {
        assert!(stored(&v, subject)?.iter().all(|s| s[0] == ITEM_FORMAT_BOUND), "{subject}'s values are re-sealed");
    }
    // Audited by count, without values: one entry per batch, then the mark.
    let entries = v.store().audit_entries(before, 100)?;
    let bodies: Vec<&str> = entries.iter().map(|e| e.body.as_str()).collect();
    let resealed = bodies.iter().filter(|b| b.contains("\"items_resealed\"") && b.contains("\"count\":1")).count();
    assert_eq!(resealed, 2, "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("\"items_bound\"") && b.contains("\"count\":2")), "{bodies:?}");
    assert!(bodies.iter().all(|b| !b.contains("7x@example.org") && !b.contains("legacy-")), "{bodies:?}");
    assert!(v.store().items_bound()?);
    // A second open scans nothing and appends nothing.
    let seq = v.store().audit_head()?.seq;
    assert!(v.bind_item_versions(1, &By::Cli)?.already_bound);
    assert_eq!(v.store().audit_head()?.seq, seq);

    // After migration, a legacy ciphertext pasted into the current row is refused:
    // the old version's, and even the current version's own legacy one.
    let current = ItemKey { subject: a.clone(), category: EMAIL.into(), version: 2 };
    for (n, paste) in [legacy[0].clone(), legacy[1].clone()].into_iter().enumerate() {
        let now_stored = stored(&v, "legacy-a")?.remove(0);
        let swap = Reseal { key: current.clone(), old: now_stored, new: paste };
        assert_eq!(v.store().reseal_items(&[swap], &[])?, 1);
        refused(v.get(&read("legacy-a"), EMAIL), &format!("legacy paste {n}"));
    }
    Ok(())
}
