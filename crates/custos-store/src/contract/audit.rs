//! Contract cases for the audit chain: appends, head, scans, pages, concurrency.

use super::*;

/// A new store has no audit entries and the empty head.
pub fn a_fresh_store_has_an_empty_audit_chain(store: &dyn Store) {
    assert_eq!(head(store), ChainHead::EMPTY);
    assert!(ok(store.audit_entries(0, 10), "reading audit entries").is_empty());
    assert_eq!(verify_chain(store), ChainHead::EMPTY);
    assert_eq!(ok(store.subject(&id("nobody")), "loading a missing subject"), None);
}

/// Each mutating call appends exactly the events it was given, chained after the head.
pub fn every_mutating_call_appends_exactly_its_events_in_sequence(store: &dyn Store) {
    let before = head(store);
    let created = [event(AuditAction::SubjectCreated, Some("alice"), 1)];
    ok(
        store.create_subject(&subject("alice"), &key_of("alice"), None, &pseudo("alice"), &created, &HeldKeys::UNKEYED),
        "creating",
    );
    assert_appended(store, before, &created, "create_subject");

    let before = head(store);
    let written = [event(AuditAction::DataWritten, Some("alice"), 2), event(AuditAction::DataWritten, Some("bob"), 2)];
    ok(put_with(store, &[item("alice", "email", 2)], &written), "writing");
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
    ok(erase(store, "alice", 5, &erased), "erasing");
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
    ok(erase(store, "alice", 2, &[]), "erasing");
    create(store, "bob");
    let before = head(store);
    let ev = || vec![event(AuditAction::DataWritten, Some("x"), 3)];
    assert!(store.create_subject(&subject("bob"), b"k", None, &pseudo("bob"), &ev(), &HeldKeys::UNKEYED).is_err());
    assert!(store.create_subject(&subject("alice"), b"k", None, &pseudo("alice"), &ev(), &HeldKeys::UNKEYED).is_err());
    assert!(put_with(store, &[item("nobody", "email", 3)], &ev()).is_err());
    assert!(put_with(store, &[item("alice", "email", 3)], &ev()).is_err());
    assert!(erase(store, "alice", 3, &ev()).is_err());
    assert!(erase(store, "nobody", 3, &ev()).is_err());
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
                    ok(put_with(store, &[item(&name, "email", round)], &written), "writing from a thread");
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

/// `check_writable` passes on a store that can write, before and after
/// writes, and changes nothing: no entry, no moved head; the next write
/// appends where it would have anyway.
pub fn check_writable_passes_on_a_writable_store_and_changes_nothing(store: &dyn Store) {
    ok(store.check_writable(), "checking a fresh store");
    assert_unchanged(store, ChainHead::EMPTY, "check_writable on a fresh store");
    create(store, "alice");
    ok(store.append_audit(&[event(AuditAction::DataRead, Some("alice"), 1)]), "appending");
    let before = head(store);
    ok(store.check_writable(), "checking a store with entries");
    ok(store.check_writable(), "checking again");
    assert_unchanged(store, before, "check_writable");
    let next = [event(AuditAction::DataWritten, Some("alice"), 2)];
    ok(put_with(store, &[item("alice", "email", 2)], &next), "writing after the check");
    assert_appended(store, before, &next, "a write after check_writable");
    assert_eq!(verify_chain(store).seq, 3);
}
