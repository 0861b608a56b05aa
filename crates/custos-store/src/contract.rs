//! The store contract: behaviour every backend must show.
//!
//! Each public function here is one case. It takes a fresh, empty store, runs
//! against it only through the [`Store`] trait, and panics (with a message
//! that says what was expected) when the store misbehaves. A backend runs the
//! whole suite, unchanged, with [`contract_tests!`](crate::contract_tests):
//!
//! ```ignore
//! custos_store::contract_tests!(|| MyStore::open_in_memory().expect("opens"));
//! ```
//!
//! The factory may also return a `(store, guard)` pair, where the guard keeps
//! something alive for as long as the store is used (a temporary folder, a
//! database schema), and is dropped after the case.

use std::collections::BTreeMap;

use custos_core::audit::{AuditAction, AuditEvent, ChainBreak, ChainHead, ChainVerifier};
use custos_core::subject::{ConsentRecord, ConsentStatus, Subject, SubjectId, SubjectState};
use custos_core::time::Timestamp;

use crate::{ApiKeyRecord, IdempotentResponse, NewItem, StateChange, Store, StoreError, StoredItem, SubjectRecord};

/// What a [`contract_tests!`](crate::contract_tests) factory returns: a store,
/// or a store together with what must outlive it.
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

impl<S: Store, G> Fixture for (S, G) {
    fn store(&self) -> &dyn Store {
        &self.0
    }
}

/// Expands to one `#[test]` per contract case. `$make` is a function or
/// closure returning a fresh, empty store (or a `(store, guard)` pair); it is
/// called once per case.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@cases $make;
            a_fresh_store_has_an_empty_audit_chain,
            a_created_subject_loads_back_with_every_field,
            a_subject_with_only_required_fields_loads_back,
            creating_a_subject_twice_fails_and_changes_nothing,
            subjects_loads_several_at_once_and_leaves_out_missing_ones,
            update_state_applies_the_change_and_audits_it,
            update_state_writes_nothing_when_apply_declines,
            update_state_of_a_missing_subject_fails_and_appends_nothing,
            put_items_numbers_versions_from_one_per_subject_and_category,
            put_items_returns_versions_in_input_order_for_a_mixed_batch,
            a_new_version_supersedes_the_previous_one_at_its_collection_time,
            a_stored_item_keeps_every_field,
            current_items_returns_only_current_versions_ordered_by_category,
            current_items_filters_by_the_categories_asked_for,
            subject_with_items_reads_the_subject_and_their_current_items_together,
            history_lists_every_version_newest_first,
            history_of_an_unknown_item_is_empty,
            put_items_for_a_missing_subject_fails_and_writes_nothing,
            put_items_for_an_erased_subject_fails_and_writes_nothing,
            a_batch_with_one_bad_subject_writes_nothing,
            item_by_token_finds_current_and_superseded_versions,
            erase_subject_destroys_the_key_and_every_item_and_keeps_a_tombstone,
            erasing_an_erased_subject_fails_and_appends_nothing,
            erasing_a_missing_subject_fails_and_appends_nothing,
            erasing_one_subject_leaves_the_others_alone,
            every_mutating_call_appends_exactly_its_events_in_sequence,
            the_audit_chain_verifies_and_its_head_matches_the_last_entry,
            scan_audit_stops_at_the_first_error_the_visitor_returns,
            audit_entries_paginates_in_sequence_order,
            failed_operations_append_nothing,
            concurrent_writers_keep_the_audit_chain_intact,
            concurrent_audit_appends_each_get_their_own_place_in_the_chain,
            an_api_key_round_trips_every_field_and_is_found_by_its_hash,
            an_unknown_hash_finds_no_api_key,
            creating_an_api_key_with_a_taken_id_or_hash_fails_and_appends_nothing,
            api_keys_lists_oldest_first,
            revoking_an_api_key_sets_revoked_at_and_audits_once,
            revoking_an_unknown_api_key_returns_false_and_appends_nothing,
            an_idempotent_response_round_trips_and_cannot_be_recorded_twice,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let fixture = ($make)();
                $crate::contract::$case($crate::contract::Fixture::store(&fixture));
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Builders and checks shared by the cases.

