//! The error table: every problem type is distinct and well-formed, every
//! input error of the vault has its own 4xx type, and over HTTP a bad
//! request gets the type of what is wrong (with `code` kept as the broad,
//! stable class) without echoing the input. On SQLite, or on PostgreSQL with
//! `CUSTOS_TEST_BACKEND=postgres`.

mod common;

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use common::fixture;
use custos_core::subject::SubjectId;
use custos_server::problem::{ApiError, ProblemKind, TYPE_PREFIX};
use custos_vault::{CardError, InputError, PolicyIdKind, VaultError};

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
}

#[test]
fn every_row_has_a_distinct_well_formed_type_and_an_error_status() {
    let mut codes = HashSet::new();
    for kind in ProblemKind::ALL {
        let row = kind.row();
        assert!(row.status.is_client_error() || row.status.is_server_error(), "{kind:?}");
        assert!(is_snake_case(row.code) && is_snake_case(row.class), "{kind:?}: {row:?}");
        assert!(codes.insert(row.code), "code `{}` twice", row.code);
        let uri = row.type_uri();
        assert_eq!(uri.strip_prefix(TYPE_PREFIX), Some(row.code), "{uri}");
        assert!(!row.title.is_empty(), "{kind:?}");
        // The class is itself a row with the same status: `code` names a type a client can look up.
        let class = ProblemKind::ALL.iter().map(|k| k.row()).find(|r| r.code == row.class);
        assert_eq!(class.map(|c| c.status), Some(row.status), "{kind:?}: class `{}`", row.class);
    }
}

/// One of each input error (the `From<&InputError> for ProblemKind` match is
/// exhaustive, so a new variant must be mapped; add it here too).
fn one_of_each_input_error() -> Vec<InputError> {
    let bad_id = SubjectId::parse("").expect_err("the empty id is invalid");
    let mut all: Vec<InputError> =
        PolicyIdKind::ALL.iter().map(|&kind| InputError::UnknownId { kind, known: "a, b".into() }).collect();
    all.extend([
        InputError::SourceNotForCategory { source_id: "provided".into(), category: "contact.email".into() },
        InputError::CategoryMissing,
        InputError::EmptyValue { category: "contact.email".into() },
        InputError::ValueTooLarge { category: "contact.email".into(), max: 10 },
        InputError::SubjectId(bad_id),
        InputError::GuardianId(bad_id),
        InputError::GuardianNotLinked,
        InputError::OwnGuardian,
        InputError::GuardianErased,
        InputError::GuardianUnknown,
        InputError::Token,
        InputError::Region,
        InputError::BirthDateInFuture,
        InputError::CardNumber { category: "payment.card_number".into(), reason: CardError::Luhn },
        InputError::ServiceKeyWithoutActor,
        InputError::ServiceKeyWithoutPurposes,
        InputError::RecipientNotForPurpose { recipient: "payments".into(), purpose: "marketing".into() },
        InputError::ControllerKeyWithScope { role: "admin" },
    ]);
    all
}

#[test]
fn every_input_error_is_a_400_with_its_own_type_and_code_invalid_request() {
    let mut types = HashSet::new();
    for e in one_of_each_input_error() {
        let p = ApiError::from(VaultError::Input(e.clone())).problem();
        assert_eq!(p.status, 400, "{e:?}");
        assert_eq!(p.code, "invalid_request", "{e:?}: the class stays what clients matched on");
        assert_ne!(p.kind, format!("{TYPE_PREFIX}invalid_request"), "{e:?} has no type of its own");
        assert!(types.insert(p.kind.clone()), "{e:?}: type {} twice", p.kind);
        assert_eq!(p.detail, e.to_string(), "the detail is the vault's sentence");
    }
}

#[test]
fn the_openapi_document_lists_every_problem_type() {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(custos_server::ops::ApiDoc::openapi()).expect("json");
    let problem = &doc["components"]["schemas"]["Problem"];
    let description = problem["description"].as_str().expect("a description");
    let listed: Vec<&str> =
        problem["properties"]["type"]["enum"].as_array().expect("an enum").iter().filter_map(|v| v.as_str()).collect();
    for kind in ProblemKind::ALL {
        let uri = kind.row().type_uri();
        assert!(description.contains(&format!("`{uri}`")), "{uri} is not in the description");
        assert!(listed.contains(&uri.as_str()), "{uri} is not in the enum");
    }
}

/// Sends `body` to `path`; returns the problem, checking it echoes none of `secrets`.
async fn problem(
    f: &common::Fixture,
    method: Method,
    path: &str,
    body: Option<&str>,
    secrets: &[&str],
) -> serde_json::Value {
    let r = f.send(method, path, body, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    for s in secrets {
        assert!(!r.text().contains(s), "{path}: the problem echoes `{s}`: {}", r.text());
    }
    let p = r.json();
    assert_eq!(p["code"], "invalid_request", "{p}");
    p
}

#[tokio::test]
async fn each_bad_input_gets_its_own_type_and_is_not_echoed() {
    let f = fixture();
    let created = f.send(Method::POST, "/v1/subjects", Some(r#"{"id":"alice","jurisdiction":"eea"}"#), None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let email = "/v1/subjects/alice/data/contact.email";
    let card = "/v1/subjects/alice/data/payment.card_number";

    let p = problem(&f, Method::GET, &format!("{email}?purpose=zqxj-alice-secret"), None, &["zqxj"]).await;
    assert_eq!(p["type"], "urn:custos:problem:unknown_purpose", "{p}");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("provide_offerings")), "lists the known: {p}");

    let put = r#"{"value":"","source":"provided","purpose":"provide_offerings"}"#;
    let p = problem(&f, Method::PUT, email, Some(put), &[]).await;
    assert_eq!(p["type"], "urn:custos:problem:empty_value", "{p}");

    let put = r#"{"value":"4111 1111 1111 1112","source":"provided","purpose":"provide_offerings"}"#;
    let p = problem(&f, Method::PUT, card, Some(put), &["4111", "1112"]).await;
    assert_eq!(p["type"], "urn:custos:problem:invalid_card_number", "{p}");

    let new = r#"{"id":"zqxj secret person","jurisdiction":"eea"}"#;
    let p = problem(&f, Method::POST, "/v1/subjects", Some(new), &["zqxj", "secret"]).await;
    assert_eq!(p["type"], "urn:custos:problem:invalid_subject_id", "{p}");
    let p = problem(&f, Method::GET, "/v1/subjects/zqxj%20secret?purpose=provide_offerings", None, &["zqxj", "secret"])
        .await;
    assert_eq!(p["type"], "urn:custos:problem:invalid_subject_id", "{p}");

    let p = problem(&f, Method::GET, "/v1/subjects/alice/data/zqxj.secret?purpose=provide_offerings", None, &["zqxj"])
        .await;
    assert_eq!(p["type"], "urn:custos:problem:unknown_category", "{p}");

    // Nothing was stored by any of them.
    let read = f.send(Method::GET, &format!("{email}?purpose=provide_offerings"), None, None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.text());
    assert_eq!(read.json()["type"], "urn:custos:problem:item_not_found");
    assert_eq!(read.json()["code"], "not_found", "the class of a 404 stays `not_found`");
}
