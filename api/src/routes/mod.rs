//! One router per part of the contract, merged by [`router`]. Each handler
//! carries its OpenAPI description (`#[utoipa::path]`), and the routers are
//! built with `utoipa-axum`, so `/openapi.json` lists exactly the routes
//! that are served.

pub mod access;
pub mod audit;
pub mod boards;
pub mod census;
pub mod feeds;
pub mod ops;
pub mod reference;
pub mod referrals;
pub mod spells;

use axum::http::StatusCode;
use axum::Json;
use domain::Actor;
use infra::commands::{CommandOptions, Committed, ConsistencyToken};
use infra::idempotency::Idempotency;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::extract::{Caller, CommandHeaders};
use crate::state::AppState;

/// Every API route, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(reference::router())
        .merge(spells::router())
        .merge(referrals::router())
        .merge(boards::router())
        .merge(audit::router())
        .merge(access::router())
        .merge(feeds::router())
        .merge(census::router())
}

/// What every command answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandAnswer {
    /// The record's id.
    pub id: String,
    /// Its version after the command (send it back as `If-Match`).
    pub version: u64,
    /// Pass as `?consistency_token=` to a read to see this change.
    pub consistency_token: String,
    /// More, per command (e.g. `delay_id`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What a command answers over HTTP: status, `ETag` and body.
pub type Answered = (
    StatusCode,
    [(axum::http::HeaderName, String); 1],
    Json<CommandAnswer>,
);

/// The answer to a command: the first answer again for a replayed key.
pub fn answer(status: StatusCode, committed: Committed, extra: serde_json::Value) -> Answered {
    let extra = match committed.replayed.unwrap_or(extra) {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let etag = format!("\"{}\"", committed.version);
    (
        status,
        [(axum::http::header::ETAG, etag)],
        Json(CommandAnswer {
            id: committed.aggregate_id,
            version: committed.version,
            consistency_token: committed.token.to_string(),
            extra,
        }),
    )
}

/// The actor a command records: the token's subject and name.
pub fn actor(caller: &Caller) -> Actor {
    Actor::new(caller.principal.sub.clone(), caller.principal.name.clone())
}

/// Options for a command: `If-Match`, and the idempotency key with a
/// fingerprint of what was asked (operation, record, body).
pub fn options(
    caller: &Caller,
    headers: &CommandHeaders,
    operation: &str,
    id: &str,
    body: &impl Serialize,
    extra: serde_json::Value,
) -> CommandOptions {
    let idempotency = headers.idempotency_key.as_ref().map(|key| {
        let mut digest = Sha256::new();
        digest.update(operation.as_bytes());
        digest.update([0]);
        digest.update(id.as_bytes());
        digest.update([0]);
        digest.update(serde_json::to_vec(body).unwrap_or_default());
        let fingerprint = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Idempotency {
            principal: caller.principal.sub.clone(),
            key: key.clone(),
            fingerprint,
            extra,
        }
    });
    CommandOptions {
        expected_version: headers.if_match,
        idempotency,
        key_checked: false,
    }
}

/// `?consistency_token=`, accepted by every read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// A command's token: answer only once the read includes that command.
    pub consistency_token: Option<String>,
}

/// Waits until the boards include the token, if one was given.
pub async fn await_token(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    let Some(text) = token else {
        return Ok(());
    };
    let token: ConsistencyToken = text
        .parse()
        .map_err(|_| ApiError::field("consistency_token", "not a consistency token"))?;
    if state
        .boards
        .wait_for(&token, state.settings.consistency_wait)
        .await
    {
        Ok(())
    } else {
        Err(ApiError::Unavailable(
            "the boards have not caught up with that change yet; try again".to_owned(),
        ))
    }
}

/// A path id that cannot be an id is an unknown record.
pub fn path_id<T>(parsed: Result<T, domain::values::CodeError>) -> Result<T, ApiError> {
    parsed.map_err(|_| ApiError::NotFound)
}
