//! What the `custos` binary accepts from outside: policy files, standard
//! output for a new key's secret, PostgreSQL without a key, data directories
//! and key files of another user, values on standard input, subject ids.
//! Each test runs the real binary in a fresh temporary directory.

mod support;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use custos_test_support::TestDatabase;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    (dir, data)
}

/// Runs `cmd` with stdin closed, killing it after 20 s (a hang is a failure, not a stuck test run).
fn run(mut cmd: Command) -> Output {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn custos");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("custos did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn custos(data: &Path, args: &[&str]) -> Command {
    let mut c = support::custos(data);
    c.args(args);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(custos(data, args));
    assert_eq!(out.status.code(), Some(0), "custos {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn fails(cmd: Command, want: &str) -> String {
    let out = run(cmd);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {err}");
    assert!(err.contains(want), "expected `{want}` in: {err}");
    err
}

#[cfg(unix)]
#[test]
fn a_policy_that_is_a_device_a_fifo_or_too_large_is_refused_at_once() {
    let (dir, data) = temp();
    fails(custos(&data, &["--policy", "/dev/zero", "policy", "check"]), "not a regular file");
    let mut by_env = custos(&data, &["policy", "render"]);
    by_env.env("CUSTOS_POLICY", "/dev/zero");
    fails(by_env, "not a regular file");
    let fifo = dir.path().join("policy.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    fails(custos(&data, &["policy", "check", fifo.to_str().expect("path")]), "not a regular file");
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
    fails(custos(&data, &["--policy", link.to_str().expect("path"), "key", "list"]), "not a regular file");
    let big = dir.path().join("big.yaml");
    fs::write(&big, vec![b'#'; 4 * 1024 * 1024 + 1]).expect("big file");
    fails(custos(&data, &["--policy", big.to_str().expect("path"), "policy", "check"]), "larger than");
    // A regular policy file still loads.
    let good = dir.path().join("good.yaml");
    fs::write(&good, include_str!("../../../examples/aws-privacy-notice-2020-01-24.yaml")).expect("policy");
    assert!(ok(&data, &["policy", "check", good.to_str().expect("path")]).contains(": ok: notice"));
}

/// The lines of `key list`.
fn keys(data: &Path) -> Vec<String> {
    ok(data, &["key", "list"]).lines().map(str::to_string).collect()
}

/// The key's id from a `cannot write the new key … key <id> was revoked` error.
fn revoked_id(err: &str) -> String {
    let rest = err.split("key ").find(|s| s.contains(" was revoked")).unwrap_or_else(|| panic!("no id: {err}"));
    rest.split_whitespace().next().expect("id").to_string()
}

#[cfg(unix)]
#[test]
fn a_new_key_whose_secret_cannot_be_written_is_revoked_and_the_command_fails() {
    let (_dir, data) = temp();
    ok(&data, &["key", "list"]);
    let mut full = custos(&data, &["key", "create", "--role", "admin"]);
    full.stdout(fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full"));
    let out = full.stdin(Stdio::null()).stderr(Stdio::piped()).output().expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("was revoked") && !err.contains("cst_"), "{err}");
    let first = revoked_id(&err);

    // Standard output closed (`>&-`): Rust points it at /dev/null, where the secret is lost just the same.
    let bin = std::env::var_os("CUSTOS_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_custos").into());
    let out = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" --data-dir \"$1\" key create --role service --actor marketo --purposes marketing >&-",
        ])
        .arg(bin)
        .arg(&data)
        .env_remove("CUSTOS_MASTER_KEY")
        .env_remove("CUSTOS_POLICY")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let second = revoked_id(&err);

    let listed = keys(&data);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for id in [&first, &second] {
        let line = listed.iter().find(|l| l.starts_with(id.as_str())).unwrap_or_else(|| panic!("{id}: {listed:?}"));
        assert!(line.contains("\trevoked "), "{line}");
    }
    let audit = ok(&data, &["audit", "list"]);
    assert_eq!(audit.matches("api_key_revoked").count(), 2, "{audit}");

    // A key written out in full stays active.
    let secret = ok(&data, &["key", "create", "--role", "auditor"]);
    assert!(secret.starts_with("cst_"), "{secret}");
    assert_eq!(keys(&data).iter().filter(|l| l.ends_with("\tactive")).count(), 1);
}

