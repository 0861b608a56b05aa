//! The WAL does not keep the size of the largest transaction forever: once a
//! checkpoint has copied it into the database and a later write resets it, it
//! is cut back to [`WAL_SIZE_LIMIT`] (an outside test saw 1.2 GB of WAL beside
//! a 730 MB database after a few large ingestion batches).

use std::time::{Duration, Instant};

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::{Subject, SubjectId};
use custos_core::time::Timestamp;
use custos_store::prelude::*;
use custos_store_sqlite::{SqliteStore, WAL_SIZE_LIMIT};

fn create(store: &SqliteStore, name: &str, sealed: &[u8]) {
    let subject = Subject::new(SubjectId::parse(name).expect("a valid id"), "kr", Timestamp(1));
    let ev = [AuditEvent::new(Timestamp(5), AuditAction::SubjectCreated, "controller")];
    store.create_subject(&subject, b"wrapped", Some(sealed), name, &ev, &HeldKeys::UNKEYED).expect("created");
}

#[test]
fn the_wal_is_cut_back_after_a_large_transaction() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("custos.db");
    let wal = path.with_extension("db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let store = SqliteStore::open(&path).expect("open");
    let limit = u64::try_from(WAL_SIZE_LIMIT).expect("positive");
    create(&store, "large", &vec![0x5a; (limit + limit / 4) as usize]);
    assert!(size() > limit, "the large write went through the WAL ({} bytes)", size());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while size() > limit && Instant::now() < deadline {
        // Later small writes start at the WAL's beginning once the background
        // checkpoint has copied everything; that reset truncates the file.
        std::thread::sleep(Duration::from_millis(200));
        n += 1;
        create(&store, &format!("small-{n}"), b"x");
    }
    assert!(size() <= limit, "the WAL kept {} bytes, over the {limit} limit", size());
}
