//! Extractors whose rejections are problem+json with a precise message that
//! never repeats the input.
//!
//! serde's messages quote what they were given (`invalid type: integer
//! `4111111111111111``, `unknown field `alice@example.org``), so they are never
//! passed on. A problem's detail is built from three things only: the error's
//! category (malformed JSON, wrong type, missing field, unknown field …), the
//! path of the field (names from the request type, never keys or values from
//! the input) and the type that was expected (serde's `expected …` text, kept
//! only if it is made of identifiers and punctuation).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ProblemKind};
use crate::secret::wipe_bytes;

/// A JSON body; malformed JSON, unknown fields, wrong types, a missing or
/// wrong content type and oversized bodies become 4xx problems. The body's
/// bytes are wiped once it is parsed.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "send the body as `Content-Type: application/json`",
            ));
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        let parsed = parse_json(&bytes, "body");
        wipe_bytes(bytes);
        parsed.map(ApiJson)
    }
}

/// Whether the request declares a JSON body (`application/json`, or `application/*+json`).
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON into `T`; an error is a 400 whose detail names only the
/// category, the field path and the expected type. `what` names the input
/// (`body`, `line`).
pub fn parse_json<T: DeserializeOwned>(input: &[u8], what: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::new(ProblemKind::InvalidBody, describe_json_error(e.inner(), Some(e.path()), what)))?;
    de.end().map_err(|e| ApiError::new(ProblemKind::InvalidBody, describe_json_error(&e, None, what)))?;
    Ok(value)
}

/// The detail of a JSON error (see the module documentation).
pub fn describe_json_error(inner: &serde_json::Error, path: Option<&serde_path_to_error::Path>, what: &str) -> String {
    let at = format!("line {} column {}", inner.line(), inner.column());
    match inner.classify() {
        serde_json::error::Category::Syntax => format!("malformed JSON in the {what} at {at}"),
        serde_json::error::Category::Eof => format!("the {what} ends before the JSON is complete ({at})"),
        serde_json::error::Category::Io => format!("the {what} could not be read"),
        serde_json::error::Category::Data => {
            // The last segment of an unknown field's path is its key, from the input: left out.
            let unknown = inner.to_string().starts_with("unknown field");
            let path = path.map(|p| safe_path(p, unknown)).unwrap_or_default();
            let field = if path.is_empty() { String::new() } else { format!(" at `{path}`") };
            format!("invalid {what}{field}: {}", describe_data_error(&inner.to_string()))
        }
    }
}

/// What a serde data error says, rebuilt from its category and its expected
/// type only. `msg` is serde's message; nothing of the input is copied out of it.
pub fn describe_data_error(msg: &str) -> String {
    let expected = expected_part(msg);
    let with_expected = |base: &str| match &expected {
        Some(exp) => format!("{base}; expected {exp}"),
        None => base.to_string(),
    };
    if msg.starts_with("invalid type") {
        with_expected("wrong type")
    } else if msg.starts_with("invalid value") {
        with_expected("invalid value")
    } else if msg.starts_with("invalid length") {
        with_expected("wrong number of elements")
    } else if msg.starts_with("unknown field") {
        match &expected {
            Some(exp) => format!("unknown field; expected {exp}"),
            None => "unknown field; this object takes no fields".to_string(),
        }
    } else if msg.starts_with("unknown variant") {
        with_expected("unknown value")
    } else if let Some(name) = msg.strip_prefix("missing field ").and_then(static_name) {
        format!("missing field `{name}`")
    } else if let Some(name) = msg.strip_prefix("duplicate field ").and_then(static_name) {
        format!("duplicate field `{name}`")
    } else if msg.contains("out of range") {
        "number out of range".to_string()
    } else {
        "the value does not fit the field".to_string()
    }
}

