//! Opening what a command needs: the policy, the data directory, the master
//! key, the store and the vault.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use custos_core::Policy;
use custos_core::time::SystemClock;
use custos_crypto::Keyring;
use custos_store_sqlite::SqliteStore;
use custos_vault::Vault;
use custos_vault::master_key::{self, MASTER_KEY_ENV};

use crate::cli::Global;

/// The bundled example policy: the AWS Privacy Notice of 24 January 2020.
pub const BUNDLED_POLICY: &str = include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml");
/// The name diagnostics use for the bundled policy.
pub const BUNDLED_POLICY_NAME: &str = "examples/aws-privacy-notice-2020-01-24.yaml (bundled)";

/// The policy's display name and text.
pub fn policy_text(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    match file {
        None => Ok((BUNDLED_POLICY_NAME.to_string(), BUNDLED_POLICY.to_string())),
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("cannot read policy file {}", f.display()))?;
            Ok((f.display().to_string(), text))
        }
    }
}

/// Loads and validates the policy in force.
pub fn load_policy(global: &Global) -> anyhow::Result<Policy> {
    let (name, text) = policy_text(global.policy.as_deref())?;
    Policy::from_yaml(&text).map_err(|e| anyhow::anyhow!("the policy does not load:\n{}", e.display_in(&name)))
}

/// The store the command line works on: PostgreSQL when `--database` (or
/// `CUSTOS_DATABASE_URL`) is given, else SQLite in the data directory.
pub type AnyStore = Arc<dyn custos_store::Store>;

/// Opens the vault over the configured store. The master key always comes
/// from `CUSTOS_MASTER_KEY` or the data directory's key file.
pub fn open_vault(global: &Global) -> anyhow::Result<Vault<AnyStore>> {
    let policy = Arc::new(load_policy(global)?);
    open_vault_on(&global.data_dir, global.database.as_deref(), policy)
}

/// Opens the vault on `database` (PostgreSQL) or, when absent, on SQLite in `dir`;
/// the master key comes from the environment or `dir`.
pub fn open_vault_on(dir: &Path, database: Option<&str>, policy: Arc<Policy>) -> anyhow::Result<Vault<AnyStore>> {
    match database {
        None => open_vault_with(dir, policy, |s| Arc::new(s) as AnyStore),
        Some(url) => {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                anyhow::bail!("--database must be a postgres:// URL (SQLite is used when it is absent)");
            }
            create_private_dir(dir)?;
            let keys = keyring(dir)?;
            let store = custos_store_postgres::PostgresStore::connect(url)
                .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL database: {e}"))?;
            Ok(Vault::new(policy, Arc::new(store) as AnyStore, keys, Arc::new(SystemClock)))
        }
    }
}

fn keyring(dir: &Path) -> anyhow::Result<Keyring> {
    let env_key = std::env::var(MASTER_KEY_ENV).ok();
    let (master, _) =
        master_key::load_or_create(env_key.as_deref(), &dir.join("master.key")).map_err(anyhow::Error::msg)?;
    Keyring::new(&master).context("cannot derive keys from the master key")
}

/// Opens a data directory's vault, wrapping its store with `wrap` (e.g. into `Arc<dyn Store>`).
pub fn open_vault_with<S: custos_store::Store>(
    dir: &Path,
    policy: Arc<Policy>,
    wrap: impl FnOnce(SqliteStore) -> S,
) -> anyhow::Result<Vault<S>> {
    create_private_dir(dir)?;
    let keys = keyring(dir)?;
    let db = dir.join("custos.db");
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open the database {}", db.display()))?;
    Ok(Vault::new(policy, wrap(store), keys, Arc::new(SystemClock)))
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
