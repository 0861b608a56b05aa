//! A service key's purposes bound its writes as they bound its reads: a
//! recipient's key may not collect a value for a purpose its key was not
//! issued for, even one the recipient is declared for in the policy.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Fixture, fixture};
use custos_server::auth::Role;
use custos_vault::By;

/// `affiliates` is declared for both `communicate` and `provide_offerings`;
/// the key is issued for `communicate` only.
fn affiliate_key(f: &Fixture) -> (String, String) {
    let key = f.with_vault(|v| {
        v.create_api_key(Role::Service, Some("affiliates"), &["communicate".to_string()], &By::Cli).expect("a key")
    });
    (key.id.clone(), key.secret.to_string())
}

async fn with_alice() -> Fixture {
    let f = fixture();
    let r = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"alice","jurisdiction":"california"}"#), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    f
}

/// The last audit entry, as JSON.
fn last_audit(f: &Fixture) -> serde_json::Value {
    f.with_vault(|v| {
        let head = v.store().audit_head().expect("head").seq;
        let entries = v.store().audit_entries(head - 1, 1).expect("entries");
        serde_json::from_str::<serde_json::Value>(&entries[0].body).expect("json")
    })
}

const EMAIL_FOR_SERVICE: &str =
    r#"{"value":"alice@mail.example.net","source":"provided","purpose":"provide_offerings"}"#;

#[tokio::test]
async fn a_service_key_cannot_write_for_a_purpose_outside_its_key() {
    let f = with_alice().await;
    let (id, key) = affiliate_key(&f);
    let before = f.audit_len();
    let r = f.send_as(&key, Method::PUT, "/v1/subjects/alice/data/contact.email", Some(EMAIL_FOR_SERVICE), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["reason"], "purpose_not_bound", "{}", r.text());
    assert!(!r.text().contains("alice@"), "the value is not echoed: {}", r.text());
    // Nothing was written; the refusal is audited with the key.
    let read = f.send(Method::GET, "/v1/subjects/alice/data/contact.email?purpose=provide_offerings", None, None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.text());
    let denial = f.with_vault(|v| {
        let entries = v.store().audit_entries(before, 1).expect("entries");
        serde_json::from_str::<serde_json::Value>(&entries[0].body).expect("json")
    });
    assert_eq!(denial["action"], "access_denied", "{denial}");
    assert_eq!(denial["reason"], "purpose_not_bound", "{denial}");
    assert_eq!(denial["by"], format!("key:{id}"), "{denial}");
}

#[tokio::test]
async fn a_service_key_can_write_for_its_own_purpose() {
    let f = with_alice().await;
    let (id, key) = affiliate_key(&f);
    let body = r#"{"value":"alice@mail.example.net","source":"provided","purpose":"communicate"}"#;
    let r = f.send_as(&key, Method::PUT, "/v1/subjects/alice/data/contact.email", Some(body), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let written = last_audit(&f);
    assert_eq!(written["action"], "data_written", "{written}");
    assert_eq!(written["by"], format!("key:{id}"), "{written}");
}

#[tokio::test]
async fn a_service_keys_ingested_line_for_another_purpose_is_refused_and_the_rest_written() {
    let f = with_alice().await;
    let (_, key) = affiliate_key(&f);
    let batch = concat!(
        r#"{"subject":"alice","category":"contact.email","value":"alice@mail.example.net","source":"provided","purpose":"provide_offerings"}"#,
        "\n",
        r#"{"subject":"alice","category":"contact.name","value":"Alice Liddell","source":"provided","purpose":"communicate"}"#,
        "\n"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/ingest")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/x-ndjson")
        .body(Body::from(batch))
        .expect("a request");
    let r = f.call(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let summary = r.json();
    assert_eq!(summary["written"], 1, "{summary}");
    let text = r.text();
    assert!(text.contains("purpose_not_bound"), "{text}");
    assert!(!text.contains("alice@"), "{text}");
    let email =
        f.send(Method::GET, "/v1/subjects/alice/data/contact.email?purpose=provide_offerings", None, None).await;
    assert_eq!(email.status, StatusCode::NOT_FOUND, "{}", email.text());
    let name = f.send(Method::GET, "/v1/subjects/alice/data/contact.name?purpose=provide_offerings", None, None).await;
    assert_eq!(name.status, StatusCode::OK, "{}", name.text());
}
