//! `GET /api/v1/audit?nhs_number=`: who looked at a patient (admins).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use domain::values::NhsNumber;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{accesses_to, Access};
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, QueryParams};
use crate::policy::{authorize, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

/// The patient whose accesses to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The patient's NHS number.
    pub nhs_number: String,
    /// At most this many, newest first (default 500).
    pub limit: Option<u32>,
}

/// Who was shown this patient's data, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = [Access]), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ReadAudit,
    )?;
    let nhs_number = NhsNumber::parse(&query.nhs_number)
        .map_err(|e| ApiError::refused_field("invalid_nhs_number", "nhs_number", e.to_string()))?;
    let limit = i64::from(query.limit.unwrap_or(500).min(10_000));
    let accesses = accesses_to(&state.db, &nhs_number.digits(), limit).await?;
    // Reading who looked is itself a look.
    crate::audit::record(
        &state.db,
        &caller,
        "read_audit",
        "/api/v1/audit",
        &[nhs_number.digits()],
    )
    .await?;
    Ok(Json(accesses))
}
