//! `Task`: a referral's workflow. `focus` is its ServiceRequest, `owner`
//! the team, `requester` the referring hospital, `status` exactly the
//! referral's (Baton's life cycle is the FHIR Task one), `businessStatus`
//! the SLA (`escalated`, `sla-breached`, `on-time`) with the deadline as
//! `restriction.period.end`; the team's questions and the ward's answers
//! as inputs, the planned start and care start as outputs, and a closing
//! reason or open question as `statusReason`.
//!
//! An update (`PUT`) is a move through that life cycle: Baton compares the
//! status sent with the referral's and issues the one domain command the
//! JSON API issues for that move, with `If-Match: W/"<version>"` as the
//! expected version (412 when stale). Anything else the body changes is
//! not Baton's to change and is ignored; docs/fhir.md lists each move.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use domain::referral::{Referral, ReferralCommand, ReferralState, ReferralStatus};
use domain::values::{Instant, ReferralId, Text};
use domain::Issued;
use infra::commands::fold_history;
use infra::commands::{CommandOptions, Denied};
use serde_json::{json, Value};

use super::bundle::{self, Search};
use super::{
    answer, instant, meta, patient, reference, referenced_id, FhirCaller, FhirResult, BATON,
};
use crate::audit;
use crate::error::ApiError;
use crate::extract::{Caller, CommandHeaders};
use crate::policy::{authorize, may_see_referral, Action, ReferralScope};
use crate::routes::actor;
use crate::routes::referrals::scope_of;
use crate::state::AppState;

fn code(kind: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": format!("{BATON}/CodeSystem/{kind}"), "code": code }], "text": code.replace('-', " ") })
}

/// The resource, as it stood at `now`.
pub fn resource(s: &ReferralState, version: u64, updated: Option<&Instant>, now: Instant) -> Value {
    let placement = &s.subject.placement;
    let business = if s.escalated_at.is_some() {
        "escalated"
    } else if s.status == ReferralStatus::Requested && now >= s.respond_by {
        "sla-breached"
    } else {
        "on-time"
    };
    let mut inputs = Vec::new();
    for exchange in &s.exchanges {
        inputs.push(json!({ "type": code("task-input", "question"), "valueString": exchange.question.as_str() }));
        if let Some(answer) = &exchange.answer {
            inputs.push(
                json!({ "type": code("task-input", "answer"), "valueString": answer.as_str() }),
            );
        }
    }
    let mut outputs = Vec::new();
    if let Some(date) = s.planned_start {
        outputs.push(
            json!({ "type": code("task-output", "planned-start"), "valueDate": date.to_string() }),
        );
    }
    if let Some(at) = &s.care_started_at {
        outputs.push(
            json!({ "type": code("task-output", "care-started"), "valueDateTime": instant(at) }),
        );
    }
    let mut task = json!({
        "resourceType": "Task",
        "id": s.referral_id.as_str(),
        "meta": meta(version, updated, None),
        "status": s.status.code(),
        "businessStatus": code("referral-sla", business),
        "intent": "order",
        "code": { "coding": [{ "system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill" }] },
        "focus": reference("ServiceRequest", s.referral_id.as_str(), None),
        "for": super::patient_reference(&s.subject.patient.nhs_number.digits(), &patient::display(&s.subject.patient)),
        "encounter": reference("Encounter", s.subject.spell_id.as_str(), None),
        "authoredOn": instant(&s.raised_at),
        "requester": reference("Organization", placement.hospital.as_str(), None),
        "owner": reference("Organization", s.team.as_str(), None),
        "restriction": { "period": { "end": instant(&s.respond_by) } },
    });
    if let Some(at) = updated {
        task["lastModified"] = json!(instant(at));
    }
    let reason = match s.status {
        ReferralStatus::OnHold => s.exchanges.last().map(|e| e.question.as_str()),
        _ => s.closing_reason.as_ref().map(Text::as_str),
    };
    if let Some(reason) = reason {
        task["statusReason"] = json!({ "text": reason });
    }
    if !inputs.is_empty() {
        task["input"] = json!(inputs);
    }
    if !outputs.is_empty() {
        task["output"] = json!(outputs);
    }
    task
}

fn referral_id(id: String) -> Result<ReferralId, ApiError> {
    ReferralId::parse(id).map_err(|_| ApiError::NotFound)
}

fn updated_at(state: &AppState, id: &ReferralId) -> Option<Instant> {
    state
        .boards
        .read(|flow| flow.referral(id.as_str()).and_then(|r| r.updated_at))
}

