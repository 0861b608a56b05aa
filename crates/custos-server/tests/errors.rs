//! Errors and edges of the HTTP layer: problem details never echo the input,
//! the OpenAPI document says what the server sends, the `Bearer` scheme is
//! matched as RFC 9110 says, and no client can add metric series. On SQLite,
//! or on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Fixture, fixture};
use custos_server::ops::ApiDoc;
use utoipa::OpenApi as _;

/// Field names and fixed words of the request types: they are in the bodies
/// and may be in the details (a detail names the field that is wrong).
const SCHEMA_WORDS: &[&str] = &[
    "value",
    "source",
    "purpose",
    "subject",
    "category",
    "by_guardian",
    "token",
    "jurisdiction",
    "provided",
    "provide_offerings",
    "contact.email",
    "contact.name",
    "marketing",
    "eea",
    "tok_",
];

/// Every 4-byte window of `body` that is not inside a schema word and shows in `response`.
fn echoed(body: &[u8], response: &str) -> Vec<String> {
    let mut masked = body.to_vec();
    for word in SCHEMA_WORDS {
        let w = word.as_bytes();
        let mut i = 0;
        while i + w.len() <= masked.len() {
            if &masked[i..i + w.len()] == w {
                masked[i..i + w.len()].fill(0);
                i += w.len();
            } else {
                i += 1;
            }
        }
    }
    let mut found = Vec::new();
    for window in masked.windows(4) {
        if window.contains(&0) {
            continue;
        }
        // JSON punctuation is in every body and every problem: only runs of the
        // input's own text count.
        if let Ok(text) = std::str::from_utf8(window)
            && !text.bytes().any(|b| b" \"\\:,{}[]".contains(&b))
            && response.contains(text)
        {
            found.push(text.to_string());
        }
    }
    found.sort();
    found.dedup();
    found
}

async fn send(f: &Fixture, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> common::Reply {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", f.admin))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request");
    f.call(req).await
}

