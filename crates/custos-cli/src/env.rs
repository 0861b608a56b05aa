//! Opening what a command needs: the policy, the data directory, the master
//! key, the store and the vault.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use custos_core::Policy;
use custos_core::time::Clock;
use custos_core::time::SystemClock;
use custos_crypto::{Keyring, MasterKey};
use custos_store_sqlite::SqliteStore;
use custos_vault::{Vault, VaultError};

use crate::master_key::{self, MASTER_KEY_ENV, PREVIOUS_KEY_ENV};

use crate::cli::Global;

/// The bundled example policy: the AWS Privacy Notice of 24 January 2020.
pub const BUNDLED_POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
/// The name diagnostics use for the bundled policy.
pub const BUNDLED_POLICY_NAME: &str = "examples/aws-privacy-notice-2020-01-24.yaml (bundled)";

/// The policy's display name and text.
pub fn policy_text(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    match file {
        None => Ok((BUNDLED_POLICY_NAME.to_string(), BUNDLED_POLICY.to_string())),
        Some(f) => Ok((f.display().to_string(), read_policy_file(f)?)),
    }
}

/// The largest policy file read (the bundled notice is about 30 KiB).
pub const MAX_POLICY_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a policy file: a regular file (a symlink to one is fine; a device,
/// FIFO or directory is refused before it is opened) of at most
/// [`MAX_POLICY_FILE_BYTES`], never more than that even if it grows.
fn read_policy_file(f: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let shown = f.display();
    // `metadata` follows symlinks: the target is what gets opened.
    let meta = std::fs::metadata(f).with_context(|| format!("cannot read policy file {shown}"))?;
    if !meta.is_file() {
        anyhow::bail!(
            "the policy file {shown} is not a regular file (a device, FIFO, socket or directory, or a symlink to one)"
        );
    }
    let too_large = || anyhow::anyhow!("the policy file {shown} is larger than {MAX_POLICY_FILE_BYTES} bytes");
    if meta.len() > MAX_POLICY_FILE_BYTES {
        return Err(too_large());
    }
    let file = std::fs::File::open(f).with_context(|| format!("cannot read policy file {shown}"))?;
    let mut text = String::new();
    file.take(MAX_POLICY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read policy file {shown}"))?;
    if text.len() as u64 > MAX_POLICY_FILE_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// Loads and validates the policy in force.
pub fn load_policy(global: &Global) -> anyhow::Result<Policy> {
    let (name, text) = policy_text(global.policy.as_deref())?;
    Policy::from_yaml(&text).map_err(|e| anyhow::anyhow!("the policy does not load:\n{}", e.display_in(&name)))
}

/// The store the command line works on: PostgreSQL when `--database` (or
/// `CUSTOS_DATABASE_URL`) is given, else SQLite in the data directory.
pub type AnyStore = Arc<dyn custos_store::Store>;

/// Opens the vault over the configured store, for one command: if the
/// command appends to the audit chain, the head is signed (a checkpoint)
/// before the process exits ([`SignsOnExit`]).
pub fn open_vault(global: &Global) -> anyhow::Result<SignsOnExit> {
    Ok(SignsOnExit::new(open_plain_vault(global)?))
}

/// Opens the vault over the configured store. The master key always comes
/// from `CUSTOS_MASTER_KEY` or the data directory's key file.
pub fn open_plain_vault(global: &Global) -> anyhow::Result<Vault<AnyStore>> {
    let policy = Arc::new(load_policy(global)?);
    open_vault_on(global, &global.data_dir, policy)
}

/// A command's vault that signs an audit checkpoint when it is dropped, if
/// the chain head moved while it was open: every CLI command that appends
/// audit entries (successful or denied) leaves them signed. A chain that does
/// not verify since the last checkpoint is not signed (a warning says why).
pub struct SignsOnExit {
    vault: Vault<AnyStore>,
    opened_at: Option<custos_core::audit::ChainHead>,
}

impl SignsOnExit {
    fn new(vault: Vault<AnyStore>) -> SignsOnExit {
        let opened_at = vault.store().audit_head().ok();
        SignsOnExit { vault, opened_at }
    }
}

impl std::ops::Deref for SignsOnExit {
    type Target = Vault<AnyStore>;

    fn deref(&self) -> &Vault<AnyStore> {
        &self.vault
    }
}

impl Drop for SignsOnExit {
    fn drop(&mut self) {
        match self.vault.store().audit_head() {
            Ok(now) if Some(now) != self.opened_at => {}
            _ => return,
        }
        match self.vault.sign_checkpoint() {
            Ok(Ok(_)) => {}
            Ok(Err(broken)) => {
                eprintln!("warning: the audit chain does not verify, so no checkpoint was signed: {broken}")
            }
            Err(e) => eprintln!("warning: could not sign an audit checkpoint: {e}"),
        }
    }
}

/// Opens the vault on `--database` (PostgreSQL) or, when absent, on SQLite in
/// `dir`. The master key comes from `CUSTOS_MASTER_KEY`, `--master-key-file`
/// or (SQLite only) `dir/master.key`, created only beside an empty database;
/// it must match the store's key-check value, and the policy's notice the
/// store's, before anything else is done.
pub fn open_vault_on(global: &Global, dir: &Path, policy: Arc<Policy>) -> anyhow::Result<Vault<AnyStore>> {
    // A PostgreSQL command without its key is refused before anything is created:
    // no data directory, no database, no schema.
    let postgres_key = match global.database.as_deref() {
        Some(url) if !url.starts_with("postgres://") && !url.starts_with("postgresql://") => {
            anyhow::bail!("--database must be a postgres:// URL (SQLite is used when it is absent)")
        }
        Some(_) => Some(postgres_master_key(global)?),
        None => None,
    };
    create_private_dir(dir)?;
    let (store, sqlite_db) = match global.database.as_deref() {
        None => {
            // The directory holds the database and the key file. (For PostgreSQL it holds at most admin.key, 0600.)
            master_key::check_data_dir(dir).map_err(anyhow::Error::msg)?;
            let db = dir.join("custos.db");
            let store = SqliteStore::open(&db).with_context(|| format!("cannot open the database {}", db.display()))?;
            (Arc::new(store) as AnyStore, Some(db))
        }
        Some(url) => {
            let store = custos_store_postgres::PostgresStore::connect(url)
                .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL database: {e}"))?;
            (Arc::new(store) as AnyStore, None)
        }
    };
    let mut keys = keyring(global, dir, postgres_key, &*store, sqlite_db.as_deref())?;
    let binding = custos_vault::bind_store(&*store, &mut keys, &policy, SystemClock.now())?;
    if let Some((from, to)) = &binding.adopted_notice {
        eprintln!("note: adopted notice version {to} (was {from}) for this store");
    }
    let vault = Vault::new(policy, store, keys, Arc::new(SystemClock));
    vault.seal_legacy_subjects().context("cannot seal the metadata of subjects stored before it was sealed")?;
    let resealing = vault
        .bind_item_versions(custos_vault::RESEAL_BATCH, &custos_vault::By::Cli)
        .context("cannot re-seal the values stored before values were bound to their versions")?;
    if resealing.unreadable > 0 {
        eprintln!(
            "warning: {} stored value(s) from before version binding do not open and stay unreadable",
            resealing.unreadable
        );
    }
    Ok(vault)
}

/// The keyring: the master key, plus the previous one during a rotation.
fn keyring(
    global: &Global,
    dir: &Path,
    postgres_key: Option<MasterKey>,
    store: &dyn custos_store::Store,
    sqlite_db: Option<&Path>,
) -> anyhow::Result<Keyring> {
    let master = match postgres_key {
        Some(key) => key,
        None => master_key(global, dir, store, sqlite_db)?,
    };
    let keys = Keyring::new(&master).context("cannot derive keys from the master key")?;
    let previous = match (std::env::var(PREVIOUS_KEY_ENV).ok(), &global.previous_master_key_file) {
        (Some(hex), _) => Some(master_key::from_env_value(PREVIOUS_KEY_ENV, &hex).map_err(anyhow::Error::msg)?),
        (None, Some(file)) => Some(master_key::read_key_file(file).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    match previous {
        Some(previous) => keys.with_previous(&previous).context("the previous master key"),
        None => Ok(keys),
    }
}

fn master_key(
    global: &Global,
    dir: &Path,
    store: &dyn custos_store::Store,
    sqlite_db: Option<&Path>,
) -> anyhow::Result<MasterKey> {
    if let Ok(hex) = std::env::var(MASTER_KEY_ENV) {
        return master_key::from_env_value(MASTER_KEY_ENV, &hex).map_err(anyhow::Error::msg);
    }
    let Some(db) = sqlite_db else {
        return postgres_master_key(global);
    };
    let file = global.master_key_file.clone().unwrap_or_else(|| dir.join(master_key::KEY_FILE_NAME));
    match std::fs::symlink_metadata(&file) {
        Ok(_) => master_key::read_key_file(&file).map_err(anyhow::Error::msg),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let used = store.holds_data().map_err(VaultError::from)?
                || store.store_identity().map_err(VaultError::from)?.is_some();
            if used {
                anyhow::bail!(
                    "the master key file {} is missing, but the database {} holds data: restore the key file (or \
                     set {MASTER_KEY_ENV}); a new key would leave that data unreadable, so none is created",
                    file.display(),
                    db.display()
                );
            }
            master_key::create_key_file(&file).map_err(anyhow::Error::msg)
        }
        Err(e) => anyhow::bail!("cannot read the master key file {}: {e}", file.display()),
    }
}

/// A PostgreSQL database's master key: `CUSTOS_MASTER_KEY` or `--master-key-file`, never implicit.
fn postgres_master_key(global: &Global) -> anyhow::Result<MasterKey> {
    if let Ok(hex) = std::env::var(MASTER_KEY_ENV) {
        return master_key::from_env_value(MASTER_KEY_ENV, &hex).map_err(anyhow::Error::msg);
    }
    let Some(file) = &global.master_key_file else {
        anyhow::bail!(
            "a PostgreSQL database needs its master key named explicitly: set {MASTER_KEY_ENV} or pass \
             --master-key-file FILE (CUSTOS_MASTER_KEY_FILE); no key file is picked up or created implicitly. \
             `custos key generate-master` prints a new key"
        );
    };
    master_key::read_key_file(file).map_err(anyhow::Error::msg)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))
    }
}
