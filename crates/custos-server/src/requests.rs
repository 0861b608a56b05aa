//! The `/v1/requests` routes: rights requests recorded, listed, shown,
//! verified, extended, denied, withdrawn and carried out, each one call of
//! the vault's request workflow (`custos_vault::requests`), as the
//! `custos request` commands make them.
//!
//! Roles: admin keys may do everything; auditor keys may only list and
//! show; service keys (the company's own application) may record a request
//! and attest a signed-in person's identity (`verify` with `session` only).
//! A refused submission is audited against the subject it names, like every
//! other role refusal on a route about a subject.
//!
//! Responses are the vault's [`custos_vault::RequestView`], serialized as the
//! vault gives it (the CLI's `--format json` prints the same object). The
//! structs of [`schema`] only document it: their fields mirror the vault's
//! one for one (`tests/http_requests.rs` in custos-cli compares the document
//! with real responses). Contact, note, reason and denial texts are never
//! logged nor put in an error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::parse_date;
use custos_vault::{RequestQuery, Submission, VaultError, VerifyMethod};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Auth, Role};
use crate::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::secret::{SecretString, json_response};
use crate::{AppState, SharedVault};

/// Roles that may record a request: admin keys and the company's application.
const SUBMITTERS: &[Role] = &[Role::Admin, Role::Service];
/// Roles that may list and show requests.
const READERS: &[Role] = &[Role::Admin, Role::Auditor];
/// Roles that may move a request (a service key may only attest a session).
const OFFICERS: &[Role] = &[Role::Admin];
/// The most requests one listing returns.
pub const MAX_LIST: usize = 1000;

/// A rights request as received (no `Debug`: it holds the requester's contact and words).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The subject's id (a subject the vault knows).
    pub subject: String,
    /// The request kind: `access`, `portability`, `rectification`, `erasure`, `restriction`,
    /// `objection`, `opt_out`, `limit_sensitive`, `withdraw_consent`, `complaint`.
    pub kind: String,
    /// The day it was received, `YYYY-MM-DD`, when not today (a letter opened later); never in the future.
    #[serde(default)]
    pub received: Option<String>,
    /// Where the person is answered (an email address); stored sealed, never returned.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub contact: Option<SecretString>,
    /// What the person wrote; stored sealed, never returned.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub note: Option<SecretString>,
    /// The purposes an objection (required) or a consent withdrawal (default: every consent) names.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// A rectification's corrections (required for one, refused for any other
    /// kind): each category and its corrected value, stored sealed and
    /// cleared from the request once written.
    #[serde(default)]
    pub corrections: Vec<CorrectionBody>,
}

/// One correction of a rectification request (no `Debug`: it holds a value).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// The category, e.g. `contact.name`.
    pub category: String,
    /// The corrected value.
    #[schema(value_type = String)]
    pub value: SecretString,
}

/// Records a rights request.
///
/// The due date, the confirm-by date and the verification level come from
/// the rule the policy gives the kind in the subject's jurisdiction. A kind
/// that needs no verification is `verified` at once. A kind the jurisdiction
/// does not grant, or a second request of a kind the person has open, is
/// still recorded, and denied at once: the answer is then 201 too, with
/// `status` `denied` and `denial.code` `right_not_available` or `duplicate`
/// (with `duplicate_of` naming the open request). Admin and service keys.
#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = SubmitRequest,
    responses((status = 201, body = schema::RequestView,
            description = "Recorded (also when denied at once: see `status` and `denial`)"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem,
            description = "Forbidden for the key's role, or the subject was erased (`reason` `erased`)"),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn submit_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> Result<Response, ApiError> {
    let by = match auth.require(SUBMITTERS, "submit rights requests") {
        Ok(p) => p.by(),
        Err(refused) => return Err(audited_refusal(&state, &auth, &body.subject, refused).await),
    };
    let received = body.received.as_deref().map(parse_date).transpose().map_err(|_| {
        ApiError::new(ProblemKind::InvalidBody, "invalid body at `received`: expected a date of the form YYYY-MM-DD")
    })?;
    let view = state
        .run(move |v| {
            let submission = Submission {
                subject: &body.subject,
                kind: &body.kind,
                received,
                contact: body.contact.as_ref().map(SecretString::expose),
                note: body.note.as_ref().map(SecretString::expose),
                purposes: body.purposes,
                corrections: body
                    .corrections
                    .iter()
                    .map(|c| (c.category.clone(), c.value.expose().to_string()))
                    .collect(),
            };
            Ok(v.submit_request(&submission, &by)?)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &view))
}

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only requests with this status.
    #[serde(default)]
    #[param(value_type = Option<schema::RequestStatus>)]
    pub status: Option<RequestStatus>,
    /// Only requests of this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this subject's requests (subject id).
    #[serde(default)]
    pub subject: Option<String>,
    /// Only requests due strictly before this day, `YYYY-MM-DD`.
    #[serde(default)]
    pub due_before: Option<String>,
    /// At most this many (1 to 1000, default 100; a larger value is a 400, not clamped).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// A listing of requests.
#[derive(Serialize)]
struct RequestList<'a> {
    requests: &'a [custos_vault::RequestView],
}

