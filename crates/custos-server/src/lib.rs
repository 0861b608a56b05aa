//! The Custos HTTP API.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown signal, letting in-flight requests finish, and
//! [`tls::serve_tls`] does the same over HTTPS (rustls on ring). The vault is
//! synchronous: handlers run it on tokio's blocking pool ([`AppState::run`]).
//! Write routes honour `Idempotency-Key` ([`idempotency`]). [`ROUTES`] lists
//! every route once; the router and the OpenAPI document are checked against
//! it. This crate is the only one that knows HTTP and JSON shapes; decisions,
//! sealing and auditing stay in the vault.

pub mod api;
pub mod auth;
pub mod checkpoints;
pub mod choices;
pub mod conn;
pub mod extract;
pub mod idempotency;
pub mod ingest;
pub mod metrics;
pub mod ops;
pub mod problem;
pub mod request_reports;
pub mod requests;
pub mod secret;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
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
    /// How long a response recorded for an `Idempotency-Key` is replayed
    /// (24 hours by default); older records are treated as absent and pruned.
    pub idempotency_ttl: std::time::Duration,
    /// Most ingestion batches read and written at once; others wait unread ([`ingest::gate`]).
    pub max_concurrent_ingestions: usize,
    /// How long a client may take to send a request line and headers
    /// ([`conn::DEFAULT_HEADER_READ_TIMEOUT`]); the connection is closed after.
    pub header_read_timeout: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 256 * 1024,
            max_ingest_bytes: 64 * 1024 * 1024,
            idempotency_ttl: idempotency::DEFAULT_TTL,
            max_concurrent_ingestions: 2,
            header_read_timeout: conn::DEFAULT_HEADER_READ_TIMEOUT,
        }
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
    /// Idempotency keys with a request in progress in this process.
    pub idempotency: Arc<idempotency::InFlight>,
    /// Recently authenticated API keys.
    pub principals: auth::PrincipalCache,
    /// Permits for concurrent ingestion batches ([`Config::max_concurrent_ingestions`]).
    pub ingestion: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// State over a vault with default limits.
    pub fn new(vault: SharedVault, config: Config) -> Arc<AppState> {
        Arc::new(AppState {
            vault: Arc::new(vault),
            metrics: metrics::Metrics::default(),
            principals: auth::PrincipalCache::default(),
            ingestion: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_ingestions.max(1))),
            config,
            idempotency: Arc::default(),
        })
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

/// Every route of the API as `(method, path template)`: the router registers
/// exactly these (checked whenever [`app`] builds it in a debug build) and the
/// OpenAPI document describes exactly these (checked by `tests/openapi.rs`).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/subjects"),
    ("GET", "/v1/subjects/{id}"),
    ("GET", "/v1/subjects/{id}/data"),
    ("PUT", "/v1/subjects/{id}/data/{category}"),
    ("GET", "/v1/subjects/{id}/data/{category}"),
    ("GET", "/v1/subjects/{id}/data/{category}/history"),
    ("PUT", "/v1/subjects/{id}/consents/{purpose}"),
    ("DELETE", "/v1/subjects/{id}/consents/{purpose}"),
    ("PUT", "/v1/subjects/{id}/objections/{purpose}"),
    ("PUT", "/v1/subjects/{id}/restriction"),
    ("DELETE", "/v1/subjects/{id}/restriction"),
    ("PUT", "/v1/subjects/{id}/opt-out"),
    ("DELETE", "/v1/subjects/{id}/opt-out"),
    ("PUT", "/v1/subjects/{id}/sensitive-limit"),
    ("DELETE", "/v1/subjects/{id}/sensitive-limit"),
    ("POST", "/v1/subjects/{id}/erasure"),
    ("POST", "/v1/detokenize"),
    ("POST", "/v1/ingest"),
    ("POST", "/v1/requests"),
    ("GET", "/v1/requests"),
    ("GET", "/v1/requests/{request_id}"),
    ("POST", "/v1/requests/{request_id}/verify"),
    ("POST", "/v1/requests/{request_id}/extend"),
    ("POST", "/v1/requests/{request_id}/deny"),
    ("POST", "/v1/requests/{request_id}/withdraw"),
    ("POST", "/v1/requests/{request_id}/execute"),
    ("GET", "/v1/requests/{request_id}/response"),
    ("GET", "/v1/reports/request-metrics"),
    ("GET", "/v1/policy"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/audit/verify"),
    ("GET", "/notice"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/.well-known/custos/audit-keys"),
];

/// The routes of [`ROUTES`] that write, and so accept an `Idempotency-Key`
/// ([`idempotency`]). Reads (including `POST /v1/detokenize` and
/// `POST /v1/audit/verify`) are never recorded.
pub const WRITE_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/subjects"),
    ("PUT", "/v1/subjects/{id}/data/{category}"),
    ("PUT", "/v1/subjects/{id}/consents/{purpose}"),
    ("DELETE", "/v1/subjects/{id}/consents/{purpose}"),
    ("PUT", "/v1/subjects/{id}/objections/{purpose}"),
    ("PUT", "/v1/subjects/{id}/restriction"),
    ("DELETE", "/v1/subjects/{id}/restriction"),
    ("PUT", "/v1/subjects/{id}/opt-out"),
    ("DELETE", "/v1/subjects/{id}/opt-out"),
    ("PUT", "/v1/subjects/{id}/sensitive-limit"),
    ("DELETE", "/v1/subjects/{id}/sensitive-limit"),
    ("POST", "/v1/subjects/{id}/erasure"),
    ("POST", "/v1/ingest"),
    ("POST", "/v1/requests"),
    ("POST", "/v1/requests/{request_id}/verify"),
    ("POST", "/v1/requests/{request_id}/extend"),
    ("POST", "/v1/requests/{request_id}/deny"),
    ("POST", "/v1/requests/{request_id}/withdraw"),
    ("POST", "/v1/requests/{request_id}/execute"),
];

