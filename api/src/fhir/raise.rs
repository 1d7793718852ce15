//! Raising a referral in FHIR: a `transaction` Bundle holding the
//! `ServiceRequest` and its `Task` (`POST /fhir/R4`), or a BaRS-style
//! `message` Bundle whose `MessageHeader.eventCoding` is
//! `servicerequest-request` (`POST /fhir/R4/$process-message`), answered
//! with a `transaction-response` or a response message. Either becomes the
//! JSON API's raise (`CommandBus::raise_referral_with`), with the same
//! check (`Action::RaiseReferral` on the spell's hospital).
//!
//! What is read from the ServiceRequest: `encounter` (the spell, required),
//! `performer[0]` (the team; or the Task's `owner`), `code.coding[0].code`
//! (the service, Baton's code), the pathway extension (`P1`-`P3`) and
//! `note[0].text` (the summary). The Task, when sent, must be `requested`,
//! `order`, focused on the ServiceRequest, and owned by the same team.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use domain::values::{Pathway, ReferralId, ServiceKind, SpellId, TeamCode, Text};
use infra::commands::{CommandOptions, RaiseReferral};
use serde_json::{json, Value};

use super::bundle;
use super::{answer, referenced_id, FhirCaller, FhirResult, BASE, BATON};
use crate::error::{ApiError, FieldError};
use crate::extract::Caller;
use crate::policy::{authorize, Action};
use crate::routes::actor;
use crate::routes::spells::hospital_of;
use crate::state::AppState;

/// The BaRS event of a new referral.
pub const BARS_EVENTS: &str = "https://fhir.nhs.uk/CodeSystem/message-events-bars";

fn refused(rule: &str, field: &str, message: &str) -> ApiError {
    ApiError::Refused {
        detail: message.to_owned(),
        rule: rule.to_owned(),
        errors: vec![FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        }],
    }
}

/// The resources of a Bundle of this `type`, with their `fullUrl`s.
fn entries(bundle: &Value, kind: &str) -> Result<Vec<(String, Value)>, ApiError> {
    if bundle["resourceType"] != "Bundle" {
        return Err(ApiError::field("resourceType", "must be Bundle"));
    }
    if bundle["type"] != kind {
        return Err(ApiError::field("type", format!("must be {kind}")));
    }
    let list = bundle["entry"]
        .as_array()
        .ok_or_else(|| ApiError::field("entry", "a Bundle of entries is needed"))?;
    Ok(list
        .iter()
        .map(|e| {
            (
                e["fullUrl"].as_str().unwrap_or_default().to_owned(),
                e["resource"].clone(),
            )
        })
        .collect())
}

fn one<'a>(
    entries: &'a [(String, Value)],
    kind: &str,
) -> Result<Option<&'a (String, Value)>, ApiError> {
    let mut found = entries.iter().filter(|(_, r)| r["resourceType"] == kind);
    let first = found.next();
    if found.next().is_some() {
        return Err(refused(
            "one_referral_per_bundle",
            "entry",
            &format!("one {kind} per Bundle"),
        ));
    }
    Ok(first)
}

fn code_of<T: serde::de::DeserializeOwned>(
    code: Option<&str>,
    field: &str,
    what: &str,
) -> Result<T, ApiError> {
    let code = code.ok_or_else(|| ApiError::field(field, format!("the {what} is needed")))?;
    serde_json::from_value(json!(code)).map_err(|_| {
        refused(
            &format!("unknown_{what}"),
            field,
            &format!("{code} is not a {what} Baton knows"),
        )
    })
}

/// The raise a ServiceRequest (and its Task) asks for.
fn raise_of(
    request: &(String, Value),
    task: Option<&(String, Value)>,
) -> Result<RaiseReferral, ApiError> {
    let (request_url, sr) = request;
    let spell = sr["encounter"]["reference"].as_str().ok_or_else(|| {
        ApiError::field(
            "ServiceRequest.encounter",
            "the spell (Encounter/{id}) is needed",
        )
    })?;
    let spell_id = SpellId::parse(referenced_id("Encounter", spell))
        .map_err(|_| ApiError::field("ServiceRequest.encounter", "not an Encounter of Baton's"))?;
    let owner = task.and_then(|(_, t)| t["owner"]["reference"].as_str());
    let performer = sr["performer"][0]["reference"]
        .as_str()
        .or(owner)
        .ok_or_else(|| {
            ApiError::field(
                "ServiceRequest.performer",
                "the team (Organization/{code}) is needed",
            )
        })?;
    let team = TeamCode::parse(referenced_id("Organization", performer))
        .map_err(|_| ApiError::field("ServiceRequest.performer", "not a team code"))?;
    let service: ServiceKind = code_of(
        sr["code"]["coding"][0]["code"].as_str(),
        "ServiceRequest.code",
        "service",
    )?;
    let pathway_code = sr["extension"].as_array().and_then(|list| {
        list.iter()
            .find(|e| e["url"] == format!("{BATON}/StructureDefinition/discharge-pathway"))
            .and_then(|e| e["valueCoding"]["code"].as_str())
    });
    let pathway: Pathway = code_of(pathway_code, "ServiceRequest.extension", "pathway")?;
    let summary = sr["note"][0]["text"].as_str().ok_or_else(|| {
        ApiError::field(
            "ServiceRequest.note",
            "the summary (note[0].text) is needed",
        )
    })?;
    let summary = Text::parse(summary)
        .map_err(|e| refused("invalid_text", "ServiceRequest.note", &e.to_string()))?;
    if let Some((_, t)) = task {
        if t["status"] != "requested" || t["intent"] != "order" {
            return Err(refused(
                "task_must_be_requested",
                "Task.status",
                "a new referral's Task is requested, intent order",
            ));
        }
        let focus = t["focus"]["reference"].as_str().unwrap_or_default();
        let sr_id = sr["id"].as_str().map(|id| format!("ServiceRequest/{id}"));
        if focus != request_url && Some(focus.to_owned()) != sr_id {
            return Err(refused(
                "task_focus",
                "Task.focus",
                "the Task's focus must be the ServiceRequest of the Bundle",
            ));
        }
        if owner.is_some_and(|o| referenced_id("Organization", o) != team.as_str()) {
            return Err(refused(
                "task_owner",
                "Task.owner",
                "the Task's owner must be the ServiceRequest's performer",
            ));
        }
    }
    let referral_id =
        ReferralId::parse(uuid::Uuid::new_v4().simple().to_string()).map_err(ApiError::internal)?;
    Ok(RaiseReferral {
        referral_id,
        spell_id,
        team,
        service,
        pathway,
        summary,
    })
}

