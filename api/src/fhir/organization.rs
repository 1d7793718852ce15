//! `Organization`: a hospital (type `prov`, part of its trust) or a
//! community team (type `team`... `other` in R4's organization-type, with
//! Baton's services as aliases), by code. Reference data: every signed-in
//! caller reads it. A code that is both a team's and a hospital's names the
//! team (tasks' `owner` is a team).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::reference::ReferenceData;
use domain::values::{HospitalCode, TeamCode};
use serde_json::{json, Value};

use super::{answer, FhirCaller, FhirResult, BATON};
use crate::error::ApiError;
use crate::policy::{authorize, Action};
use crate::state::AppState;

/// UK Core's Organization profile.
pub const PROFILE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Organization";

fn kind(code: &str, display: &str) -> Value {
    json!([{ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
        "code": code, "display": display,
    }] }])
}

/// `GET /fhir/R4/Organization/{code}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let catalogue = state.reference.snapshot();
    authorize(&caller.principal, &catalogue, Action::ReadReference)?;
    if let Some(team) = TeamCode::parse(id.as_str())
        .ok()
        .and_then(|code| catalogue.team(&code))
    {
        let body = json!({
            "resourceType": "Organization",
            "id": team.code.as_str(),
            "meta": { "profile": [PROFILE] },
            "identifier": [{ "system": format!("{BATON}/Id/team"), "value": team.code.as_str() }],
            "active": true,
            "type": kind("other", "Other"),
            "name": team.name.as_str(),
            "alias": team.services.iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect::<Vec<_>>(),
        });
        return Ok(answer(StatusCode::OK, &body, None));
    }
    let code = HospitalCode::parse(id.as_str()).map_err(|_| ApiError::NotFound)?;
    let hospital = catalogue.hospital(&code).ok_or(ApiError::NotFound)?;
    let mut body = json!({
        "resourceType": "Organization",
        "id": hospital.code.as_str(),
        "meta": { "profile": [PROFILE] },
        "identifier": [{ "system": format!("{BATON}/Id/hospital"), "value": hospital.code.as_str() }],
        "active": true,
        "type": kind("prov", "Healthcare Provider"),
        "name": hospital.name.as_str(),
    });
    if let Some(trust) = &hospital.trust {
        body["partOf"] = json!({
            "identifier": { "system": format!("{BATON}/Id/trust"), "value": trust.as_str() },
            "display": trust.as_str(),
        });
    }
    Ok(answer(StatusCode::OK, &body, None))
}
