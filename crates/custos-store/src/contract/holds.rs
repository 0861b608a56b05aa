//! Contract cases for legal holds and what they keep through an erasure.

use time::{Date, Month};

use crate::{HeldCopy, HeldItem, HoldRecord, KeyCheck};

use super::identity::{check, identity, identity_event};
use super::*;

fn day(d: u8) -> Date {
    match Date::from_calendar_date(2027, Month::June, d) {
        Ok(day) => day,
        Err(e) => panic!("test day {d}: {e}"),
    }
}

/// A hold with every field recognizable, placed at `second`.
fn hold(id: &str, subject: &str, categories: &[&str], second: i64) -> HoldRecord {
    HoldRecord {
        id: id.into(),
        subject: pseudo(subject),
        kind: "litigation".into(),
        categories: categories.iter().map(|c| (*c).to_string()).collect(),
        placed_at: at(second),
        until: Some(day(30)),
        released_at: None,
        sealed: Some(format!("sealed-hold|{id}|\0\u{ff}").into_bytes()),
    }
}

fn hold_event(action: AuditAction, subject: &str, second: i64) -> [AuditEvent; 1] {
    [event(action, Some(subject), second)]
}

fn place(store: &dyn Store, record: &HoldRecord) {
    let subject = record.subject.trim_start_matches("pseudo:").to_string();
    ok(
        store.place_hold(record, &hold_event(AuditAction::RestrictionSet, &subject, 1), &HeldKeys::UNKEYED),
        "placing a legal hold",
    );
}

fn load(store: &dyn Store, id: &str) -> Option<HoldRecord> {
    ok(store.hold(id), "reading a legal hold")
}

fn kept(store: &dyn Store, hold: &str) -> Vec<HeldItem> {
    ok(store.held_items(hold), "reading held items")
}

/// The copy the vault would make of a stored version for `hold`: its
/// metadata, and its value re-sealed under the holds' key.
fn copy(hold: &str, stored: &StoredItem) -> HeldItem {
    let mut sealed = b"held|".to_vec();
    sealed.extend_from_slice(&stored.sealed);
    sealed.extend_from_slice(&[0, 255]);
    HeldItem {
        hold: hold.into(),
        category: stored.category.clone(),
        version: stored.version,
        source: stored.source.clone(),
        purpose: stored.purpose.clone(),
        collected_at: stored.collected_at,
        notice_version: stored.notice_version.clone(),
        sealed,
    }
}

/// Every version of `name`'s `category`, copied for `hold`, oldest first.
fn copies(store: &dyn Store, hold: &str, name: &str, category: &str) -> Vec<HeldItem> {
    let mut all: Vec<HeldItem> = history(store, name, category).iter().map(|i| copy(hold, i)).collect();
    all.reverse();
    all
}

/// Alice with two versions of her email, a name and a phone.
fn alice_with_items(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1), item("alice", "name", 1), item("alice", "phone", 1)]);
    put(store, &[item("alice", "email", 2)]);
}

fn erase_with(store: &dyn Store, name: &str, held: &HeldCopy) -> Result<u64, StoreError> {
    store.erase_subject(&id(name), &pseudo(name), at(9), held, &[event(AuditAction::SubjectErased, Some(name), 9)])
}

/// Asserts that a refused erasure of alice changed nothing: she is live with
/// every item version, no tombstone, nothing kept by `holds`, no audit entry.
fn assert_alice_untouched(store: &dyn Store, before: ChainHead, holds: &[&str], what: &str) {
    assert!(ok(store.subject(&id("alice")), "loading alice").is_some(), "{what}: alice is still live");
    assert_eq!(ok(store.tombstone(&pseudo("alice")), "looking up a tombstone"), None, "{what}: no tombstone");
    assert_eq!(
        versions(&current(store, "alice")),
        [("email".to_string(), 2), ("name".to_string(), 1), ("phone".to_string(), 1)],
        "{what}: every current item stays"
    );
    assert_eq!(history(store, "alice", "email").len(), 2, "{what}: every version stays");
    for hold in holds {
        assert!(kept(store, hold).is_empty(), "{what}: hold `{hold}` keeps nothing");
    }
    assert_unchanged(store, before, what);
}

