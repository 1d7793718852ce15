//! `ServiceRequest`: what a referral asks (the service, for the pathway,
//! with the ward's summary), for whom, by whom (the referring hospital) and
//! of whom (the team). Its id is the referral's, as is its `Task`'s
//! (`task.rs`), which carries the referral's life cycle; the request itself
//! is `active` until the referral ends.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use domain::referral::{ReferralState, ReferralStatus};
use domain::values::Instant;
use serde_json::{json, Value};

use super::bundle::{self, Search};
use super::{
    answer, instant, meta, patient, reference, referenced_id, FhirCaller, FhirResult, BATON,
};
use crate::audit;
use crate::state::AppState;

/// UK Core's ServiceRequest profile.
pub const PROFILE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-ServiceRequest";

/// A service's code in Baton's code system.
pub fn service_code(s: &ReferralState) -> String {
    serde_json::to_value(s.service)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The resource.
pub fn resource(s: &ReferralState, version: u64, updated: Option<&Instant>) -> Value {
    let status = match s.status {
        ReferralStatus::Requested | ReferralStatus::Received | ReferralStatus::Accepted => "active",
        ReferralStatus::OnHold => "on-hold",
        ReferralStatus::Rejected | ReferralStatus::Cancelled => "revoked",
        ReferralStatus::Completed => "completed",
    };
    let service = service_code(s);
    let placement = &s.subject.placement;
    json!({
        "resourceType": "ServiceRequest",
        "id": s.referral_id.as_str(),
        "meta": meta(version, updated, Some(PROFILE)),
        "extension": [{
            "url": format!("{BATON}/StructureDefinition/discharge-pathway"),
            "valueCoding": { "system": format!("{BATON}/CodeSystem/discharge-pathway"), "code": s.pathway.as_str() },
        }],
        "status": status,
        "intent": "order",
        "code": { "coding": [{ "system": format!("{BATON}/CodeSystem/service"), "code": service }], "text": service.replace('_', " ") },
        "subject": super::patient_reference(&s.subject.patient.nhs_number.digits(), &patient::display(&s.subject.patient)),
        "encounter": reference("Encounter", s.subject.spell_id.as_str(), None),
        "authoredOn": instant(&s.raised_at),
        "requester": reference("Organization", placement.hospital.as_str(), Some(&format!("{} ward {}", placement.hospital, placement.ward))),
        "performer": [reference("Organization", s.team.as_str(), None)],
        "note": [{ "text": s.summary.as_str() }],
    })
}

/// `GET /fhir/R4/ServiceRequest/{id}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let (referral, version, updated) = super::task::load_readable(&state, &caller, id).await?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_service_request",
        &format!("/fhir/R4/ServiceRequest/{}", referral.referral_id),
        &[referral.subject.patient.nhs_number.digits()],
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &resource(&referral, version, updated.as_ref()),
        Some(version),
    ))
}

const PARAMS: [&str; 7] = [
    "subject",
    "patient",
    "subject:identifier",
    "subject.identifier",
    "patient.identifier",
    "performer",
    "_id",
];

/// `GET /fhir/R4/ServiceRequest?subject=Patient/{nhs}`: the referrals the
/// caller may see.
pub async fn search(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> FhirResult {
    let search = Search::parse(query.as_deref(), &PARAMS)?;
    let nhs = search.patient(
        &[
            "subject:identifier",
            "subject.identifier",
            "patient.identifier",
        ],
        &["subject", "patient"],
    );
    let performer = search
        .one(&["performer"])
        .map(|v| referenced_id("Organization", v).to_owned());
    let filter = super::task::Filter {
        nhs,
        owner: performer,
        id: search.one(&["_id"]).map(str::to_owned),
        ..super::task::Filter::default()
    };
    let (total, page) = super::task::matching(&state, &caller, &filter, &search).await?;
    let patients: Vec<String> = page
        .iter()
        .map(|(s, _, _)| s.subject.patient.nhs_number.digits())
        .collect();
    let resources = page
        .iter()
        .map(|(s, v, u)| resource(s, *v, u.as_ref()))
        .collect();
    audit::record(
        &state.db,
        &caller,
        "fhir_search_service_request",
        "/fhir/R4/ServiceRequest",
        &patients,
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &bundle::searchset(
            &bundle::root(&headers),
            "ServiceRequest",
            &search,
            total,
            resources,
        ),
        None,
    ))
}