/// Raises it, checked as the JSON API checks it; answers the referral's id.
async fn raise(
    state: &AppState,
    caller: &Caller,
    raise: RaiseReferral,
) -> Result<(String, u64), ApiError> {
    let hospital = hospital_of(state, &raise.spell_id).await?;
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::RaiseReferral {
            hospital: hospital.as_ref(),
        },
    )?;
    let committed = state
        .bus
        .raise_referral_with(raise, actor(caller), Utc::now(), CommandOptions::default())
        .await?;
    Ok((committed.aggregate_id, committed.version))
}

/// `POST /fhir/R4` with a `transaction` Bundle.
pub async fn transaction(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult {
    let bundle = super::task::json_body(&headers, body)?;
    let entries = entries(&bundle, "transaction")?;
    let request = one(&entries, "ServiceRequest")?.ok_or_else(|| {
        refused(
            "service_request_needed",
            "entry",
            "a ServiceRequest is needed",
        )
    })?;
    let task = one(&entries, "Task")?.ok_or_else(|| {
        refused(
            "task_needed",
            "entry",
            "the ServiceRequest's Task is needed",
        )
    })?;
    if entries.len() != 2 {
        return Err(refused(
            "unsupported_entry",
            "entry",
            "a referral's transaction holds its ServiceRequest and Task only",
        )
        .into());
    }
    let (id, version) = raise(&state, &caller, raise_of(request, Some(task))?).await?;
    let created = |kind: &str| {
        json!({ "response": {
            "status": "201 Created",
            "location": format!("{kind}/{id}/_history/{version}"),
            "etag": format!("W/\"{version}\""),
        } })
    };
    let body = json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [created("ServiceRequest"), created("Task")],
    });
    Ok(answer(StatusCode::OK, &body, None))
}

/// `POST /fhir/R4/$process-message` with a BaRS-style referral message.
pub async fn process_message(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult {
    let message = super::task::json_body(&headers, body)?;
    let entries = entries(&message, "message")?;
    let (_, header) = entries
        .first()
        .filter(|(_, r)| r["resourceType"] == "MessageHeader")
        .ok_or_else(|| ApiError::field("entry", "a message starts with its MessageHeader"))?;
    let event = &header["eventCoding"];
    if event["code"] != "servicerequest-request" {
        return Err(refused(
            "unsupported_message_event",
            "MessageHeader.eventCoding",
            "Baton processes servicerequest-request messages only",
        )
        .into());
    }
    let focus = header["focus"][0]["reference"].as_str().unwrap_or_default();
    let request = entries
        .iter()
        .find(|(url, r)| {
            r["resourceType"] == "ServiceRequest"
                && (focus.is_empty()
                    || url == focus
                    || r["id"]
                        .as_str()
                        .is_some_and(|id| focus == format!("ServiceRequest/{id}")))
        })
        .ok_or_else(|| {
            refused(
                "service_request_needed",
                "MessageHeader.focus",
                "the message's focus must be a ServiceRequest in it",
            )
        })?;
    let (id, _) = raise(&state, &caller, raise_of(request, None)?).await?;
    let root = bundle::root(&headers);
    let response_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "message",
        "timestamp": super::instant(&Utc::now()),
        "entry": [{
            "fullUrl": format!("urn:uuid:{response_id}"),
            "resource": {
                "resourceType": "MessageHeader",
                "id": response_id,
                "eventCoding": { "system": BARS_EVENTS, "code": "servicerequest-response" },
                "source": { "endpoint": format!("{root}{BASE}") },
                "response": {
                    "identifier": header["id"].as_str().unwrap_or_default(),
                    "code": "ok",
                },
                "focus": [{ "reference": format!("ServiceRequest/{id}") }],
            },
        }],
    });
    Ok(answer(StatusCode::OK, &body, None))
}
