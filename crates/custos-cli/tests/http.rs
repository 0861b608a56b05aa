//! End-to-end tests of the HTTP API: the real `custos serve` binary on port 0,
//! a fresh data directory per test, a real HTTP client.
//!
//! Every response goes through [`Server::send`], which fails the test on any
//! 5xx, checks that every error is a well-formed `application/problem+json`
//! document that echoes no stored value, and every test ends with
//! [`Server::finish`]: SIGTERM, exit code 0, and a scan of the server's log for
//! the personal values the test sent (none may appear) and for 5xx or errors.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custos_test_support::TestDatabase;
use reqwest::blocking::{Body, Client};
use serde_json::{Value, json};

type R<T> = Result<T, String>;

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
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

const ROLES: [Who; 5] = [Who::Admin, Who::Service, Who::Auditor, Who::Anonymous, Who::BadKey];

/// A response, read whole.
#[derive(Debug)]
struct Resp {
    what: String,
    status: u16,
    content_type: String,
    text: String,
}

impl Resp {
    fn json(&self) -> R<Value> {
        serde_json::from_str(&self.text).map_err(|e| format!("{}: body is not JSON ({e}): {}", self.what, self.text))
    }

    /// Fails unless the status is `status`.
    fn want(self, status: u16) -> R<Resp> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!("{}: expected {status}, got {}: {}", self.what, self.status, self.text))
        }
    }

    /// Expects `status` and returns the JSON body.
    fn want_json(self, status: u16) -> R<Value> {
        self.want(status)?.json()
    }

    /// Expects a problem with this status and code; returns the problem.
    fn problem(self, status: u16, code: &str) -> R<Value> {
        let what = self.what.clone();
        let p = self.want_json(status)?;
        if p["code"] != code {
            return Err(format!("{what}: expected problem code `{code}`, got {p}"));
        }
        Ok(p)
    }
}

/// A running `custos serve` over a fresh data directory.
struct Server {
    /// Dropped after the server has stopped (fields drop in order after `Drop`).
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
    child: Option<Child>,
    base: String,
    log: PathBuf,
    client: Client,
    admin: String,
    service: String,
    marketer: String,
    auditor: String,
    bad_key: String,
    /// Every personal value sent to the server: it may appear in no log line
    /// and in no error response.
    stored: Mutex<Vec<String>>,
}