/// A placed hold reads back with every field, byte for byte, with its audit
/// event; a subject's holds are listed by placement time then id, active and
/// released alike, and no other subject's.
pub fn a_placed_hold_reads_back_and_a_subjects_holds_are_listed_in_order(store: &dyn Store) {
    assert_eq!(load(store, "lh_1"), None, "nothing before placing");
    let before = head(store);
    let first = hold("lh_1", "alice", &["email", "name"], 5);
    place(store, &first);
    assert_eq!(load(store, "lh_1"), Some(first.clone()), "every field round-trips");
    assert_appended(store, before, &hold_event(AuditAction::RestrictionSet, "alice", 1), "placing a hold");
    let bare = HoldRecord { until: None, sealed: None, categories: Vec::new(), ..hold("lh_0", "alice", &[], 5) };
    place(store, &bare);
    assert_eq!(load(store, "lh_0"), Some(bare.clone()), "a hold without review day, details or categories");
    let released = HoldRecord { released_at: Some(at(4)), ..hold("lh_2", "alice", &["phone"], 2) };
    place(store, &released);
    place(store, &hold("lh_3", "bob", &["email"], 1));
    let listed = ok(store.holds(&pseudo("alice")), "listing alice's holds");
    assert_eq!(listed, [released, bare, first], "by placed_at, then id; released ones too");
    assert!(ok(store.holds(&pseudo("carol")), "listing carol's holds").is_empty());
    verify_chain(store);
}

/// A hold whose id is taken fails with `HoldExists` and writes nothing.
pub fn placing_a_hold_with_a_taken_id_fails_and_writes_nothing(store: &dyn Store) {
    let first = hold("lh_1", "alice", &["email"], 1);
    place(store, &first);
    let before = head(store);
    let again = store.place_hold(
        &hold("lh_1", "bob", &["name"], 2),
        &hold_event(AuditAction::RestrictionSet, "bob", 2),
        &HeldKeys::UNKEYED,
    );
    assert!(matches!(again, Err(StoreError::HoldExists)), "expected HoldExists, got {again:?}");
    assert_eq!(load(store, "lh_1"), Some(first), "the first hold stays");
    assert!(ok(store.holds(&pseudo("bob")), "listing bob's holds").is_empty());
    assert_unchanged(store, before, "a taken hold id");
}

/// An erasure with a held copy matching the stored versions of the held
/// categories keeps exactly those copies, byte for byte, each under its
/// hold, and erases the subject as without one.
pub fn erasure_keeps_exactly_the_held_copy_and_erases_the_subject(store: &dyn Store) {
    alice_with_items(store);
    place(store, &hold("lh_mail", "alice", &["email"], 1));
    place(store, &hold("lh_both", "alice", &["email", "name"], 2));
    let mut mail = copies(store, "lh_mail", "alice", "email");
    let mut both = copies(store, "lh_both", "alice", "name");
    both.extend(copies(store, "lh_both", "alice", "email"));
    let held = HeldCopy {
        categories: vec!["name".into(), "email".into()],
        items: both.iter().chain(&mail).cloned().collect(),
    };
    let before = head(store);
    let destroyed = ok(erase_with(store, "alice", &held), "erasing with a held copy");
    assert_eq!(destroyed, 4, "every stored version is destroyed from the subject's items");
    assert_eq!(ok(store.subject(&id("alice")), "loading alice"), None, "alice is erased");
    assert!(ok(store.tombstone(&pseudo("alice")), "looking up the tombstone").is_some());
    assert!(current(store, "alice").is_empty() && history(store, "alice", "email").is_empty());
    assert_appended(store, before, &[event(AuditAction::SubjectErased, Some("alice"), 9)], "erasing");
    mail.sort_by(|a, b| (&a.category, a.version).cmp(&(&b.category, b.version)));
    both.sort_by(|a, b| (&a.category, a.version).cmp(&(&b.category, b.version)));
    assert_eq!(kept(store, "lh_mail"), mail, "both email versions, by category then version, bytes unchanged");
    assert_eq!(kept(store, "lh_both"), both, "email and name versions, by category then version");
    assert_eq!(kept(store, "lh_none"), Vec::new(), "an unknown hold keeps nothing");
}

