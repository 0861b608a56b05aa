//! `Idempotency-Key` on writes: a retried request with the same key returns
//! the first result and writes nothing new.
//!
//! [`middleware`] wraps every write route ([`crate::WRITE_ROUTES`]); requests
//! without the header pass straight through. With it, the middleware:
//!
//! 1. authenticates the caller (the principal is handed on to the handler in
//!    the request's extensions, so the key is looked up once) and checks the
//!    header: 1 to 255 visible ASCII characters, else 400;
//! 2. scopes the key by the API key's id (`{key_id}:{client_key}`), so two
//!    callers can never see each other's responses, and fingerprints the
//!    request as SHA-256 of its method, path and body;
//! 3. takes an in-process lock on the scoped key ([`InFlight`]), so two
//!    concurrent requests with the same key run one after the other: the
//!    second waits, then finds the first one's response;
//! 4. if a response is recorded for the key: the same fingerprint replays its
//!    status and body with `Idempotent-Replayed: true`; a different one is a
//!    409 (`idempotency key reused with a different request`);
//! 5. otherwise runs the handler and records its response, unless it is a 5xx:
//!    a retry after a server error runs again.
//!
//! Only write responses are recorded. They carry versions, counts and
//! metadata, never a personal value, so storing them keeps the invariant that
//! no personal value is stored in clear. Read routes never pass through here.
//!
//! # What this does not cover
//!
//! - **The crash window.** The write and the record of its response are two
//!   transactions: a process that dies after the write commits and before the
//!   response is recorded leaves no record, and a retry runs the write again.
//!   (The handler and the record run in a task of their own, so a client
//!   hanging up does not open this window; only a crash does.)
//! - **Several processes over one store.** The lock is in-process. Two server
//!   processes sharing a database can both run a request with the same key;
//!   the second to record gets [`StoreError::IdempotencyKeyExists`], which is
//!   logged, and both writes happen.
//! - **Expiry.** Recorded responses are kept; nothing prunes them yet.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use custos_store::{IdempotentResponse, StoreError};
use tokio::sync::Notify;

use crate::AppState;
use crate::auth::Auth;
use crate::problem::{ApiError, ProblemKind};

/// The request header naming an idempotency key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The response header marking a replayed response.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest idempotency key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// The detail of the 409 for a key reused with another request.
pub const REUSED: &str = "idempotency key reused with a different request";

/// Scoped idempotency keys with a request in progress in this process.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<String>>,
    released: Notify,
}

impl InFlight {
    /// Waits until no other request holds `key`, then holds it until the
    /// guard is dropped.
    pub async fn acquire(self: &Arc<Self>, key: String) -> KeyGuard {
        loop {
            // Registered before the check, so a release between the check and
            // the wait is not missed.
            let released = self.released.notified();
            {
                let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
                if !keys.contains(&key) {
                    keys.insert(key.clone());
                    return KeyGuard { inflight: self.clone(), key };
                }
            }
            released.await;
        }
    }

    /// How many keys are held now.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Holds a key of [`InFlight`]; dropping it lets the next request with the key run.
#[derive(Debug)]
pub struct KeyGuard {
    inflight: Arc<InFlight>,
    key: String,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.inflight.keys.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
        self.inflight.released.notify_waiters();
    }
}

/// Checks an `Idempotency-Key` value: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn validate_key(value: &HeaderValue) -> Result<&str, ApiError> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::invalid(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"
        )));
    }
    value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))
}

/// SHA-256 of the method, the path (with its query) and the body, each
/// length-prefixed so that no two requests share an encoding.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    const DOMAIN: &[u8] = b"custos-idempotency-v1";
    let mut buf = Vec::with_capacity(DOMAIN.len() + 24 + method.as_str().len() + path.len() + body.len());
    buf.extend_from_slice(DOMAIN);
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
        buf.extend_from_slice(part);
    }
    custos_crypto::sha256(&buf)
}

