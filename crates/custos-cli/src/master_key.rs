//! Where the master key comes from, and the file-system checks around it.
//!
//! - `CUSTOS_MASTER_KEY` (64 hex characters) wins; else `--master-key-file`
//!   (`CUSTOS_MASTER_KEY_FILE`); else, for SQLite only, `<data-dir>/master.key`.
//!   A PostgreSQL database must name its key: nothing is picked up or created
//!   implicitly (see `env.rs`).
//! - A key file must be a regular file (a symlink to one is fine, e.g. a
//!   mounted secret; a symlink to a device or a FIFO is refused before it is
//!   opened), at most [`MAX_KEY_FILE_BYTES`], and readable by its owner only.
//! - A new key file is created (mode 0600, never overwritten) only when the
//!   caller has checked that the store holds no data.
//! - A data directory readable or writable by group or others is refused.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use custos_crypto::{CryptoError, MasterKey};

/// The environment variable holding the master key in hex.
pub const MASTER_KEY_ENV: &str = "CUSTOS_MASTER_KEY";
/// The environment variable holding the previous master key in hex, during a rotation.
pub const PREVIOUS_KEY_ENV: &str = "CUSTOS_MASTER_KEY_PREVIOUS";
/// The key file's name in a SQLite data directory.
pub const KEY_FILE_NAME: &str = "master.key";
/// The largest key file read (a key is 64 characters and a newline).
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// What is wrong with a master key or the directory around it. Names files
/// and variables, never a key's text.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The environment variable does not hold a key.
    #[error("{var}: {error}")]
    BadEnvValue { var: String, error: CryptoError },
    /// The key file's text is not a key.
    #[error("{}: {error}", .file.display())]
    BadFileValue { file: PathBuf, error: CryptoError },
    /// The key file cannot be read.
    #[error("cannot read the master key file {}: {error}", .file.display())]
    Unreadable { file: PathBuf, error: std::io::Error },
    /// The key file is not a regular file.
    #[error(
        "the master key file {} is not a regular file (a device, FIFO, socket or directory, or a symlink to one); \
         it must be a file holding 64 hexadecimal characters",
        .file.display()
    )]
    NotAFile { file: PathBuf },
    /// The key file is larger than [`MAX_KEY_FILE_BYTES`] (`bytes` when known before reading).
    #[error("the master key file {} is too large to be a key{}", .file.display(), .bytes.map(|b| format!(" ({b} bytes)")).unwrap_or_default())]
    TooLarge { file: PathBuf, bytes: Option<u64> },
    /// The key file is readable by others.
    #[error("{} is readable by other users (mode {mode:o}); run `chmod 600 {}`", .file.display(), .file.display())]
    OpenKeyFile { file: PathBuf, mode: u32 },
    /// No key could be generated.
    #[error("{0}")]
    Generate(CryptoError),
    /// The key file cannot be created.
    #[error("cannot create {}: {error}", .file.display())]
    Create { file: PathBuf, error: std::io::Error },
    /// The data directory or key file belongs to another user.
    #[error(
        "{what} {} belongs to another user (uid {owner}, this process runs as uid {me}); it must belong to the \
         user running custos: run `chown {me} {}`",
        .path.display(),
        .path.display()
    )]
    ForeignOwner { what: &'static str, path: PathBuf, owner: u32, me: u32 },
    /// The data directory cannot be read.
    #[error("cannot read the data directory {}: {error}", .dir.display())]
    UnreadableDir { dir: PathBuf, error: std::io::Error },
    /// The data directory is not a directory.
    #[error("the data directory {} is not a directory", .dir.display())]
    NotADir { dir: PathBuf },
    /// The data directory is open to others.
    #[error(
        "the data directory {} is accessible to other users (mode {mode:o}); it holds the database and the \
         master key: run `chmod 700 {}`",
        .dir.display(),
        .dir.display()
    )]
    OpenDir { dir: PathBuf, mode: u32 },
}

/// Parses a key given in the environment variable `var`.
pub fn from_env_value(var: &str, hex: &str) -> Result<MasterKey, KeyError> {
    MasterKey::from_hex(hex).map_err(|error| KeyError::BadEnvValue { var: var.to_string(), error })
}

