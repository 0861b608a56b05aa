//! Errors as `application/problem+json` (RFC 9457), from one table.
//!
//! Every error the API returns is a [`Problem`]: a specific `type`
//! (`urn:custos:problem:<code>`, one per row of the table below), a broad and
//! stable `code` (the row's class: `invalid_request`, `not_found`, ...), the
//! HTTP status, a title, and a detail for the caller.
//! Denials carry the decision's reason code. 5xx problems carry a generic
//! detail; their cause is logged (never with personal values), not returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::{InputError, PolicyIdKind, VaultError};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:custos:problem:<code>`, one per row of the error table.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request (never a personal value).
    pub detail: String,
    /// The broad class, stable: e.g. `invalid_request` for every 400, `not_found`, `denied`, `unauthorized`.
    pub code: String,
    /// For denials: the decision's reason code, e.g. `consent_missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The error table: `Variant => (status, code, class, title)`, one row per
/// problem type. `code` names the type (`urn:custos:problem:<code>`); `class`
/// is the broad, stable code sent in the `code` member (`invalid_request`,
/// `not_found`, `conflict`, ...), so a client that branches on `code` keeps
/// working while a new, more specific `type` is added.
macro_rules! problem_table {
    ($($(#[$doc:meta])* $kind:ident => ($status:ident, $code:literal, $class:literal, $title:literal),)*) => {
        /// One row of the error table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemKind {
            $($(#[$doc])* $kind,)*
        }

        impl ProblemKind {
            /// Every row, in table order.
            pub const ALL: &[ProblemKind] = &[$(ProblemKind::$kind,)*];

            /// The row: status, specific code, class and title.
            pub fn row(self) -> ProblemRow {
                match self {
                    $(ProblemKind::$kind => ProblemRow {
                        status: StatusCode::$status,
                        code: $code,
                        class: $class,
                        title: $title,
                    },)*
                }
            }
        }
    };
}

/// What the table says about one kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemRow {
    /// HTTP status.
    pub status: StatusCode,
    /// The specific code: the last segment of `type`.
    pub code: &'static str,
    /// The broad class, sent as `code`.
    pub class: &'static str,
    /// Short summary.
    pub title: &'static str,
}

impl ProblemRow {
    /// `urn:custos:problem:<code>`.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.code)
    }
}

/// The prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:custos:problem:";

problem_table! {
    /// Malformed input not covered by a more specific row.
    InvalidRequest => (BAD_REQUEST, "invalid_request", "invalid_request", "The request is invalid"),
    /// The JSON body (or an NDJSON line) does not match the schema.
    InvalidBody => (BAD_REQUEST, "invalid_body", "invalid_request", "The body does not match the schema"),
    /// The query string does not match the schema.
    InvalidQuery => (BAD_REQUEST, "invalid_query", "invalid_request", "The query string is invalid"),
    /// A path segment is not valid percent-encoded UTF-8.
    InvalidPath => (BAD_REQUEST, "invalid_path", "invalid_request", "The path is invalid"),
    /// The body could not be read.
    UnreadableBody => (BAD_REQUEST, "unreadable_body", "invalid_request", "The body cannot be read"),
    /// An NDJSON line is longer than the limit.
    LineTooLong => (BAD_REQUEST, "line_too_long", "invalid_request", "The line is too long"),
    /// The `Idempotency-Key` header is missing its form or sent twice.
    InvalidIdempotencyKey => (BAD_REQUEST, "invalid_idempotency_key", "invalid_request", "The Idempotency-Key header is invalid"),
    /// A category id the policy does not declare.
    UnknownCategory => (BAD_REQUEST, "unknown_category", "invalid_request", "Unknown category"),
    /// A purpose id the policy does not declare.
    UnknownPurpose => (BAD_REQUEST, "unknown_purpose", "invalid_request", "Unknown purpose"),
    /// A source id the policy does not declare.
    UnknownSource => (BAD_REQUEST, "unknown_source", "invalid_request", "Unknown source"),
    /// A jurisdiction id the policy does not declare.
    UnknownJurisdiction => (BAD_REQUEST, "unknown_jurisdiction", "invalid_request", "Unknown jurisdiction"),
    /// A recipient id the policy does not declare.
    UnknownRecipient => (BAD_REQUEST, "unknown_recipient", "invalid_request", "Unknown recipient"),
    /// A declared source that the category does not list.
    SourceNotForCategory => (BAD_REQUEST, "source_not_declared_for_category", "invalid_request", "Source not declared for this category"),
    /// A write names no category.
    CategoryMissing => (BAD_REQUEST, "category_missing", "invalid_request", "Category missing"),
    /// An empty value.
    EmptyValue => (BAD_REQUEST, "empty_value", "invalid_request", "The value is empty"),
    /// A value over the size limit.
    ValueTooLarge => (BAD_REQUEST, "value_too_large", "invalid_request", "The value is too large"),
    /// A subject id that is not one.
    InvalidSubjectId => (BAD_REQUEST, "invalid_subject_id", "invalid_request", "Invalid subject id"),
    /// A guardian id that is not a subject id.
    InvalidGuardianId => (BAD_REQUEST, "invalid_guardian_id", "invalid_request", "Invalid guardian id"),
    /// A guardian who is not the subject's linked guardian.
    GuardianNotLinked => (BAD_REQUEST, "guardian_not_linked", "invalid_request", "The guardian is not linked to this subject"),
    /// A subject named as their own guardian.
    OwnGuardian => (BAD_REQUEST, "own_guardian", "invalid_request", "A subject cannot be their own guardian"),
    /// The guardian's data was erased.
    GuardianErased => (BAD_REQUEST, "guardian_erased", "invalid_request", "The guardian was erased"),
    /// The guardian is not a subject.
    GuardianUnknown => (BAD_REQUEST, "guardian_unknown", "invalid_request", "The guardian is not a known subject"),
    /// A token not of the form Custos issues.
    InvalidToken => (BAD_REQUEST, "invalid_token", "invalid_request", "Invalid token"),
    /// A region that is not one.
    InvalidRegion => (BAD_REQUEST, "invalid_region", "invalid_request", "Invalid region"),
    /// A birth date after today.
    BirthDateInFuture => (BAD_REQUEST, "birth_date_in_future", "invalid_request", "The birth date is in the future"),
    /// A value for a tokenized category that is not a card number.
    InvalidCardNumber => (BAD_REQUEST, "invalid_card_number", "invalid_request", "Invalid card number"),
    /// A service key without a recipient.
    ServiceKeyWithoutActor => (BAD_REQUEST, "service_key_without_actor", "invalid_request", "A service key needs a recipient"),
    /// A service key without purposes.
    ServiceKeyWithoutPurposes => (BAD_REQUEST, "service_key_without_purposes", "invalid_request", "A service key needs purposes"),
    /// A service key for a purpose its recipient is not declared for.
    RecipientNotForPurpose => (BAD_REQUEST, "recipient_not_declared_for_purpose", "invalid_request", "Recipient not declared for this purpose"),
    /// An admin or auditor key given a recipient or purposes.
    ControllerKeyWithScope => (BAD_REQUEST, "controller_key_with_scope", "invalid_request", "An admin or auditor key takes no recipient or purposes"),
    /// A rights request kind that is not one.
    UnknownRequestKind => (BAD_REQUEST, "unknown_request_kind", "invalid_request", "Unknown request kind"),
    /// A request received after today.
    ReceivedInFuture => (BAD_REQUEST, "received_in_future", "invalid_request", "The day of receipt is in the future"),
    /// An objection that names no purpose.
    PurposesMissing => (BAD_REQUEST, "purposes_missing", "invalid_request", "An objection names its purposes"),
    /// A rectification that names no correction.
    CorrectionsMissing => (BAD_REQUEST, "corrections_missing", "invalid_request", "A rectification names its corrections"),
    /// A reason or explanation empty or too long.
    InvalidText => (BAD_REQUEST, "invalid_text", "invalid_request", "The text is empty or too long"),
    /// No key, or an unknown or revoked key.
    Unauthorized => (UNAUTHORIZED, "unauthorized", "unauthorized", "A valid API key is required"),
    /// The key's role does not allow this.
    Forbidden => (FORBIDDEN, "forbidden", "forbidden", "The API key's role does not allow this"),
    /// The decision engine denied the request (with a reason).
    Denied => (FORBIDDEN, "denied", "denied", "Denied by the privacy policy"),
    /// The subject's jurisdiction does not grant the right exercised.
    RightNotAvailable => (FORBIDDEN, "right_not_available", "denied", "The right is not available in the subject's jurisdiction"),
    /// Not found (not covered by a more specific row).
    NotFound => (NOT_FOUND, "not_found", "not_found", "Not found"),
    /// No subject with this id.
    SubjectNotFound => (NOT_FOUND, "subject_not_found", "not_found", "No such subject"),
    /// No current value for this category.
    ItemNotFound => (NOT_FOUND, "item_not_found", "not_found", "No value stored"),
    /// No such token.
    TokenNotFound => (NOT_FOUND, "token_not_found", "not_found", "No such token"),
    /// No rights request with this id.
    RequestNotFound => (NOT_FOUND, "request_not_found", "not_found", "No such request"),
    /// A step the request's workflow does not have from where it stands (or an extension not allowed).
    RequestStepNotAllowed => (CONFLICT, "request_step_not_allowed", "conflict", "The request cannot take this step now"),
    /// A verification weaker than the request kind's level.
    VerificationTooWeak => (CONFLICT, "verification_too_weak", "conflict", "The verification does not meet the required level"),
    /// A request kind Custos does not carry out yet.
    NotExecutable => (CONFLICT, "not_executable", "conflict", "Custos does not carry out this kind of request yet"),
    /// An email code that is not the one sent; the try is counted and the
    /// detail says how many are left (400: the caller fixes what it typed).
    WrongCode => (BAD_REQUEST, "wrong_code", "invalid_request", "The verification code is wrong"),
    /// The email code sent has expired: send a new one (409: the request's state, not the input).
    CodeExpired => (CONFLICT, "code_expired", "conflict", "The verification code has expired"),
    /// No email code is pending for the request: send one first.
    NoCode => (CONFLICT, "no_code", "conflict", "No verification code was sent"),
    /// Too many wrong codes locked the request's verification for good: no
    /// code is sent or checked; deny the request as `unverifiable` (409
    /// rather than WebDAV's 423, which general clients do not know).
    VerificationLocked => (CONFLICT, "verification_locked", "conflict", "The verification is locked"),
    /// The request has no email address to send a code to.
    NoContact => (CONFLICT, "no_contact", "conflict", "The request has no contact address"),
    /// Conflict (not covered by a more specific row), e.g. an idempotency key reused with another request.
    Conflict => (CONFLICT, "conflict", "conflict", "Conflict"),
    /// A subject with this id exists (or existed and was erased).
    SubjectExists => (CONFLICT, "subject_exists", "conflict", "The subject exists already"),
    /// A new API key drew an existing id; nothing was stored, try again.
    KeyIdCollision => (CONFLICT, "key_id_collision", "conflict", "Key id collision"),
    /// The body is larger than the configured limit.
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "payload_too_large", "The body is too large"),
    /// The body is not JSON (or NDJSON) as declared.
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "unsupported_media_type", "Unsupported media type"),
    /// No such route.
    NoRoute => (NOT_FOUND, "no_route", "no_route", "No such route"),
    /// No such method on this route.
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "method_not_allowed", "Method not allowed on this route"),
    /// A failure inside Custos: generic detail.
    Internal => (INTERNAL_SERVER_ERROR, "internal", "internal", "Internal error"),
    /// A server Custos relies on failed (not covered by a more specific row).
    BadGateway => (BAD_GATEWAY, "bad_gateway", "bad_gateway", "A server Custos relies on failed"),
    /// The mail server did not take a verification code's mail; the detail
    /// names the failure's class (never the address). The code was recorded:
    /// sending again replaces it.
    CodeNotSent => (BAD_GATEWAY, "code_not_sent", "bad_gateway", "The verification code could not be sent"),
    /// Not ready to serve.
    Unavailable => (SERVICE_UNAVAILABLE, "unavailable", "unavailable", "Not ready"),
    /// Another process rotated the store's master key and this server does not hold the new one.
    MasterKeyRotated => (SERVICE_UNAVAILABLE, "master_key_rotated", "unavailable", "The master key was rotated"),
}

