//! Verification by an email code end to end: the real `custos` binary sends
//! the code over SMTP to a real SMTP server (Python's aiosmtpd, started by
//! the test on a free 127.0.0.1 port, delivering into a temporary Maildir),
//! the code read from the delivered mail verifies the request, five wrong
//! codes lock it, and afterwards neither the code nor the address is in the
//! audit log or on the CLI's standard error, and the chain verifies. Expiry
//! needs a clock the test can move: that is the vault's test
//! (`crates/custos-vault/tests/email_code.rs`). On PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`.
//!
//! The Python that runs aiosmtpd is `CUSTOS_TEST_PYTHON`, by default
//! `target/ci-venv/bin/python` (what `.ci/run` sets up); without aiosmtpd
//! the tests fail and say how to install it, they never skip.

mod support;

use std::cell::RefCell;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use custos_test_support::TestDatabase;
use serde_json::Value;
use support::custos;

type R<T> = Result<T, Box<dyn std::error::Error>>;

const FROM: &str = "Privacy Office <privacy@custos.example>";

/// A real SMTP server: aiosmtpd writing every message it accepts into a Maildir.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

fn python() -> PathBuf {
    std::env::var_os("CUSTOS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv/bin/python"))
}

fn how_to_install(python: &Path) -> String {
    format!(
        "these tests need Python's aiosmtpd as their SMTP server: install it with `{} -m pip install aiosmtpd` \
         (`python3 -m venv target/ci-venv && target/ci-venv/bin/pip install aiosmtpd` in the workspace makes the \
         default one; `.ci/run` does it), or set CUSTOS_TEST_PYTHON to a Python that has it",
        python.display()
    )
}

impl Smtp {
    fn start() -> R<Smtp> {
        let python = python();
        let dir = tempfile::tempdir()?;
        let maildir = dir.path().join("Maildir");
        let errors = dir.path().join("aiosmtpd.err");
        // A free port can be taken by someone else between the probe and the bind: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&errors)?)
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}; {}", python.display(), how_to_install(&python)))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait()? {
                    let said = std::fs::read_to_string(&errors).unwrap_or_default();
                    if said.contains("No module named aiosmtpd") {
                        return Err(format!("{} has no aiosmtpd: {}", python.display(), how_to_install(&python)).into());
                    }
                    last = format!("aiosmtpd exited with {status}: {said}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Smtp { child, port, maildir, _dir: dir });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "aiosmtpd did not listen on port {port} within 30 s; {}",
                        how_to_install(&python)
                    )
                    .into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(format!("aiosmtpd could not be started ({last}); {}", how_to_install(&python)).into())
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far, as text.
    fn mails(&self) -> R<Vec<String>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else { continue };
            for e in entries {
                out.push(std::fs::read_to_string(e?.path())?);
            }
        }
        Ok(out)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory (and a PostgreSQL database when asked) and everything the CLI wrote to stderr.
struct Env {
    dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
    stderr: RefCell<String>,
}

impl Env {
    fn new() -> R<Env> {
        let dir = tempfile::tempdir()?;
        let db = TestDatabase::create_if_asked("custos_email_code")?;
        if let Some(db) = &db {
            // `support::custos` finds the database beside the data directory.
            std::fs::write(dir.path().join("database_url"), db.url())?;
        }
        Ok(Env { dir, _db: db, stderr: RefCell::new(String::new()) })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = custos(&self.dir.path().join("data"));
        c.args(args).env_remove("CUSTOS_SMTP_URL").env_remove("CUSTOS_SMTP_FROM");
        c
    }