/// Releasing a hold records when, deletes what it kept and returns how
/// many, with its audit events; a second release fails with `HoldReleased`
/// and an unknown hold with `HoldNotFound`, both writing nothing.
pub fn releasing_a_hold_deletes_what_it_kept_once(store: &dyn Store) {
    alice_with_items(store);
    place(store, &hold("lh_1", "alice", &["email"], 1));
    place(store, &hold("lh_2", "alice", &["phone"], 2));
    let mut items = copies(store, "lh_1", "alice", "email");
    items.extend(copies(store, "lh_2", "alice", "phone"));
    let held = HeldCopy { categories: vec!["email".into(), "phone".into()], items };
    ok(erase_with(store, "alice", &held), "erasing with a held copy");
    let kept_by_two = kept(store, "lh_2");

    let before = head(store);
    let events = hold_event(AuditAction::RestrictionLifted, "alice", 20);
    assert_eq!(ok(store.release_hold("lh_1", at(20), &events, &HeldKeys::UNKEYED), "releasing"), 2);
    assert_appended(store, before, &events, "releasing a hold");
    assert_eq!(load(store, "lh_1").and_then(|h| h.released_at), Some(at(20)), "the release is recorded");
    assert!(kept(store, "lh_1").is_empty(), "what the released hold kept is deleted");
    assert_eq!(kept(store, "lh_2"), kept_by_two, "another hold keeps what it kept");

    let before = head(store);
    let again = store.release_hold("lh_1", at(21), &events, &HeldKeys::UNKEYED);
    assert!(matches!(again, Err(StoreError::HoldReleased)), "expected HoldReleased, got {again:?}");
    assert_eq!(load(store, "lh_1").and_then(|h| h.released_at), Some(at(20)), "the first release stays");
    let unknown = store.release_hold("lh_none", at(21), &events, &HeldKeys::UNKEYED);
    assert!(matches!(unknown, Err(StoreError::HoldNotFound)), "expected HoldNotFound, got {unknown:?}");
    assert_eq!(load(store, "lh_none"), None, "releasing an unknown hold creates nothing");
    assert_unchanged(store, before, "refused releases");
    let empty = ok(store.release_hold("lh_2", at(22), &[], &HeldKeys::UNKEYED), "releasing the other hold");
    assert_eq!(empty, 1, "the other hold kept the phone");
}

