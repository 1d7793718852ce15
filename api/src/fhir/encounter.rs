//! `Encounter`: an inpatient spell. Status from the spell's (open:
//! `in-progress`, discharged: `finished`, admission entered in error:
//! `entered-in-error`), class `IMP`, the admission and discharge as its
//! period, every ward and bed it was in (transfers) as its location
//! history, the discharge destination as `hospitalization.dischargeDisposition`,
//! and Baton's discharge facts as extensions (docs/fhir.md). Who may read
//! it is who may read the spell (`Action::Spell`).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use domain::spell::{Placement, Spell, SpellStatus, Stay};
use domain::values::{Destination, SpellId};
use infra::commands::fold_history;
use serde_json::{json, Value};

use super::bundle::{self, Search};
use super::{answer, instant, meta, patient, reference, FhirCaller, FhirResult, BATON};
use crate::audit;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::policy::{authorize, Action};
use crate::routes::spells::hospital_of;
use crate::state::AppState;

/// UK Core's Encounter profile.
pub const PROFILE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter";

/// The R4 discharge-disposition code for a destination group.
fn disposition(destination: Destination) -> (&'static str, &'static str) {
    match destination {
        Destination::UsualResidence | Destination::UsualResidenceWithSupport => ("home", "Home"),
        Destination::CommunityRehabBed => ("rehab", "Rehabilitation"),
        Destination::CareHomeNew | Destination::CareHomeUsual => ("long", "Long-term care"),
        Destination::Hospice => ("hosp", "Hospice"),
        Destination::OtherAcuteTrust => ("other-hcf", "Other healthcare facility"),
        Destination::Died => ("exp", "Expired"),
        Destination::Other => ("oth", "Other"),
    }
}

fn destination_code(destination: Destination) -> String {
    serde_json::to_value(destination)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The ward and bed entries of one placement over one period.
fn locations(placement: &Placement, start: &str, end: Option<String>, current: bool) -> [Value; 2] {
    let mut period = json!({ "start": start });
    if let Some(end) = end {
        period["end"] = json!(end);
    }
    let status = if current { "active" } else { "completed" };
    let kind = |code: &str, display: &str| {
        json!({ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
            "code": code, "display": display,
        }] })
    };
    let bed = super::location::bed_id(&placement.ward, &placement.bed);
    [
        json!({
            "location": reference("Location", placement.ward.as_str(), Some(placement.ward.as_str())),
            "status": status, "physicalType": kind("wa", "Ward"), "period": period,
        }),
        json!({
            "location": reference("Location", &bed, Some(&format!("{} bed {}", placement.ward, placement.bed))),
            "status": status, "physicalType": kind("bd", "Bed"), "period": period,
        }),
    ]
}

/// The resource, at `version`.
pub fn resource(stay: &Stay, version: u64, updated: Option<&domain::values::Instant>) -> Value {
    let status = match stay.status {
        SpellStatus::Open => "in-progress",
        SpellStatus::Discharged => "finished",
        SpellStatus::Cancelled => "entered-in-error",
    };
    let admitted = instant(&stay.admitted_at);
    let ended = stay.discharge.as_ref().map(|d| instant(&d.at));
    let mut period = json!({ "start": admitted });
    if let Some(end) = &ended {
        period["end"] = json!(end);
    }
    // Each placement in turn: the first is the first transfer's `from`.
    let mut location = Vec::new();
    let mut from = stay
        .transfers
        .first()
        .map_or(&stay.placement, |t| &t.from)
        .clone();
    let mut since = admitted.clone();
    for transfer in &stay.transfers {
        let at = instant(&transfer.at);
        location.extend(locations(&from, &since, Some(at.clone()), false));
        from = transfer.to.clone();
        since = at;
    }
    let open = stay.status == SpellStatus::Open;
    location.extend(locations(&from, &since, ended.clone(), open));

    let mut extension = Vec::new();
    if let Some(date) = stay.expected_discharge_date {
        extension.push(json!({ "url": format!("{BATON}/StructureDefinition/expected-discharge-date"), "valueDate": date.to_string() }));
    }
    let ready = stay
        .discharge_ready_date
        .or(stay.discharge.as_ref().and_then(|d| d.discharge_ready_date));
    if let Some(date) = ready {
        extension.push(json!({ "url": format!("{BATON}/StructureDefinition/discharge-ready-date"), "valueDate": date.to_string() }));
    }
    if let Some(review) = stay.reviews.last() {
        extension.push(json!({
            "url": format!("{BATON}/StructureDefinition/criteria-to-reside"),
            "extension": [
                { "url": "meetsCriteria", "valueBoolean": review.meets_criteria_to_reside },
                { "url": "reviewedAt", "valueDateTime": instant(&review.at) },
            ],
        }));
    }
    if let Some(pathway) = stay.pathway {
        extension.push(json!({
            "url": format!("{BATON}/StructureDefinition/discharge-pathway"),
            "valueCoding": { "system": format!("{BATON}/CodeSystem/discharge-pathway"), "code": pathway.as_str() },
        }));
    }

    let mut encounter = json!({
        "resourceType": "Encounter",
        "id": stay.spell_id.as_str(),
        "meta": meta(version, updated, Some(PROFILE)),
        "status": status,
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP", "display": "inpatient encounter",
        },
        "subject": super::patient_reference(&stay.patient.nhs_number.digits(), &patient::display(&stay.patient)),
        "period": period,
        "location": location,
        "serviceProvider": reference("Organization", stay.placement.hospital.as_str(), None),
    });
    if !extension.is_empty() {
        encounter["extension"] = json!(extension);
    }
    if let Some(discharge) = &stay.discharge {
        let (code, display) = disposition(discharge.destination);
        encounter["hospitalization"] = json!({ "dischargeDisposition": { "coding": [
            { "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": code, "display": display },
            { "system": format!("{BATON}/CodeSystem/discharge-destination"), "code": destination_code(discharge.destination) },
        ] } });
    }
    encounter
}