fn custos(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.arg("--data-dir").arg(data);
    // On the PostgreSQL run, Server::start leaves the test database's URL beside the data directory.
    if let Some(url) = data.parent().and_then(|d| fs::read_to_string(d.join("database_url")).ok()) {
        c.arg("--database").arg(url.trim());
    }
    for var in ["CUSTOS_MASTER_KEY", "CUSTOS_POLICY", "CUSTOS_DATA_DIR", "CUSTOS_LISTEN", "CUSTOS_LOG"] {
        c.env_remove(var);
    }
    if data.parent().is_some_and(|d| d.join("database_url").exists()) {
        // PostgreSQL needs its master key named explicitly.
        c.env("CUSTOS_MASTER_KEY", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0");
    }
    c
}

fn create_key(data: &Path, args: &[&str]) -> R<String> {
    let out = custos(data)
        .args(["key", "create"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run custos key create: {e}"))?;
    if !out.status.success() {
        return Err(format!("custos key create {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !key.starts_with("cst_") {
        return Err(format!("unexpected key output: {key}"));
    }
    Ok(key)
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A value no other test run produces.
fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

/// A card number that passes the Luhn check, distinct per call.
fn card_number() -> String {
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

fn put_body(value: &str, source: &str, purpose: &str) -> Value {
    json!({ "value": value, "source": source, "purpose": purpose })
}

impl Server {
    /// Creates a data directory with one key per role and starts the server.
    fn start(extra: &[&str]) -> R<Server> {
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
        let child = custos(&data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start custos serve: {e}"))?;
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let mut server = Server {
            _database: database,
            _dir: dir,
            child: Some(child),
            base: String::new(),
            log,
            client,
            admin,
            service,
            marketer,
            auditor,
            bad_key: format!("cst_00000000_{}", "0".repeat(64)),
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
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
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

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn key(&self, who: Who) -> Option<&str> {
        match who {
            Who::Admin => Some(&self.admin),
            Who::Service => Some(&self.service),
            Who::Marketer => Some(&self.marketer),
            Who::Auditor => Some(&self.auditor),
            Who::BadKey => Some(&self.bad_key),
            Who::Anonymous => None,
        }
    }

    fn remember(&self, value: &str) {
        let mut stored = self.stored.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stored.push(value.to_string());
    }

    fn stored(&self) -> Vec<String> {
        self.stored.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// A distinctive personal value, remembered for the leak checks.
    fn personal(&self) -> String {
        let v = format!("p3rs0nal-{}@example.org", unique());
        self.remember(&v);
        v
    }

    /// A distinctive card number, remembered for the leak checks.
    fn card(&self) -> String {
        let v = card_number();
        self.remember(&v);
        v
    }

    /// Sends one request and applies the suite-wide checks to its response.
    fn send(
        &self,
        method: &str,
        path: &str,
        who: Who,
        body: Option<(Option<&str>, Body)>,
        headers: &[(&str, &str)],
    ) -> R<Resp> {
        let what = format!("{method} {path} as {who:?}");
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| format!("{what}: {e}"))?;
        let mut req = self.client.request(m, format!("{}{path}", self.base));
        if let Some(key) = self.key(who) {
            req = req.header("authorization", format!("Bearer {key}"));
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

    fn get(&self, path: &str, who: Who) -> R<Resp> {
        self.send("GET", path, who, None, &[])
    }

    fn json(&self, method: &str, path: &str, who: Who, body: &Value) -> R<Resp> {
        self.send(method, path, who, Some((Some(JSON), Body::from(body.to_string()))), &[])
    }

    /// A request with a raw body and an optional content type.
    fn raw(&self, method: &str, path: &str, who: Who, content_type: Option<&str>, body: &[u8]) -> R<Resp> {
        self.send(method, path, who, Some((content_type, Body::from(body.to_vec()))), &[])
    }

    fn create_subject(&self, id: &str, jurisdiction: &str) -> R<()> {
        self.json("POST", "/v1/subjects", Who::Admin, &json!({ "id": id, "jurisdiction": jurisdiction }))?
            .want(201)
            .map(drop)
    }

    /// Stores a value as the admin; returns the version.
    fn put(&self, id: &str, category: &str, value: &str, purpose: &str) -> R<u64> {
        let path = format!("/v1/subjects/{id}/data/{category}");
        let v = self.json("PUT", &path, Who::Admin, &put_body(value, "provided", purpose))?.want_json(200)?;
        v["version"].as_u64().ok_or_else(|| format!("no version in {v}"))
    }

    /// The number of audit entries, after verifying the chain.
    fn audit_count(&self) -> R<u64> {
        let v = self.send("POST", "/v1/audit/verify", Who::Auditor, None, &[])?.want_json(200)?;
        if v["ok"] != true {
            return Err(format!("the audit chain does not verify: {v}"));
        }
        v["entries"].as_u64().ok_or_else(|| format!("no entry count in {v}"))
    }

    /// The audit entries after sequence number `after`.
    fn audit_since(&self, after: u64) -> R<Vec<Value>> {
        let mut after = after;
        let mut out = Vec::new();
        loop {
            let page = self.get(&format!("/v1/audit?after={after}&limit=1000"), Who::Auditor)?.want_json(200)?;
            for e in page["entries"].as_array().ok_or_else(|| format!("no entries in {page}"))? {
                out.push(e.clone());
            }
            match page["next_after"].as_u64() {
                Some(n) => after = n,
                None => return Ok(out),
            }
        }
    }

    fn pid(&self) -> R<u32> {
        self.child.as_ref().map(Child::id).ok_or_else(|| "the server is not running".to_string())
    }

    /// Sends SIGTERM with `kill`.
    fn terminate(&self) -> R<()> {
        let pid = self.pid()?.to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().map_err(|e| format!("kill: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("kill -TERM {pid} failed: {status}")) }
    }

    /// Stops the server (SIGTERM), expects exit code 0 within 20 s, and checks the log.
    fn finish(mut self) -> R<()> {
        self.terminate()?;
        let mut child = self.child.take().ok_or("the server is not running")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("the server did not stop within 20 s of SIGTERM: {}", self.log_text()));
                }
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
        };
        let log = self.log_text();
        if status.code() != Some(0) {
            return Err(format!("the server exited with {status} after SIGTERM: {log}"));
        }
        self.check_log(&log)
    }

    /// No stored value, no key, no 5xx and no error in the server's log.
    fn check_log(&self, log: &str) -> R<()> {
        if !log.lines().any(|l| l.contains("request")) {
            return Err(format!("the log has no request lines: {log}"));
        }
        let mut secrets = self.stored();
        secrets.extend([self.admin.clone(), self.service.clone(), self.marketer.clone(), self.auditor.clone()]);
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

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The `(METHOD, /path/{param})` pairs the router of `app()` in custos-server's
/// lib.rs registers, read with a string scan of the body of `app()`. Two forms
/// are understood: `.route("/path", get(…).post(…))` (the method routers at the
/// call's own depth) and `.anything("METHOD", "/path", …)`.
fn router_routes() -> R<BTreeSet<(String, String)>> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../custos-server/src/lib.rs");
    let src = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    routes_in(&src)
}

/// The routes registered by `pub fn app(` in `src`.
fn routes_in(src: &str) -> R<BTreeSet<(String, String)>> {
    let start = src.find("pub fn app(").ok_or("no `pub fn app(` in lib.rs")?;
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").ok_or("no end of `app()`")?];
    let mut routes = BTreeSet::new();
    let mut rest = body;
    while let Some(at) = rest.find(".route(") {
        let (path, methods, tail) = route_call(&rest[at + ".route(".len()..])?;
        for m in methods {
            routes.insert((m, path.clone()));
        }
        rest = tail;
    }
    let mut rest = body;
    while let Some(at) = rest.find("(\"") {
        rest = &rest[at + 2..];
        let Some((method, tail)) = rest.split_once('"') else { break };
        if !METHODS.contains(&method) {
            continue;
        }
        let Some(literal) = tail.trim_start().strip_prefix(',').map(str::trim_start).and_then(|t| t.strip_prefix('"'))
        else {
            continue;
        };
        let path = literal.split('"').next().unwrap_or_default();
        if path.starts_with('/') {
            routes.insert((method.to_string(), openapi_path(path)));
        }
    }
    Ok(routes)
}

/// The path, the method routers and the rest after a `.route(` call's arguments.
fn route_call(call: &str) -> R<(String, Vec<String>, &str)> {
    let call = call.trim_start();
    let Some(literal) = call.strip_prefix('"') else {
        return Err(format!("a .route( call without a string literal: {}", call.chars().take(60).collect::<String>()));
    };
    let end = literal.find('"').ok_or("unterminated route literal")?;
    let path = openapi_path(&literal[..end]);
    let args = &literal[end + 1..];
    let mut depth = 1;
    let mut close = args.len();
    let mut methods = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in args.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = i;
                    break;
                }
            }
            _ if depth == 1 && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == ':') => {
                for m in METHODS {
                    let m = m.to_lowercase();
                    if args[i..].starts_with(&m) && args[i + m.len()..].starts_with('(') {
                        methods.push(m.to_uppercase());
                    }
                }
            }
            _ => {}
        }
        prev = Some(c);
    }
    if methods.is_empty() {
        return Err(format!("no method router found for route {path}"));
    }
    Ok((path, methods, &args[close..]))
}

/// `/a/:id/*rest` or `/a/{id}/{*rest}` → `/a/{id}/{rest}`.
fn openapi_path(route: &str) -> String {
    route
        .split('/')
        .map(|seg| {
            if let Some(name) = seg.strip_prefix(':').or_else(|| seg.strip_prefix('*')) {
                format!("{{{name}}}")
            } else if let Some(name) = seg.strip_prefix("{*") {
                format!("{{{name}")
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_route_scan_reads_both_router_styles() -> R<()> {
    let src = r#"
fn other() { x.route("/not/app", get(h)); }
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/a/{id}", put(api::put_item).get(api::read_item))
        .route("/v1/b/:id/c", post(api::ingest).layer(DefaultBodyLimit::max(max_ingest)))
        .route(
            "/v1/d",
            delete(api::target_get),
        )
        .read("GET", "/healthz", ops::healthz)
        .write("POST", "/v1/e/{id}/erasure", api::erase, None)
        .fallback(no_route)
}
fn after() { x.read("GET", "/not/app/either", h); }
"#;
    let routes = routes_in(src)?;
    let want: BTreeSet<(String, String)> = [
        ("PUT", "/v1/a/{id}"),
        ("GET", "/v1/a/{id}"),
        ("POST", "/v1/b/{id}/c"),
        ("DELETE", "/v1/d"),
        ("GET", "/healthz"),
        ("POST", "/v1/e/{id}/erasure"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(routes, want);
    Ok(())
}

/// The expected status of a route for each role.
#[derive(Clone, Copy)]
struct Expect {
    admin: u16,
    service: u16,
    auditor: u16,
    /// Anonymous and unknown keys.
    nobody: u16,
}

impl Expect {
    fn for_role(self, who: Who) -> u16 {
        match who {
            Who::Admin => self.admin,
            Who::Service | Who::Marketer => self.service,
            Who::Auditor => self.auditor,
            Who::Anonymous | Who::BadKey => self.nobody,
        }
    }
}

/// Writers: admin and service keys.
const WRITERS: Expect = Expect { admin: 200, service: 200, auditor: 403, nobody: 401 };
const ADMIN_ONLY: Expect = Expect { admin: 200, service: 403, auditor: 403, nobody: 401 };
const OVERSIGHT: Expect = Expect { admin: 200, service: 403, auditor: 200, nobody: 401 };
const ANY_KEY: Expect = Expect { admin: 200, service: 200, auditor: 200, nobody: 401 };
const PUBLIC: Expect = Expect { admin: 200, service: 200, auditor: 200, nobody: 200 };

#[test]
fn every_role_gets_the_right_status_on_every_route() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    let mut covered = BTreeSet::new();
    for who in ROLES {
        let id = format!("matrix-{who:?}").to_lowercase();
        let s = format!("/v1/subjects/{id}");
        let name = server.personal();
        let address = server.personal();
        let card = server.card();
        // Each call: the route template it exercises, the request, the expected statuses.
        let mut check = |method: &str, template: &str, path: &str, body: Option<(&str, String)>, expect: Expect| {
            covered.insert((method.to_string(), template.to_string()));
            let want = expect.for_role(who);
            let resp = match body {
                Some((ct, b)) => server.raw(method, path, who, Some(ct), b.as_bytes())?,
                None => server.send(method, path, who, None, &[])?,
            };
            let got = resp.status;
            let want = if want == 200 && method == "POST" && template == "/v1/subjects" { 201 } else { want };
            if got != want {
                return Err(format!("{method} {template} as {who:?}: expected {want}, got {got}: {}", resp.text));
            }
            if got == 403 && !matches!(resp.json()?["code"].as_str(), Some("forbidden")) {
                return Err(format!("{method} {template} as {who:?}: 403 but not `forbidden`: {}", resp.text));
            }
            Ok::<Resp, String>(resp)
        };
        let created = check(
            "POST",
            "/v1/subjects",
            "/v1/subjects",
            Some((JSON, json!({ "id": id, "jurisdiction": "california" }).to_string())),
            ADMIN_ONLY,
        )?;
        if created.status != 201 {
            server.create_subject(&id, "california")?;
        }
        check("GET", "/v1/subjects/{id}", &format!("{s}?purpose=provide_offerings"), None, WRITERS)?;
        let put = check(
            "PUT",
            "/v1/subjects/{id}/data/{category}",
            &format!("{s}/data/contact.name"),
            Some((JSON, put_body(&name, "provided", "provide_offerings").to_string())),
            WRITERS,
        )?;
        if put.status != 200 {
            server.put(&id, "contact.name", &name, "provide_offerings")?;
        }
        server.put(&id, "payment.card_number", &card, "provide_offerings")?;
        let read = check(
            "GET",
            "/v1/subjects/{id}/data/{category}",
            &format!("{s}/data/contact.name?purpose=provide_offerings"),
            None,
            WRITERS,
        )?;
        if read.status == 200 && read.json()?["value"] != name.as_str() {
            return Err(format!("{who:?} read back another value: {}", read.text));
        }
        check("GET", "/v1/subjects/{id}/data", &format!("{s}/data?purpose=provide_offerings"), None, WRITERS)?;
        check(
            "GET",
            "/v1/subjects/{id}/data/{category}/history",
            &format!("{s}/data/contact.name/history?purpose=provide_offerings"),
            None,
            WRITERS,
        )?;
        // Choices are the subject's: only admin keys may record them (a service
        // key could otherwise grant itself a consent and read under it).
        check("PUT", "/v1/subjects/{id}/consents/{purpose}", &format!("{s}/consents/marketing"), None, ADMIN_ONLY)?;
        check("DELETE", "/v1/subjects/{id}/consents/{purpose}", &format!("{s}/consents/marketing"), None, ADMIN_ONLY)?;
        check(
            "PUT",
            "/v1/subjects/{id}/objections/{purpose}",
            &format!("{s}/objections/improve_offerings"),
            None,
            ADMIN_ONLY,
        )?;
        check("PUT", "/v1/subjects/{id}/restriction", &format!("{s}/restriction"), None, ADMIN_ONLY)?;
        check("DELETE", "/v1/subjects/{id}/restriction", &format!("{s}/restriction"), None, ADMIN_ONLY)?;
        let token_read = server
            .get(&format!("{s}/data/payment.card_number?purpose=provide_offerings"), Who::Admin)?
            .want_json(200)?;
        let shown = token_read["value"].as_str().unwrap_or_default();
        if shown.contains(&card) || !shown.contains(&card[card.len() - 4..]) {
            return Err(format!("a tokenized card number reads as {shown:?}"));
        }
        let token = shown.split_whitespace().find(|w| w.starts_with("tok_")).ok_or("no token")?.to_string();
        let detok = check(
            "POST",
            "/v1/detokenize",
            "/v1/detokenize",
            Some((JSON, json!({ "token": token, "purpose": "provide_offerings" }).to_string())),
            WRITERS,
        )?;
        if detok.status == 200 && detok.json()?["value"].as_str().map(|v| v.replace([' ', '-'], "")) != Some(card) {
            return Err(format!("detokenize returned another value: {}", detok.text));
        }
        let line = json!({ "subject": id, "category": "contact.address", "value": address,
            "source": "provided", "purpose": "provide_offerings" });
        let ingest = check("POST", "/v1/ingest", "/v1/ingest", Some((NDJSON, format!("{line}\n"))), WRITERS)?;
        if ingest.status == 200 && ingest.json()?["written"] != 1 {
            return Err(format!("{who:?}: ingestion did not write its line: {}", ingest.text));
        }
        check("GET", "/v1/policy", "/v1/policy", None, ANY_KEY)?;
        check("GET", "/v1/audit", "/v1/audit", None, OVERSIGHT)?;
        check("POST", "/v1/audit/verify", "/v1/audit/verify", None, OVERSIGHT)?;
        check("GET", "/metrics", "/metrics", None, OVERSIGHT)?;
        for route in ["/notice", "/healthz", "/readyz", "/openapi.json", "/.well-known/custos/audit-keys"] {
            check("GET", route, route, None, PUBLIC)?;
        }
        check("POST", "/v1/subjects/{id}/erasure", &format!("{s}/erasure"), None, ADMIN_ONLY)?;
        if who == Who::Admin {
            let p = server.get(&format!("{s}/data/contact.name?purpose=provide_offerings"), Who::Admin)?;
            assert_eq!(p.problem(403, "denied")?["reason"], "erased");
        }
    }
    // The matrix covers every route of the router.
    let routes = router_routes()?;
    let missing: Vec<_> = routes.difference(&covered).collect();
    assert!(missing.is_empty(), "routes missing from the role matrix: {missing:?}");
    // A malformed Authorization header is a 401 too.
    let resp =
        server.send("GET", "/v1/policy", Who::Anonymous, None, &[("authorization", "Basic YWRtaW46YWRtaW4=")])?;
    resp.problem(401, "unauthorized")?;
    server.finish()
}

#[test]
fn a_policy_denial_of_a_service_key_is_a_problem_with_a_reason_and_audited() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.create_subject("eve", "eea")?;
    let email = server.personal();
    server.put("eve", "contact.email", &email, "provide_offerings")?;
    let before = server.audit_count()?;
    // Marketing rests on consent in the EEA; marketo's key is bound to marketing.
    let p =
        server.get("/v1/subjects/eve/data/contact.email?purpose=marketing", Who::Marketer)?.problem(403, "denied")?;
    assert_eq!(p["reason"], "consent_missing", "{p}");
    assert_eq!(p["type"], "urn:custos:problem:denied");
    let after = server.audit_count()?;
    assert_eq!(after, before + 1, "the denial is audited");
    let entries = server.audit_since(before)?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let ev = &entries[0]["event"];
    assert_eq!(ev["action"], "access_denied", "{ev}");
    assert_eq!(ev["actor"], "marketo", "{ev}");
    assert_eq!(ev["reason"], "consent_missing", "{ev}");
    assert_eq!(ev["purpose"], "marketing", "{ev}");
    // With consent, the same key reads.
    server.send("PUT", "/v1/subjects/eve/consents/marketing", Who::Admin, None, &[])?.want(200)?;
    let v = server.get("/v1/subjects/eve/data/contact.email?purpose=marketing", Who::Marketer)?.want_json(200)?;
    assert_eq!(v["value"], email.as_str());
    assert_eq!(v["basis"], "consent");
    server.finish()
}

#[test]
fn a_service_key_reading_outside_its_purposes_is_forbidden() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.create_subject("sam", "california")?;
    let name = server.personal();
    let card = server.card();
    server.put("sam", "contact.name", &name, "provide_offerings")?;
    server.put("sam", "payment.card_number", &card, "provide_offerings")?;
    // In scope: paymenttech reads the name for provide_offerings.
    let v = server.get("/v1/subjects/sam/data/contact.name?purpose=provide_offerings", Who::Service)?.want_json(200)?;
    assert_eq!(v["value"], name.as_str());
    let before = server.audit_count()?;
    for path in [
        "/v1/subjects/sam/data/contact.name?purpose=marketing",
        "/v1/subjects/sam/data?purpose=marketing",
        "/v1/subjects/sam/data/contact.name/history?purpose=legal_obligations",
    ] {
        let resp = server.get(path, Who::Service)?.want(403)?;
        assert!(!resp.text.contains(&name), "{path}: {}", resp.text);
        let p = resp.json()?;
        assert!(p["code"] == "forbidden" || p["code"] == "denied", "{path}: {p}");
    }
    let resp = server.json(
        "POST",
        "/v1/detokenize",
        Who::Service,
        &json!({ "token": format!("tok_{}", "0".repeat(32)), "purpose": "marketing" }),
    )?;
    resp.want(403)?;
    // Nothing was written by the refusals other than (possibly) their audit entries.
    let after = server.audit_count()?;
    let entries = server.audit_since(before)?;
    assert!(entries.iter().all(|e| e["event"]["action"] == "access_denied"), "{entries:?}");
    assert!(after >= before);
    server.finish()
}

#[test]
fn a_service_key_reading_outside_its_purposes_is_audited() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.create_subject("sam", "california")?;
    let name = server.personal();
    server.put("sam", "contact.name", &name, "provide_offerings")?;
    let before = server.audit_count()?;
    let p = server.get("/v1/subjects/sam/data/contact.name?purpose=marketing", Who::Service)?.want(403)?.json()?;
    // The scope is decided by the decision engine: a denial with its reason, like any other.
    assert_eq!((p["code"].as_str(), p["reason"].as_str()), (Some("denied"), Some("purpose_not_bound")), "{p}");
    let entries = server.audit_since(before)?;
    assert_eq!(entries.len(), 1, "one access_denied entry: {entries:?}");
    let ev = &entries[0]["event"];
    assert_eq!(ev["action"], "access_denied", "{ev}");
    assert_eq!(ev["actor"], "paymenttech", "{ev}");
    assert_eq!(ev["purpose"], "marketing", "{ev}");
    assert!(ev["subject"].as_str().is_some_and(|s| !s.contains("sam")), "pseudonymous subject: {ev}");
    assert_eq!(ev["reason"], "purpose_not_bound", "{ev}");
    // The same for reading every value, the history and detokenization.
    for path in
        ["/v1/subjects/sam/data?purpose=marketing", "/v1/subjects/sam/data/contact.name/history?purpose=marketing"]
    {
        let before = server.audit_count()?;
        server.get(path, Who::Service)?.want(403)?;
        assert_eq!(server.audit_count()?, before + 1, "{path} is audited");
    }
    server.finish()
}

#[test]
fn bad_input_is_a_problem_and_writes_nothing() -> R<()> {
    let server = Server::start(&["--log-format", "json", "--max-body-bytes", "1024", "--max-ingest-bytes", "4096"])?;
    server.create_subject("bob", "eea")?;
    let email = server.personal();
    server.put("bob", "contact.email", &email, "provide_offerings")?;
    let card = server.card();
    server.put("bob", "payment.card_number", &card, "provide_offerings")?;
    let before = server.audit_count()?;
    let item = "/v1/subjects/bob/data/contact.email";
    let v = server.personal();
    let good = put_body(&v, "provided", "provide_offerings").to_string();

    // Malformed JSON, unknown fields, wrong types, empty or invalid bodies.
    let truncated = &good[..good.len() - 5];
    server.raw("PUT", item, Who::Admin, Some(JSON), truncated.as_bytes())?.problem(400, "invalid_request")?;
    let unknown = json!({ "value": v, "source": "provided", "purpose": "provide_offerings", "colour": "red" });
    let p = server.json("PUT", item, Who::Admin, &unknown)?.problem(400, "invalid_request")?;
    // The unknown field is not named (a key may be a personal value); the expected ones are.
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("colour") && detail.contains("`purpose`"), "{p}");
    let wrong_type = json!({ "value": 42, "source": "provided", "purpose": "provide_offerings" });
    server.json("PUT", item, Who::Admin, &wrong_type)?.problem(400, "invalid_request")?;
    let wrong_type = json!({ "value": v, "source": ["provided"], "purpose": "provide_offerings" });
    server.json("PUT", item, Who::Admin, &wrong_type)?.problem(400, "invalid_request")?;
    let value_in_wrong_field = json!({ "value": v, "source": "provided", "purpose": { "id": v } });
    server.json("PUT", item, Who::Admin, &value_in_wrong_field)?.problem(400, "invalid_request")?;
    let missing_field = json!({ "value": v, "source": "provided" });
    server.json("PUT", item, Who::Admin, &missing_field)?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"")?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"[1, 2]")?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"{\"value\": \"\xff\xfe\"}")?.problem(400, "invalid_request")?;
    // Oversized bodies (the server runs with --max-body-bytes 1024).
    let big = put_body(&format!("{v}{}", "x".repeat(2048)), "provided", "provide_offerings");
    server.json("PUT", item, Who::Admin, &big)?.problem(413, "payload_too_large")?;
    // Missing or wrong content type.
    server.raw("PUT", item, Who::Admin, None, good.as_bytes())?.problem(415, "unsupported_media_type")?;
    server.raw("PUT", item, Who::Admin, Some("text/plain"), good.as_bytes())?.problem(415, "unsupported_media_type")?;
    // Unknown categories, purposes and sources; invalid values.
    let p = server
        .json("PUT", "/v1/subjects/bob/data/contact.fax", Who::Admin, &put_body(&v, "provided", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    // The unknown id is not echoed; the known ones are listed.
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("contact.fax") && detail.contains("unknown category"), "{p}");
    server
        .json("PUT", item, Who::Admin, &put_body(&v, "provided", "world_domination"))?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", item, Who::Admin, &put_body(&v, "telepathy", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", item, Who::Admin, &put_body("", "provided", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    let bad_card = format!("{}{}", &card[..15], (card.as_bytes()[15] - b'0' + 1) % 10);
    server.remember(&bad_card);
    server
        .json(
            "PUT",
            "/v1/subjects/bob/data/payment.card_number",
            Who::Admin,
            &put_body(&bad_card, "provided", "provide_offerings"),
        )?
        .problem(400, "invalid_request")?;
    // Unknown or invalid subjects.
    server
        .json(
            "PUT",
            "/v1/subjects/nobody/data/contact.email",
            Who::Admin,
            &put_body(&v, "provided", "provide_offerings"),
        )?
        .problem(404, "not_found")?;
    let long_id = "a".repeat(200);
    server
        .json(
            "PUT",
            &format!("/v1/subjects/{long_id}/data/contact.email"),
            Who::Admin,
            &put_body(&v, "provided", "provide_offerings"),
        )?
        .problem(400, "invalid_request")?;
    server.get("/v1/subjects/nobody?purpose=provide_offerings", Who::Admin)?.problem(404, "not_found")?;
    // Subjects: unknown jurisdiction, unknown field, bad date, duplicate id.
    let subjects = "/v1/subjects";
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "carl", "jurisdiction": "atlantis" }))?
        .problem(400, "invalid_request")?;
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "carl", "jurisdiction": "eea", "email": v }))?
        .problem(400, "invalid_request")?;
    server
        .json(
            "POST",
            subjects,
            Who::Admin,
            &json!({ "id": "carl", "jurisdiction": "eea", "birth_date": "01/02/2003" }),
        )?
        .problem(400, "invalid_request")?;
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "bob", "jurisdiction": "eea" }))?
        .problem(409, "conflict")?;
    server
        .raw("POST", subjects, Who::Admin, None, b"{\"id\": \"carl\", \"jurisdiction\": \"eea\"}")?
        .problem(415, "unsupported_media_type")?;
    // Reads: missing, unknown or extra query parameters; unknown categories.
    server.get(item, Who::Admin)?.problem(400, "invalid_request")?;
    server.get(&format!("{item}?purpose=world_domination"), Who::Admin)?.problem(400, "invalid_request")?;
    server.get(&format!("{item}?purpose=provide_offerings&extra=1"), Who::Admin)?.problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/bob/data/contact.fax?purpose=provide_offerings", Who::Admin)?
        .problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/bob/data/contact.phone?purpose=provide_offerings", Who::Admin)?
        .problem(404, "not_found")?;
    server.get("/v1/audit?limit=0", Who::Auditor)?.problem(400, "invalid_request")?;
    server.get("/v1/audit?after=minus-one", Who::Auditor)?.problem(400, "invalid_request")?;
    // Choices: unknown purposes and subjects, bad optional bodies.
    server
        .send("PUT", "/v1/subjects/bob/consents/world_domination", Who::Admin, None, &[])?
        .problem(400, "invalid_request")?;
    server.send("PUT", "/v1/subjects/nobody/consents/marketing", Who::Admin, None, &[])?.problem(404, "not_found")?;
    server
        .raw("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, None, b"{}")?
        .problem(415, "unsupported_media_type")?;
    server
        .raw("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, Some(JSON), b"{\"by_guardian\": ")?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, &json!({ "guardian": v }))?
        .problem(400, "invalid_request")?;
    server
        .send("PUT", "/v1/subjects/bob/objections/world_domination", Who::Admin, None, &[])?
        .problem(400, "invalid_request")?;
    // Detokenization: malformed and unknown tokens, unknown purposes.
    let detok = "/v1/detokenize";
    server
        .json("POST", detok, Who::Admin, &json!({ "token": v, "purpose": "provide_offerings" }))?
        .problem(400, "invalid_request")?;
    let unknown_token = format!("tok_{}", "0".repeat(32));
    server
        .json("POST", detok, Who::Admin, &json!({ "token": unknown_token, "purpose": "provide_offerings" }))?
        .problem(404, "not_found")?;
    server
        .json("POST", detok, Who::Admin, &json!({ "token": unknown_token, "purpose": "world_domination" }))?
        .problem(400, "invalid_request")?;
    // Ingestion: wrong content type, oversized batch (--max-ingest-bytes 4096).
    let line = json!({ "subject": "bob", "category": "contact.email", "value": v, "source": "provided", "purpose": "provide_offerings" });
    server
        .raw("POST", "/v1/ingest", Who::Admin, Some(JSON), format!("{line}\n").as_bytes())?
        .problem(415, "unsupported_media_type")?;
    server
        .raw("POST", "/v1/ingest", Who::Admin, None, format!("{line}\n").as_bytes())?
        .problem(415, "unsupported_media_type")?;
    // Over the ingestion limit (--max-ingest-bytes 4096), sent with an Idempotency-Key.
    let batch = format!("{line}\n").repeat(4096 / line.to_string().len() + 2);
    let key = format!("big-{}", unique());
    let body = Some((Some(NDJSON), Body::from(batch.clone())));
    server
        .send("POST", "/v1/ingest", Who::Admin, body, &[("idempotency-key", &key)])?
        .problem(413, "payload_too_large")?;
    // No such route, no such method.
    server.get("/v1/nothing-here", Who::Admin)?.problem(404, "no_route")?;
    server.send("DELETE", "/v1/subjects", Who::Admin, None, &[])?.problem(405, "method_not_allowed")?;

    // Nothing was written: no audit entry, still one version.
    assert_eq!(server.audit_count()?, before, "bad input wrote audit entries: {:?}", server.audit_since(before)?);
    let h = server.get(&format!("{item}/history?purpose=provide_offerings"), Who::Admin)?.want_json(200)?;
    let versions = h["versions"].as_array().ok_or("no versions")?;
    assert_eq!(versions.len(), 1, "{h}");
    assert_eq!(versions[0]["value"], email.as_str());
    server.get("/v1/subjects/carl?purpose=provide_offerings", Who::Admin)?.problem(404, "not_found")?;
    let bob = server.get("/v1/subjects/bob?purpose=provide_offerings", Who::Admin)?.want_json(200)?;
    assert_eq!(bob["consents"], json!([]), "{bob}");
    assert_eq!(bob["objections"], json!([]), "{bob}");
    server.finish()
}

