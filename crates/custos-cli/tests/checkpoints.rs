//! Signed audit checkpoints through the real binary: an attacker who can write
//! the database rewrites or empties the audit chain, recomputing every hash
//! and the head with the chain rule, and `custos audit verify` must still fail
//! on the signatures. Runs on SQLite, and on PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use custos_core::audit::ChainHead;
use custos_core::audit_checkpoint::signed_message;
use custos_core::time::Timestamp;
use custos_crypto::signing::{AuditSigner, base64url_encode};
use custos_test_support::TestDatabase;

struct Env {
    dir: tempfile::TempDir,
    db: Option<TestDatabase>,
}

impl Env {
    fn new() -> Env {
        let db = TestDatabase::create_if_asked("custos_checkpoints").unwrap_or_else(|e| panic!("{e}"));
        Env { dir: tempfile::tempdir().expect("temp dir"), db }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
        cmd.arg("--data-dir").arg(self.data());
        cmd.env_remove("CUSTOS_MASTER_KEY").env_remove("CUSTOS_POLICY").env_remove("CUSTOS_DATA_DIR");
        if let Some(db) = &self.db {
            // A PostgreSQL deployment names its master key explicitly.
            cmd.arg("--database").arg(db.url()).env("CUSTOS_MASTER_KEY", "5a".repeat(32));
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run custos")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "custos {args:?} failed: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `audit verify` fails with exit 1; returns its stderr.
    fn verify_fails(&self, args: &[&str]) -> String {
        let mut all = vec!["audit", "verify"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.status.code(), Some(1), "verify should fail: {}", String::from_utf8_lossy(&out.stdout));
        stderr(&out)
    }

    /// The audit entries as `audit list` prints them: (seq, body).
    fn entries(&self) -> Vec<(u64, String)> {
        self.ok(&["audit", "list", "--limit", "100000"])
            .lines()
            .map(|l| {
                let (seq, body) = l.split_once('\t').expect("seq<TAB>body");
                (seq.parse().expect("a sequence number"), body.to_string())
            })
            .collect()
    }

    /// Runs SQL on the database directly, as an attacker with write access would.
    fn tamper(&self, statements: &[String]) {
        match &self.db {
            Some(db) => {
                for s in statements {
                    db.execute(s).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            None => {
                let conn = rusqlite::Connection::open(self.data().join("custos.db")).expect("open the database");
                for s in statements {
                    conn.execute_batch(s).unwrap_or_else(|e| panic!("{s}: {e}"));
                }
            }
        }
    }

    /// A blob literal in the backend's SQL.
    fn blob(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if self.db.is_some() { format!("decode('{hex}', 'hex')") } else { format!("x'{hex}'") }
    }

    /// Replaces the whole chain with `bodies`, hashed with the chain rule
    /// `SHA-256("custos-audit-v1" ‖ seq ‖ prev ‖ body)`, and records its head.
    fn rewrite_chain(&self, bodies: &[String]) -> ChainHead {
        let mut head = ChainHead::EMPTY;
        let mut sql = vec!["DELETE FROM audit".to_string()];
        for body in bodies {
            let e = head.append(body.clone());
            sql.push(format!(
                "INSERT INTO audit (seq, prev_hash, body, hash) VALUES ({}, {}, '{}', {})",
                e.seq,
                self.blob(&e.prev_hash),
                e.body.replace('\'', "''"),
                self.blob(&e.hash)
            ));
        }
        sql.push(format!("UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1", head.seq, self.blob(&head.hash)));
        self.tamper(&sql);
        head
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A subject with an email that was written and read: every command signs on exit.
fn populated() -> Env {
    let env = Env::new();
    env.ok(&["subject", "add", "c-1", "--jurisdiction", "california"]);
    env.ok(&[
        "data",
        "put",
        "c-1",
        "contact.email",
        "ada@example.org",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ]);
    env.ok(&["data", "get", "c-1", "contact.email", "--purpose", "provide_offerings"]);
    let out = env.ok(&["audit", "verify"]);
    assert!(out.starts_with("ok: 4 entries, 3 signed checkpoints checked, 0 unsigned"), "{out}");
    env
}

#[test]
fn regression_rewritten_chain_with_recomputed_head_fails_verify() {
    let env = populated();
    let anchor = env.data().join("anchor.json");
    std::fs::write(&anchor, env.ok(&["audit", "checkpoint", "--export"])).expect("write the anchor");

    // The attacker removes the write from the log and recomputes every hash and the head.
    let bodies: Vec<String> =
        env.entries().into_iter().map(|(_, b)| b).filter(|b| !b.contains("\"data_written\"")).collect();
    assert_eq!(bodies.len(), 3);
    env.rewrite_chain(&bodies);

    let err = env.verify_fails(&[]);
    assert!(err.contains("signature check failed"), "{err}");
    // Entry 1 (the store identity) and 2 (the subject) are unchanged; entry 3 was the write.
    assert!(err.contains("checkpoint at entry 3: the signed head hash does not match"), "{err}");
    // Nothing signs over the rewrite: a command appending now refuses to sign it.
    let out = env.run(&["subject", "add", "c-2", "--jurisdiction", "california"]);
    assert!(stderr(&out).contains("no checkpoint was signed"), "{}", stderr(&out));
    assert_eq!(env.run(&["audit", "checkpoint"]).status.code(), Some(1));

    // The chain itself is consistent: with the checkpoints deleted too, only
    // the anchor kept elsewhere still catches the rewrite.
    env.tamper(&["DELETE FROM audit_checkpoints".to_string()]);
    let out = env.ok(&["audit", "verify"]);
    assert!(out.contains("(no checkpoint yet)"), "{out}");
    let err = env.verify_fails(&["--anchor", anchor.to_str().expect("utf-8 path")]);
    assert!(err.contains("the anchored checkpoint at entry 4"), "{err}");
}

#[test]
fn regression_deleting_every_audit_entry_fails_verify() {
    let env = populated();
    env.rewrite_chain(&[]);
    let err = env.verify_fails(&[]);
    assert!(err.contains("signature check failed"), "{err}");
    assert!(err.contains("checkpoint at entry 2") && err.contains("signed entries were removed"), "{err}");
}

#[test]
fn regression_forged_checkpoint_signature_fails_verify() {
    let env = populated();
    let bodies: Vec<String> =
        env.entries().into_iter().map(|(_, b)| b).filter(|b| !b.contains("\"data_written\"")).collect();
    let head = env.rewrite_chain(&bodies);

    // 1. The stored checkpoints are moved onto the rewritten chain, keeping their signatures.
    env.tamper(&[
        format!("DELETE FROM audit_checkpoints WHERE seq > {}", head.seq),
        format!("UPDATE audit_checkpoints SET head = {} WHERE seq = {}", env.blob(&head.hash), head.seq),
    ]);
    let err = env.verify_fails(&[]);
    assert!(err.contains(&format!("checkpoint at entry {}: its signature does not match", head.seq)), "{err}");

    // 2. The attacker signs the rewritten head with a key of their own.
    let attacker = AuditSigner::from_seed(&[7; 32]).expect("a key");
    let key_id = attacker.public_key().id().to_string();
    let at = Timestamp(1_700_000_000_000_000);
    let signature = attacker.sign(&signed_message(head.seq, &head.hash, at, &key_id));
    env.tamper(&[
        "DELETE FROM audit_checkpoints".to_string(),
        format!(
            "INSERT INTO audit_checkpoints (seq, key_id, head, at, signature) VALUES ({}, '{key_id}', {}, {}, {})",
            head.seq,
            env.blob(&head.hash),
            at.0,
            env.blob(&signature)
        ),
    ]);
    let err = env.verify_fails(&[]);
    assert!(err.contains(&format!("signed by key `{key_id}`, which is not a trusted audit key")), "{err}");

    // The same checkpoint verifies once its key is trusted explicitly: the check is the signature.
    let keys = env.data().join("keys.json");
    let jwks = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{key_id}","x":"{}"}}]}}"#,
        base64url_encode(attacker.public_key().as_bytes())
    );
    std::fs::write(&keys, jwks).expect("write keys");
    let out = env.ok(&["audit", "verify", "--trusted-keys", keys.to_str().expect("utf-8 path")]);
    assert!(out.starts_with("ok: 3 entries, 1 signed checkpoints checked, 0 unsigned"), "{out}");
}

#[test]
fn an_exported_checkpoint_names_a_published_key_and_verifies_as_an_anchor() {
    let env = populated();
    let exported: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "checkpoint", "--export"])).expect("JSON");
    assert_eq!(exported["seq"], 4);
    assert_eq!(exported["alg"], "EdDSA");
    assert_eq!(exported["head"].as_str().map(str::len), Some(64));
    let anchor = env.data().join("anchor.json");
    std::fs::write(&anchor, exported.to_string()).expect("write");
    env.ok(&["subject", "add", "c-2", "--jurisdiction", "california"]);
    let out = env.ok(&["audit", "verify", "--anchor", anchor.to_str().expect("utf-8 path")]);
    assert!(out.contains("anchor: entry 4"), "{out}");

    // One changed byte of the anchor's signature, and it no longer verifies.
    let mut forged = exported.clone();
    let sig = exported["signature"].as_str().expect("signature").to_string();
    let flipped = if sig.starts_with('A') { sig.replacen('A', "B", 1) } else { format!("A{}", &sig[1..]) };
    forged["signature"] = flipped.into();
    std::fs::write(&anchor, forged.to_string()).expect("write");
    let err = env.verify_fails(&["--anchor", anchor.to_str().expect("utf-8 path")]);
    assert!(err.contains("the anchored checkpoint at entry 4: its signature does not match"), "{err}");

    // A file that is not an export is refused with a clear message.
    std::fs::write(&anchor, "{\"seq\": 1}").expect("write");
    let err = env.verify_fails(&["--anchor", anchor.to_str().expect("utf-8 path")]);
    assert!(err.contains("is not an exported checkpoint"), "{err}");

    // The server publishes the key the export names.
    let (mut child, base) = serve(&env, &[]);
    let keys = reqwest::blocking::get(format!("{base}/.well-known/custos/audit-keys"))
        .and_then(|r| r.text())
        .expect("audit keys");
    let keys: serde_json::Value = serde_json::from_str(&keys).expect("a JWK set");
    stop(&mut child);
    let key = &keys["keys"][0];
    assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("OKP"), Some("Ed25519")), "{keys}");
    assert_eq!(key["kid"], exported["key_id"], "{keys}");
    assert_eq!(key["x"], exported["public_key"], "{keys}");
}