/// An erasure whose held copy is not exactly the stored versions of the held
/// categories (one missing, one not stored, one outside those categories,
/// no categories at all) fails with `HeldItemsChanged` and changes nothing.
pub fn erasure_with_a_held_copy_that_differs_from_the_store_fails_and_changes_nothing(store: &dyn Store) {
    alice_with_items(store);
    place(store, &hold("lh_1", "alice", &["email", "name"], 1));
    let email = copies(store, "lh_1", "alice", "email");
    let name = copies(store, "lh_1", "alice", "name");
    let categories = vec!["email".to_string(), "name".to_string()];
    let mut not_stored = email[1].clone();
    not_stored.version = 3;
    let mut outside = copies(store, "lh_1", "alice", "phone");
    outside.extend(email.iter().chain(&name).cloned());
    let cases = [
        (
            "a stored version missing",
            HeldCopy { categories: categories.clone(), items: vec![email[1].clone(), name[0].clone()] },
        ),
        ("a held category missing", HeldCopy { categories: categories.clone(), items: email.clone() }),
        (
            "a version not stored",
            HeldCopy {
                categories: categories.clone(),
                items: email.iter().chain(&name).chain([&not_stored]).cloned().collect(),
            },
        ),
        ("a category not held", HeldCopy { categories: categories.clone(), items: outside }),
        ("items without categories", HeldCopy { categories: Vec::new(), items: email.clone() }),
    ];
    let before = head(store);
    for (what, held) in &cases {
        let refused = erase_with(store, "alice", held);
        assert!(
            matches!(refused, Err(StoreError::HeldItemsChanged)),
            "{what}: expected HeldItemsChanged, got {refused:?}"
        );
        assert_alice_untouched(store, before, &["lh_1"], what);
    }
    let matching = HeldCopy { categories, items: email.into_iter().chain(name).collect() };
    ok(erase_with(store, "alice", &matching), "erasing with the matching copy");
    assert_eq!(kept(store, "lh_1").len(), 3, "the matching copy is kept");
}

/// A held item naming another subject's hold, a released hold or no hold
/// fails the erasure with `HoldNotFound` and changes nothing.
pub fn a_held_item_must_name_an_active_hold_of_the_erased_subject(store: &dyn Store) {
    alice_with_items(store);
    create(store, "bob");
    place(store, &hold("lh_alice", "alice", &["email"], 1));
    place(store, &hold("lh_bob", "bob", &["email"], 1));
    place(store, &hold("lh_done", "alice", &["email"], 1));
    ok(store.release_hold("lh_done", at(2), &[], &HeldKeys::UNKEYED), "releasing a hold");
    let before = head(store);
    for (what, other) in [("another subject's hold", "lh_bob"), ("a released hold", "lh_done"), ("no hold", "lh_none")]
    {
        let mut items = copies(store, "lh_alice", "alice", "email");
        items.extend(copies(store, other, "alice", "email"));
        let held = HeldCopy { categories: vec!["email".into()], items };
        let refused = erase_with(store, "alice", &held);
        assert!(matches!(refused, Err(StoreError::HoldNotFound)), "{what}: expected HoldNotFound, got {refused:?}");
        assert_alice_untouched(store, before, &["lh_alice", "lh_bob", "lh_done", "lh_none"], what);
    }
    assert!(ok(store.subject(&id("bob")), "loading bob").is_some(), "bob is untouched");
}

/// A keyed store refuses to place or release holds for a writer that does
/// not hold its master key (the details are sealed under it).
pub fn holds_require_a_held_master_key(store: &dyn Store) {
    ok(store.record_store_identity(&identity(1), &identity_event(1)), "recording the identity");
    let (one, two): (KeyCheck, KeyCheck) = (check(1), check(2));
    let other = HeldKeys { current: (&two.key_id, &two.check), previous: None };
    let record = hold("lh_1", "alice", &["email"], 1);
    let events = hold_event(AuditAction::RestrictionSet, "alice", 1);
    let before = head(store);
    let refused = store.place_hold(&record, &events, &other);
    assert!(matches!(refused, Err(StoreError::KeyNotHeld { .. })), "expected KeyNotHeld, got {refused:?}");
    assert_eq!(load(store, "lh_1"), None, "nothing placed");
    assert_unchanged(store, before, "a refused hold");
    let held = HeldKeys { current: (&one.key_id, &one.check), previous: None };
    ok(store.place_hold(&record, &events, &held), "placing with the held key");
    let before = head(store);
    let release = store.release_hold("lh_1", at(2), &events, &other);
    assert!(matches!(release, Err(StoreError::KeyNotHeld { .. })), "expected KeyNotHeld, got {release:?}");
    assert_eq!(load(store, "lh_1").and_then(|h| h.released_at), None, "not released");
    assert_unchanged(store, before, "a refused release");
    ok(store.release_hold("lh_1", at(2), &events, &held), "releasing with the held key");
}
