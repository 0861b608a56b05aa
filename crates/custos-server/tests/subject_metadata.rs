//! A subject's metadata over HTTP (issue 8, defect 5): released only for a
//! purpose, decided and audited; ids that are personal data warn; an erased
//! id leaves only a pseudonymous tombstone. On SQLite, or PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`.

mod common;

use axum::http::{Method, StatusCode};
use common::{Fixture, fixture};
use custos_core::audit::AuditEntry;
use custos_server::auth::Role;
use custos_vault::By;

const ADULT: &str = r#"{"id":"meta-adult","jurisdiction":"eea","region":"xq-region-4","birth_date":"1980-01-02"}"#;

fn audit_after(f: &Fixture, seq: u64) -> Vec<serde_json::Value> {
    let entries: Vec<AuditEntry> = f.with_vault(|v| v.store().audit_entries(seq, 100)).expect("audit entries");
    entries.iter().map(|e| serde_json::from_str(&e.body).expect("an audit body is JSON")).collect()
}

fn service_key(f: &Fixture, actor: &str, purposes: &[&str]) -> String {
    let purposes: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
    f.with_vault(|v| {
        v.create_api_key(Role::Service, Some(actor), &purposes, &By::Cli).expect("a service key").secret.to_string()
    })
}

#[tokio::test]
async fn regression_subject_metadata_read_is_decided_and_audited() {
    let f = fixture();
    let created = f.send(Method::POST, "/v1/subjects", Some(ADULT), None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());

    // No purpose: no metadata, and nothing is read.
    let before = f.audit_len();
    let bare = f.send(Method::GET, "/v1/subjects/meta-adult", None, None).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.text());
    assert!(!bare.text().contains("xq-region-4"));
    assert_eq!(f.audit_len(), before, "a refused request reads nothing");

    // For a purpose: decided, released, audited as a metadata read.
    let read = f.send(Method::GET, "/v1/subjects/meta-adult?purpose=provide_offerings", None, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json()["region"], "xq-region-4");
    assert_eq!(read.json()["birth_date"], "1980-01-02");
    let entries = audit_after(&f, before);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "metadata_read");
    assert_eq!(entries[0]["purpose"], "provide_offerings");
    assert_eq!(entries[0]["actor"], "controller");
    let body = entries[0].to_string();
    assert!(!body.contains("meta-adult") && !body.contains("xq-region-4") && !body.contains("1980"), "{body}");

    // A purpose the subject's choices deny: denied with the reason, audited.
    let before = f.audit_len();
    let denied = f.send(Method::GET, "/v1/subjects/meta-adult?purpose=marketing", None, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text());
    assert_eq!(denied.json()["reason"], "consent_missing", "{}", denied.text());
    assert!(!denied.text().contains("xq-region-4"));
    let entries = audit_after(&f, before);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["reason"].as_str()),
        (Some("access_denied"), Some("consent_missing"))
    );

    // A service key outside its purposes: 403, audited; inside them: decided for its recipient.
    let service = service_key(&f, "paymenttech", &["provide_offerings"]);
    let before = f.audit_len();
    let out = f.send_as(&service, Method::GET, "/v1/subjects/meta-adult?purpose=marketing", None, None).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN, "{}", out.text());
    assert!(!out.text().contains("xq-region-4"));
    assert_eq!(audit_after(&f, before).len(), 1, "the out-of-scope request is audited");
    let before = f.audit_len();
    let inside =
        f.send_as(&service, Method::GET, "/v1/subjects/meta-adult?purpose=provide_offerings", None, None).await;
    let entries = audit_after(&f, before);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(inside.status, StatusCode::OK, "{}", inside.text());
    assert_eq!(inside.json()["region"], "xq-region-4");
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["actor"].as_str()),
        (Some("metadata_read"), Some("paymenttech"))
    );
    // A recipient not declared for any category of the purpose is denied by the policy.
    let marketer = service_key(&f, "marketo", &["marketing"]);
    let before = f.audit_len();
    let r = f.send_as(&marketer, Method::GET, "/v1/subjects/meta-adult?purpose=marketing", None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json()["reason"].is_string(), "{}", r.text());
    assert!(!r.text().contains("xq-region-4"));
    assert_eq!(audit_after(&f, before)[0]["action"], "access_denied");

    // An auditor may not read subjects at all; an unknown subject is a 404.
    let auditor = f.new_key(Role::Auditor);
    let r = f.send_as(&auditor, Method::GET, "/v1/subjects/meta-adult?purpose=provide_offerings", None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = f.send(Method::GET, "/v1/subjects/nobody?purpose=provide_offerings", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test]
async fn regression_email_like_subject_id_warns_and_tombstone_is_pseudonymous() {
    let f = fixture();
    let id = "erin.7x@example.org";
    let body = format!(r#"{{"id":"{id}","jurisdiction":"eea","region":"xq-region-5"}}"#);
    let created = f.send(Method::POST, "/v1/subjects", Some(&body), None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let warnings = created.json()["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{}", created.text());
    assert!(warnings[0].as_str().is_some_and(|w| w.contains("email address")), "{warnings:?}");
    let phone = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"+14155550123","jurisdiction":"eea"}"#), None).await;
    assert!(phone.json()["warnings"][0].as_str().is_some_and(|w| w.contains("phone number")), "{}", phone.text());
    let plain = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"cus-8f3a","jurisdiction":"eea"}"#), None).await;
    assert!(plain.json().get("warnings").is_none(), "{}", plain.text());

    let erased = f.send(Method::POST, &format!("/v1/subjects/{id}/erasure"), None, None).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text());
    let sid = custos_core::subject::SubjectId::parse(id).expect("an id");
    let (row, tombstone, pseudonym) = f.with_vault(|v| {
        let pseudonym = v.pseudonym(id);
        (v.store().subject(&sid).expect("lookup"), v.store().tombstone(&pseudonym).expect("lookup"), pseudonym)
    });
    assert_eq!(row, None, "a row is still stored under the email address");
    let tombstone = tombstone.expect("the tombstone is found by the pseudonym");
    assert!(!tombstone.pseudonym.contains("example.org") && tombstone.pseudonym == pseudonym);

    // Lookups of the erased id find the tombstone: denied as erased, never re-created.
    let read = f.send(Method::GET, &format!("/v1/subjects/{id}?purpose=provide_offerings"), None, None).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text());
    assert_eq!(read.json()["reason"], "erased");
    assert!(!read.text().contains("xq-region-5"));
    let data = f.send(Method::GET, &format!("/v1/subjects/{id}/data?purpose=provide_offerings"), None, None).await;
    assert_eq!(data.json()["reason"], "erased", "{}", data.text());
    let again = f.send(Method::POST, "/v1/subjects", Some(&body), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
}
