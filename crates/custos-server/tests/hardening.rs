//! Hardening found by an outside test: every refused role on a route about a
//! subject is audited; a request may not carry two `Authorization` headers.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Fixture, fixture};
use custos_server::auth::Role;
use custos_vault::By;

fn key(f: &Fixture, role: Role) -> (String, String) {
    let service = role == Role::Service;
    let purposes = if service { vec!["communicate".to_string()] } else { Vec::new() };
    let actor = service.then_some("affiliates");
    let k = f.with_vault(|v| v.create_api_key(role, actor, &purposes, &By::Cli).expect("a key"));
    (k.id.clone(), k.secret.to_string())
}

/// Key secret, key id, method, path, JSON body, expected subject pseudonym.
type Case<'a> = (&'a str, &'a str, Method, &'a str, Option<&'a str>, &'a str);

/// The audit entries after `from`, as JSON.
fn audit_after(f: &Fixture, from: u64) -> Vec<serde_json::Value> {
    f.with_vault(|v| {
        let head = v.store().audit_head().expect("head").seq;
        let entries = v.store().audit_entries(from, (head - from) as usize).expect("entries");
        entries.iter().map(|e| serde_json::from_str(&e.body).expect("json")).collect()
    })
}

#[tokio::test]
async fn every_role_refusal_on_a_subject_route_is_audited_with_the_key_and_pseudonym() {
    let f = fixture();
    let r = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"alice","jurisdiction":"california"}"#), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let alice = f.with_vault(|v| v.pseudonym("alice"));
    let bob = f.with_vault(|v| v.pseudonym("bob"));
    let email = r#"{"value":"a@mail.example.net","source":"provided","purpose":"communicate"}"#;
    let (service_id, service) = key(&f, Role::Service);
    let (auditor_id, auditor) = key(&f, Role::Auditor);
    let create = r#"{"id":"bob","jurisdiction":"california"}"#;
    let cases: Vec<Case> = vec![
        (&service, &service_id, Method::POST, "/v1/subjects", Some(create), &bob),
        (&auditor, &auditor_id, Method::POST, "/v1/subjects", Some(create), &bob),
        (&service, &service_id, Method::POST, "/v1/subjects/alice/erasure", None, &alice),
        (&auditor, &auditor_id, Method::POST, "/v1/subjects/alice/erasure", None, &alice),
        (&auditor, &auditor_id, Method::GET, "/v1/subjects/alice?purpose=communicate", None, &alice),
        (&auditor, &auditor_id, Method::PUT, "/v1/subjects/alice/data/contact.email", Some(email), &alice),
        (&auditor, &auditor_id, Method::GET, "/v1/subjects/alice/data/contact.email?purpose=communicate", None, &alice),
        (&auditor, &auditor_id, Method::GET, "/v1/subjects/alice/data?purpose=communicate", None, &alice),
        (
            &auditor,
            &auditor_id,
            Method::GET,
            "/v1/subjects/alice/data/contact.email/history?purpose=communicate",
            None,
            &alice,
        ),
    ];
    for (secret, id, method, path, body, pseudonym) in cases {
        let before = f.audit_len();
        let r = f.send_as(secret, method.clone(), path, body, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.text());
        let entries = audit_after(&f, before);
        assert_eq!(entries.len(), 1, "{method} {path}: one audit entry, got {entries:?}");
        let e = &entries[0];
        assert_eq!(e["action"], "access_denied", "{method} {path}: {e}");
        assert_eq!(e["reason"], "role_not_allowed", "{method} {path}: {e}");
        assert_eq!(e["by"], format!("key:{id}"), "{method} {path}: {e}");
        assert_eq!(e["subject"], *pseudonym, "{method} {path}: {e}");
        assert!(!e.to_string().contains("alice") && !e.to_string().contains("\"bob\""), "{e}");
    }
    // Nothing was created or erased.
    let r = f.send(Method::GET, "/v1/subjects/bob?purpose=communicate", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = f.send(Method::GET, "/v1/subjects/alice?purpose=communicate", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn two_authorization_headers_are_refused_whichever_comes_first() {
    let f = fixture();
    let admin = f.new_admin_key();
    for (first, second) in [(admin.as_str(), "nope"), ("nope", admin.as_str()), (admin.as_str(), admin.as_str())] {
        let req = Request::builder()
            .method(Method::GET)
            .uri("/v1/subjects/alice?purpose=communicate")
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
            .body(Body::empty())
            .expect("a request");
        let r = f.call(req).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(!r.text().contains(&admin), "the key is not echoed");
    }
}

/// A client that sends half its headers is disconnected after the
/// header-read timeout instead of holding the connection open.
#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = custos_server::Config {
        header_read_timeout: std::time::Duration::from_millis(300),
        ..custos_server::Config::default()
    };
    let f = common::fixture_with(config, std::sync::Arc::new(custos_core::time::SystemClock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(custos_server::serve(listener, f.state.clone(), async {
        let _ = stopped.await;
    }));
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection is still open after 5 s");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "closed too early: {:?}", started.elapsed());
    let _ = stop.send(());
    server.await.expect("joined").expect("served");
}
