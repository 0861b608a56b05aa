//! The PostgreSQL backend of the Custos [`Store`](custos_store::Store): the
//! production store, with the same behaviour (and the same contract suite) as
//! the embedded SQLite one.
//!
//! The [`Store`](custos_store::Store) trait is synchronous, so this crate uses
//! the synchronous `postgres` client (which runs its own small runtime per
//! connection): it must not be called from inside an async task, only from
//! plain threads or tokio's blocking pool. Connections come from a small,
//! bounded pool of the store's own. There is no TLS (`NoTls`): connect over a
//! local socket, loopback or a trusted network.
//!
//! Every mutating call is one transaction that includes its audit entries. The
//! transaction locks the chain head row (`SELECT … FROM audit_head … FOR
//! UPDATE`) just before appending, so any number of stores — in one process or
//! several — sharing a database serialise their appends on that row and keep
//! one intact chain. Writes of items lock the rows of the subjects they write
//! for, so an erasure or a state change cannot interleave with them. Versions
//! are numbered from the stored ones read just before that lock (outside the
//! section concurrent writers serialise on); numbering is dense, so a version
//! another writer committed meanwhile collides on the primary key and the
//! batch is numbered again under the lock: no gaps, no duplicates. Lock order
//! is always subjects (by id) and then the head, so writers cannot deadlock.
//! Every connection uses generic plans (`plan_cache_mode=force_generic_plan`):
//! each statement is a key lookup, prepared once per connection.
//!
//! The schema (`migrations/`) is keyed by subject so that it can be
//! distributed by subject on Citus; see `migrations/0001_init.sql`. Item
//! versions are insert-only (`migrations/0002_insert_only_versions.sql`).
//!
//! Erasure deletes the wrapped key and every sealed item in one transaction.
//! PostgreSQL keeps deleted row versions on disk until (auto)vacuum reclaims
//! them, so unlike the SQLite backend's `secure_delete` the bytes are not
//! zeroed at once; the key is unreachable through any query from the commit on.

mod error;
mod migrations;
mod store;

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use custos_store::StoreError;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Statement};

pub use error::OpenError;
pub use migrations::SCHEMA_VERSION;

/// Connections a store opens at most, unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;

/// A Custos store in one PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// Audit appends waiting to be committed together (group commit).
    audit_queue: custos_store::AuditGroupCommit,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration may hold a password: show only where it points.
        f.debug_struct("PostgresStore")
            .field("dbname", &self.pool.config.get_dbname())
            .field("max_connections", &self.pool.max)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database named by `url` (a `postgres://` URL or a
    /// `key=value` connection string) and brings its schema up to date. A
    /// database migrated by a newer build is refused with
    /// [`OpenError::SchemaTooNew`] and left untouched.
    pub fn connect(url: &str) -> Result<PostgresStore, OpenError> {
        let config: Config = url.parse().map_err(|e: postgres::Error| OpenError::Config(e.to_string()))?;
        PostgresStore::connect_with(config, DEFAULT_MAX_CONNECTIONS)
    }

    /// Connects with a parsed configuration, opening at most `max_connections`
    /// connections (at least one). A database that does not exist yet is
    /// created first (as the embedded store creates its file), which needs
    /// the `CREATEDB` privilege; without it the error says what to do.
    pub fn connect_with(config: Config, max_connections: usize) -> Result<PostgresStore, OpenError> {
        let describe = |e: &postgres::Error| OpenError::Postgres(error::Describe(e).to_string());
        let mut client = match open(&config) {
            Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
                create_database(&config)?;
                open(&config).map_err(|e| describe(&e))?
            }
            other => other.map_err(|e| describe(&e))?,
        };
        migrations::migrate(&mut client)?;
        let pool = Pool {
            config,
            max: max_connections.max(1),
            state: Mutex::new(PoolState { idle: vec![Conn::new(client)], open: 1 }),
            returned: Condvar::new(),
        };
        Ok(PostgresStore { pool, audit_queue: custos_store::AuditGroupCommit::default() })
    }

    /// Runs `f` on a connection from the pool, waiting for one if all are
    /// in use, and returns the connection afterwards.
    fn with_client<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let (mut client, slot) = self.pool.get()?;
        let result = f(&mut client);
        slot.give_back(client);
        result
    }
}

/// Opens one connection of the store's.
///
/// Every statement is prepared once per connection and looks rows up by key,
/// so one generic plan serves all executions: PostgreSQL's default would
/// re-plan the first executions and keep re-planning whenever a custom plan
/// looks cheaper, and planning the lateral reads costs several times more
/// than running them. (A session setting rather than a startup option, so
/// that poolers which refuse startup options still pass it.)
fn open(config: &Config) -> Result<Client, postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute("SET plan_cache_mode = force_generic_plan")?;
    Ok(client)
}

/// Creates the database `config` names, connecting to the server's
/// `postgres` database to do it. Another process creating it at the same time
/// is not an error.
fn create_database(config: &Config) -> Result<(), OpenError> {
    let name = match (config.get_dbname(), config.get_user()) {
        (Some(name), _) | (None, Some(name)) => name.to_string(),
        (None, None) => return Err(OpenError::Config("the connection names no database".into())),
    };
    let cannot = |e: &postgres::Error| {
        OpenError::Postgres(format!(
            "the database \"{name}\" does not exist and could not be created ({}); create it, or connect as a \
             user with the CREATEDB privilege",
            error::Describe(e)
        ))
    };
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let mut client = maintenance.connect(NoTls).map_err(|e| cannot(&e))?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client.batch_execute(&format!("CREATE DATABASE {quoted}")) {
        Ok(()) => {
            tracing::info!(database = %name, "created the PostgreSQL database");
            Ok(())
        }
        // Another process may have created it meanwhile: PostgreSQL then
        // answers 42P04, or a unique violation when the two raced closely.
        // Whatever the error, the database existing now is what counts.
        Err(e) => match config.connect(NoTls) {
            Ok(_) => Ok(()),
            Err(_) => Err(cannot(&e)),
        },
    }
}

/// A pooled connection with the statements prepared on it, each prepared
/// once (by its SQL text) and reused, so a query costs one round trip.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn { client, statements: HashMap::new() }
    }
}

/// A bounded pool of connections.
struct Pool {
    config: Config,
    max: usize,
    state: Mutex<PoolState>,
    /// Signalled when a connection is returned or closed.
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections open, idle or in use.
    open: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection, with the slot it occupies in the pool.
    fn get(&self) -> Result<(Conn, Slot<'_>), StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(client) = state.idle.pop() {
                if client.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok((client, Slot { pool: self }));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                // Owns the slot from here: a failed connect gives it up.
                let slot = Slot { pool: self };
                let client = open(&self.config).map_err(|e| error::backend("connecting to PostgreSQL", &e))?;
                return Ok((Conn::new(client), slot));
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// One connection's place in the pool while it is in use. Dropped without
/// [`Slot::give_back`] (an error while connecting, a panic while in use), it
/// frees the place, so the pool opens a new connection instead.
struct Slot<'a> {
    pool: &'a Pool,
}

impl Slot<'_> {
    /// Returns a connection to the pool (or frees its place if it is closed).
    fn give_back(self, client: Conn) {
        if client.client.is_closed() {
            return; // dropping `self` frees the place
        }
        let pool = self.pool;
        std::mem::forget(self);
        pool.lock().idle.push(client);
        pool.returned.notify_one();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.pool.lock().open -= 1;
        self.pool.returned.notify_one();
    }
}
