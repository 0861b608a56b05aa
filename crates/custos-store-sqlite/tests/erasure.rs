//! Erasure on disk: once a subject is erased, neither the database file nor
//! its WAL (nor its shared-memory index) holds their wrapped key or sealed
//! bytes: at once when the store is closed, and within
//! [`ERASED_BYTES_GONE_WITHIN`] while it stays open.

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::NewItem;
use custos_store::prelude::*;
use custos_store_sqlite::{ERASED_BYTES_GONE_WITHIN, SqliteStore};

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
            token: (n % 7 == 0).then(|| format!("tok-{owner}-{batch}-{n}")),
            lookup: None,
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
            store
                .create_subject(
                    &subject(name),
                    key.as_bytes(),
                    None,
                    name,
                    &ev(AuditAction::SubjectCreated),
                    &HeldKeys::UNKEYED,
                )
                .unwrap();
        }
        // Several batches, so that some pages reach the database file before the erasure.
        for b in 0..3 {
            let mut batch = items("erased", b, 400);
            batch.extend(items("kept", b, 100));
            store.put_items(&batch, &seal_of(&batch), &ev(AuditAction::DataWritten)).unwrap();
        }
        let destroyed = store
            .erase_subject(
                &SubjectId::parse("erased").unwrap(),
                "p-erased",
                Timestamp(99),
                &custos_store::HeldCopy::none(),
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

/// The bytes of every file SQLite keeps for the database at `path`.
fn all_files(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_os_string();
            name.push(suffix);
            std::fs::read(&name).ok().map(|bytes| (name.to_string_lossy().into_owned(), bytes))
        })
        .collect()
}

/// Names the files holding `needle`.
fn found_in(files: &[(String, Vec<u8>)], needle: &[u8]) -> Vec<String> {
    files.iter().filter(|(_, bytes)| contains(bytes, needle)).map(|(name, _)| name.clone()).collect()
}

