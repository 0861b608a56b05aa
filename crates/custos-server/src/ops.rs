//! Operational and oversight routes: health, readiness, metrics, the policy,
//! the rendered notice, the audit log, and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use custos_core::policy::render;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::AppState;
use crate::auth::{Auth, Role};
use crate::extract::ApiQuery;
use crate::problem::{ApiError, Problem, ProblemKind, ProblemTypes};

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// The store can write: it takes the write path as far as it goes without
/// changing anything (the write lock, the audit head checked against the last
/// entry) and lets go. 503 when the next write would fail (read-only or
/// standby database, a lock held elsewhere for longer than a write waits, a
/// damaged chain head); this can take as long as a write waits for its lock.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<axum::Json<Health>, ApiError> {
    state
        .run(|v| {
            v.store()
                .check_writable()
                .map_err(|e| ApiError::new(ProblemKind::Unavailable, format!("the store cannot write: {e}")))?;
            // A store rotated to a master key this process does not hold: every
            // read of a re-wrapped key and every new subject would fail.
            v.check_master_key().map_err(ApiError::from)
        })
        .await?;
    Ok(axum::Json(Health { status: "ready".into() }))
}

/// Prometheus metrics (admin and auditor keys).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<Arc<AppState>>, auth: Auth) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin, Role::Auditor], "read metrics")?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response())
}

/// A summary of the policy in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// Notice id.
    pub notice: String,
    /// Notice version stamped on items.
    pub version: String,
    /// Effective date.
    pub effective: String,
    /// Categories: id, name, CCPA letter, sensitive.
    pub categories: Vec<CategoryView>,
    /// Purposes: id, name, categories, legal basis per jurisdiction.
    pub purposes: Vec<PurposeView>,
    /// Recipients: id, name, kind, purposes.
    pub recipients: Vec<RecipientView>,
    /// Jurisdictions: id, name, rights.
    pub jurisdictions: Vec<JurisdictionView>,
}

/// A category.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// CCPA category letter.
    pub ccpa: String,
    /// Sensitive personal information.
    pub sensitive: bool,
}

/// A purpose.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Categories it may use.
    pub categories: Vec<String>,
    /// Legal basis per jurisdiction id (absent: no basis there).
    pub legal_basis: std::collections::BTreeMap<String, String>,
}

/// A recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientView {
    /// Id (the actor of a service key).
    pub id: String,
    /// Name.
    pub name: String,
    /// Purposes it may receive data for.
    pub purposes: Vec<String>,
}

/// A jurisdiction.
#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Rights.
    pub rights: Vec<String>,
}

/// The policy in force, summarised.
#[utoipa::path(get, path = "/v1/policy", tag = "policy",
    responses((status = 200, body = PolicyView), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn policy(State(state): State<Arc<AppState>>, _auth: Auth) -> axum::Json<PolicyView> {
    let p = state.vault.policy();
    let doc = p.document();
    axum::Json(PolicyView {
        notice: doc.notice.id.value.clone(),
        version: p.version().to_string(),
        effective: doc.notice.effective.value.clone(),
        categories: doc
            .categories
            .iter()
            .map(|c| CategoryView {
                id: c.id.value.clone(),
                name: c.name.clone(),
                ccpa: c.ccpa.value.clone(),
                sensitive: c.sensitive,
            })
            .collect(),
        purposes: p
            .purpose_ids()
            .map(|id| {
                let d = p.purpose_doc(id);
                let rules = p.purpose_rules(id);
                PurposeView {
                    id: d.id.value.clone(),
                    name: d.name.clone(),
                    categories: p.categories_for(id).map(|c| p.category_doc(c).id.value.clone()).collect(),
                    legal_basis: p
                        .jurisdiction_ids()
                        .filter_map(|j| {
                            rules.basis_in(j).map(|b| (p.jurisdiction_doc(j).id.value.clone(), b.as_str().to_string()))
                        })
                        .collect(),
                }
            })
            .collect(),
        recipients: doc
            .recipients
            .iter()
            .map(|r| RecipientView {
                id: r.id.value.clone(),
                name: r.name.clone(),
                purposes: r.purposes.iter().map(|x| x.value.clone()).collect(),
            })
            .collect(),
        jurisdictions: doc
            .jurisdictions
            .iter()
            .map(|j| JurisdictionView {
                id: j.id.value.clone(),
                name: j.name.clone(),
                rights: j.rights.iter().map(|r| r.as_str().to_string()).collect(),
            })
            .collect(),
    })
}

/// The human-readable privacy notice, rendered from the policy (public).
#[utoipa::path(get, path = "/notice", tag = "policy",
    responses((status = 200, description = "The privacy notice as an HTML page", content_type = "text/html")))]
