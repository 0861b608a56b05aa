//! Errors of the PostgreSQL backend, and how PostgreSQL's errors become [`StoreError`]s.
//!
//! A message built here names the operation and the kind of failure, never a
//! value: bound parameters, stored bytes and the server's `DETAIL` (which
//! quotes key values) stay out of it, so a log line of a storage failure
//! cannot leak a personal value.

use std::fmt;

use custos_store::StoreError;
use postgres::error::SqlState;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database was migrated by a newer build, whose schema this one does not know.
    #[error(
        "the database is at schema version {found}, newer than this build of Custos knows (up to {supported}); \
         use the newer build, or restore a backup made by this one"
    )]
    SchemaTooNew {
        /// The highest version recorded in `custos_schema_migrations`.
        found: i64,
        /// The newest schema version this build has migrations for.
        supported: i64,
    },
    /// The connection string is not valid.
    #[error("invalid PostgreSQL connection string: {0}")]
    Config(String),
    /// PostgreSQL failed while connecting or migrating.
    #[error("cannot open the PostgreSQL store: {0}")]
    Postgres(String),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        StoreError::Backend(e.to_string())
    }
}

/// Describes a PostgreSQL error without any value that was bound or read.
pub(crate) struct Describe<'a>(pub(crate) &'a postgres::Error);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(db) = self.0.as_db_error() else {
            if self.0.is_closed() {
                return f.write_str("the connection to PostgreSQL is closed");
            }
            // Client-side failures (I/O, protocol, type conversion) describe
            // kinds and types, never values.
            return write!(f, "{}", self.0);
        };
        let code = db.code().code();
        write!(f, "SQLSTATE {code}")?;
        // Data exceptions (class 22) quote the offending input in their
        // message; every other message names only objects. The DETAIL, which
        // quotes key values, is never shown.
        if !code.starts_with("22") {
            write!(f, ": {}", db.message())?;
        }
        if let Some(constraint) = db.constraint() {
            write!(f, " (constraint {constraint})")?;
        } else if let Some(table) = db.table() {
            write!(f, " (table {table})")?;
        }
        Ok(())
    }
}

/// A [`StoreError::Backend`] for a PostgreSQL failure during `operation`.
pub(crate) fn backend(operation: &str, e: &postgres::Error) -> StoreError {
    if is_transient(e) {
        return StoreError::Unavailable(format!("{operation}: {}", Describe(e)));
    }
    StoreError::Backend(format!("{operation}: {}", Describe(e)))
}

/// Whether `e` may go away if the request is retried later: a lock held past
/// the timeout, a full disk, a read-only or standby server, one shutting
/// down, out of connections, or a lost connection.
fn is_transient(e: &postgres::Error) -> bool {
    const TRANSIENT: [SqlState; 8] = [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::DISK_FULL,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::CRASH_SHUTDOWN,
        SqlState::T_R_SERIALIZATION_FAILURE,
    ];
    e.is_closed() || e.code().is_some_and(|c| TRANSIENT.contains(c))
}

/// A [`StoreError::Backend`] for stored data that does not decode.
pub(crate) use custos_store::corrupt;

/// Whether `e` is a violation of a PRIMARY KEY or UNIQUE constraint (SQLSTATE 23505).
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Maps PostgreSQL errors of one operation to [`StoreError`]s.
pub(crate) trait Context<T> {
    /// Names the operation that failed.
    fn during(self, operation: &'static str) -> Result<T, StoreError>;

    /// Maps a unique violation to `exists`, any other failure as [`Context::during`].
    fn or_exists(self, exists: StoreError, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn during(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| backend(operation, &e))
    }

    fn or_exists(self, exists: StoreError, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| if is_unique_violation(&e) { exists } else { backend(operation, &e) })
    }
}