#[test]
fn a_retry_with_the_same_idempotency_key_returns_the_first_result_and_writes_nothing() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.create_subject("ida", "california")?;
    let path = "/v1/subjects/ida/data/contact.email";
    let value = server.personal();
    let body = put_body(&value, "provided", "provide_offerings").to_string();
    let key = format!("retry-{}", unique());
    let put = |body: &str, key: &str| {
        server.send(
            "PUT",
            path,
            Who::Admin,
            Some((Some(JSON), Body::from(body.to_string()))),
            &[("idempotency-key", key)],
        )
    };
    let first = put(&body, &key)?.want_json(200)?;
    assert_eq!(first["version"], 1, "{first}");
    let count = server.audit_count()?;
    let retry = put(&body, &key)?.want_json(200)?;
    assert_eq!(retry, first, "a retry returns the first result");
    assert_eq!(server.audit_count()?, count, "a retry writes no audit entry");
    // The same key with another request is a conflict and writes nothing.
    let other = put_body(&server.personal(), "provided", "provide_offerings").to_string();
    put(&other, &key)?.problem(409, "conflict")?;
    assert_eq!(server.audit_count()?, count, "a conflicting reuse writes nothing");
    let h = server.get(&format!("{path}/history?purpose=provide_offerings"), Who::Admin)?.want_json(200)?;
    assert_eq!(h["versions"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h["versions"][0]["value"], value.as_str());
    // A new key is a new write.
    let second = put(&other, &format!("retry-{}", unique()))?.want_json(200)?;
    assert_eq!(second["version"], 2, "{second}");
    server.finish()
}

