//! `Idempotency-Key` on writes: a retry with the same key returns the first
//! result and writes nothing new.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use common::{Fixture, Reply, fixture};
use custos_server::auth::Role;
use custos_server::idempotency;
use tower::ServiceExt as _;

const ALICE: &str = r#"{"id":"alice","jurisdiction":"eea"}"#;
const NAME: &str = r#"{"value":"Alice Liddell","source":"provided","purpose":"provide_offerings"}"#;

async fn with_alice() -> Fixture {
    let f = fixture();
    let r = f.send(Method::POST, "/v1/subjects", Some(ALICE), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    f
}

/// Sends the same request twice with one key; the second must be a replay of
/// the first that appends nothing to the audit log.
async fn assert_retry_replays(f: &Fixture, method: Method, path: &str, body: Option<&str>, key: &str) -> Reply {
    let first = f.send(method.clone(), path, body, Some(key)).await;
    assert!(!first.replayed(), "the first request runs");
    let audit = f.audit_len();
    let retry = f.send(method.clone(), path, body, Some(key)).await;
    assert!(retry.replayed(), "{method} {path}: the retry is a replay");
    assert_eq!(retry.status, first.status, "{method} {path}");
    assert_eq!(retry.body, first.body, "{method} {path}");
    assert_eq!(retry.header("content-type"), first.header("content-type"), "{method} {path}");
    assert_eq!(f.audit_len(), audit, "{method} {path}: a replay writes nothing");
    first
}

#[tokio::test]
async fn a_retried_write_returns_the_first_result_and_writes_nothing() {
    let f = fixture();
    let created = assert_retry_replays(&f, Method::POST, "/v1/subjects", Some(ALICE), "create-alice").await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("content-type"), Some("application/json"));

    let first =
        assert_retry_replays(&f, Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), "put-1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json()["version"], 1);

    // Without a key, the same write is a new version.
    let again = f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), None).await;
    assert_eq!(again.json()["version"], 2);
    assert!(!again.replayed());
    let history =
        f.send(Method::GET, "/v1/subjects/alice/data/contact.name/history?purpose=provide_offerings", None, None).await;
    assert_eq!(history.json()["versions"].as_array().map(Vec::len), Some(2), "{}", history.text());
}