/// Reads a key file, refusing anything but a small regular file that only
/// its owner can read.
pub fn read_key_file(file: &Path) -> Result<MasterKey, KeyError> {
    let unreadable = |error| KeyError::Unreadable { file: file.to_path_buf(), error };
    // `metadata` follows symlinks: the target is what gets opened.
    let meta = fs::metadata(file).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile { file: file.to_path_buf() });
    }
    check_owner_only(file, &meta)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge { file: file.to_path_buf(), bytes: Some(meta.len()) });
    }
    let f = fs::File::open(file).map_err(unreadable)?;
    // The file may have been swapped after the check: read no more than a key file can hold.
    let mut text = zeroize::Zeroizing::new(String::new());
    f.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut text).map_err(unreadable)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge { file: file.to_path_buf(), bytes: None });
    }
    MasterKey::from_hex(&text).map_err(|error| KeyError::BadFileValue { file: file.to_path_buf(), error })
}

/// Creates a new key file (mode 0600, never overwriting one) with a fresh key.
/// If another process created it first, reads that one instead.
pub fn create_key_file(file: &Path) -> Result<MasterKey, KeyError> {
    let key = MasterKey::generate().map_err(KeyError::Generate)?;
    match write_new(file, key.to_hex().as_bytes()) {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(file),
        Err(error) => Err(KeyError::Create { file: file.to_path_buf(), error }),
    }
}

/// Refuses a data directory that group or others may read or write.
#[cfg(unix)]
pub fn check_data_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(dir).map_err(|error| KeyError::UnreadableDir { dir: dir.to_path_buf(), error })?;
    if !meta.is_dir() {
        return Err(KeyError::NotADir { dir: dir.to_path_buf() });
    }
    check_owned_by_me("the data directory", dir, &meta)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::OpenDir { dir: dir.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_data_dir(_dir: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// A temporary directory only its owner may enter (a data directory for the benchmarks).
pub fn private_temp_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

#[cfg(unix)]
fn write_new(file: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)?;
    f.write_all(content)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_new(file: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).create_new(true).open(file)?;
    f.write_all(content)?;
    f.sync_all()
}

#[cfg(unix)]
fn check_owner_only(file: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    check_owned_by_me("the master key file", file, meta)?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::OpenKeyFile { file: file.to_path_buf(), mode: mode & 0o777 });
    }
    Ok(())
}

/// Refuses a data directory or key file that another user owns: its owner could
/// read or swap the database or the key whatever its mode says.
#[cfg(unix)]
fn check_owned_by_me(what: &'static str, path: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid takes no argument, cannot fail and touches no memory.
    #[allow(unsafe_code)]
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(KeyError::ForeignOwner { what, path: path.to_path_buf(), owner: meta.uid(), me });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_file: &Path, _meta: &fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let k1 = create_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let k2 = read_key_file(&path).unwrap();
        assert_eq!(*k1.to_hex(), *k2.to_hex());
        // A second creation does not overwrite: it reads the existing key.
        assert_eq!(*create_key_file(&path).unwrap().to_hex(), *k1.to_hex());
    }

    #[test]
    fn bad_hex_in_the_environment_is_refused_without_echoing_it() {
        let e = from_env_value(MASTER_KEY_ENV, "zz-secret").unwrap_err().to_string();
        assert!(e.contains(MASTER_KEY_ENV) && !e.contains("secret"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        create_key_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_key_file(&path).unwrap_err().to_string().contains("chmod 600"));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_device_or_a_large_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(matches!(read_key_file(&path), Err(KeyError::NotAFile { .. })));
        let big = dir.path().join("big.key");
        write_new(&big, &vec![b'a'; 10_000]).unwrap();
        assert!(matches!(read_key_file(&big), Err(KeyError::TooLarge { bytes: Some(10_001), .. })));
    }

    #[cfg(unix)]
    #[test]
    fn an_open_data_directory_is_refused_with_chmod_700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_temp_dir().unwrap();
        check_data_dir(dir.path()).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_data_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("chmod 700") && e.contains("777"), "{e}");
    }
}