#[test]
fn a_path_segment_that_is_not_utf8_is_a_problem() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.get("/v1/subjects/%FF%FE", Who::Admin)?.problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/%FF/data/contact.email?purpose=provide_offerings", Who::Admin)?
        .problem(400, "invalid_request")?;
    server.send("PUT", "/v1/subjects/bob/consents/%C3%28", Who::Admin, None, &[])?.problem(400, "invalid_request")?;
    server.finish()
}

#[test]
fn oversized_raw_bodies_are_problems() -> R<()> {
    let server = Server::start(&["--log-format", "json", "--max-body-bytes", "1024", "--max-ingest-bytes", "4096"])?;
    server.create_subject("olga", "eea")?;
    let before = server.audit_count()?;
    let v = server.personal();
    let line = json!({ "subject": "olga", "category": "contact.email", "value": v, "source": "provided",
        "purpose": "provide_offerings" });
    let batch = format!("{line}\n").repeat(4096 / line.to_string().len() + 2);
    server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), batch.as_bytes())?.problem(413, "payload_too_large")?;
    let consent = json!({ "by_guardian": "x".repeat(2048) });
    server
        .json("PUT", "/v1/subjects/olga/consents/marketing", Who::Admin, &consent)?
        .problem(413, "payload_too_large")?;
    server
        .json("DELETE", "/v1/subjects/olga/consents/marketing", Who::Admin, &consent)?
        .problem(413, "payload_too_large")?;
    assert_eq!(server.audit_count()?, before, "oversized bodies wrote audit entries");
    server.finish()
}

