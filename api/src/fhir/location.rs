//! `Location`: a ward (`Location/{ward code}`) and each of its beds
//! (`Location/{ward code}.{bed label}`), from the reference data; a bed's
//! `operationalStatus` (HL7 v2 table 0116: `O` occupied, `U` unoccupied)
//! from the boards. A ward is reference data, read by every signed-in
//! caller; a bed's occupancy is the ward's figure, read by whoever may read
//! its hospital's board (its wards, leaders).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::reference::ReferenceData;
use domain::values::{BedLabel, WardCode};
use serde_json::{json, Value};

use super::{answer, reference, FhirCaller, FhirResult};
use crate::error::ApiError;
use crate::policy::{authorize, Action};
use crate::state::AppState;

/// UK Core's Location profile.
pub const PROFILE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Location";

/// A bed's logical id.
pub fn bed_id(ward: &WardCode, bed: &BedLabel) -> String {
    format!("{ward}.{bed}")
}

fn physical(code: &str, display: &str) -> Value {
    json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
        "code": code, "display": display,
    }] })
}

/// `GET /fhir/R4/Location/{id}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let catalogue = state.reference.snapshot();
    let (ward_code, bed) = match id.split_once('.') {
        Some((ward, bed)) => (ward, Some(bed)),
        None => (id.as_str(), None),
    };
    let ward_code = WardCode::parse(ward_code).map_err(|_| ApiError::NotFound)?;
    let ward = catalogue.ward(&ward_code).ok_or(ApiError::NotFound)?;
    let Some(bed) = bed else {
        authorize(&caller.principal, &catalogue, Action::ReadReference)?;
        let body = json!({
            "resourceType": "Location",
            "id": ward.code.as_str(),
            "meta": { "profile": [PROFILE] },
            "identifier": [{ "system": format!("{}/Id/ward", super::BATON), "value": ward.code.as_str() }],
            "status": "active",
            "name": ward.name.as_str(),
            "mode": "instance",
            "physicalType": physical("wa", "Ward"),
            "managingOrganization": reference("Organization", ward.hospital.as_str(), None),
        });
        return Ok(answer(StatusCode::OK, &body, None));
    };
    let bed = BedLabel::parse(bed).map_err(|_| ApiError::NotFound)?;
    if !ward.has_bed(&bed) {
        return Err(ApiError::NotFound.into());
    }
    authorize(
        &caller.principal,
        &catalogue,
        Action::HospitalBoard {
            hospital: &ward.hospital,
        },
    )?;
    let occupied = state.boards.read(|flow| {
        flow.ward_beds(&ward.code)
            .any(|(label, _, _)| label == bed.as_str())
    });
    let (code, display) = if occupied {
        ("O", "Occupied")
    } else {
        ("U", "Unoccupied")
    };
    let body = json!({
        "resourceType": "Location",
        "id": bed_id(&ward.code, &bed),
        "meta": { "profile": [PROFILE] },
        "status": "active",
        "operationalStatus": { "system": "http://terminology.hl7.org/CodeSystem/v2-0116", "code": code, "display": display },
        "name": format!("{} bed {}", ward.name, bed),
        "mode": "instance",
        "physicalType": physical("bd", "Bed"),
        "managingOrganization": reference("Organization", ward.hospital.as_str(), None),
        "partOf": reference("Location", ward.code.as_str(), Some(ward.name.as_str())),
    });
    Ok(answer(StatusCode::OK, &body, None))
}
