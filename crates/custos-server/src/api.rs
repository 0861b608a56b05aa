//! The `/v1` personal-data routes: subjects, values, consents, erasure (the
//! standing choices are in [`crate::choices`]).
//!
//! Every read names a purpose; the actor is always the key's. Each handler
//! checks the role, then runs the vault (which decides and audits). Writes
//! honour `Idempotency-Key` through the layer in [`crate::idempotency`]; the
//! OpenAPI document gains the header and its responses there, not here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use custos_core::time::{format_date, parse_date};
use custos_vault::{By, NewSubject, Put, Read, Revealed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Auth, Principal, Role};
use crate::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::secret::{SecretString, json_response};

/// Roles that may write personal data.
pub(crate) const WRITERS: &[Role] = &[Role::Admin, Role::Service];

/// Roles that may create subjects and change a subject's consents, objections
/// and restriction: admin keys only (later also the subject's own session). A
/// service key could otherwise grant itself a consent it then reads under.
pub(crate) const CHOICES: &[Role] = &[Role::Admin];

/// A subject to create (no `Debug`: it holds personal metadata).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubject {
    /// Subject id (1-128 printable ASCII characters, no spaces).
    pub id: String,
    /// Jurisdiction id from the policy.
    pub jurisdiction: String,
    /// Home region of the subject's data.
    #[serde(default)]
    pub region: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Subject id of the linked parent or guardian.
    #[serde(default)]
    pub guardian: Option<String>,
}

/// A subject's metadata (never values). Region, birth date and guardian are
/// personal data, released only by a purpose-checked, audited read.
#[derive(Serialize, ToSchema)]
pub struct SubjectView {
    /// Subject id.
    pub id: String,
    /// Jurisdiction id.
    pub jurisdiction: String,
    /// Home region.
    pub region: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Linked guardian.
    pub guardian: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Erasure time, if erased.
    pub erased_at: Option<String>,
    /// Purposes with a live consent.
    pub consents: Vec<String>,
    /// Purposes objected to.
    pub objections: Vec<String>,
    /// Restricted since, if restricted.
    pub restricted_since: Option<String>,
    /// Opted out of the sale and sharing of personal information and of
    /// targeted advertising since (CCPA §1798.120), if so.
    pub opted_out_since: Option<String>,
    /// The use of sensitive personal information limited since (CCPA §1798.121), if so.
    pub sensitive_limited_since: Option<String>,
    /// Warnings about the request, e.g. a subject id that looks like an email
    /// address or a phone number (personal data in every URL that names it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<custos_core::subject::Subject> for SubjectView {
    fn from(s: custos_core::subject::Subject) -> Self {
        use custos_core::subject::ConsentStatus;
        SubjectView {
            id: s.id.to_string(),
            jurisdiction: s.jurisdiction,
            region: s.region,
            birth_date: s.birth_date.map(format_date),
            guardian: s.guardian.map(|g| g.to_string()),
            created_at: s.created_at.to_string(),
            erased_at: s.erased_at.map(|t| t.to_string()),
            consents: s
                .state
                .consents
                .iter()
                .filter(|(_, c)| c.status == ConsentStatus::Granted)
                .map(|(p, _)| p.clone())
                .collect(),
            objections: s.state.objections.keys().cloned().collect(),
            restricted_since: s.state.restricted_since.map(|t| t.to_string()),
            opted_out_since: s.state.opted_out_since.map(|t| t.to_string()),
            sensitive_limited_since: s.state.sensitive_limited_since.map(|t| t.to_string()),
            warnings: Vec::new(),
        }
    }
}