#[test]
fn batch_ingestion_reports_bad_lines_and_writes_the_good_ones() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    server.create_subject("ivy", "california")?;
    server.create_subject("jon", "eea")?;
    let (e1, n2, n3, bad) = (server.personal(), server.personal(), server.personal(), server.personal());
    let bad_card = {
        let c = server.card();
        let wrong = format!("{}{}", &c[..15], (c.as_bytes()[15] - b'0' + 1) % 10);
        server.remember(&wrong);
        wrong
    };
    let line = |subject: &str, category: &str, value: &str, purpose: &str| {
        json!({ "subject": subject, "category": category, "value": value, "source": "provided", "purpose": purpose })
            .to_string()
    };
    let lines = [
        line("ivy", "contact.email", &e1, "provide_offerings"), // 1 ok
        format!("{{\"subject\": \"ivy\", \"category\": \"contact.phone\", \"value\": \"{bad}\""), // 2 malformed
        json!({ "subject": "ivy", "category": "contact.phone", "value": bad, "source": "provided",
            "purpose": "provide_offerings", "colour": "red" })
        .to_string(), // 3 unknown field
        String::new(),                                          // 4 blank: skipped
        line("ivy", "contact.fax", &bad, "provide_offerings"),  // 5 unknown category
        line("nobody", "contact.email", &bad, "provide_offerings"), // 6 unknown subject
        line("jon", "contact.name", &n2, "provide_offerings"),  // 7 ok
        line("jon", "contact.phone", &bad, "world_domination"), // 8 unknown purpose
        line("ivy", "contact.phone", "", "provide_offerings"),  // 9 empty value
        format!("{}\r", line("ivy", "contact.name", &n3, "provide_offerings")), // 10 ok (CRLF)
        line("ivy", "payment.card_number", &bad_card, "provide_offerings"), // 11 fails Luhn
        json!({ "subject": "ivy", "category": "contact.phone", "value": 7, "source": "provided",
            "purpose": "provide_offerings" })
        .to_string(), // 12 wrong type
    ];
    let body = lines.join("\n");
    let before = server.audit_count()?;
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), body.as_bytes())?.want_json(200)?;
    assert_eq!(summary["lines"], 11, "{summary}");
    assert_eq!(summary["written"], 3, "{summary}");
    assert_eq!(summary["rejected"], 8, "{summary}");
    let results = summary["results"].as_array().ok_or("no results")?;
    let by_line: Vec<(u64, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or_default(),
                r["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        by_line,
        vec![
            (1, "ok", ""),
            (2, "error", "invalid_request"),
            (3, "error", "invalid_request"),
            (5, "error", "invalid_request"),
            (6, "error", "not_found"),
            (7, "ok", ""),
            (8, "error", "invalid_request"),
            (9, "error", "invalid_request"),
            (10, "ok", ""),
            (11, "error", "invalid_request"),
            (12, "error", "invalid_request"),
        ],
        "{summary}"
    );
    for r in results {
        if r["status"] == "ok" {
            assert_eq!(r["version"], 1, "{r}");
        } else {
            assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "a bad line says why: {r}");
        }
    }
    let detail = results[2]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("unknown field") && !detail.contains("colour"), "{summary}");
    for v in server.stored() {
        assert!(!summary.to_string().contains(&v), "the summary echoes a value: {summary}");
    }
    // The good lines are readable; the bad ones wrote nothing.
    let read = |id: &str, category: &str| {
        server.get(&format!("/v1/subjects/{id}/data/{category}?purpose=provide_offerings"), Who::Admin)
    };
    assert_eq!(read("ivy", "contact.email")?.want_json(200)?["value"], e1.as_str());
    assert_eq!(read("jon", "contact.name")?.want_json(200)?["value"], n2.as_str());
    assert_eq!(read("ivy", "contact.name")?.want_json(200)?["value"], n3.as_str());
    read("ivy", "contact.phone")?.problem(404, "not_found")?;
    read("jon", "contact.phone")?.problem(404, "not_found")?;
    read("ivy", "payment.card_number")?.problem(404, "not_found")?;
    let entries = server.audit_since(before)?;
    let actions: BTreeSet<&str> = entries.iter().filter_map(|e| e["event"]["action"].as_str()).collect();
    assert!(actions.contains("data_written"), "{entries:?}");
    let written: Vec<&Value> = entries.iter().filter(|e| e["event"]["action"] == "data_written").collect();
    let categories: BTreeSet<&str> = written
        .iter()
        .flat_map(|e| e["event"]["categories"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(categories, BTreeSet::from(["contact.email", "contact.name"]), "{entries:?}");

    // A batch of only bad lines writes nothing at all.
    let count = server.audit_count()?;
    let only_bad = [lines[1].clone(), lines[4].clone(), lines[7].clone()].join("\n");
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), only_bad.as_bytes())?.want_json(200)?;
    assert_eq!((summary["lines"].as_u64(), summary["written"].as_u64()), (Some(3), Some(0)), "{summary}");
    assert_eq!(server.audit_count()?, count, "a batch of bad lines wrote audit entries");
    // An empty batch is fine.
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), b"\n\n")?.want_json(200)?;
    assert_eq!(summary["lines"], 0, "{summary}");
    server.finish()
}