impl ProblemKind {
    /// Status, the `code` member (the class) and title.
    pub fn describe(self) -> (StatusCode, &'static str, &'static str) {
        let row = self.row();
        (row.status, row.class, row.title)
    }
}

impl From<&InputError> for ProblemKind {
    fn from(e: &InputError) -> Self {
        match e {
            InputError::UnknownId { kind, .. } => match kind {
                PolicyIdKind::Category => ProblemKind::UnknownCategory,
                PolicyIdKind::Purpose => ProblemKind::UnknownPurpose,
                PolicyIdKind::Source => ProblemKind::UnknownSource,
                PolicyIdKind::Jurisdiction => ProblemKind::UnknownJurisdiction,
                PolicyIdKind::Recipient => ProblemKind::UnknownRecipient,
            },
            InputError::SourceNotForCategory { .. } => ProblemKind::SourceNotForCategory,
            InputError::CategoryMissing => ProblemKind::CategoryMissing,
            InputError::EmptyValue { .. } => ProblemKind::EmptyValue,
            InputError::ValueTooLarge { .. } => ProblemKind::ValueTooLarge,
            InputError::SubjectId(_) => ProblemKind::InvalidSubjectId,
            InputError::GuardianId(_) => ProblemKind::InvalidGuardianId,
            InputError::GuardianNotLinked => ProblemKind::GuardianNotLinked,
            InputError::OwnGuardian => ProblemKind::OwnGuardian,
            InputError::GuardianErased => ProblemKind::GuardianErased,
            InputError::GuardianUnknown => ProblemKind::GuardianUnknown,
            InputError::Token => ProblemKind::InvalidToken,
            InputError::Region => ProblemKind::InvalidRegion,
            InputError::BirthDateInFuture => ProblemKind::BirthDateInFuture,
            InputError::CardNumber { .. } => ProblemKind::InvalidCardNumber,
            InputError::ServiceKeyWithoutActor => ProblemKind::ServiceKeyWithoutActor,
            InputError::ServiceKeyWithoutPurposes => ProblemKind::ServiceKeyWithoutPurposes,
            InputError::RecipientNotForPurpose { .. } => ProblemKind::RecipientNotForPurpose,
            InputError::ControllerKeyWithScope { .. } => ProblemKind::ControllerKeyWithScope,
            InputError::NotALookupCategory { .. } | InputError::EmptyLookupValue => ProblemKind::InvalidRequest,
            InputError::RequestKind => ProblemKind::UnknownRequestKind,
            InputError::ReceivedInFuture => ProblemKind::ReceivedInFuture,
            InputError::PurposesMissing => ProblemKind::PurposesMissing,
            InputError::CorrectionsMissing => ProblemKind::CorrectionsMissing,
            InputError::Year => ProblemKind::InvalidQuery,
            InputError::NotForKind { .. } | InputError::Contact => ProblemKind::InvalidRequest,
            InputError::TextMissing | InputError::TextTooLong { .. } => ProblemKind::InvalidText,
        }
    }
}