/// Creates a subject (and their data key). Region, birth date and guardian
/// are sealed under the subject's key. An id that looks like an email address
/// or a phone number is accepted with a warning in `warnings`.
#[utoipa::path(post, path = "/v1/subjects", tag = "subjects", request_body = CreateSubject,
    responses((status = 201, body = SubjectView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_subject(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateSubject>,
) -> Result<(StatusCode, axum::Json<SubjectView>), ApiError> {
    let by = require_for(&state, &auth, CHOICES, "create subjects", &body.id, None).await?.by();
    let birth_date = body.birth_date.as_deref().map(parse_date).transpose().map_err(|_| {
        ApiError::new(ProblemKind::InvalidBody, "invalid body at `birth_date`: expected a date of the form YYYY-MM-DD")
    })?;
    let subject = state
        .run(move |v| {
            Ok(v.add_subject(
                &NewSubject {
                    id: &body.id,
                    jurisdiction: &body.jurisdiction,
                    region: body.region.as_deref(),
                    birth_date,
                    guardian: body.guardian.as_deref(),
                },
                &by,
            )?)
        })
        .await?;
    let warnings = subject.id.warnings().into_iter().map(str::to_string).collect();
    Ok((StatusCode::CREATED, axum::Json(SubjectView { warnings, ..subject.into() })))
}

/// A subject's metadata, consents, objections and restriction (no values),
/// for a purpose.
///
/// Region, birth date and guardian are personal data: they are released to
/// the key's actor for `purpose` when the policy lets that actor read at least
/// one category of the subject's data for it (the same decision as a read,
/// with its reason when denied), and the release is audited. A service key
/// asking for a purpose outside its scope is refused (403, audited).
#[utoipa::path(get, path = "/v1/subjects/{id}", tag = "subjects",
    params(("id" = String, Path, description = "Subject id"), PurposeQuery),
    responses((status = 200, body = SubjectView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "Forbidden for the key's role or purposes, or denied by the policy (with `reason`)"),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_subject(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<axum::Json<SubjectView>, ApiError> {
    require_for(&state, &auth, WRITERS, "read subjects", &id, Some(&q.purpose)).await?;
    let (p, by) = subject_reader(&state, &auth, &id, &q.purpose).await?;
    let result = state
        .run(move |v| {
            let read = Read { subject: &id, purpose: &q.purpose, actor: &p.actor, scope: p.scope.as_deref(), by: &by };
            Ok(v.subject_metadata(&read)?)
        })
        .await;
    count_decision(&state, &result, 1);
    Ok(axum::Json(result?.into()))
}

/// A value to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutItem {
    /// The value (1 byte to 64 KiB).
    #[schema(value_type = String, min_length = 1, max_length = 65536)]
    pub value: SecretString,
    /// Source id: `provided`, `automatic`, or a declared third-party source.
    pub source: String,
    /// Purpose it is collected for.
    pub purpose: String,
}

/// The version a write created.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Written {
    /// Category id.
    pub category: String,
    /// The new version.
    pub version: u32,
}

/// Stores a value as the new current version of its category.
#[utoipa::path(put, path = "/v1/subjects/{id}/data/{category}", tag = "data",
    params(("id" = String, Path, description = "Subject id"), ("category" = String, Path, description = "Category id")),
    request_body = PutItem,
    responses((status = 200, body = Written), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn put_item(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, category)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutItem>,
) -> Result<axum::Json<Written>, ApiError> {
    let p = require_for(&state, &auth, WRITERS, "write personal data", &id, Some(&body.purpose)).await?;
    let (actor, scope, by) = (p.actor.clone(), p.scope.clone(), p.by());
    let written = state
        .run(move |v| {
            let put = Put {
                subject: &id,
                category: &category,
                value: body.value.expose(),
                source: &body.source,
                purpose: &body.purpose,
            };
            let version =
                v.put_batch(std::slice::from_ref(&put), &actor, scope.as_deref(), &by)?.first().copied().unwrap_or(0);
            Ok(Written { category, version })
        })
        .await?;
    Ok(axum::Json(written))
}

/// The purpose of a read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    /// Purpose id; the key must be allowed to read for it.
    pub purpose: String,
}

/// A released value with its metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    /// Category id.
    pub category: String,
    /// The value (for tokenized card numbers: the token and last four digits).
    #[schema(value_type = String)]
    pub value: SecretString,
    /// Version.
    pub version: u32,
    /// Source id.
    pub source: String,
    /// Purpose it was collected for.
    pub collected_for: String,
    /// Collection time.
    pub collected_at: String,
    /// Notice version in force at collection.
    pub notice_version: String,
    /// For prior versions: when superseded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<String>,
    /// For prior versions: when due for deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<String>,
    /// Legal basis of this read.
    pub basis: String,
}

impl From<Revealed> for ItemView {
    fn from(r: Revealed) -> Self {
        ItemView {
            category: r.category,
            value: r.value.into(),
            version: r.version,
            source: r.source,
            collected_for: r.collected_for,
            collected_at: r.collected_at.to_string(),
            notice_version: r.notice_version,
            superseded_at: r.superseded_at.map(|t| t.to_string()),
            delete_after: r.delete_after.map(format_date),
            basis: r.basis.as_str().to_string(),
        }
    }
}

fn count_decision(state: &AppState, result: &Result<impl Sized, ApiError>, allowed: u64) {
    match result {
        Ok(_) => state.metrics.observe_decision("allow", allowed),
        Err(e) => {
            if let Some(reason) = e.problem().reason {
                state.metrics.observe_decision(&reason, 1);
            }
        }
    }
}