/// A request body that sends its first part, then waits for a go-ahead.
struct Gated {
    data: Vec<u8>,
    pos: usize,
    split: usize,
    started: Option<mpsc::Sender<()>>,
    go: mpsc::Receiver<()>,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.split
            && let Some(started) = self.started.take()
        {
            let _ = started.send(());
            let _ = self.go.recv_timeout(Duration::from_secs(20));
        }
        let end = if self.pos < self.split { self.split } else { self.data.len() };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_and_exits_0() -> R<()> {
    let server = Server::start(&["--log-format", "text"])?;
    server.create_subject("tia", "california")?;
    let values: Vec<String> = (0..50).map(|_| server.personal()).collect();
    let body: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let category = ["contact.email", "contact.name", "contact.address", "contact.phone"][i % 4];
            format!("{}\n", json!({ "subject": "tia", "category": category, "value": v, "source": "provided", "purpose": "provide_offerings" }))
        })
        .collect();
    let data = body.into_bytes();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let len = data.len() as u64;
    let gated = Gated { split: data.len() / 2, data, pos: 0, started: Some(started_tx), go: go_rx };
    let summary = std::thread::scope(|scope| {
        let srv = &server;
        let in_flight = scope.spawn(move || {
            srv.send("POST", "/v1/ingest", Who::Admin, Some((Some(NDJSON), Body::sized(gated, len))), &[])
        });
        // Half the body is on its way: the request is in flight.
        let waited = started_rx.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(500));
        let term = server.terminate();
        std::thread::sleep(Duration::from_millis(500));
        let _ = go_tx.send(());
        let resp = in_flight.join().map_err(|_| "the in-flight request panicked".to_string())?;
        waited.map_err(|e| format!("the request body was never read: {e}"))?;
        term?;
        resp?.want_json(200)
    })?;
    assert_eq!(summary["written"], 50, "{summary}");
    // The server stopped with exit code 0 after the request completed.
    let log = {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut server = server;
        let mut child = server.child.take().ok_or("no child")?;
        let status = loop {
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) => break status,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                None => return Err("the server did not stop within 20 s of SIGTERM".into()),
            }
        };
        let log = server.log_text();
        assert_eq!(status.code(), Some(0), "exit status {status}: {log}");
        server.check_log(&log)?;
        log
    };
    assert!(log.contains("shutdown signal received"), "{log}");
    let signal = log.find("shutdown signal received").unwrap_or(0);
    let served = log.rfind("/v1/ingest").unwrap_or(0);
    assert!(served > signal, "the in-flight request was served after the signal: {log}");
    Ok(())
}