/// 2020-01-24T00:00:00Z, the notice's date, in microseconds.
const T0: i64 = 1_579_824_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp(T0 + seconds * 1_000_000)
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: the store failed with `{e}`"),
    }
}

fn id(s: &str) -> SubjectId {
    match SubjectId::parse(s) {
        Ok(id) => id,
        Err(e) => panic!("test subject id `{s}` is invalid: {e}"),
    }
}

fn subject(name: &str) -> Subject {
    Subject::new(id(name), "us-ca", at(0))
}

fn full_subject(name: &str) -> Subject {
    let mut consents = BTreeMap::new();
    consents.insert(
        "marketing".to_string(),
        ConsentRecord { status: ConsentStatus::Granted, at: at(5), by_guardian: Some(id("parent-1")) },
    );
    consents.insert(
        "analytics".to_string(),
        ConsentRecord { status: ConsentStatus::Withdrawn, at: at(6), by_guardian: None },
    );
    let mut objections = BTreeMap::new();
    objections.insert("interest-based-ads".to_string(), at(7));
    Subject {
        id: id(name),
        jurisdiction: "eu".into(),
        region: Some("eu-central-1".into()),
        birth_date: Some(time::macros::date!(2010 - 06 - 15)),
        guardian: Some(id("parent-1")),
        created_at: at(1),
        erased_at: None,
        state: SubjectState { consents, objections, restricted_since: Some(at(8)) },
    }
}

fn key_of(name: &str) -> Vec<u8> {
    let mut key = b"wrapped-key:".to_vec();
    key.extend_from_slice(name.as_bytes());
    key.extend_from_slice(&[0, 1, 2, 255]);
    key
}

fn event(action: AuditAction, subject: Option<&str>, second: i64) -> AuditEvent {
    let mut ev = AuditEvent::new(at(second), action, "controller");
    ev.subject = subject.map(|s| format!("pseudo:{s}"));
    ev
}

fn create(store: &dyn Store, name: &str) -> Subject {
    let s = subject(name);
    ok(
        store.create_subject(&s, &key_of(name), &[event(AuditAction::SubjectCreated, Some(name), 0)]),
        "creating a subject",
    );
    s
}

fn item(subject: &str, category: &str, second: i64) -> NewItem {
    NewItem {
        subject: id(subject),
        category: category.into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: at(second),
        notice_version: "2020-01-24".into(),
        sealed: sealed(subject, category, second),
        token: None,
    }
}

fn sealed(subject: &str, category: &str, second: i64) -> Vec<u8> {
    format!("sealed|{subject}|{category}|{second}").into_bytes()
}

fn put(store: &dyn Store, items: &[NewItem]) -> Vec<u32> {
    let ev = event(AuditAction::DataWritten, items.first().map(|i| i.subject.as_str()), 0);
    ok(store.put_items(items, &[ev]), "writing items")
}

fn head(store: &dyn Store) -> ChainHead {
    ok(store.audit_head(), "reading the audit head")
}

fn verify_chain(store: &dyn Store) -> ChainHead {
    let mut verifier = ChainVerifier::default();
    let scanned = ok(
        store.scan_audit(&mut |seq, prev, body, hash| verifier.check(seq, prev, body, hash)),
        "scanning the audit log",
    );
    let recorded = match scanned {
        Ok(recorded) => recorded,
        Err(e) => panic!("the stored audit chain does not verify: {e}"),
    };
    assert_eq!(recorded, head(store), "scan_audit returns the recorded head");
    match verifier.finish(recorded) {
        Ok(h) => h,
        Err(e) => panic!("the audit chain does not end at the recorded head: {e}"),
    }
}

