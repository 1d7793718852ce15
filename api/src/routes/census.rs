//! Go-live of a hospital's feed (issue 16): an admin sends the PAS's census
//! of current inpatients, as CSV, to see what it would do (a dry run) and
//! then to bring the open spells in (`infra::hl7::census`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use infra::hl7::census::CensusError;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::feeds::{admin, pas_code};
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, QueryParams};
use crate::state::AppState;

/// The largest census accepted: about 5,000 rows of a few hundred bytes.
pub const CENSUS_LIMIT: usize = 2 * 1024 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(census))
        .layer(DefaultBodyLimit::max(CENSUS_LIMIT))
}

/// `?facility=&dry_run=` of a census.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CensusQuery {
    /// The PAS's sending facility, as its ADT messages send it in MSH-4:
    /// the census's visits become the spells those messages will name.
    pub facility: String,
    /// Report what the census would do, and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Brings a hospital's current inpatients in from its PAS's census (CSV
/// with a header row: visit_number, nhs_number, family_name, given_name,
/// date_of_birth, point_of_care, bed, admitted_at), or with `dry_run`
/// reports what it would do. Visits already open are left as they are, so
/// a census may be sent again.
#[utoipa::path(post, path = "/api/v1/feeds/census", tag = "feeds", params(CensusQuery),
    request_body(content = String, content_type = "text/csv", description = "The census, with a header row"),
    responses((status = 200, body = Object, description = "Each row's outcome: admit, already_open or refused (with the column, rule and words)"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn census(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<CensusQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &caller)?;
    let facility = pas_code("facility", &query.facility, true)?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"));
    if !csv {
        return Err(ApiError::NotCsv);
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::field("body", "the census could not be read")
        }
    })?;
    let by = infra::hl7::census::actor(&facility, &caller.principal.sub, &caller.principal.name);
    let report = state
        .adt
        .census(&facility, &body, query.dry_run, by, Utc::now())
        .await
        .map_err(|error| match error {
            CensusError::Unavailable => {
                ApiError::Unavailable("the event store is unavailable; try again shortly".into())
            }
            other => ApiError::refused_field("invalid_census", "body", other.to_string()),
        })?;
    Ok(Json(report))
}
