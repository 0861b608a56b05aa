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

use crate::{
    ApiKeyRecord, HeldKeys, IdempotentResponse, NewItem, StateChange, Store, StoreError, StoredItem, SubjectRecord,
    Tombstone,
};

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
            subjects::a_created_subject_loads_back_with_every_field,
            subjects::a_subject_with_only_required_fields_loads_back,
            subjects::creating_a_subject_twice_fails_and_changes_nothing,
            subjects::subjects_loads_several_at_once_and_leaves_out_missing_ones,
            subjects::update_state_applies_the_change_and_audits_it,
            subjects::update_state_writes_nothing_when_apply_declines,
            subjects::update_state_of_a_missing_subject_fails_and_appends_nothing,
            subjects::erase_subject_destroys_the_key_and_every_item_and_keeps_a_tombstone,
            subjects::erasing_an_erased_subject_fails_and_appends_nothing,
            subjects::erasing_a_missing_subject_fails_and_appends_nothing,
            subjects::erasing_one_subject_leaves_the_others_alone,
            subjects::the_store_never_keeps_region_birth_date_or_guardian_in_clear,
            subjects::an_erased_id_cannot_be_created_again,
            subjects::a_tombstone_is_found_only_by_its_pseudonym,
            items::put_items_numbers_versions_from_one_per_subject_and_category,
            items::lookup_hashes_find_the_subjects_whose_latest_value_has_them,
            items::erasure_deletes_the_lookup_hashes,
            items::put_items_returns_versions_in_input_order_for_a_mixed_batch,
            items::a_new_version_supersedes_the_previous_one_at_its_collection_time,
            items::a_stored_item_keeps_every_field,
            items::current_items_returns_only_current_versions_ordered_by_category,
            items::current_items_filters_by_the_categories_asked_for,
            items::subject_with_items_reads_the_subject_and_their_current_items_together,
            items::history_lists_every_version_newest_first,
            items::history_of_an_unknown_item_is_empty,
            items::put_items_for_a_missing_subject_fails_and_writes_nothing,
            items::put_items_for_an_erased_subject_fails_and_writes_nothing,
            items::a_batch_with_one_bad_subject_writes_nothing,
            items::item_by_token_finds_current_and_superseded_versions,
            items::put_items_seals_each_item_with_the_version_it_is_given,
            items::put_items_writes_nothing_when_sealing_fails,
            reseal::a_store_starts_with_its_items_not_marked_bound_and_marking_is_recorded_once,
            reseal::sealed_items_pages_every_version_in_key_order,
            reseal::reseal_items_swaps_only_values_that_are_still_the_old_ones,
            reseal::reseal_of_an_erased_subjects_item_writes_nothing_back,
            audit::a_fresh_store_has_an_empty_audit_chain,
            audit::every_mutating_call_appends_exactly_its_events_in_sequence,
            audit::the_audit_chain_verifies_and_its_head_matches_the_last_entry,
            audit::scan_audit_stops_at_the_first_error_the_visitor_returns,
            audit::audit_entries_paginates_in_sequence_order,
            audit::failed_operations_append_nothing,
            audit::concurrent_writers_keep_the_audit_chain_intact,
            audit::concurrent_audit_appends_each_get_their_own_place_in_the_chain,
            audit::check_writable_passes_on_a_writable_store_and_changes_nothing,
            keys::an_api_key_round_trips_every_field_and_is_found_by_its_hash,
            keys::an_unknown_hash_finds_no_api_key,
            keys::creating_an_api_key_with_a_taken_id_or_hash_fails_and_appends_nothing,
            keys::api_keys_lists_oldest_first,
            keys::revoking_an_api_key_sets_revoked_at_and_audits_once,
            keys::revoking_an_unknown_api_key_returns_false_and_appends_nothing,
            idempotency::an_idempotent_response_round_trips_and_cannot_be_recorded_twice,
            identity::a_fresh_store_has_no_identity_and_holds_no_data,
            identity::the_first_recorded_identity_stays_and_is_audited_once,
            identity::holds_data_sees_an_audit_entry_alone,
            identity::holds_data_sees_api_keys_and_subjects,
            identity::wrapped_keys_page_in_id_order_and_leave_out_erased_subjects,
            identity::rewrap_keys_replaces_only_keys_that_still_match,
            identity::replace_key_check_is_a_compare_and_swap,
            identity::adopt_notice_version_is_a_compare_and_swap,
            identity::create_subject_requires_a_held_master_key,
            checkpoints::a_fresh_store_has_no_checkpoints,
            checkpoints::recorded_checkpoints_round_trip_in_sequence_order,
            checkpoints::one_key_signs_a_sequence_number_once,
            checkpoints::the_chain_streams_with_its_checkpoints_in_order,
            idempotency::an_expired_response_is_absent_replaced_and_pruned,
            idempotency::erasure_deletes_every_idempotency_record_naming_the_subject,
            requests::a_recorded_request_reads_back_with_every_field_and_its_audit_entry,
            requests::a_new_request_sees_the_open_requests_of_its_subject_and_kind,
            requests::update_request_replaces_the_record_and_audits_the_change,
            requests::requests_are_listed_by_due_date_filtered_and_paged,
            requests::pruning_deletes_only_records_past_their_retention,
            requests::request_records_outlive_the_subjects_erasure,
            requests::requests_require_a_held_master_key,
            requests::concurrent_submissions_of_one_kind_see_each_other,
            holds::a_placed_hold_reads_back_and_a_subjects_holds_are_listed_in_order,
            holds::placing_a_hold_with_a_taken_id_fails_and_writes_nothing,
            holds::erasure_keeps_exactly_the_held_copy_and_erases_the_subject,
            holds::releasing_a_hold_deletes_what_it_kept_once,
            holds::erasure_with_a_held_copy_that_differs_from_the_store_fails_and_changes_nothing,
            holds::a_held_item_must_name_an_active_hold_of_the_erased_subject,
            holds::holds_require_a_held_master_key,
        );
    };
    (@cases $make:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let fixture = ($make)();
                $crate::contract::$module::$case($crate::contract::Fixture::store(&fixture));
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Builders and checks shared by the cases.

/// 2020-01-24T00:00:00Z, the notice's date, in microseconds.
pub(crate) const T0: i64 = 1_579_824_000_000_000;

pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp(T0 + seconds * 1_000_000)
}

