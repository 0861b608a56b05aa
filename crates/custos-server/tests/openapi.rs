//! The OpenAPI document and the router describe the same routes: exactly
//! [`custos_server::ROUTES`]. `write_openapi_json` (ignored) writes the
//! document for `.ci/run` to validate against the OpenAPI 3.1 schema.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use custos_server::ops::ApiDoc;
use custos_server::{ROUTES, WRITE_ROUTES};
use utoipa::OpenApi as _;
use utoipa::openapi::path::Operation;

/// Every `(method, path)` the document describes.
fn documented() -> BTreeSet<(String, String)> {
    let doc = ApiDoc::openapi();
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("OPTIONS", &item.options),
            ("HEAD", &item.head),
            ("PATCH", &item.patch),
            ("TRACE", &item.trace),
        ] {
            if op.is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

fn operation(method: &str, path: &str) -> Operation {
    let doc = ApiDoc::openapi();
    let item = doc.paths.paths.get(path).unwrap_or_else(|| panic!("{path} is not documented")).clone();
    match method {
        "GET" => item.get,
        "PUT" => item.put,
        "POST" => item.post,
        "DELETE" => item.delete,
        _ => None,
    }
    .unwrap_or_else(|| panic!("{method} {path} is not documented"))
}

fn routes(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
}

#[test]
fn the_document_describes_exactly_the_routes() {
    assert_eq!(routes(ROUTES).len(), ROUTES.len(), "ROUTES lists a route twice");
    let documented = documented();
    let routes = routes(ROUTES);
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    assert!(extra.is_empty(), "documented routes the router does not serve: {extra:?}");
}

#[test]
fn the_document_is_openapi_3_1() {
    let json: serde_json::Value = serde_json::from_str(&ApiDoc::openapi().to_json().expect("JSON")).expect("JSON");
    assert_eq!(json["openapi"], "3.1.0");
}

#[test]
fn writes_and_only_writes_document_the_idempotency_key() {
    assert!(WRITE_ROUTES.iter().all(|r| ROUTES.contains(r)), "WRITE_ROUTES is a subset of ROUTES");
    for (method, path) in ROUTES {
        let op = operation(method, path);
        let params = op.parameters.unwrap_or_default();
        let has_key = params.iter().filter(|p| p.name == "Idempotency-Key").count();
        let write = WRITE_ROUTES.contains(&(method, path));
        assert_eq!(has_key, usize::from(write), "{method} {path}");
        if write {
            assert!(op.responses.responses.contains_key("409"), "{method} {path} documents the 409");
            assert!(op.responses.responses.contains_key("400"), "{method} {path} documents the 400");
        }
    }
}

#[test]
fn path_parameters_match_the_path_templates() {
    use utoipa::openapi::path::ParameterIn;
    for (method, path) in ROUTES {
        let params = operation(method, path).parameters.unwrap_or_default();
        let mut declared: Vec<String> =
            params.iter().filter(|p| p.parameter_in == ParameterIn::Path).map(|p| p.name.clone()).collect();
        let mut in_template: Vec<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(String::from)
            .collect();
        declared.sort();
        in_template.sort();
        assert_eq!(declared, in_template, "{method} {path}: path parameters");
    }
}

/// A concrete path for a template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "alice").replace("{category}", "contact.name").replace("{purpose}", "marketing")
}

#[tokio::test]
async fn the_router_serves_every_route() {
    let f = common::fixture();
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let r = f.send(method.clone(), &concrete(path), None, None).await;
        let code = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(String::from));
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {}", r.text());
        assert_ne!(code.as_deref(), Some("no_route"), "{method} {path}");
        assert_ne!(code.as_deref(), Some("method_not_allowed"), "{method} {path}");
    }
    // And the fallbacks still answer for what is not a route.
    let r = f.send(Method::GET, "/v1/nothing", None, None).await;
    assert_eq!(r.json()["code"], "no_route");
    let r = f.send(Method::PATCH, "/v1/subjects", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Writes the document to `$CUSTOS_OPENAPI_OUT` (run by `.ci/run`).
#[test]
#[ignore = "run by .ci/run to write the document it validates"]
fn write_openapi_json() {
    let out = std::env::var_os("CUSTOS_OPENAPI_OUT").expect("set CUSTOS_OPENAPI_OUT to the file to write");
    let json = ApiDoc::openapi().to_pretty_json().expect("the document serialises");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.to_string_lossy()));
}
