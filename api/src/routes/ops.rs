//! Operations: liveness, readiness, Prometheus metrics. No sign-in.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use infra::store::Database;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Boards this far behind the feed's head are "catching up", not ready.
const READY_LAG: u64 = 1_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Object)))]
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What `/readyz` checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// The event store answered.
    pub event_store: bool,
    /// The event bus (JetStream, or the local log) answered.
    pub event_bus: bool,
    /// The boards are within a few events of the feed's head.
    pub projections_caught_up: bool,
    /// How far behind the boards are (events).
    pub projection_lag: Option<u64>,
    /// The boards' watchdog finds them up to date with the record (the
    /// stream's head and the outbox): what every page shows.
    pub boards_current: bool,
    /// The latest moment the boards are known to include everything
    /// recorded before it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub boards_up_to_date_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Readiness {
    /// Before the event store could be reached at all.
    pub fn starting() -> Self {
        Self {
            status: "not_ready",
            event_store: false,
            event_bus: false,
            projections_caught_up: false,
            projection_lag: None,
            boards_current: false,
            boards_up_to_date_at: None,
        }
    }
}

async fn store_ok(db: &Database) -> bool {
    let ping = async {
        match db {
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
        }
    };
    tokio::time::timeout(Duration::from_secs(2), ping)
        .await
        .unwrap_or(false)
}

/// Ready when the event store and bus answer and the boards are caught up.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let event_store = store_ok(&state.db).await;
    let head = tokio::time::timeout(Duration::from_secs(2), state.feed.head())
        .await
        .ok()
        .and_then(Result::ok);
    let lag = head.map(|h| h.saturating_sub(state.boards.position()));
    let caught_up = lag.is_some_and(|l| l <= READY_LAG);
    let freshness = state.boards.freshness();
    let ready = event_store && head.is_some() && caught_up && freshness.current;
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        event_store,
        event_bus: head.is_some(),
        projections_caught_up: caught_up,
        projection_lag: lag,
        boards_current: freshness.current,
        boards_up_to_date_at: freshness.up_to_date_at,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus text: relay, projections and HTTP figures.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let head = tokio::time::timeout(Duration::from_secs(1), state.feed.head()).await;
    let lag = match head {
        Ok(Ok(head)) => Some(crate::metrics::lag(&state.boards, head)),
        _ => None,
    };
    let mut registries = vec![state.metrics.as_ref()];
    registries.extend(lag.as_ref());
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&registries),
    )
}