pub(crate) fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: the store failed with `{e}`"),
    }
}

pub(crate) fn id(s: &str) -> SubjectId {
    match SubjectId::parse(s) {
        Ok(id) => id,
        Err(e) => panic!("test subject id `{s}` is invalid: {e}"),
    }
}

pub(crate) fn subject(name: &str) -> Subject {
    Subject::new(id(name), "us-ca", at(0))
}

pub(crate) fn full_subject(name: &str) -> Subject {
    let mut consents = BTreeMap::new();
    consents.insert(
        "marketing".to_string(),
        ConsentRecord { status: ConsentStatus::Granted, at: at(5), by_guardian: true },
    );
    consents.insert(
        "analytics".to_string(),
        ConsentRecord { status: ConsentStatus::Withdrawn, at: at(6), by_guardian: false },
    );
    let mut objections = BTreeMap::new();
    objections.insert("interest-based-ads".to_string(), at(7));
    // Region, birth date and guardian are never stored in clear: they travel
    // sealed ([`metadata_of`]), so a loaded subject has them empty.
    Subject {
        id: id(name),
        jurisdiction: "eu".into(),
        region: None,
        birth_date: None,
        guardian: None,
        created_at: at(1),
        erased_at: None,
        state: SubjectState {
            consents,
            objections,
            restricted_since: Some(at(8)),
            opted_out_since: Some(at(9)),
            sensitive_limited_since: Some(at(10)),
        },
    }
}

/// A subject's sealed metadata as the vault would hand it over (opaque bytes).
pub(crate) fn metadata_of(name: &str) -> Vec<u8> {
    let mut sealed = b"sealed-metadata:".to_vec();
    sealed.extend_from_slice(name.as_bytes());
    sealed.extend_from_slice(&[0, 255]);
    sealed
}

/// The pseudonym the vault would compute for a subject id (the audit events' too).
pub(crate) fn pseudo(name: &str) -> String {
    format!("pseudo:{name}")
}

pub(crate) fn key_of(name: &str) -> Vec<u8> {
    let mut key = b"wrapped-key:".to_vec();
    key.extend_from_slice(name.as_bytes());
    key.extend_from_slice(&[0, 1, 2, 255]);
    key
}

pub(crate) fn event(action: AuditAction, subject: Option<&str>, second: i64) -> AuditEvent {
    let mut ev = AuditEvent::new(at(second), action, "controller");
    ev.subject = subject.map(|s| format!("pseudo:{s}"));
    ev
}

pub(crate) fn create(store: &dyn Store, name: &str) -> Subject {
    let s = subject(name);
    ok(
        store.create_subject(
            &s,
            &key_of(name),
            None,
            &pseudo(name),
            &[event(AuditAction::SubjectCreated, Some(name), 0)],
            &HeldKeys::UNKEYED,
        ),
        "creating a subject",
    );
    s
}

/// Erases a subject under its test pseudonym.
pub(crate) fn erase(store: &dyn Store, name: &str, second: i64, audit: &[AuditEvent]) -> Result<u64, StoreError> {
    store.erase_subject(&id(name), &pseudo(name), at(second), &crate::HeldCopy::none(), audit)
}

