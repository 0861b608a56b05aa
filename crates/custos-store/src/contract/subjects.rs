//! Contract cases for subjects: creation, loading, state changes and erasure.

use super::*;

/// Every stored field of a subject, including its state, wrapped key and
/// sealed metadata (byte for byte), survives a round trip.
pub fn a_created_subject_loads_back_with_every_field(store: &dyn Store) {
    let s = full_subject("alice");
    let key = key_of("alice");
    let metadata = metadata_of("alice");
    ok(
        store.create_subject(
            &s,
            &key,
            Some(&metadata),
            &pseudo("alice"),
            &[event(AuditAction::SubjectCreated, Some("alice"), 1)],
            &HeldKeys::UNKEYED,
        ),
        "creating",
    );
    let r = record(store, "alice");
    assert_eq!(r, SubjectRecord { subject: s, wrapped_key: Some(key), sealed_metadata: Some(metadata) });
}

/// Optional fields left empty stay empty.
pub fn a_subject_with_only_required_fields_loads_back(store: &dyn Store) {
    let s = create(store, "bob");
    assert_eq!(
        record(store, "bob"),
        SubjectRecord { subject: s, wrapped_key: Some(key_of("bob")), sealed_metadata: None }
    );
}

/// Region, birth date and guardian given in clear on the subject are not
/// stored: only the sealed metadata is (issue 8, defect 5).
pub fn the_store_never_keeps_region_birth_date_or_guardian_in_clear(store: &dyn Store) {
    let mut s = subject("alice");
    s.region = Some("eu-central-1".into());
    s.birth_date = Some(time::macros::date!(2010 - 06 - 15));
    s.guardian = Some(id("parent-1"));
    ok(store.create_subject(&s, &key_of("alice"), None, &pseudo("alice"), &[], &HeldKeys::UNKEYED), "creating");
    let r = record(store, "alice");
    assert_eq!((r.subject.region, r.subject.birth_date, r.subject.guardian), (None, None, None));
    assert_eq!(r.sealed_metadata, None);
}

/// A second create with the same id fails with `SubjectExists` and changes nothing.
pub fn creating_a_subject_twice_fails_and_changes_nothing(store: &dyn Store) {
    let original = create(store, "alice");
    let before = head(store);
    let mut other = full_subject("alice");
    other.jurisdiction = "jp".into();
    let result = store.create_subject(
        &other,
        b"another key",
        Some(b"other metadata"),
        &pseudo("alice"),
        &[event(AuditAction::SubjectCreated, Some("alice"), 9)],
        &HeldKeys::UNKEYED,
    );
    assert!(matches!(result, Err(StoreError::SubjectExists)), "expected SubjectExists, got {result:?}");
    assert_eq!(
        record(store, "alice"),
        SubjectRecord { subject: original, wrapped_key: Some(key_of("alice")), sealed_metadata: None }
    );
    assert_unchanged(store, before, "a failed create");
}

/// `subjects` loads the ones that exist, in the order asked, and skips the rest.
pub fn subjects_loads_several_at_once_and_leaves_out_missing_ones(store: &dyn Store) {
    let a = create(store, "alice");
    let b = create(store, "bob");
    create(store, "carol");
    let got = ok(store.subjects(&[id("bob"), id("nobody"), id("alice")]), "loading subjects");
    let ids: Vec<&str> = got.iter().map(|r| r.subject.id.as_str()).collect();
    assert_eq!(ids, ["bob", "alice"]);
    assert_eq!(got[0], SubjectRecord { subject: b, wrapped_key: Some(key_of("bob")), sealed_metadata: None });
    assert_eq!(got[1], SubjectRecord { subject: a, wrapped_key: Some(key_of("alice")), sealed_metadata: None });
    assert!(ok(store.subjects(&[]), "loading no subjects").is_empty());
}