/// The actor, key scope and acting principal of a key whose role may read.
/// Whether it may read for the purpose is the decision engine's (a service
/// key's scope goes with the read; a purpose outside it is denied with
/// `purpose_not_bound` and audited by the vault, with the key's id).
/// The principal is shared (an `Arc` from the principal cache), so a read
/// copies none of its strings but the key id its `By` holds.
fn reader(auth: &Auth) -> Result<(Arc<Principal>, By), ApiError> {
    let by = auth.require_reader()?.by();
    Ok((auth.0.clone(), by))
}

/// [`reader`] on a route about `subject`: a role refused is audited.
async fn subject_reader(
    state: &AppState,
    auth: &Auth,
    subject: &str,
    purpose: &str,
) -> Result<(Arc<Principal>, By), ApiError> {
    match reader(auth) {
        Ok(r) => Ok(r),
        Err(refused) => Err(audited_refusal(state, auth, subject, Some(purpose), refused).await),
    }
}

/// Reads the current value of one category for a purpose.
#[utoipa::path(get, path = "/v1/subjects/{id}/data/{category}", tag = "data",
    params(("id" = String, Path, description = "Subject id"), ("category" = String, Path, description = "Category id"), PurposeQuery),
    responses((status = 200, body = ItemView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "Forbidden for the key's role or purposes, or denied by the policy (with `reason`)"),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn read_item(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, category)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<Response, ApiError> {
    let (p, by) = subject_reader(&state, &auth, &id, &q.purpose).await?;
    let result = state
        .run(move |v| {
            let read = Read { subject: &id, purpose: &q.purpose, actor: &p.actor, scope: p.scope.as_deref(), by: &by };
            Ok(v.get(&read, &category)?)
        })
        .await;
    count_decision(&state, &result, 1);
    Ok(json_response(StatusCode::OK, &ItemView::from(result?)))
}

/// Every value a purpose may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAllView {
    /// Values released.
    pub items: Vec<ItemView>,
    /// Categories denied, with their reasons.
    pub denied: Vec<DeniedView>,
}

/// One denied category.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeniedView {
    /// Category id.
    pub category: String,
    /// Reason code.
    pub reason: String,
    /// Sentence.
    pub detail: String,
}

