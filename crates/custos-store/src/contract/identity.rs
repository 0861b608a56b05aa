//! Contract cases for the store's identity (key check, notice) and for
//! master-key rotation (paging wrapped keys, compare-and-swap re-wrapping).

use super::*;
use crate::{KeyCheck, Rewrap, StoreIdentity, WrappedKey};

pub(super) fn check(n: u8) -> KeyCheck {
    KeyCheck { key_id: vec![n; 8], check: vec![n; 32], sealed_root: None }
}

pub(super) fn identity(n: u8) -> StoreIdentity {
    StoreIdentity {
        key: check(n),
        notice_id: "example-notice".into(),
        notice_version: "2020-01-24".into(),
        created_at: at(n.into()),
    }
}

pub(super) fn identity_event(second: i64) -> [AuditEvent; 1] {
    [AuditEvent::new(at(second), AuditAction::StoreIdentityRecorded, "controller")]
}

fn recorded(store: &dyn Store) -> Option<StoreIdentity> {
    ok(store.store_identity(), "reading the store identity")
}

fn keys(store: &dyn Store, after: Option<&str>, limit: usize) -> Vec<WrappedKey> {
    let after = after.map(id);
    ok(store.wrapped_keys(after.as_ref(), limit), "paging wrapped keys")
}

/// A fresh store has no identity and holds no data.
pub fn a_fresh_store_has_no_identity_and_holds_no_data(store: &dyn Store) {
    assert_eq!(recorded(store), None, "a fresh store has no identity");
    assert!(!ok(store.holds_data(), "holds_data"), "a fresh store holds no data");
    assert!(keys(store, None, 10).is_empty(), "a fresh store has no wrapped keys");
}

/// The first identity recorded stays: a second one is not written, the
/// first is returned, and only the first is audited. Every field round-trips.
pub fn the_first_recorded_identity_stays_and_is_audited_once(store: &dyn Store) {
    let before = head(store);
    let mut first = identity(1);
    first.key.sealed_root = Some(vec![1, 2, 3, 0, 255]);
    let events = identity_event(1);
    assert_eq!(ok(store.record_store_identity(&first, &events), "recording"), first);
    assert_appended(store, before, &events, "record_store_identity");
    assert_eq!(recorded(store), Some(first.clone()), "every field round-trips");
    let after = head(store);
    let in_force = ok(store.record_store_identity(&identity(2), &identity_event(2)), "recording again");
    assert_eq!(in_force, first, "the identity recorded first is the one in force");
    assert_unchanged(store, after, "a second identity");
    assert_eq!(recorded(store), Some(first));
}

/// `holds_data` sees an audit entry, even with no subject.
pub fn holds_data_sees_an_audit_entry_alone(store: &dyn Store) {
    ok(store.append_audit(&[event(AuditAction::DataRead, None, 1)]), "appending");
    assert!(ok(store.holds_data(), "holds_data"), "an audit entry is data");
}

/// `holds_data` sees an API key, and a subject.
pub fn holds_data_sees_api_keys_and_subjects(store: &dyn Store) {
    ok(store.create_api_key(&admin_key("key_a", 1, 1), &[]), "creating a key without events");
    assert!(ok(store.holds_data(), "holds_data"), "an API key is data");
    create(store, "alice");
    assert!(ok(store.holds_data(), "holds_data"));
}

