//! `Idempotency-Key` on writes: a retried request with the same key returns
//! the first result and writes nothing new.
//!
//! [`middleware_limited`] wraps every write route ([`crate::WRITE_ROUTES`])
//! with the route's body limit; requests without the header pass straight
//! through. With it, the middleware:
//!
//! 1. authenticates the caller (the principal is handed on to the handler in
//!    the request's extensions, so the key is looked up once) and checks the
//!    header: 1 to 255 visible ASCII characters, else 400;
//! 2. scopes the key by the API key's id (`{key_id}:{client_key}`), so two
//!    callers can never see each other's responses;
//! 3. takes an in-process lock on the scoped key ([`InFlight`]), so two
//!    concurrent requests with the same key run one after the other: the
//!    second waits, then finds the first one's response;
//! 4. looks up a live response recorded for the key (one younger than
//!    [`crate::Config::idempotency_ttl`], 24 hours by default; an expired
//!    record is treated as absent);
//! 5. fingerprints the request as HMAC-SHA256 of the scoped key, method, path
//!    and body under a key derived from the master key
//!    ([`custos_vault::Vault::idempotency_fingerprint`]): a guessed request
//!    cannot be checked against a stored fingerprint. The body is never held
//!    for this: it is fed to the HMAC as it streams past
//!    ([`custos_vault::FingerprintContext`]), so a 60 MB ingestion batch
//!    costs what it costs without the header. (The HMAC takes the body's
//!    length before its bytes: a body without `Content-Length`, chunked, is
//!    read whole first, under the route's limit.) A body over the limit is a
//!    413 and is not recorded;
//! 6. with a record, reads the body through the fingerprint, keeping none of
//!    it: the same fingerprint replays the recorded status and body with
//!    `Idempotent-Replayed: true`; a different one is a 409 (`idempotency key
//!    reused with a different request`);
//! 7. without one, runs the handler on the body as it streams in, while the
//!    fingerprint and the scan for the subjects it names ([`named_subjects`])
//!    see each piece; then, once the body has been read to its end (what the
//!    handler left unread is read and discarded), records the response,
//!    unless it is a 5xx: a retry after a server error runs again. Recording
//!    prunes every expired record in the same transaction.
//!
//! A record holds nothing personal in clear. Write responses can echo a
//! subject id (which can itself be an email address) and the metadata given
//! at creation, and 4xx bodies can describe the input, so every recorded body
//! is sealed under a key derived from the master key, bound to the scoped key
//! ([`custos_vault::Vault::seal_idempotent_body`]). Each record lists, by
//! pseudonym, the subjects its request named (the `{id}` of the path, the
//! `id` of a created subject, the `subject` of each ingested line), and
//! erasing a subject deletes those records in the erasure's transaction.
//! Read routes never pass through here.
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
//! - **Records before the upgrade.** Migration 6 dropped the records made
//!   before fingerprints were keyed and bodies sealed; a retry of such a
//!   request runs again as a new one.

mod tap;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use custos_core::time::Timestamp;
use custos_store::{IdempotentResponse, StoreError};
use custos_vault::FingerprintContext;
use http_body_util::{BodyExt, LengthLimitError};
use tokio::sync::Notify;

use crate::AppState;
use crate::auth::Auth;
use crate::problem::{ApiError, ProblemKind};
#[cfg(test)]
use tap::percent_decode;
use tap::{Names, Tap};

/// The request header naming an idempotency key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The response header marking a replayed response.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest idempotency key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// The detail of the 409 for a key reused with another request.
pub const REUSED: &str = "idempotency key reused with a different request";

/// How long a recorded response is replayed unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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
        return Err(ApiError::new(
            ProblemKind::InvalidIdempotencyKey,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"),
        ));
    }
    value
        .to_str()
        .map_err(|_| ApiError::new(ProblemKind::InvalidIdempotencyKey, "Idempotency-Key must be visible ASCII"))
}

