//! Contract cases for items: versions, current items, history, tokens.

use super::*;

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
    assert_eq!(ok(put_with(store, &batch, &[]), "writing a mixed batch"), [1, 1, 2, 2, 3]);
    assert_eq!(versions(&current(store, "alice")), [("email".to_string(), 2)]);
    assert_eq!(versions(&current(store, "bob")), [("email".to_string(), 3), ("phone".to_string(), 1)]);
    let h = history(store, "alice", "email");
    assert_eq!(h[0].sealed, sealed("alice", "email", 3, 2), "the later item in the batch is the newer version");
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
        token: Some("tok_4242".into()),
        lookup: None,
    };
    let bytes = vec![0, 1, 2, 3, 254, 255, 0, 0];
    let seal = |_: usize, _: u32| Ok(bytes.clone());
    ok(store.put_items(std::slice::from_ref(&new), &seal, &[]), "writing an item");
    let expected = StoredItem {
        subject: new.subject,
        category: new.category,
        version: 1,
        source: new.source,
        purpose: new.purpose,
        collected_at: new.collected_at,
        notice_version: new.notice_version,
        superseded_at: None,
        sealed: bytes,
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
    assert_eq!(got[1].sealed, sealed("alice", "email", 2, 2));
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
    assert_eq!(h[3].sealed, sealed("alice", "email", 1, 1));
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
    let result = put_with(store, &[item("nobody", "email", 1)], &[event(AuditAction::DataWritten, Some("nobody"), 1)]);
    assert!(matches!(result, Err(StoreError::SubjectNotFound)), "expected SubjectNotFound, got {result:?}");
    assert!(history(store, "nobody", "email").is_empty());
    assert_unchanged(store, before, "a write for a missing subject");
}

/// Items for an erased subject are refused; nothing is written or audited.
pub fn put_items_for_an_erased_subject_fails_and_writes_nothing(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1)]);
    ok(erase(store, "alice", 5, &[event(AuditAction::SubjectErased, Some("alice"), 5)]), "erasing");
    let before = head(store);
    let result = put_with(store, &[item("alice", "email", 6)], &[event(AuditAction::DataWritten, Some("alice"), 6)]);
    // The erased row is gone (only a tombstone under a pseudonym remains), so
    // the store finds no subject; a row erased before tombstones existed says erased.
    assert!(
        matches!(result, Err(StoreError::SubjectNotFound | StoreError::SubjectErased)),
        "expected SubjectNotFound or SubjectErased, got {result:?}"
    );
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
    let result = put_with(store, &batch, &[event(AuditAction::DataWritten, Some("alice"), 2)]);
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
    ok(put_with(store, &[first], &[]), "writing the first card");
    ok(put_with(store, &[second], &[]), "writing the second card");
    let a = ok(store.item_by_token("tok_a"), "looking up tok_a");
    let b = ok(store.item_by_token("tok_b"), "looking up tok_b");
    let a = a.unwrap_or_else(|| panic!("tok_a should name an item"));
    let b = b.unwrap_or_else(|| panic!("tok_b should name an item"));
    assert_eq!((a.version, a.superseded_at, a.token.as_deref()), (1, Some(at(2)), Some("tok_a")));
    assert_eq!((b.version, b.superseded_at, b.token.as_deref()), (2, None, Some("tok_b")));
    assert_eq!(b.sealed, sealed("alice", "payment-card", 2, 2));
    assert_eq!(ok(store.item_by_token("tok_unknown"), "looking up an unknown token"), None);
}

