//! A small harness for the end-to-end HTTP tests outside `http.rs`: the real
//! `custos serve` on port 0 over a fresh data directory (on PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`), one key per role, a blocking client.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use custos_test_support::TestDatabase;
use reqwest::blocking::Client;
use serde_json::Value;

pub type R<T> = Result<T, String>;

/// A key and its public id.
#[derive(Debug, Clone)]
pub struct Key {
    pub secret: String,
    pub id: String,
}

/// The binary under test; `CUSTOS_TEST_BIN` names another build to measure (e.g. before and after a change).
pub fn custos(data: &Path) -> Command {
    let bin = std::env::var_os("CUSTOS_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_custos").into());
    let mut c = Command::new(bin);
    c.arg("--data-dir").arg(data);
    for var in ["CUSTOS_MASTER_KEY", "CUSTOS_POLICY", "CUSTOS_DATA_DIR", "CUSTOS_LISTEN", "CUSTOS_LOG"] {
        c.env_remove(var);
    }
    if let Some(url) = data.parent().and_then(|d| fs::read_to_string(d.join("database_url")).ok()) {
        // A PostgreSQL deployment names its master key explicitly.
        c.arg("--database").arg(url.trim()).env("CUSTOS_MASTER_KEY", "3d".repeat(32));
    }
    c
}

pub fn create_key(data: &Path, args: &[&str]) -> R<Key> {
    let out = custos(data)
        .args(["key", "create"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run custos key create: {e}"))?;
    if !out.status.success() {
        return Err(format!("custos key create {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let id = secret.split('_').nth(1).ok_or_else(|| format!("unexpected key output: {secret}"))?.to_string();
    Ok(Key { secret, id })
}

/// A running server.
pub struct Server {
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
    pub client: Client,
    pub admin: Key,
    /// `paymenttech`, bound to `provide_offerings` and `fraud_prevention`.
    pub service: Key,
    /// `marketo`, bound to `marketing`.
    pub marketer: Key,
    pub auditor: Key,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> R<Value> {
        serde_json::from_str(&self.text).map_err(|e| format!("{}: not JSON ({e}): {}", self.what, self.text))
    }

    pub fn want(self, status: u16) -> R<Resp> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!("{}: expected {status}, got {}: {}", self.what, self.status, self.text))
        }
    }

    pub fn want_json(self, status: u16) -> R<Value> {
        self.want(status)?.json()
    }
}

impl Server {
    pub fn start(extra: &[&str]) -> R<Server> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let database = TestDatabase::create_if_asked("custos_http2")?;
        if let Some(db) = &database {
            fs::write(dir.path().join("database_url"), db.url()).map_err(|e| format!("database_url: {e}"))?;
        }
        let admin = create_key(&data, &["--role", "admin"])?;
        let service = create_key(
            &data,
            &["--role", "service", "--actor", "paymenttech", "--purposes", "provide_offerings,fraud_prevention"],
        )?;
        let marketer = create_key(&data, &["--role", "service", "--actor", "marketo", "--purposes", "marketing"])?;
        let auditor = create_key(&data, &["--role", "auditor"])?;
        let log = dir.path().join("server.log");
        let stderr = fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let child = custos(&data)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start custos serve: {e}"))?;
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let mut server = Server {
            _database: database,
            _dir: dir,
            data,
            child: Some(child),
            base: String::new(),
            log,
            client,
            admin,
            service,
            marketer,
            auditor,
        };
        let stdout = server.child.as_mut().and_then(|c| c.stdout.take()).ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(line)) => line,
            other => return Err(format!("the server did not start ({other:?}): {}", server.log_text())),
        };
        server.base = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line: {line:?}; log: {}", server.log_text()))?
            .to_string();
        Ok(server)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> R<u32> {
        self.child.as_ref().map(Child::id).ok_or_else(|| "the server is not running".to_string())
    }

    /// Sends a request as `key` (none: anonymous) with an optional body and content type.
    pub fn send(&self, method: &str, path: &str, key: Option<&Key>, body: Option<(&str, Vec<u8>)>) -> R<Resp> {
        let what = format!("{method} {path}");
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| format!("{what}: {e}"))?;
        let mut req = self.client.request(m, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {}", k.secret));
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let resp = req.send().map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = resp.text().map_err(|e| format!("{what}: reading the body: {e}"))?;
        if status >= 500 {
            return Err(format!("{what}: server error {status}: {text}"));
        }
        Ok(Resp { what, status, content_type, text })
    }

    pub fn json(&self, method: &str, path: &str, key: &Key, body: &Value) -> R<Resp> {
        self.send(method, path, Some(key), Some(("application/json", body.to_string().into_bytes())))
    }

    /// The audit entries after sequence number `after`.
    pub fn audit_since(&self, after: u64) -> R<Vec<Value>> {
        let mut after = after;
        let mut out = Vec::new();
        loop {
            let page = self
                .send("GET", &format!("/v1/audit?after={after}&limit=1000"), Some(&self.auditor), None)?
                .want_json(200)?;
            out.extend(page["entries"].as_array().cloned().unwrap_or_default());
            match page["next_after"].as_u64() {
                Some(n) => after = n,
                None => return Ok(out),
            }
        }
    }

    /// The number of audit entries, after verifying the chain.
    pub fn audit_count(&self) -> R<u64> {
        let v = self.send("POST", "/v1/audit/verify", Some(&self.auditor), None)?.want_json(200)?;
        if v["ok"] != true {
            return Err(format!("the audit chain does not verify: {v}"));
        }
        v["entries"].as_u64().ok_or_else(|| format!("no entry count in {v}"))
    }

    /// SIGTERM; expects exit code 0 within 30 s and no 5xx or error in the log.
    pub fn finish(mut self) -> R<()> {
        let pid = self.pid()?.to_string();
        Command::new("kill").args(["-TERM", &pid]).status().map_err(|e| format!("kill: {e}"))?;
        let mut child = self.child.take().ok_or("the server is not running")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("the server did not stop within 30 s of SIGTERM: {}", self.log_text()));
                }
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
        };
        let log = self.log_text();
        if status.code() != Some(0) {
            return Err(format!("the server exited with {status} after SIGTERM: {log}"));
        }
        for line in log.lines() {
            if line.contains("ERROR") {
                return Err(format!("error in the log: {line}"));
            }
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
