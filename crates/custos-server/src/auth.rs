//! Authentication (`Authorization: Bearer <key>`) and role checks.
//!
//! The [`Auth`] extractor turns the bearer key into a [`Principal`] or answers
//! 401. Handlers then ask for the role they need with [`Auth::require`]; a
//! principal's actor is always its key's, so no request can name another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
pub use custos_vault::access::{Principal, Role};

use crate::AppState;
use crate::problem::{ApiError, ProblemKind};

/// The authenticated caller (shared with the principal cache: a request
/// clones a pointer, not the principal's strings).
#[derive(Debug, Clone)]
pub struct Auth(pub Arc<Principal>);

impl Auth {
    /// Fails with 403 unless the principal has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<&Principal, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!("a {} key may not {what}", self.0.role.as_str())))
        }
    }

    /// Fails with 403 unless the principal's role may read personal data.
    /// Whether it may read for a given purpose is not decided here: a service
    /// key's reads carry its [`Principal::scope`] to the decision engine.
    pub fn require_reader(&self) -> Result<&Principal, ApiError> {
        match self.0.role {
            Role::Admin | Role::Service => Ok(&self.0),
            Role::Auditor => {
                Err(ApiError::forbidden(format!("a {} key may not read personal data", self.0.role.as_str())))
            }
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        // Authenticated already by a layer in front (the idempotency layer).
        if let Some(auth) = parts.extensions.get::<Auth>() {
            return Ok(auth.clone());
        }
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(ApiError::new(ProblemKind::Unauthorized, "send `Authorization: Bearer <API key>`"));
        };
        // Never pick one of several: a proxy and the client could disagree on which counts.
        if values.next().is_some() {
            return Err(ApiError::new(ProblemKind::Unauthorized, "send exactly one Authorization header"));
        }
        let Some(key) = value.to_str().ok().and_then(bearer_token) else {
            return Err(ApiError::new(
                ProblemKind::Unauthorized,
                "the Authorization header must be `Bearer <API key>`",
            ));
        };
        let hash = custos_crypto::sha256(key.as_bytes());
        if let Some(principal) = state.principals.get(&hash) {
            return Ok(Auth(principal));
        }
        let key = zeroize::Zeroizing::new(key.to_string());
        let principal = state.run(move |vault| Ok(vault.authenticate(&key)?)).await?;
        let principal = Arc::new(
            principal.ok_or_else(|| ApiError::new(ProblemKind::Unauthorized, "the API key is unknown or revoked"))?,
        );
        state.principals.put(hash, principal.clone());
        Ok(Auth(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer k", "bearer k", "BEARER k", "bEaReR   k ", "Bearer\tk"] {
            assert_eq!(bearer_token(v), Some("k"), "{v:?}");
        }
        for v in ["Basic k", "Bearer", "Bearer ", "Bearerk", "Token k"] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme name is
/// case-insensitive (RFC 9110, section 11.1) and may be followed by more than
/// one space; the token is the rest, trimmed.
pub fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A cached principal and when it was authenticated.
type Cached = (Arc<Principal>, Instant);

/// Recently authenticated keys, by the SHA-256 of the key, so that a busy
/// client does not cost a store lookup per request. An entry lives for
/// [`PrincipalCache::TTL`]: a key revoked (by `custos key revoke`, possibly in
/// another process) stops working within that time. Unknown keys are never cached.
#[derive(Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

impl PrincipalCache {
    /// How long an authenticated key is trusted without asking the store again.
    pub const TTL: Duration = Duration::from_secs(1);
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, hash: &[u8; 32]) -> Option<Arc<Principal>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(hash).filter(|(_, at)| at.elapsed() < Self::TTL).map(|(p, _)| p.clone())
    }

    fn put(&self, hash: [u8; 32], principal: Arc<Principal>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (principal, Instant::now()));
    }
}