/// A referral the caller may read, with its version and last change.
pub async fn load_readable(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<(ReferralState, u64, Option<Instant>), ApiError> {
    let id = referral_id(id)?;
    let scope = scope_of(state, &id).await?;
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ReadReferral(
            scope
                .as_ref()
                .map(|(team, hospital)| ReferralScope { team, hospital }),
        ),
    )?;
    let (referral, version) = state.bus.load_referral(&id).await?;
    let s = referral.state().ok_or(ApiError::NotFound)?.clone();
    Ok((s, version, updated_at(state, &id)))
}

/// `GET /fhir/R4/Task/{id}`.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let (s, version, updated) = load_readable(&state, &caller, id).await?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_task",
        &format!("/fhir/R4/Task/{}", s.referral_id),
        &[s.subject.patient.nhs_number.digits()],
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &resource(&s, version, updated.as_ref(), Utc::now()),
        Some(version),
    ))
}

/// `GET /fhir/R4/Task/{id}/_history`: the task after each referral event.
pub async fn history(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FhirResult {
    let (s, _, _) = load_readable(&state, &caller, id).await?;
    let events = state.bus.referral_history(&s.referral_id).await?;
    let mut versions = Vec::new();
    fold_history(&events, None, |referral: &Referral, sequence, at| {
        if let Some(now) = referral.state() {
            versions.push(resource(now, sequence, Some(&at), at));
        }
    })?;
    audit::record(
        &state.db,
        &caller,
        "fhir_read_task_history",
        &format!("/fhir/R4/Task/{}/_history", s.referral_id),
        &[s.subject.patient.nhs_number.digits()],
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &bundle::history(&bundle::root(&headers), versions),
        None,
    ))
}

/// What a Task or ServiceRequest search asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The patient's NHS number.
    pub nhs: Option<String>,
    /// The team.
    pub owner: Option<String>,
    /// Any of these statuses (none: any).
    pub statuses: Vec<ReferralStatus>,
    /// Last changed after, before...: (`gt`/`ge`/`lt`/`le`, instant).
    pub last_updated: Vec<(String, Instant)>,
    /// This one only.
    pub id: Option<String>,
}

/// The referrals the caller may see that match, oldest raised first: how
/// many, and the page's, loaded from the store.
pub async fn matching(
    state: &AppState,
    caller: &Caller,
    filter: &Filter,
    search: &Search,
) -> Result<(usize, Vec<(ReferralState, u64, Option<Instant>)>), ApiError> {
    super::patient::sees_patients(caller)?;
    let catalogue = state.reference.snapshot();
    let mut found: Vec<(Instant, String)> = state.boards.read(|flow| {
        flow.referrals()
            .filter(|(id, r)| {
                let updated = r.updated_at.unwrap_or(r.raised_at);
                may_see_referral(
                    &caller.principal,
                    &catalogue,
                    ReferralScope {
                        team: &r.team,
                        hospital: &r.placement.hospital,
                    },
                ) && filter
                    .nhs
                    .as_deref()
                    .is_none_or(|n| r.patient.nhs_number.digits() == n)
                    && filter.owner.as_deref().is_none_or(|o| r.team.as_str() == o)
                    && filter.id.as_deref().is_none_or(|o| o == *id)
                    && (filter.statuses.is_empty() || filter.statuses.contains(&r.status))
                    && filter
                        .last_updated
                        .iter()
                        .all(|(prefix, at)| match prefix.as_str() {
                            "gt" => updated > *at,
                            "ge" => updated >= *at,
                            "lt" => updated < *at,
                            _ => updated <= *at,
                        })
            })
            .map(|(id, r)| (r.raised_at, id.to_owned()))
            .collect()
    });
    found.sort();
    let total = found.len();
    let mut page = Vec::new();
    for (_, id) in search.page(found) {
        let id = referral_id(id)?;
        let (referral, version) = state.bus.load_referral(&id).await?;
        if let Some(s) = referral.state() {
            page.push((s.clone(), version, updated_at(state, &id)));
        }
    }
    Ok((total, page))
}

fn last_updated(value: &str) -> Result<(String, Instant), ApiError> {
    let bad = || {
        ApiError::field(
            "_lastUpdated",
            "must be gt, ge, lt or le and a date or dateTime, as gt2026-12-01T09:00:00Z",
        )
    };
    let (prefix, at) = value.split_at_checked(2).ok_or_else(bad)?;
    if !matches!(prefix, "gt" | "ge" | "lt" | "le") {
        return Err(bad());
    }
    let at = match DateTime::parse_from_rfc3339(at) {
        Ok(at) => at.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(at, "%Y-%m-%d")
            .map_err(|_| bad())?
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc(),
    };
    Ok((prefix.to_owned(), at))
}

