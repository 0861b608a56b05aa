//! The database files are private to their owner (issue 8, defect 10).

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::time::Timestamp;
use custos_store::prelude::*;
use custos_store_sqlite::SqliteStore;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn companion(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    name.into()
}

/// `custos.db` was created 0644, and its `-wal` and `-shm` files with it.
#[test]
fn regression_database_files_are_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let store = SqliteStore::open(&path).unwrap();
    store.append_audit(&[AuditEvent::new(Timestamp(1), AuditAction::DataRead, "controller")]).unwrap();
    for file in [path.clone(), companion(&path, "-wal"), companion(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// A file left readable by others (an older build, a copy) is made private at
/// open; the owner's own permissions are kept.
#[test]
fn database_files_readable_by_others_are_made_private_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    drop(SqliteStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.append_audit(&[AuditEvent::new(Timestamp(1), AuditAction::DataRead, "controller")]).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&companion(&path, "-wal")), 0o600);
    assert_eq!(mode(&companion(&path, "-shm")), 0o600);
}
