//! Where the master key comes from: `CUSTOS_MASTER_KEY` (64 hex characters)
//! or a key file created on first use with mode 0600.

use std::fs;
use std::io::Write;
use std::path::Path;

use custos_crypto::MasterKey;

/// The environment variable holding the master key in hex.
pub const MASTER_KEY_ENV: &str = "CUSTOS_MASTER_KEY";

/// Where the master key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// From the environment.
    Environment,
    /// From an existing key file.
    File,
    /// A new key file was created.
    Created,
}

/// Loads the master key from `env_value` if given, else from `file`, creating
/// the file (mode 0600, never overwritten) when it does not exist.
pub fn load_or_create(env_value: Option<&str>, file: &Path) -> Result<(MasterKey, KeySource), String> {
    if let Some(hex) = env_value {
        let key = MasterKey::from_hex(hex).map_err(|e| format!("{MASTER_KEY_ENV}: {e}"))?;
        return Ok((key, KeySource::Environment));
    }
    match fs::read_to_string(file) {
        Ok(text) => {
            check_permissions(file)?;
            let key = MasterKey::from_hex(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok((key, KeySource::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate().map_err(|e| e.to_string())?;
            write_new(file, key.to_hex().as_bytes()).map_err(|e| format!("cannot create {}: {e}", file.display()))?;
            Ok((key, KeySource::Created))
        }
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
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
fn check_permissions(file: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            file.display(),
            mode & 0o777,
            file.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_file: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, s1) = load_or_create(None, &path).unwrap();
        assert_eq!(s1, KeySource::Created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (k2, s2) = load_or_create(None, &path).unwrap();
        assert_eq!(s2, KeySource::File);
        assert_eq!(*k1.to_hex(), *k2.to_hex());
    }

    #[test]
    fn the_environment_wins_and_bad_hex_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let hex = "11".repeat(32);
        let (k, s) = load_or_create(Some(&hex), &path).unwrap();
        assert_eq!((s, k.to_hex().as_str()), (KeySource::Environment, hex.as_str()));
        assert!(!path.exists());
        assert!(load_or_create(Some("zz"), &path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        load_or_create(None, &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(None, &path).unwrap_err().contains("chmod 600"));
    }
}