/// The subject ids a write request names: the `{id}` of a `/v1/subjects/{id}/…`
/// path, the `id` of a created subject, the `subject` of each ingested line
/// (see [`tap::Names`], which finds them as the body streams past).
pub fn named_subjects(path: &str, body: &[u8]) -> BTreeSet<String> {
    let mut names = Names::for_request(path, body.len());
    names.feed(body);
    names.finish()
}

/// The oldest creation time of a record still live at `now`.
fn live_since(now: Timestamp, ttl: Duration) -> Timestamp {
    Timestamp(now.0.saturating_sub(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)))
}

/// The idempotency layer of a write route whose body limit is the default
/// [`crate::Config::max_body_bytes`] (see the module documentation).
pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.config.max_body_bytes;
    middleware_limited(State((state, limit)), req, next).await
}

/// The idempotency layer of a write route whose body limit is `limit` bytes.
pub async fn middleware_limited(
    State((state, limit)): State<(Arc<AppState>, usize)>,
    req: Request,
    next: Next,
) -> Response {
    if !req.headers().contains_key(&IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let key = match scoped_key(&state, &mut parts).await {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    // Its own task: a client that hangs up cannot stop it between the write
    // and the record of the response.
    let task = tokio::spawn(async move {
        run_once(&state, key, limit, parts, body, next).await.unwrap_or_else(IntoResponse::into_response)
    });
    match task.await {
        Ok(resp) => resp,
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// Authenticates the caller (handing the principal on in the extensions) and
/// returns the idempotency key scoped by the API key's id.
async fn scoped_key(state: &Arc<AppState>, parts: &mut Parts) -> Result<String, ApiError> {
    let auth = Auth::from_request_parts(parts, state).await?;
    let mut values = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::new(ProblemKind::InvalidIdempotencyKey, "send one Idempotency-Key header"));
    };
    let key = format!("{}:{}", auth.0.key_id, validate_key(value)?);
    parts.extensions.insert(auth);
    Ok(key)
}

fn too_large() -> ApiError {
    ApiError::new(ProblemKind::PayloadTooLarge, "the body is larger than the configured limit")
}

fn unreadable() -> ApiError {
    ApiError::new(ProblemKind::UnreadableBody, "cannot read the body")
}

/// Runs a request under its key once: replays or refuses it if a response is
/// recorded for the key, else runs the handler on the body as it streams in
/// and records its response.
async fn run_once(
    state: &Arc<AppState>,
    key: String,
    limit: usize,
    parts: Parts,
    body: Body,
    next: Next,
) -> Result<Response, ApiError> {
    let ttl = state.config.idempotency_ttl;
    let _held = state.idempotency.acquire(key.clone()).await;
    let lookup_key = key.clone();
    let recorded = state
        .run(move |v| {
            let since = live_since(v.clock_now(), ttl);
            v.store().idempotent_response(&lookup_key, since).map_err(|e| ApiError::internal(&e))
        })
        .await?;
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |p| p.as_str()).to_owned();
    let (body, len) = sized(body, limit).await?;
    let vault = &state.vault;
    let mut fingerprint = vault
        .idempotency_fingerprint_context(&key, parts.method.as_str(), &path, len)
        .map_err(|e| ApiError::internal(&e))?;
    if let Some(first) = recorded {
        drain(body, &mut fingerprint).await?;
        if fingerprint.finish() != Some(first.fingerprint) {
            return Err(ApiError::new(ProblemKind::Conflict, REUSED));
        }
        let status = first.status;
        let body =
            state.run(move |v| v.open_idempotent_body(&key, &first.body).map_err(|e| ApiError::internal(&e))).await?;
        return Ok(replay(status, body.to_vec()));
    }
    // `len` is at most `limit`, a `usize`.
    let names = Names::for_request(&path, usize::try_from(len).unwrap_or(limit));
    let (body, seen) = Tap::wrap(body, fingerprint, names);
    let resp = next.run(Request::from_parts(parts, body)).await;
    let status = resp.status();
    if status.is_server_error() {
        return Ok(resp);
    }
    let Some(seen) = tap::take(&seen) else {
        tracing::warn!("a handler kept the request body; its response is not recorded");
        return Ok(resp);
    };
    let Some((fingerprint, named)) = seen.finish().await else {
        // The body could not be read to its end: there is no request to fingerprint.
        return Ok(resp);
    };
    let (parts, body) = resp.into_parts();
    // A handler's response is one buffer: this takes it, it does not copy it.
    let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| ApiError::internal(&e))?;
    let sealed = vault.seal_idempotent_body(&key, &body).map_err(|e| ApiError::internal(&e))?;
    let subjects = named.iter().map(|id| vault.pseudonym(id)).collect();
    let saved = state
        .run(move |v| {
            let now = v.clock_now();
            let response =
                IdempotentResponse { fingerprint, status: status.as_u16(), body: sealed, created_at: now, subjects };
            Ok(v.store().save_idempotent_response(&key, &response, live_since(now, ttl)))
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
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The body and its length, refused if over `limit`. The fingerprint holds
/// the body's length before its bytes, so a body of unannounced length
/// (chunked) is read whole first, under the limit; one with a
/// `Content-Length` streams.
async fn sized(body: Body, limit: usize) -> Result<(Body, u64), ApiError> {
    match body.size_hint().exact() {
        Some(len) if len > u64::try_from(limit).unwrap_or(u64::MAX) => Err(too_large()),
        Some(len) => Ok((body, len)),
        None => {
            let bytes = match axum::body::to_bytes(body, limit).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let over = std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>());
                    return Err(if over { too_large() } else { unreadable() });
                }
            };
            let len = bytes.len() as u64;
            Ok((Body::from(bytes), len))
        }
    }
}

