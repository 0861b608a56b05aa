//! What rights requests produce: the response a person receives
//! (`GET /v1/requests/{request_id}/response?format=json|html|csv`, admin
//! keys only: it holds the person's data once the request is verified and
//! carried out) and the year's request metrics (`GET
//! /v1/reports/request-metrics?year=Y`, admin and auditor keys; CCPA 11 CCR
//! §7102). Bodies holding personal data are wiped once sent.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::ResponseFormat;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::{Auth, Role};
use crate::extract::{ApiPath, ApiQuery};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::secret::{json_response, wiped_body};

/// The response's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResponseQuery {
    /// `json` (default; schema `custos-request-response/1`), `html` or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// The response the person receives to a request (admin keys).
///
/// For an access or portability request that is being or was carried out,
/// it holds the access report (`report`: every item of GDPR Art. 15 and
/// CCPA §1798.110, `legal_items` naming the member that answers each; values
/// the policy never discloses are named, not shown; card numbers masked);
/// each production is audited (`access_report_produced`, categories only).
/// Before the identity is verified, and for every other kind, it states
/// where the request stands, who answers and where to complain.
#[utoipa::path(get, path = "/v1/requests/{request_id}/response", tag = "requests",
    params(("request_id" = String, Path, description = "Request id", pattern = "^rq_[0-9a-fA-F]{32}$"),
        ResponseQuery),
    responses(
        (status = 200, description = "The response, as JSON (`custos-request-response/1`), an HTML page or CSV",
            content((Object = "application/json"), (String = "text/html"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_response(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ResponseQuery>,
) -> Result<Response, ApiError> {
    let by = auth.require(&[Role::Admin], "read a request's response")?.by();
    let format = match q.format.as_deref() {
        None => ResponseFormat::Json,
        Some(f) => ResponseFormat::parse(f).ok_or_else(|| {
            ApiError::new(ProblemKind::InvalidQuery, "invalid query string at `format`: expected json, html or csv")
        })?,
    };
    let body = state.run(move |v| Ok(v.request_response(&id, &by)?.render(format))).await?;
    let mut resp = (StatusCode::OK, wiped_body(body.into_bytes())).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(resp)
}

/// The year of the metrics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// The calendar year in which the requests were received.
    #[param(minimum = 1970, maximum = 9998)]
    pub year: i32,
}

/// Request metrics for a year (admin and auditor keys; CCPA 11 CCR §7102).
///
/// Per request kind: received, complied with in whole or in part, denied,
/// withdrawn, still open, and the median and mean calendar days from receipt
/// to the response.
#[utoipa::path(get, path = "/v1/reports/request-metrics", tag = "requests", params(MetricsQuery),
    responses((status = 200, description = "Per kind: received, complied, denied, withdrawn, open, median_days, mean_days",
            content_type = "application/json"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_metrics(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin, Role::Auditor], "read request metrics")?;
    if !(1970..=9998).contains(&q.year) {
        return Err(ApiError::new(ProblemKind::InvalidQuery, "year must be between 1970 and 9998"));
    }
    let metrics = state.run(move |v| Ok(v.request_metrics(q.year)?)).await?;
    Ok(json_response(StatusCode::OK, &metrics))
}