/// Requests by due date, earliest first (admin and auditor keys).
///
/// A bad `status`, `due_before` or `limit` (outside 1 to 1000) is a 400
/// `invalid_query`; an unknown `kind` a 400 `unknown_request_kind`.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = schema::RequestList), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    auth.require(READERS, "list rights requests")?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::new(ProblemKind::InvalidQuery, format!("limit must be between 1 and {MAX_LIST}")));
    }
    let due_before = q.due_before.as_deref().map(parse_date).transpose().map_err(|_| {
        ApiError::new(
            ProblemKind::InvalidQuery,
            "invalid query string at `due_before`: expected a date of the form YYYY-MM-DD",
        )
    })?;
    let views = state
        .run(move |v| {
            let query = RequestQuery {
                subject: q.subject.as_deref(),
                kind: q.kind.as_deref(),
                status: q.status,
                due_before,
                limit,
            };
            Ok(v.requests(&query)?)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &RequestList { requests: &views }))
}

/// One request with its dates, status and timeline (admin and auditor keys).
#[utoipa::path(get, path = "/v1/requests/{request_id}", tag = "requests",
    params(("request_id" = String, Path,
        description = "Request id: `rq_` and 32 hexadecimal digits (any other id is a 404)",
        pattern = "^rq_[0-9a-fA-F]{32}$")),
    responses((status = 200, body = schema::RequestView), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem, description = "No request with this id (or not a request id)")),
    security(("bearer" = [])))]
pub async fn get_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    auth.require(READERS, "read rights requests")?;
    respond(&state, move |v| v.request(&id)).await
}

/// How the requester's identity was verified.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The company's own application attests a signed-in person (admin and service keys).
    Session,
    /// Two data points matched by the privacy office (admin keys).
    TwoDataPoints,
    /// Three data points and a signed declaration, checked by the privacy office (admin keys).
    ThreeDataPointsAndDeclaration,
    /// A code sent to the requester's email: not available yet (400).
    EmailCode,
}

/// A verification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// How the identity was verified; it must meet the level the request needs (`verification`).
    pub method: Method,
}

/// Records that the requester's identity was verified.
///
/// A method weaker than the request's level is a 409
/// `verification_too_weak`. Admin keys may attest any method; service keys
/// only `session`.
#[utoipa::path(post, path = "/v1/requests/{request_id}/verify", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$")),
    request_body = VerifyRequest,
    responses((status = 200, body = schema::RequestView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let id_again = id.clone();
    let method = match body.method {
        Method::Session => VerifyMethod::Session,
        Method::TwoDataPoints => VerifyMethod::TwoDataPoints,
        Method::ThreeDataPointsAndDeclaration => VerifyMethod::ThreeDataPointsAndDeclaration,
        Method::EmailCode => {
            return Err(ApiError::new(
                ProblemKind::InvalidBody,
                "invalid body at `method`: `email_code` verification is not available yet; \
                 use session, two_data_points or three_data_points_and_declaration",
            ));
        }
    };
    let (by, own_only) = match method {
        VerifyMethod::Session => {
            let p = auth.require(SUBMITTERS, "attest a session")?;
            (p.by(), p.role == Role::Service)
        }
        _ => (auth.require(OFFICERS, "verify a request by data points")?.by(), false),
    };
    if own_only {
        // The company's application attests its own signed-in users: a
        // service key attests only the requests it recorded itself.
        let label = by.audit_label();
        let submitted_by = state.run(move |v| Ok(v.request(&id)?.timeline.first().map(|s| s.by.clone()))).await?;
        if submitted_by.as_deref() != Some(label.as_str()) {
            return Err(ApiError::forbidden("a service key attests a session only for a request it recorded"));
        }
    }
    let id = id_again;
    respond(&state, move |v| v.verify_request(&id, method, &by)).await
}

/// An extension of a request's deadline.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// Why, as the person is told (1 to 4096 bytes).
    #[schema(value_type = String, min_length = 1, max_length = 4096)]
    pub reason: SecretString,
}