    fn record(&self, out: Output) -> Output {
        self.stderr.borrow_mut().push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn run(&self, args: &[&str]) -> R<Output> {
        Ok(self.record(self.command(args).output()?))
    }

    /// Runs with `input` on standard input.
    fn run_with_input(&self, args: &[&str], input: &str) -> R<Output> {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        child.stdin.take().ok_or("no stdin")?.write_all(input.as_bytes())?;
        Ok(self.record(child.wait_with_output()?))
    }

    fn ok(&self, args: &[&str]) -> R<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn json(&self, args: &[&str]) -> R<Value> {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        Ok(serde_json::from_str(&self.ok(&args)?)?)
    }

    /// Submits an access request of `subject` (an EEA subject) answered at `contact`; returns its id.
    fn access_request(&self, subject: &str, contact: &str) -> R<String> {
        self.ok(&["subject", "add", subject, "--jurisdiction", "eea"])?;
        let r = self.json(&[
            "request",
            "submit",
            "--subject",
            subject,
            "--kind",
            "access",
            "--contact",
            contact,
            "--note",
            "Everything about my orders, please",
        ])?;
        assert_eq!(r["verification"], "email_code", "EEA kinds are verified by an email code: {r}");
        assert_eq!(r["status"], "received");
        Ok(r["id"].as_str().ok_or("an id")?.to_string())
    }

    fn send_code(&self, id: &str, smtp: &Smtp) -> R<Output> {
        let url = smtp.url();
        self.run(&[
            "request",
            "verify",
            id,
            "--method",
            "email_code",
            "--smtp-url",
            &url,
            "--smtp-from",
            FROM,
            "--format",
            "json",
        ])
    }

    fn check_code(&self, id: &str, code: &str) -> R<Output> {
        self.run(&["request", "verify", id, "--method", "email_code", "--code", code, "--format", "json"])
    }
}

/// The code in a delivered mail: the line that is eight digits and nothing else.
fn code_in(mail: &str) -> R<String> {
    let body = mail.split_once("\n\n").or_else(|| mail.split_once("\r\n\r\n")).map_or(mail, |(_, b)| b);
    let codes: Vec<&str> =
        body.lines().map(str::trim).filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit())).collect();
    match codes.as_slice() {
        [code] => Ok(code.to_string()),
        _ => Err(format!("expected one eight-digit code line in the mail: {mail}").into()),
    }
}