pub async fn notice(State(state): State<Arc<AppState>>) -> Html<String> {
    Html(render::render(state.vault.policy(), render::Format::Html))
}

/// Which audit entries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this subject id (matched by its pseudonym).
    #[serde(default)]
    pub subject: Option<String>,
    /// Start after this sequence number.
    #[serde(default)]
    pub after: Option<u64>,
    /// At most this many entries (1 to 1000, default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Sequence number.
    pub seq: u64,
    /// The event (canonical JSON body).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// This entry's hash (hex).
    pub hash: String,
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries in sequence order.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent at the end.
    pub next_after: Option<u64>,
}

/// Audit entries, optionally about one subject (auditor and admin keys).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn audit_entries(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    auth.require(&[Role::Admin, Role::Auditor], "read the audit log")?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::new(ProblemKind::InvalidQuery, "limit must be between 1 and 1000"));
    }
    let page = state
        .run(move |v| {
            let pseudonym = q.subject.as_deref().map(|s| v.pseudonym(s));
            let mut after = q.after.unwrap_or(0);
            let mut entries = Vec::new();
            // Scan forward in chunks until the page is full or the log ends.
            loop {
                let chunk = v.store().audit_entries(after, 1000).map_err(|e| ApiError::internal(&e))?;
                let Some(last) = chunk.last() else { break };
                let last_seq = last.seq;
                for e in chunk {
                    after = e.seq;
                    let event: serde_json::Value = serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null);
                    let matches =
                        pseudonym.as_deref().is_none_or(|p| event.get("subject").and_then(|s| s.as_str()) == Some(p));
                    if matches {
                        entries.push(AuditEntryView { seq: e.seq, event, hash: hex(&e.hash) });
                        if entries.len() == limit {
                            return Ok(AuditPage { entries, next_after: Some(after) });
                        }
                    }
                }
                after = last_seq;
            }
            Ok(AuditPage { entries, next_after: None })
        })
        .await?;
    Ok(axum::Json(page))
}

/// The outcome of a verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// Whether the chain verified.
    pub ok: bool,
    /// Entries verified.
    pub entries: u64,
    /// Head hash (hex), when it verified.
    pub head: Option<String>,
    /// The first break, when it did not.
    pub error: Option<String>,
    /// Signed checkpoints checked (their signatures and positions in the chain).
    pub checkpoints: usize,
    /// Entries after the last checkpoint: no signature vouches for them yet.
    pub unsigned: u64,
}

