//! Referrals: handovers from a hospital to a community team, on the FHIR
//! Task life cycle. The team answers; the ward raises, withdraws and
//! answers the team's questions. A referral's team and hospital never
//! change, so access is decided from the boards' copy, falling back to the
//! event store for one the boards have not seen yet.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{NaiveDate, Utc};
use domain::referral::{Referral, ReferralCommand, ReferralStatus};
use domain::values::{HospitalCode, Pathway, ReferralId, ServiceKind, SpellId, TeamCode};
use domain::Issued;
use infra::commands::{Denied, RaiseReferral};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::spells::{hospital_of, text, utc, AtRequest, ReasonRequest};
use super::{actor, answer, await_token, options, path_id, Answered, CommandAnswer, ReadQuery};
use crate::audit;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, CommandHeaders, JsonBody, QueryParams};
use crate::policy::{authorize, may_see_referral, Action, ReferralScope};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(raise, list))
        .routes(routes!(get_referral))
        .routes(routes!(acknowledge))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(request_information))
        .routes(routes!(provide_information))
        .routes(routes!(withdraw))
        .routes(routes!(start_care))
}

/// `POST /api/v1/referrals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseRequest {
    /// The spell (an open one).
    #[schema(value_type = String)]
    pub spell_id: SpellId,
    /// The receiving team.
    #[schema(value_type = String)]
    pub team: TeamCode,
    /// The service asked for.
    #[schema(value_type = String)]
    pub service: ServiceKind,
    /// The pathway (`P1`-`P3`).
    #[schema(value_type = String)]
    pub pathway: Pathway,
    /// What the team needs to know.
    pub summary: String,
}

/// `accept`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// When care is planned to start.
    pub planned_start: NaiveDate,
}

/// `request-information`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionRequest {
    /// What the team needs to know.
    pub question: String,
}

/// `provide-information`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// The ward's answer.
    pub answer: String,
}

/// An empty command body (`{}` or nothing).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `GET /api/v1/referrals` filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this team's.
    pub team: Option<String>,
    /// Only this status (`requested`, `received`, `accepted`, `rejected`,
    /// `on-hold`, `cancelled`, `completed`).
    pub status: Option<String>,
    /// See [`ReadQuery`].
    pub consistency_token: Option<String>,
}

/// A referral as its readers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReferralView {
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: u64,
    /// Unacknowledged past the team's response time.
    pub sla_breached: bool,
    /// Everything else: status (FHIR Task status), subject (minimum patient
    /// detail), team, service, pathway, summary, times, questions and answers.
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub state: serde_json::Value,
}

/// One row of `GET /api/v1/referrals`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReferralSummary {
    /// Id.
    pub id: String,
    /// Status.
    pub status: String,
    /// Spell.
    pub spell_id: String,
    /// Team.
    pub team: String,
    /// Hospital and ward when referred.
    pub hospital: String,
    /// Ward.
    pub ward: String,
    /// Service.
    #[schema(value_type = String)]
    pub service: ServiceKind,
    /// Pathway.
    #[schema(value_type = String)]
    pub pathway: Pathway,
    /// Patient (minimum detail).
    #[schema(value_type = Object)]
    pub patient: serde_json::Value,
    /// Minutes since raised.
    pub age_minutes: i64,
    /// Unacknowledged past the SLA.
    pub sla_breached: bool,
}

/// The team and hospital of a referral (from the boards when they hold it,
/// else the store), or `None` if there is none.
pub(crate) async fn scope_of(
    state: &AppState,
    id: &ReferralId,
) -> Result<Option<(TeamCode, HospitalCode)>, ApiError> {
    if let Some(scope) = state.boards.read(|flow| {
        flow.referral(id.as_str())
            .map(|r| (r.team.clone(), r.placement.hospital.clone()))
    }) {
        return Ok(Some(scope));
    }
    let (referral, _) = state.bus.load_referral(id).await?;
    Ok(referral
        .state()
        .map(|s| (s.team.clone(), s.subject.placement.hospital.clone())))
}

