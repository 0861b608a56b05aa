//! The master key, the data directory and the policy, checked against the
//! store by every command of the real binary; and master-key rotation.
//!
//! Run on PostgreSQL too with `CUSTOS_TEST_BACKEND=postgres` (the tests that
//! only make sense on one backend say so).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use custos_test_support::TestDatabase;

const KEY_A: &str = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";
const KEY_B: &str = "0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd";
const WRONG: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const EMAIL: &str = "grace.hopper.1906@example.org";
const MISMATCH: &str = "does not match this store";

/// A data directory, and on the PostgreSQL run a database, for one test.
struct Case {
    dir: tempfile::TempDir,
    db: Option<TestDatabase>,
}

/// Which master key a command gets.
#[derive(Clone, Copy)]
enum Key<'a> {
    /// SQLite: the data directory's key file; PostgreSQL: `KEY_A` (it must be named).
    Usual,
    /// `CUSTOS_MASTER_KEY`.
    Env(&'a str),
    /// `CUSTOS_MASTER_KEY` and `CUSTOS_MASTER_KEY_PREVIOUS`.
    Rotating { current: &'a str, previous: &'a str },
    /// None at all.
    Nothing,
}

impl Case {
    fn new() -> Case {
        let db = TestDatabase::create_if_asked("custos_keys").unwrap_or_else(|e| panic!("{e}"));
        Case { dir: tempfile::tempdir().expect("temp dir"), db }
    }

    fn sqlite() -> Case {
        Case { dir: tempfile::tempdir().expect("temp dir"), db: None }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, key: Key<'_>, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
        c.arg("--data-dir").arg(self.data());
        if let Some(db) = &self.db {
            c.arg("--database").arg(db.url());
        }
        c.args(args).current_dir(self.dir.path());
        for var in [
            "CUSTOS_MASTER_KEY",
            "CUSTOS_MASTER_KEY_PREVIOUS",
            "CUSTOS_MASTER_KEY_FILE",
            "CUSTOS_MASTER_KEY_PREVIOUS_FILE",
            "CUSTOS_POLICY",
            "CUSTOS_DATA_DIR",
            "CUSTOS_DATABASE_URL",
            "CUSTOS_LISTEN",
        ] {
            c.env_remove(var);
        }
        match key {
            Key::Usual if self.db.is_some() => {
                c.env("CUSTOS_MASTER_KEY", KEY_A);
            }
            Key::Usual | Key::Nothing => {}
            Key::Env(k) => {
                c.env("CUSTOS_MASTER_KEY", k);
            }
            Key::Rotating { current, previous } => {
                c.env("CUSTOS_MASTER_KEY", current).env("CUSTOS_MASTER_KEY_PREVIOUS", previous);
            }
        }
        c
    }

    /// Runs a command to its end, failing the test if it takes 60 seconds (a hang).
    fn run(&self, key: Key<'_>, args: &[&str]) -> Output {
        finish(self.command(key, args).stdout(Stdio::piped()).stderr(Stdio::piped()), args)
    }