#[tokio::test]
async fn every_write_route_honours_the_key() {
    let f = with_alice().await;
    let ok = |r: &Reply, what: &str| assert!(r.status.is_success(), "{what}: {} {}", r.status, r.text());
    let r = assert_retry_replays(&f, Method::POST, "/v1/subjects", Some(r#"{"id":"bob","jurisdiction":"eea"}"#), "w1")
        .await;
    ok(&r, "create");
    let r = assert_retry_replays(&f, Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), "w2").await;
    ok(&r, "put");
    let r = assert_retry_replays(&f, Method::PUT, "/v1/subjects/alice/consents/marketing", None, "w3").await;
    ok(&r, "consent");
    let r = assert_retry_replays(&f, Method::DELETE, "/v1/subjects/alice/consents/marketing", None, "w4").await;
    ok(&r, "withdraw");
    let r = assert_retry_replays(&f, Method::PUT, "/v1/subjects/alice/objections/marketing", None, "w5").await;
    ok(&r, "object");
    let r = assert_retry_replays(&f, Method::PUT, "/v1/subjects/alice/restriction", None, "w6").await;
    ok(&r, "restrict");
    let r = assert_retry_replays(&f, Method::DELETE, "/v1/subjects/alice/restriction", None, "w7").await;
    ok(&r, "lift");

    let batch = concat!(
        r#"{"subject":"bob","category":"contact.name","value":"Bob","source":"provided","purpose":"provide_offerings"}"#,
        "\n",
        r#"{"subject":"bob","category":"no.such","value":"x","source":"provided","purpose":"provide_offerings"}"#,
        "\n"
    );
    let first = f.ingest(batch, Some("w8")).await;
    ok(&first, "ingest");
    assert_eq!(first.json()["written"], 1, "{}", first.text());
    let audit = f.audit_len();
    let retry = f.ingest(batch, Some("w8")).await;
    assert!(retry.replayed());
    assert_eq!((retry.status, &retry.body), (first.status, &first.body));
    assert_eq!(f.audit_len(), audit);

    let r = assert_retry_replays(&f, Method::POST, "/v1/subjects/bob/erasure", None, "w9").await;
    ok(&r, "erase");
    assert_eq!(r.json()["items_destroyed"], 1);
}

#[tokio::test]
async fn a_key_reused_with_a_different_request_is_a_conflict() {
    let f = with_alice().await;
    let path = "/v1/subjects/alice/data/contact.name";
    let first = f.send(Method::PUT, path, Some(NAME), Some("k")).await;
    assert_eq!(first.status, StatusCode::OK);
    let audit = f.audit_len();
    let other_body = NAME.replace("Alice Liddell", "Alice Hargreaves");
    for (method, path, body) in [
        (Method::PUT, path, Some(other_body.as_str())),
        (Method::PUT, "/v1/subjects/alice/data/contact.address", Some(NAME)),
        (Method::POST, "/v1/subjects", Some(r#"{"id":"carol","jurisdiction":"eea"}"#)),
    ] {
        let r = f.send(method.clone(), path, body, Some("k")).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{method} {path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["code"], "conflict");
        assert_eq!(r.json()["detail"], idempotency::REUSED);
        assert!(!r.replayed());
    }
    assert_eq!(f.audit_len(), audit, "a conflict writes nothing");
    let current =
        f.send(Method::GET, "/v1/subjects/alice/data/contact.name?purpose=provide_offerings", None, None).await;
    assert_eq!(current.json()["value"], "Alice Liddell");
}

#[tokio::test]
async fn keys_are_scoped_by_api_key() {
    let f = with_alice().await;
    let other = f.new_admin_key();
    let path = "/v1/subjects/alice/data/contact.name";
    let mine = f.send(Method::PUT, path, Some(NAME), Some("shared")).await;
    let theirs = f.send_as(&other, Method::PUT, path, Some(NAME), Some("shared")).await;
    assert!(!theirs.replayed(), "another key's record is not replayed");
    assert_eq!((mine.json()["version"].clone(), theirs.json()["version"].clone()), (1.into(), 2.into()));
    // Recorded under `{key_id}:{client_key}`.
    let key_id = f.admin.split('_').nth(1).expect("cst_<id>_<secret>");
    let recorded = f
        .with_vault(|v| {
            v.store().idempotent_response(&format!("{key_id}:shared"), custos_core::time::Timestamp(i64::MIN))
        })
        .expect("lookup");
    assert_eq!(recorded.map(|r| r.status), Some(200));
}

#[tokio::test]
async fn invalid_keys_are_refused_before_anything_is_written() {
    let f = with_alice().await;
    let audit = f.audit_len();
    let long = "k".repeat(256);
    for key in ["", "two words", long.as_str()] {
        let r = f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), Some(key)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{key:?}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid_request");
        assert!(r.json()["detail"].as_str().is_some_and(|d| d.contains("Idempotency-Key")));
    }
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/v1/subjects/alice/data/contact.name")
        .header("authorization", format!("Bearer {}", f.admin))
        .header("content-type", "application/json")
        .header("idempotency-key", axum::http::HeaderValue::from_bytes(b"cl\xe9").expect("obs-text"))
        .body(Body::from(NAME))
        .expect("a request");
    assert_eq!(f.call(req).await.status, StatusCode::BAD_REQUEST);
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/v1/subjects/alice/data/contact.name")
        .header("authorization", format!("Bearer {}", f.admin))
        .header("content-type", "application/json")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(Body::from(NAME))
        .expect("a request");
    assert_eq!(f.call(req).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.audit_len(), audit);
    // The longest key is fine.
    let r = f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), Some(&"k".repeat(255))).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn client_errors_are_recorded_and_replayed() {
    let f = fixture();
    let path = "/v1/subjects/alice/data/contact.name";
    let first = f.send(Method::PUT, path, Some(NAME), Some("early")).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND, "{}", first.text());
    f.send(Method::POST, "/v1/subjects", Some(ALICE), None).await;
    // The subject exists now, but the key's outcome was decided.
    let retry = f.send(Method::PUT, path, Some(NAME), Some("early")).await;
    assert!(retry.replayed());
    assert_eq!(retry.status, StatusCode::NOT_FOUND);
    assert_eq!(retry.header("content-type"), Some("application/problem+json"));
    assert_eq!(retry.body, first.body);

    // A role that may not write: a 403, recorded too.
    let auditor = f.new_key(Role::Auditor);
    let denied = f.send_as(&auditor, Method::PUT, path, Some(NAME), Some("x")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(f.send_as(&auditor, Method::PUT, path, Some(NAME), Some("x")).await.replayed());
}

#[tokio::test]
async fn unauthenticated_and_oversized_requests_are_not_recorded() {
    let f = with_alice().await;
    let path = "/v1/subjects/alice/data/contact.name";
    let r = f.send_as("cst_00000000_nope", Method::PUT, path, Some(NAME), Some("k")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let big = format!(r#"{{"value":"{}","source":"provided","purpose":"provide_offerings"}}"#, "x".repeat(300 * 1024));
    let r = f.send(Method::PUT, path, Some(&big), Some("k")).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.json()["code"], "payload_too_large");
    // Neither left a record: the key still runs a request.
    let r = f.send(Method::PUT, path, Some(NAME), Some("k")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.replayed());
}

#[tokio::test]
async fn reads_are_never_recorded() {
    let f = with_alice().await;
    for _ in 0..2 {
        let r = f.send(Method::GET, "/v1/subjects/alice?purpose=provide_offerings", None, Some("read")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.replayed());
    }
    // The key was not used up by the reads.
    let r = f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), Some("read")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.replayed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_write_once() {
    let f = Arc::new(with_alice().await);
    let audit = f.audit_len();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), Some("race")).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("a reply"));
    }
    assert!(replies.iter().all(|r| r.status == StatusCode::OK && r.json()["version"] == 1));
    assert_eq!(replies.iter().filter(|r| !r.replayed()).count(), 1, "exactly one request ran");
    let after_one = f.audit_len() - audit;
    f.send(Method::PUT, "/v1/subjects/alice/data/contact.name", Some(NAME), None).await;
    assert_eq!(f.audit_len() - audit, 2 * after_one, "one write's worth of audit entries, not eight");
    assert!(f.state.idempotency.is_empty(), "every key was released");
}