#[allow(clippy::too_many_arguments)] // one call site per command, each spelled out
async fn run(
    state: &AppState,
    caller: &Caller,
    headers: &CommandHeaders,
    id: &str,
    operation: &str,
    body: &impl Serialize,
    team_action: bool,
    command: impl FnOnce() -> Result<ReferralCommand, ApiError>,
) -> Result<Answered, ApiError> {
    let id = path_id(ReferralId::parse(id))?;
    let principal = &caller.principal;
    let catalogue = state.reference.snapshot();
    let allowed = |scope: Option<(&TeamCode, &HospitalCode)>| {
        let scope = scope.map(|(team, hospital)| ReferralScope { team, hospital });
        authorize(
            principal,
            &catalogue,
            if team_action {
                Action::AnswerReferral(scope)
            } else {
                Action::WardReferralAction(scope)
            },
        )
    };
    // Who may act comes before what they sent (see `spells::run`).
    let command = match command() {
        Ok(command) => command,
        Err(invalid) => {
            let scope = scope_of(state, &id).await?;
            allowed(scope.as_ref().map(|(team, hospital)| (team, hospital)))?;
            return Err(invalid);
        }
    };
    let options = options(caller, headers, operation, id.as_str(), body, json!({}));
    // The bus checks the caller on the referral it loads for the command.
    let guard = |referral: &Referral| {
        allowed(
            referral
                .state()
                .map(|s| (&s.team, &s.subject.placement.hospital)),
        )
        .map_err(|refusal| Denied(Box::new(refusal)))
    };
    let committed = state
        .bus
        .referral_guarded(
            &id,
            Issued::new(actor(caller), Utc::now(), command),
            options,
            &guard,
        )
        .await?;
    Ok(answer(StatusCode::OK, committed, json!({})))
}

