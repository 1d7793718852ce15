//! Reference data: hospitals (with the trust that runs each), wards, teams,
//! care transfer hubs (admins change them) and the versioned delay reasons
//! (shipped with Baton). Everyone signed in reads.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use domain::reference::{Catalogue, Hospital, Hub, ReferenceError, Team, Ward};
use domain::values::{HospitalCode, HubCode, ServiceKind, TeamCode, TrustCode, WardCode};
use infra::reference::{Change, ReferenceStoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::spells::text;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, JsonBody};
use crate::policy::{authorize, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_hospital))
        .routes(routes!(put_ward))
        .routes(routes!(put_team))
        .routes(routes!(put_hub))
        .routes(routes!(hubs))
        .routes(routes!(hospitals))
        .routes(routes!(wards))
        .routes(routes!(teams))
        .routes(routes!(delay_reasons))
}

/// `PUT /api/v1/hospitals/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HospitalRequest {
    /// Its name.
    pub name: String,
    /// The trust that runs it (Baton's extension of the contract: a ward
    /// may be scoped to every hospital of a trust). Leaving it out leaves
    /// the hospital in no trust.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub trust: Option<TrustCode>,
}

/// `PUT /api/v1/hubs/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HubRequest {
    /// Its name.
    pub name: String,
    /// The hospitals it serves: at least one, each known.
    #[schema(value_type = Vec<String>)]
    pub hospitals: BTreeSet<HospitalCode>,
}

/// `PUT /api/v1/wards/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WardRequest {
    /// Its name.
    pub name: String,
    /// Its hospital's code.
    #[schema(value_type = String)]
    pub hospital: HospitalCode,
    /// How many beds (labelled `1..beds`).
    pub beds: u16,
}

/// `PUT /api/v1/teams/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    /// Its name.
    pub name: String,
    /// What it offers.
    #[schema(value_type = Vec<String>)]
    pub services: BTreeSet<ServiceKind>,
    /// Minutes within which it should acknowledge a referral.
    pub response_sla_minutes: u32,
}

fn refused(error: ReferenceStoreError) -> ApiError {
    match error {
        ReferenceStoreError::Refused(rule) => {
            let field = match rule {
                ReferenceError::UnknownHospital | ReferenceError::WardChangesHospital => "hospital",
                ReferenceError::NoBeds | ReferenceError::TooManyBeds => "beds",
                ReferenceError::NoServices => "services",
                ReferenceError::ZeroSla => "response_sla_minutes",
                ReferenceError::NoHospitals | ReferenceError::UnknownHubHospital => "hospitals",
                _ => "",
            };
            ApiError::refused_field(<&'static str>::from(&rule), field, rule.to_string())
        }
        ReferenceStoreError::Database(e) if infra::store::is_unavailable(&e) => {
            ApiError::Unavailable("the database is unavailable; try again shortly".into())
        }
        other => ApiError::internal(other),
    }
}

/// The record's code from the path, once the caller may change reference data.
fn admin<T, E: std::fmt::Display>(
    state: &AppState,
    caller: &Caller,
    code: Result<T, E>,
) -> Result<T, ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ManageReference,
    )?;
    code.map_err(|e| ApiError::field("code", e.to_string()))
}

/// Stores the record (the catalogue checks it) and answers with it.
async fn put<T: Clone + Serialize>(
    state: &AppState,
    caller: &Caller,
    record: T,
    change: fn(T) -> Change,
) -> Result<Json<T>, ApiError> {
    state
        .reference
        .put(change(record.clone()), &caller.principal.sub)
        .await
        .map_err(refused)?;
    Ok(Json(record))
}

/// The catalogue, once the caller may read it.
fn readable(state: &AppState, caller: &Caller) -> Result<Arc<Catalogue>, ApiError> {
    let catalogue = state.reference.snapshot();
    authorize(&caller.principal, &catalogue, Action::ReadReference)?;
    Ok(catalogue)
}

