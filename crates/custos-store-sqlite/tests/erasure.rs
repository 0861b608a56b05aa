//! Erasure on disk: once a subject is erased and the store is closed, the
//! database file no longer holds their wrapped key or sealed bytes.

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::{ItemStore, NewItem, SubjectStore};
use custos_store_sqlite::SqliteStore;

fn subject(name: &str) -> Subject {
    Subject::new(SubjectId::parse(name).expect("a valid id"), "kr", Timestamp(1))
}

/// A recognizable byte pattern naming whose it is; long enough to fill
/// overflow pages for some items.
fn pattern(owner: &str, n: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let repeat = if n.is_multiple_of(10) { 200 } else { 2 };
    for _ in 0..repeat {
        bytes.extend_from_slice(format!("\u{1}SEALED-{owner}-{n:05}\u{2}").as_bytes());
    }
    bytes
}

fn items(owner: &str, batch: usize, count: usize) -> Vec<NewItem> {
    (0..count)
        .map(|n| NewItem {
            subject: SubjectId::parse(owner).expect("a valid id"),
            category: format!("category-{}", n % 50),
            source: "automatic".into(),
            purpose: "analytics".into(),
            collected_at: Timestamp(n as i64 + 10),
            notice_version: "v1".into(),
            sealed: pattern(owner, n),
            token: (n % 7 == 0).then(|| format!("tok-{owner}-{batch}-{n}")),
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("the database file is readable");
    // Should the WAL outlive the store, what it holds counts too.
    if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
        bytes.extend_from_slice(&wal);
    }
    bytes
}

#[test]
fn an_erased_subjects_key_and_sealed_bytes_are_gone_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let ev = |action| vec![AuditEvent::new(Timestamp(5), action, "controller")];
    {
        let store = SqliteStore::open(&path).unwrap();
        for name in ["erased", "kept"] {
            let key = format!("\u{1}WRAPPED-KEY-{name}\u{2}");
            store.create_subject(&subject(name), key.as_bytes(), None, name, &ev(AuditAction::SubjectCreated)).unwrap();
        }
        // Several batches, so that some pages reach the database file before the erasure.
        for b in 0..3 {
            let mut batch = items("erased", b, 400);
            batch.extend(items("kept", b, 100));
            store.put_items(&batch, &ev(AuditAction::DataWritten)).unwrap();
        }
        let destroyed = store
            .erase_subject(
                &SubjectId::parse("erased").unwrap(),
                "p-erased",
                Timestamp(99),
                &ev(AuditAction::SubjectErased),
            )
            .unwrap();
        assert_eq!(destroyed, 1200);
    }
    assert!(!path.with_extension("db-wal").exists(), "closing the store checkpoints and removes the WAL");
    let bytes = file_bytes(&path);
    // The method can see bytes that are still there...
    assert!(contains(&bytes, b"\x01WRAPPED-KEY-kept\x02"));
    assert!(contains(&bytes, &pattern("kept", 99)));
    // ...and the erased subject's are not.
    assert!(!contains(&bytes, b"\x01WRAPPED-KEY-erased\x02"), "the wrapped key is still in the file");
    assert!(!contains(&bytes, b"SEALED-erased"), "sealed bytes of the erased subject are still in the file");
    assert!(!contains(&bytes, b"tok-erased"), "a token of the erased subject is still in the file");
}
