//! The Custos HTTP API.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown signal, letting in-flight requests finish. The
//! vault is synchronous: handlers run it on tokio's blocking pool
//! ([`AppState::run`]). This crate is the only one that knows HTTP and JSON
//! shapes; decisions, sealing and auditing stay in the vault.

pub mod api;
pub mod auth;
pub mod extract;
pub mod metrics;
pub mod ops;
pub mod problem;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use custos_store::Store;
use custos_vault::Vault;

use problem::{ApiError, ProblemKind};

/// The vault the server runs, over any store.
pub type SharedVault = Vault<Arc<dyn Store>>;

/// Limits and switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest NDJSON ingestion body accepted, in bytes.
    pub max_ingest_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_body_bytes: 256 * 1024, max_ingest_bytes: 64 * 1024 * 1024 }
    }
}

/// What every handler shares.
pub struct AppState {
    /// The vault.
    pub vault: Arc<SharedVault>,
    /// Request and decision counters, latency histograms.
    pub metrics: metrics::Metrics,
    /// Limits.
    pub config: Config,
}

impl AppState {
    /// State over a vault with default limits.
    pub fn new(vault: SharedVault, config: Config) -> Arc<AppState> {
        Arc::new(AppState { vault: Arc::new(vault), metrics: metrics::Metrics::default(), config })
    }

    /// Runs a vault operation on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&SharedVault) -> Result<T, ApiError> + Send + 'static,
    {
        let vault = self.vault.clone();
        match tokio::task::spawn_blocking(move || f(&vault)).await {
            Ok(result) => result,
            Err(e) => Err(ApiError::internal(&e)),
        }
    }
}

/// The router: every route of the API, with its middleware.
pub fn app(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body_bytes;
    let max_ingest = state.config.max_ingest_bytes;
    Router::new()
        .route("/v1/subjects", post(api::create_subject))
        .route("/v1/subjects/{id}", get(api::get_subject))
        .route("/v1/subjects/{id}/data", get(api::read_all))
        .route("/v1/subjects/{id}/data/{category}", put(api::put_item).get(api::read_item))
        .route("/v1/subjects/{id}/data/{category}/history", get(api::read_history))
        .route("/v1/subjects/{id}/consents/{purpose}", put(api::grant_consent).delete(api::withdraw_consent))
        .route("/v1/subjects/{id}/objections/{purpose}", put(api::object))
        .route("/v1/subjects/{id}/restriction", put(api::restrict).delete(api::lift_restriction))
        .route("/v1/subjects/{id}/erasure", post(api::erase))
        .route("/v1/detokenize", post(api::detokenize))
        .route("/v1/ingest", post(api::ingest).layer(DefaultBodyLimit::max(max_ingest)))
        .route("/v1/policy", get(ops::policy))
        .route("/v1/audit", get(ops::audit_entries))
        .route("/v1/audit/verify", post(ops::audit_verify))
        .route("/notice", get(ops::notice))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(ProblemKind::NoRoute, "no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ProblemKind::MethodNotAllowed, "this method is not allowed on this route; see /openapi.json")
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One log line and one metrics sample per request: route (the template, never
/// the path with its ids), status, latency and a request id.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("(unmatched)", |m| m.as_str()).to_string();
    let method = req.method().clone();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .map_or_else(metrics::next_request_id, str::to_string);
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe_request(method.as_str(), &route, status, elapsed);
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp.into_response()
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