/// Add or rename a hospital (admin).
#[utoipa::path(put, path = "/api/v1/hospitals/{code}", tag = "reference", params(("code" = String, Path)),
    request_body = HospitalRequest,
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_hospital(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<HospitalRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let code = admin(&state, &caller, HospitalCode::parse(code))?;
    let hospital = Hospital {
        code,
        name: text("name", &req.name)?,
        trust: req.trust,
    };
    put(&state, &caller, hospital, Change::Hospital).await
}

/// Add or change a ward (admin). Its beds cannot drop below an occupied one.
#[utoipa::path(put, path = "/api/v1/wards/{code}", tag = "reference", params(("code" = String, Path)),
    request_body = WardRequest,
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_ward(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<WardRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let code = admin(&state, &caller, WardCode::parse(code))?;
    let highest_occupied = state.boards.read(|flow| {
        flow.ward_beds(&code)
            .filter_map(|(bed, _, _)| bed.parse::<u16>().ok())
            .max()
    });
    if let Some(bed) = highest_occupied.filter(|b| *b > req.beds) {
        return Err(ApiError::Conflict {
            detail: format!("bed {bed} is occupied; move the patient before removing the bed"),
            rule: "bed_occupied".to_owned(),
        });
    }
    let ward = Ward {
        code,
        name: text("name", &req.name)?,
        hospital: req.hospital,
        beds: req.beds,
    };
    put(&state, &caller, ward, Change::Ward).await
}

/// Add or change a team (admin).
#[utoipa::path(put, path = "/api/v1/teams/{code}", tag = "reference", params(("code" = String, Path)),
    request_body = TeamRequest,
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<TeamRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let code = admin(&state, &caller, TeamCode::parse(code))?;
    let team = Team {
        code,
        name: text("name", &req.name)?,
        services: req.services,
        response_sla_minutes: req.response_sla_minutes,
    };
    put(&state, &caller, team, Change::Team).await
}

/// Add or change a care transfer hub (admin): the hospitals whose
/// discharge-ready patients and referrals its staff (role `hub`) see.
#[utoipa::path(put, path = "/api/v1/hubs/{code}", tag = "reference", params(("code" = String, Path)),
    request_body = HubRequest,
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_hub(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<HubRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let code = admin(&state, &caller, HubCode::parse(code))?;
    let hub = Hub {
        code,
        name: text("name", &req.name)?,
        hospitals: req.hospitals,
    };
    put(&state, &caller, hub, Change::Hub).await
}

/// Every care transfer hub.
#[utoipa::path(get, path = "/api/v1/hubs", tag = "reference",
    responses((status = 200, body = [Object])))]
async fn hubs(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        readable(&state, &caller)?
            .hubs()
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// Every hospital (with its trust, when it has one).
#[utoipa::path(get, path = "/api/v1/hospitals", tag = "reference",
    responses((status = 200, body = [Object])))]
async fn hospitals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        readable(&state, &caller)?
            .hospitals()
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// Every ward.
#[utoipa::path(get, path = "/api/v1/wards", tag = "reference",
    responses((status = 200, body = [Object])))]
async fn wards(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        readable(&state, &caller)?
            .wards()
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// Every team.
#[utoipa::path(get, path = "/api/v1/teams", tag = "reference",
    responses((status = 200, body = [Object])))]
async fn teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        readable(&state, &caller)?
            .teams()
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// The delay reasons: the current list and every earlier version.
#[utoipa::path(get, path = "/api/v1/delay-reasons", tag = "reference",
    responses((status = 200, body = Object)))]
async fn delay_reasons(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = readable(&state, &caller)?;
    let current = catalogue.current_delay_reasons().cloned();
    Ok(Json(serde_json::json!({
        "version": current.as_ref().map(|l| l.version.clone()),
        "source": current.as_ref().map(|l| l.source.clone()),
        "reasons": current.map(|l| l.reasons).unwrap_or_default(),
        "versions": catalogue.delay_reason_versions(),
    })))
}
