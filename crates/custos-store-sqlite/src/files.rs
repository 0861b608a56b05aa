//! The database files are private to their owner.
//!
//! SQLite creates a database file with mode 0644 (less the umask) and gives
//! its `-wal`, `-shm` and `-journal` files the database file's mode. So the
//! file is created here first, 0600, before SQLite opens it; and a file (or
//! companion file) left readable by others, by an older build or by hand, has
//! its group and other permissions removed at open. The owner's permissions
//! are kept as they are (a file made read-only stays read-only).

use std::path::{Path, PathBuf};

use crate::error::OpenError;

/// The files SQLite keeps for the database at `path`: itself, then its WAL,
/// shared-memory index and rollback journal.
pub(crate) fn database_files(path: &Path) -> [PathBuf; 4] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm"), with("-journal")]
}

/// Creates the database file 0600 if it does not exist, and removes group
/// and other permissions from it and its companion files.
#[cfg(unix)]
pub(crate) fn make_private(path: &Path) -> Result<(), OpenError> {
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let fail = |what: &str, e: std::io::Error| OpenError::Sqlite(format!("{what}: {e}"));
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        // Let SQLite report a missing folder or a path it cannot use, as it always has.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => return Ok(()),
        Err(e) => return Err(fail("creating the database file", e)),
    }
    for file in database_files(path) {
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(fail("reading the database file's permissions", e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| fail("making the database files private (mode 0600)", e))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn make_private(_path: &Path) -> Result<(), OpenError> {
    Ok(())
}
