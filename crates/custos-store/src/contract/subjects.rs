//! Contract cases for subjects: creation, loading, state changes and erasure.

use super::*;

/// Every field of a subject, including its state and wrapped key, survives a round trip.
pub fn a_created_subject_loads_back_with_every_field(store: &dyn Store) {
    let s = full_subject("alice");
    let key = key_of("alice");
    ok(store.create_subject(&s, &key, &[event(AuditAction::SubjectCreated, Some("alice"), 1)]), "creating");
    let r = record(store, "alice");
    assert_eq!(r, SubjectRecord { subject: s, wrapped_key: Some(key) });
}

/// Optional fields left empty stay empty.
pub fn a_subject_with_only_required_fields_loads_back(store: &dyn Store) {
    let s = create(store, "bob");
    assert_eq!(record(store, "bob"), SubjectRecord { subject: s, wrapped_key: Some(key_of("bob")) });
}

/// A second create with the same id fails with `SubjectExists` and changes nothing.
pub fn creating_a_subject_twice_fails_and_changes_nothing(store: &dyn Store) {
    let original = create(store, "alice");
    let before = head(store);
    let mut other = full_subject("alice");
    other.jurisdiction = "jp".into();
    let result = store.create_subject(&other, b"another key", &[event(AuditAction::SubjectCreated, Some("alice"), 9)]);
    assert!(matches!(result, Err(StoreError::SubjectExists)), "expected SubjectExists, got {result:?}");
    assert_eq!(record(store, "alice"), SubjectRecord { subject: original, wrapped_key: Some(key_of("alice")) });
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
    assert_eq!(got[0], SubjectRecord { subject: b, wrapped_key: Some(key_of("bob")) });
    assert_eq!(got[1], SubjectRecord { subject: a, wrapped_key: Some(key_of("alice")) });
    assert!(ok(store.subjects(&[]), "loading no subjects").is_empty());
}

/// `update_state` shows `apply` the current subject, stores the new state and appends its events.
pub fn update_state_applies_the_change_and_audits_it(store: &dyn Store) {
    let original = create(store, "alice");
    let before = head(store);
    let mut new_state = SubjectState::default();
    new_state
        .consents
        .insert("marketing".into(), ConsentRecord { status: ConsentStatus::Granted, at: at(10), by_guardian: None });
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

/// Erasure removes the wrapped key and every item version, keeps the tombstone and audits.
pub fn erase_subject_destroys_the_key_and_every_item_and_keeps_a_tombstone(store: &dyn Store) {
    let original = create(store, "alice");
    let mut card = item("alice", "payment-card", 1);
    card.token = Some("tok_a".into());
    put(store, &[item("alice", "email", 1), item("alice", "name", 1), card]);
    put(store, &[item("alice", "email", 2)]);
    let before = head(store);
    let events = [event(AuditAction::SubjectErased, Some("alice"), 9)];
    let destroyed = ok(store.erase_subject(&id("alice"), at(9), &events), "erasing");
    assert_eq!(destroyed, 4, "every stored version counts");
    let r = record(store, "alice");
    assert_eq!(r.wrapped_key, None, "the wrapped key is gone");
    assert_eq!(r.subject, Subject { erased_at: Some(at(9)), ..original }, "the tombstone keeps the rest");
    assert!(current(store, "alice").is_empty());
    assert!(history(store, "alice", "email").is_empty());
    assert!(history(store, "alice", "name").is_empty());
    assert_eq!(ok(store.item_by_token("tok_a"), "looking up an erased token"), None);
    assert_appended(store, before, &events, "erase_subject");
}

/// A second erasure fails with `SubjectErased` and appends nothing.
pub fn erasing_an_erased_subject_fails_and_appends_nothing(store: &dyn Store) {
    create(store, "alice");
    ok(store.erase_subject(&id("alice"), at(9), &[event(AuditAction::SubjectErased, Some("alice"), 9)]), "erasing");
    let before = head(store);
    let result = store.erase_subject(&id("alice"), at(10), &[event(AuditAction::SubjectErased, Some("alice"), 10)]);
    assert!(matches!(result, Err(StoreError::SubjectErased)), "expected SubjectErased, got {result:?}");
    assert_eq!(record(store, "alice").subject.erased_at, Some(at(9)), "the first erasure time stays");
    assert_unchanged(store, before, "a second erasure");
}

/// Erasing an unknown subject fails with `SubjectNotFound` and appends nothing.
pub fn erasing_a_missing_subject_fails_and_appends_nothing(store: &dyn Store) {
    create(store, "alice");
    let before = head(store);
    let result = store.erase_subject(&id("nobody"), at(10), &[event(AuditAction::SubjectErased, Some("nobody"), 10)]);
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    assert_unchanged(store, before, "erasing a missing subject");
}

/// Erasure touches only the erased subject.
pub fn erasing_one_subject_leaves_the_others_alone(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("alice", "email", 1), item("bob", "email", 1), item("bob", "name", 1)]);
    ok(store.erase_subject(&id("alice"), at(9), &[]), "erasing");
    assert_eq!(record(store, "bob").wrapped_key, Some(key_of("bob")));
    assert_eq!(versions(&current(store, "bob")), [("email".to_string(), 1), ("name".to_string(), 1)]);
}