/// Each item is stored as the sealer's bytes for exactly the version the
/// store gave it (so a ciphertext can be bound to its version), in a batch
/// that repeats an item and mixes subjects too.
pub fn put_items_seals_each_item_with_the_version_it_is_given(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("alice", "email", 1)]);
    let batch = [item("bob", "email", 2), item("alice", "email", 2), item("alice", "email", 3)];
    let calls = std::sync::Mutex::new(Vec::new());
    let seal = |i: usize, version: u32| {
        calls.lock().unwrap_or_else(|e| e.into_inner()).push((i, version));
        let it = &batch[i];
        Ok(sealed(it.subject.as_str(), &it.category, (it.collected_at.0 - T0) / 1_000_000, version))
    };
    assert_eq!(ok(store.put_items(&batch, &seal, &[]), "writing"), [1, 2, 3]);
    let mut calls = calls.into_inner().unwrap_or_else(|e| e.into_inner());
    calls.sort_unstable();
    calls.dedup();
    assert_eq!(calls, [(0, 1), (1, 2), (2, 3)], "the sealer is asked for each item with its version");
    let h = history(store, "alice", "email");
    let got: Vec<_> = h.iter().map(|i| i.sealed.clone()).collect();
    assert_eq!(got, [sealed("alice", "email", 3, 3), sealed("alice", "email", 2, 2), sealed("alice", "email", 1, 1)]);
    assert_eq!(current(store, "bob")[0].sealed, sealed("bob", "email", 2, 1));
}

/// A sealer's failure aborts the whole write: nothing is stored or audited.
pub fn put_items_writes_nothing_when_sealing_fails(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1)]);
    let before = head(store);
    let batch = [item("alice", "email", 2), item("alice", "name", 2)];
    let seal = |i: usize, v: u32| if i == 1 { Err(StoreError::Backend("no".into())) } else { Ok(vec![v as u8]) };
    let result = store.put_items(&batch, &seal, &[event(AuditAction::DataWritten, Some("alice"), 2)]);
    assert!(result.is_err(), "a failed seal fails the write");
    assert_eq!(versions(&current(store, "alice")), [("email".to_string(), 1)]);
    assert_unchanged(store, before, "a write whose sealing failed");
}

fn with_lookup(subject: &str, category: &str, second: i64, hash: u8) -> NewItem {
    NewItem { lookup: Some([hash; 32]), ..item(subject, category, second) }
}

fn found(store: &dyn Store, hash: u8) -> Vec<String> {
    let ids = ok(store.subjects_by_lookup(&[hash; 32]), "looking up");
    ids.iter().map(|i| i.as_str().to_string()).collect()
}

/// A lookup hash finds the subjects whose latest value of that category
/// carries it, in id order; a newer version's hash replaces the older one;
/// an item without a hash leaves the index alone; nothing matches an unknown hash.
pub fn lookup_hashes_find_the_subjects_whose_latest_value_has_them(store: &dyn Store) {
    for name in ["alice", "bob", "carol"] {
        create(store, name);
    }
    put(store, &[with_lookup("bob", "contact.email", 1, 1), with_lookup("alice", "contact.email", 1, 1)]);
    put(store, &[with_lookup("carol", "contact.phone", 1, 2), item("carol", "contact.email", 1)]);
    assert_eq!(found(store, 1), ["alice", "bob"], "two people sharing an address, in id order");
    assert_eq!(found(store, 2), ["carol"]);
    // In one batch, the newest of two versions is the one indexed.
    put(store, &[with_lookup("alice", "contact.email", 2, 3), with_lookup("alice", "contact.email", 3, 4)]);
    assert_eq!(
        (found(store, 1), found(store, 3), found(store, 4)),
        (vec!["bob".to_string()], vec![], vec!["alice".to_string()])
    );
    put(store, &[item("alice", "contact.email", 4)]);
    assert_eq!(found(store, 4), ["alice"], "an item without a hash changes no index entry");
    assert!(found(store, 9).is_empty());
}

/// Erasure deletes the subject's lookup hashes: an erased person is found by none.
pub fn erasure_deletes_the_lookup_hashes(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[with_lookup("alice", "contact.email", 1, 5), with_lookup("bob", "contact.email", 1, 5)]);
    ok(erase(store, "alice", 2, &[]), "erasing");
    assert_eq!(found(store, 5), ["bob"]);
}
