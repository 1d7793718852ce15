//! `Patient`: the person a spell or referral is about, by NHS number (its
//! logical id is the NHS number). Baton keeps no patient record of its own:
//! the patient is read from the spells and referrals the caller may see, so
//! a patient the caller has no spell or referral of does not exist for
//! them (404), and leaders and admins, who see no patients, get 403.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::spell::Patient;
use infra::auth::Role;
use serde_json::{json, Value};

use super::{answer, FhirCaller, FhirResult, NHS_NUMBER};
use crate::audit;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::policy::{authorize, may_see_referral, Action, ReferralScope};
use crate::state::AppState;

/// UK Core's Patient profile.
pub const PROFILE: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient";

/// The resource.
pub fn resource(patient: &Patient) -> Value {
    let nhs = patient.nhs_number.digits();
    json!({
        "resourceType": "Patient",
        "id": nhs,
        "meta": { "profile": [PROFILE] },
        "identifier": [{ "system": NHS_NUMBER, "value": nhs }],
        "name": [{
            "use": "official",
            "family": patient.family_name.as_str(),
            "given": [patient.given_name.as_str()],
        }],
        "birthDate": patient.date_of_birth.to_string(),
    })
}

/// Display text for references to the patient.
pub fn display(patient: &Patient) -> String {
    format!(
        "{} {}",
        patient.given_name.as_str(),
        patient.family_name.as_str()
    )
}

/// Refuses leaders and admins, who see counts only.
pub fn sees_patients(caller: &Caller) -> Result<(), ApiError> {
    match caller.principal.role {
        Role::System | Role::Admin => Err(ApiError::Forbidden),
        Role::Ward | Role::Team | Role::Hub => Ok(()),
    }
}

/// The patient with this NHS number, from a spell or referral the caller
/// may see.
pub fn visible(state: &AppState, caller: &Caller, nhs: &str) -> Option<Patient> {
    let catalogue = state.reference.snapshot();
    let p = &caller.principal;
    state.boards.read(|flow| {
        let from_spell = flow
            .spells()
            .filter(|(_, s)| s.patient.nhs_number.digits() == nhs)
            .find(|(_, s)| {
                authorize(
                    p,
                    &catalogue,
                    Action::Spell {
                        hospital: Some(&s.placement.hospital),
                    },
                )
                .is_ok()
            })
            .map(|(_, s)| s.patient.clone());
        from_spell.or_else(|| {
            flow.referrals()
                .filter(|(_, r)| r.patient.nhs_number.digits() == nhs)
                .find(|(_, r)| {
                    may_see_referral(
                        p,
                        &catalogue,
                        ReferralScope {
                            team: &r.team,
                            hospital: &r.placement.hospital,
                        },
                    )
                })
                .map(|(_, r)| r.patient.clone())
        })
    })
}

/// `GET /fhir/R4/Patient/{nhs_number}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    sees_patients(&caller)?;
    let patient = visible(&state, &caller, &id).ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_patient",
        &format!("/fhir/R4/Patient/{id}"),
        std::slice::from_ref(&id),
    )
    .await?;
    Ok(answer(StatusCode::OK, &resource(&patient), None))
}