/// Asserts that the entries after `before` are exactly `events`, in order,
/// numbered on from `before`, and that the head is the last of them.
fn assert_appended(store: &dyn Store, before: ChainHead, events: &[AuditEvent], what: &str) {
    let entries = ok(store.audit_entries(before.seq, events.len() + 10), "reading audit entries");
    let bodies: Vec<&str> = entries.iter().map(|e| e.body.as_str()).collect();
    let expected: Vec<String> = events.iter().map(AuditEvent::to_body).collect();
    assert_eq!(bodies, expected, "{what}: the audit log should gain exactly the call's events, in order");
    let mut prev = before;
    for e in &entries {
        assert_eq!(e.seq, prev.seq + 1, "{what}: sequence numbers continue without gaps");
        assert_eq!(e.prev_hash, prev.hash, "{what}: entry {} chains the previous hash", e.seq);
        prev = ChainHead { seq: e.seq, hash: e.hash };
    }
    assert_eq!(head(store), prev, "{what}: the head is the last appended entry");
}

fn assert_unchanged(store: &dyn Store, before: ChainHead, what: &str) {
    assert_eq!(head(store), before, "{what}: the audit head must not move");
    let extra = ok(store.audit_entries(before.seq, 10), "reading audit entries");
    assert!(extra.is_empty(), "{what}: no audit entry may be appended, found {}", extra.len());
}

fn record(store: &dyn Store, name: &str) -> SubjectRecord {
    match ok(store.subject(&id(name)), "loading a subject") {
        Some(r) => r,
        None => panic!("subject `{name}` should exist"),
    }
}

fn current(store: &dyn Store, name: &str) -> Vec<StoredItem> {
    ok(store.current_items(&id(name), &[]), "reading current items")
}

fn history(store: &dyn Store, name: &str, category: &str) -> Vec<StoredItem> {
    ok(store.history(&id(name), category), "reading history")
}

fn versions(items: &[StoredItem]) -> Vec<(String, u32)> {
    items.iter().map(|i| (i.category.clone(), i.version)).collect()
}

/// A 32-byte hash recognizable by `n`.
fn hash_of(n: u8) -> [u8; 32] {
    let mut hash = [n; 32];
    hash[0] = 0;
    hash[31] = 255;
    hash
}

/// A service key with every field set (except `revoked_at`).
fn service_key(id: &str, n: u8, second: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        secret_hash: hash_of(n),
        role: "service".into(),
        actor: Some("payment-processor".into()),
        purposes: vec!["orders".into(), "fraud-prevention".into()],
        created_at: at(second),
        revoked_at: None,
    }
}

/// An admin key with only the required fields set.
fn admin_key(id: &str, n: u8, second: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        secret_hash: hash_of(n),
        role: "admin".into(),
        actor: None,
        purposes: Vec::new(),
        created_at: at(second),
        revoked_at: None,
    }
}

/// The audit event of a key operation by an administrator.
fn key_event(action: AuditAction, id: &str, second: i64) -> AuditEvent {
    let mut ev = AuditEvent::new(at(second), action, "admin");
    ev.key = Some(id.into());
    ev
}

fn key_created(id: &str, second: i64) -> [AuditEvent; 1] {
    [key_event(AuditAction::ApiKeyCreated, id, second)]
}

fn key_revoked(id: &str, second: i64) -> [AuditEvent; 1] {
    [key_event(AuditAction::ApiKeyRevoked, id, second)]
}

fn create_key(store: &dyn Store, key: &ApiKeyRecord) {
    ok(store.create_api_key(key, &key_created(&key.id, 0)), "creating an API key");
}

fn key_by_hash(store: &dyn Store, hash: &[u8; 32]) -> Option<ApiKeyRecord> {
    ok(store.api_key_by_hash(hash), "looking up an API key")
}

// ---------------------------------------------------------------------------
// Cases.

/// A new store has no audit entries and the empty head.
pub fn a_fresh_store_has_an_empty_audit_chain(store: &dyn Store) {
    assert_eq!(head(store), ChainHead::EMPTY);
    assert!(ok(store.audit_entries(0, 10), "reading audit entries").is_empty());
    assert_eq!(verify_chain(store), ChainHead::EMPTY);
    assert_eq!(ok(store.subject(&id("nobody")), "loading a missing subject"), None);
}

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

