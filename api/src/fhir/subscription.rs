//! `Subscription` (R4, rest-hook): a team's (or ward's, or hub's) system
//! is told of each new or changed referral it may see that matches its
//! criteria (`Task?owner=Organization/REAB&status=requested`), by a `POST`
//! of the `Task` to its endpoint (`application/fhir+json`), from the event
//! feed: at least once, in the feed's order (so in order per referral),
//! retried with back-off (200 ms doubling to 30 s) while the endpoint fails,
//! the subscription's `status` `error` and `error` saying why meanwhile.
//! Each subscription's position in the feed is stored with it
//! (`fhir_subscriptions`) after each delivery, so a restart resumes from
//! the last event delivered: nothing is lost, and at most the event in
//! flight is delivered twice. Only a caller who may read tasks may
//! subscribe (not leaders or admins), a team only to its own tasks; each
//! notification is checked against what the subscriber may see.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use domain::referral::{Referral, ReferralStatus};
use domain::values::ReferralId;
use domain::Decider;
use futures::StreamExt;
use infra::auth::{Principal, Role};
use infra::commands::fold_history;
use infra::feed::FeedEvent;
use infra::store::Database;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::{answer, referenced_id, FhirCaller, FhirResult, FHIR_JSON};
use crate::error::ApiError;
use crate::policy::{may_see_referral, ReferralScope};
use crate::state::AppState;

/// How often new subscriptions are looked for.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The first wait before retrying a failed delivery, doubled each time.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between retries.
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// What a subscription asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    /// The team.
    pub owner: Option<String>,
    /// Any of these statuses (none: any).
    pub statuses: Vec<ReferralStatus>,
}

/// Reads `Task?owner=...&status=...`, the only criteria served.
pub fn criteria(text: &str) -> Result<Criteria, ApiError> {
    let query = text
        .strip_prefix("Task?")
        .or_else(|| (text == "Task").then_some(""))
        .ok_or_else(|| ApiError::field("criteria", "Baton's subscriptions are to Task searches: Task?owner=Organization/{team}&status=..."))?;
    let mut criteria = Criteria::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "owner" => criteria.owner = Some(referenced_id("Organization", &value).to_owned()),
            "status" => {
                for code in value.split(',') {
                    criteria.statuses.push(
                        ReferralStatus::ALL
                            .into_iter()
                            .find(|s| s.code() == code)
                            .ok_or_else(|| {
                                ApiError::field(
                                    "criteria",
                                    format!("{code} is not a status a referral takes"),
                                )
                            })?,
                    );
                }
            }
            other => {
                return Err(ApiError::field(
                    "criteria",
                    format!("{other} is not a parameter of Baton's subscriptions (owner, status)"),
                ))
            }
        }
    }
    Ok(criteria)
}

/// A stored subscription.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    principal: Principal,
    criteria: String,
    endpoint: String,
    status: String,
    error: Option<String>,
    position: i64,
}

type Columns = (String, String, String, String, String, Option<String>, i64);

fn row(
    (id, principal, criteria, endpoint, status, error, position): Columns,
) -> Result<Row, ApiError> {
    let principal = serde_json::from_str(&principal)
        .map_err(|e| ApiError::internal(format!("a stored subscription's principal: {e}")))?;
    Ok(Row {
        id,
        principal,
        criteria,
        endpoint,
        status,
        error,
        position,
    })
}

fn db_error(e: sqlx::Error) -> ApiError {
    if infra::store::is_unavailable(&e) {
        ApiError::Unavailable("the subscription store is unavailable; try again shortly".into())
    } else {
        ApiError::internal(e)
    }
}

