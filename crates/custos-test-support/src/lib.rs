//! What the integration tests of the vault, the server and the CLI share: a
//! fresh PostgreSQL database per test ([`TestDatabase`]) and the store under
//! test ([`TestStorage`]): SQLite by default, PostgreSQL when
//! `CUSTOS_TEST_BACKEND=postgres` ([`BACKEND_VAR`]).
//!
//! The PostgreSQL server is `CUSTOS_TEST_POSTGRES_URL` ([`POSTGRES_URL_VAR`],
//! default [`DEFAULT_POSTGRES_URL`]). A server that cannot be reached is an
//! error saying "PostgreSQL is not reachable at …", which fails the test: the
//! tests never skip silently.
//!
//! Errors are plain `String`s, so that a test can `panic!("{e}")` or pass them
//! on with `?`.
//!
//! The PostgreSQL store's own tests keep a helper of their own: that crate
//! cannot dev-depend on this one, which depends on it.

#![warn(missing_docs)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use custos_store::Store;
use custos_store_postgres::PostgresStore;
use custos_store_sqlite::SqliteStore;

/// The environment variable that selects the backend of the tests: `postgres`
/// runs them on PostgreSQL, a fresh database each; anything else (or nothing)
/// on SQLite.
pub const BACKEND_VAR: &str = "CUSTOS_TEST_BACKEND";

/// The environment variable naming the PostgreSQL server the tests create
/// their databases on (a URL without a database name).
pub const POSTGRES_URL_VAR: &str = "CUSTOS_TEST_POSTGRES_URL";

/// The PostgreSQL server used when [`POSTGRES_URL_VAR`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// Whether [`BACKEND_VAR`] asks for PostgreSQL.
pub fn postgres_asked() -> bool {
    std::env::var(BACKEND_VAR).as_deref() == Ok("postgres")
}

/// The longest database name PostgreSQL keeps whole (it cuts longer ones).
const MAX_NAME_LEN: usize = 63;