/// The router: every route of the API, with its middleware.
pub fn app(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body_bytes;
    let max_ingest = state.config.max_ingest_bytes;
    let routes = Routes::new(state.clone())
        .write("POST", "/v1/subjects", api::create_subject, None)
        .read("GET", "/v1/subjects/{id}", api::get_subject)
        .read("GET", "/v1/subjects/{id}/data", api::read_all)
        .write("PUT", "/v1/subjects/{id}/data/{category}", api::put_item, None)
        .read("GET", "/v1/subjects/{id}/data/{category}", api::read_item)
        .read("GET", "/v1/subjects/{id}/data/{category}/history", api::read_history)
        .write("PUT", "/v1/subjects/{id}/consents/{purpose}", api::grant_consent, None)
        .write("DELETE", "/v1/subjects/{id}/consents/{purpose}", api::withdraw_consent, None)
        .write("PUT", "/v1/subjects/{id}/objections/{purpose}", choices::object, None)
        .write("PUT", "/v1/subjects/{id}/restriction", choices::restrict, None)
        .write("DELETE", "/v1/subjects/{id}/restriction", choices::lift_restriction, None)
        .write("PUT", "/v1/subjects/{id}/opt-out", choices::opt_out, None)
        .write("DELETE", "/v1/subjects/{id}/opt-out", choices::opt_back_in, None)
        .write("PUT", "/v1/subjects/{id}/sensitive-limit", choices::limit_sensitive, None)
        .write("DELETE", "/v1/subjects/{id}/sensitive-limit", choices::lift_sensitive_limit, None)
        .write("POST", "/v1/subjects/{id}/erasure", api::erase, None)
        .read("POST", "/v1/detokenize", api::detokenize)
        .write("POST", "/v1/ingest", ingest::ingest, Some(max_ingest))
        .write("POST", "/v1/requests", requests::submit_request, None)
        .read("GET", "/v1/requests", requests::list_requests)
        .read("GET", "/v1/requests/{request_id}", requests::get_request)
        .write("POST", "/v1/requests/{request_id}/verify", requests::verify_request, None)
        .write("POST", "/v1/requests/{request_id}/extend", requests::extend_request, None)
        .write("POST", "/v1/requests/{request_id}/deny", requests::deny_request, None)
        .write("POST", "/v1/requests/{request_id}/withdraw", requests::withdraw_request, None)
        .write("POST", "/v1/requests/{request_id}/execute", requests::execute_request, None)
        .read("GET", "/v1/requests/{request_id}/response", request_reports::request_response)
        .read("GET", "/v1/reports/request-metrics", request_reports::request_metrics)
        .read("GET", "/v1/policy", ops::policy)
        .read("GET", "/v1/audit", ops::audit_entries)
        .read("POST", "/v1/audit/verify", ops::audit_verify)
        .read("GET", "/notice", ops::notice)
        .read("GET", "/healthz", ops::healthz)
        .read("GET", "/readyz", ops::readyz)
        .read("GET", "/metrics", ops::metrics)
        .read("GET", "/openapi.json", ops::openapi)
        .read("GET", "/.well-known/custos/audit-keys", checkpoints::audit_keys);
    debug_assert_eq!(routes.check(), Ok(()), "the router and ROUTES / WRITE_ROUTES disagree");
    routes
        .router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), ingest::gate))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Builds the router one `(method, path)` at a time, remembering what it
