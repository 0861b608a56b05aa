//! The `/v1/subjects/{id}/…` routes of a subject's standing choices: an
//! objection to a purpose, a restriction of processing (GDPR Art. 18), an
//! opt-out of sale, sharing and targeted advertising (CCPA §1798.120) and a
//! limit on the use of sensitive personal information (CCPA §1798.121).
//!
//! Each is set with `PUT` and lifted with `DELETE` (an objection is not
//! lifted: it is answered). Admin keys only ([`CHOICES`]); a refused role is
//! audited. The vault refuses a choice the subject's jurisdiction does not
//! grant (`right_not_available`) and audits every change.

use std::sync::Arc;

use axum::extract::State;
use custos_vault::{By, VaultError};

use crate::api::{CHOICES, Done, audited_refusal};
use crate::auth::Auth;
use crate::extract::ApiPath;
use crate::problem::{ApiError, Problem};
use crate::{AppState, SharedVault};

/// Records an objection to a purpose.
#[utoipa::path(put, path = "/v1/subjects/{id}/objections/{purpose}", tag = "choices",
    params(("id" = String, Path, description = "Subject id"), ("purpose" = String, Path, description = "Purpose id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn object(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath((id, purpose)): ApiPath<(String, String)>,
) -> Result<axum::Json<Done>, ApiError> {
    let by = match auth.require(CHOICES, "record objections") {
        Ok(p) => p.by(),
        Err(refused) => return Err(audited_refusal(&state, &auth, &id, Some(&purpose), refused).await),
    };
    state.run(move |v| Ok(v.object(&id, &purpose, &by)?)).await?;
    Ok(axum::Json(Done { ok: true }))
}

/// A standing choice's vault call: `(vault, subject, on, by)`.
type SetChoice = fn(&SharedVault, &str, bool, &By) -> Result<(), VaultError>;

/// Sets (`on`) or lifts a standing choice after checking the caller's role.
async fn switch(
    state: Arc<AppState>,
    auth: Auth,
    id: String,
    on: bool,
    what: &'static str,
    set: SetChoice,
) -> Result<axum::Json<Done>, ApiError> {
    let by = match auth.require(CHOICES, what) {
        Ok(p) => p.by(),
        Err(refused) => return Err(audited_refusal(&state, &auth, &id, None, refused).await),
    };
    state.run(move |v| Ok(set(v, &id, on, &by)?)).await?;
    Ok(axum::Json(Done { ok: true }))
}

/// Restricts processing of a subject's data (storage and legal obligations only).
#[utoipa::path(put, path = "/v1/subjects/{id}/restriction", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn restrict(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, true, "restrict processing", SharedVault::set_restricted).await
}

/// Lifts a restriction.
#[utoipa::path(delete, path = "/v1/subjects/{id}/restriction", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn lift_restriction(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, false, "lift restrictions", SharedVault::set_restricted).await
}

/// Opts the subject out of the sale and sharing of their personal
/// information and of targeted advertising: purposes the policy marks
/// `sale_or_sharing` are then denied (`opted_out`). Refused with
/// `right_not_available` (403) where the jurisdiction grants no opt-out.
#[utoipa::path(put, path = "/v1/subjects/{id}/opt-out", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn opt_out(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, true, "record opt-outs", SharedVault::set_opted_out).await
}

/// Opts the subject back in to sale and sharing (always allowed).
#[utoipa::path(delete, path = "/v1/subjects/{id}/opt-out", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn opt_back_in(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, false, "lift opt-outs", SharedVault::set_opted_out).await
}

/// Limits the use of the subject's sensitive personal information to the
/// purposes CCPA §7027(m) permits: other purposes are then denied sensitive
/// categories (`sensitive_use_limited`). Refused with `right_not_available`
/// (403) where the jurisdiction grants no such right.
#[utoipa::path(put, path = "/v1/subjects/{id}/sensitive-limit", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn limit_sensitive(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, true, "limit sensitive use", SharedVault::set_sensitive_limited).await
}

/// Lifts the limit on the use of sensitive personal information (always allowed).
#[utoipa::path(delete, path = "/v1/subjects/{id}/sensitive-limit", tag = "choices",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn lift_sensitive_limit(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<Done>, ApiError> {
    switch(state, auth, id, false, "lift sensitive-use limits", SharedVault::set_sensitive_limited).await
}
