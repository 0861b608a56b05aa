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
//! Any number of processes may open one database file at once (a CLI command
//! beside `custos serve`): SQLite serialises their writes, and the cached
//! chain head is checked inside every write transaction with `PRAGMA
//! data_version`, which changes exactly when another connection has
//! committed; the head is then read again from `audit_head` before anything
//! is appended.
//!
//! `secure_delete` is on, so the bytes of an erased subject's wrapped key and
//! sealed items are overwritten with zeros in the database pages rather than
//! left in free space; and each erasure is followed by a truncating
//! checkpoint, so that the WAL keeps no older copy of those pages either
//! (within [`ERASED_BYTES_GONE_WITHIN`]; see `checkpoint`). The database file
//! and its `-wal` and `-shm` files are private to their owner (mode 0600).

mod checkpoint;
mod error;
mod files;
mod migrations;
mod reseal;
mod store;
mod writable;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use custos_core::audit::ChainHead;
use custos_store::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

pub use error::OpenError;
pub use migrations::SCHEMA_VERSION;

use checkpoint::Checkpointer;
use error::Context;
use store::load_head;

/// How soon after an erasure commits no copy of the erased subject's wrapped
/// key or sealed items is left in the database file or its WAL, as long as no
/// reader (in any process) keeps reading a snapshot from before the erasure;
/// such a reader delays it until it ends (the wipe is retried every 250 ms).
pub const ERASED_BYTES_GONE_WITHIN: Duration = Duration::from_secs(2);

/// How long a connection waits for a lock held by another process before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Stops the background checkpoints when dropped; told of erasures.
    checkpointer: Option<Checkpointer>,
    readers: Option<ReaderPool>,
    /// Shared with the checkpointer, which truncates the WAL on it.
    writer: Arc<Mutex<Writer>>,
    /// Audit appends waiting to be committed together (group commit).
    audit_queue: custos_store::AuditGroupCommit,
}

/// A store identity's master key as a write checks it: its id and key-check value.
pub(crate) type IdentityKey = (Vec<u8>, Vec<u8>);

/// The write connection and the audit chain head as last committed.
struct Writer {
    conn: Connection,
    head: ChainHead,
    /// `PRAGMA data_version` when `head` was last known to be the stored
    /// head; `None` until the first write transaction reads it. Another
    /// connection's commit changes it, and the head is then read again.
    seen_version: Option<i64>,
    /// The master key the store identity records (id and key-check value),
    /// as last read inside a write transaction: `None` until read, and again
    /// whenever another connection has committed (with the head) or this one
    /// wrote the identity. `Some(None)`: no identity recorded yet.
    identity_key: Option<Option<IdentityKey>>,
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
        files::make_private(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| open_error("opening the file", &e))?;
        let writer = Arc::new(Mutex::new(Writer::start(conn, true)?));
        let checkpointer = Checkpointer::start(&path, writer.clone())?;
        Ok(SqliteStore {
            checkpointer: Some(checkpointer),
            readers: Some(ReaderPool { path, idle: Mutex::new(Vec::new()) }),
            writer,
            audit_queue: custos_store::AuditGroupCommit::default(),
        })
    }

    /// Opens a fresh database in memory (for tests and throwaway runs). Reads
    /// and writes share one connection.
    pub fn open_in_memory() -> Result<SqliteStore, OpenError> {
        let conn = Connection::open_in_memory().map_err(|e| open_error("opening in memory", &e))?;
        let writer = Writer::start(conn, false)?;
        Ok(SqliteStore {
            checkpointer: None,
            readers: None,
            writer: Arc::new(Mutex::new(writer)),
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
                // A large batch grows the WAL to its size; once checkpointed
                // and reset it is cut back to this (without it the file keeps
                // its largest size forever: 1.2 GB after a few 60 MB batches).
                conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
            }
            conn.pragma_update(None, "foreign_keys", true)?;
            conn.pragma_update(None, "secure_delete", true)?;
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
            Ok(())
        };
        setup(&conn).map_err(|e| open_error("configuring the connection", &e))?;
        migrations::migrate(&mut conn)?;
        let head = load_head(&conn).map_err(|e| OpenError::Sqlite(e.to_string()))?;
        Ok(Writer { conn, head, seen_version: None, identity_key: None })
    }
}

/// Bytes the WAL is cut back to after a checkpoint resets it.
pub const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

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

pub(crate) fn open_error(operation: &str, e: &rusqlite::Error) -> OpenError {
    OpenError::Sqlite(format!("{operation}: {}", error::Describe(e)))
}