/// Defect 7 of issue 8: with the store open (a running server), the erased
/// subject's wrapped key and sealed values stayed in `custos.db-wal` until
/// new frames happened to overwrite them; copying the frames back made the
/// erased values readable again.
#[test]
fn regression_erased_key_not_recoverable_from_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let ev = |action| vec![AuditEvent::new(Timestamp(5), action, "controller")];
    let store = SqliteStore::open(&path).unwrap();
    let kept_key = b"\x01WRAPPED-KEY-kept\x02";
    store
        .create_subject(
            &subject("kept"),
            kept_key,
            None,
            "ps-kept",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    // Many frames first, then the erased subject's: however the WAL is
    // reused, the few frames of the erasure cannot overwrite theirs.
    store.put_items(&items("kept", 0, 400), &seal_of(&items("kept", 0, 400)), &ev(AuditAction::DataWritten)).unwrap();
    let key = b"\x01WRAPPED-KEY-erased\x02";
    store
        .create_subject(
            &subject("erased"),
            key,
            None,
            "ps-erased",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    store.put_items(&items("erased", 0, 12), &seal_of(&items("erased", 0, 12)), &ev(AuditAction::DataWritten)).unwrap();
    store.put_items(&items("kept", 1, 20), &seal_of(&items("kept", 1, 20)), &ev(AuditAction::DataWritten)).unwrap();

    // The bytes as the store holds them, read back before the erasure.
    let erased = SubjectId::parse("erased").unwrap();
    let wrapped = store.subject(&erased).unwrap().unwrap().wrapped_key.expect("a wrapped key");
    let sealed: Vec<Vec<u8>> = store.current_items(&erased, &[]).unwrap().into_iter().map(|i| i.sealed).collect();
    assert_eq!(sealed.len(), 12);
    assert!(!found_in(&all_files(&path), &wrapped).is_empty(), "the scan finds the key before the erasure");

    store
        .erase_subject(
            &erased,
            "ps-erased",
            Timestamp(99),
            &custos_store::HeldCopy::none(),
            &ev(AuditAction::SubjectErased),
        )
        .unwrap();
    std::thread::sleep(ERASED_BYTES_GONE_WITHIN);

    let files = all_files(&path);
    assert!(files.iter().any(|(name, _)| name.ends_with("-shm")), "the store is open: the files are all there");
    assert_eq!(found_in(&files, &wrapped), Vec::<String>::new(), "the wrapped key is still in these files");
    for value in &sealed {
        assert_eq!(found_in(&files, value), Vec::<String>::new(), "a sealed value is still in these files");
    }
    assert_eq!(found_in(&files, b"SEALED-erased"), Vec::<String>::new(), "sealed bytes are still in these files");
    assert_eq!(found_in(&files, b"tok-erased"), Vec::<String>::new(), "a token is still in these files");
    // What was not erased is still found, and still readable.
    assert!(!found_in(&files, kept_key).is_empty(), "the scan finds what is still there");
    assert_eq!(store.current_items(&SubjectId::parse("kept").unwrap(), &[]).unwrap().len(), 50);
}

/// An erasure by a second process (`custos subject erase` beside a server)
/// is wiped out of the WAL before that process's store closes, though the
/// server keeps the database open.
#[test]
fn an_erasure_beside_an_open_store_is_wiped_before_its_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let ev = |action| vec![AuditEvent::new(Timestamp(5), action, "controller")];
    let server = SqliteStore::open(&path).unwrap();
    server
        .create_subject(
            &subject("kept"),
            b"kept-key",
            None,
            "ps-kept",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    server.put_items(&items("kept", 0, 300), &seal_of(&items("kept", 0, 300)), &ev(AuditAction::DataWritten)).unwrap();
    let key = b"\x01WRAPPED-KEY-erased\x02";
    server
        .create_subject(
            &subject("erased"),
            key,
            None,
            "ps-erased",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    server
        .put_items(&items("erased", 0, 12), &seal_of(&items("erased", 0, 12)), &ev(AuditAction::DataWritten))
        .unwrap();
    {
        let cli = SqliteStore::open(&path).unwrap();
        cli.erase_subject(
            &SubjectId::parse("erased").unwrap(),
            "ps-erased",
            Timestamp(99),
            &custos_store::HeldCopy::none(),
            &ev(AuditAction::SubjectErased),
        )
        .unwrap();
    }
    // No waiting: the CLI's store truncated the WAL before it closed.
    let files = all_files(&path);
    assert_eq!(found_in(&files, key), Vec::<String>::new(), "the wrapped key is still in these files");
    assert_eq!(found_in(&files, b"SEALED-erased"), Vec::<String>::new(), "sealed bytes are still in these files");
    server.append_audit(&ev(AuditAction::DataRead)).expect("the server goes on writing");
}

/// A reader holding a snapshot from before the erasure delays the wipe (the
/// pages it reads must stay); once it ends, the wipe completes on a retry.
#[test]
fn a_wipe_delayed_by_an_old_reader_completes_once_the_reader_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let ev = |action| vec![AuditEvent::new(Timestamp(5), action, "controller")];
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_subject(
            &subject("kept"),
            b"kept-key",
            None,
            "ps-kept",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    store.put_items(&items("kept", 0, 300), &seal_of(&items("kept", 0, 300)), &ev(AuditAction::DataWritten)).unwrap();
    let key = b"\x01WRAPPED-KEY-erased\x02";
    store
        .create_subject(
            &subject("erased"),
            key,
            None,
            "ps-erased",
            &ev(AuditAction::SubjectCreated),
            &HeldKeys::UNKEYED,
        )
        .unwrap();
    store.put_items(&items("erased", 0, 12), &seal_of(&items("erased", 0, 12)), &ev(AuditAction::DataWritten)).unwrap();

    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader.query_row("SELECT count(*) FROM subjects", [], |r| r.get(0)).unwrap();
    store
        .erase_subject(
            &SubjectId::parse("erased").unwrap(),
            "ps-erased",
            Timestamp(99),
            &custos_store::HeldCopy::none(),
            &ev(AuditAction::SubjectErased),
        )
        .unwrap();
    std::thread::sleep(ERASED_BYTES_GONE_WITHIN);
    assert!(!found_in(&all_files(&path), key).is_empty(), "the old reader still needs those pages");
    reader.execute_batch("COMMIT").unwrap();
    // The next try comes at most 4 s (the longest pause between tries) later.
    std::thread::sleep(ERASED_BYTES_GONE_WITHIN + std::time::Duration::from_secs(4));
    assert_eq!(found_in(&all_files(&path), key), Vec::<String>::new(), "the wrapped key is still in these files");
}

/// Seals as the vault would hand bytes over (fixed test bytes per item; the version is not needed here).
fn seal_of(items: &[NewItem]) -> impl Fn(usize, u32) -> Result<Vec<u8>, custos_store::StoreError> + '_ {
    move |i, _| {
        let it = items.get(i).ok_or_else(|| custos_store::StoreError::Backend("no such item".into()))?;
        Ok(pattern(it.subject.as_str(), (it.collected_at.0 - 10) as usize))
    }
}