/// The value of the first header `name` of a mail.
fn header<'m>(mail: &'m str, name: &str) -> Option<&'m str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    mail.lines()
        .take_while(|l| !l.trim().is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

/// A code that is not `code`: its last digit changed.
fn other_than(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// Whether `code` occurs in `text` as a number of its own (not inside a longer one, like a timestamp).
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let b = text.as_bytes();
        (i == 0 || !b[i - 1].is_ascii_digit()) && b.get(i + code.len()).is_none_or(|c| !c.is_ascii_digit())
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Neither the codes nor the address are in the audit log or on the CLI's stderr; the chain verifies.
fn nothing_leaked(env: &Env, codes: &[String], address: &str) -> R<()> {
    let audit = env.ok(&["audit", "list", "--limit", "1000"])?;
    assert!(audit.contains("verification_started"), "{audit}");
    let stderr = env.stderr.borrow().clone();
    for (what, text) in [("the audit log", &audit), ("the CLI's stderr", &stderr)] {
        assert!(!text.contains(address), "the address is in {what}: {text}");
        for code in codes {
            assert!(!has_code(text, code), "a code is in {what}: {text}");
        }
    }
    env.ok(&["audit", "verify"])?;
    Ok(())
}

#[test]
fn a_code_mailed_over_smtp_verifies_the_request() -> R<()> {
    let smtp = Smtp::start()?;
    let env = Env::new()?;
    let address = "mail.requester@example.org";
    let id = env.access_request("eu-mail-1", address)?;

    // Sending needs the server and the sender.
    let no_server = env.run(&["request", "verify", &id, "--method", "email_code"])?;
    assert_eq!(no_server.status.code(), Some(2), "{}", stderr(&no_server));
    assert!(stderr(&no_server).contains("--smtp-url"), "{}", stderr(&no_server));
    let bad_url = env.run(&[
        "request",
        "verify",
        &id,
        "--method",
        "email_code",
        "--smtp-url",
        "http://user:s3cret-pass@127.0.0.1:1",
        "--smtp-from",
        FROM,
    ])?;
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    assert!(!stderr(&bad_url).contains("s3cret-pass"), "the URL's password is not echoed: {}", stderr(&bad_url));

    let sent = env.send_code(&id, &smtp)?;
    assert!(sent.status.success(), "{}", stderr(&sent));
    let view: Value = serde_json::from_slice(&sent.stdout)?;
    assert_eq!(view["status"], "identity_unverified", "{view}");
    assert!(stderr(&sent).contains("expires in 10 minutes"), "{}", stderr(&sent));

    let mails = smtp.mails()?;
    assert_eq!(mails.len(), 1, "exactly one mail: {mails:?}");
    let mail = &mails[0];
    assert_eq!(header(mail, "X-RcptTo"), Some(address), "delivered to the contact address: {mail}");
    assert!(header(mail, "To").is_some_and(|to| to.contains(address)), "{mail}");
    assert!(header(mail, "From").is_some_and(|f| f.contains("privacy@custos.example")), "{mail}");
    let code = code_in(mail)?;
    // The mail names the controller and the validity, and nothing else about the person.
    assert!(mail.contains("Amazon Web Services EMEA SARL") && mail.contains("10 minutes"), "{mail}");
    assert!(!mail.contains("eu-mail-1") && !mail.contains("Everything about my orders"), "{mail}");
    assert_eq!(mail.matches(address).count(), 2, "the address only in To and the envelope's X-RcptTo: {mail}");

    let verified = env.check_code(&id, &code)?;
    assert!(verified.status.success(), "{}", stderr(&verified));
    let view: Value = serde_json::from_slice(&verified.stdout)?;
    assert_eq!((&view["status"], &view["verified_by"]), (&"verified".into(), &"email_code".into()), "{view}");
    assert_eq!(view["verification_locked"], false);
    let again = env.send_code(&id, &smtp)?;
    assert!(!again.status.success(), "a verified request is sent no code");
    assert_eq!(smtp.mails()?.len(), 1);

    // A mail server that is not there: an error naming the failure's class, not the address.
    let other = env.access_request("eu-mail-2", "second.requester@example.org")?;
    let dead = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let failed = env.run(&[
        "request",
        "verify",
        &other,
        "--method",
        "email_code",
        "--smtp-url",
        &format!("smtp://127.0.0.1:{dead}"),
        "--smtp-from",
        FROM,
    ])?;
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("could not be reached"), "{}", stderr(&failed));
    assert!(!stderr(&failed).contains("second.requester"), "{}", stderr(&failed));
    nothing_leaked(&env, &[code], address)
}

#[test]
fn five_wrong_codes_lock_the_verification_over_the_cli() -> R<()> {
    let smtp = Smtp::start()?;
    let env = Env::new()?;
    let address = "locked.requester@example.org";
    let id = env.access_request("eu-lock-1", address)?;
    let sent = env.send_code(&id, &smtp)?;
    assert!(sent.status.success(), "{}", stderr(&sent));
    let code = code_in(smtp.mails()?.first().ok_or("no mail")?)?;
    let wrong = other_than(&code);
    for left in 1..=4u8 {
        // One of them from standard input, as `--code -` reads it.
        let out = if left == 2 {
            env.run_with_input(
                &["request", "verify", &id, "--method", "email_code", "--code", "-"],
                &format!("{wrong}\n"),
            )?
        } else {
            env.check_code(&id, &wrong)?
        };
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("the code is wrong") && said.contains(&format!("{} more", 5 - left)), "{said}");
    }
    let fifth = env.check_code(&id, &wrong)?;
    assert_eq!(fifth.status.code(), Some(3), "the fifth wrong code locks: {}", stderr(&fifth));
    assert!(stderr(&fifth).starts_with("denied: verification_locked: "), "{}", stderr(&fifth));
    let right = env.check_code(&id, &code)?;
    assert_eq!(right.status.code(), Some(3), "the right code is refused once locked: {}", stderr(&right));
    let resend = env.send_code(&id, &smtp)?;
    assert_eq!(resend.status.code(), Some(3), "a re-send is refused once locked: {}", stderr(&resend));
    assert_eq!(smtp.mails()?.len(), 1, "nothing more was sent");
    let view = env.json(&["request", "show", &id])?;
    assert_eq!((&view["verification_locked"], &view["status"]), (&true.into(), &"identity_unverified".into()));
    assert!(env.ok(&["request", "show", &id])?.contains("verification_locked: true"));
    let denied = env.json(&["request", "deny", &id, "--code", "unverifiable", "--text", "We could not verify you."])?;
    assert_eq!(denied["status"], "denied");
    let audit = env.ok(&["audit", "list", "--limit", "1000"])?;
    assert_eq!(audit.matches("\"reason\":\"wrong_code\"").count(), 5, "{audit}");
    assert_eq!(audit.matches("\"reason\":\"locked\"").count(), 2, "{audit}");
    nothing_leaked(&env, &[code, wrong], address)
}