/// Reads the body through the fingerprint, keeping none of it (a retry
/// answered from the record).
async fn drain(mut body: Body, fingerprint: &mut FingerprintContext) -> Result<(), ApiError> {
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| unreadable())?.into_data() else { continue };
        fingerprint.update(&data);
        crate::secret::wipe_bytes(data);
        if fingerprint.is_overfed() {
            return Err(unreadable());
        }
    }
    Ok(())
}

/// The recorded response again. Write routes answer JSON, and problem+json
/// for errors, so the content type follows from the status.
fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() { "application/problem+json" } else { "application/json" };
    let mut resp = (status, body).into_response();
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
    fn the_subjects_a_request_names_are_found_in_its_path_or_body() {
        let names = |path: &str, body: &[u8]| named_subjects(path, body).into_iter().collect::<Vec<_>>();
        assert_eq!(names("/v1/subjects/alice%40example.org/data/contact.email", b"{}"), ["alice@example.org"]);
        assert_eq!(names("/v1/subjects/bob/erasure?x=1", b""), ["bob"]);
        assert_eq!(names("/v1/subjects", br#"{"id":"carol","jurisdiction":"eea"}"#), ["carol"]);
        assert_eq!(
            names(
                "/v1/ingest",
                b"{\"subject\":\"b\",\"value\":\"x\"}\n\nnot json\n{\"subject\":\"a\"}\n{\"subject\":\"b\"}"
            ),
            ["a", "b"]
        );
        assert!(names("/v1/subjects", b"not json").is_empty());
        assert_eq!(percent_decode("a%2Fb%zz%4"), Some("a/b%zz%4".to_string()));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn a_record_is_live_for_the_ttl() {
        let now = Timestamp(10 * 3_600_000_000);
        assert_eq!(live_since(now, Duration::from_secs(3600)), Timestamp(9 * 3_600_000_000));
        assert_eq!(live_since(Timestamp(0), Duration::MAX).0, -i64::MAX);
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