/// Reads every current value the purpose may use.
#[utoipa::path(get, path = "/v1/subjects/{id}/data", tag = "data",
    params(("id" = String, Path, description = "Subject id"), PurposeQuery),
    responses((status = 200, body = ReadAllView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn read_all(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<Response, ApiError> {
    let (p, by) = subject_reader(&state, &auth, &id, &q.purpose).await?;
    let result = state
        .run(move |v| {
            Ok(v.get_all(&Read {
                subject: &id,
                purpose: &q.purpose,
                actor: &p.actor,
                scope: p.scope.as_deref(),
                by: &by,
            })?)
        })
        .await;
    let n = result.as_ref().map_or(0, |(items, _)| items.len() as u64);
    count_decision(&state, &result, n);
    let (items, denied) = result?;
    for (_, d) in &denied {
        state.metrics.observe_decision(d.reason.code(), 1);
    }
    let view = ReadAllView {
        items: items.into_iter().map(Into::into).collect(),
        denied: denied
            .into_iter()
            .map(|(category, d)| DeniedView { category, reason: d.reason.code().to_string(), detail: d.sentence })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

/// Every version of a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// Versions, newest first.
    pub versions: Vec<ItemView>,
}

/// Every version of a value, newest first.
#[utoipa::path(get, path = "/v1/subjects/{id}/data/{category}/history", tag = "data",
    params(("id" = String, Path, description = "Subject id"), ("category" = String, Path, description = "Category id"), PurposeQuery),
    responses((status = 200, body = HistoryView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn read_history(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, category)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<Response, ApiError> {
    let (p, by) = subject_reader(&state, &auth, &id, &q.purpose).await?;
    let result = state
        .run(move |v| {
            let read = Read { subject: &id, purpose: &q.purpose, actor: &p.actor, scope: p.scope.as_deref(), by: &by };
            Ok(v.history(&read, &category)?)
        })
        .await;
    count_decision(&state, &result, 1);
    let view = HistoryView { versions: result?.into_iter().map(Into::into).collect() };
    Ok(json_response(StatusCode::OK, &view))
}

/// Who records a consent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// Given or withdrawn by this linked guardian on the subject's behalf.
    #[serde(default)]
    pub by_guardian: Option<String>,
}

/// Nothing to return.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

async fn optional_consent_body(headers: &HeaderMap, body: Bytes) -> Result<ConsentBody, ApiError> {
    if body.is_empty() {
        return Ok(ConsentBody::default());
    }
    if !crate::extract::is_json(headers) {
        return Err(ApiError::new(
            crate::problem::ProblemKind::UnsupportedMediaType,
            "send the body as `Content-Type: application/json`",
        ));
    }
    crate::extract::parse_json(&body, "body")
}

/// Records consent to a purpose.
#[utoipa::path(put, path = "/v1/subjects/{id}/consents/{purpose}", tag = "choices",
    params(("id" = String, Path, description = "Subject id"), ("purpose" = String, Path, description = "Purpose id")),
    request_body(content = Option<ConsentBody>, description = "Optional: the linked guardian giving consent"),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn grant_consent(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, purpose)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<Done>, ApiError> {
    change_consent(&state, &auth, id, purpose, &headers, body, true).await
}

/// Withdraws consent to a purpose: processing for it stops at once.
#[utoipa::path(delete, path = "/v1/subjects/{id}/consents/{purpose}", tag = "choices",
    params(("id" = String, Path, description = "Subject id"), ("purpose" = String, Path, description = "Purpose id")),
    request_body(content = Option<ConsentBody>, description = "Optional: the linked guardian withdrawing consent"),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn withdraw_consent(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, purpose)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<Done>, ApiError> {
    change_consent(&state, &auth, id, purpose, &headers, body, false).await
}

/// Grants or withdraws a consent, by the subject or their linked guardian.
async fn change_consent(
    state: &AppState,
    auth: &Auth,
    id: String,
    purpose: String,
    headers: &HeaderMap,
    body: Bytes,
    granted: bool,
) -> Result<axum::Json<Done>, ApiError> {
    let by = auth.require(CHOICES, if granted { "record consent" } else { "withdraw consent" });
    let by = match by {
        Ok(p) => p.by(),
        Err(refused) => return Err(audited_refusal(state, auth, &id, Some(&purpose), refused).await),
    };
    let body = optional_consent_body(headers, body).await?;
    state
        .run(move |v| {
            let guardian = body.by_guardian.as_deref();
            let result = if granted {
                v.grant_consent(&id, &purpose, guardian, &by)
            } else {
                v.withdraw_consent(&id, &purpose, guardian, &by)
            };
            Ok(result?)
        })
        .await?;
    Ok(axum::Json(Done { ok: true }))
}

/// The result of an erasure.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    /// Item versions made unreadable.
    pub items_destroyed: u64,
}

/// Erases a subject by destroying their data key.
#[utoipa::path(post, path = "/v1/subjects/{id}/erasure", tag = "subjects",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Erased), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn erase(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Erased>, ApiError> {
    let by = require_for(&state, &auth, &[Role::Admin], "erase subjects", &id, None).await?.by();
    let n = state.run(move |v| Ok(v.erase(&id, &by)?)).await?;
    Ok(axum::Json(Erased { items_destroyed: n }))
}

/// A detokenization request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeBody {
    /// The token, `tok_…`.
    pub token: String,
    /// Purpose of the read; the policy must list it as allowed to detokenize.
    pub purpose: String,
}

/// The full value behind a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Detokenized {
    /// The full value.
    #[schema(value_type = String)]
    pub value: SecretString,
}

/// Recovers the full card number behind a token, for a purpose allowed to detokenize.
#[utoipa::path(post, path = "/v1/detokenize", tag = "data", request_body = DetokenizeBody,
    responses((status = 200, body = Detokenized), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn detokenize(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(body): ApiJson<DetokenizeBody>,
) -> Result<Response, ApiError> {
    let (p, by) = reader(&auth)?;
    let result =
        state.run(move |v| Ok(v.detokenize(&body.token, &body.purpose, &p.actor, p.scope.as_deref(), &by)?)).await;
    count_decision(&state, &result, 1);
    Ok(json_response(StatusCode::OK, &Detokenized { value: result?.into() }))
}

/// [`Auth::require`] on a route about `subject`: a refusal is audited (see
/// [`audited_refusal`]) like every other refused access to a subject.
async fn require_for<'a>(
    state: &AppState,
    auth: &'a Auth,
    roles: &[Role],
    what: &str,
    subject: &str,
    purpose: Option<&str>,
) -> Result<&'a crate::auth::Principal, ApiError> {
    match auth.require(roles, what) {
        Ok(p) => Ok(p),
        Err(refused) => Err(audited_refusal(state, auth, subject, purpose, refused).await),
    }
}

/// Audits a key refused access to a subject or a change of their choices (`access_denied`,
/// reason `role_not_allowed`, the key's id as `by`) and returns the refusal.
pub(crate) async fn audited_refusal(
    state: &AppState,
    auth: &Auth,
    subject: &str,
    purpose: Option<&str>,
    refused: ApiError,
) -> ApiError {
    let principal = auth.0.clone();
    let subject = subject.to_string();
    let purpose = purpose.map(str::to_string);
    match state.run(move |v| Ok(v.audit_role_refusal(&principal, &subject, purpose.as_deref())?)).await {
        Ok(()) => refused,
        Err(e) => e,
    }
}
