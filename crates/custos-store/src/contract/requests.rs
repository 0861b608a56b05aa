//! Contract cases for rights requests.

use time::{Date, Month};

use crate::{KeyCheck, RequestFilter, RequestRecord};

use super::identity::{check, identity, identity_event};
use super::*;

fn day(d: u8) -> Date {
    match Date::from_calendar_date(2026, Month::March, d) {
        Ok(day) => day,
        Err(e) => panic!("test day {d}: {e}"),
    }
}

/// A request with every field recognizable: received on day `d`, due 30 days on.
fn request(id: &str, subject: &str, kind: &str, status: &str, d: u8) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        subject: pseudo(subject),
        kind: kind.into(),
        jurisdiction: "us-ca".into(),
        status: status.into(),
        received: day(d),
        due: day(d) + time::Duration::days(30),
        created_at: at(i64::from(d)),
        retain_until: None,
        body: format!("{{\"steps\":[\"{status}\"],\"n\":{d}}}"),
        sealed: Some(vec![0, 1, d, 255]),
    }
}

fn request_event(action: AuditAction, subject: &str, id: &str) -> AuditEvent {
    let mut ev = event(action, Some(subject), 0);
    ev.request = Some(id.into());
    ev.kind = Some("access".into());
    ev
}

/// Inserts `record` unless its maker sees an open request; returns whether it did and what it saw.
fn insert(store: &dyn Store, record: &RequestRecord, held: &HeldKeys<'_>) -> Result<(bool, Vec<String>), StoreError> {
    let mut seen = Vec::new();
    let subject = record.subject.clone();
    let events = vec![request_event(AuditAction::RequestReceived, subject.trim_start_matches("pseudo:"), &record.id)];
    let inserted = store.insert_request(
        &record.subject,
        &record.kind,
        &mut |open| {
            seen = open.iter().map(|r| r.id.clone()).collect();
            Some((record.clone(), events.clone()))
        },
        held,
    )?;
    Ok((inserted, seen))
}

fn add(store: &dyn Store, record: &RequestRecord) -> Vec<String> {
    ok(insert(store, record, &HeldKeys::UNKEYED), "recording a request").1
}

fn load(store: &dyn Store, id: &str) -> Option<RequestRecord> {
    ok(store.request(id), "reading a request")
}