/// A PostgreSQL database created for one test and dropped (with any
/// connection still open to it) when this is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database on the server at [`POSTGRES_URL_VAR`]
    /// (default [`DEFAULT_POSTGRES_URL`]), named
    /// `<prefix>_test_<process id>_<counter>_<nanoseconds>` so that tests
    /// running at once, in one process or many, never share one.
    ///
    /// `prefix` is lowercase ASCII letters, digits and underscores, starting
    /// with a letter. An unreachable server is an error saying
    /// "PostgreSQL is not reachable at <url> (…): <cause>: <cause>…".
    pub fn create(prefix: &str) -> Result<TestDatabase, String> {
        let name = unique_name(prefix)?;
        let server = std::env::var(POSTGRES_URL_VAR)
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let admin_url = format!("{server}/postgres");
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls).map_err(|e| {
            format!(
                "PostgreSQL is not reachable at {admin_url} (start it or set {POSTGRES_URL_VAR}): {}",
                with_causes(&e)
            )
        })?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("create database {name}: {}", with_causes(&e)))?;
        Ok(TestDatabase { url: format!("{server}/{name}"), admin_url, name })
    }

    /// A database (as [`TestDatabase::create`]) when [`BACKEND_VAR`] is
    /// `postgres`, else `None`.
    pub fn create_if_asked(prefix: &str) -> Result<Option<TestDatabase>, String> {
        if postgres_asked() { Self::create(prefix).map(Some) } else { Ok(None) }
    }

    /// The database's URL (for `--database`, or a store to connect to).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every row of every table of the database, as text (to search it for
    /// values): text columns verbatim, `bytea` columns as hex.
    pub fn dump(&self) -> Result<String, String> {
        let mut client = self.connect()?;
        let tables = client
            .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[])
            .map_err(|e| format!("list tables: {e}"))?;
        let mut out = String::new();
        for t in tables {
            let name: String = t.get(0);
            let sql = format!("SELECT t::text FROM {name} t");
            for row in client.query(sql.as_str(), &[]).map_err(|e| format!("dump {name}: {e}"))? {
                let line: String = row.get(0);
                out.push_str(&line);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// Runs one SQL statement on the database directly (to tamper with it, as
    /// an attacker would); returns the number of rows it touched.
    pub fn execute(&self, sql: &str) -> Result<u64, String> {
        self.connect()?.execute(sql, &[]).map_err(|e| format!("{sql}: {e}"))
    }

    fn connect(&self) -> Result<postgres::Client, String> {
        postgres::Client::connect(&self.url, postgres::NoTls).map_err(|e| format!("connect: {e}"))
    }
}

impl Drop for TestDatabase {
    /// Drops the database. Never panics: a failure is reported on stderr (a
    /// test already failing must say why, not abort on a second panic). The
    /// work runs on a thread of its own, because the synchronous client
    /// refuses to block inside an async runtime, where a test may drop this.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let drop_database = move || {
            postgres::Client::connect(&admin_url, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .map_err(|e| with_causes(&e))
        };
        let outcome = match std::thread::Builder::new().name("drop-test-database".into()).spawn(drop_database) {
            Ok(thread) => thread.join().unwrap_or_else(|_| Err("the thread dropping it panicked".to_string())),
            Err(e) => Err(format!("no thread to drop it on: {e}")),
        };
        if let Err(e) = outcome {
            // Not `eprintln!`, which panics when stderr is gone.
            let _ = writeln!(std::io::stderr(), "could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `<prefix>_test_<process id>_<counter>_<nanoseconds>`, checked to be a
/// plain identifier PostgreSQL keeps whole.
fn unique_name(prefix: &str) -> Result<String, String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let plain = prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(format!("test database prefix {prefix:?}: use lowercase ASCII letters, digits and underscores"));
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("{prefix}_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    if name.len() > MAX_NAME_LEN {
        return Err(format!("test database name {name} is longer than {MAX_NAME_LEN} bytes: shorten the prefix"));
    }
    Ok(name)
}

/// An error with the chain of its causes ("error connecting to server:
/// Connection refused …"), each said once even where an error's text already
/// ends with its cause's.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

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

/// The prefix of the databases of [`TestStorage`].
const STORAGE_PREFIX: &str = "custos";

impl TestStorage {
    /// SQLite in memory, or a fresh PostgreSQL database when
    /// [`BACKEND_VAR`] asks for it.
    pub fn fresh() -> Result<TestStorage, String> {
        let place =
            if postgres_asked() { Place::Postgres(TestDatabase::create(STORAGE_PREFIX)?) } else { Place::Memory };
        Ok(TestStorage { place })
    }

    /// Storage whose data outlives a store, so that it can be opened again
    /// (say with another master key): a SQLite file in a temporary
    /// directory, or a fresh PostgreSQL database when asked.
    pub fn reopenable() -> Result<TestStorage, String> {
        let place = if postgres_asked() {
            Place::Postgres(TestDatabase::create(STORAGE_PREFIX)?)
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

    /// Whether the data lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.place, Place::Postgres(_))
    }
}

impl TestStorage {
    /// Everything the storage holds at rest, to search for values that must
    /// not be there: the SQLite file and its WAL byte for byte, or every row
    /// of every table of the PostgreSQL database as text ([`TestDatabase::dump`]).
    /// Not available for SQLite in memory.
    pub fn dump(&self) -> Result<Vec<u8>, String> {
        match &self.place {
            Place::Memory => Err("SQLite in memory has no files to dump: use TestStorage::reopenable".into()),
            Place::File { path, .. } => {
                let mut bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
                let wal = path.with_extension("db-wal");
                if wal.exists() {
                    bytes.extend(std::fs::read(&wal).map_err(|e| format!("read {}: {e}", wal.display()))?);
                }
                Ok(bytes)
            }
            Place::Postgres(db) => db.dump().map(String::into_bytes),
        }
    }

    /// Runs one SQL statement on the storage directly, behind the store's back
    /// (to build the rows an older version left, or to tamper as an attacker would).
    /// Not available for SQLite in memory.
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        match &self.place {
            Place::Memory => Err("SQLite in memory cannot be reached from outside: use TestStorage::reopenable".into()),
            Place::File { path, .. } => {
                rusqlite::Connection::open(path).and_then(|c| c.execute_batch(sql)).map_err(|e| format!("{sql}: {e}"))
            }
            Place::Postgres(db) => db.execute(sql).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_plain_and_short_enough() {
        let (a, b) = (unique_name("custos_two_servers"), unique_name("custos_two_servers"));
        assert!(a.is_ok() && b.is_ok() && a != b, "{a:?} {b:?}");
        assert!(a.is_ok_and(|n| n.starts_with("custos_two_servers_test_")));
        assert!(unique_name("Custos").is_err());
        assert!(unique_name("custos; DROP DATABASE postgres").is_err());
        assert!(unique_name(&"x".repeat(40)).is_err());
    }

    #[test]
    fn causes_are_chained_once_each() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let refused = E("Connection refused", None);
        let io = E("io: Connection refused", Some(Box::new(refused)));
        let top = E("error connecting to server", Some(Box::new(io)));
        assert_eq!(with_causes(&top), "error connecting to server: io: Connection refused");
    }
}
