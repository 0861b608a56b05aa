//! The server in-process over an in-memory SQLite store, with the bundled
//! policy and an admin key.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use custos_core::policy::Policy;
use custos_core::time::SystemClock;
use custos_crypto::{Keyring, MasterKey};
use custos_server::auth::Role;
use custos_server::{AppState, Config, SharedVault};
use custos_store::Store;
use custos_store_sqlite::SqliteStore;
use custos_vault::Vault;
use tower::ServiceExt as _;

pub const POLICY: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");

pub struct Fixture {
    pub state: Arc<AppState>,
    pub admin: String,
}

pub fn vault() -> SharedVault {
    let policy = Arc::new(Policy::from_yaml(POLICY).expect("the bundled policy loads"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("an in-memory store"));
    let keys = Keyring::new(&MasterKey::generate().expect("a master key")).expect("a keyring");
    Vault::new(policy, store, keys, Arc::new(SystemClock))
}

pub fn fixture() -> Fixture {
    let vault = vault();
    let admin = vault.create_api_key(Role::Admin, None, &[]).expect("an admin key").secret.to_string();
    Fixture { state: AppState::new(vault, Config::default()), admin }
}

impl Fixture {
    pub fn app(&self) -> Router {
        custos_server::app(self.state.clone())
    }

    /// Another admin key.
    pub fn new_admin_key(&self) -> String {
        self.state.vault.create_api_key(Role::Admin, None, &[]).expect("an admin key").secret.to_string()
    }

    /// Sends one request with the admin key; `body` is sent as JSON when given.
    pub async fn send(&self, method: Method, path: &str, body: Option<&str>, idempotency_key: Option<&str>) -> Reply {
        self.send_as(&self.admin, method, path, body, idempotency_key).await
    }

    pub async fn send_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {key}"));
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("a request");
        self.call(req).await
    }

    /// Sends a request as built.
    pub async fn call(&self, req: Request<Body>) -> Reply {
        Reply::read(self.app().oneshot(req).await.expect("infallible")).await
    }

    /// Sends an NDJSON batch to `/v1/ingest`.
    pub async fn ingest(&self, ndjson: &str, idempotency_key: Option<&str>) -> Reply {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/v1/ingest")
            .header("authorization", format!("Bearer {}", self.admin))
            .header("content-type", "application/x-ndjson");
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        self.call(req.body(Body::from(ndjson.to_string())).expect("a request")).await
    }

    /// Audit entries so far.
    pub fn audit_len(&self) -> u64 {
        self.state.vault.store().audit_head().expect("the audit head").seq
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn read(resp: Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("a body").to_vec();
        Reply { status, headers, body }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }
}
