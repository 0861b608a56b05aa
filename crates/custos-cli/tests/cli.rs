//! End-to-end tests of the real `custos` binary, each in a fresh temporary data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custos_test_support::TestDatabase;

struct Env {
    dir: tempfile::TempDir,
    /// On the PostgreSQL run (`CUSTOS_TEST_BACKEND=postgres`), the test's own database.
    db: Option<TestDatabase>,
}

impl Env {
    fn new() -> Env {
        let db = TestDatabase::create_if_asked("custos_cli").unwrap_or_else(|e| panic!("{e}"));
        Env { dir: tempfile::tempdir().expect("temp dir"), db }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run custos")
    }

    /// The command with this environment's data directory, database and key.
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
        cmd.arg("--data-dir").arg(self.data());
        if let Some(db) = &self.db {
            cmd.arg("--database").arg(db.url());
        }
        cmd.env_remove("CUSTOS_MASTER_KEY").env_remove("CUSTOS_POLICY").env_remove("CUSTOS_DATA_DIR");
        if self.db.is_some() {
            // PostgreSQL needs its master key named explicitly.
            cmd.env("CUSTOS_MASTER_KEY", POSTGRES_MASTER_KEY);
        }
        cmd
    }

    /// Runs and asserts the exit code; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "custos {args:?} failed: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a read expected to be denied; returns the reason code.
    fn denied(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(3), "custos {args:?} should be denied: {}", stderr(&out));
        let err = stderr(&out);
        let line = err.lines().find(|l| l.starts_with("denied: ")).unwrap_or_else(|| panic!("no denial line: {err}"));
        line["denied: ".len()..].split(':').next().unwrap_or_default().to_string()
    }

    fn audit_count(&self) -> u64 {
        let out = self.ok(&["audit", "verify"]);
        out.lines()
            .find_map(|l| l.strip_prefix("ok: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected verify output: {out}"))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get<'a>(id: &'a str, category: &'a str, purpose: &'a str) -> Vec<&'a str> {
    vec!["data", "get", id, category, "--purpose", purpose]
}

/// `custos data put` of a value the subject provided, for `purpose`.
fn put<'a>(id: &'a str, category: &'a str, value: &'a str, purpose: &'a str) -> Vec<&'a str> {
    vec!["data", "put", id, category, value, "--source", "provided", "--purpose", purpose]
}

/// The master key of the PostgreSQL runs.
const POSTGRES_MASTER_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

const EMAIL: &str = "ada.lovelace.7731@example.org";
const CARD: &str = "4111 1111 1111 1111";

fn setup_adult(env: &Env, id: &str, jurisdiction: &str) {
    env.ok(&["subject", "add", id, "--jurisdiction", jurisdiction, "--region", "eu-west-1"]);
    env.ok(&put(id, "contact.email", EMAIL, "provide_offerings"));
}

#[test]
fn the_bundled_policy_checks_with_warnings() {
    let env = Env::new();
    let out = env.ok(&["policy", "check"]);
    assert!(out.contains("ok: notice"), "{out}");
    assert!(out.contains("privacy_shield") || out.contains("Privacy Shield"), "{out}");
    assert!(out.contains("2020-07-16"), "{out}");
    assert!(out.contains("warning:"), "{out}");
}

