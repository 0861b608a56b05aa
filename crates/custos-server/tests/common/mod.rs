//! The server in-process with the bundled policy and an admin key, over an
//! in-memory SQLite store, or over PostgreSQL — a fresh database per test,
//! dropped when the test ends — when `CUSTOS_TEST_BACKEND=postgres` (the
//! storage is `custos_test_support`'s).
//!
//! The PostgreSQL server is `CUSTOS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). A server that cannot be reached is an
//! error that fails the test and says so: these tests never skip silently.
//!
//! The PostgreSQL store's synchronous client blocks on a runtime of its own,
//! which tokio refuses inside the test's runtime (the server itself calls the
//! store only from its blocking pool). So whatever a test does to the vault
//! directly goes through [`Fixture::with_vault`], and the store and its
//! database are released on a thread of their own when the fixture goes.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use custos_core::policy::Policy;
use custos_core::time::SystemClock;
use custos_crypto::{Keyring, MasterKey};
use custos_server::auth::Role;
use custos_server::{AppState, Config, SharedVault};
use custos_test_support::{TestStorage, TestStore};
use custos_vault::{By, Vault};
use tower::ServiceExt as _;

pub const POLICY: &str = include_str!("../../../../examples/aws-privacy-notice-2020-01-24.yaml");

/// How long a fixture that goes waits for tasks still holding its state
/// (a request that outlives its client) to let go of the store.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

pub struct Fixture {
    pub state: Arc<AppState>,
    pub admin: String,
    /// Declared after `state`, so dropped after it: the store is released
    /// once the state (and with it the vault) has let go of it.
    _backing: Backing,
}

/// A vault over `store` with the bundled policy and a fresh master key.
pub fn vault(store: TestStore) -> SharedVault {
    let policy = Arc::new(Policy::from_yaml(POLICY).expect("the bundled policy loads"));
    let keys = Keyring::new(&MasterKey::generate().expect("a master key")).expect("a keyring");
    Vault::new(policy, store, keys, Arc::new(SystemClock))
}

/// The server's state over a fresh store, with an admin key. On PostgreSQL an
/// unreachable server fails the test ("PostgreSQL is not reachable …").
pub fn fixture() -> Fixture {
    off_runtime(|| {
        let storage = TestStorage::fresh()?;
        let store = storage.open()?;
        let vault = vault(store.clone());
        let admin = vault.create_api_key(Role::Admin, None, &[], &By::Cli).map_err(|e| format!("an admin key: {e}"))?;
        Ok::<_, String>(Fixture {
            state: AppState::new(vault, Config::default()),
            admin: admin.secret.to_string(),
            _backing: Backing { store: Some(store), storage: Some(storage) },
        })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// [`fixture`] with its own limits and clock (e.g. a [`custos_core::time::FixedClock`] a test moves).
pub fn fixture_with(config: Config, clock: Arc<dyn custos_core::time::Clock>) -> Fixture {
    off_runtime(|| {
        let storage = TestStorage::fresh()?;
        let store = storage.open()?;
        let policy = Arc::new(Policy::from_yaml(POLICY).map_err(|e| format!("the bundled policy: {e}"))?);
        let keys = Keyring::new(&MasterKey::generate().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let vault = Vault::new(policy, store.clone(), keys, clock);
        let admin = vault.create_api_key(Role::Admin, None, &[], &By::Cli).map_err(|e| format!("an admin key: {e}"))?;
        Ok::<_, String>(Fixture {
            state: AppState::new(vault, config),
            admin: admin.secret.to_string(),
            _backing: Backing { store: Some(store), storage: Some(storage) },
        })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on a thread of its own, outside the test's async runtime, and
/// returns what it returns (a panic in `f` goes on in the caller).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

impl Fixture {
    pub fn app(&self) -> Router {
        custos_server::app(self.state.clone())
    }

    /// Calls the vault directly, as the server does: off the async runtime.
    pub fn with_vault<T: Send>(&self, f: impl FnOnce(&SharedVault) -> T + Send) -> T {
        let vault = &*self.state.vault;
        off_runtime(|| f(vault))
    }

    /// Another admin key.
    pub fn new_admin_key(&self) -> String {
        self.new_key(Role::Admin)
    }

    /// A new key with `role` (and no actor or purposes).
    pub fn new_key(&self, role: Role) -> String {
        self.with_vault(|v| v.create_api_key(role, None, &[], &By::Cli).expect("a key").secret.to_string())
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
        self.with_vault(|v| v.store().audit_head().expect("the audit head").seq)
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

/// The store under a fixture's vault and the storage it lives in. On
/// PostgreSQL, dropping it waits (on a thread of its own) until no one else
/// holds the store, then closes the store and drops the test's database.
struct Backing {
    store: Option<TestStore>,
    storage: Option<TestStorage>,
}

impl Drop for Backing {
    fn drop(&mut self) {
        let (store, storage) = (self.store.take(), self.storage.take());
        if !storage.as_ref().is_some_and(TestStorage::is_postgres) {
            return;
        }
        let release = move || {
            if let Some(store) = store {
                let deadline = Instant::now() + RELEASE_WAIT;
                while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if Arc::strong_count(&store) > 1 {
                    eprintln!(
                        "the test's store is still in use {RELEASE_WAIT:?} after the test; dropping its database"
                    );
                }
                drop(store);
            }
            drop(storage);
        };
        // Not `off_runtime`: a panic here must not become a panic in a drop.
        if std::thread::spawn(release).join().is_err() {
            eprintln!("releasing the test's PostgreSQL store panicked");
        }
    }
}