#[tokio::test]
async fn regression_errors_do_not_echo_input() {
    let f = fixture();
    let created = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"echo-1","jurisdiction":"eea"}"#), None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let item = "/v1/subjects/echo-1/data/contact.email";
    // Distinctive inputs in every place serde and the vault could quote them.
    let bodies: Vec<(Method, &str, &str, String)> = vec![
        // Numbers where strings belong, in every field.
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":4111111111111111,"source":"provided","purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":98765432,"purpose":"provide_offerings"}"#.into(),
        ),
        (Method::PUT, item, "application/json", r#"{"value":"x","source":"provided","purpose":-31415926.5}"#.into()),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":true,"source":"provided","purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":["zqxj-array"],"source":"provided","purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":{"zqxjkey":"zqxjval"},"source":"provided","purpose":"provide_offerings"}"#.into(),
        ),
        // Unknown fields, named like values.
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":"provide_offerings","alice@example.org":1}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":"provide_offerings","colourful":"red"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":"provide_offerings","a\"b\"zqxjtqil":1}"#.into(),
        ),
        // Escaped quotes inside strings, in a field of the wrong type.
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":{"k":"ab\"cd\"zqxjsecret\"tqilz"},"purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":["he said \"zqxjhidden\" then"]}"#.into(),
        ),
        // Unknown ids in the body (source, purpose).
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"zqxj-source-77","purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":"bob@example.org"}"#.into(),
        ),
        // Malformed JSON around values.
        (Method::PUT, item, "application/json", r#"{"value":"zqxjtruncated-value"#.into()),
        (Method::PUT, item, "application/json", r#"{"value": zqxjbare, "source":"provided"}"#.into()),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","source":"provided","purpose":"provide_offerings"} zqxjtrailing"#.into(),
        ),
        (
            Method::PUT,
            item,
            "application/json",
            r#"{"value":"x","value":"zqxjdup","source":"provided","purpose":"provide_offerings"}"#.into(),
        ),
        // The optional consent body, and ingestion lines.
        (
            Method::PUT,
            "/v1/subjects/echo-1/consents/marketing",
            "application/json",
            r#"{"by_guardian":5550123456}"#.into(),
        ),
        (Method::PUT, "/v1/subjects/echo-1/consents/marketing", "application/json", r#"{"zqxjwarden":"x"}"#.into()),
        (
            Method::POST,
            "/v1/detokenize",
            "application/json",
            r#"{"token":31415926535,"purpose":"provide_offerings"}"#.into(),
        ),
        (
            Method::POST,
            "/v1/detokenize",
            "application/json",
            r#"{"token":"tok_zqxjnothex","purpose":"provide_offerings"}"#.into(),
        ),
        (Method::POST, "/v1/subjects", "application/json", r#"{"id":"echo-2","jurisdiction":"zqxjland"}"#.into()),
    ];
    for (method, path, ct, body) in bodies {
        let r = send(&f, method.clone(), path, ct, body.clone().into_bytes()).await;
        assert!(r.status.is_client_error(), "{method} {path} {body}: {} {}", r.status, r.text());
        let leaked = echoed(body.as_bytes(), &r.text());
        assert!(leaked.is_empty(), "{method} {path} {body}: the problem echoes {leaked:?}: {}", r.text());
    }
    // Ingestion: each line's detail is built the same way.
    let lines = [
        r#"{"subject":"echo-1","category":"contact.email","value":4111111111111111,"source":"provided","purpose":"provide_offerings"}"#,
        r#"{"subject":"echo-1","category":"contact.email","value":"x","source":"provided","purpose":"provide_offerings","zqxjfyeld":1}"#,
        r#"{"subject":"echo-1","category":"zqxj.category","value":"x","source":"provided","purpose":"provide_offerings"}"#,
        r#"{"subject":"echo-1","category":"contact.email","value":"x","source":"provided","purpose":"zqxjpurpose"}"#,
        r#"{"subject":"echo-1","category":"contact.email","value":"ab\"zqxjquote"#,
    ];
    let batch = lines.join("\n");
    let r = send(&f, Method::POST, "/v1/ingest", "application/x-ndjson", batch.clone().into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let summary = r.json();
    assert_eq!(summary["rejected"], 5, "{summary}");
    for line in lines {
        let leaked = echoed(line.as_bytes(), &r.text());
        assert!(leaked.is_empty(), "{line}: the summary echoes {leaked:?}: {}", r.text());
    }
    // Unknown ids in paths and queries: the kind and the known ids, never the id given.
    for path in [
        "/v1/subjects/echo-1/data/zqxj.unknown?purpose=provide_offerings",
        "/v1/subjects/echo-1/data/contact.email?purpose=zqxjunknown",
        "/v1/subjects/echo-1/data?purpose=zqxjunknown",
        "/v1/subjects/echo-1/data/contact.email?purpose=provide_offerings&zqxjextra=1",
        "/v1/audit?after=zqxjnotanumber",
    ] {
        let r = f.send(Method::GET, path, None, None).await;
        assert!(r.status.is_client_error(), "{path}: {} {}", r.status, r.text());
        assert!(!r.text().contains("zqxj"), "{path}: the problem echoes the input: {}", r.text());
    }
    for (method, path) in [
        (Method::PUT, "/v1/subjects/echo-1/consents/zqxjpurpose"),
        (Method::DELETE, "/v1/subjects/echo-1/consents/zqxjpurpose"),
        (Method::PUT, "/v1/subjects/echo-1/objections/zqxjpurpose"),
    ] {
        let r = f.send(method.clone(), path, None, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}: {}", r.text());
        assert!(!r.text().contains("zqxj"), "{method} {path}: the problem echoes the input: {}", r.text());
        assert!(r.text().contains("unknown purpose"), "{method} {path}: {}", r.text());
    }
}

#[tokio::test]
async fn regression_bearer_scheme_is_case_insensitive() {
    let f = fixture();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let req = Request::builder()
            .uri("/v1/policy")
            .header("authorization", format!("{scheme} {}", f.admin))
            .body(Body::empty())
            .expect("a request");
        let r = f.call(req).await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {}", r.text());
    }
    // Another scheme is still refused.
    let req = Request::builder()
        .uri("/v1/policy")
        .header("authorization", format!("Basic {}", f.admin))
        .body(Body::empty())
        .expect("a request");
    assert_eq!(f.call(req).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn regression_unknown_methods_do_not_create_metric_series() {
    let f = fixture();
    let before = f.state.metrics.request_series();
    // Unauthenticated requests with made-up methods, on real and made-up paths.
    for i in 0..200 {
        let method = Method::from_bytes(format!("ZQXJ{i}").as_bytes()).expect("a method");
        let path = if i % 2 == 0 { "/v1/policy".to_string() } else { format!("/zqxj/{i}") };
        let r = f.call(Request::builder().method(method).uri(path).body(Body::empty()).expect("a request")).await;
        assert!(r.status.is_client_error(), "{}", r.status);
    }
    let after = f.state.metrics.request_series();
    assert!(after <= before + 4, "200 made-up methods added {} series", after - before);
    let r = f.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(!text.contains("ZQXJ") && !text.contains("zqxj"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[test]
fn regression_openapi_documents_problem_json() {
    let doc: serde_json::Value =
        serde_json::from_str(&ApiDoc::openapi().to_json().expect("JSON")).expect("the document is JSON");
    let mut problems = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let Some(responses) = op["responses"].as_object() else { continue };
            for (status, response) in responses {
                let Some(content) = response["content"].as_object() else { continue };
                for (media, c) in content {
                    let is_problem = c["schema"]["$ref"].as_str().is_some_and(|r| r.ends_with("/Problem"));
                    if is_problem {
                        problems += 1;
                        assert_eq!(media, "application/problem+json", "{method} {path} {status}");
                    }
                }
            }
            // Path and query parameters carry their limits and formats.
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                if ["id", "category", "purpose", "subject"].contains(&name) {
                    assert_eq!(p["schema"]["maxLength"], 128, "{method} {path} {name}: {p}");
                    assert!(p["schema"]["pattern"].is_string(), "{method} {path} {name}: {p}");
                }
                if name == "limit" {
                    assert_eq!(
                        (p["schema"]["minimum"].as_f64(), p["schema"]["maximum"].as_f64()),
                        (Some(1.0), Some(1000.0))
                    );
                }
            }
        }
    }
    assert!(problems > 50, "only {problems} problem responses documented");
}

#[tokio::test]
async fn problem_responses_are_sent_as_problem_json() {
    let f = fixture();
    let r = f.send(Method::GET, "/v1/subjects/nobody/data/contact.email?purpose=zzz", None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}