/// The idempotency layer of a write route (see the module documentation).
pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(&IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    match prepare(&state, req).await {
        Ok(prepared) => {
            // Its own task: a client that hangs up cannot stop it between the
            // write and the record of the response.
            let task = tokio::spawn(run_once(state, prepared, next));
            match task.await {
                Ok(resp) => resp,
                Err(e) => ApiError::internal(&e).into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

/// A request ready to run once: its scoped key, fingerprint, and itself with
/// the body buffered and the principal in its extensions.
struct Prepared {
    key: String,
    fingerprint: [u8; 32],
    req: Request,
}

async fn prepare(state: &Arc<AppState>, req: Request) -> Result<Prepared, ApiError> {
    let (mut parts, body) = req.into_parts();
    let auth = Auth::from_request_parts(&mut parts, state).await?;
    let mut values = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::invalid("send one Idempotency-Key header"));
    };
    let key = format!("{}:{}", auth.0.key_id, validate_key(value)?);
    parts.extensions.insert(auth);
    // Read under the route's body limit (DefaultBodyLimit sits in the extensions).
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ProblemKind::PayloadTooLarge, "the body is larger than the configured limit")
        } else {
            ApiError::invalid(format!("cannot read the body: {}", e.body_text()))
        }
    })?;
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |p| p.as_str());
    let fingerprint = fingerprint(&parts.method, path, &bytes);
    Ok(Prepared { key, fingerprint, req: Request::from_parts(parts, Body::from(bytes)) })
}

async fn run_once(state: Arc<AppState>, prepared: Prepared, next: Next) -> Response {
    let Prepared { key, fingerprint, req } = prepared;
    let _held = state.idempotency.acquire(key.clone()).await;
    let lookup_key = key.clone();
    let recorded =
        state.run(move |v| v.store().idempotent_response(&lookup_key).map_err(|e| ApiError::internal(&e))).await;
    match recorded {
        Err(e) => return e.into_response(),
        Ok(Some(first)) if first.fingerprint == fingerprint => return replay(&first),
        Ok(Some(_)) => return ApiError::new(ProblemKind::Conflict, REUSED).into_response(),
        Ok(None) => {}
    }
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_server_error() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let record_body = body.to_vec();
    let saved = state
        .run(move |v| {
            let response = IdempotentResponse {
                fingerprint,
                status: status.as_u16(),
                body: record_body,
                created_at: v.clock_now(),
            };
            Ok(v.store().save_idempotent_response(&key, &response))
        })
        .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(StoreError::IdempotencyKeyExists)) => {
            tracing::warn!("an idempotency key was recorded by another process while this request ran");
        }
        Ok(Err(e)) => tracing::error!(cause = %e, "cannot record an idempotent response; a retry will run again"),
        Err(_) => tracing::error!("cannot record an idempotent response; a retry will run again"),
    }
    Response::from_parts(parts, Body::from(body))
}

/// The recorded response again. Write routes answer JSON, and problem+json
/// for errors, so the content type follows from the status.
fn replay(first: &IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() { "application/problem+json" } else { "application/json" };
    let mut resp = (status, first.body.clone()).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        let ok = |s: &str| validate_key(&HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))).is_ok();
        assert!(ok("a"));
        assert!(ok("retry-7f3c_ok~!"));
        assert!(ok(&"k".repeat(255)));
        assert!(!ok(""));
        assert!(!ok(&"k".repeat(256)));
        assert!(!ok("two words"));
        assert!(!ok("tab\there"));
        let non_ascii = HeaderValue::from_bytes("clé".as_bytes()).unwrap_or(HeaderValue::from_static(""));
        assert!(validate_key(&non_ascii).is_err());
    }

    #[test]
    fn fingerprints_differ_by_method_path_and_body() {
        let a = fingerprint(&Method::PUT, "/v1/x", b"{}");
        assert_eq!(a, fingerprint(&Method::PUT, "/v1/x", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/x", b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, "/v1/y", b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, "/v1/x", b"{ }"));
        // Length prefixes: moving bytes between path and body changes the fingerprint.
        assert_ne!(fingerprint(&Method::PUT, "/v1/x", b"ab"), fingerprint(&Method::PUT, "/v1/xa", b"b"));
    }

    #[tokio::test]
    async fn a_held_key_makes_the_next_holder_wait() {
        let inflight = Arc::new(InFlight::default());
        let first = inflight.acquire("k:1".into()).await;
        let other = inflight.acquire("k:2".into()).await;
        let waiter = {
            let inflight = inflight.clone();
            tokio::spawn(async move {
                let _g = inflight.acquire("k:1".into()).await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second holder must wait for the first");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .map_err(|_| "the waiter was not woken")
            .and_then(|r| r.map_err(|_| "the waiter panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(other);
        assert!(inflight.is_empty());
    }
}