/// Versions count from 1 per (subject, category), independently of other pairs.
pub fn put_items_numbers_versions_from_one_per_subject_and_category(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    assert_eq!(put(store, &[item("alice", "email", 1), item("alice", "name", 1)]), [1, 1]);
    assert_eq!(put(store, &[item("alice", "email", 2)]), [2]);
    assert_eq!(put(store, &[item("bob", "email", 2)]), [1]);
    assert_eq!(put(store, &[item("alice", "email", 3), item("alice", "name", 3)]), [3, 2]);
    let h = history(store, "alice", "email");
    assert_eq!(h.iter().map(|i| i.version).collect::<Vec<_>>(), [3, 2, 1]);
}

/// A batch mixing subjects and repeating a category gets its versions in input order.
pub fn put_items_returns_versions_in_input_order_for_a_mixed_batch(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("bob", "email", 1)]);
    let batch = [
        item("bob", "phone", 2),
        item("alice", "email", 2),
        item("bob", "email", 2),
        item("alice", "email", 3),
        item("bob", "email", 4),
    ];
    assert_eq!(ok(store.put_items(&batch, &[]), "writing a mixed batch"), [1, 1, 2, 2, 3]);
    assert_eq!(versions(&current(store, "alice")), [("email".to_string(), 2)]);
    assert_eq!(versions(&current(store, "bob")), [("email".to_string(), 3), ("phone".to_string(), 1)]);
    let h = history(store, "alice", "email");
    assert_eq!(h[0].sealed, sealed("alice", "email", 3), "the later item in the batch is the newer version");
    let superseded: Vec<Option<Timestamp>> = history(store, "bob", "email").iter().map(|i| i.superseded_at).collect();
    assert_eq!(superseded, [None, Some(at(4)), Some(at(2))], "versions within one batch supersede each other");
}

/// Writing a new version marks the previous one superseded at the new item's collection time.
pub fn a_new_version_supersedes_the_previous_one_at_its_collection_time(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 10)]);
    put(store, &[item("alice", "email", 20)]);
    put(store, &[item("alice", "email", 35)]);
    let h = history(store, "alice", "email");
    let superseded: Vec<Option<Timestamp>> = h.iter().map(|i| i.superseded_at).collect();
    assert_eq!(superseded, [None, Some(at(35)), Some(at(20))]);
    let collected: Vec<Timestamp> = h.iter().map(|i| i.collected_at).collect();
    assert_eq!(collected, [at(35), at(20), at(10)]);
}

/// Every field of a written item is stored as given.
pub fn a_stored_item_keeps_every_field(store: &dyn Store) {
    create(store, "alice");
    let new = NewItem {
        subject: id("alice"),
        category: "payment-card".into(),
        source: "partner:payments-co".into(),
        purpose: "billing".into(),
        collected_at: at(42),
        notice_version: "v7".into(),
        sealed: vec![0, 1, 2, 3, 254, 255, 0, 0],
        token: Some("tok_4242".into()),
    };
    ok(store.put_items(std::slice::from_ref(&new), &[]), "writing an item");
    let expected = StoredItem {
        subject: new.subject,
        category: new.category,
        version: 1,
        source: new.source,
        purpose: new.purpose,
        collected_at: new.collected_at,
        notice_version: new.notice_version,
        superseded_at: None,
        sealed: new.sealed,
        token: new.token,
    };
    assert_eq!(current(store, "alice"), std::slice::from_ref(&expected));
    assert_eq!(history(store, "alice", "payment-card"), std::slice::from_ref(&expected));
}

/// `current_items` returns one current version per category, sorted by category.
pub fn current_items_returns_only_current_versions_ordered_by_category(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("alice", "phone", 1), item("alice", "email", 1), item("alice", "address", 1)]);
    put(store, &[item("alice", "email", 2), item("bob", "email", 2)]);
    put(store, &[item("alice", "phone", 3)]);
    let got = current(store, "alice");
    assert_eq!(versions(&got), [("address".to_string(), 1), ("email".to_string(), 2), ("phone".to_string(), 2)]);
    assert!(got.iter().all(|i| i.superseded_at.is_none() && i.subject.as_str() == "alice"));
    assert_eq!(got[1].sealed, sealed("alice", "email", 2));
    assert!(current(store, "nobody").is_empty(), "an unknown subject has no items");
}