/// Checks the caller may read this spell, as the JSON API does.
async fn allow(state: &AppState, caller: &Caller, id: &SpellId) -> Result<(), ApiError> {
    let hospital = hospital_of(state, id).await?;
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::Spell {
            hospital: hospital.as_ref(),
        },
    )
}

fn spell_id(id: String) -> Result<SpellId, ApiError> {
    SpellId::parse(id).map_err(|_| ApiError::NotFound)
}

/// `GET /fhir/R4/Encounter/{id}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let id = spell_id(id)?;
    allow(&state, &caller, &id).await?;
    let (spell, version) = state.bus.load_spell(&id).await?;
    let stay = spell.stay().ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_encounter",
        &format!("/fhir/R4/Encounter/{id}"),
        &[stay.patient.nhs_number.digits()],
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &resource(stay, version, None),
        Some(version),
    ))
}

/// `GET /fhir/R4/Encounter/{id}/_history`: the encounter after each of the
/// spell's events.
pub async fn history(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FhirResult {
    let id = spell_id(id)?;
    allow(&state, &caller, &id).await?;
    let events = state.bus.spell_history(&id).await?;
    let mut versions = Vec::new();
    let spell = fold_history(&events, None, |spell: &Spell, sequence, at| {
        if let Some(stay) = spell.stay() {
            versions.push(resource(stay, sequence, Some(&at)));
        }
    })?;
    let stay = spell.stay().ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_encounter_history",
        &format!("/fhir/R4/Encounter/{id}/_history"),
        &[stay.patient.nhs_number.digits()],
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &bundle::history(&bundle::root(&headers), versions),
        None,
    ))
}

const PARAMS: [&str; 7] = [
    "patient",
    "subject",
    "patient.identifier",
    "subject.identifier",
    "subject:identifier",
    "status",
    "_id",
];

/// `GET /fhir/R4/Encounter?patient.identifier=...`: the spells the caller
/// may read, newest admission first.
pub async fn search(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> FhirResult {
    let search = Search::parse(query.as_deref(), &PARAMS)?;
    let nhs = search.patient(
        &[
            "patient.identifier",
            "subject.identifier",
            "subject:identifier",
        ],
        &["patient", "subject"],
    );
    // The boards know open from discharged (a cancelled admission is not
    // on them), so only the page's spells are loaded from the store.
    let open: Option<bool> = match search.one(&["status"]) {
        None => None,
        Some("in-progress") => Some(true),
        Some("finished") => Some(false),
        Some(_) => None,
    };
    let unknown_status = search
        .one(&["status"])
        .is_some_and(|s| !matches!(s, "in-progress" | "finished"));
    let only = search.one(&["_id"]).map(str::to_owned);
    let catalogue = state.reference.snapshot();
    let p = &caller.principal;
    let mut found: Vec<(domain::values::Instant, String)> = if unknown_status {
        Vec::new()
    } else {
        state.boards.read(|flow| {
            flow.spells()
                .filter(|(id, s)| {
                    nhs.as_deref()
                        .is_none_or(|n| s.patient.nhs_number.digits() == n)
                        && only.as_deref().is_none_or(|o| o == *id)
                        && open.is_none_or(|open| open == s.discharged_at.is_none())
                        && authorize(
                            p,
                            &catalogue,
                            Action::Spell {
                                hospital: Some(&s.placement.hospital),
                            },
                        )
                        .is_ok()
                })
                .map(|(id, s)| (s.admitted_at, id.to_owned()))
                .collect()
        })
    };
    found.sort_by(|a, b| b.cmp(a));
    let total = found.len();
    let mut page = Vec::new();
    for (_, id) in search.page(found) {
        let (spell, version) = state.bus.load_spell(&spell_id(id)?).await?;
        if let Some(stay) = spell.stay() {
            page.push(resource(stay, version, None));
        }
    }
    let patients: Vec<String> = page
        .iter()
        .filter_map(|e| {
            e["subject"]["identifier"]["value"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    audit::record(
        &state.db,
        &caller,
        "fhir_search_encounter",
        "/fhir/R4/Encounter",
        &patients,
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &bundle::searchset(&bundle::root(&headers), "Encounter", &search, total, page),
        None,
    ))
}