const PARAMS: [&str; 9] = [
    "owner",
    "status",
    "_lastUpdated",
    "patient",
    "subject",
    "for",
    "patient.identifier",
    "focus",
    "_id",
];

/// `GET /fhir/R4/Task?owner=Organization/{team}&status=requested`.
pub async fn search(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> FhirResult {
    let search = Search::parse(query.as_deref(), &PARAMS)?;
    let mut statuses = Vec::new();
    for list in search.all("status") {
        for code in list.split(',') {
            statuses.push(
                ReferralStatus::ALL
                    .into_iter()
                    .find(|s| s.code() == code)
                    .ok_or_else(|| {
                        ApiError::field(
                            "status",
                            format!("{code} is not a status a referral takes"),
                        )
                    })?,
            );
        }
    }
    let nhs = search.patient(&["patient.identifier"], &["patient", "subject", "for"]);
    let id = search
        .one(&["_id"])
        .or_else(|| {
            search
                .one(&["focus"])
                .map(|v| referenced_id("ServiceRequest", v))
        })
        .map(str::to_owned);
    let filter = Filter {
        nhs,
        owner: search
            .one(&["owner"])
            .map(|v| referenced_id("Organization", v).to_owned()),
        statuses,
        last_updated: search
            .all("_lastUpdated")
            .map(last_updated)
            .collect::<Result<_, _>>()?,
        id,
    };
    let (total, page) = matching(&state, &caller, &filter, &search).await?;
    let now = Utc::now();
    let patients: Vec<String> = page
        .iter()
        .map(|(s, _, _)| s.subject.patient.nhs_number.digits())
        .collect();
    let resources = page
        .iter()
        .map(|(s, v, u)| resource(s, *v, u.as_ref(), now))
        .collect();
    audit::record(
        &state.db,
        &caller,
        "fhir_search_task",
        "/fhir/R4/Task",
        &patients,
    )
    .await?;
    Ok(answer(
        StatusCode::OK,
        &bundle::searchset(&bundle::root(&headers), "Task", &search, total, resources),
        None,
    ))
}

/// A FHIR JSON body (`application/fhir+json` or `application/json`).
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest {
                detail: "the request body could not be read".to_owned(),
                errors: Vec::new(),
            }
        }
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == super::FHIR_JSON || v == "application/json");
    if !json {
        return Err(ApiError::NotJson);
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        detail: format!("the body is not JSON: {e}"),
        errors: Vec::new(),
    })?;
    if !value.is_object() {
        return Err(ApiError::BadRequest {
            detail: "the body must be a FHIR resource (a JSON object)".to_owned(),
            errors: Vec::new(),
        });
    }
    Ok(value)
}

/// A required text of the body, as a domain `Text`.
fn text_at(field: &str, value: Option<&str>) -> Result<Text, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::refused_field(
            "missing_input",
            field,
            format!("this status change needs {field}"),
        )
    })?;
    Text::parse(value).map_err(|e| ApiError::refused_field("invalid_text", field, e.to_string()))
}

/// The value of the last input or output of this type.
fn last_of<'a>(task: &'a Value, list: &str, kind: &str, value: &str) -> Option<&'a Value> {
    task[list].as_array()?.iter().rev().find_map(|item| {
        let coded = item["type"]["coding"]
            .as_array()
            .is_some_and(|codings| codings.iter().any(|c| c["code"] == kind));
        let texted = item["type"]["text"] == kind;
        (coded || texted)
            .then(|| &item[value])
            .filter(|v| !v.is_null())
    })
}