#[test]
fn openapi_lists_every_route_of_the_router() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    let resp = server.get("/openapi.json", Who::Anonymous)?.want(200)?;
    assert!(resp.content_type.starts_with("application/json"), "{}", resp.content_type);
    let doc = resp.json()?;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let routes = router_routes()?;
    assert!(routes.len() >= 20, "the scan of lib.rs found only {routes:?}");
    assert!(routes.contains(&("PUT".into(), "/v1/subjects/{id}/data/{category}".into())), "{routes:?}");
    assert!(routes.contains(&("DELETE".into(), "/v1/subjects/{id}/consents/{purpose}".into())), "{routes:?}");
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if paths.get(path).and_then(|p| p.get(method.to_lowercase())).is_none() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
    // And the document names no route the router lacks.
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    server.finish()
}

#[test]
fn health_readiness_metrics_and_notice() -> R<()> {
    let server = Server::start(&["--log-format", "json"])?;
    assert_eq!(server.get("/healthz", Who::Anonymous)?.want_json(200)?["status"], "ok");
    assert_eq!(server.get("/readyz", Who::Anonymous)?.want_json(200)?["status"], "ready");
    let notice = server.get("/notice", Who::Anonymous)?.want(200)?;
    assert!(notice.content_type.starts_with("text/html"), "{}", notice.content_type);
    let lower = notice.text.to_lowercase();
    assert!(
        lower.contains("<html") || lower.contains("<!doctype html"),
        "{}",
        &notice.text[..200.min(notice.text.len())]
    );
    assert!(notice.text.contains("Marketing"), "the notice names the purposes");
    let policy = server.get("/v1/policy", Who::Auditor)?.want_json(200)?;
    assert!(policy["purposes"].as_array().is_some_and(|p| p.iter().any(|p| p["id"] == "marketing")), "{policy}");
    // Some decisions to count: one allowed read, one denial.
    server.create_subject("mx7q", "eea")?;
    let email = server.personal();
    server.put("mx7q", "contact.email", &email, "provide_offerings")?;
    server.get("/v1/subjects/mx7q/data/contact.email?purpose=provide_offerings", Who::Admin)?.want(200)?;
    server.get("/v1/subjects/mx7q/data/contact.email?purpose=marketing", Who::Admin)?.problem(403, "denied")?;
    for who in [Who::Admin, Who::Auditor] {
        let m = server.get("/metrics", who)?.want(200)?;
        assert!(m.content_type.starts_with("text/plain"), "{}", m.content_type);
        for needle in [
            "# TYPE custos_http_requests_total counter",
            "custos_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
            "route=\"/v1/subjects/{id}/data/{category}\",status=\"403\"",
            "# TYPE custos_decisions_total counter",
            "custos_decisions_total{outcome=\"allow\"} 1",
            "custos_decisions_total{outcome=\"consent_missing\"} 1",
        ] {
            assert!(m.text.contains(needle), "metrics lack {needle}:\n{}", m.text);
        }
        assert!(!m.text.contains("mx7q"), "metrics name a subject id:\n{}", m.text);
    }
    server.finish()
}