async fn all(db: &Database) -> Result<Vec<Row>, ApiError> {
    let rows: Vec<Columns> = infra::on_either_database!(db, pool => {
        sqlx::query_as("SELECT id, principal, criteria, endpoint, status, error, position FROM fhir_subscriptions ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(db_error)?
    });
    rows.into_iter().map(row).collect()
}

async fn save(
    db: &Database,
    id: &str,
    position: u64,
    status: &str,
    error: Option<&str>,
) -> Result<(), ApiError> {
    let position = i64::try_from(position).map_err(ApiError::internal)?;
    infra::on_either_database!(db, pool => {
        sqlx::query("UPDATE fhir_subscriptions SET position = $1, status = $2, error = $3 WHERE id = $4")
            .bind(position)
            .bind(status)
            .bind(error)
            .bind(id)
            .execute(pool)
            .await
            .map_err(db_error)?;
    });
    Ok(())
}

fn resource(row: &Row) -> Value {
    let mut r = json!({
        "resourceType": "Subscription",
        "id": row.id,
        "status": row.status,
        "reason": "Baton tells this system of referrals it may see",
        "criteria": row.criteria,
        "channel": { "type": "rest-hook", "endpoint": row.endpoint, "payload": FHIR_JSON },
    });
    if let Some(error) = &row.error {
        r["error"] = json!(error);
    }
    r
}

/// `POST /fhir/R4/Subscription`.
pub async fn create(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult {
    super::patient::sees_patients(&caller)?;
    let body = super::task::json_body(&headers, body)?;
    if body["resourceType"] != "Subscription" {
        return Err(ApiError::field("resourceType", "must be Subscription").into());
    }
    let text = body["criteria"]
        .as_str()
        .ok_or_else(|| ApiError::field("criteria", "the criteria are needed"))?;
    let wanted = criteria(text)?;
    if body["channel"]["type"] != "rest-hook" {
        return Err(ApiError::field("channel.type", "Baton delivers by rest-hook only").into());
    }
    if !body["channel"]["payload"].is_null()
        && body["channel"]["payload"] != FHIR_JSON
        && body["channel"]["payload"] != "application/json"
    {
        return Err(ApiError::field("channel.payload", "Baton sends application/fhir+json").into());
    }
    let endpoint = body["channel"]["endpoint"].as_str().unwrap_or_default();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        || reqwest::Url::parse(endpoint).is_err()
    {
        return Err(ApiError::field("channel.endpoint", "must be an http(s) URL").into());
    }
    // A team subscribes to its own tasks only.
    let p = &caller.principal;
    if p.role == Role::Team && wanted.owner.as_deref() != p.team.as_deref() {
        return Err(ApiError::Forbidden.into());
    }
    let head = state
        .feed
        .head()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the event feed cannot be read: {e}")))?;
    let row = Row {
        id: uuid::Uuid::new_v4().simple().to_string(),
        principal: p.clone(),
        criteria: text.to_owned(),
        endpoint: endpoint.to_owned(),
        status: "active".to_owned(),
        error: None,
        position: i64::try_from(head).map_err(ApiError::internal)?,
    };
    let principal = serde_json::to_string(&row.principal).map_err(ApiError::internal)?;
    infra::on_either_database!(&state.db, pool => {
        sqlx::query("INSERT INTO fhir_subscriptions (id, principal, criteria, endpoint, status, error, position, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)")
            .bind(&row.id)
            .bind(&principal)
            .bind(&row.criteria)
            .bind(&row.endpoint)
            .bind(&row.status)
            .bind(row.position)
            .bind(Utc::now().to_rfc3339())
            .execute(pool)
            .await
            .map_err(db_error)?;
    });
    Ok(answer(StatusCode::CREATED, &resource(&row), None))
}

/// `GET /fhir/R4/Subscription/{id}`: its status and last error; only its
/// subscriber knows of it.
pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> FhirResult {
    let row = all(&state.db)
        .await?
        .into_iter()
        .find(|r| r.id == id && r.principal.sub == caller.principal.sub)
        .ok_or(ApiError::NotFound)?;
    Ok(answer(StatusCode::OK, &resource(&row), None))
}

/// The Task of this referral event, as it stood after it, if it matches
/// and the subscriber may see it.
async fn task_at(
    state: &AppState,
    row: &Row,
    wanted: &Criteria,
    event: &FeedEvent,
) -> Result<Option<Value>, ApiError> {
    if event.aggregate_type != <Referral as Decider>::TYPE {
        return Ok(None);
    }
    let id = ReferralId::parse(event.aggregate_id.as_str()).map_err(ApiError::internal)?;
    let history = state.bus.referral_history(&id).await?;
    let mut at = None;
    let referral = fold_history(&history, Some(event.sequence), |_: &Referral, _, when| {
        at = Some(when);
    })?;
    let (Some(s), Some(at)) = (referral.state(), at) else {
        return Ok(None);
    };
    let catalogue = state.reference.snapshot();
    let visible = may_see_referral(
        &row.principal,
        &catalogue,
        ReferralScope {
            team: &s.team,
            hospital: &s.subject.placement.hospital,
        },
    );
    let matches = wanted.owner.as_deref().is_none_or(|o| o == s.team.as_str())
        && (wanted.statuses.is_empty() || wanted.statuses.contains(&s.status));
    Ok((visible && matches).then(|| super::task::resource(s, event.sequence, Some(&at), at)))
}

/// Posts the task until the endpoint takes it (or Baton stops: false).
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    row: &Row,
    before: u64,
    task: &Value,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut wait = FIRST_RETRY;
    let mut failing = row.status == "error";
    loop {
        let send = client
            .post(&row.endpoint)
            .header("content-type", FHIR_JSON)
            .header("x-baton-subscription", &row.id)
            .body(task.to_string())
            .send();
        let sent = tokio::select! {
            sent = send => sent,
            _ = stop.changed() => return false,
        };
        let error = match sent {
            Ok(response) if response.status().is_success() => {
                if failing {
                    tracing::info!(subscription = %row.id, "a subscription's endpoint takes notifications again");
                }
                return true;
            }
            Ok(response) => format!("the endpoint answered {}", response.status()),
            Err(e) => format!("the endpoint cannot be reached: {e}"),
        };
        if !failing {
            tracing::warn!(subscription = %row.id, %error, "a subscription's notification failed; retrying");
        }
        failing = true;
        if let Err(e) = save(&state.db, &row.id, before, "error", Some(&error)).await {
            tracing::warn!(subscription = %row.id, error = %e, "could not record a subscription's error");
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return false,
        }
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

/// Delivers one subscription's notifications until Baton stops.
async fn follow(state: AppState, row: Row, mut stop: watch::Receiver<bool>) {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return;
    };
    let wanted = match criteria(&row.criteria) {
        Ok(wanted) => wanted,
        Err(e) => {
            let _ = save(
                &state.db,
                &row.id,
                u64::try_from(row.position).unwrap_or(0),
                "error",
                Some(&e.to_string()),
            )
            .await;
            return;
        }
    };
    let mut row = row;
    let mut position = u64::try_from(row.position).unwrap_or(0);
    loop {
        let mut events = match state.feed.subscribe(position).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(subscription = %row.id, %error, "a subscription cannot read the feed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = stop.changed() => return,
            };
            let Some(Ok(event)) = next else { break };
            let task = loop {
                match task_at(&state, &row, &wanted, &event).await {
                    Ok(task) => break task,
                    Err(error) => {
                        tracing::warn!(subscription = %row.id, %error, "a subscription cannot read a referral; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            };
            if let Some(task) = task {
                if !deliver(&state, &client, &row, position, &task, &mut stop).await {
                    return;
                }
                row.status = "active".to_owned();
                if let Err(error) = save(&state.db, &row.id, event.position, "active", None).await {
                    tracing::warn!(subscription = %row.id, %error, "could not record a subscription's position");
                }
            }
            position = event.position;
        }
    }
}

/// Runs every stored subscription (and each new one within
/// [`LOOK_EVERY`]) until `stop`.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match all(&state.db).await {
            Ok(rows) => {
                for row in rows {
                    if running.contains_key(&row.id)
                        || !matches!(row.status.as_str(), "active" | "error")
                    {
                        continue;
                    }
                    running.insert(
                        row.id.clone(),
                        tokio::spawn(follow(state.clone(), row, stop.clone())),
                    );
                }
            }
            Err(error) => tracing::debug!(%error, "could not read the subscriptions"),
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, task) in running {
        let _ = task.await;
    }
}
