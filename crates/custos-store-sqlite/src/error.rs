//! Errors of the SQLite backend, and how SQLite's errors become [`StoreError`]s.
//!
//! A message built here names the operation and the kind of failure, never a
//! value: SQL parameters, stored bytes and JSON contents stay out of it, so a
//! log line of a storage failure cannot leak a personal value.

use std::fmt;

use custos_store::StoreError;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file was written by a newer build of Custos, whose schema this one does not know.
    #[error(
        "the database is at schema version {found}, newer than this build of Custos knows (up to {supported}); \
         open it with the newer build, or restore a backup made by this one"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest schema version this build has migrations for.
        supported: i64,
    },
    /// SQLite failed while opening, configuring or migrating the database.
    #[error("cannot open the database: {0}")]
    Sqlite(String),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        StoreError::Backend(e.to_string())
    }
}

/// Describes a SQLite error without any value that was bound or read.
pub(crate) struct Describe<'a>(pub(crate) &'a rusqlite::Error);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use rusqlite::Error as E;
        match self.0 {
            // SQLite's own messages name tables, columns and constraints, never bound values.
            E::SqliteFailure(code, Some(message)) => write!(f, "{code} ({message})"),
            E::SqliteFailure(code, None) => write!(f, "{code}"),
            E::FromSqlConversionFailure(column, ty, _) => {
                write!(f, "column {column} holds a {ty} value that cannot be read")
            }
            E::IntegralValueOutOfRange(column, _) => write!(f, "column {column} holds an integer out of range"),
            E::Utf8Error(column, _) => write!(f, "column {column} holds text that is not UTF-8"),
            // The column name is left out: for an expression column it is the expression's text.
            E::InvalidColumnType(column, _, ty) => write!(f, "column {column} holds a {ty} value of the wrong type"),
            E::QueryReturnedNoRows => f.write_str("a query expected to return a row returned none"),
            E::InvalidColumnIndex(column) => write!(f, "no column {column}"),
            E::InvalidColumnName(name) => write!(f, "no column named {name}"),
            E::InvalidParameterCount(given, expected) => {
                write!(f, "{given} parameters given where {expected} were expected")
            }
            E::StatementChangedRows(n) => write!(f, "a statement changed {n} rows where one was expected"),
            E::ToSqlConversionFailure(_) => f.write_str("a value could not be converted for SQLite"),
            E::NulError(_) => f.write_str("a text value contains a NUL character"),
            E::InvalidPath(_) => f.write_str("the database path is not valid"),
            other => {
                // Any other variant is a programming error on our side; its
                // name is enough to find it, and naming it shows no value.
                let name = format!("{other:?}");
                let name = name.split(['(', ' ', '{']).next().unwrap_or("unknown");
                write!(f, "unexpected SQLite error {name}")
            }
        }
    }
}

/// A [`StoreError::Backend`] for a SQLite failure during `operation`.
pub(crate) fn backend(operation: &'static str, e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, ReadOnly};
    match e.sqlite_error_code() {
        // Another process holds the write lock past the busy timeout, the disk
        // is full, or the file cannot be written: the request may succeed later.
        Some(DatabaseBusy | DatabaseLocked | DiskFull | ReadOnly) => {
            StoreError::Unavailable(format!("{operation}: {}", Describe(e)))
        }
        _ => StoreError::Backend(format!("{operation}: {}", Describe(e))),
    }
}

/// A [`StoreError::Backend`] for stored data that does not decode.
pub(crate) use custos_store::corrupt;

/// Maps SQLite errors of one operation to [`StoreError`]s.
pub(crate) trait Context<T> {
    /// Names the operation that failed.
    fn during(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn during(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| backend(operation, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_message_names_the_operation_but_not_the_values() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)").unwrap();
        conn.execute("INSERT INTO t VALUES (?1)", ["secret-value@example.com"]).unwrap();
        let err = conn.execute("INSERT INTO t VALUES (?1)", ["secret-value@example.com"]).unwrap_err();
        let StoreError::Backend(message) = backend("writing t", &err) else { panic!("not a backend error") };
        assert!(message.starts_with("writing t: "), "{message}");
        assert!(message.contains("UNIQUE constraint failed"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_conversion_failure_does_not_show_the_stored_value() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err = conn.query_row("SELECT 'secret-text'", [], |r| r.get::<_, i64>(0)).unwrap_err();
        let message = Describe(&err).to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
