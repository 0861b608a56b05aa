//! The harness of the end-to-end HTTP tests: the real `custos serve` on port 0
//! over a fresh data directory (on PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`), one key per role, a blocking client.
//!
//! Every response goes through [`Server::request`], which fails the test on
//! any 5xx or a response without `x-request-id`, and checks that every error
//! is a well-formed `application/problem+json` document that echoes no value
//! the test remembered ([`Server::personal`], [`Server::card`],
//! [`Server::remember`]). [`Server::finish`] stops the server with SIGTERM,
//! expects exit code 0, and scans its log for those values, the keys, 5xx
//! and errors.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custos_test_support::TestDatabase;
use reqwest::blocking::{Body, Client};
use serde_json::{Value, json};

pub type R<T> = Result<T, String>;

pub const JSON: &str = "application/json";
pub const NDJSON: &str = "application/x-ndjson";

/// A key and its public id.
#[derive(Debug, Clone)]
pub struct Key {
    pub secret: String,
    pub id: String,
}

/// Who sends a request, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    /// `paymenttech`, bound to `provide_offerings` and `fraud_prevention`.
    Service,
    /// `marketo`, bound to `marketing`.
    Marketer,
    Auditor,
    /// No `Authorization` header.
    Anonymous,
    /// A well-formed key that was never issued.
    BadKey,
}

/// The sender of a request: a [`Who`], a [`Key`], or an optional key (`None`: anonymous).
pub trait Caller {
    /// The bearer secret to send, if any.
    fn bearer(&self, server: &Server) -> Option<String>;
    /// How failure messages name the sender (never the secret).
    fn label(&self) -> String;
}

impl Caller for Who {
    fn bearer(&self, server: &Server) -> Option<String> {
        let key = match self {
            Who::Admin => &server.admin,
            Who::Service => &server.service,
            Who::Marketer => &server.marketer,
            Who::Auditor => &server.auditor,
            Who::BadKey => &server.bad_key,
            Who::Anonymous => return None,
        };
        Some(key.secret.clone())
    }
    fn label(&self) -> String {
        format!("{self:?}")
    }
}

impl Caller for &Key {
    fn bearer(&self, _: &Server) -> Option<String> {
        Some(self.secret.clone())
    }
    fn label(&self) -> String {
        format!("key {}", self.id)
    }
}

impl Caller for Option<&Key> {
    fn bearer(&self, server: &Server) -> Option<String> {
        self.and_then(|k| k.bearer(server))
    }
    fn label(&self) -> String {
        self.map_or_else(|| Who::Anonymous.label(), |k| k.label())
    }
}

/// The binary under test; `CUSTOS_TEST_BIN` names another build to measure (e.g. before and after a change).
pub fn custos(data: &Path) -> Command {
    let bin = std::env::var_os("CUSTOS_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_custos").into());
    let mut c = Command::new(bin);
    c.arg("--data-dir").arg(data);
    for var in ["CUSTOS_MASTER_KEY", "CUSTOS_POLICY", "CUSTOS_DATA_DIR", "CUSTOS_LISTEN", "CUSTOS_LOG"] {
        c.env_remove(var);
    }
    // On the PostgreSQL run, Server::start leaves the test database's URL beside the data directory.
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
    let id = match secret.strip_prefix("cst_").and_then(|rest| rest.split('_').next()) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => return Err(format!("unexpected key output: {secret}")),
    };
    Ok(Key { secret, id })
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A value no other test run produces.
pub fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

/// A card number that passes the Luhn check, distinct per call.
pub fn card_number() -> String {
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64)
        ^ (COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        ^ u64::from(std::process::id());
    let mut digits = vec![4u32];
    for _ in 0..14 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        digits.push((seed % 10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
}

/// The body of `PUT /v1/subjects/{id}/data/{category}`.
pub fn put_body(value: &str, source: &str, purpose: &str) -> Value {
    json!({ "value": value, "source": source, "purpose": purpose })
}

/// A running server.
pub struct Server {
    /// Dropped after the server has stopped (fields drop in order after `Drop`).
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
    /// A well-formed key that was never issued.
    pub bad_key: Key,
    /// Every personal value sent to the server: it may appear in no log line
    /// and in no error response.
    stored: Mutex<Vec<String>>,
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
        serde_json::from_str(&self.text).map_err(|e| format!("{}: body is not JSON ({e}): {}", self.what, self.text))
    }

    /// Fails unless the status is `status`.
    pub fn want(self, status: u16) -> R<Resp> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!("{}: expected {status}, got {}: {}", self.what, self.status, self.text))
        }
    }

    /// Expects `status` and returns the JSON body.
    pub fn want_json(self, status: u16) -> R<Value> {
        self.want(status)?.json()
    }

    /// Expects a problem with this status and code; returns the problem.
    pub fn problem(self, status: u16, code: &str) -> R<Value> {
        let what = self.what.clone();
        let p = self.want_json(status)?;
        if p["code"] != code {
            return Err(format!("{what}: expected problem code `{code}`, got {p}"));
        }
        Ok(p)
    }
}