/// A non-empty category list restricts `current_items` to those categories.
pub fn current_items_filters_by_the_categories_asked_for(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "phone", 1), item("alice", "email", 1), item("alice", "address", 1)]);
    put(store, &[item("alice", "email", 2)]);
    let got = ok(store.current_items(&id("alice"), &["phone", "email", "unknown"]), "filtering");
    assert_eq!(versions(&got), [("email".to_string(), 2), ("phone".to_string(), 1)]);
    let none = ok(store.current_items(&id("alice"), &["unknown"]), "filtering on nothing stored");
    assert!(none.is_empty());
}

/// `subject_with_items` answers exactly what `subject` and `current_items` answer.
pub fn subject_with_items_reads_the_subject_and_their_current_items_together(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "phone", 1), item("alice", "email", 1)]);
    put(store, &[item("alice", "email", 2)]);
    let (record, all) = ok(store.subject_with_items(&id("alice"), &[]), "reading alice").expect("alice exists");
    assert_eq!(Some(record), ok(store.subject(&id("alice")), "reading alice alone"));
    assert_eq!(all, current(store, "alice"));
    let (_, some) =
        ok(store.subject_with_items(&id("alice"), &["email"]), "reading alice's email").expect("alice exists");
    assert_eq!(versions(&some), [("email".to_string(), 2)]);
    let (_, both) = ok(store.subject_with_items(&id("alice"), &["phone", "email", "address"]), "reading three")
        .expect("alice exists");
    assert_eq!(versions(&both), [("email".to_string(), 2), ("phone".to_string(), 1)], "in category order");
    let (_, held) = ok(store.subject_with_items(&id("alice"), &["address"]), "reading alice's address")
        .expect("a subject is found even without the items asked for");
    assert!(held.is_empty());
    create(store, "bob");
    let (bob, items) = ok(store.subject_with_items(&id("bob"), &[]), "reading bob").expect("bob exists");
    assert_eq!((bob.subject.id, items.len()), (id("bob"), 0), "a subject without items");
    assert!(ok(store.subject_with_items(&id("nobody"), &[]), "reading nobody").is_none());
}

/// `history` returns every version of one item, newest first, superseded ones included.
pub fn history_lists_every_version_newest_first(store: &dyn Store) {
    create(store, "alice");
    for second in 1..=4 {
        put(store, &[item("alice", "email", second), item("alice", "name", second)]);
    }
    let h = history(store, "alice", "email");
    assert_eq!(h.iter().map(|i| i.version).collect::<Vec<_>>(), [4, 3, 2, 1]);
    assert!(h.iter().all(|i| i.category == "email"));
    assert_eq!(h.iter().filter(|i| i.superseded_at.is_some()).count(), 3);
    assert_eq!(h[3].sealed, sealed("alice", "email", 1));
}

/// An item never written has an empty history.
pub fn history_of_an_unknown_item_is_empty(store: &dyn Store) {
    create(store, "alice");
    assert!(history(store, "alice", "email").is_empty());
    assert!(history(store, "nobody", "email").is_empty());
}

/// Items for a subject that does not exist are refused; nothing is written or audited.
pub fn put_items_for_a_missing_subject_fails_and_writes_nothing(store: &dyn Store) {
    create(store, "alice");
    let before = head(store);
    let result = store.put_items(&[item("nobody", "email", 1)], &[event(AuditAction::DataWritten, Some("nobody"), 1)]);
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    assert!(history(store, "nobody", "email").is_empty());
    assert_unchanged(store, before, "a write for a missing subject");
}

/// Items for an erased subject are refused; nothing is written or audited.
pub fn put_items_for_an_erased_subject_fails_and_writes_nothing(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1)]);
    ok(store.erase_subject(&id("alice"), at(5), &[event(AuditAction::SubjectErased, Some("alice"), 5)]), "erasing");
    let before = head(store);
    let result = store.put_items(&[item("alice", "email", 6)], &[event(AuditAction::DataWritten, Some("alice"), 6)]);
    assert!(matches!(result, Err(StoreError::SubjectErased)), "expected SubjectErased, got {result:?}");
    assert!(history(store, "alice", "email").is_empty());
    assert_unchanged(store, before, "a write for an erased subject");
}