fn serve(env: &Env, args: &[&str]) -> (std::process::Child, String) {
    let mut child = env
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn custos serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let base = line.trim().strip_prefix("listening on ").expect("a listening line").to_string();
    (child, base)
}

fn stop(child: &mut std::process::Child) {
    let status = Command::new("kill").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    assert_eq!(child.wait().expect("wait").code(), Some(0), "a clean shutdown");
}

/// The unsigned tail after the last checkpoint, from `audit verify`.
fn unsigned(env: &Env) -> u64 {
    let out = env.ok(&["audit", "verify"]);
    let first = out.lines().next().unwrap_or_default();
    first
        .split(", ")
        .find_map(|part| part.strip_suffix(" unsigned entries after the last checkpoint"))
        .or_else(|| first.split(", ").find_map(|part| part.strip_suffix(" unsigned entries (no checkpoint yet)")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected verify output: {out}"))
}

#[test]
fn the_server_signs_every_n_entries_and_on_shutdown() {
    let env = Env::new();
    let (mut child, base) = serve(&env, &["--checkpoint-every-entries", "3", "--checkpoint-every-seconds", "0"]);
    let key = std::fs::read_to_string(env.data().join("admin.key")).expect("admin.key");
    let client = reqwest::blocking::Client::new();
    let create = |id: &str| {
        let r = client
            .post(format!("{base}/v1/subjects"))
            .header("authorization", format!("Bearer {}", key.trim()))
            .header("content-type", "application/json")
            .body(format!(r#"{{"id":"{id}","jurisdiction":"california"}}"#))
            .send()
            .expect("create");
        assert_eq!(r.status(), 201);
    };
    // The store's identity is entry 1 and the admin key's creation entry 2;
    // a subject makes 3: a checkpoint is due.
    create("s-1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while unsigned(&env) != 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint after 3 entries");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // One more entry stays unsigned while the server runs (3 are needed)...
    create("s-2");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(unsigned(&env), 1);
    // ...and is signed on shutdown.
    stop(&mut child);
    let out = env.ok(&["audit", "verify"]);
    assert!(out.starts_with("ok: 4 entries") && out.contains(", 0 unsigned entries"), "{out}");
    assert!(out.contains("last checkpoint: entry 4"), "{out}");
}