/// `update_state` shows `apply` the current subject, stores the new state and appends its events.
pub fn update_state_applies_the_change_and_audits_it(store: &dyn Store) {
    let original = create(store, "alice");
    let before = head(store);
    let mut new_state = SubjectState::default();
    new_state
        .consents
        .insert("marketing".into(), ConsentRecord { status: ConsentStatus::Granted, at: at(10), by_guardian: false });
    let events = vec![event(AuditAction::ConsentGranted, Some("alice"), 10)];
    let mut seen = None;
    let changed = ok(
        store.update_state(&id("alice"), &mut |s| {
            seen = Some(s.clone());
            Some(StateChange { state: new_state.clone(), audit: events.clone() })
        }),
        "updating state",
    );
    assert!(changed, "update_state should report a change");
    assert_eq!(seen, Some(original.clone()), "apply sees the stored subject");
    let r = record(store, "alice");
    assert_eq!(r.subject.state, new_state);
    assert_eq!(r.subject, Subject { state: new_state, ..original }, "only the state changes");
    assert_eq!(r.wrapped_key, Some(key_of("alice")));
    assert_appended(store, before, &events, "update_state");
}

/// When `apply` returns `None`, nothing is written and `false` comes back.
pub fn update_state_writes_nothing_when_apply_declines(store: &dyn Store) {
    let original = create(store, "alice");
    let before = head(store);
    let mut calls = 0;
    let changed = ok(
        store.update_state(&id("alice"), &mut |_| {
            calls += 1;
            None
        }),
        "updating state",
    );
    assert!(!changed, "update_state should report no change");
    assert_eq!(calls, 1, "apply is called once");
    assert_eq!(record(store, "alice").subject, original);
    assert_unchanged(store, before, "a declined update");
}

/// `update_state` of an unknown subject fails with `SubjectNotFound` without calling `apply`.
pub fn update_state_of_a_missing_subject_fails_and_appends_nothing(store: &dyn Store) {
    create(store, "alice");
    let before = head(store);
    let mut calls = 0;
    let result = store.update_state(&id("nobody"), &mut |_| {
        calls += 1;
        Some(StateChange {
            state: SubjectState::default(),
            audit: vec![event(AuditAction::RestrictionSet, Some("nobody"), 3)],
        })
    });
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    assert_eq!(calls, 0, "apply is not called for a missing subject");
    assert_unchanged(store, before, "an update of a missing subject");
}

/// Erasure removes the wrapped key, the sealed metadata and every item
/// version, and keeps only a tombstone under the pseudonym, holding the
/// erasure time and nothing else of the subject; it audits.
pub fn erase_subject_destroys_the_key_and_every_item_and_keeps_a_tombstone(store: &dyn Store) {
    let s = full_subject("alice");
    ok(
        store.create_subject(
            &s,
            &key_of("alice"),
            Some(&metadata_of("alice")),
            &pseudo("alice"),
            &[],
            &HeldKeys::UNKEYED,
        ),
        "creating",
    );
    let mut card = item("alice", "payment-card", 1);
    card.token = Some("tok_a".into());
    put(store, &[item("alice", "email", 1), item("alice", "name", 1), card]);
    put(store, &[item("alice", "email", 2)]);
    let before = head(store);
    let events = [event(AuditAction::SubjectErased, Some("alice"), 9)];
    let destroyed = ok(erase(store, "alice", 9, &events), "erasing");
    assert_eq!(destroyed, 4, "every stored version counts");
    assert_eq!(
        ok(store.subject(&id("alice")), "loading an erased subject"),
        None,
        "the subject row is gone: no wrapped key, metadata, jurisdiction or state remains under the id"
    );
    assert!(ok(store.subjects(&[id("alice")]), "loading an erased subject").is_empty());
    assert_eq!(ok(store.subject_with_items(&id("alice"), &[]), "loading an erased subject"), None);
    assert_eq!(
        ok(store.tombstone(&pseudo("alice")), "looking up the tombstone"),
        Some(Tombstone { pseudonym: pseudo("alice"), erased_at: at(9) }),
        "the tombstone holds the pseudonym and the erasure time only"
    );
    assert!(current(store, "alice").is_empty());
    assert!(history(store, "alice", "email").is_empty());
    assert!(history(store, "alice", "name").is_empty());
    assert_eq!(ok(store.item_by_token("tok_a"), "looking up an erased token"), None);
    assert_appended(store, before, &events, "erase_subject");
}

