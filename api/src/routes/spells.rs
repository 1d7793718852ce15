//! Spells: admission to discharge, and the corrections of each step.
//!
//! A spell's hospital never changes (the domain refuses transfers between
//! hospitals), so access is decided from the boards' copy of it, falling back
//! to the event store for a spell the boards have not seen yet.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use domain::spell::{Patient, Spell, SpellCommand, SpellError};
use domain::values::{
    BedLabel, DelayId, DelayReasonCode, Destination, HospitalCode, NhsNumber, Pathway, PersonName,
    SpellId, Text, WardCode,
};
use domain::Issued;
use infra::commands::{CommandError, Denied};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{actor, answer, await_token, options, path_id, Answered, CommandAnswer, ReadQuery};
use crate::audit;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, CommandHeaders, JsonBody, QueryParams};
use crate::policy::{authorize, ward_hospitals, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admit))
        .routes(routes!(search))
        .routes(routes!(get_spell))
        .routes(routes!(history))
        .routes(routes!(transfer))
        .routes(routes!(expected_discharge_date))
        .routes(routes!(criteria_review))
        .routes(routes!(pathway))
        .routes(routes!(record_delay))
        .routes(routes!(resolve_delay))
        .routes(routes!(discharge))
        .routes(routes!(cancel_admission))
        .routes(routes!(cancel_transfer))
        .routes(routes!(cancel_discharge))
}

/// `?q=` of the patient search.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// An NHS number (spaces allowed; the first digits are enough) or part
    /// of a family or given name; at least two characters.
    pub q: String,
}

/// What the patient search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// In hospital first, then the most recently admitted; at most 50.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<projections::lookup::SpellRecord>,
}

/// Finds patients of the caller's hospitals (its own, or its trust's), in hospital or discharged, by
/// NHS number or name: the way back to a discharge (or an admission, or a
/// transfer) made in error.
#[utoipa::path(get, path = "/api/v1/spells/search", tag = "spells", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = state.reference.snapshot();
    let hospitals = ward_hospitals(&caller.principal, &catalogue);
    let Some(first) = hospitals.first() else {
        return Err(ApiError::Forbidden);
    };
    authorize(
        &caller.principal,
        &catalogue,
        Action::WardBoard { hospital: first },
    )?;
    let wanted = projections::lookup::Query::parse(&query.q).ok_or_else(|| {
        ApiError::field(
            "q",
            "enter at least two letters of a name, or the first digits of an NHS number",
        )
    })?;
    let results = state
        .boards
        .read(|flow| projections::lookup::search(flow, &hospitals, &wanted));
    let patients: Vec<String> = results
        .iter()
        .map(|r| r.patient.nhs_number.clone())
        .collect();
    audit::record(
        &state.db,
        &caller,
        "search_patients",
        "/api/v1/spells/search",
        &patients,
    )
    .await?;
    Ok(Json(SearchResults { results }))
}

/// `POST /api/v1/spells`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmitRequest {
    /// Ten digits, spaces allowed; must pass the Modulus 11 check.
    pub nhs_number: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Ward code.
    #[schema(value_type = String)]
    pub ward: WardCode,
    /// Bed label on that ward (`1..beds`).
    #[schema(value_type = String)]
    pub bed: BedLabel,
    /// When admitted (RFC 3339 with offset).
    pub admitted_at: DateTime<FixedOffset>,
}

/// `transfer`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// To this ward.
    #[schema(value_type = String)]
    pub ward: WardCode,
    /// To this bed.
    #[schema(value_type = String)]
    pub bed: BedLabel,
    /// When.
    pub at: DateTime<FixedOffset>,
}

/// `expected-discharge-date`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EddRequest {
    /// The expected date of discharge.
    pub date: NaiveDate,
}

/// `criteria-review`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Whether the patient still meets the criteria to reside.
    pub meets_criteria_to_reside: bool,
    /// When the review was made.
    pub at: DateTime<FixedOffset>,
}

/// `pathway`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathwayRequest {
    /// `P0`, `P1`, `P2` or `P3`.
    #[schema(value_type = String)]
    pub pathway: Pathway,
}

