//! Admins grant a named user a role and scope, or revoke their access, in
//! Baton itself (whatever their identity provider says), and list who has
//! what and every change with who made it and when. Grants and revocations
//! are events (`domain::access`); the sign-in check of every request reads
//! them from the fold (`projections::access`), so a revocation stops the
//! user's next request and their open live streams. A command answers once
//! the fold includes it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use domain::access::{AccessCommand, AccessNow, GrantedAccess};
use domain::values::Text;
use domain::Issued;
use infra::auth::{ClaimsProblem, Principal, Role, ScopeClaims};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{actor, answer, options, Answered};
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, CommandHeaders, JsonBody};
use crate::policy::{authorize, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(grant))
        .routes(routes!(revoke))
}

/// The longest user id (`sub`) Baton records.
pub const MAX_SUB: usize = 255;

/// `POST /api/v1/access/{sub}/grant`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The user's name, as the admin knows it.
    pub name: String,
    /// `ward`, `team`, `system` or `admin` (and any role the token claims
    /// know).
    pub role: String,
    /// For a ward: the hospital code.
    pub hospital: Option<String>,
    /// For a ward of a whole trust: the trust code.
    pub trust: Option<String>,
    /// For a team: the team code.
    pub team: Option<String>,
    /// For a care transfer hub: the hub code.
    pub hub: Option<String>,
    /// Why, for the record.
    pub reason: Option<String>,
}

/// `POST /api/v1/access/{sub}/revoke`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why, for the record.
    pub reason: Option<String>,
}

fn sub_of(sub: &str) -> Result<String, ApiError> {
    let sub = sub.trim();
    if sub.is_empty() || sub.len() > MAX_SUB || sub.chars().any(char::is_control) {
        return Err(ApiError::field(
            "sub",
            format!("a user id of 1 to {MAX_SUB} characters, without control characters"),
        ));
    }
    Ok(sub.to_owned())
}

fn reason_of(reason: Option<&str>) -> Result<Option<Text>, ApiError> {
    reason
        .filter(|r| !r.trim().is_empty())
        .map(Text::parse)
        .transpose()
        .map_err(|e| ApiError::refused_field("invalid_text", "reason", e.to_string()))
}

/// The user id and reason of a grant or revocation, once the caller may
/// manage access.
fn admin(
    state: &AppState,
    caller: &Caller,
    sub: &str,
    reason: Option<&str>,
) -> Result<(String, Option<Text>), ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ManageAccess,
    )?;
    Ok((sub_of(sub)?, reason_of(reason)?))
}

/// Issues an access command and answers once the fold (which the sign-in
/// check reads) includes it, so the user's next request meets it.
async fn issue(
    state: &AppState,
    caller: &Caller,
    headers: &CommandHeaders,
    (operation, sub, body): (&str, &str, &impl Serialize),
    command: AccessCommand,
    status: StatusCode,
) -> Result<Answered, ApiError> {
    let committed = state
        .bus
        .access(
            Issued::new(actor(caller), chrono::Utc::now(), command),
            options(caller, headers, operation, sub, body, serde_json::json!({})),
        )
        .await?;
    super::await_token(state, Some(&committed.token.to_string())).await?;
    Ok(answer(status, committed, serde_json::json!({ "sub": sub })))
}

/// Refuses a grant whose scope names a place the catalogue does not know.
fn known_scope(field: &'static str, known: bool) -> Result<(), ApiError> {
    if known {
        Ok(())
    } else {
        Err(ApiError::refused_field(
            "unknown_scope",
            field,
            format!("no such {field}"),
        ))
    }
}

