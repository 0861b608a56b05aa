//! Finding a person by a lookup identifier without decrypting anything
//! (issue 9, item 6): the blind index of the categories the policy marks
//! `lookup`. On SQLite, and on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

use std::sync::Arc;

use custos_core::policy::Policy;
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, InputError, NewSubject, Put, Vault, VaultError, bind_store};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
const KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const OTHER_KEY: &str = "4444444444444444444444444444444444444444444444444444444444444444";
const EMAIL: &str = "Wilhelmina.Lookup@Example.ORG ";
const NORMALISED: &str = "wilhelmina.lookup@example.org";

fn vault(store: TestStore, key: &str, bind: bool) -> TestResult<Vault<TestStore>> {
    let policy = Arc::new(Policy::from_yaml(POLICY)?);
    let mut keys = Keyring::new(&MasterKey::from_hex(key)?)?;
    let now = Timestamp(1_717_243_200_000_000);
    if bind {
        bind_store(&store, &mut keys, &policy, now)?;
    }
    Ok(Vault::new(policy, store, keys, Arc::new(FixedClock::new(now))))
}

fn add(v: &Vault<TestStore>, id: &str, values: &[(&str, &str)]) -> TestResult {
    v.add_subject(&NewSubject { id, jurisdiction: "eea", region: None, birth_date: None, guardian: None }, &By::Cli)?;
    let puts: Vec<Put<'_>> = values
        .iter()
        .map(|(category, value)| {
            // The example's customer ids are collected automatically; the rest are provided.
            let source = if *category == "account.customer_id" { "automatic" } else { "provided" };
            Put { subject: id, category, value, source, purpose: "provide_offerings" }
        })
        .collect();
    v.put_batch(&puts, custos_vault::CONTROLLER, None, &By::Cli)?;
    Ok(())
}

#[test]
fn a_person_is_found_by_email_phone_or_customer_id_in_any_usual_spelling() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let v = vault(storage.open()?, KEY, true)?;
    add(&v, "wil", &[("contact.email", EMAIL), ("contact.phone", "+1 (206) 555-0100")])?;
    add(&v, "zed", &[("contact.email", "zed@example.org"), ("contact.phone", "206.555.0199")])?;
    for spelling in [NORMALISED, "WILHELMINA.LOOKUP@EXAMPLE.ORG", "  wilhelmina.lookup@example.org\t"] {
        assert_eq!(v.find_subjects("contact.email", spelling)?, ["wil"], "{spelling:?}");
    }
    assert_eq!(v.find_subjects("contact.phone", "+12065550100")?, ["wil"]);
    assert_eq!(v.find_subjects("contact.phone", "206-555-0199")?, ["zed"]);
    assert!(v.find_subjects("contact.email", "nobody@example.org")?.is_empty());
    // Two people sharing an address are both found.
    add(&v, "amy", &[("contact.email", "zed@example.org")])?;
    assert_eq!(v.find_subjects("contact.email", "Zed@example.org")?, ["amy", "zed"]);
    // A category that is not a lookup identifier, or a value with nothing in it, is refused.
    assert!(matches!(
        v.find_subjects("contact.name", "Wilhelmina"),
        Err(VaultError::Input(InputError::NotALookupCategory { .. }))
    ));
    assert!(matches!(
        v.find_subjects("contact.phone", " ( ) - "),
        Err(VaultError::Input(InputError::EmptyLookupValue))
    ));
    assert!(matches!(v.find_subjects("no.such", "x"), Err(VaultError::Input(InputError::UnknownId { .. }))));
    Ok(())
}

#[test]
fn the_latest_value_is_the_one_found_and_an_erased_person_is_found_by_none() -> TestResult {
    let storage = TestStorage::reopenable()?;
    let v = vault(storage.open()?, KEY, true)?;
    add(&v, "wil", &[("contact.email", EMAIL)])?;
    v.put(
        &Put {
            subject: "wil",
            category: "contact.email",
            value: "wil.new@example.org",
            source: "provided",
            purpose: "provide_offerings",
        },
        &By::Cli,
    )?;
    assert!(v.find_subjects("contact.email", NORMALISED)?.is_empty(), "the old address no longer finds her");
    assert_eq!(v.find_subjects("contact.email", "wil.new@example.org")?, ["wil"]);
    v.erase("wil", &By::Cli)?;
    assert!(v.find_subjects("contact.email", "wil.new@example.org")?.is_empty());
    Ok(())
}

#[test]
fn the_index_holds_no_value_and_is_useless_without_the_master_key() -> TestResult {
    let storage = TestStorage::reopenable()?;
    {
        let v = vault(storage.open()?, KEY, true)?;
        add(&v, "wil", &[("contact.email", EMAIL), ("account.customer_id", "CUST-7781-LOOKUP")])?;
        assert_eq!(v.find_subjects("account.customer_id", " CUST-7781-LOOKUP ")?, ["wil"]);
        assert!(v.find_subjects("account.customer_id", "cust-7781-lookup")?.is_empty(), "exact: case counts");
    }
    let at_rest = storage.dump()?;
    for value in [NORMALISED, "CUST-7781-LOOKUP"] {
        assert!(!at_rest.windows(value.len()).any(|w| w == value.as_bytes()), "{value} is stored in clear");
    }
    // Someone with the database but another key computes other hashes: nobody is found.
    let thief = vault(storage.open()?, OTHER_KEY, false)?;
    assert!(thief.find_subjects("contact.email", NORMALISED)?.is_empty());
    Ok(())
}