/// The layer over a handler that counts its runs and fails the first time.
fn counting_app(f: &Fixture, runs: Arc<AtomicUsize>, delay: Duration) -> Router {
    let handler = move || {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            if n == 0 { (StatusCode::SERVICE_UNAVAILABLE, "{}") } else { (StatusCode::OK, "{\"n\":1}") }
        }
    };
    Router::new()
        .route("/w", post(handler))
        .route_layer(from_fn_with_state(f.state.clone(), idempotency::middleware))
        .with_state(f.state.clone())
}

fn post_w(f: &Fixture, key: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/w")
        .header("authorization", format!("Bearer {}", f.admin))
        .header("idempotency-key", key)
        .body(Body::empty())
        .expect("a request")
}

#[tokio::test]
async fn server_errors_are_not_recorded_so_a_retry_runs_again() {
    let f = fixture();
    let runs = Arc::new(AtomicUsize::new(0));
    let app = counting_app(&f, runs.clone(), Duration::ZERO);
    let first = Reply::read(app.clone().oneshot(post_w(&f, "k")).await.expect("infallible")).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    let second = Reply::read(app.clone().oneshot(post_w(&f, "k")).await.expect("infallible")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(!second.replayed());
    let third = Reply::read(app.oneshot(post_w(&f, "k")).await.expect("infallible")).await;
    assert!(third.replayed());
    assert_eq!(third.body, second.body);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_makes_its_retries_wait_and_replay() {
    let f = fixture();
    let runs = Arc::new(AtomicUsize::new(1)); // no failure first
    let app = counting_app(&f, runs.clone(), Duration::from_millis(200));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            let req = post_w(&f, "slow");
            tokio::spawn(async move { Reply::read(app.oneshot(req).await.expect("infallible")).await })
        })
        .collect();
    let mut replayed = 0;
    for t in tasks {
        let r = t.await.expect("a reply");
        assert_eq!(r.status, StatusCode::OK);
        replayed += usize::from(r.replayed());
    }
    assert_eq!(replayed, 3);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_does_not_release_the_key_early() {
    let f = fixture();
    let runs = Arc::new(AtomicUsize::new(1));
    let app = counting_app(&f, runs.clone(), Duration::from_millis(300));
    // The first caller gives up once its request has reached the handler; the request goes on.
    let first = tokio::spawn(app.clone().oneshot(post_w(&f, "k")));
    while runs.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()), "the caller hung up mid-request");
    let retry = Reply::read(app.oneshot(post_w(&f, "k")).await.expect("infallible")).await;
    assert!(retry.replayed(), "the retry waited for the abandoned request and replayed it");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the handler ran once");
}