#[test]
fn a_postgres_command_without_its_key_creates_nothing() {
    let db = match TestDatabase::create("custos_nokey") {
        Ok(db) => db,
        Err(e) if !custos_test_support::postgres_asked() => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let cwd = tempfile::tempdir().expect("temp dir");
    let absent = format!("{}_absent", db.name());
    let absent_url = format!("{}_absent", db.url());
    for url in [db.url(), absent_url.as_str()] {
        let bin = std::env::var_os("CUSTOS_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_custos").into());
        let mut cmd = Command::new(bin);
        cmd.current_dir(cwd.path())
            .args(["--database", url, "key", "list"])
            .env_remove("CUSTOS_MASTER_KEY")
            .env_remove("CUSTOS_MASTER_KEY_FILE")
            .env_remove("CUSTOS_DATA_DIR")
            .env_remove("CUSTOS_DATABASE_URL");
        fails(cmd, "needs its master key named explicitly");
    }
    let tables = db.execute("SELECT 1 FROM pg_tables WHERE schemaname = 'public'").expect("tables");
    let mut created = db.execute(&format!("SELECT 1 FROM pg_database WHERE datname = '{absent}'")).expect("query");
    if created > 0 {
        let _ = db.execute(&format!("DROP DATABASE IF EXISTS {absent} WITH (FORCE)"));
    }
    let leftovers: Vec<_> = fs::read_dir(cwd.path()).expect("cwd").map(|e| e.expect("entry").file_name()).collect();
    created += tables;
    assert_eq!(created, 0, "a refused command created a database or tables");
    assert!(leftovers.is_empty(), "a refused command left {leftovers:?} in the working directory");
}

/// Whether this process may give files away (root): else the owner tests cannot be built.
#[cfg(unix)]
fn can_chown(dir: &Path) -> bool {
    let probe = dir.join("probe");
    fs::write(&probe, b"").expect("probe");
    let ok = std::os::unix::fs::chown(&probe, Some(65534), None).is_ok();
    let _ = fs::remove_file(&probe);
    if !ok {
        eprintln!("skipped: cannot chown as this user");
    }
    ok
}

#[cfg(unix)]
#[test]
fn a_data_directory_or_key_file_of_another_user_is_refused() {
    let (dir, data) = temp();
    if !can_chown(dir.path()) {
        return;
    }
    ok(&data, &["key", "list"]);
    std::os::unix::fs::chown(&data, Some(65534), None).expect("chown");
    let err = fails(custos(&data, &["key", "list"]), "belongs to another user");
    assert!(err.contains("data directory"), "{err}");
    std::os::unix::fs::chown(&data, Some(0), None).expect("chown back");
    ok(&data, &["key", "list"]);

    let key = data.join("master.key");
    std::os::unix::fs::chown(&key, Some(65534), None).expect("chown");
    let err = fails(custos(&data, &["key", "list"]), "belongs to another user");
    assert!(err.contains("master key file"), "{err}");
    // Named explicitly too.
    let mut named = custos(&data, &["key", "list"]);
    named.arg("--master-key-file").arg(&key);
    fails(named, "belongs to another user");
}

/// `custos data put … -` with `input` on standard input, then the value read back.
fn put_stdin(data: &Path, input: &[u8]) -> String {
    let mut child = custos(
        data,
        &["data", "put", "s1", "contact.email", "-", "--source", "provided", "--purpose", "provide_offerings"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input).expect("write");
    let out = child.wait_with_output().expect("put");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    ok(data, &["data", "get", "s1", "contact.email", "--purpose", "provide_offerings"])
}

#[test]
fn a_value_on_standard_input_loses_exactly_one_trailing_newline() {
    let (_dir, data) = temp();
    ok(&data, &["subject", "add", "s1", "--jurisdiction", "eea"]);
    // `get` prints the value and a newline.
    assert_eq!(put_stdin(&data, b"v@example.org\n"), "v@example.org\n");
    assert_eq!(put_stdin(&data, b"w@example.org\r\n"), "w@example.org\n");
    assert_eq!(put_stdin(&data, b"x@example.org"), "x@example.org\n");
    assert_eq!(put_stdin(&data, b"y@example.org\n\n"), "y@example.org\n\n");
    let help = ok(&data, &["data", "put", "--help"]);
    assert!(help.contains("trailing newline"), "{help}");
}

#[test]
fn a_subject_id_that_looks_like_a_card_number_warns() {
    let (_dir, data) = temp();
    let out = run(custos(&data, &["subject", "add", "4111111111111111", "--jurisdiction", "eea"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("warning: the subject id looks like a payment card number"), "{err}");
    // Not Luhn-valid: an opaque number, no warning.
    let out = run(custos(&data, &["subject", "add", "4111111111111112", "--jurisdiction", "eea"]));
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
}
