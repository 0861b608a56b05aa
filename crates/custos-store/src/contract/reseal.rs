//! Contract cases for re-sealing legacy item values: the bound mark, pages, compare-and-swap.

use super::*;
use crate::{ItemKey, Reseal};

fn key(subject: &str, category: &str, version: u32) -> ItemKey {
    ItemKey { subject: id(subject), category: category.into(), version }
}

fn page(store: &dyn Store, after: Option<&ItemKey>, limit: usize) -> Vec<(ItemKey, Vec<u8>)> {
    ok(store.sealed_items(after, limit), "paging sealed items").into_iter().map(|i| (i.key, i.sealed)).collect()
}

/// A new store has not recorded that its items are bound; recording it
/// appends the audit entry once, and a second mark changes nothing.
pub fn a_store_starts_with_its_items_not_marked_bound_and_marking_is_recorded_once(store: &dyn Store) {
    assert!(!ok(store.items_bound(), "reading the mark"), "a new store is not marked");
    let before = head(store);
    let first = [event(AuditAction::ItemsResealed, None, 1)];
    assert!(ok(store.mark_items_bound(&first), "marking"), "the first mark is recorded");
    assert_appended(store, before, &first, "mark_items_bound");
    assert!(ok(store.items_bound(), "reading the mark"));
    let before = head(store);
    assert!(!ok(store.mark_items_bound(&[event(AuditAction::ItemsResealed, None, 2)]), "marking again"));
    assert_unchanged(store, before, "a second mark");
    assert!(ok(store.items_bound(), "reading the mark"), "the mark stays");
}

/// Pages hold every version (current and superseded) of every subject, in
/// key order, and resume after the key given.
pub fn sealed_items_pages_every_version_in_key_order(store: &dyn Store) {
    create(store, "alice");
    create(store, "bob");
    put(store, &[item("bob", "email", 1), item("alice", "name", 1), item("alice", "email", 1)]);
    put(store, &[item("alice", "email", 2)]);
    let all = page(store, None, 100);
    let keys: Vec<ItemKey> = all.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        [key("alice", "email", 1), key("alice", "email", 2), key("alice", "name", 1), key("bob", "email", 1)]
    );
    assert_eq!(all[1].1, sealed("alice", "email", 2, 2), "each page row holds the version's stored bytes");
    let first = page(store, None, 2);
    assert_eq!(first.len(), 2);
    let rest = page(store, Some(&first[1].0), 2);
    assert_eq!(
        rest.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        [key("alice", "name", 1), key("bob", "email", 1)]
    );
    assert!(page(store, Some(&rest[1].0), 2).is_empty(), "the page after the last key is empty");
}

/// A re-seal replaces a value only if it is still the old one; the others
/// are left as they are; the audit entry commits with the batch.
pub fn reseal_items_swaps_only_values_that_are_still_the_old_ones(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1)]);
    put(store, &[item("alice", "email", 2), item("alice", "name", 2)]);
    let batch = [
        Reseal { key: key("alice", "email", 1), old: sealed("alice", "email", 1, 1), new: b"new-1".to_vec() },
        Reseal { key: key("alice", "email", 2), old: b"not what is stored".to_vec(), new: b"new-2".to_vec() },
        Reseal { key: key("alice", "name", 7), old: b"x".to_vec(), new: b"y".to_vec() },
    ];
    let before = head(store);
    let ev = [event(AuditAction::ItemsResealed, None, 3)];
    assert_eq!(ok(store.reseal_items(&batch, &ev), "re-sealing"), 1, "only the matching value is replaced");
    assert_appended(store, before, &ev, "reseal_items");
    let h = history(store, "alice", "email");
    assert_eq!(h[1].sealed, b"new-1".to_vec());
    assert_eq!(h[0].sealed, sealed("alice", "email", 2, 2), "a value that changed meanwhile is kept");
    assert_eq!(h[1].version, 1, "a re-seal changes nothing else");
    assert_eq!(h[1].superseded_at, Some(at(2)));
    assert_eq!(ok(store.reseal_items(&batch[..1], &[]), "re-sealing again"), 0, "a second run swaps nothing");
}

/// An erased subject's values are gone: re-sealing them brings nothing back.
pub fn reseal_of_an_erased_subjects_item_writes_nothing_back(store: &dyn Store) {
    create(store, "alice");
    put(store, &[item("alice", "email", 1)]);
    let old = sealed("alice", "email", 1, 1);
    ok(erase(store, "alice", 2, &[event(AuditAction::SubjectErased, Some("alice"), 2)]), "erasing");
    let batch = [Reseal { key: key("alice", "email", 1), old, new: b"new".to_vec() }];
    assert_eq!(ok(store.reseal_items(&batch, &[]), "re-sealing"), 0);
    assert!(history(store, "alice", "email").is_empty(), "nothing is written back");
    assert!(page(store, None, 10).is_empty(), "no page names an erased subject's item");
}
