//! End-to-end tests of the HTTP API's surface: every route for every role,
//! the OpenAPI document against the router, denials of service keys, and
//! health, readiness, metrics and the notice. The real `custos serve` binary
//! on port 0, a fresh data directory per test, a real HTTP client (the
//! harness and its suite-wide checks are in `support/mod.rs`); on PostgreSQL
//! with `CUSTOS_TEST_BACKEND=postgres`.
//!
//! Requests with bad input, limits, retries and batches are in `http_input.rs`.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::json;
use support::{JSON, NDJSON, R, Resp, Server, Who, put_body};

const ROLES: [Who; 5] = [Who::Admin, Who::Service, Who::Auditor, Who::Anonymous, Who::BadKey];

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
    let server = Server::start(&[])?;
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
                None => server.request(method, path, who, None, &[])?,
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
            // In the EEA, whose notice grants objection and restriction (used below).
            Some((JSON, json!({ "id": id, "jurisdiction": "eea" }).to_string())),
            ADMIN_ONLY,
        )?;
        if created.status != 201 {
            server.create_subject(&id, "eea")?;
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
        // In California, whose law grants the opt-out and the sensitive limit.
        let ca = format!("{id}-ca");
        server.create_subject(&ca, "california")?;
        for choice in ["opt-out", "sensitive-limit"] {
            for method in ["PUT", "DELETE"] {
                let path = format!("/v1/subjects/{ca}/{choice}");
                check(method, &format!("/v1/subjects/{{id}}/{choice}"), &path, None, ADMIN_ONLY)?;
            }
        }
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
        // Rights requests: recorded by admin and service keys, read by admin and
        // auditor keys, moved by admin keys (a service key only attests a session).
        let complaint = json!({ "subject": id, "kind": "complaint" }).to_string();
        let submitters = Expect { admin: 201, service: 201, auditor: 403, nobody: 401 };
        check("POST", "/v1/requests", "/v1/requests", Some((JSON, complaint.clone())), submitters)?;
        let new_request = || -> R<String> {
            let r = server.json("POST", "/v1/requests", Who::Admin, &json!({ "subject": id, "kind": "complaint" }))?;
            let r = r.want_json(201)?;
            r["id"].as_str().map(str::to_string).ok_or_else(|| format!("no request id in {r}"))
        };
        let rq = server.get(&format!("/v1/requests?subject={id}&limit=1"), Who::Admin)?.want_json(200)?["requests"][0]
            ["id"]
            .as_str()
            .map(str::to_string);
        let rq = match rq {
            Some(rq) => rq,
            None => new_request()?,
        };
        check("GET", "/v1/requests", "/v1/requests", None, OVERSIGHT)?;
        check("GET", "/v1/requests/{request_id}", &format!("/v1/requests/{rq}"), None, OVERSIGHT)?;
        let session = json!({ "method": "session" }).to_string();
        check(
            "POST",
            "/v1/requests/{request_id}/verify",
            &format!("/v1/requests/{rq}/verify"),
            Some((JSON, session)),
            // Each caller's own request (a service key attests only those;
            // `http_requests` checks it is refused another's).
            WRITERS,
        )?;
        let reason = json!({ "reason": "The authority's address is being confirmed" }).to_string();
        check(
            "POST",
            "/v1/requests/{request_id}/extend",
            &format!("/v1/requests/{rq}/extend"),
            Some((JSON, reason)),
            ADMIN_ONLY,
        )?;
        check("POST", "/v1/requests/{request_id}/execute", &format!("/v1/requests/{rq}/execute"), None, ADMIN_ONLY)?;
        check("GET", "/v1/requests/{request_id}/response", &format!("/v1/requests/{rq}/response"), None, ADMIN_ONLY)?;
        check("GET", "/v1/reports/request-metrics", "/v1/reports/request-metrics?year=2026", None, OVERSIGHT)?;
        let rq = new_request()?;
        check("POST", "/v1/requests/{request_id}/withdraw", &format!("/v1/requests/{rq}/withdraw"), None, ADMIN_ONLY)?;
        let rq = new_request()?;
        let denial = json!({ "code": "excessive", "text": "Asked every day" }).to_string();
        check(
            "POST",
            "/v1/requests/{request_id}/deny",
            &format!("/v1/requests/{rq}/deny"),
            Some((JSON, denial)),
            ADMIN_ONLY,
        )?;
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
        server.request("GET", "/v1/policy", Who::Anonymous, None, &[("authorization", "Basic YWRtaW46YWRtaW4=")])?;
    resp.problem(401, "unauthorized")?;
    server.finish()
}

#[test]
fn a_policy_denial_of_a_service_key_is_a_problem_with_a_reason_and_audited() -> R<()> {
    let server = Server::start(&[])?;
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
    server.request("PUT", "/v1/subjects/eve/consents/marketing", Who::Admin, None, &[])?.want(200)?;
    let v = server.get("/v1/subjects/eve/data/contact.email?purpose=marketing", Who::Marketer)?.want_json(200)?;
    assert_eq!(v["value"], email.as_str());
    assert_eq!(v["basis"], "consent");
    server.finish()
}

#[test]
fn a_service_key_reading_outside_its_purposes_is_forbidden() -> R<()> {
    let server = Server::start(&[])?;
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
    let server = Server::start(&[])?;
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
fn openapi_lists_every_route_of_the_router() -> R<()> {
    let server = Server::start(&[])?;
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
    let server = Server::start(&[])?;
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