/// The command for a move from `from` to the status the body names, and
/// whether it is the team's (else the ward's) to make.
pub fn command_for(
    from: ReferralStatus,
    task: &Value,
) -> Result<Option<(ReferralCommand, bool)>, ApiError> {
    let Some(to) = task["status"].as_str() else {
        return Err(ApiError::field("status", "a Task needs a status"));
    };
    let Some(to) = ReferralStatus::ALL.into_iter().find(|s| s.code() == to) else {
        return Err(ApiError::Refused {
            detail: format!("a referral's Task is never {to}: its statuses are requested, received, accepted, rejected, on-hold, cancelled and completed"),
            rule: "unsupported_task_status".to_owned(),
            errors: vec![crate::error::FieldError { field: "status".to_owned(), message: "not a referral status".to_owned() }],
        });
    };
    if to == from {
        return Ok(None);
    }
    let reason = task["statusReason"]["text"].as_str();
    use ReferralStatus as S;
    let command = match to {
        S::Received if from == S::OnHold => {
            let answer = last_of(task, "input", "answer", "valueString").and_then(Value::as_str);
            (
                ReferralCommand::ProvideInformation {
                    answer: text_at("input.answer", answer)?,
                },
                false,
            )
        }
        S::Received => (ReferralCommand::AcknowledgeReferral, true),
        S::Accepted => {
            let date = last_of(task, "output", "planned-start", "valueDate")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::refused_field(
                        "missing_input",
                        "output.planned-start",
                        "accepting needs the planned start as an output planned-start (valueDate)",
                    )
                })?;
            let planned_start = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                ApiError::field("output.planned-start", "must be a date, as 2026-12-03")
            })?;
            (ReferralCommand::AcceptReferral { planned_start }, true)
        }
        S::Rejected => (
            ReferralCommand::DeclineReferral {
                reason: text_at("statusReason.text", reason)?,
            },
            true,
        ),
        S::OnHold => (
            ReferralCommand::RequestInformation {
                question: text_at("statusReason.text", reason)?,
            },
            true,
        ),
        S::Cancelled => (
            ReferralCommand::WithdrawReferral {
                reason: text_at("statusReason.text", reason)?,
            },
            false,
        ),
        S::Completed => {
            let at = match last_of(task, "output", "care-started", "valueDateTime")
                .and_then(Value::as_str)
            {
                Some(at) => DateTime::parse_from_rfc3339(at)
                    .map_err(|_| {
                        ApiError::field("output.care-started", "must be a dateTime with a zone")
                    })?
                    .with_timezone(&Utc),
                None => Utc::now(),
            };
            (ReferralCommand::StartCare { at }, true)
        }
        S::Requested => {
            return Err(ApiError::Refused {
                detail: format!("a referral never goes back from {from} to requested"),
                rule: "invalid_transition".to_owned(),
                errors: Vec::new(),
            })
        }
    };
    Ok(Some(command))
}

/// `PUT /fhir/R4/Task/{id}`: one move through the referral's life cycle.
pub async fn update(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    command_headers: Result<CommandHeaders, ApiError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult {
    let id = referral_id(id)?;
    let catalogue = state.reference.snapshot();
    let scope = scope_of(&state, &id).await?;
    let scope_ref = scope
        .as_ref()
        .map(|(team, hospital)| ReferralScope { team, hospital });
    // Who may act before what they sent: at least a reader of the referral.
    authorize(
        &caller.principal,
        &catalogue,
        Action::ReadReferral(scope_ref),
    )?;
    let command_headers = command_headers?;
    let task = json_body(&headers, body)?;
    if task["resourceType"] != "Task" {
        return Err(ApiError::field("resourceType", "must be Task").into());
    }
    if task["id"].as_str() != Some(id.as_str()) {
        return Err(ApiError::field("id", "must be the id in the path").into());
    }
    let (referral, version) = state.bus.load_referral(&id).await?;
    let current = referral.state().ok_or(ApiError::NotFound)?;
    if let Some(expected) = command_headers.if_match {
        if expected != version {
            return Err(ApiError::PreconditionFailed { current: version }.into());
        }
    }
    let Some((command, team_action)) = command_for(current.status, &task)? else {
        // Nothing Baton records changed: the task as it is.
        return Ok(answer(
            StatusCode::OK,
            &resource(
                current,
                version,
                updated_at(&state, &id).as_ref(),
                Utc::now(),
            ),
            Some(version),
        ));
    };
    fn action(team_action: bool, scope: Option<ReferralScope<'_>>) -> Action<'_> {
        if team_action {
            Action::AnswerReferral(scope)
        } else {
            Action::WardReferralAction(scope)
        }
    }
    authorize(
        &caller.principal,
        &catalogue,
        action(team_action, scope_ref),
    )?;
    let guard = |referral: &Referral| {
        authorize(
            &caller.principal,
            &catalogue,
            action(
                team_action,
                referral.state().map(|s| ReferralScope {
                    team: &s.team,
                    hospital: &s.subject.placement.hospital,
                }),
            ),
        )
        .map_err(|refusal| Denied(Box::new(refusal)))
    };
    let options = CommandOptions::expecting(Some(command_headers.if_match.unwrap_or(version)));
    let committed = state
        .bus
        .referral_guarded(
            &id,
            Issued::new(actor(&caller), Utc::now(), command),
            options,
            &guard,
        )
        .await?;
    let (referral, version) = state.bus.load_referral(&id).await?;
    let s = referral.state().ok_or(ApiError::NotFound)?;
    let mut response = answer(
        StatusCode::OK,
        &resource(s, version, None, Utc::now()),
        Some(version),
    );
    if let Ok(token) = axum::http::HeaderValue::from_str(&committed.token.to_string()) {
        response.headers_mut().insert("x-consistency-token", token);
    }
    Ok(response)
}