impl Server {
    /// Creates a data directory with one key per role and starts the server
    /// with `extra` arguments (JSON logs unless `extra` names a `--log-format`).
    pub fn start(extra: &[&str]) -> R<Server> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let database = TestDatabase::create_if_asked("custos_http")?;
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
        let mut serve = custos(&data);
        serve.args(["serve", "--listen", "127.0.0.1:0"]);
        if !extra.contains(&"--log-format") {
            serve.args(["--log-format", "json"]);
        }
        let child = serve
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
            bad_key: Key { secret: format!("cst_00000000_{}", "0".repeat(64)), id: "00000000".into() },
            stored: Mutex::new(Vec::new()),
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

    /// Remembers a personal value for the leak checks.
    pub fn remember(&self, value: &str) {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner).push(value.to_string());
    }

    /// The values remembered so far.
    pub fn stored(&self) -> Vec<String> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A distinctive personal value, remembered for the leak checks.
    pub fn personal(&self) -> String {
        let v = format!("p3rs0nal-{}@example.org", unique());
        self.remember(&v);
        v
    }

    /// A distinctive card number, remembered for the leak checks.
    pub fn card(&self) -> String {
        let v = card_number();
        self.remember(&v);
        v
    }

    /// Sends one request, with an optional body (and its content type) and
    /// extra headers, and applies the suite-wide checks to its response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        who: impl Caller,
        body: Option<(Option<&str>, Body)>,
        headers: &[(&str, &str)],
    ) -> R<Resp> {
        let what = format!("{method} {path} as {}", who.label());
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| format!("{what}: {e}"))?;
        let mut req = self.client.request(m, format!("{}{path}", self.base));
        if let Some(secret) = who.bearer(self) {
            req = req.header("authorization", format!("Bearer {secret}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req = req.body(body);
        }
        let resp = req.send().map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type").unwrap_or_default();
        let www_authenticate = header("www-authenticate");
        let request_id = header("x-request-id");
        let text = resp.text().map_err(|e| format!("{what}: reading the body: {e}"))?;
        if status >= 500 {
            return Err(format!("{what}: server error {status}: {text}"));
        }
        if request_id.is_none_or(|id| id.is_empty()) {
            return Err(format!("{what}: no x-request-id on the response"));
        }
        let resp = Resp { what, status, content_type, text };
        if status >= 400 {
            self.check_problem(&resp, www_authenticate.as_deref())?;
        }
        Ok(resp)
    }

    /// Every error is RFC 9457 problem+json and echoes no stored value.
    fn check_problem(&self, resp: &Resp, www_authenticate: Option<&str>) -> R<()> {
        let what = &resp.what;
        if !resp.content_type.starts_with("application/problem+json") {
            return Err(format!("{what}: error with content-type {:?}: {}", resp.content_type, resp.text));
        }
        let p = resp.json()?;
        let ty = p["type"].as_str().unwrap_or_default();
        let code = p["code"].as_str().unwrap_or_default();
        // `type` is specific (`urn:custos:problem:unknown_purpose`); `code` is its broad class (`invalid_request`).
        if ty.strip_prefix("urn:custos:problem:").is_none_or(str::is_empty) || code.is_empty() {
            return Err(format!("{what}: bad problem type/code: {p}"));
        }
        if p["title"].as_str().is_none_or(str::is_empty) || p["detail"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{what}: problem without title or detail: {p}"));
        }
        if p["status"].as_u64() != Some(u64::from(resp.status)) {
            return Err(format!("{what}: problem status differs from the HTTP status {}: {p}", resp.status));
        }
        if code == "denied" && p["reason"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{what}: a denial without a reason: {p}"));
        }
        if resp.status == 401 && www_authenticate != Some("Bearer") {
            return Err(format!("{what}: 401 without `WWW-Authenticate: Bearer`"));
        }
        for v in self.stored() {
            if resp.text.contains(&v) {
                return Err(format!("{what}: the problem echoes a stored value: {}", resp.text));
            }
        }
        Ok(())
    }

    /// Sends a request as `key` (none: anonymous) with an optional body and content type.
    pub fn send(&self, method: &str, path: &str, key: Option<&Key>, body: Option<(&str, Vec<u8>)>) -> R<Resp> {
        self.request(method, path, key, body.map(|(ct, b)| (Some(ct), Body::from(b))), &[])
    }

    pub fn get(&self, path: &str, who: impl Caller) -> R<Resp> {
        self.request("GET", path, who, None, &[])
    }

    pub fn json(&self, method: &str, path: &str, who: impl Caller, body: &Value) -> R<Resp> {
        self.request(method, path, who, Some((Some(JSON), Body::from(body.to_string()))), &[])
    }

    /// A request with a raw body and an optional content type.
    pub fn raw(&self, method: &str, path: &str, who: impl Caller, content_type: Option<&str>, body: &[u8]) -> R<Resp> {
        self.request(method, path, who, Some((content_type, Body::from(body.to_vec()))), &[])
    }

    /// Creates a subject as the admin.
    pub fn create_subject(&self, id: &str, jurisdiction: &str) -> R<()> {
        self.json("POST", "/v1/subjects", Who::Admin, &json!({ "id": id, "jurisdiction": jurisdiction }))?
            .want(201)
            .map(drop)
    }

    /// Stores a value as the admin; returns the version.
    pub fn put(&self, id: &str, category: &str, value: &str, purpose: &str) -> R<u64> {
        let path = format!("/v1/subjects/{id}/data/{category}");
        let v = self.json("PUT", &path, Who::Admin, &put_body(value, "provided", purpose))?.want_json(200)?;
        v["version"].as_u64().ok_or_else(|| format!("no version in {v}"))
    }

    /// The audit entries after sequence number `after`.
    pub fn audit_since(&self, after: u64) -> R<Vec<Value>> {
        let mut after = after;
        let mut out = Vec::new();
        loop {
            let page = self.get(&format!("/v1/audit?after={after}&limit=1000"), Who::Auditor)?.want_json(200)?;
            let entries = page["entries"].as_array().ok_or_else(|| format!("no entries in {page}"))?;
            out.extend(entries.iter().cloned());
            match page["next_after"].as_u64() {
                Some(n) => after = n,
                None => return Ok(out),
            }
        }
    }

    /// The number of audit entries, after verifying the chain.
    pub fn audit_count(&self) -> R<u64> {
        let v = self.request("POST", "/v1/audit/verify", Who::Auditor, None, &[])?.want_json(200)?;
        if v["ok"] != true {
            return Err(format!("the audit chain does not verify: {v}"));
        }
        v["entries"].as_u64().ok_or_else(|| format!("no entry count in {v}"))
    }

    /// Sends SIGTERM with `kill`.
    pub fn terminate(&self) -> R<()> {
        let pid = self.pid()?.to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().map_err(|e| format!("kill: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("kill -TERM {pid} failed: {status}")) }
    }

    /// Waits up to `within` for the server to exit (after [`Server::terminate`]).
    pub fn wait_for_exit(&mut self, within: Duration) -> R<ExitStatus> {
        let mut child = self.child.take().ok_or("the server is not running")?;
        let deadline = Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("the server did not stop within {within:?} of SIGTERM: {}", self.log_text()));
                }
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
        }
    }

    /// SIGTERM; expects exit code 0 within 30 s and a clean log ([`Server::check_log`]).
    pub fn finish(mut self) -> R<()> {
        self.terminate()?;
        let status = self.wait_for_exit(Duration::from_secs(30))?;
        let log = self.log_text();
        if status.code() != Some(0) {
            return Err(format!("the server exited with {status} after SIGTERM: {log}"));
        }
        self.check_log(&log)
    }

    /// No stored value, no key, no 5xx and no error in the server's log.
    pub fn check_log(&self, log: &str) -> R<()> {
        if !log.lines().any(|l| l.contains("request")) {
            return Err(format!("the log has no request lines: {log}"));
        }
        let mut secrets = self.stored();
        secrets.extend([&self.admin, &self.service, &self.marketer, &self.auditor].map(|k| k.secret.clone()));
        for line in log.lines() {
            for s in &secrets {
                if line.contains(s.as_str()) {
                    return Err(format!("a log line contains a stored value or key `{s}`: {line}"));
                }
            }
            if line.contains("ERROR") {
                return Err(format!("error in the log: {line}"));
            }
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v["status"].as_u64().is_some_and(|s| s >= 500)
            {
                return Err(format!("a 5xx in the log: {line}"));
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