/// `delays`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayRequest {
    /// A code of the current delay reason list (`GET /api/v1/delay-reasons`).
    #[schema(value_type = String)]
    pub reason_code: DelayReasonCode,
    /// Detail.
    #[serde(default)]
    pub note: Option<String>,
    /// When the delay began.
    pub at: DateTime<FixedOffset>,
}

/// `resolve` and `start-care`: just a time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AtRequest {
    /// When.
    pub at: DateTime<FixedOffset>,
}

/// `discharge`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeRequest {
    /// When the patient left.
    pub at: DateTime<FixedOffset>,
    /// Where to (the sitrep's destination groups).
    #[schema(value_type = String)]
    pub destination: Destination,
}

/// A correction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why.
    pub reason: String,
}

/// A spell as `GET /api/v1/spells/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpellView {
    /// The spell's id.
    pub id: String,
    /// Its version (send as `If-Match`).
    pub version: u64,
    /// The hospital.
    pub hospital: String,
    /// Its state: patient, placement, reviews, delays, discharge...
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub state: serde_json::Value,
}

/// One event of a spell's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Its sequence within the spell.
    pub sequence: u64,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was recorded.
    pub at: String,
    /// Who recorded it.
    #[schema(value_type = Object)]
    pub by: serde_json::Value,
    /// What it says.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

pub(crate) fn utc(at: DateTime<FixedOffset>) -> DateTime<Utc> {
    at.with_timezone(&Utc)
}

/// A text field's fault in plain words ("enter the reason").
fn text_fault(field: &str, error: &domain::values::TextError) -> String {
    let label = crate::validate::label(field);
    match error {
        domain::values::TextError::Blank => format!("enter the {label}"),
        domain::values::TextError::TooLong { max } => {
            format!("the {label} is longer than {max} characters")
        }
        domain::values::TextError::Control { code } => format!(
            "the {label} contains a control character (U+{code:04X}): remove it and type the \
             text again"
        ),
        domain::values::TextError::Bidirectional { code } => format!(
            "the {label} contains a character that reverses how text is shown (U+{code:04X}): \
             remove it"
        ),
    }
}

pub(crate) fn text(field: &str, value: &str) -> Result<Text, ApiError> {
    Text::parse(value)
        .map_err(|e| ApiError::refused_field("invalid_text", field, text_fault(field, &e)))
}

fn name(field: &str, value: &str) -> Result<PersonName, ApiError> {
    PersonName::parse(value)
        .map_err(|e| ApiError::refused_field("invalid_name", field, text_fault(field, &e)))
}

/// The hospital of a spell, or `None` if there is no such spell.
pub(crate) async fn hospital_of(
    state: &AppState,
    id: &SpellId,
) -> Result<Option<HospitalCode>, ApiError> {
    if let Some(hospital) = state
        .boards
        .read(|flow| flow.placement_of(id.as_str()).map(|p| p.hospital.clone()))
    {
        return Ok(Some(hospital));
    }
    // A spell never changes hospital, so the bus's memory of it answers
    // (a command right after an admission comes before the boards have it).
    if let Some(Some(hospital)) = state.bus.with_last_seen_spell(id, |spell, _| {
        spell.stay().map(|stay| stay.placement.hospital.clone())
    }) {
        return Ok(Some(hospital));
    }
    let (spell, _) = state.bus.load_spell(id).await.map_err(ApiError::from)?;
    Ok(spell.stay().map(|stay| stay.placement.hospital.clone()))
}

/// Checks the caller may act on this spell.
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

/// Checks the caller may act on the spell as loaded.
fn may_act(state: &AppState, caller: &Caller, spell: &Spell) -> Result<(), ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::Spell {
            hospital: spell.stay().map(|stay| &stay.placement.hospital),
        },
    )
}