/// Wrapped keys come in id order, page by page, and erased subjects are left out.
pub fn wrapped_keys_page_in_id_order_and_leave_out_erased_subjects(store: &dyn Store) {
    for name in ["carol", "alice", "erin", "bob", "dave"] {
        create(store, name);
    }
    ok(store.erase_subject(&id("dave"), &pseudo("dave"), at(9), &crate::HeldCopy::none(), &[]), "erasing dave");
    let page = keys(store, None, 2);
    let names: Vec<&str> = page.iter().map(|k| k.subject.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(page[0].wrapped, key_of("alice"), "the wrapped key as stored");
    let page = keys(store, Some("bob"), 10);
    let names: Vec<&str> = page.iter().map(|k| k.subject.as_str()).collect();
    assert_eq!(names, ["carol", "erin"], "after bob, without the erased dave");
    assert!(keys(store, Some("erin"), 10).is_empty());
}

/// A re-wrap replaces a key only if it is still the old one and the subject
/// is not erased, commits its audit events, and reports how many it replaced.
pub fn rewrap_keys_replaces_only_keys_that_still_match(store: &dyn Store) {
    for name in ["alice", "bob", "carol"] {
        create(store, name);
    }
    ok(store.erase_subject(&id("carol"), &pseudo("carol"), at(9), &crate::HeldCopy::none(), &[]), "erasing carol");
    let before = head(store);
    let batch = [
        Rewrap { subject: id("alice"), old: key_of("alice"), new: b"rewrapped-alice".to_vec() },
        // Someone changed bob's key meanwhile: the swap must not happen.
        Rewrap { subject: id("bob"), old: b"stale".to_vec(), new: b"rewrapped-bob".to_vec() },
        // An erased subject's key is never brought back.
        Rewrap { subject: id("carol"), old: key_of("carol"), new: b"rewrapped-carol".to_vec() },
        Rewrap { subject: id("nobody"), old: key_of("nobody"), new: b"x".to_vec() },
    ];
    let events = [event(AuditAction::DataKeysRewrapped, None, 10)];
    assert_eq!(ok(store.rewrap_keys(&batch, &events), "re-wrapping"), 1, "only alice's key still matched");
    assert_appended(store, before, &events, "rewrap_keys");
    assert_eq!(record(store, "alice").wrapped_key, Some(b"rewrapped-alice".to_vec()));
    assert_eq!(record(store, "bob").wrapped_key, Some(key_of("bob")), "a stale swap changes nothing");
    assert!(
        ok(store.subject(&id("carol")), "loading").is_none(),
        "an erased key stays destroyed (no row is brought back)"
    );
    assert!(ok(store.subject(&id("nobody")), "loading").is_none(), "no subject is created");
    verify_chain(store);
}

/// The key check is replaced only when the expected one is recorded.
pub fn replace_key_check_is_a_compare_and_swap(store: &dyn Store) {
    let first = identity(1);
    ok(store.record_store_identity(&first, &identity_event(1)), "recording");
    let before = head(store);
    let new = KeyCheck { sealed_root: Some(vec![7; 60]), ..check(2) };
    let events = [event(AuditAction::MasterKeyRotated, None, 2)];
    assert!(!ok(store.replace_key_check(&check(3), &new, &events), "a wrong expectation"), "not replaced");
    assert_unchanged(store, before, "a failed swap");
    assert_eq!(recorded(store), Some(first.clone()));
    assert!(ok(store.replace_key_check(&check(1), &new, &events), "swapping"), "replaced");
    assert_appended(store, before, &events, "replace_key_check");
    assert_eq!(recorded(store), Some(StoreIdentity { key: new.clone(), ..first }), "only the key changes");
    assert!(!ok(store.replace_key_check(&check(1), &check(4), &events), "swapping again"), "the old check is gone");
    let swapped = ok(store.replace_key_check(&new, &check(5), &[]), "on the new check");
    assert!(swapped, "the new check is the one in force");
}

/// A notice version is adopted only from the recorded notice and version.
pub fn adopt_notice_version_is_a_compare_and_swap(store: &dyn Store) {
    let first = identity(1);
    ok(store.record_store_identity(&first, &identity_event(1)), "recording");
    let before = head(store);
    let events = [event(AuditAction::NoticeVersionAdopted, None, 2)];
    let adopt = |notice: &str, from: &str, to: &str| {
        ok(store.adopt_notice_version(notice, from, to, &events), "adopting a notice version")
    };
    assert!(!adopt("another-notice", "2020-01-24", "2021-01-01"), "another notice is not adopted");
    assert!(!adopt("example-notice", "2019-01-01", "2021-01-01"), "from a version not in force");
    assert_unchanged(store, before, "a refused adoption");
    assert!(adopt("example-notice", "2020-01-24", "2021-01-01"));
    assert_appended(store, before, &events, "adopt_notice_version");
    let now = recorded(store).map(|i| (i.notice_id, i.notice_version));
    assert_eq!(now, Some(("example-notice".into(), "2021-01-01".into())));
}

/// A subject is created only by a writer holding the master key the store's
/// identity records, as its current or (during a rotation) previous key; any
/// other writer is refused with `KeyNotHeld` (naming the recorded key id) and
/// nothing is written. A store with no identity yet accepts any writer.
pub fn create_subject_requires_a_held_master_key(store: &dyn Store) {
    let alice = subject("alice");
    ok(store.create_subject(&alice, &key_of("alice"), None, &pseudo("alice"), &[], &HeldKeys::UNKEYED), "no identity");
    ok(store.record_store_identity(&identity(1), &identity_event(1)), "recording");
    let (one, two, three) = (check(1), check(2), check(3));
    let as_held = |c: &KeyCheck| (c.key_id.clone(), c.check.clone());
    let ((id1, c1), (id2, c2), (id3, c3)) = (as_held(&one), as_held(&two), as_held(&three));
    let before = head(store);
    for (held, what) in [
        (HeldKeys::UNKEYED, "a writer with no key"),
        (HeldKeys { current: (&id2, &c2), previous: None }, "a writer with another key"),
        (HeldKeys { current: (&id2, &c2), previous: Some((&id3, &c3)) }, "a writer with two other keys"),
        (HeldKeys { current: (&id1, &c2), previous: None }, "a writer with the right id but another check"),
    ] {
        let bob = subject("bob");
        let events = [event(AuditAction::SubjectCreated, Some("bob"), 2)];
        match store.create_subject(&bob, &key_of("bob"), None, &pseudo("bob"), &events, &held) {
            Err(StoreError::KeyNotHeld { recorded }) => assert_eq!(recorded, id1, "{what}: the recorded key id"),
            other => panic!("{what}: expected KeyNotHeld, got {other:?}"),
        }
        assert_eq!(ok(store.subject(&id("bob")), "loading"), None, "{what}: nothing created");
        assert_unchanged(store, before, what);
    }
    let current = HeldKeys { current: (&id1, &c1), previous: None };
    ok(store.create_subject(&subject("bob"), &key_of("bob"), None, &pseudo("bob"), &[], &current), "current key");
    let rotating = HeldKeys { current: (&id2, &c2), previous: Some((&id1, &c1)) };
    ok(store.create_subject(&subject("carol"), &key_of("carol"), None, &pseudo("carol"), &[], &rotating), "previous");
}