    fn ok(&self, key: Key<'_>, args: &[&str]) -> String {
        let out = self.run(key, args);
        assert_eq!(out.status.code(), Some(0), "custos {args:?} failed: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command expected to fail with exit 1; returns its stderr.
    fn refused(&self, key: Key<'_>, args: &[&str]) -> String {
        let out = self.run(key, args);
        assert_eq!(out.status.code(), Some(1), "custos {args:?} should fail with exit 1: {}", stderr(&out));
        stderr(&out)
    }

    fn audit_count(&self, key: Key<'_>) -> u64 {
        let out = self.ok(key, &["audit", "verify"]);
        out.lines()
            .find_map(|l| l.strip_prefix("ok: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected verify output: {out}"))
    }

    /// A subject with an email, written with `key`.
    fn populate(&self, key: Key<'_>, id: &str) {
        self.ok(key, &["subject", "add", id, "--jurisdiction", "eea"]);
        self.ok(
            key,
            &["data", "put", id, "contact.email", EMAIL, "--source", "provided", "--purpose", "provide_offerings"],
        );
    }

    fn email(&self, key: Key<'_>, id: &str) -> String {
        self.ok(key, &["data", "get", id, "contact.email", "--purpose", "provide_offerings"]).trim().to_string()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn finish(command: &mut Command, args: &[&str]) -> Output {
    use std::io::Read as _;
    let mut child = command.spawn().expect("spawn custos");
    // The pipes are drained while the command runs: a command whose output
    // outgrows a pipe's buffer would otherwise block on it and never exit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait for custos") {
            let stdout = stdout.join().expect("stdout reader");
            let stderr = stderr.join().expect("stderr reader");
            return Output { status, stdout, stderr };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("custos {args:?} hung for 60 seconds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every kind of command, each naming things that exist after `populate(alice)`.
const COMMANDS: &[&[&str]] = &[
    &["migrate"],
    &["key", "create", "--role", "admin"],
    &["key", "list"],
    &["key", "revoke", "abcdefgh"],
    &["key", "rotate-master"],
    &["subject", "add", "bob", "--jurisdiction", "eea"],
    &["subject", "show", "alice"],
    &["subject", "erase", "alice"],
    &[
        "data",
        "put",
        "alice",
        "contact.email",
        "x@example.org",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ],
    &["data", "get", "alice", "contact.email", "--purpose", "provide_offerings"],
    &["data", "all", "alice", "--purpose", "provide_offerings"],
    &["data", "history", "alice", "contact.email", "--purpose", "provide_offerings"],
    &["data", "detokenize", "tok_00000000000000000000000000000000", "--purpose", "provide_offerings"],
    &["consent", "grant", "alice", "provide_offerings"],
    &["consent", "withdraw", "alice", "provide_offerings"],
    &["object", "alice", "provide_offerings"],
    &["restrict", "alice"],
    &["audit", "verify"],
    &["audit", "list"],
    &["audit", "pseudonym", "alice"],
    &["serve", "--listen", "127.0.0.1:0"],
];

#[test]
fn regression_wrong_master_key_is_refused_by_every_command() {
    let case = Case::new();
    case.populate(Key::Usual, "alice");
    let entries = case.audit_count(Key::Usual);
    for args in COMMANDS {
        let err = case.refused(Key::Env(WRONG), args);
        assert!(err.contains(MISMATCH), "custos {args:?} with a wrong key: {err}");
        assert!(!err.contains(WRONG), "the key is never echoed: {err}");
    }
    // Nothing was written: no entry, no subject, no API key, no admin key file, the value intact.
    assert_eq!(case.audit_count(Key::Usual), entries);
    assert!(case.run(Key::Usual, &["subject", "show", "bob"]).status.code() != Some(0), "bob was not created");
    assert_eq!(case.ok(Key::Usual, &["key", "list"]).trim(), "");
    assert!(!case.data().join("admin.key").exists(), "serve did not start");
    assert_eq!(case.email(Key::Usual, "alice"), EMAIL);
}

#[test]
fn regression_missing_master_key_beside_data_is_refused() {
    let case = Case::sqlite();
    case.populate(Key::Usual, "alice");
    let key_file = case.data().join("master.key");
    let saved = std::fs::read_to_string(&key_file).expect("the key file was created");
    std::fs::remove_file(&key_file).expect("remove the key file");
    for args in [&["subject", "show", "alice"][..], &["subject", "add", "bob", "--jurisdiction", "eea"], &["migrate"]] {
        let err = case.refused(Key::Usual, args);
        assert!(err.contains("missing") && err.contains("holds data"), "custos {args:?}: {err}");
        assert!(!key_file.exists(), "no new key is created beside data");
    }
    std::fs::write(&key_file, saved).expect("restore the key file");
    #[cfg(unix)]
    chmod(&key_file, 0o600);
    assert_eq!(case.email(Key::Usual, "alice"), EMAIL);

    // A database holding only an API key (no subject) is data too.
    let keys_only = Case::sqlite();
    keys_only.ok(Key::Usual, &["key", "create", "--role", "admin"]);
    std::fs::remove_file(keys_only.data().join("master.key")).expect("remove the key file");
    let err = keys_only.refused(Key::Usual, &["key", "list"]);
    assert!(err.contains("holds data"), "{err}");
}

#[test]
fn a_key_is_created_only_for_a_database_that_does_not_exist_or_is_empty() {
    let case = Case::sqlite();
    // An empty database made by someone else (no identity, no data) may still get a key.
    std::fs::create_dir_all(case.data()).expect("mkdir");
    #[cfg(unix)]
    chmod(&case.data(), 0o700);
    drop(custos_store_sqlite::SqliteStore::open(case.data().join("custos.db")).expect("an empty database"));
    case.ok(Key::Usual, &["migrate"]);
    assert!(case.data().join("master.key").exists());
    // Once a store is keyed (its key check recorded), a lost key file is not replaced.
    std::fs::remove_file(case.data().join("master.key")).expect("remove the key file");
    let err = case.refused(Key::Usual, &["subject", "add", "alice", "--jurisdiction", "eea"]);
    assert!(err.contains("missing"), "{err}");
    assert!(!case.data().join("master.key").exists());
}

#[test]
fn regression_postgres_needs_an_explicit_master_key() {
    let db = TestDatabase::create("custos_pg_key").unwrap_or_else(|e| panic!("{e}"));
    let case = Case { dir: tempfile::tempdir().expect("temp dir"), db: Some(db) };
    // From a working directory with a default ./custos-data, and without --data-dir.
    let url = case.db.as_ref().map(TestDatabase::url).unwrap_or_default().to_string();
    let run = |key: Key<'_>, extra: &[&str], args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
        c.arg("--database").arg(&url).args(extra).args(args).current_dir(case.dir.path());
        for var in ["CUSTOS_MASTER_KEY", "CUSTOS_MASTER_KEY_PREVIOUS", "CUSTOS_MASTER_KEY_FILE", "CUSTOS_DATA_DIR"] {
            c.env_remove(var);
        }
        if let Key::Env(k) = key {
            c.env("CUSTOS_MASTER_KEY", k);
        }
        finish(c.stdout(Stdio::piped()).stderr(Stdio::piped()), args)
    };
    let out = run(Key::Nothing, &[], &["subject", "add", "alice", "--jurisdiction", "eea"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("named explicitly"), "{}", stderr(&out));
    let implicit = case.dir.path().join("custos-data").join("master.key");
    assert!(!implicit.exists(), "no ./custos-data/master.key is created for PostgreSQL");

    // Even an existing ./custos-data/master.key is not picked up.
    std::fs::create_dir_all(implicit.parent().expect("parent")).expect("mkdir");
    #[cfg(unix)]
    chmod(implicit.parent().expect("parent"), 0o700);
    std::fs::write(&implicit, KEY_A).expect("write a key file");
    #[cfg(unix)]
    chmod(&implicit, 0o600);
    let out = run(Key::Nothing, &[], &["migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("named explicitly"), "{}", stderr(&out));

    // A named key file that does not exist is not created.
    let named = case.dir.path().join("named.key");
    let named_arg = named.to_str().expect("utf-8 path");
    let out = run(Key::Nothing, &["--master-key-file", named_arg], &["migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!named.exists());

    // Named explicitly, it works; and the same key from a file works too.
    let out = run(Key::Env(KEY_A), &[], &["subject", "add", "alice", "--jurisdiction", "eea"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out =
        run(Key::Nothing, &["--master-key-file", implicit.to_str().expect("utf-8")], &["subject", "show", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Another key is refused.
    let out = run(Key::Env(KEY_B), &[], &["subject", "show", "alice"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(MISMATCH), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn regression_master_key_symlink_to_dev_zero_does_not_hang() {
    let case = Case::sqlite();
    std::fs::create_dir_all(case.data()).expect("mkdir");
    chmod(&case.data(), 0o700);
    std::os::unix::fs::symlink("/dev/zero", case.data().join("master.key")).expect("symlink");
    let err = case.refused(Key::Usual, &["subject", "add", "alice", "--jurisdiction", "eea"]);
    assert!(err.contains("not a regular file"), "{err}");
}

#[cfg(unix)]
#[test]
fn regression_world_writable_data_dir_is_refused() {
    let case = Case::sqlite();
    std::fs::create_dir_all(case.data()).expect("mkdir");
    chmod(&case.data(), 0o777);
    let err = case.refused(Key::Usual, &["subject", "add", "alice", "--jurisdiction", "eea"]);
    assert!(err.contains("chmod 700"), "{err}");
    assert!(!case.data().join("custos.db").exists(), "nothing was created");
    assert!(!case.data().join("master.key").exists(), "nothing was created");
    chmod(&case.data(), 0o700);
    case.populate(Key::Usual, "alice");
}

/// The bundled policy with its notice id or version replaced, written beside the case.
fn policy_variant(case: &Case, name: &str, from: &str, to: &str) -> PathBuf {
    let bundled = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/aws-privacy-notice-2020-01-24.yaml"
    ))
    .expect("bundled policy");
    assert!(bundled.contains(from), "the bundled policy has `{from}`");
    let path = case.dir.path().join(name);
    std::fs::write(&path, bundled.replacen(from, to, 1)).expect("write the policy");
    path
}

#[test]
fn regression_policy_with_another_notice_is_refused() {
    let case = Case::new();
    case.populate(Key::Usual, "alice");
    let other = policy_variant(&case, "other.yaml", "id: aws-privacy-notice", "id: another-company-notice");
    let other = other.to_str().expect("utf-8 path");
    let entries = case.audit_count(Key::Usual);
    for args in [&["subject", "show", "alice"][..], &["subject", "add", "bob", "--jurisdiction", "eea"]] {
        let mut all = vec!["--policy", other];
        all.extend_from_slice(args);
        let err = case.refused(Key::Usual, &all);
        assert!(
            err.contains("created with notice `aws-privacy-notice`") && err.contains("--policy <file>"),
            "custos {all:?}: {err}"
        );
    }
    assert_eq!(case.audit_count(Key::Usual), entries, "nothing was written");
}

#[test]
fn a_newer_version_of_the_same_notice_is_adopted_and_an_older_one_refused() {
    let case = Case::new();
    case.populate(Key::Usual, "alice");
    let newer = policy_variant(&case, "newer.yaml", "version: \"2020-01-24\"", "version: \"2021-06-01\"");
    let newer = newer.to_str().expect("utf-8 path");
    let out = case.run(Key::Usual, &["--policy", newer, "subject", "show", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("adopted notice version 2021-06-01"), "{}", stderr(&out));
    let audit = case.ok(Key::Usual, &["--policy", newer, "audit", "list"]);
    assert!(audit.contains("\"notice_version_adopted\""), "the adoption is audited: {audit}");
    // The bundled (older) version is now refused.
    let err = case.refused(Key::Usual, &["subject", "show", "alice"]);
    assert!(err.contains("version 2021-06-01") && err.contains("not newer"), "{err}");
    let read = case.ok(
        Key::Usual,
        &["--policy", newer, "data", "get", "alice", "contact.email", "--purpose", "provide_offerings"],
    );
    assert_eq!(read.trim(), EMAIL);
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(case: &Case, key: Key<'_>) -> Server {
        let mut child = case
            .command(key, &["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn custos serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("no listening line: {line}"));
        Server { base: base.to_string(), child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

#[test]
fn rotation_on_postgres_rewraps_every_key_online_and_a_rotated_store_refuses_the_old_key_alone() {
    let db = TestDatabase::create("custos_rotation").unwrap_or_else(|e| panic!("{e}"));
    rotation(Case { dir: tempfile::tempdir().expect("temp dir"), db: Some(db) }, true);
}

#[test]
fn rotation_on_sqlite_rewraps_every_key_and_a_rotated_store_refuses_the_old_key_alone() {
    rotation(Case::sqlite(), false);
}

/// On SQLite too: the rotating CLI process writes beside the running server
/// (issue 8, defect 1 made this fail before each write re-checked the head).
#[test]
fn rotation_on_sqlite_is_online_too() {
    rotation(Case::sqlite(), true);
}

/// Seven subjects under one key, rotated to another in batches of two; with
/// `online`, a server holding both keys reads all along.
fn rotation(case: Case, online: bool) {
    let old = if case.db.is_some() { Key::Env(KEY_A) } else { Key::Usual };
    let old_hex = if case.db.is_some() {
        KEY_A.to_string()
    } else {
        case.ok(Key::Usual, &["migrate"]);
        std::fs::read_to_string(case.data().join("master.key")).expect("key file").trim().to_string()
    };
    let ids: Vec<String> = (0..7).map(|i| format!("person-{i}")).collect();
    for id in &ids {
        case.populate(old, id);
    }
    let pseudonym = case.ok(old, &["audit", "pseudonym", "person-0"]);
    let both = Key::Rotating { current: KEY_B, previous: &old_hex };

    // A server with both keys keeps reading while the keys are re-wrapped.
    if !online {
        let out = case.ok(both, &["key", "rotate-master", "--batch", "2"]);
        assert!(out.contains("re-wrapped 7 data key(s) in 4 batch(es)"), "{out}");
        return after_rotation(&case, old, &old_hex, &ids, &pseudonym);
    }
    let server = Server::start(&case, both);
    let admin = std::fs::read_to_string(case.data().join("admin.key")).expect("bootstrapped admin key");
    let auth = format!("Bearer {}", admin.trim());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, base, auth, ids) = (stop.clone(), server.base.clone(), auth.clone(), ids.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 20 {
                let id = &ids[reads as usize % ids.len()];
                let r = client
                    .get(format!("{base}/v1/subjects/{id}/data/contact.email?purpose=provide_offerings"))
                    .header("authorization", &auth)
                    .send()
                    .expect("read");
                let status = r.status();
                let body = r.text().unwrap_or_default();
                assert_eq!(status, 200, "a read during the rotation failed: {body}");
                assert!(body.contains(EMAIL), "{body}");
                reads += 1;
            }
            reads
        })
    };
    let out = case.ok(both, &["key", "rotate-master", "--batch", "2"]);
    assert!(out.contains("re-wrapped 7 data key(s) in 4 batch(es)"), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("no read failed");
    assert!(reads >= 20);
    drop(server);
    after_rotation(&case, old, &old_hex, &ids, &pseudonym);
}

fn after_rotation(case: &Case, old: Key<'_>, old_hex: &str, ids: &[String], pseudonym: &str) {
    let both = Key::Rotating { current: KEY_B, previous: old_hex };
    // Afterwards the new key alone reads everything, pseudonyms did not change, the chain verifies.
    for id in ids {
        assert_eq!(case.email(Key::Env(KEY_B), id), EMAIL);
    }
    assert_eq!(case.ok(Key::Env(KEY_B), &["audit", "pseudonym", "person-0"]), pseudonym);
    let audit = case.ok(Key::Env(KEY_B), &["audit", "list", "--limit", "1000"]);
    assert_eq!(audit.matches("\"data_keys_rewrapped\"").count(), 4, "each batch is audited");
    assert_eq!(audit.matches("\"master_key_rotated\"").count(), 1);
    case.audit_count(Key::Env(KEY_B));
    // The old key alone is refused by the rotated store.
    let err = case.refused(old, &["subject", "show", "person-0"]);
    assert!(err.contains(MISMATCH), "{err}");
    // Running the rotation again changes nothing.
    let again = case.ok(both, &["key", "rotate-master"]);
    assert!(again.contains("re-wrapped 0 data key(s)") && again.contains("already"), "{again}");
    // Without a previous key there is nothing to rotate from.
    let err = case.refused(Key::Env(KEY_B), &["key", "rotate-master"]);
    assert!(err.contains("previous key"), "{err}");
}

#[test]
fn a_store_from_before_key_checks_is_recorded_from_the_key_that_opens_it() {
    let case = Case::new();
    std::fs::create_dir_all(case.data()).expect("mkdir");
    #[cfg(unix)]
    chmod(&case.data(), 0o700);
    let master = custos_crypto::MasterKey::from_hex(KEY_A).expect("key");
    {
        // Written as an earlier build did: format-1 wrapped key, no identity row.
        let store: Box<dyn custos_store::Store> = match &case.db {
            None => Box::new(custos_store_sqlite::SqliteStore::open(case.data().join("custos.db")).expect("open")),
            Some(db) => Box::new(custos_store_postgres::PostgresStore::connect(db.url()).expect("connect")),
        };
        let id = custos_core::subject::SubjectId::parse("legacy").expect("id");
        let (dk, wrapped) = custos_crypto::new_data_key_v1_for_tests(&master, "legacy").expect("key");
        let subject = custos_core::subject::Subject::new(id.clone(), "eea", custos_core::time::Timestamp(1));
        let pseudonym = custos_crypto::Keyring::new(&master).expect("keyring").pseudonym("legacy");
        store
            .create_subject(&subject, &wrapped, None, &pseudonym, &[], &custos_store::HeldKeys::UNKEYED)
            .expect("subject");
        let sealed = dk.seal(&custos_crypto::item_context("legacy", "contact.email"), EMAIL.as_bytes()).expect("seal");
        let item = custos_store::NewItem {
            subject: id,
            category: "contact.email".into(),
            source: "provided".into(),
            purpose: "provide_offerings".into(),
            collected_at: custos_core::time::Timestamp(2),
            notice_version: "2020-01-24".into(),
            token: None,
            lookup: None,
        };
        // A legacy value (bound to subject and category only): re-sealed when the CLI opens the store.
        store.put_items(&[item], &|_, _| Ok(sealed.clone()), &[]).expect("item");
        assert!(store.store_identity().expect("identity").is_none());
    }
    // Another key cannot claim it: refused, and nothing recorded.
    let err = case.refused(Key::Env(WRONG), &["subject", "show", "legacy"]);
    assert!(err.contains("does not open the data"), "{err}");
    // The key that wrote it opens it (old-format wrapped key), and from then on the check is recorded.
    assert_eq!(case.email(Key::Env(KEY_A), "legacy"), EMAIL);
    let err = case.refused(Key::Env(WRONG), &["subject", "show", "legacy"]);
    assert!(err.contains(MISMATCH), "{err}");
    // Rotating re-wraps the old-format key too.
    let out = case.ok(Key::Rotating { current: KEY_B, previous: KEY_A }, &["key", "rotate-master"]);
    assert!(out.contains("re-wrapped 1 data key(s)"), "{out}");
    assert_eq!(case.email(Key::Env(KEY_B), "legacy"), EMAIL);
}