/// registered so it can be compared with [`ROUTES`] and [`WRITE_ROUTES`].
struct Routes {
    state: Arc<AppState>,
    router: Router<Arc<AppState>>,
    all: Vec<(&'static str, &'static str)>,
    writes: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn new(state: Arc<AppState>) -> Self {
        Routes { state, router: Router::new(), all: Vec::new(), writes: Vec::new() }
    }

    /// A route that does not write (or writes nothing a retry could repeat).
    fn read<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.router = self.router.route(path, on(method_filter(method), handler));
        self.all.push((method, path));
        self
    }

    /// A write: it honours `Idempotency-Key`. `body_limit` overrides the
    /// default body limit (the idempotency layer refuses a body over it).
    fn write<H, T>(mut self, method: &'static str, path: &'static str, handler: H, body_limit: Option<usize>) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let limit = body_limit.unwrap_or(self.state.config.max_body_bytes);
        let mut endpoint = on(method_filter(method), handler)
            .route_layer(middleware::from_fn_with_state((self.state.clone(), limit), idempotency::middleware_limited));
        if let Some(limit) = body_limit {
            endpoint = endpoint.layer(DefaultBodyLimit::max(limit));
        }
        self.router = self.router.route(path, endpoint);
        self.all.push((method, path));
        self.writes.push((method, path));
        self
    }

    /// Whether exactly [`ROUTES`] and [`WRITE_ROUTES`] were registered.
    fn check(&self) -> Result<(), RouteMismatch> {
        let same = |got: &[(&'static str, &'static str)], want: &[(&'static str, &'static str)], list| {
            let mut registered = got.to_vec();
            let mut listed = want.to_vec();
            registered.sort_unstable();
            listed.sort_unstable();
            if registered == listed { Ok(()) } else { Err(RouteMismatch { list, registered, listed }) }
        };
        same(&self.all, ROUTES, "ROUTES")?;
        same(&self.writes, WRITE_ROUTES, "WRITE_ROUTES")
    }
}

/// The router registered other routes than a list says.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("registered {registered:?}, {list} lists {listed:?}")]
struct RouteMismatch {
    list: &'static str,
    registered: Vec<(&'static str, &'static str)>,
    listed: Vec<(&'static str, &'static str)>,
}

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        "PATCH" => MethodFilter::PATCH,
        other => panic!("no route is registered for method {other}"),
    }
}

async fn no_route() -> ApiError {
    ApiError::new(ProblemKind::NoRoute, "no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ProblemKind::MethodNotAllowed, "this method is not allowed on this route; see /openapi.json")
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One log line and one metrics sample per request: route (the template, never
/// the path with its ids), status, latency and a request id. Nothing here
/// allocates per request but the request id's header value.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = state.metrics.route_slot(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let method_slot = metrics::method_slot(req.method());
    let method = req.method().clone();
    let given = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| v.len() <= 64 && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
        .cloned();
    let made = if given.is_none() { Some(metrics::RequestId::next()) } else { None };
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe_request(&method, route, status, elapsed);
    let value = match (given, made) {
        (Some(v), _) => Some(v),
        (None, Some(id)) => {
            let mut buf = [0u8; 32];
            HeaderValue::from_bytes(id.write(&mut buf)).ok()
        }
        (None, None) => None,
    };
    let id = value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info!(
        request_id = id,
        method = metrics::METHODS[method_slot],
        route = state.metrics.route_label(route),
        status,
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    if let Some(v) = value {
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
    let timeout = state.config.header_read_timeout;
    conn::serve(listener, app(state), timeout, shutdown).await
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