/// Extends a request's deadline to its `extended_due` date (admin keys).
///
/// Once, where the rule of its kind allows an extension, while the request
/// is open and no later than the unextended due date (the day by which the
/// person must be told); otherwise a 409 `request_step_not_allowed`.
#[utoipa::path(post, path = "/v1/requests/{request_id}/extend", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$")),
    request_body = ExtendRequest,
    responses((status = 200, body = schema::RequestView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn extend_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<Response, ApiError> {
    let by = auth.require(OFFICERS, "extend rights requests")?.by();
    respond(&state, move |v| v.extend_request(&id, body.reason.expose(), &by)).await
}

/// A refusal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyRequest {
    /// The reason code.
    #[schema(value_type = schema::DenialCode)]
    pub code: DenialCode,
    /// The explanation the person is told (1 to 4096 bytes; cite the exception or hold for `exempt`).
    #[schema(value_type = String, min_length = 1, max_length = 4096)]
    pub text: SecretString,
}

/// Refuses an open request (admin keys).
#[utoipa::path(post, path = "/v1/requests/{request_id}/deny", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$")),
    request_body = DenyRequest,
    responses((status = 200, body = schema::RequestView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn deny_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DenyRequest>,
) -> Result<Response, ApiError> {
    let by = auth.require(OFFICERS, "deny rights requests")?.by();
    respond(&state, move |v| v.deny_request(&id, body.code, body.text.expose(), &by)).await
}

/// Records that the person withdrew an open request (admin keys). No body, or `{}`.
#[utoipa::path(post, path = "/v1/requests/{request_id}/withdraw", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$")),
    request_body(content = Option<Empty>, description = "Optional: an empty object"),
    responses((status = 200, body = schema::RequestView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn withdraw_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let by = auth.require(OFFICERS, "withdraw rights requests")?.by();
    no_body(&headers, &body)?;
    respond(&state, move |v| v.withdraw_request(&id, &by)).await
}

/// Carries out a verified request and completes it (admin keys). No body, or `{}`.
///
/// Restriction, objection, consent withdrawal, opt-out, limit on sensitive
/// information, erasure (the subject's data is crypto-shredded) and
/// complaint are carried out through the same changes as the direct routes;
/// `outcome` says what was done. `access`, `portability` and `rectification`
/// are not carried out yet: 409 `not_executable`. A request not verified is
/// a 409 `request_step_not_allowed`.
#[utoipa::path(post, path = "/v1/requests/{request_id}/execute", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$")),
    request_body(content = Option<Empty>, description = "Optional: an empty object"),
    responses((status = 200, body = schema::RequestView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn execute_request(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let by = auth.require(OFFICERS, "carry out rights requests")?.by();
    no_body(&headers, &body)?;
    respond(&state, move |v| v.execute_request(&id, &by)).await
}

/// An empty object: the optional body of `withdraw` and `execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Accepts no body or an empty JSON object.
fn no_body(headers: &HeaderMap, body: &Bytes) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    if !crate::extract::is_json(headers) {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the body as `Content-Type: application/json`",
        ));
    }
    crate::extract::parse_json::<Empty>(body, "body").map(drop)
}

/// Runs one request call of the vault and answers 200 with the request.
async fn respond<F>(state: &AppState, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(&SharedVault) -> Result<custos_vault::RequestView, VaultError> + Send + 'static,
{
    let view = state.run(move |v| Ok(f(v)?)).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// Audits a key refused a submission about `subject` (`access_denied`,
/// `role_not_allowed`, the key's id) and returns the refusal.
async fn audited_refusal(state: &AppState, auth: &Auth, subject: &str, refused: ApiError) -> ApiError {
    let principal = auth.0.clone();
    let subject = subject.to_string();
    match state.run(move |v| Ok(v.audit_role_refusal(&principal, &subject, None)?)).await {
        Ok(()) => refused,
        Err(e) => e,
    }
}

/// The OpenAPI schemas of the responses, for documentation only: each
/// mirrors, field for field, the vault's type of the same name, which is
/// what is serialized.
pub mod schema {
    use serde::Serialize;
    use utoipa::ToSchema;

    /// Where a request stands.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum RequestStatus {
        /// Recorded, nothing done yet.
        Received,
        /// Waiting for the person to prove who they are.
        IdentityUnverified,
        /// Identity verified (or none needed); not yet being worked on.
        Verified,
        /// Being carried out.
        InProgress,
        /// Waiting for the person's answer.
        AwaitingSubject,
        /// Carried out; the response was given.
        Completed,
        /// Refused, with a reason.
        Denied,
        /// Withdrawn by the person.
        Withdrawn,
    }

    /// Why a request was refused.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum DenialCode {
        /// The person's identity could not be verified.
        Unverifiable,
        /// Manifestly unfounded (GDPR Art. 12(5)).
        ManifestlyUnfounded,
        /// Excessive, in particular repetitive (GDPR Art. 12(5)).
        Excessive,
        /// An exception or legal hold applies (cited in the denial).
        Exempt,
        /// The person's jurisdiction does not grant the right.
        RightNotAvailable,
        /// Another open request of the same person and kind covers it.
        Duplicate,
    }

    /// A rights request.
    #[derive(Serialize, ToSchema)]
    pub struct RequestView {
        /// Its id: `rq_` and 32 hexadecimal digits.
        pub id: String,
        /// Its kind.
        pub kind: String,
        /// The subject's jurisdiction.
        pub jurisdiction: String,
        /// Where it stands.
        pub status: RequestStatus,
        /// The day it was received, `YYYY-MM-DD`.
        pub received: String,
        /// The due date in force (the extended one once extended).
        pub due: String,
        /// The day receipt must be confirmed by, where the law says so.
        pub confirm_by: Option<String>,
        /// Where an extension moves (or moved) the due date, if the rule allows one.
        pub extended_due: Option<String>,
        /// Days until due (negative once overdue; counted to the day it closed).
        pub days_left: i64,
        /// Whether it is past due and still open.
        pub overdue: bool,
        /// The verification the kind needs (`none`, `email_code`, `two_data_points`, …).
        pub verification: String,
        /// How the identity was verified, once it was.
        pub verified_by: Option<String>,
        /// Whether a wrong code too many times locked its verification.
        pub verification_locked: bool,
        /// The extension, once granted.
        pub extension: Option<ExtensionView>,
        /// The refusal, if denied.
        pub denial: Option<DenialView>,
        /// The open request this one duplicates.
        pub duplicate_of: Option<String>,
        /// The day it closed.
        pub closed_on: Option<String>,
        /// Who answers it.
        pub controller: ControllerView,
        /// The legal source of its rule.
        pub source: Option<String>,
        /// What carrying it out did (e.g. `item_versions_erased`); no personal value.
        #[schema(value_type = Option<Object>)]
        pub outcome: Option<serde_json::Value>,
        /// Every step, oldest first.
        pub timeline: Vec<TimelineEntry>,
    }

    /// An extension.
    #[derive(Serialize, ToSchema)]
    pub struct ExtensionView {
        /// The day the person was told.
        pub noticed_on: String,
        /// Why (told to the person).
        pub reason: Option<String>,
    }

    /// A refusal.
    #[derive(Serialize, ToSchema)]
    pub struct DenialView {
        /// The reason code.
        pub code: DenialCode,
        /// The explanation given to the person.
        pub text: Option<String>,
    }

    /// The controller that answers a request.
    #[derive(Serialize, ToSchema)]
    pub struct ControllerView {
        /// Its policy id.
        pub id: String,
        /// Its legal name.
        pub name: String,
        /// Its postal address.
        pub address: String,
        /// Where privacy requests go.
        pub contact: Option<String>,
    }

    /// One step of a request's timeline.
    #[derive(Serialize, ToSchema)]
    pub struct TimelineEntry {
        /// When (RFC 3339).
        pub at: String,
        /// What: `received`, `verified`, `extended`, `started`, `completed`, `denied`, `withdrawn`.
        pub step: String,
        /// The status after it.
        pub status: RequestStatus,
        /// Who: `key:<id>`, `cli`.
        pub by: String,
    }

    /// A listing of requests.
    #[derive(Serialize, ToSchema)]
    pub struct RequestList {
        /// By due date, earliest first.
        pub requests: Vec<RequestView>,
    }
}