fn ids(records: &[RequestRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn list(store: &dyn Store, filter: &RequestFilter<'_>) -> Vec<RequestRecord> {
    ok(store.requests(filter), "listing requests")
}

/// A recorded request reads back with every field, byte for byte, and its
/// audit event is appended in the same write.
pub fn a_recorded_request_reads_back_with_every_field_and_its_audit_entry(store: &dyn Store) {
    assert_eq!(load(store, "rq_1"), None, "nothing before recording");
    let before = head(store);
    let mut record = request("rq_1", "alice", "access", "received", 2);
    record.retain_until = Some(at(99));
    let seen = add(store, &record);
    assert!(seen.is_empty(), "a first request sees no open request");
    assert_eq!(load(store, "rq_1"), Some(record.clone()), "every field round-trips");
    assert_appended(store, before, &[request_event(AuditAction::RequestReceived, "alice", "rq_1")], "recording");
    let bare = RequestRecord { sealed: None, ..request("rq_2", "alice", "erasure", "verified", 3) };
    add(store, &bare);
    assert_eq!(load(store, "rq_2"), Some(bare), "a request without sealed details round-trips");
    verify_chain(store);
}

/// The maker sees exactly the subject's open requests of the same kind: not
/// closed ones, not other kinds, not other subjects'. A maker that declines
/// writes nothing, and a taken id fails with `RequestExists`.
pub fn a_new_request_sees_the_open_requests_of_its_subject_and_kind(store: &dyn Store) {
    add(store, &request("rq_a1", "alice", "access", "in_progress", 1));
    add(store, &request("rq_a2", "alice", "access", "completed", 2));
    add(store, &request("rq_a3", "alice", "access", "denied", 3));
    add(store, &request("rq_a4", "alice", "access", "withdrawn", 4));
    add(store, &request("rq_a5", "alice", "erasure", "received", 5));
    add(store, &request("rq_b1", "bob", "access", "identity_unverified", 6));
    let seen = add(store, &request("rq_a6", "alice", "access", "received", 7));
    assert_eq!(seen, ["rq_a1"], "only alice's open access request is seen");
    let seen = add(store, &request("rq_a7", "alice", "access", "received", 8));
    assert_eq!(seen, ["rq_a1", "rq_a6"], "open requests are seen by due date");

    let before = head(store);
    let declined =
        ok(store.insert_request(&pseudo("alice"), "access", &mut |_| None, &HeldKeys::UNKEYED), "declining a request");
    assert!(!declined, "a declining maker inserts nothing");
    assert_unchanged(store, before, "a declined request");

    let taken = insert(store, &request("rq_a1", "carol", "access", "received", 9), &HeldKeys::UNKEYED);
    assert!(matches!(taken, Err(StoreError::RequestExists)), "expected RequestExists, got {taken:?}");
    assert_eq!(load(store, "rq_a1").map(|r| r.subject), Some(pseudo("alice")), "the first record stays");
    assert_unchanged(store, before, "a taken request id");
}

/// A change replaces the stored record (id, subject and kind kept) with its
/// audit events; a declined change writes nothing and returns the record as
/// stored; a missing request fails with `RequestNotFound`.
pub fn update_request_replaces_the_record_and_audits_the_change(store: &dyn Store) {
    add(store, &request("rq_1", "alice", "access", "received", 1));
    let before = head(store);
    let events = vec![request_event(AuditAction::RequestVerified, "alice", "rq_1")];
    let mut seen = None;
    let changed = ok(
        store.update_request(
            "rq_1",
            &mut |stored| {
                seen = Some(stored.clone());
                let mut next = request("ignored", "mallory", "erasure", "verified", 1);
                next.due = day(20);
                next.retain_until = Some(at(50));
                next.sealed = None;
                Some((next, events.clone()))
            },
            &HeldKeys::UNKEYED,
        ),
        "changing a request",
    );
    assert_eq!(seen, Some(request("rq_1", "alice", "access", "received", 1)), "the change sees the stored record");
    let mut expected = request("rq_1", "alice", "access", "verified", 1);
    expected.due = day(20);
    expected.retain_until = Some(at(50));
    expected.sealed = None;
    assert_eq!(changed, expected, "id, subject and kind are kept; the rest replaced");
    assert_eq!(load(store, "rq_1"), Some(expected.clone()));
    assert_appended(store, before, &events, "changing a request");

    let before = head(store);
    let unchanged = ok(store.update_request("rq_1", &mut |_| None, &HeldKeys::UNKEYED), "declining a change");
    assert_eq!(unchanged, expected, "a declined change returns the stored record");
    let missing =
        store.update_request("rq_none", &mut |_| Some((expected.clone(), events.clone())), &HeldKeys::UNKEYED);
    assert!(matches!(missing, Err(StoreError::RequestNotFound)), "expected RequestNotFound, got {missing:?}");
    assert_eq!(load(store, "rq_none"), None, "a change of a missing request creates nothing");
    assert_unchanged(store, before, "declined and missing changes");
}

/// Every filter narrows the listing, the listing is by due date then id,
/// and `after` with `limit` pages through it without repeats or gaps.
pub fn requests_are_listed_by_due_date_filtered_and_paged(store: &dyn Store) {
    add(store, &request("rq_c", "alice", "access", "received", 5));
    add(store, &request("rq_a", "alice", "erasure", "completed", 1));
    add(store, &request("rq_b", "bob", "access", "in_progress", 5));
    add(store, &request("rq_d", "bob", "objection", "verified", 9));
    let all = |f: RequestFilter<'_>| ids(&list(store, &RequestFilter { limit: 100, ..f })).join(" ");
    assert_eq!(all(RequestFilter::default()), "rq_a rq_b rq_c rq_d", "by due date, then id");
    let alice = pseudo("alice");
    assert_eq!(all(RequestFilter { subject: Some(&alice), ..Default::default() }), "rq_a rq_c");
    assert_eq!(all(RequestFilter { kind: Some("access"), ..Default::default() }), "rq_b rq_c");
    assert_eq!(all(RequestFilter { statuses: &["verified", "in_progress"], ..Default::default() }), "rq_b rq_d");
    assert_eq!(all(RequestFilter { statuses: &["progress"], ..Default::default() }), "", "statuses match whole");
    let due = day(5) + time::Duration::days(30);
    assert_eq!(all(RequestFilter { due_before: Some(due), ..Default::default() }), "rq_a", "strictly before");
    assert_eq!(all(RequestFilter { received_from: Some(day(5)), ..Default::default() }), "rq_b rq_c rq_d");
    assert_eq!(all(RequestFilter { received_before: Some(day(5)), ..Default::default() }), "rq_a");
    assert_eq!(
        all(RequestFilter { kind: Some("access"), subject: Some(&alice), ..Default::default() }),
        "rq_c",
        "conditions combine"
    );
    assert!(list(store, &RequestFilter::default()).is_empty(), "a limit of 0 lists nothing");

    let mut pages = Vec::new();
    let mut after: Option<(Date, String)> = None;
    loop {
        let filter =
            RequestFilter { after: after.as_ref().map(|(d, id)| (*d, id.as_str())), limit: 3, ..Default::default() };
        let page = list(store, &filter);
        if page.is_empty() {
            break;
        }
        pages.push(ids(&page).join(" "));
        after = page.last().map(|r| (r.due, r.id.clone()));
    }
    assert_eq!(pages, ["rq_a rq_b rq_c", "rq_d"], "pages continue after the last (due, id)");
}

/// Pruning deletes exactly the records past their retention, audits only
/// when it deleted some, and never an open request (no `retain_until`).
pub fn pruning_deletes_only_records_past_their_retention(store: &dyn Store) {
    for (id, retain) in [("rq_old", Some(10)), ("rq_new", Some(30)), ("rq_open", None)] {
        add(store, &RequestRecord { retain_until: retain.map(at), ..request(id, "alice", "access", "completed", 1) });
    }
    let before = head(store);
    let deleted = [event(AuditAction::RequestRecordsDeleted, None, 20)];
    assert_eq!(ok(store.prune_requests(at(20), &deleted), "pruning"), 1);
    assert_appended(store, before, &deleted, "pruning");
    assert_eq!(load(store, "rq_old"), None, "past its retention: deleted");
    assert!(load(store, "rq_new").is_some(), "within its retention: kept");
    assert!(load(store, "rq_open").is_some(), "open: kept");
    let before = head(store);
    assert_eq!(ok(store.prune_requests(at(20), &deleted), "pruning again"), 0);
    assert_unchanged(store, before, "pruning nothing");
}

/// A request record outlives its subject's erasure (it names the subject
/// only by pseudonym), and erasure leaves it as it was.
pub fn request_records_outlive_the_subjects_erasure(store: &dyn Store) {
    create(store, "alice");
    let record = request("rq_1", "alice", "erasure", "in_progress", 1);
    add(store, &record);
    ok(erase(store, "alice", 5, &[event(AuditAction::SubjectErased, Some("alice"), 5)]), "erasing");
    assert_eq!(load(store, "rq_1"), Some(record), "the record stays whole");
}

/// A keyed store refuses to record or change requests for a writer that does
/// not hold its master key (the details are sealed under it).
pub fn requests_require_a_held_master_key(store: &dyn Store) {
    ok(store.record_store_identity(&identity(1), &identity_event(1)), "recording the identity");
    let (one, two): (KeyCheck, KeyCheck) = (check(1), check(2));
    let other = HeldKeys { current: (&two.key_id, &two.check), previous: None };
    let before = head(store);
    let refused = insert(store, &request("rq_1", "alice", "access", "received", 1), &other);
    assert!(matches!(refused, Err(StoreError::KeyNotHeld { .. })), "expected KeyNotHeld, got {refused:?}");
    assert_eq!(load(store, "rq_1"), None, "nothing recorded");
    assert_unchanged(store, before, "a refused request");
    let held = HeldKeys { current: (&one.key_id, &one.check), previous: None };
    ok(insert(store, &request("rq_1", "alice", "access", "received", 1), &held), "recording with the held key");
    let before = head(store);
    let change = store.update_request("rq_1", &mut |r| Some((r.clone(), Vec::new())), &other);
    assert!(matches!(change, Err(StoreError::KeyNotHeld { .. })), "expected KeyNotHeld, got {change:?}");
    assert_unchanged(store, before, "a refused change");
}

/// Submissions racing each other for the same subject and kind see each
/// other: with a maker that declines when it sees an open request, exactly
/// one of many concurrent submissions is recorded.
pub fn concurrent_submissions_of_one_kind_see_each_other(store: &dyn Store) {
    const THREADS: usize = 6;
    let inserted = std::sync::atomic::AtomicUsize::new(0);
    let start = std::sync::Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (inserted, start) = (&inserted, &start);
            scope.spawn(move || {
                let record = request(&format!("rq_{t}"), "alice", "access", "received", 1);
                start.wait();
                let done = ok(
                    store.insert_request(
                        &record.subject,
                        "access",
                        &mut |open| {
                            // Holding the window open: without the store's lock,
                            // the other submissions read no open request meanwhile.
                            std::thread::sleep(std::time::Duration::from_millis(30));
                            open.is_empty().then(|| (record.clone(), Vec::new()))
                        },
                        &HeldKeys::UNKEYED,
                    ),
                    "recording from a thread",
                );
                if done {
                    inserted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(inserted.into_inner(), 1, "exactly one racing submission is recorded");
    assert_eq!(list(store, &RequestFilter { limit: 10, ..Default::default() }).len(), 1);
}
