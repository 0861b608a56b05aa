//! A fresh PostgreSQL database per test, for the runs on the PostgreSQL backend.

#![allow(dead_code)]

/// The environment variable that selects the backend of the end-to-end tests:
/// `postgres` runs them with `--database` on a fresh database each; anything
/// else (or nothing) on SQLite in the data directory.
pub const BACKEND_VAR: &str = "CUSTOS_TEST_BACKEND";

/// A database created for one test and dropped (with its connections) after it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL to pass as `--database`.
    pub url: String,
}

impl TestDatabase {
    /// Creates a database on the server at `CUSTOS_TEST_POSTGRES_URL`
    /// (default `postgres://postgres@127.0.0.1:5432`); an unreachable server is an error.
    pub fn create(prefix: &str) -> Result<TestDatabase, String> {
        let server = std::env::var("CUSTOS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
            .trim_end_matches('/')
            .to_string();
        let admin_url = format!("{server}/postgres");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls).map_err(|e| {
            format!("PostgreSQL is not reachable at {admin_url} (start it or set CUSTOS_TEST_POSTGRES_URL): {e}")
        })?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("create database: {e}"))?;
        Ok(TestDatabase { url: format!("{server}/{name}"), admin_url, name })
    }

    /// A database when [`BACKEND_VAR`] is `postgres`, else `None`.
    pub fn create_if_asked(prefix: &str) -> Result<Option<TestDatabase>, String> {
        if std::env::var(BACKEND_VAR).as_deref() == Ok("postgres") { Self::create(prefix).map(Some) } else { Ok(None) }
    }

    /// Every row of every table of the test database, as text (to search it for values).
    pub fn dump(&self) -> Result<String, String> {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).map_err(|e| format!("connect: {e}"))?;
        let tables = client
            .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[])
            .map_err(|e| format!("list tables: {e}"))?;
        let mut out = String::new();
        for t in tables {
            let name: String = t.get(0);
            // A row as text: text columns verbatim, bytea columns as hex.
            let sql = format!("SELECT t::text FROM {name} t");
            for row in client.query(sql.as_str(), &[]).map_err(|e| format!("dump {name}: {e}"))? {
                let line: String = row.get(0);
                out.push_str(&line);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// Runs SQL on the test database directly (to tamper with it, as an attacker would).
    pub fn execute(&self, sql: &str) -> Result<u64, String> {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).map_err(|e| format!("connect: {e}"))?;
        client.execute(sql, &[]).map_err(|e| format!("{sql}: {e}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