/// serde's `expected …` tail, if it is made of identifiers, spaces, commas,
/// hyphens and backquotes only (the names of fields, variants and types from
/// the request type), without serde_json's ` at line … column …` suffix. The
/// last `, expected ` is the one serde wrote: anything quoted from the input
/// comes before it.
fn expected_part(msg: &str) -> Option<String> {
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    };
    // serde's own endings when nothing was expected: what precedes them is the input.
    if msg.ends_with(", there are no fields") || msg.ends_with(", there are no variants") {
        return None;
    }
    let i = msg.rfind(", expected ")?;
    let exp = &msg[i + ", expected ".len()..];
    let safe =
        !exp.is_empty() && exp.len() <= 200 && exp.bytes().all(|b| b.is_ascii_alphanumeric() || b" _-,`.".contains(&b));
    safe.then(|| exp.to_string())
}

/// A name quoted as `` `name` `` by serde for a field of the request type.
fn static_name(quoted: &str) -> Option<&str> {
    let quoted = match quoted.find(" at line ") {
        Some(i) => &quoted[..i],
        None => quoted,
    };
    let name = quoted.strip_prefix('`')?.strip_suffix('`')?;
    is_identifier(name).then_some(name)
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A field path from the request type's names: identifiers and indices only;
/// any other segment (a key from the input) shows as `?`.
fn safe_path(path: &serde_path_to_error::Path, drop_last: bool) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let segments: Vec<&Segment> = path.iter().collect();
    let keep = if drop_last { segments.len().saturating_sub(1) } else { segments.len() };
    for seg in segments.into_iter().take(keep) {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if is_identifier(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } if is_identifier(variant) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            // The key of an unknown field: not shown.
            Segment::Unknown => {}
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// The innermost message of an error chain.
fn innermost(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg = s.to_string();
        cur = s.source();
    }
    msg
}

/// Query parameters, with problem+json rejections that name no input.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::new(
                ProblemKind::InvalidQuery,
                format!("invalid query string: {}", describe_data_error(&innermost(&e))),
            )),
            Err(_) => Err(ApiError::new(ProblemKind::InvalidQuery, "invalid query string")),
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
            Err(_) => Err(ApiError::new(
                ProblemKind::InvalidPath,
                "invalid path: a path segment is not valid percent-encoded UTF-8",
            )),
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
            Err(_) => Err(ApiError::new(ProblemKind::UnreadableBody, "cannot read the body")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        value: String,
        version: Option<u32>,
    }

    fn detail(body: &str) -> String {
        match parse_json::<Item>(body.as_bytes(), "body") {
            Ok(v) => panic!("{body} parsed as {v:?}"),
            Err(e) => e.problem().detail,
        }
    }

    #[test]
    fn details_name_the_field_and_the_expected_type_only() {
        assert_eq!(detail(r#"{"value": 4111111111111111}"#), "invalid body at `value`: wrong type; expected a string");
        assert_eq!(
            detail(r#"{"value": "x", "version": "4111111111111111"}"#),
            "invalid body at `version`: wrong type; expected u32"
        );
        assert_eq!(
            detail(r#"{"value": "x", "alice@example.org": 1}"#),
            "invalid body: unknown field; expected `value` or `version`"
        );
        assert_eq!(
            detail(r#"{"value": "x", "colour": 1}"#),
            "invalid body: unknown field; expected `value` or `version`"
        );
        assert_eq!(detail(r#"{"version": 1}"#), "invalid body: missing field `value`");
        assert!(
            detail(r#"{"value": "ab\"cd"#).starts_with("the body ends before"),
            "{}",
            detail(r#"{"value": "ab\"cd"#)
        );
        assert!(detail(r#"{"value": secret}"#).starts_with("malformed JSON in the body at line 1"));
        assert!(detail(r#"{"value": "x"} trailing"#).starts_with("malformed JSON"));
    }

    #[test]
    fn an_expected_part_forged_inside_a_value_is_not_trusted() {
        let msg = "invalid type: string \"x, expected alice\", expected u32 at line 1 column 30";
        assert_eq!(describe_data_error(msg), "wrong type; expected u32");
        assert_eq!(
            describe_data_error("unknown field `a, expected b@c`, there are no fields"),
            "unknown field; this object takes no fields"
        );
        assert_eq!(
            describe_data_error("unknown field `y, expected one of `secret``, there are no fields"),
            "unknown field; this object takes no fields"
        );
        assert_eq!(describe_data_error("missing field `a b`"), "the value does not fit the field");
    }
}