#[test]
fn a_broken_policy_fails_with_file_line_and_column() {
    let env = Env::new();
    let text = env::bundled().replacen("- id: contact.email", "- id: contact.email\n    colour: blue", 1);
    let file = env.dir.path().join("broken.yaml");
    std::fs::write(&file, text).expect("write");
    let out = env.run(&["policy", "check", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let prefix = format!("{}:", file.display());
    let line = err.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{err}"));
    let mut parts = line[prefix.len()..].splitn(3, ':');
    let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert!(l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok(), "no line:col in {line}");
    assert!(line.contains("colour"), "{line}");
}

#[test]
fn an_unknown_reference_is_reported_at_its_position() {
    let env = Env::new();
    let text = env::bundled();
    let needle = "- contact.email";
    let at = text.find(needle).expect("a purpose lists contact.email");
    let line_no = text[..at].lines().count() + usize::from(text[..at].ends_with('\n'));
    let text = format!("{}- contact.emial{}", &text[..at], &text[at + needle.len()..]);
    let file = env.dir.path().join("typo.yaml");
    std::fs::write(&file, text).expect("write");
    let out = env.run(&["policy", "check", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:{line_no}:", file.display())), "expected line {line_no}: {err}");
    assert!(err.contains("unknown category `contact.emial`"), "{err}");
    assert!(err.contains("did you mean `contact.email`"), "{err}");
}

#[test]
fn the_notice_renders_as_markdown_and_html() {
    let env = Env::new();
    let md = env.ok(&["policy", "render"]);
    assert!(md.contains("Amazon Web Services EMEA SARL"), "{md}");
    let html = env.ok(&["policy", "render", "--format", "html"]);
    assert!(html.contains("<html") && html.contains("</html>"));
}

#[test]
fn a_value_is_readable_for_an_allowed_purpose_and_denied_for_another() {
    let env = Env::new();
    setup_adult(&env, "c-1", "california");
    assert_eq!(env.ok(&get("c-1", "contact.email", "provide_offerings")).trim(), EMAIL);
    env.ok(&put("c-1", "payment.card_number", CARD, "provide_offerings"));
    assert_eq!(env.denied(&get("c-1", "payment.card_number", "marketing")), "purpose_not_declared_for_category");
    // An actor the policy does not declare is refused, whoever it claims to be.
    let mut args = get("c-1", "contact.email", "provide_offerings");
    args.extend(["--actor", "nobody-we-know"]);
    assert_eq!(env.denied(&args), "actor_not_declared");
}

#[test]
fn consent_based_purposes_need_live_consent() {
    let env = Env::new();
    setup_adult(&env, "e-1", "eea");
    assert_eq!(env.denied(&get("e-1", "contact.email", "marketing")), "consent_missing");
    env.ok(&["consent", "grant", "e-1", "marketing"]);
    assert_eq!(env.ok(&get("e-1", "contact.email", "marketing")).trim(), EMAIL);
    env.ok(&["consent", "withdraw", "e-1", "marketing"]);
    assert_eq!(env.denied(&get("e-1", "contact.email", "marketing")), "consent_withdrawn");
    // Withdrawal does not touch other purposes.
    assert_eq!(env.ok(&get("e-1", "contact.email", "provide_offerings")).trim(), EMAIL);
}

#[test]
fn objection_and_restriction_are_honoured() {
    let env = Env::new();
    setup_adult(&env, "e-2", "eea");
    env.ok(&["object", "e-2", "fraud_prevention"]);
    assert_eq!(env.denied(&get("e-2", "contact.email", "fraud_prevention")), "objected");
    env.ok(&["restrict", "e-2"]);
    assert_eq!(env.denied(&get("e-2", "contact.email", "provide_offerings")), "restricted");
    env.ok(&["restrict", "e-2", "--lift"]);
    assert_eq!(env.ok(&get("e-2", "contact.email", "provide_offerings")).trim(), EMAIL);
}

/// CCPA §1798.121 from the command line: a limit stops purposes the policy
/// does not mark §7027(m) from using sensitive categories, performing the
/// services goes on, lifting restores; an EEA subject has no such right.
#[test]
fn a_limit_on_sensitive_information_is_honoured_and_lifted() {
    let env = Env::new();
    setup_adult(&env, "c-9", "california");
    let voice = [
        "data",
        "put",
        "c-9",
        "biometric.image_voice",
        "voice sample",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ];
    env.ok(&voice);
    env.ok(&["consent", "grant", "c-9", "consented_purposes"]);
    assert_eq!(env.ok(&get("c-9", "biometric.image_voice", "consented_purposes")).trim(), "voice sample");
    env.ok(&["limit-sensitive", "c-9"]);
    assert_eq!(env.denied(&get("c-9", "biometric.image_voice", "consented_purposes")), "sensitive_use_limited");
    assert_eq!(env.ok(&get("c-9", "biometric.image_voice", "provide_offerings")).trim(), "voice sample");
    env.ok(&["limit-sensitive", "c-9", "--lift"]);
    assert_eq!(env.ok(&get("c-9", "biometric.image_voice", "consented_purposes")).trim(), "voice sample");
    // California grants the opt-out (the bundled notice sells nothing, so no decision changes).
    env.ok(&["opt-out", "c-9"]);
    assert_eq!(env.ok(&get("c-9", "contact.email", "provide_offerings")).trim(), EMAIL);
    setup_adult(&env, "e-9", "eea");
    for command in ["limit-sensitive", "opt-out"] {
        let out = env.run(&[command, "e-9"]);
        assert_eq!(out.status.code(), Some(3), "{command}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("denied: right_not_available: "), "{}", stderr(&out));
    }
}

#[test]
fn a_child_needs_a_linked_guardian_who_consents() {
    let env = Env::new();
    env.ok(&["subject", "add", "parent-1", "--jurisdiction", "california"]);
    env.ok(&[
        "subject",
        "add",
        "kid-1",
        "--jurisdiction",
        "california",
        "--birth-date",
        "2015-05-01",
        "--guardian",
        "parent-1",
    ]);
    // Writing a child's data is processing too: it needs the guardian's consent.
    let put =
        ["data", "put", "kid-1", "contact.email", EMAIL, "--source", "provided", "--purpose", "provide_offerings"];
    assert_eq!(env.denied(&put), "guardian_consent_missing");
    env.ok(&["consent", "grant", "kid-1", "provide_offerings", "--by-guardian", "parent-1"]);
    env.ok(&put);
    assert_eq!(env.ok(&get("kid-1", "contact.email", "provide_offerings")).trim(), EMAIL);
    // Only the linked guardian can act for the child.
    env.ok(&["subject", "add", "stranger", "--jurisdiction", "california"]);
    let out = env.run(&["consent", "grant", "kid-1", "marketing", "--by-guardian", "stranger"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn erasure_makes_every_read_fail_with_erased() {
    let env = Env::new();
    setup_adult(&env, "e-3", "eea");
    env.ok(&put("e-3", "contact.phone", "+352 555 0100", "provide_offerings"));
    let out = env.ok(&["subject", "erase", "e-3"]);
    assert!(out.contains("2 item versions"), "{out}");
    for (cat, purpose) in
        [("contact.email", "provide_offerings"), ("contact.phone", "provide_offerings"), ("contact.email", "marketing")]
    {
        assert_eq!(env.denied(&get("e-3", cat, purpose)), "erased");
    }
    assert_eq!(env.denied(&["data", "all", "e-3", "--purpose", "provide_offerings"]), "erased");
    assert_eq!(env.denied(&["data", "history", "e-3", "contact.email", "--purpose", "provide_offerings"]), "erased");
    assert_eq!(env.denied(&put("e-3", "contact.email", EMAIL, "provide_offerings")), "erased");
    assert_eq!(env.denied(&["subject", "erase", "e-3"]), "erased");
    let show = env.ok(&["subject", "show", "e-3"]);
    assert!(show.contains("erased_at:"), "{show}");
}

#[test]
fn an_update_keeps_the_prior_version_in_history() {
    let env = Env::new();
    setup_adult(&env, "c-2", "california");
    env.ok(&put("c-2", "contact.email", "new.address@example.org", "provide_offerings"));
    assert_eq!(env.ok(&get("c-2", "contact.email", "provide_offerings")).trim(), "new.address@example.org");
    let hist = env.ok(&["data", "history", "c-2", "contact.email", "--purpose", "provide_offerings"]);
    let lines: Vec<&str> = hist.lines().collect();
    assert_eq!(lines.len(), 2, "{hist}");
    assert!(lines[0].starts_with("v2\tcurrent") && lines[0].ends_with("new.address@example.org"), "{hist}");
    assert!(
        lines[1].starts_with("v1\tsuperseded") && lines[1].contains("kept until") && lines[1].ends_with(EMAIL),
        "{hist}"
    );
}

#[test]
fn card_numbers_are_tokenized_and_detokenized_only_for_payments() {
    let env = Env::new();
    env.ok(&["subject", "add", "c-3", "--jurisdiction", "california"]);
    env.ok(&put("c-3", "payment.card_number", CARD, "provide_offerings"));
    let shown = env.ok(&get("c-3", "payment.card_number", "provide_offerings"));
    assert!(shown.starts_with("tok_") && shown.contains("ending 1111"), "{shown}");
    assert!(!shown.contains("4111111111111111") && !shown.contains(CARD));
    let token = shown.split_whitespace().next().expect("token");
    assert_eq!(env.ok(&["data", "detokenize", token, "--purpose", "provide_offerings"]).trim(), "4111111111111111");
    assert_eq!(
        env.denied(&["data", "detokenize", token, "--purpose", "marketing"]),
        "purpose_not_declared_for_category"
    );
    // An invalid card number is refused, not echoed, and nothing is written.
    let before = env.audit_count();
    let out = env.run(&put("c-3", "payment.card_number", "4111 1111 1111 1112", "provide_offerings"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Luhn") && !stderr(&out).contains("1112"), "{}", stderr(&out));
    assert_eq!(env.audit_count(), before);
}

#[test]
fn no_plaintext_value_reaches_the_data_directory() {
    let env = Env::new();
    setup_adult(&env, "e-4", "eea");
    env.ok(&put("e-4", "payment.card_number", CARD, "provide_offerings"));
    env.ok(&put("e-4", "contact.email", "second.secret.value@example.org", "provide_offerings"));
    env.ok(&get("e-4", "contact.email", "provide_offerings"));
    let needles: [&[u8]; 5] =
        [EMAIL.as_bytes(), b"second.secret.value@example.org", b"4111111111111111", CARD.as_bytes(), b"ada.lovelace"];
    let mut files = Vec::new();
    collect_files(&env.data(), &mut files);
    if let Some(db) = &env.db {
        // bytea columns print as hex: a plaintext value could only appear in a text column.
        let dump = db.dump().unwrap_or_else(|e| panic!("{e}"));
        assert!(dump.contains("data_written"), "the dump holds the audit log");
        for n in needles {
            let n = String::from_utf8_lossy(n);
            assert!(!dump.contains(n.as_ref()), "the database holds a plaintext value");
        }
    } else {
        assert!(files.iter().any(|f| f.ends_with("custos.db")), "{files:?}");
    }
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        for n in needles {
            assert!(!bytes.windows(n.len()).any(|w| w == n), "{} contains a plaintext value", f.display());
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn editing_one_byte_of_an_audit_entry_is_caught() {
    let env = Env::new();
    setup_adult(&env, "c-4", "california");
    env.ok(&get("c-4", "contact.email", "provide_offerings"));
    let n = env.audit_count();
    assert!(n >= 3, "{n}");
    if let Some(db) = &env.db {
        let changed = db
            .execute("UPDATE audit SET body = replace(body, '\"data_read\"', '\"eata_read\"') WHERE body LIKE '%\"data_read\"%'")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changed, 1, "one audit entry edited");
    } else {
        let db = env.data().join("custos.db");
        let mut bytes = std::fs::read(&db).expect("read db");
        let needle = b"\"action\":\"data_read\"";
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("an audit body in the database file");
        bytes[at + 11] ^= 0x01; // "data_read" -> "eata_read"
        std::fs::write(&db, bytes).expect("write db");
    }
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "verify should fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr(&out).contains("entry "), "{}", stderr(&out));
}

#[test]
fn every_operation_is_audited_without_personal_values() {
    let env = Env::new();
    setup_adult(&env, "e-5", "eea");
    env.denied(&get("e-5", "contact.email", "marketing"));
    env.ok(&["consent", "grant", "e-5", "marketing"]);
    env.ok(&get("e-5", "contact.email", "marketing"));
    env.ok(&["subject", "erase", "e-5"]);
    let log = env.ok(&["audit", "list", "--limit", "1000"]);
    for action in ["subject_created", "data_written", "access_denied", "consent_granted", "data_read", "subject_erased"]
    {
        assert!(log.contains(&format!("\"action\":\"{action}\"")), "missing {action}: {log}");
    }
    assert!(log.contains("consent_missing"));
    assert!(!log.contains(EMAIL) && !log.contains("e-5"), "the audit log must hold only pseudonyms: {log}");
    let pseudonym = env.ok(&["audit", "pseudonym", "e-5"]);
    assert!(log.contains(pseudonym.trim()));
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let env = Env::new();
    setup_adult(&env, "c-5", "california");
    let before = env.audit_count();
    let cases: [(&[&str], i32, &str); 8] = [
        (&put("c-5", "contact.emial", "x", "provide_offerings"), 1, "unknown category"),
        (
            &["data", "put", "c-5", "contact.email", "x", "--source", "psychic", "--purpose", "provide_offerings"],
            1,
            "unknown source",
        ),
        (&put("c-5", "contact.email", "x", "world_domination"), 1, "unknown purpose"),
        (&["data", "get", "nobody", "contact.email", "--purpose", "provide_offerings"], 1, "no subject"),
        (&["subject", "add", "c-5", "--jurisdiction", "california"], 1, "already exists"),
        (&["subject", "add", "x-1", "--jurisdiction", "atlantis"], 1, "unknown jurisdiction"),
        (&["subject", "add", "x-2", "--jurisdiction", "eea", "--birth-date", "31/12/1999"], 2, "YYYY-MM-DD"),
        (&["data", "get", "c-5", "contact.email"], 2, "--purpose"),
    ];
    for (args, code, msg) in cases {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(env.audit_count(), before, "failed commands must not write");
    assert_eq!(env.ok(&get("c-5", "contact.email", "provide_offerings")).trim(), EMAIL);
}

#[test]
fn a_value_can_come_from_standard_input() {
    use std::io::Write;
    let env = Env::new();
    env.ok(&["subject", "add", "c-6", "--jurisdiction", "california"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.arg("--data-dir").arg(env.data());
    if let Some(db) = &env.db {
        cmd.arg("--database").arg(db.url()).env("CUSTOS_MASTER_KEY", POSTGRES_MASTER_KEY);
    }
    let mut child = cmd
        .args(["data", "put", "c-6", "contact.phone", "-", "--source", "provided", "--purpose", "provide_offerings"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"+1 206 555 0100\n").expect("write");
    assert!(child.wait().expect("wait").success());
    assert_eq!(env.ok(&get("c-6", "contact.phone", "provide_offerings")).trim(), "+1 206 555 0100");
}

mod env {
    pub fn bundled() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/aws-privacy-notice-2020-01-24.yaml"
        ))
        .expect("bundled policy")
    }
}

#[test]
fn regression_email_like_subject_id_warns_and_tombstone_is_pseudonymous() {
    let env = Env::new();
    let id = "ada.7x@example.org";
    let out = env.run(&["subject", "add", id, "--jurisdiction", "eea", "--region", "xq-cli-region"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.lines().any(|l| l.starts_with("warning: ") && l.contains("email address")), "{err}");
    let out = env.run(&["subject", "add", "+14155550123", "--jurisdiction", "eea"]);
    assert!(stderr(&out).contains("phone number"), "{}", stderr(&out));
    let out = env.run(&["subject", "add", "cus-8f3a", "--jurisdiction", "eea"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // The metadata only for a purpose; without one, nothing of it is shown.
    assert!(env.ok(&["subject", "show", id, "--purpose", "provide_offerings"]).contains("region: xq-cli-region"));
    assert!(!env.ok(&["subject", "show", id]).contains("xq-cli-region"));
    let before = env.audit_count();
    env.ok(&["subject", "show", id, "--purpose", "provide_offerings"]);
    assert_eq!(env.audit_count(), before + 1, "the metadata read is audited");

    env.ok(&["subject", "erase", id]);
    assert_eq!(env.denied(&["subject", "show", id, "--purpose", "provide_offerings"]), "erased");
    assert!(env.ok(&["subject", "show", id]).contains("erased_at:"));
    let out = env.run(&["subject", "add", id, "--jurisdiction", "eea"]);
    assert_eq!(out.status.code(), Some(1), "an erased id is not created again: {}", stderr(&out));
}

#[test]
fn the_idempotency_time_to_live_is_checked() {
    let env = Env::new();
    for bad in ["0", "8761", "soon"] {
        let out = env.run(&["serve", "--idempotency-ttl-hours", bad]);
        assert_eq!(out.status.code(), Some(2), "--idempotency-ttl-hours {bad}: {}", stderr(&out));
    }
}

/// Issue 8, defect 10: `custos audit list | head -1` panicked with a
/// backtrace when the reader closed the pipe; it now stops quietly.
#[test]
fn regression_closed_stdout_is_not_a_panic() {
    let env = Env::new();
    env.ok(&["subject", "add", "s-1", "--jurisdiction", "eea"]);
    for args in [&["audit", "list"][..], &["policy", "render", "--format", "html"][..]] {
        let mut child = env
            .command()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn custos");
        // The reader goes away before the command writes (it opens the policy
        // and the store first), as `head -1` does once it has its line.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("custos exits");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Issue 8, defect 10: a value on standard input that is not UTF-8 must be
/// refused (never stored as escape text), and nothing is written.
#[test]
fn regression_invalid_utf8_on_stdin_is_refused() {
    use std::io::Write as _;
    let env = Env::new();
    env.ok(&["subject", "add", "alice", "--jurisdiction", "eea"]);
    let mut child = env
        .command()
        .args(["data", "put", "alice", "contact.email", "-", "--source", "provided", "--purpose", "provide_offerings"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn custos");
    child.stdin.take().expect("stdin").write_all(b"ab\xff\xfecd@example.org").expect("write stdin");
    let out = child.wait_with_output().expect("custos exits");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    let get = env.run(&["data", "get", "alice", "contact.email", "--purpose", "provide_offerings"]);
    assert_eq!(get.status.code(), Some(1), "nothing was stored: {}", stderr(&get));
    assert!(stderr(&get).contains("no value stored"), "{}", stderr(&get));
}
