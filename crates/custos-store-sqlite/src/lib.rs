//! The embedded SQLite backend of the Custos [`Store`](custos_store::Store):
//! one database file in WAL mode, with its schema migrations kept in the crate.
//!
//! One write connection sits behind a mutex together with the cached head of
//! the audit chain; every mutating call is one immediate transaction that
//! includes its audit entries, and the cached head moves only once that
//! transaction has committed. Reads of a file database use a small pool of
//! read-only connections, so in WAL mode they never wait for a long write; an
//! in-memory database has a single connection, shared by reads and writes.
//!
//! `secure_delete` is on, so the bytes of an erased subject's wrapped key and
//! sealed items are overwritten with zeros in the database pages rather than
//! left in free space.

mod checkpoints;
mod error;
mod migrations;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use custos_core::audit::ChainHead;
use custos_store::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

pub use error::OpenError;
pub use migrations::SCHEMA_VERSION;

use error::Context;
use store::load_head;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (the store uses fewer than this).
const STATEMENT_CACHE: usize = 64;

/// Idle read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 16;

/// Page cache of each read connection, in KiB.
const READER_CACHE_KIB: i64 = 1024;

/// Page cache of the write connection, in KiB.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// A Custos store in one SQLite database.
pub struct SqliteStore {
    // Fields drop in declaration order: the checkpointer stops and the read
    // connections close before the write connection, so that the writer is
    // the last connection and checkpoints the WAL into the database file when
    // it closes.
    /// Held for its `Drop`: stops the background checkpoints.
    _checkpointer: Option<Checkpointer>,
    readers: Option<ReaderPool>,
    writer: Mutex<Writer>,
    /// Audit appends waiting to be committed together (group commit).
    audit_queue: custos_store::AuditGroupCommit,
}

/// The write connection and the audit chain head as last committed.
struct Writer {
    conn: Connection,
    head: ChainHead,
}

/// Read-only connections to a database file, opened on demand.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.readers.as_ref().map(|r| &r.path)).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date. A database written by a newer build is refused with
    /// [`OpenError::SchemaTooNew`] and left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        let path = path.as_ref().to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| open_error("opening the file", &e))?;
        let writer = Writer::start(conn, true)?;
        let checkpointer = Checkpointer::start(&path)?;
        Ok(SqliteStore {
            _checkpointer: Some(checkpointer),
            readers: Some(ReaderPool { path, idle: Mutex::new(Vec::new()) }),
            writer: Mutex::new(writer),
            audit_queue: custos_store::AuditGroupCommit::default(),
        })
    }

    /// Opens a fresh database in memory (for tests and throwaway runs). Reads
    /// and writes share one connection.
    pub fn open_in_memory() -> Result<SqliteStore, OpenError> {
        let conn = Connection::open_in_memory().map_err(|e| open_error("opening in memory", &e))?;
        let writer = Writer::start(conn, false)?;
        Ok(SqliteStore {
            _checkpointer: None,
            readers: None,
            writer: Mutex::new(writer),
            audit_queue: custos_store::AuditGroupCommit::default(),
        })
    }

    /// The write connection. A panic in another thread while it held the lock
    /// leaves nothing half-done: its transaction rolled back as it unwound and
    /// the cached head only moves after a commit, so the lock is taken anyway.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a read connection: a pooled read-only one for a file, the
    /// write connection for an in-memory database.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let Some(pool) = &self.readers else {
            let writer = self.writer();
            return f(&writer.conn);
        };
        let idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => pool.open()?,
        };
        let result = f(&conn);
        let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

impl Writer {
    /// Configures the write connection, migrates the schema and loads the chain head.
    fn start(mut conn: Connection, file: bool) -> Result<Writer, OpenError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error("configuring the connection", &e))?;
        migrations::refuse_newer(&conn)?;
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            // Plans must not depend on bound values: otherwise a statement
            // whose plan weighs the partial token index is re-prepared on
            // every new binding, which triples the cost of a read.
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            if file {
                // Returns the mode now in force; a file database always accepts WAL.
                let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                // Commits never checkpoint (and fsync) inline: the
                // checkpointer thread does it in the background.
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            }
            conn.pragma_update(None, "foreign_keys", true)?;
            conn.pragma_update(None, "secure_delete", true)?;
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
            Ok(())
        };
        setup(&conn).map_err(|e| open_error("configuring the connection", &e))?;
        migrations::migrate(&mut conn)?;
        let head = load_head(&conn).map_err(|e| OpenError::Sqlite(e.to_string()))?;
        Ok(Writer { conn, head })
    }
}

impl ReaderPool {
    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).during("opening a read connection")?;
        conn.busy_timeout(BUSY_TIMEOUT).during("configuring a read connection")?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).during("configuring a read connection")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB).during("configuring a read connection")?;
        Ok(conn)
    }
}

/// A background thread that copies the WAL into the database file every
/// [`CHECKPOINT_EVERY`], so that no commit pays for a checkpoint (and its
/// fsync) inline. Passive checkpoints never block readers or the writer.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, OpenError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error("opening the checkpointer", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error("configuring the checkpointer", &e))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("custos-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        report_checkpoint_failure(&e);
                    }
                }
            })
            .map_err(|e| OpenError::Sqlite(format!("starting the checkpointer: {e}")))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A failed background checkpoint is retried at the next tick; the WAL only
/// grows meanwhile. It is reported on stderr (no values: SQLite's message).
fn report_checkpoint_failure(e: &rusqlite::Error) {
    eprintln!("custos: background WAL checkpoint failed (will retry): {}", error::Describe(e));
}

fn open_error(operation: &str, e: &rusqlite::Error) -> OpenError {
    OpenError::Sqlite(format!("{operation}: {}", error::Describe(e)))
}
