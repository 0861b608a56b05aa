//! The store under the vault's integration tests: SQLite by default, or
//! PostgreSQL — a fresh database per test, dropped when the test ends — when
//! `CUSTOS_TEST_BACKEND=postgres`.
//!
//! The PostgreSQL server is `CUSTOS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). A server that cannot be reached is an
//! error that fails the test and says so: these tests never skip silently.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use custos_store::Store;
use custos_store_postgres::PostgresStore;
use custos_store_sqlite::SqliteStore;

/// The environment variable that selects the backend: `postgres` runs the
/// tests on PostgreSQL; anything else (or nothing) on SQLite.
pub const BACKEND_VAR: &str = "CUSTOS_TEST_BACKEND";

/// The store the tests hand the vault: either backend behind one type.
pub type TestStore = Arc<dyn Store>;

/// Where one test's data lives. Dropping it deletes the data.
pub struct TestStorage {
    place: Place,
}

enum Place {
    /// SQLite in memory: the data lives only as long as its one store.
    Memory,
    /// A SQLite file in a temporary directory.
    File { path: PathBuf, _dir: tempfile::TempDir },
    /// A PostgreSQL database of its own.
    Postgres(TestDatabase),
}

fn postgres_asked() -> bool {
    std::env::var(BACKEND_VAR).as_deref() == Ok("postgres")
}

impl TestStorage {
    /// SQLite in memory, or a fresh PostgreSQL database when asked.
    pub fn fresh() -> Result<TestStorage, String> {
        let place = if postgres_asked() { Place::Postgres(TestDatabase::create()?) } else { Place::Memory };
        Ok(TestStorage { place })
    }

    /// Storage whose data outlives a store, so that it can be opened again
    /// (say with another master key): a SQLite file, or a fresh PostgreSQL
    /// database when asked.
    pub fn reopenable() -> Result<TestStorage, String> {
        let place = if postgres_asked() {
            Place::Postgres(TestDatabase::create()?)
        } else {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            Place::File { path: dir.path().join("custos.db"), _dir: dir }
        };
        Ok(TestStorage { place })
    }

    /// Opens a store on this storage. For [`TestStorage::fresh`] on SQLite
    /// each call opens a new, empty database in memory: open it once.
    pub fn open(&self) -> Result<TestStore, String> {
        Ok(match &self.place {
            Place::Memory => Arc::new(SqliteStore::open_in_memory().map_err(|e| format!("SQLite in memory: {e}"))?),
            Place::File { path, .. } => {
                Arc::new(SqliteStore::open(path).map_err(|e| format!("SQLite at {}: {e}", path.display()))?)
            }
            Place::Postgres(db) => {
                Arc::new(PostgresStore::connect(&db.url).map_err(|e| format!("PostgreSQL store on {}: {e}", db.name))?)
            }
        })
    }
}

/// A PostgreSQL database created for one test and dropped (with its
/// connections) after it.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn create() -> Result<TestDatabase, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = std::env::var("CUSTOS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
            .trim_end_matches('/')
            .to_string();
        let admin_url = format!("{server}/postgres");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("custos_vault_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls).map_err(|e| {
            format!(
                "PostgreSQL is not reachable at {admin_url} (start it or set CUSTOS_TEST_POSTGRES_URL): {}",
                with_causes(&e)
            )
        })?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("create database {name}: {e}"))?;
        Ok(TestDatabase { url: format!("{server}/{name}"), admin_url, name })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = postgres::Client::connect(&self.admin_url, postgres::NoTls)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// An error with the chain of its causes ("error connecting to server: Connection refused ...").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