/// Verifies the audit chain end to end (auditor and admin keys).
#[utoipa::path(post, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification, description = "The chain verifies"),
        (status = 409, body = Verification, description = "The chain is broken: `error` names the first bad entry"),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn audit_verify(State(state): State<Arc<AppState>>, auth: Auth) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin, Role::Auditor], "verify the audit log")?;
    let result = state.run(|v| Ok(v.verify_audit()?)).await?;
    Ok(match result {
        Ok(found) => (
            StatusCode::OK,
            axum::Json(Verification {
                ok: true,
                entries: found.head.seq,
                head: Some(hex(&found.head.hash)),
                error: None,
                checkpoints: found.checkpoints,
                unsigned: found.unsigned,
            }),
        )
            .into_response(),
        Err(broken) => (
            StatusCode::CONFLICT,
            axum::Json(Verification {
                ok: false,
                entries: 0,
                head: None,
                error: Some(broken.to_string()),
                checkpoints: 0,
                unsigned: 0,
            }),
        )
            .into_response(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Custos API", description = "Purpose-checked, audited, encrypted storage of personal data, governed by a privacy notice written as a policy."),
    paths(
        crate::api::create_subject, crate::api::get_subject, crate::api::read_all, crate::api::put_item,
        crate::api::read_item, crate::api::read_history, crate::api::grant_consent, crate::api::withdraw_consent,
        crate::choices::object, crate::choices::restrict, crate::choices::lift_restriction,
        crate::choices::opt_out, crate::choices::opt_back_in, crate::choices::limit_sensitive,
        crate::choices::lift_sensitive_limit, crate::api::erase,
        crate::api::detokenize, crate::ingest::ingest,
        crate::requests::submit_request, crate::requests::list_requests, crate::requests::get_request,
        crate::requests::verify_request, crate::requests::extend_request, crate::requests::deny_request,
        crate::requests::withdraw_request, crate::requests::execute_request,
        crate::request_reports::request_response, crate::request_reports::request_metrics,
        policy, audit_entries, audit_verify, notice, healthz, readyz, metrics, openapi,
        crate::checkpoints::audit_keys
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &Idempotency, &ProblemsAndConstraints, &ProblemTypes),
)]
pub struct ApiDoc;

/// Documents what the server does and the annotations cannot say: every
/// problem response is `application/problem+json` (not `application/json`),
/// and the path and query parameters carry their limits and formats.
struct ProblemsAndConstraints;

impl utoipa::Modify for ProblemsAndConstraints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{RefOr, Schema};

        let string = |min: usize, max: usize, pattern: &str| {
            RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(min))
                    .max_length(Some(max))
                    .pattern(Some(pattern))
                    .build(),
            ))
        };
        let integer = |min: u64, max: Option<u64>, default: Option<u64>| {
            RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(min as f64))
                    .maximum(max.map(|m| m as f64))
                    .default(default.map(serde_json::Value::from))
                    .build(),
            ))
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else { continue };
                    let is_problem = response.content.get("application/json").is_some_and(
                        |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")),
                    );
                    if is_problem && let Some(content) = response.content.shift_remove("application/json") {
                        response.content.insert("application/problem+json".to_string(), content);
                    }
                }
                for parameter in operation.parameters.iter_mut().flatten() {
                    let schema = match (parameter.parameter_in.clone(), parameter.name.as_str()) {
                        // SubjectId::parse: 1 to 128 printable ASCII characters, no spaces.
                        (ParameterIn::Path, "id") => string(1, 128, "^[\\x21-\\x7E]+$"),
                        (ParameterIn::Path, "category")
                        | (ParameterIn::Path, "purpose")
                        | (ParameterIn::Query, "purpose") => string(1, 128, "^[\\x21-\\x7E]+$"),
                        (ParameterIn::Query, "subject") => string(1, 128, "^[\\x21-\\x7E]+$"),
                        (ParameterIn::Query, "limit") => integer(1, Some(1000), Some(100)),
                        (ParameterIn::Query, "after") => integer(0, None, Some(0)),
                        _ => continue,
                    };
                    parameter.schema = Some(schema);
                    let note = match parameter.name.as_str() {
                        "id" | "subject" => Some("Subject id: 1 to 128 printable ASCII characters, no spaces"),
                        "category" => Some("A category id declared in the policy (see GET /v1/policy)"),
                        "purpose" => Some("A purpose id declared in the policy (see GET /v1/policy)"),
                        _ => None,
                    };
                    if let Some(note) = note {
                        parameter.description = Some(note.to_string());
                    }
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("cst_…").build()),
        );
    }
}

/// Adds `Idempotency-Key` to every write of [`crate::WRITE_ROUTES`], with the
/// 400 and 409 it can cause and the `Idempotent-Replayed` header of replays.
struct Idempotency;

impl utoipa::Modify for Idempotency {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder};

        let key_schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(crate::idempotency::MAX_KEY_LEN))
            .pattern(Some("^[\\x21-\\x7E]+$"));
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1-255 visible ASCII characters, scoped to the API key. A retry with the same key and the same \
                 request returns the first response (replayed with `Idempotent-Replayed: true`) and writes \
                 nothing; the same key with a different request is a 409. 5xx responses are not recorded.",
            ))
            .schema(Some(key_schema))
            .build();
        let replayed = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])))
            .description(Some("Present (`true`) when this is the recorded response to an earlier request with the same Idempotency-Key"))
            .build();
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                    )
                    .build(),
            )
        };
        for (method, path) in crate::WRITE_ROUTES {
            let Some(item) = openapi.paths.paths.get_mut(*path) else { continue };
            let operation = match *method {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                "PUT" => item.put.as_mut(),
                "DELETE" => item.delete.as_mut(),
                "PATCH" => item.patch.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            operation.parameters.get_or_insert_with(Vec::new).push(parameter.clone());
            let responses = &mut operation.responses.responses;
            responses.entry("400".into()).or_insert_with(|| problem("Invalid request, or an invalid Idempotency-Key"));
            responses.entry("409".into()).or_insert_with(|| problem(crate::idempotency::REUSED));
            // Anything recorded can be replayed: not a 401 or 413 (refused before recording), nor a 5xx.
            for (status, response) in responses.iter_mut() {
                let replayable =
                    status.starts_with('2') || (status.starts_with('4') && status != "401" && status != "413");
                if let (true, RefOr::T(response)) = (replayable, response) {
                    response.headers.insert("Idempotent-Replayed".into(), replayed.clone());
                }
            }
        }
    }
}

/// This document (public).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}
