//! Errors as `application/problem+json` (RFC 9457), from one table.
//!
//! Every error the API returns is a [`Problem`]: a stable `code` (also the last
//! segment of `type`), the HTTP status, a title, and a detail for the caller.
//! Denials carry the decision's reason code. 5xx problems carry a generic
//! detail; their cause is logged (never with personal values), not returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:custos:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request (never a personal value).
    pub detail: String,
    /// Stable machine-readable code, e.g. `denied`, `invalid_request`, `unauthorized`.
    pub code: String,
    /// For denials: the decision's reason code, e.g. `consent_missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One row of the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Malformed input, unknown ids, invalid values: 400.
    InvalidRequest,
    /// No key or an unknown or revoked key: 401.
    Unauthorized,
    /// The key's role does not allow this: 403.
    Forbidden,
    /// The decision engine denied the request: 403 with a reason.
    Denied,
    /// No such subject, item or token: 404.
    NotFound,
    /// The thing exists already, or an idempotency key was reused with another request: 409.
    Conflict,
    /// The body is larger than the configured limit: 413.
    PayloadTooLarge,
    /// The body is not JSON (or NDJSON) as declared: 415.
    UnsupportedMediaType,
    /// No such route: 404.
    NoRoute,
    /// No such method on this route: 405.
    MethodNotAllowed,
    /// A failure inside Custos: 500, generic detail.
    Internal,
    /// Not ready to serve: 503.
    Unavailable,
}

impl ProblemKind {
    /// Status, code and title.
    pub fn describe(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ProblemKind::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid_request", "The request is invalid"),
            ProblemKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "A valid API key is required"),
            ProblemKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "The API key's role does not allow this"),
            ProblemKind::Denied => (StatusCode::FORBIDDEN, "denied", "Denied by the privacy policy"),
            ProblemKind::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ProblemKind::Conflict => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ProblemKind::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large")
            }
            ProblemKind::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            ProblemKind::NoRoute => (StatusCode::NOT_FOUND, "no_route", "No such route"),
            ProblemKind::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed on this route")
            }
            ProblemKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
            ProblemKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Not ready"),
        }
    }
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    reason: Option<String>,
}

impl ApiError {
    /// An error of `kind` with a detail for the caller.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        ApiError { kind, detail: detail.into(), reason: None }
    }

    /// 400 with a detail.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidRequest, detail)
    }

    /// 403 for a role that may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }

    /// 500; `cause` is logged, the caller sees a generic detail.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        Self::new(ProblemKind::Internal, "an internal error occurred; it has been logged")
    }

    /// The kind of problem.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.kind.describe();
        Problem {
            kind: format!("urn:custos:problem:{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: code.to_string(),
            reason: self.reason.clone(),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Invalid(msg) => ApiError::invalid(msg),
            VaultError::Denied(d) => {
                ApiError { kind: ProblemKind::Denied, detail: d.sentence, reason: Some(d.reason.code().to_string()) }
            }
            VaultError::SubjectNotFound => ApiError::new(ProblemKind::NotFound, "no subject with this id"),
            VaultError::SubjectExists => ApiError::new(ProblemKind::Conflict, "a subject with this id already exists"),
            e @ VaultError::ItemNotFound(_) => ApiError::new(ProblemKind::NotFound, e.to_string()),
            VaultError::TokenNotFound => ApiError::new(ProblemKind::NotFound, "no such token"),
            // A data key wrapped under a master key this server does not hold,
            // or a store rotated to one: not a fault of the request, and not
            // fixed by retrying on this process; the operator must restart it.
            e @ (VaultError::Crypto(custos_crypto::CryptoError::UnknownKey)
            | VaultError::Identity(custos_vault::IdentityError::RotatedAway { .. })) => {
                tracing::error!(cause = %e, "the master key was rotated by another process");
                ApiError::new(
                    ProblemKind::Unavailable,
                    "this server does not hold the store's current master key (it was rotated); restart it with the new key",
                )
            }
            e @ (VaultError::Crypto(_) | VaultError::Store(_)) => ApiError::internal(&e),
            e @ VaultError::Identity(_) => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.kind == ProblemKind::Unauthorized {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_code_and_an_error_status() {
        let kinds = [
            ProblemKind::InvalidRequest,
            ProblemKind::Unauthorized,
            ProblemKind::Forbidden,
            ProblemKind::Denied,
            ProblemKind::NotFound,
            ProblemKind::Conflict,
            ProblemKind::PayloadTooLarge,
            ProblemKind::UnsupportedMediaType,
            ProblemKind::NoRoute,
            ProblemKind::MethodNotAllowed,
            ProblemKind::Internal,
            ProblemKind::Unavailable,
        ];
        let mut codes = std::collections::HashSet::new();
        for k in kinds {
            let (status, code, _) = k.describe();
            assert!(status.is_client_error() || status.is_server_error());
            assert!(codes.insert(code), "{code} twice");
        }
    }

    #[test]
    fn a_key_this_server_does_not_hold_is_unavailable_not_internal() {
        let unknown = ApiError::from(VaultError::Crypto(custos_crypto::CryptoError::UnknownKey));
        assert_eq!(unknown.kind(), ProblemKind::Unavailable);
        let rotated = ApiError::from(VaultError::Identity(custos_vault::IdentityError::RotatedAway {
            recorded: "aa".into(),
            held: "bb".into(),
        }));
        assert_eq!(rotated.kind(), ProblemKind::Unavailable);
        assert!(rotated.problem().detail.contains("restart it with the new key"));
        let tampered = ApiError::from(VaultError::Crypto(custos_crypto::CryptoError::Unauthentic));
        assert_eq!(tampered.kind(), ProblemKind::Internal);
    }

    #[test]
    fn an_internal_error_does_not_echo_its_cause() {
        let e = ApiError::internal(&"disk full while writing secret@example.org");
        assert!(!e.problem().detail.contains("secret"));
        assert_eq!(e.problem().status, 500);
    }
}
