//! A fresh PostgreSQL database per test, dropped when the test ends.
//!
//! The server is `CUSTOS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). A server that cannot be reached fails
//! the test with a message saying so: these tests never skip silently.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use custos_store_postgres::PostgresStore;
use postgres::{Client, Config, NoTls};

/// The server the tests run against.
pub fn server_url() -> String {
    std::env::var("CUSTOS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A connection to the server's `postgres` database, for creating and dropping test databases.
fn admin(config: &Config) -> Client {
    let mut config = config.clone();
    config.dbname("postgres");
    config.connect(NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {} ({e}); start it or point CUSTOS_TEST_POSTGRES_URL at a server \
             where this user may CREATE DATABASE",
            server_url()
        )
    })
}

/// A database created for one test; dropped (with any connection still open to it) when this is dropped.
pub struct TestDb {
    admin: Config,
    /// The test database's connection configuration.
    pub config: Config,
    name: String,
}

impl TestDb {
    /// Creates an empty database with a random name.
    pub fn create() -> TestDb {
        let db = TestDb::reserve();
        admin(&db.admin)
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .unwrap_or_else(|e| panic!("cannot create the test database {}: {e}", db.name));
        db
    }

    /// A random database name that does not exist yet (dropped, if something creates it, when this is dropped).
    pub fn reserve() -> TestDb {
        let url = server_url();
        let admin_config: Config = url.parse().unwrap_or_else(|e| panic!("CUSTOS_TEST_POSTGRES_URL is invalid: {e}"));
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).expect("random bytes");
        let name = format!("custos_test_{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut config = admin_config.clone();
        config.dbname(&name);
        TestDb { admin: admin_config, config, name }
    }

    /// A store on this database.
    pub fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(self.config.clone(), custos_store_postgres::DEFAULT_MAX_CONNECTIONS)
            .unwrap_or_else(|e| panic!("the store does not open on {}: {e}", self.name))
    }

    /// A plain connection to this database.
    pub fn client(&self) -> Client {
        self.config.connect(NoTls).expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // No panic here: a test already failing because the server went away
        // must report that, not abort on a second panic.
        let mut config = self.admin.clone();
        config.dbname("postgres");
        let dropped = config
            .connect(NoTls)
            .and_then(|mut admin| admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// A fresh store with the guard that drops its database: a contract test fixture.
pub fn fresh_store() -> (PostgresStore, TestDb) {
    let db = TestDb::create();
    (db.store(), db)
}