/// One bad subject anywhere in a batch makes the whole batch fail, for everyone in it.
pub fn a_batch_with_one_bad_subject_writes_nothing(store: &dyn Store) {
    create(store, "alice");
    create(store, "carol");
    put(store, &[item("alice", "email", 1)]);
    let before = head(store);
    let batch =
        [item("alice", "email", 2), item("carol", "email", 2), item("bob", "email", 2), item("carol", "name", 2)];
    let result = store.put_items(&batch, &[event(AuditAction::DataWritten, Some("alice"), 2)]);
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    let h = history(store, "alice", "email");
    assert_eq!(versions(&h), [("email".to_string(), 1)], "alice's item is untouched");
    assert_eq!(h[0].superseded_at, None, "alice's item is not superseded");
    assert!(current(store, "carol").is_empty(), "carol's items are not written");
    assert_unchanged(store, before, "a batch with a missing subject");
}

/// A token names its item whether or not a newer version has replaced it.
pub fn item_by_token_finds_current_and_superseded_versions(store: &dyn Store) {
    create(store, "alice");
    let mut first = item("alice", "payment-card", 1);
    first.token = Some("tok_a".into());
    let mut second = item("alice", "payment-card", 2);
    second.token = Some("tok_b".into());
    ok(store.put_items(&[first], &[]), "writing the first card");
    ok(store.put_items(&[second], &[]), "writing the second card");
    let a = ok(store.item_by_token("tok_a"), "looking up tok_a");
    let b = ok(store.item_by_token("tok_b"), "looking up tok_b");
    let a = a.unwrap_or_else(|| panic!("tok_a should name an item"));
    let b = b.unwrap_or_else(|| panic!("tok_b should name an item"));
    assert_eq!((a.version, a.superseded_at, a.token.as_deref()), (1, Some(at(2)), Some("tok_a")));
    assert_eq!((b.version, b.superseded_at, b.token.as_deref()), (2, None, Some("tok_b")));
    assert_eq!(b.sealed, sealed("alice", "payment-card", 2));
    assert_eq!(ok(store.item_by_token("tok_unknown"), "looking up an unknown token"), None);
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

/// Each mutating call appends exactly the events it was given, chained after the head.
pub fn every_mutating_call_appends_exactly_its_events_in_sequence(store: &dyn Store) {
    let before = head(store);
    let created = [event(AuditAction::SubjectCreated, Some("alice"), 1)];
    ok(store.create_subject(&subject("alice"), &key_of("alice"), &created), "creating");
    assert_appended(store, before, &created, "create_subject");

    let before = head(store);
    let written = [event(AuditAction::DataWritten, Some("alice"), 2), event(AuditAction::DataWritten, Some("bob"), 2)];
    ok(store.put_items(&[item("alice", "email", 2)], &written), "writing");
    assert_appended(store, before, &written, "put_items");

    let before = head(store);
    let restricted = [event(AuditAction::RestrictionSet, Some("alice"), 3)];
    ok(
        store.update_state(&id("alice"), &mut |s| {
            let mut state = s.state.clone();
            state.restricted_since = Some(at(3));
            Some(StateChange { state, audit: restricted.to_vec() })
        }),
        "restricting",
    );
    assert_appended(store, before, &restricted, "update_state");

    let before = head(store);
    let mut read = event(AuditAction::DataRead, Some("alice"), 4);
    read.purpose = Some("orders".into());
    read.categories = vec!["email".into()];
    let reads = [read, event(AuditAction::AccessDenied, Some("alice"), 4), event(AuditAction::DataRead, None, 4)];
    let returned = ok(store.append_audit(&reads), "appending");
    assert_appended(store, before, &reads, "append_audit");
    assert_eq!(returned, head(store), "append_audit returns the new head");

    let before = head(store);
    assert_eq!(ok(store.append_audit(&[]), "appending nothing"), before, "appending nothing keeps the head");
    assert_unchanged(store, before, "appending nothing");

    let before = head(store);
    let erased = [event(AuditAction::SubjectErased, Some("alice"), 5)];
    ok(store.erase_subject(&id("alice"), at(5), &erased), "erasing");
    assert_appended(store, before, &erased, "erase_subject");

    assert_eq!(verify_chain(store).seq, 8);
}

/// The whole stored chain verifies with [`ChainVerifier`] and ends at the recorded head.
pub fn the_audit_chain_verifies_and_its_head_matches_the_last_entry(store: &dyn Store) {
    create(store, "alice");
    for i in 0..20 {
        let ev = event(AuditAction::DataRead, Some("alice"), i);
        ok(store.append_audit(&[ev.clone(), ev]), "appending");
    }
    put(store, &[item("alice", "email", 30)]);
    let verified = verify_chain(store);
    assert_eq!(verified.seq, 42);
    let last = ok(store.audit_entries(41, 10), "reading the last entry");
    assert_eq!(last.len(), 1);
    assert_eq!(ChainHead { seq: last[0].seq, hash: last[0].hash }, head(store));
    assert_eq!(verified, head(store));
}

/// `scan_audit` visits entries in order and stops at the first error the visitor returns.
pub fn scan_audit_stops_at_the_first_error_the_visitor_returns(store: &dyn Store) {
    let events: Vec<AuditEvent> = (0..5).map(|i| event(AuditAction::DataRead, None, i)).collect();
    ok(store.append_audit(&events), "appending");
    let mut seen = Vec::new();
    let result = ok(
        store.scan_audit(&mut |seq, _, body, _| {
            seen.push((seq, body.to_vec()));
            if seq == 3 { Err(ChainBreak::Content { seq }) } else { Ok(()) }
        }),
        "scanning",
    );
    assert_eq!(result, Err(ChainBreak::Content { seq: 3 }));
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(seen[0].1, events[0].to_body().into_bytes(), "the visitor sees the stored body bytes");
}

/// `audit_entries` returns entries after a sequence number, at most `limit`, in order.
pub fn audit_entries_paginates_in_sequence_order(store: &dyn Store) {
    let events: Vec<AuditEvent> = (0..25).map(|i| event(AuditAction::DataRead, None, i)).collect();
    ok(store.append_audit(&events), "appending");
    let mut after = 0;
    let mut pages = Vec::new();
    loop {
        let page = ok(store.audit_entries(after, 10), "reading a page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10, "a page holds at most `limit` entries");
        after = page[page.len() - 1].seq;
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let all: Vec<_> = pages.into_iter().flatten().collect();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=25).collect::<Vec<u64>>());
    let bodies: Vec<String> = events.iter().map(AuditEvent::to_body).collect();
    assert_eq!(all.iter().map(|e| e.body.clone()).collect::<Vec<_>>(), bodies);
    assert!(ok(store.audit_entries(25, 10), "reading past the end").is_empty());
    assert!(ok(store.audit_entries(3, 0), "reading zero entries").is_empty());
    assert_eq!(
        ok(store.audit_entries(20, 2), "reading a middle page").iter().map(|e| e.seq).collect::<Vec<_>>(),
        [21, 22]
    );
}

/// No failing call moves the audit chain; later appends continue the same chain.
pub fn failed_operations_append_nothing(store: &dyn Store) {
    create(store, "alice");
    ok(store.erase_subject(&id("alice"), at(2), &[]), "erasing");
    create(store, "bob");
    let before = head(store);
    let ev = || vec![event(AuditAction::DataWritten, Some("x"), 3)];
    assert!(store.create_subject(&subject("bob"), b"k", &ev()).is_err());
    assert!(store.put_items(&[item("nobody", "email", 3)], &ev()).is_err());
    assert!(store.put_items(&[item("alice", "email", 3)], &ev()).is_err());
    assert!(store.erase_subject(&id("alice"), at(3), &ev()).is_err());
    assert!(store.erase_subject(&id("nobody"), at(3), &ev()).is_err());
    assert!(
        store
            .update_state(&id("nobody"), &mut |_| Some(StateChange { state: SubjectState::default(), audit: ev() }))
            .is_err()
    );
    assert_unchanged(store, before, "failed operations");
    let next = ev();
    ok(store.append_audit(&next), "appending after failures");
    assert_appended(store, before, &next, "an append after failures");
    verify_chain(store);
}

/// Writers on several threads at once leave one intact chain holding every event.
pub fn concurrent_writers_keep_the_audit_chain_intact(store: &dyn Store) {
    const THREADS: i64 = 4;
    const ROUNDS: i64 = 25;
    for t in 0..THREADS {
        create(store, &format!("s{t}"));
    }
    let before = head(store);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                let name = format!("s{t}");
                for round in 0..ROUNDS {
                    let ev = event(AuditAction::DataRead, Some(&name), round);
                    ok(store.append_audit(&[ev]), "appending from a thread");
                    let written = [event(AuditAction::DataWritten, Some(&name), round)];
                    ok(store.put_items(&[item(&name, "email", round)], &written), "writing from a thread");
                    let _ = ok(store.current_items(&id(&name), &[]), "reading from a thread");
                }
            });
        }
    });
    let verified = verify_chain(store);
    assert_eq!(verified.seq, before.seq + (THREADS * ROUNDS * 2) as u64);
    for t in 0..THREADS {
        let h = history(store, &format!("s{t}"), "email");
        assert_eq!(h.len(), ROUNDS as usize);
        assert_eq!(h[0].version, ROUNDS as u32);
    }
}