/// Runs a command on a spell the caller may change.
async fn run(
    state: &AppState,
    caller: &Caller,
    headers: &CommandHeaders,
    id: &str,
    operation: &str,
    body: &impl Serialize,
    command: impl FnOnce() -> Result<SpellCommand, ApiError>,
) -> Result<Answered, ApiError> {
    let id = path_id(SpellId::parse(id))?;
    // Who may act comes before what they sent: a caller with no business
    // here learns nothing from validation, so a body that does not make a
    // command is answered only once the caller is known to be allowed.
    let command = match command() {
        Ok(command) => command,
        Err(invalid) => {
            allow(state, caller, &id).await?;
            return Err(invalid);
        }
    };
    let options = options(caller, headers, operation, id.as_str(), body, json!({}));
    // The bus checks the caller on the spell it loads for the command.
    let guard =
        |spell: &Spell| may_act(state, caller, spell).map_err(|refusal| Denied(Box::new(refusal)));
    let committed = state
        .bus
        .spell_guarded(
            &id,
            Issued::new(actor(caller), Utc::now(), command),
            options,
            &guard,
        )
        .await?;
    Ok(answer(StatusCode::OK, committed, json!({})))
}

/// Admit a patient to a bed.
#[utoipa::path(post, path = "/api/v1/spells", tag = "spells", request_body = AdmitRequest,
    responses((status = 201, body = CommandAnswer), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn admit(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    JsonBody(req): JsonBody<AdmitRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = state
        .reference
        .snapshot_knowing(|c| domain::reference::ReferenceData::ward(c, &req.ward).is_some())
        .await;
    let ward = domain::reference::ReferenceData::ward(catalogue.as_ref(), &req.ward)
        .ok_or_else(|| ApiError::refused_field("unknown_ward", "ward", "no such ward"))?;
    authorize(
        &caller.principal,
        &catalogue,
        Action::Admit {
            hospital: &ward.hospital,
        },
    )?;
    // Every value at fault in one answer.
    let nhs_number = NhsNumber::parse(&req.nhs_number)
        .map_err(|e| ApiError::refused_field("invalid_nhs_number", "nhs_number", e.to_string()));
    let family_name = name("family_name", &req.family_name);
    let given_name = name("given_name", &req.given_name);
    let (nhs_number, family_name, given_name) = match (nhs_number, family_name, given_name) {
        (Ok(n), Ok(f), Ok(g)) => (n, f, g),
        (n, f, g) => {
            return Err(ApiError::together(
                [n.err(), f.err(), g.err()].into_iter().flatten(),
            ))
        }
    };
    let nhs_digits = [nhs_number.digits()];
    let patient = Patient {
        nhs_number,
        family_name,
        given_name,
        date_of_birth: req.date_of_birth,
    };
    let spell_id = path_id(SpellId::parse(uuid::Uuid::new_v4().simple().to_string()))?;
    let command = SpellCommand::AdmitPatient {
        spell_id: spell_id.clone(),
        patient,
        ward: req.ward.clone(),
        bed: req.bed.clone(),
        admitted_at: utc(req.admitted_at),
        // The visit number comes with the PAS's feed (issue 16), not from a
        // ward's form.
        visit_number: None,
    };
    let options = options(&caller, &headers, "admit", "", &req, json!({}));

    let committed = match state
        .bus
        .spell_with(
            &spell_id,
            Issued::new(actor(&caller), Utc::now(), command),
            options,
        )
        .await
    {
        Ok(committed) => committed,
        Err(CommandError::Reservation(
            conflict @ domain::reservation::ReservationConflict::PatientAlreadyInHospital,
        )) => {
            // The answer tells the caller that this person is an inpatient
            // somewhere, perhaps in another hospital: that is a read of the
            // patient, and is logged as one before it is given.
            audit::record(
                &state.db,
                &caller,
                "admit_refused_patient_in_hospital",
                "/api/v1/spells",
                &nhs_digits,
            )
            .await?;
            return Err(conflict.into());
        }
        Err(error) => return Err(ApiError::from(error).renamed("at", "admitted_at")),
    };
    Ok(answer(StatusCode::CREATED, committed, json!({})))
}

/// A spell's current state and version.
#[utoipa::path(get, path = "/api/v1/spells/{id}", tag = "spells", params(("id" = String, Path), ReadQuery),
    responses((status = 200, body = SpellView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_spell(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id(SpellId::parse(id))?;
    allow(&state, &caller, &id).await?;
    await_token(&state, query.consistency_token.as_deref()).await?;
    let (spell, version) = state.bus.load_spell(&id).await?;
    let stay = spell.stay().ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "read_spell",
        &format!("/api/v1/spells/{id}"),
        &[stay.patient.nhs_number.digits()],
    )
    .await?;
    let etag = format!("\"{version}\"");
    Ok((
        [(axum::http::header::ETAG, etag)],
        Json(SpellView {
            id: id.to_string(),
            version,
            hospital: stay.placement.hospital.to_string(),
            state: serde_json::to_value(stay).map_err(ApiError::internal)?,
        }),
    ))
}

/// Every event of a spell, in order.
#[utoipa::path(get, path = "/api/v1/spells/{id}/history", tag = "spells", params(("id" = String, Path)),
    responses((status = 200, body = [HistoryEntry]), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id(SpellId::parse(id))?;
    allow(&state, &caller, &id).await?;
    let events = state.bus.spell_history(&id).await?;
    let (spell, _) = state.bus.load_spell(&id).await?;
    let stay = spell.stay().ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "read_spell_history",
        &format!("/api/v1/spells/{id}/history"),
        &[stay.patient.nhs_number.digits()],
    )
    .await?;
    let entries: Vec<HistoryEntry> = events
        .into_iter()
        .map(|e| {
            let mut data = e.payload.get("event").cloned().unwrap_or_default();
            if let Some(inner) = data.get(&e.event_type).cloned() {
                data = inner;
            }
            HistoryEntry {
                sequence: e.sequence as u64,
                at: e
                    .payload
                    .get("recorded_at")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                by: e.payload.get("by").cloned().unwrap_or_default(),
                kind: e.event_type,
                data,
            }
        })
        .collect();
    Ok(Json(entries))
}

macro_rules! spell_command {
    ($(#[$doc:meta])* $fn:ident, $path:literal, $op:literal, $req:ty, |$r:ident| $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "spells", params(("id" = String, Path)),
            request_body = $req,
            responses((status = 200, body = CommandAnswer), (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, body = Problem, content_type = "application/problem+json"), (status = 412, body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json")))]
        async fn $fn(
            State(state): State<AppState>,
            caller: Caller,
            headers: CommandHeaders,
            Path(id): Path<String>,
            JsonBody($r): JsonBody<$req>,
        ) -> Result<impl IntoResponse, ApiError> {
            let command = || -> Result<SpellCommand, ApiError> { Ok($build) };
            run(&state, &caller, &headers, &id, $op, &$r, command).await
        }
    };
}

spell_command!(
    /// Move the patient to another bed (same hospital).
    transfer, "/api/v1/spells/{id}/transfer", "transfer", TransferRequest,
    |r| SpellCommand::TransferPatient { ward: r.ward.clone(), bed: r.bed.clone(), at: utc(r.at) }
);
spell_command!(
    /// Set the expected date of discharge.
    expected_discharge_date, "/api/v1/spells/{id}/expected-discharge-date", "edd", EddRequest,
    |r| SpellCommand::SetExpectedDischargeDate { date: r.date }
);
spell_command!(
    /// Record a daily criteria-to-reside review.
    criteria_review, "/api/v1/spells/{id}/criteria-review", "review", ReviewRequest,
    |r| SpellCommand::RecordCriteriaReview {
        meets_criteria_to_reside: r.meets_criteria_to_reside,
        at: utc(r.at),
    }
);
spell_command!(
    /// Set the discharge pathway.
    pathway, "/api/v1/spells/{id}/pathway", "pathway", PathwayRequest,
    |r| SpellCommand::SetDischargePathway { pathway: r.pathway }
);
spell_command!(
    /// Discharge the patient.
    discharge, "/api/v1/spells/{id}/discharge", "discharge", DischargeRequest,
    |r| SpellCommand::DischargePatient { at: utc(r.at), destination: r.destination }
);
spell_command!(
    /// Correction: the admission was entered in error. Refused with 409
    /// `referrals_still_active` while referrals for the spell are active:
    /// withdraw them first, so each team is told.
    cancel_admission, "/api/v1/spells/{id}/cancel-admission", "cancel-admission", ReasonRequest,
    |r| SpellCommand::CancelAdmission { reason: text("reason", &r.reason)? }
);
spell_command!(
    /// Correction: the last transfer was entered in error.
    cancel_transfer, "/api/v1/spells/{id}/cancel-transfer", "cancel-transfer", ReasonRequest,
    |r| SpellCommand::CancelTransfer { reason: text("reason", &r.reason)? }
);
spell_command!(
    /// Correction: the discharge was entered in error.
    cancel_discharge, "/api/v1/spells/{id}/cancel-discharge", "cancel-discharge", ReasonRequest,
    |r| SpellCommand::CancelDischarge { reason: text("reason", &r.reason)? }
);

/// Record a delay; answers with its `delay_id`.
#[utoipa::path(post, path = "/api/v1/spells/{id}/delays", tag = "spells", params(("id" = String, Path)),
    request_body = DelayRequest,
    responses((status = 201, body = CommandAnswer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn record_delay(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<DelayRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id(SpellId::parse(id))?;
    let guard = |spell: &Spell| {
        may_act(&state, &caller, spell).map_err(|refusal| Denied(Box::new(refusal)))
    };
    // The domain numbers delays D1, D2, ... in recording order. Decide the
    // new id against a known version, so the answer names the right one.
    for _ in 0..8 {
        // Without `If-Match`, the version seen is the expected one below, so
        // the bus's memory of the spell serves: if another process has moved
        // it since, the commit is refused and this loop decides again on
        // what the bus then loads.
        let seen = match headers.if_match {
            None => state
                .bus
                .with_last_seen_spell(&id, |spell, version| {
                    spell.stay().is_some().then(|| (spell.clone(), version))
                })
                .flatten(),
            Some(_) => None,
        };
        let (spell, version) = match seen {
            Some(seen) => seen,
            None => state.bus.load_spell(&id).await?,
        };
        // Who may act comes before what they sent.
        may_act(&state, &caller, &spell)?;
        let note = match &req.note {
            Some(note) if !note.trim().is_empty() => Some(text("note", note)?),
            _ => None,
        };
        let next = spell.stay().map_or(0, |s| s.delays.len()) + 1;
        let delay_id = format!("D{next}");
        let mut options = options(
            &caller,
            &headers,
            "delay",
            id.as_str(),
            &req,
            json!({ "delay_id": delay_id }),
        );
        // With `If-Match`, the client's version (the bus replays a stored
        // answer before comparing); without, the version just loaded.
        options.expected_version = Some(headers.if_match.unwrap_or(version));
        let command = SpellCommand::RecordDelay {
            reason_code: req.reason_code.clone(),
            note,
            at: utc(req.at),
        };
        match state
            .bus
            .spell_guarded(
                &id,
                Issued::new(actor(&caller), Utc::now(), command),
                options,
                &guard,
            )
            .await
        {
            Ok(committed) => {
                return Ok(answer(
                    StatusCode::CREATED,
                    committed,
                    json!({ "delay_id": delay_id }),
                ))
            }
            Err(CommandError::VersionMismatch { .. }) if headers.if_match.is_none() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::from(CommandError::<SpellError>::Contended))
}

/// Resolve a delay.
#[utoipa::path(post, path = "/api/v1/spells/{id}/delays/{delay_id}/resolve", tag = "spells",
    params(("id" = String, Path), ("delay_id" = String, Path)), request_body = AtRequest,
    responses((status = 200, body = CommandAnswer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn resolve_delay(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path((id, delay_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<AtRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let delay = path_id(DelayId::parse(delay_id.clone()))?;
    let command = SpellCommand::ResolveDelay {
        delay_id: delay,
        at: utc(req.at),
    };
    let op = format!("resolve-{delay_id}");
    run(&state, &caller, &headers, &id, &op, &req, || Ok(command)).await
}