/// Gives a user a role and scope in Baton, whatever their identity
/// provider says.
#[utoipa::path(post, path = "/api/v1/access/{sub}/grant", tag = "access", request_body = GrantRequest,
    params(("sub" = String, Path, description = "The user's id (the `sub` of their sign-in)")),
    responses((status = 201, body = super::CommandAnswer), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(sub): Path<String>,
    JsonBody(req): JsonBody<GrantRequest>,
) -> Result<Answered, ApiError> {
    let (sub, reason) = admin(&state, &caller, &sub, req.reason.as_deref())?;
    let name = req.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::field("name", "the user's name is required"));
    }
    // The grant must describe a caller, as a token's claims must, over
    // places Baton knows.
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let access = GrantedAccess {
        role: req.role.trim().to_owned(),
        hospital: trimmed(&req.hospital),
        trust: trimmed(&req.trust),
        team: trimmed(&req.team),
        hub: trimmed(&req.hub),
    };
    let principal = principal_of_grant(sub.clone(), name.clone(), &access)
        .map_err(|problem| ApiError::refused_field("not_a_caller", "role", problem.to_string()))?;
    let catalogue = state.reference.snapshot();
    if let Some(hospital) = &principal.hospital {
        known_scope(
            "hospital",
            catalogue.hospitals().any(|h| h.code.as_str() == hospital),
        )?;
    }
    if let Some(trust) = &principal.trust {
        known_scope(
            "trust",
            catalogue
                .hospitals()
                .any(|h| h.trust.as_ref().is_some_and(|t| t.as_str() == trust)),
        )?;
    }
    if let Some(team) = &principal.team {
        known_scope("team", catalogue.teams().any(|t| t.code.as_str() == team))?;
    }
    if let Some(hub) = &principal.hub {
        known_scope("hub", catalogue.hubs().any(|h| h.code.as_str() == hub))?;
    }
    let access = granted_access(&principal);
    let body = req.clone();
    let command = AccessCommand::Grant {
        sub: sub.clone(),
        name,
        access,
        reason,
    };
    issue(
        &state,
        &caller,
        &headers,
        ("grant_access", &sub, &body),
        command,
        StatusCode::CREATED,
    )
    .await
}

/// The grant as recorded: the role and the scope the caller carries.
fn granted_access(principal: &Principal) -> GrantedAccess {
    let ScopeClaims {
        hospital,
        trust,
        team,
        hub,
    } = principal.scope_claims();
    GrantedAccess {
        role: principal.role.as_str().to_owned(),
        hospital,
        trust,
        team,
        hub,
    }
}

/// The caller a grant makes of `sub`, through the one rule every caller
/// passes (`Principal::scoped`).
pub(crate) fn principal_of_grant(
    sub: String,
    name: String,
    granted: &GrantedAccess,
) -> Result<Principal, ClaimsProblem> {
    let role: Role = granted.role.parse()?;
    Principal::scoped(
        sub,
        name,
        role,
        ScopeClaims {
            hospital: granted.hospital.clone(),
            trust: granted.trust.clone(),
            team: granted.team.clone(),
            hub: granted.hub.clone(),
        },
    )
}

/// Withdraws a user's access to Baton, whatever their identity provider
/// says, until a grant: their next request, and any live stream they have
/// open, is refused.
#[utoipa::path(post, path = "/api/v1/access/{sub}/revoke", tag = "access", request_body = RevokeRequest,
    params(("sub" = String, Path, description = "The user's id (the `sub` of their sign-in)")),
    responses((status = 200, body = super::CommandAnswer), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(sub): Path<String>,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> Result<Answered, ApiError> {
    let (sub, reason) = admin(&state, &caller, &sub, req.reason.as_deref())?;
    let command = AccessCommand::Revoke {
        sub: sub.clone(),
        reason,
    };
    issue(
        &state,
        &caller,
        &headers,
        ("revoke_access", &sub, &req),
        command,
        StatusCode::OK,
    )
    .await
}

/// One user's access in Baton.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserAccessRow {
    pub sub: String,
    pub name: String,
    /// `granted` or `revoked`.
    pub state: String,
    #[schema(value_type = Option<Object>)]
    pub granted: Option<GrantedAccess>,
    /// Who made the last change (user id and name) and when.
    #[schema(value_type = Object)]
    pub by: domain::Actor,
    #[schema(value_type = String)]
    pub at: domain::values::Instant,
}

/// Each user's access in Baton, and every grant and revocation (newest
/// first) with who made it and when.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessOverview {
    pub users: Vec<UserAccessRow>,
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<projections::access::AccessChange>,
}

/// Who has been granted or refused what in Baton, and the history.
#[utoipa::path(get, path = "/api/v1/access", tag = "access",
    responses((status = 200, body = AccessOverview), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    authorize(
        &caller.principal,
        &state.reference.snapshot(),
        Action::ManageAccess,
    )?;
    let overview = state.boards.read(|flow| {
        let access = flow.access();
        AccessOverview {
            users: access
                .users()
                .map(|user| {
                    let (state, granted) = match &user.now {
                        AccessNow::Granted(g) => ("granted", Some(g.clone())),
                        AccessNow::Revoked => ("revoked", None),
                        AccessNow::FromProvider => ("provider", None),
                    };
                    UserAccessRow {
                        sub: user.sub.clone(),
                        name: user.name.clone(),
                        state: state.to_owned(),
                        granted,
                        by: user.by.clone(),
                        at: user.at,
                    }
                })
                .collect(),
            history: access.history().cloned().collect(),
        }
    });
    Ok(Json(overview))
}
