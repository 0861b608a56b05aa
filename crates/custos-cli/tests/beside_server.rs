//! CLI commands run on the data directory of a live `custos serve` (as the
//! README tells operators to), and what the server's readiness says when its
//! store cannot write. The real binary for both, on SQLite, or on PostgreSQL
//! when `CUSTOS_TEST_BACKEND=postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use custos_test_support::TestDatabase;
use reqwest::blocking::Client;

/// A running `custos serve` on a fresh data directory.
/// The master key of the PostgreSQL runs (a PostgreSQL deployment must name its key).
const POSTGRES_MASTER_KEY: &str = "7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c";

struct Served {
    child: Child,
    base: String,
    admin: String,
    http: Client,
    /// The PostgreSQL database, on the PostgreSQL run; dropped after the server.
    db: Option<TestDatabase>,
    dir: tempfile::TempDir,
}

impl Served {
    /// Starts the server on the backend the run asks for.
    fn start() -> Served {
        let db = TestDatabase::create_if_asked("custos_beside").unwrap_or_else(|e| panic!("{e}"));
        Served::start_on(db)
    }

    /// Starts the server on SQLite, whatever the run asks for.
    fn start_on_sqlite() -> Served {
        Served::start_on(None)
    }

    fn start_on(db: Option<TestDatabase>) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("a log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
        cmd.arg("--data-dir").arg(dir.path().join("data"));
        if let Some(db) = &db {
            cmd.arg("--database").arg(db.url());
        }
        cmd.env_remove("CUSTOS_MASTER_KEY");
        if db.is_some() {
            // A PostgreSQL deployment names its master key explicitly.
            cmd.env("CUSTOS_MASTER_KEY", POSTGRES_MASTER_KEY);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("CUSTOS_POLICY")
            .env_remove("CUSTOS_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn custos serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the listening line");
        let base = line.trim().strip_prefix("listening on ").expect("a listening line").to_string();
        let admin = std::fs::read_to_string(dir.path().join("data").join("admin.key")).expect("admin.key");
        let http = Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
        Served { child, base, admin: admin.trim().to_string(), http, db, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a CLI command on the server's data directory (and database).
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
        cmd.arg("--data-dir").arg(self.data());
        cmd.env_remove("CUSTOS_MASTER_KEY");
        if let Some(db) = &self.db {
            cmd.arg("--database").arg(db.url()).env("CUSTOS_MASTER_KEY", POSTGRES_MASTER_KEY);
        }
        cmd.args(args).env_remove("CUSTOS_POLICY").env_remove("CUSTOS_DATA_DIR").output().expect("run custos")
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "custos {args:?} beside the server failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends a request with `key`; returns the status and the body.
    fn send(&self, key: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !key.is_empty() {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    }

    /// An admin request that must answer `want`.
    fn admin(&self, method: &str, path: &str, body: Option<&str>, want: u16) -> String {
        let (status, text) = self.send(&self.admin, method, path, body);
        assert_eq!(status, want, "{method} {path}: {text}\nserver log:\n{}", self.log());
        text
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn put_email(&self, id: &str, value: &str) {
        let body = format!(r#"{{"value":"{value}","source":"provided","purpose":"provide_offerings"}}"#);
        self.admin("PUT", &format!("/v1/subjects/{id}/data/contact.email"), Some(&body), 200);
    }

    fn read_email(&self, id: &str) -> String {
        self.admin("GET", &format!("/v1/subjects/{id}/data/contact.email?purpose=provide_offerings"), None, 200)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Defect 1 of issue 8: `custos key create` (or any audited command) beside a
/// running server made every later audited HTTP request fail with 500
/// (`UNIQUE constraint failed: audit.seq`) until restart.
#[test]
fn regression_cli_command_beside_running_server_keeps_chain_intact() {
    let served = Served::start();
    served.admin("POST", "/v1/subjects", Some(r#"{"id":"alice","jurisdiction":"eea"}"#), 201);
    served.put_email("alice", "alice@example.org");
    served.read_email("alice");

    let auditor = served.cli_ok(&["key", "create", "--role", "auditor"]);
    let auditor = auditor.trim();
    assert!(served.read_email("alice").contains("alice@example.org"), "an audited read after `key create`");
    served.put_email("alice", "alice@example.net");
    served.admin("GET", "/readyz", None, 200);
    // The key the CLI made works on the server.
    let (status, text) = served.send(auditor, "GET", "/v1/audit?limit=5", None);
    assert_eq!(status, 200, "{text}");

    served.cli_ok(&["subject", "add", "bob", "--jurisdiction", "eea"]);
    served.cli_ok(&[
        "data",
        "put",
        "bob",
        "contact.email",
        "bob@example.org",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ]);
    served.cli_ok(&["data", "get", "alice", "contact.email", "--purpose", "provide_offerings"]);
    served.admin("POST", "/v1/subjects", Some(r#"{"id":"carol","jurisdiction":"eea"}"#), 201);
    assert!(served.read_email("bob").contains("bob@example.org"), "the server reads what the CLI wrote");
    served.cli_ok(&["key", "create", "--role", "admin"]);
    served.admin("POST", "/v1/subjects/bob/erasure", None, 200);
    served.cli_ok(&["subject", "erase", "carol"]);
    served.read_email("alice");

    let verified = served.cli_ok(&["audit", "verify"]);
    assert!(verified.starts_with("ok: "), "custos audit verify beside the server: {verified}");
    let (status, text) = served.send(auditor, "POST", "/v1/audit/verify", None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"ok\":true"), "{text}");
    assert!(!served.log().contains("UNIQUE constraint"), "{}", served.log());
}

/// Holds the store's write lock from outside (a stuck writer in another
/// process): the SQLite database's write lock, or PostgreSQL's chain head row.
enum Held {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Held {
    fn take(served: &Served) -> Held {
        match &served.db {
            None => {
                let conn = rusqlite::Connection::open(served.data().join("custos.db")).expect("open the database");
                conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
                Held::Sqlite(conn)
            }
            Some(db) => {
                let mut client = postgres::Client::connect(db.url(), postgres::NoTls).expect("connect");
                client.batch_execute("BEGIN; SELECT * FROM audit_head FOR UPDATE").expect("lock the chain head");
                Held::Postgres(client)
            }
        }
    }

    fn release(self) {
        match self {
            Held::Sqlite(conn) => conn.execute_batch("ROLLBACK").expect("release the write lock"),
            Held::Postgres(mut client) => client.batch_execute("ROLLBACK").expect("release the chain head"),
        }
    }
}

/// Defect 1 of issue 8: `/readyz` said ready while no write could succeed;
/// it only read the audit head.
#[test]
fn regression_readyz_fails_when_store_cannot_write() {
    let served = Served::start();
    served.admin("GET", "/readyz", None, 200);
    let held = Held::take(&served);
    let (status, text) = served.send("", "GET", "/readyz", None);
    assert_eq!(status, 503, "readiness while no write can succeed: {text}");
    assert!(text.contains("cannot write"), "{text}");
    held.release();
    let (status, text) = served.send("", "GET", "/readyz", None);
    assert_eq!(status, 200, "readiness once the lock is released: {text}");
    served.admin("POST", "/v1/subjects", Some(r#"{"id":"alice","jurisdiction":"eea"}"#), 201);
}

fn scan(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the data directory") {
        let path = entry.expect("an entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// Defect 7 of issue 8, through the real server: after an erasure over HTTP,
/// while the server keeps running, neither the plaintext nor the wrapped key
/// nor a sealed value is left in any file of the data directory (database,
/// WAL, shared memory) once `ERASED_BYTES_GONE_WITHIN` has passed.
#[test]
fn regression_erased_key_not_recoverable_from_wal() {
    let served = Served::start_on_sqlite();
    served.admin("POST", "/v1/subjects", Some(r#"{"id":"erin","jurisdiction":"eea"}"#), 201);
    served.admin("POST", "/v1/subjects", Some(r#"{"id":"kept","jurisdiction":"eea"}"#), 201);
    let email = "erin.wal-probe-5521@example.org";
    for n in 0..3 {
        served.put_email("kept", &format!("kept-{n}@example.org"));
        served.put_email("erin", email);
    }
    // What the store holds for her, read from the file as it is before the erasure.
    let (wrapped, sealed) = {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = rusqlite::Connection::open_with_flags(served.data().join("custos.db"), flags).expect("open");
        let wrapped: Vec<u8> =
            conn.query_row("SELECT wrapped_key FROM subjects WHERE id = 'erin'", [], |r| r.get(0)).expect("her key");
        let mut stmt = conn.prepare("SELECT sealed FROM items WHERE subject = 'erin'").expect("a query");
        let sealed: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).expect("her items").map(Result::unwrap).collect();
        (wrapped, sealed)
    };
    assert_eq!(sealed.len(), 3);
    assert!(!scan(&served.data(), &wrapped).is_empty(), "the scan finds her key before the erasure");

    served.admin("POST", "/v1/subjects/erin/erasure", None, 200);
    std::thread::sleep(custos_store_sqlite::ERASED_BYTES_GONE_WITHIN);
    let data = served.data();
    assert_eq!(scan(&data, &wrapped), Vec::<String>::new(), "her wrapped key is still in these files");
    for value in &sealed {
        assert_eq!(scan(&data, value), Vec::<String>::new(), "a sealed value of hers is still in these files");
    }
    assert_eq!(scan(&data, email.as_bytes()), Vec::<String>::new(), "her email is in these files");
    assert!(served.read_email("kept").contains("kept-2@example.org"), "what was kept is still readable");
}