pub(crate) fn item(subject: &str, category: &str, second: i64) -> NewItem {
    NewItem {
        subject: id(subject),
        category: category.into(),
        source: "provided".into(),
        purpose: "orders".into(),
        collected_at: at(second),
        notice_version: "2020-01-24".into(),
        token: None,
        lookup: None,
    }
}

/// The bytes the test sealer stores for an item collected at `second` and given `version`.
pub(crate) fn sealed(subject: &str, category: &str, second: i64, version: u32) -> Vec<u8> {
    format!("sealed|{subject}|{category}|{second}|v{version}").into_bytes()
}

/// Writes `items`, sealing each as the vault would: with the version the store gives it.
pub(crate) fn put_with(store: &dyn Store, items: &[NewItem], audit: &[AuditEvent]) -> Result<Vec<u32>, StoreError> {
    let seal = |i: usize, version: u32| {
        let item = items.get(i).ok_or_else(|| StoreError::Backend(format!("sealer called for item {i}")))?;
        Ok(sealed(item.subject.as_str(), &item.category, (item.collected_at.0 - T0) / 1_000_000, version))
    };
    store.put_items(items, &seal, audit)
}

pub(crate) fn put(store: &dyn Store, items: &[NewItem]) -> Vec<u32> {
    let ev = event(AuditAction::DataWritten, items.first().map(|i| i.subject.as_str()), 0);
    ok(put_with(store, items, &[ev]), "writing items")
}

pub(crate) fn head(store: &dyn Store) -> ChainHead {
    ok(store.audit_head(), "reading the audit head")
}

pub(crate) fn verify_chain(store: &dyn Store) -> ChainHead {
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
pub(crate) fn assert_appended(store: &dyn Store, before: ChainHead, events: &[AuditEvent], what: &str) {
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

pub(crate) fn assert_unchanged(store: &dyn Store, before: ChainHead, what: &str) {
    assert_eq!(head(store), before, "{what}: the audit head must not move");
    let extra = ok(store.audit_entries(before.seq, 10), "reading audit entries");
    assert!(extra.is_empty(), "{what}: no audit entry may be appended, found {}", extra.len());
}

pub(crate) fn record(store: &dyn Store, name: &str) -> SubjectRecord {
    match ok(store.subject(&id(name)), "loading a subject") {
        Some(r) => r,
        None => panic!("subject `{name}` should exist"),
    }
}

pub(crate) fn current(store: &dyn Store, name: &str) -> Vec<StoredItem> {
    ok(store.current_items(&id(name), &[]), "reading current items")
}

pub(crate) fn history(store: &dyn Store, name: &str, category: &str) -> Vec<StoredItem> {
    ok(store.history(&id(name), category), "reading history")
}

pub(crate) fn versions(items: &[StoredItem]) -> Vec<(String, u32)> {
    items.iter().map(|i| (i.category.clone(), i.version)).collect()
}

/// A 32-byte hash recognizable by `n`.
pub(crate) fn hash_of(n: u8) -> [u8; 32] {
    let mut hash = [n; 32];
    hash[0] = 0;
    hash[31] = 255;
    hash
}

/// A service key with every field set (except `revoked_at`).
pub(crate) fn service_key(id: &str, n: u8, second: i64) -> ApiKeyRecord {
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
pub(crate) fn admin_key(id: &str, n: u8, second: i64) -> ApiKeyRecord {
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
pub(crate) fn key_event(action: AuditAction, id: &str, second: i64) -> AuditEvent {
    let mut ev = AuditEvent::new(at(second), action, "admin");
    ev.key = Some(id.into());
    ev
}

pub(crate) fn key_created(id: &str, second: i64) -> [AuditEvent; 1] {
    [key_event(AuditAction::ApiKeyCreated, id, second)]
}

pub(crate) fn key_revoked(id: &str, second: i64) -> [AuditEvent; 1] {
    [key_event(AuditAction::ApiKeyRevoked, id, second)]
}

pub(crate) fn create_key(store: &dyn Store, key: &ApiKeyRecord) {
    ok(store.create_api_key(key, &key_created(&key.id, 0)), "creating an API key");
}

pub(crate) fn key_by_hash(store: &dyn Store, hash: &[u8; 32]) -> Option<ApiKeyRecord> {
    ok(store.api_key_by_hash(hash), "looking up an API key")
}

pub mod audit;
pub mod checkpoints;
pub mod holds;
pub mod idempotency;
pub mod identity;
pub mod items;
pub mod keys;
pub mod requests;
pub mod reseal;
pub mod subjects;
