//! Extractors whose rejections are problem+json with a precise message.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ProblemKind};

/// A JSON body; malformed JSON, unknown fields, wrong types, a missing or
/// wrong content type and oversized bodies become 4xx problems.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_rejection(&e)),
        }
    }
}

/// Maps a JSON rejection to a problem. serde's messages name fields, types and
/// positions, never the submitted values of strings.
pub fn json_rejection(e: &JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(ProblemKind::UnsupportedMediaType, "send the body as `Content-Type: application/json`")
        }
        JsonRejection::BytesRejection(b) if b.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ProblemKind::PayloadTooLarge, "the body is larger than the configured limit")
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid(format!("malformed JSON: {}", source_message(e))),
        JsonRejection::JsonDataError(e) => ApiError::invalid(format!("invalid body: {}", source_message(e))),
        other => ApiError::invalid(format!("invalid body: {}", other.body_text())),
    }
}

fn source_message(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg = s.to_string();
        cur = s.source();
    }
    scrub(&msg)
}

/// Removes quoted string values serde may echo (`invalid type: string "…"`),
/// so a personal value sent in the wrong field never comes back in an error.
pub fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + "string \"".len()..];
        rest = match after.find('"') {
            Some(j) => &after[j + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// Query parameters, with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::invalid(format!("invalid query string: {}", source_message(&e))))
            }
            Err(e) => Err(ApiError::invalid(format!("invalid query string: {}", e.body_text()))),
        }
    }
}

/// Path parameters, with problem+json rejections (e.g. a segment that is not UTF-8).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::MissingPathParams(e)) => Err(ApiError::internal(&e.body_text())),
            Err(e) => Err(ApiError::invalid(format!("invalid path: {}", scrub(&e.body_text())))),
        }
    }
}

/// The raw body, with problem+json rejections (413 over the route's limit).
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(ApiBytes(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(ProblemKind::PayloadTooLarge, "the body is larger than the configured limit"))
            }
            Err(e) => Err(ApiError::invalid(format!("cannot read the body: {}", e.body_text()))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn echoed_string_values_are_scrubbed() {
        assert_eq!(
            super::scrub("invalid type: string \"alice@example.org\", expected u32 at line 1 column 9"),
            "invalid type: a string, expected u32 at line 1 column 9"
        );
        assert_eq!(super::scrub("unknown field `colour`"), "unknown field `colour`");
    }
}