/// A second erasure fails with `SubjectErased` and appends nothing.
pub fn erasing_an_erased_subject_fails_and_appends_nothing(store: &dyn Store) {
    create(store, "alice");
    ok(erase(store, "alice", 9, &[event(AuditAction::SubjectErased, Some("alice"), 9)]), "erasing");
    let before = head(store);
    let result = erase(store, "alice", 10, &[event(AuditAction::SubjectErased, Some("alice"), 10)]);
    assert!(matches!(result, Err(StoreError::SubjectErased)), "expected SubjectErased, got {result:?}");
    let tombstone = ok(store.tombstone(&pseudo("alice")), "looking up the tombstone");
    assert_eq!(tombstone.map(|t| t.erased_at), Some(at(9)), "the first erasure time stays");
    assert_unchanged(store, before, "a second erasure");
}

/// Erasing an unknown subject fails with `SubjectNotFound` and appends nothing.
pub fn erasing_a_missing_subject_fails_and_appends_nothing(store: &dyn Store) {
    create(store, "alice");
    let before = head(store);
    let result = erase(store, "nobody", 10, &[event(AuditAction::SubjectErased, Some("nobody"), 10)]);
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    assert_unchanged(store, before, "erasing a missing subject");
}

/// Erasure touches only the erased subject.
pub fn erasing_one_subject_leaves_the_others_alone(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("alice", "email", 1), item("bob", "email", 1), item("bob", "name", 1)]);
    ok(erase(store, "alice", 9, &[]), "erasing");
    assert_eq!(record(store, "bob").wrapped_key, Some(key_of("bob")));
    assert_eq!(ok(store.tombstone(&pseudo("bob")), "looking up a tombstone"), None);
    assert_eq!(versions(&current(store, "bob")), [("email".to_string(), 1), ("name".to_string(), 1)]);
}

/// An erased id is never created again: the tombstone (by pseudonym) refuses
/// it with `SubjectErased`, and nothing changes.
pub fn an_erased_id_cannot_be_created_again(store: &dyn Store) {
    create(store, "alice");
    ok(erase(store, "alice", 9, &[]), "erasing");
    let before = head(store);
    let result = store.create_subject(
        &subject("alice"),
        &key_of("alice"),
        Some(&metadata_of("alice")),
        &pseudo("alice"),
        &[event(AuditAction::SubjectCreated, Some("alice"), 10)],
        &HeldKeys::UNKEYED,
    );
    assert!(matches!(result, Err(StoreError::SubjectErased)), "expected SubjectErased, got {result:?}");
    assert_eq!(ok(store.subject(&id("alice")), "loading an erased subject"), None);
    assert_unchanged(store, before, "re-creating an erased subject");
}

/// A tombstone is keyed by pseudonym alone: another pseudonym finds nothing,
/// and a live subject has none.
pub fn a_tombstone_is_found_only_by_its_pseudonym(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    assert_eq!(ok(store.tombstone(&pseudo("alice")), "looking up a tombstone"), None);
    ok(erase(store, "alice", 9, &[]), "erasing");
    assert!(ok(store.tombstone(&pseudo("alice")), "looking up a tombstone").is_some());
    assert_eq!(ok(store.tombstone("alice"), "looking up a tombstone by the id"), None, "never by the id itself");
    assert_eq!(ok(store.tombstone(&pseudo("bob")), "looking up a tombstone"), None);
    assert_eq!(ok(store.tombstone(&pseudo("nobody")), "looking up a tombstone"), None);
}
