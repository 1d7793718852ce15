//! The PAS's HL7 v2 ADT feed, for admins (issue 16): the messages Baton
//! held (answered `AE` or `AR`) with why, a retry of one once its cause is
//! fixed, and the mapping of the PAS's locations to Baton's wards and beds.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use domain::values::{BedLabel, WardCode};
use infra::hl7::held::HeldMessage;
use infra::hl7::mapping::LocationMapping;
use infra::hl7::{AckCode, Answer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{Caller, JsonBody};
use crate::policy::{authorize, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(held))
        .routes(routes!(retry))
        .routes(routes!(locations, put_location))
}

/// A held message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldRow {
    pub id: i64,
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-10 (empty when the message had none).
    pub control_id: String,
    /// The trigger event (`A01`...; empty when unreadable).
    pub trigger: String,
    /// `AE` (understood, not applied) or `AR` (not readable).
    pub ack_code: String,
    /// The HL7 error code (table 0357).
    pub error_code: String,
    /// Why it was not applied (Baton's rule, then words).
    pub reason: String,
    /// The message as received.
    pub message: String,
}

impl From<HeldMessage> for HeldRow {
    fn from(m: HeldMessage) -> Self {
        Self {
            id: m.id,
            received_at: m.received_at,
            sending_application: m.sending_application,
            sending_facility: m.sending_facility,
            control_id: m.control_id,
            trigger: m.trigger,
            ack_code: m.ack_code,
            error_code: m.error_code,
            reason: m.reason,
            message: m.message,
        }
    }
}

/// `GET /api/v1/feeds/held`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldList {
    /// Oldest first.
    pub messages: Vec<HeldRow>,
}

/// `POST /api/v1/feeds/held/{id}/retry`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetryAnswer {
    /// True when the message applied this time (it is no longer held).
    pub applied: bool,
    /// `AA`, `AE` or `AR`, as the sender would have been answered.
    pub ack_code: String,
    /// The acknowledgement itself.
    pub ack: String,
}

/// A location mapping: a PAS point of care (and bed) to a Baton ward (and bed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    /// PV1-3.1, as the PAS sends it.
    pub point_of_care: String,
    /// PV1-3.3; empty or absent to map the whole point of care.
    #[serde(default)]
    pub pas_bed: String,
    /// Baton's ward code.
    pub ward: String,
    /// Baton's bed label; absent to keep the PAS's bed as sent.
    #[serde(default)]
    pub bed: Option<String>,
}

/// `GET /api/v1/feeds/locations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationList {
    pub locations: Vec<LocationBody>,
}

pub(super) fn admin(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ManageFeeds,
    )
}

pub(super) fn unavailable(error: sqlx::Error) -> ApiError {
    if infra::store::is_unavailable(&error) {
        ApiError::Unavailable("the database is unavailable; try again shortly".into())
    } else {
        ApiError::internal(error)
    }
}

/// The messages from the PAS that Baton did not apply, with why.
#[utoipa::path(get, path = "/api/v1/feeds/held", tag = "feeds",
    responses((status = 200, body = HeldList), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn held(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &caller)?;
    let messages = infra::hl7::held::list(&state.db)
        .await
        .map_err(unavailable)?;
    // Held messages carry patients' details: the access log first.
    let patients: Vec<String> = messages
        .iter()
        .filter_map(|m| infra::hl7::Message::parse(m.message.as_bytes()).ok())
        .flat_map(|m| infra::hl7::adt::nhs_numbers(&m))
        .collect();
    crate::audit::record(
        &state.db,
        &caller,
        "read_held_messages",
        "/api/v1/feeds/held",
        &patients,
    )
    .await?;
    Ok(Json(HeldList {
        messages: messages.into_iter().map(HeldRow::from).collect(),
    }))
}

/// Applies a held message again (after, say, its ward was mapped); it
/// leaves the queue once it applies.
#[utoipa::path(post, path = "/api/v1/feeds/held/{id}/retry", tag = "feeds",
    params(("id" = String, Path, description = "The held message's id (digits)")),
    responses((status = 200, body = RetryAnswer), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &caller)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let answer = state.adt.retry(id).await.map_err(unavailable)?;
    match answer {
        None => Err(ApiError::NotFound),
        Some(Answer::Unanswered) => Err(ApiError::Unavailable(
            "the event store is unavailable; try again shortly".into(),
        )),
        Some(Answer::Ack { code, text }) => Ok(Json(RetryAnswer {
            applied: code == AckCode::Accept,
            ack_code: code.as_str().to_owned(),
            ack: text,
        })),
    }
}

/// How the PAS's locations map to Baton's wards and beds.
#[utoipa::path(get, path = "/api/v1/feeds/locations", tag = "feeds",
    responses((status = 200, body = LocationList), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn locations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &caller)?;
    let rows = infra::hl7::mapping::list(&state.db)
        .await
        .map_err(unavailable)?;
    Ok(Json(LocationList {
        locations: rows
            .into_iter()
            .map(|m| LocationBody {
                point_of_care: m.point_of_care,
                pas_bed: m.pas_bed,
                ward: m.ward,
                bed: m.bed,
            })
            .collect(),
    }))
}

/// The longest PAS code Baton records.
pub const MAX_PAS_CODE: usize = 64;

pub(super) fn pas_code(field: &str, text: &str, required: bool) -> Result<String, ApiError> {
    let bidirectional = |c: char| matches!(c, '\u{061C}' | '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text.chars().count() > MAX_PAS_CODE
        || text.chars().any(|c| c.is_control() || bidirectional(c))
        || (required && text.trim().is_empty())
    {
        return Err(ApiError::refused_field(
            "invalid_text",
            field,
            format!("a PAS code of 1 to {MAX_PAS_CODE} characters, without control characters"),
        ));
    }
    Ok(text.trim().to_owned())
}

/// Maps a PAS point of care (and bed) to a Baton ward (and bed).
#[utoipa::path(put, path = "/api/v1/feeds/locations", tag = "feeds", request_body = LocationBody,
    responses((status = 200, body = LocationBody), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn put_location(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<LocationBody>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&state, &caller)?;
    let point_of_care = pas_code("point_of_care", &body.point_of_care, true)?;
    let pas_bed = pas_code("pas_bed", &body.pas_bed, false)?;
    let ward = WardCode::parse(body.ward.trim())
        .map_err(|e| ApiError::refused_field("invalid_code", "ward", e.to_string()))?;
    let catalogue = state.reference.snapshot();
    let known = domain::reference::ReferenceData::ward(catalogue.as_ref(), &ward);
    let Some(known) = known else {
        return Err(ApiError::refused_field(
            "unknown_ward",
            "ward",
            "no such ward",
        ));
    };
    let bed = match body.bed.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => None,
        Some(bed) => {
            let label = BedLabel::parse(bed)
                .map_err(|e| ApiError::refused_field("invalid_code", "bed", e.to_string()))?;
            if !known.has_bed(&label) {
                return Err(ApiError::refused_field(
                    "unknown_bed",
                    "bed",
                    "the ward has no such bed",
                ));
            }
            Some(label.to_string())
        }
    };
    let mapping = LocationMapping {
        point_of_care,
        pas_bed,
        ward: ward.to_string(),
        bed,
    };
    infra::hl7::mapping::put(&state.db, &mapping, &caller.principal.sub)
        .await
        .map_err(unavailable)?;
    state.adt.mapping_changed();
    Ok(Json(LocationBody {
        point_of_care: mapping.point_of_care,
        pas_bed: mapping.pas_bed,
        ward: mapping.ward,
        bed: mapping.bed,
    }))
}