/// Audit appends from many threads at once (audited reads under load) are all
/// committed, each caller gets back the head just after its own events, and
/// the chain holds every event exactly once.
pub fn concurrent_audit_appends_each_get_their_own_place_in_the_chain(store: &dyn Store) {
    const THREADS: i64 = 8;
    const ROUNDS: i64 = 50;
    let before = head(store);
    let heads: Vec<ChainHead> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (0..ROUNDS)
                        .map(|round| {
                            let events = [
                                event(AuditAction::DataRead, None, t * 1000 + round),
                                event(AuditAction::AccessDenied, None, t),
                            ];
                            ok(store.append_audit(&events), "appending from a thread")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let total = (THREADS * ROUNDS) as usize;
    assert_eq!(heads.len(), total, "every append returned");
    let mut seqs: Vec<u64> = heads.iter().map(|h| h.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), total, "each append got its own place in the chain");
    let entries = ok(store.audit_entries(before.seq, 10 * total), "reading the entries");
    for h in &heads {
        let entry = entries.iter().find(|e| e.seq == h.seq).unwrap_or_else(|| panic!("no entry {}", h.seq));
        assert_eq!(entry.hash, h.hash, "the returned head is the entry's hash");
        assert!(entry.body.contains("access_denied"), "a caller's head ends on its own last event");
    }
    assert_eq!(verify_chain(store).seq, before.seq + 2 * total as u64);
}

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

/// A recorded response comes back whole; a second one for the same key fails
/// with `IdempotencyKeyExists` and leaves the first. Keys are exact strings.
pub fn an_idempotent_response_round_trips_and_cannot_be_recorded_twice(store: &dyn Store) {
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), None);
    let before = head(store);
    let first = IdempotentResponse {
        fingerprint: hash_of(1),
        status: 201,
        body: b"{\"version\":1}\n\0\xff".to_vec(),
        created_at: at(1),
    };
    ok(store.save_idempotent_response("key_a:retry-1", &first), "recording a response");
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), Some(first.clone()));

    let second = IdempotentResponse { fingerprint: hash_of(2), status: 409, body: Vec::new(), created_at: at(2) };
    let result = store.save_idempotent_response("key_a:retry-1", &second);
    assert!(matches!(result, Err(StoreError::IdempotencyKeyExists)), "expected IdempotencyKeyExists, got {result:?}");
    assert_eq!(
        ok(store.idempotent_response("key_a:retry-1"), "looking up a response"),
        Some(first.clone()),
        "the first response stays"
    );

    // Another key (here: another caller's scope) is independent, and an empty body is kept as empty.
    ok(store.save_idempotent_response("key_b:retry-1", &second), "recording another key's response");
    assert_eq!(ok(store.idempotent_response("key_b:retry-1"), "looking up a response"), Some(second));
    assert_eq!(ok(store.idempotent_response("key_a:retry-1"), "looking up a response"), Some(first));
    assert_eq!(ok(store.idempotent_response("key_a:retry-2"), "looking up a response"), None);
    assert_unchanged(store, before, "recording idempotent responses");
}