/// Raise a referral for an open spell.
#[utoipa::path(post, path = "/api/v1/referrals", tag = "referrals", request_body = RaiseRequest,
    responses((status = 201, body = CommandAnswer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn raise(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    JsonBody(req): JsonBody<RaiseRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let hospital = hospital_of(&state, &req.spell_id).await?;
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::RaiseReferral {
            hospital: hospital.as_ref(),
        },
    )?;
    let referral_id = path_id(ReferralId::parse(uuid::Uuid::new_v4().simple().to_string()))?;
    let raise = RaiseReferral {
        referral_id,
        spell_id: req.spell_id.clone(),
        team: req.team.clone(),
        service: req.service,
        pathway: req.pathway,
        summary: text("summary", &req.summary)?,
    };
    let options = options(&caller, &headers, "raise", "", &req, json!({}));
    let committed = state
        .bus
        .raise_referral_with(raise, actor(&caller), Utc::now(), options)
        .await?;
    Ok(answer(StatusCode::CREATED, committed, json!({})))
}

/// A referral, with the minimum patient detail the team needs.
#[utoipa::path(get, path = "/api/v1/referrals/{id}", tag = "referrals",
    params(("id" = String, Path), ReadQuery),
    responses((status = 200, body = ReferralView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_referral(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id(ReferralId::parse(id))?;
    let scope = scope_of(&state, &id).await?;
    let scope_ref = scope
        .as_ref()
        .map(|(team, hospital)| ReferralScope { team, hospital });
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ReadReferral(scope_ref),
    )?;
    await_token(&state, query.consistency_token.as_deref()).await?;
    let (referral, version) = state.bus.load_referral(&id).await?;
    let s = referral.state().ok_or(ApiError::NotFound)?;
    audit::record(
        &state.db,
        &caller,
        "read_referral",
        &format!("/api/v1/referrals/{id}"),
        &[s.subject.patient.nhs_number.digits()],
    )
    .await?;
    let breached = s.status == ReferralStatus::Requested && Utc::now() >= s.respond_by;
    Ok((
        [(axum::http::header::ETAG, format!("\"{version}\""))],
        Json(ReferralView {
            id: id.to_string(),
            version,
            sla_breached: breached,
            state: serde_json::to_value(s).map_err(ApiError::internal)?,
        }),
    ))
}

/// Referrals the caller may see: a team's own, a ward's hospital's.
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals", params(ListQuery),
    responses((status = 200, body = [ReferralSummary]), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = state.reference.snapshot();
    authorize(&caller.principal, &catalogue, Action::ListReferrals)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(code) => Some(
            ReferralStatus::ALL
                .into_iter()
                .find(|s| s.code() == code)
                .ok_or_else(|| ApiError::field("status", "not a referral status"))?,
        ),
    };
    await_token(&state, query.consistency_token.as_deref()).await?;
    let now = Utc::now();
    let rows: Vec<ReferralSummary> = state.boards.read(|flow| {
        flow.referrals()
            .filter(|(_, r)| {
                may_see_referral(
                    &caller.principal,
                    &catalogue,
                    ReferralScope {
                        team: &r.team,
                        hospital: &r.placement.hospital,
                    },
                )
            })
            .filter(|(_, r)| query.team.as_deref().is_none_or(|t| r.team.as_str() == t))
            .filter(|(_, r)| status.is_none_or(|s| r.status == s))
            .map(|(id, r)| ReferralSummary {
                id: id.to_owned(),
                status: r.status.code().to_owned(),
                spell_id: r.spell_id.clone(),
                team: r.team.to_string(),
                hospital: r.placement.hospital.to_string(),
                ward: r.placement.ward.to_string(),
                service: r.service,
                pathway: r.pathway,
                patient: serde_json::to_value(&r.patient).unwrap_or_default(),
                age_minutes: (now - r.raised_at).num_minutes(),
                sla_breached: projections::boards::sla_breached(r, now),
            })
            .collect()
    });
    let patients: Vec<String> = rows
        .iter()
        .filter_map(|r| r.patient.get("nhs_number").and_then(|n| n.as_str()))
        .map(str::to_owned)
        .collect();
    audit::record(
        &state.db,
        &caller,
        "list_referrals",
        "/api/v1/referrals",
        &patients,
    )
    .await?;
    Ok(Json(rows))
}

macro_rules! referral_command {
    ($(#[$doc:meta])* $fn:ident, $path:literal, $op:literal, $req:ty, $team:expr, |$r:ident| $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "referrals", params(("id" = String, Path)),
            request_body = $req,
            responses((status = 200, body = CommandAnswer), (status = 403, body = Problem, content_type = "application/problem+json"),
                (status = 404, body = Problem, content_type = "application/problem+json"), (status = 412, body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json")))]
        async fn $fn(
            State(state): State<AppState>,
            caller: Caller,
            headers: CommandHeaders,
            Path(id): Path<String>,
            JsonBody($r): JsonBody<$req>,
        ) -> Result<impl IntoResponse, ApiError> {
            let command = || -> Result<ReferralCommand, ApiError> { Ok($build) };
            run(&state, &caller, &headers, &id, $op, &$r, $team, command).await
        }
    };
}

referral_command!(
    /// The team has seen it: `received`.
    acknowledge, "/api/v1/referrals/{id}/acknowledge", "acknowledge", Empty, true,
    |_r| ReferralCommand::AcknowledgeReferral
);
referral_command!(
    /// The team will take the person on: `accepted`.
    accept, "/api/v1/referrals/{id}/accept", "accept", AcceptRequest, true,
    |r| ReferralCommand::AcceptReferral { planned_start: r.planned_start }
);
referral_command!(
    /// The team cannot: `rejected`.
    decline, "/api/v1/referrals/{id}/decline", "decline", ReasonRequest, true,
    |r| ReferralCommand::DeclineReferral { reason: text("reason", &r.reason)? }
);
referral_command!(
    /// The team needs to know more: `on-hold`.
    request_information, "/api/v1/referrals/{id}/request-information", "ask", QuestionRequest, true,
    |r| ReferralCommand::RequestInformation { question: text("question", &r.question)? }
);
referral_command!(
    /// The ward answers: back to `received`.
    provide_information, "/api/v1/referrals/{id}/provide-information", "answer", AnswerRequest, false,
    |r| ReferralCommand::ProvideInformation { answer: text("answer", &r.answer)? }
);
referral_command!(
    /// The ward withdraws it: `cancelled`.
    withdraw, "/api/v1/referrals/{id}/withdraw", "withdraw", ReasonRequest, false,
    |r| ReferralCommand::WithdrawReferral { reason: text("reason", &r.reason)? }
);
referral_command!(
    /// The person is taken on: `completed`.
    start_care, "/api/v1/referrals/{id}/start-care", "start-care", AtRequest, true,
    |r| ReferralCommand::StartCare { at: utc(r.at) }
);