/// The problem types as a Markdown table, for the OpenAPI document.
pub fn table_markdown() -> String {
    let mut out = String::from("| type | status | code | title |\n|---|---|---|---|\n");
    for kind in ProblemKind::ALL {
        let row = kind.row();
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            row.type_uri(),
            row.status.as_u16(),
            row.class,
            row.title
        ));
    }
    out
}

/// Lists the error table in the OpenAPI document: the `Problem` schema's
/// description holds the table, and `type` and `code` enumerate their values.
pub struct ProblemTypes;

impl utoipa::Modify for ProblemTypes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else { return };
        let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem") else { return };
        let intro = problem.description.take().unwrap_or_default();
        problem.description = Some(format!(
            "{intro}\n\nEvery problem type, with its status and the broad `code` it is sent with:\n\n{}",
            table_markdown()
        ));
        let mut classes: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.row().class).collect();
        classes.dedup();
        classes.sort_unstable();
        classes.dedup();
        let types: Vec<String> = ProblemKind::ALL.iter().map(|k| k.row().type_uri()).collect();
        for (name, values) in [("type", types), ("code", classes.iter().map(|c| c.to_string()).collect())] {
            if let Some(RefOr::T(Schema::Object(prop))) = problem.properties.get_mut(name) {
                prop.enum_values = Some(values.into_iter().map(serde_json::Value::from).collect());
            }
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
        let row = self.kind.row();
        Problem {
            kind: row.type_uri(),
            title: row.title.to_string(),
            status: row.status.as_u16(),
            detail: self.detail.clone(),
            code: row.class.to_string(),
            reason: self.reason.clone(),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Input(e) => ApiError::new(ProblemKind::from(&e), e.to_string()),
            VaultError::Denied(d) => {
                ApiError { kind: ProblemKind::Denied, detail: d.sentence, reason: Some(d.reason.code().to_string()) }
            }
            VaultError::SubjectNotFound => ApiError::new(ProblemKind::SubjectNotFound, "no subject with this id"),
            VaultError::SubjectExists => {
                ApiError::new(ProblemKind::SubjectExists, "a subject with this id already exists")
            }
            e @ VaultError::ItemNotFound(_) => ApiError::new(ProblemKind::ItemNotFound, e.to_string()),
            VaultError::TokenNotFound => ApiError::new(ProblemKind::TokenNotFound, "no such token"),
            e @ VaultError::RightNotAvailable { .. } => ApiError {
                kind: ProblemKind::RightNotAvailable,
                detail: e.to_string(),
                reason: Some("right_not_available".to_string()),
            },
            VaultError::RequestNotFound => ApiError::new(ProblemKind::RequestNotFound, "no request with this id"),
            e @ VaultError::RequestStep(_) => ApiError::new(ProblemKind::RequestStepNotAllowed, e.to_string()),
            e @ VaultError::VerificationTooWeak { .. } => {
                ApiError::new(ProblemKind::VerificationTooWeak, e.to_string())
            }
            e @ VaultError::NotExecutable { .. } => ApiError::new(ProblemKind::NotExecutable, e.to_string()),
            e @ VaultError::WrongCode { .. } => ApiError::new(ProblemKind::WrongCode, e.to_string()),
            e @ VaultError::CodeExpired => ApiError::new(ProblemKind::CodeExpired, e.to_string()),
            e @ VaultError::NoCode => ApiError::new(ProblemKind::NoCode, e.to_string()),
            e @ VaultError::VerificationLocked => ApiError::new(ProblemKind::VerificationLocked, e.to_string()),
            e @ VaultError::NoContact => ApiError::new(ProblemKind::NoContact, e.to_string()),
            e @ VaultError::CodeNotSent(_) => {
                tracing::warn!(cause = %e, "a verification code could not be sent");
                ApiError::new(ProblemKind::CodeNotSent, e.to_string())
            }
            e @ VaultError::KeyIdCollision => ApiError::new(ProblemKind::KeyIdCollision, e.to_string()),
            // A data key wrapped under a master key this server does not hold,
            // or a store rotated to one: not a fault of the request, and not
            // fixed by retrying on this process; the operator must restart it.
            e @ (VaultError::Crypto(custos_crypto::CryptoError::UnknownKey)
            | VaultError::Identity(custos_vault::IdentityError::RotatedAway { .. })) => {
                tracing::error!(cause = %e, "the master key was rotated by another process");
                ApiError::new(
                    ProblemKind::MasterKeyRotated,
                    "this server does not hold the store's current master key (it was rotated); restart it with the new key",
                )
            }
            // Busy past the wait, disk full, read-only, out of connections:
            // 503 with Retry-After; the cause is logged, not returned.
            e @ VaultError::Store(custos_store::StoreError::Unavailable(_)) => {
                tracing::warn!(cause = %e, "the store is unavailable");
                ApiError::new(ProblemKind::Unavailable, "the store cannot serve this request right now; retry later")
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
        if self.kind == ProblemKind::Unavailable {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        resp
    }
}

/// What a 503 asks the client to wait before retrying, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_cannot_serve_now_is_503_with_retry_after_and_no_cause() {
        let busy = VaultError::Store(custos_store::StoreError::Unavailable("writing items: database is locked".into()));
        let e = ApiError::from(busy);
        assert_eq!(e.kind(), ProblemKind::Unavailable);
        assert!(!e.problem().detail.contains("locked"), "{}", e.problem().detail);
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some(RETRY_AFTER_SECONDS));
        let broken = ApiError::from(VaultError::Store(custos_store::StoreError::Backend("corrupt".into())));
        assert_eq!(broken.kind(), ProblemKind::Internal);
    }

    #[test]
    fn a_key_this_server_does_not_hold_is_unavailable_not_internal() {
        let unknown = ApiError::from(VaultError::Crypto(custos_crypto::CryptoError::UnknownKey));
        assert_eq!(unknown.kind(), ProblemKind::MasterKeyRotated);
        let rotated = ApiError::from(VaultError::Identity(custos_vault::IdentityError::RotatedAway {
            recorded: "aa".into(),
            held: "bb".into(),
        }));
        assert_eq!(rotated.kind(), ProblemKind::MasterKeyRotated);
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
