//! The boards, read and streamed live.
//!
//! Reads are answered from the in-memory fold at the current instant; with
//! `?consistency_token=` they wait (boundedly) until the fold includes that
//! command. The stream sends the whole board first, then one `change` event
//! per change of that board, carrying the rows that changed (and the whole
//! board, so a client can simply redraw). Bursts are coalesced: a client
//! gets the latest state, never a backlog.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use domain::reference::{Catalogue, ReferenceData};
use domain::values::{HospitalCode, HubCode, TeamCode, WardCode};
use futures::Stream;
use infra::runner::BoardKey;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{await_token, path_id, ReadQuery};
use crate::audit;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, QueryParams};
use crate::policy::{authorize, Action};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ward_board))
        .routes(routes!(hospital_board))
        .routes(routes!(system_board))
        .routes(routes!(team_board))
        .routes(routes!(hub_board))
        .routes(routes!(stream))
        .routes(routes!(recent_discharges))
        .routes(routes!(hospital_daily))
        .routes(routes!(system_daily))
}

/// `?days=` of the daily figures.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DailyQuery {
    /// How many days up to today (1 to 90; default 30).
    pub days: Option<u32>,
    /// See `ReadQuery`.
    pub consistency_token: Option<String>,
}

/// Most days of daily figures one request may ask for.
pub const DAILY_MAX_DAYS: u32 = 90;

fn days(query: &DailyQuery) -> Result<u32, ApiError> {
    match query.days.unwrap_or(30) {
        n @ 1..=DAILY_MAX_DAYS => Ok(n),
        _ => Err(ApiError::field(
            "days",
            format!("between 1 and {DAILY_MAX_DAYS}"),
        )),
    }
}

/// A hospital's NCTR, delay days and discharges for each of the last days.
#[utoipa::path(get, path = "/api/v1/boards/hospitals/{hospital}/daily", tag = "boards",
    params(("hospital" = String, Path), DailyQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn hospital_daily(
    State(state): State<AppState>,
    caller: Caller,
    Path(hospital): Path<String>,
    QueryParams(query): QueryParams<DailyQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let code = path_id(HospitalCode::parse(hospital))?;
    let catalogue = state.reference.snapshot();
    resolve(&catalogue, &caller, &BoardKey::Hospital(code.clone()))?;
    let days = days(&query)?;
    await_token(&state, query.consistency_token.as_deref()).await?;
    let figures = state
        .boards
        .read(|flow| flow.daily(Some(&code), days, Utc::now()));
    Ok(Json(
        serde_json::json!({ "hospital": code, "days": figures }),
    ))
}

/// The whole system's NCTR, delay days and discharges for each of the last days.
#[utoipa::path(get, path = "/api/v1/boards/system/daily", tag = "boards", params(DailyQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn system_daily(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<DailyQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = state.reference.snapshot();
    resolve(&catalogue, &caller, &BoardKey::System)?;
    let days = days(&query)?;
    await_token(&state, query.consistency_token.as_deref()).await?;
    let figures = state.boards.read(|flow| flow.daily(None, days, Utc::now()));
    Ok(Json(serde_json::json!({ "days": figures })))
}

/// How current the boards are, as every read and live stream tells it
/// (`projections::watchdog`).
fn freshness(state: &AppState) -> Value {
    serde_json::to_value(state.boards.freshness()).unwrap_or_default()
}

/// The catalogue, re-read first if it does not know the board's code yet.
async fn catalogue_for(state: &AppState, key: &BoardKey) -> Arc<Catalogue> {
    state
        .reference
        .snapshot_knowing(|catalogue| match key {
            BoardKey::Ward(code) => catalogue.ward(code).is_some(),
            BoardKey::Hospital(code) => catalogue.hospital(code).is_some(),
            BoardKey::Team(code) => catalogue.team(code).is_some(),
            BoardKey::Hub(code) => catalogue.hub(code).is_some(),
            BoardKey::System => true,
        })
        .await
}

/// Which board, checked against the caller's scope. Unknown codes are 404.
fn resolve(catalogue: &Catalogue, caller: &Caller, key: &BoardKey) -> Result<(), ApiError> {
    let p = &caller.principal;
    match key {
        BoardKey::Ward(code) => {
            let ward = catalogue.ward(code).ok_or(ApiError::NotFound)?;
            authorize(
                p,
                catalogue,
                Action::WardBoard {
                    hospital: &ward.hospital,
                },
            )
        }
        BoardKey::Hospital(code) => {
            catalogue.hospital(code).ok_or(ApiError::NotFound)?;
            authorize(p, catalogue, Action::HospitalBoard { hospital: code })
        }
        BoardKey::Team(code) => {
            catalogue.team(code).ok_or(ApiError::NotFound)?;
            authorize(p, catalogue, Action::TeamBoard { team: code })
        }
        BoardKey::Hub(code) => {
            catalogue.hub(code).ok_or(ApiError::NotFound)?;
            authorize(p, catalogue, Action::HubBoard { hub: code })
        }
        BoardKey::System => authorize(p, catalogue, Action::SystemBoard),
    }
}

/// The board as JSON, and the NHS numbers it shows.
fn render(state: &AppState, catalogue: &Catalogue, key: &BoardKey) -> (Value, Vec<String>) {
    let now = Utc::now();
    state.boards.read(|flow| match key {
        BoardKey::Ward(code) => match catalogue.ward(code) {
            Some(ward) => {
                let board = flow.ward_board(&ward, now);
                let patients = board
                    .beds
                    .iter()
                    .filter_map(|b| b.patient.as_ref().map(|p| p.nhs_number.clone()))
                    .collect();
                (serde_json::to_value(board).unwrap_or_default(), patients)
            }
            None => (Value::Null, Vec::new()),
        },
        BoardKey::Hospital(code) => {
            let wards: Vec<_> = catalogue
                .wards()
                .filter(|w| &w.hospital == code)
                .cloned()
                .collect();
            let board = flow.hospital_board(code, &wards, now);
            (serde_json::to_value(board).unwrap_or_default(), Vec::new())
        }
        BoardKey::System => {
            let wards: Vec<_> = catalogue.wards().cloned().collect();
            let teams: Vec<_> = catalogue.teams().cloned().collect();
            let board = flow.system_board(&wards, &teams, now);
            (serde_json::to_value(board).unwrap_or_default(), Vec::new())
        }
        BoardKey::Team(code) => {
            let board = flow.team_board(code, now);
            let patients = board
                .referrals
                .iter()
                .map(|r| r.patient.nhs_number.clone())
                .collect();
            (serde_json::to_value(board).unwrap_or_default(), patients)
        }
        BoardKey::Hub(code) => match catalogue.hub(code) {
            Some(hub) => {
                let wards: Vec<_> = catalogue
                    .wards()
                    .filter(|w| hub.hospitals.contains(&w.hospital))
                    .cloned()
                    .collect();
                let board = flow.hub_board(hub, &wards, now);
                let patients = board
                    .patients
                    .iter()
                    .map(|p| p.patient.nhs_number.clone())
                    .collect();
                (serde_json::to_value(board).unwrap_or_default(), patients)
            }
            None => (Value::Null, Vec::new()),
        },
    })
}

/// Whether a change of `changed` boards changes the board `key`: a hub's
/// board changes with its hospitals'.
fn concerns(catalogue: &Catalogue, key: &BoardKey, changed: &BTreeSet<BoardKey>) -> bool {
    match key {
        BoardKey::Hub(code) => catalogue.hub(code).is_some_and(|hub| {
            hub.hospitals
                .iter()
                .any(|h| changed.contains(&BoardKey::Hospital(h.clone())))
        }),
        key => changed.contains(key),
    }
}

/// Boards that show patients, whose every read is audited.
fn shows_patients(key: &BoardKey) -> bool {
    matches!(
        key,
        BoardKey::Ward(_) | BoardKey::Team(_) | BoardKey::Hub(_)
    )
}

async fn read_board(
    state: AppState,
    caller: Caller,
    key: BoardKey,
    query: ReadQuery,
    action: &str,
    resource: String,
) -> Result<impl IntoResponse, ApiError> {
    let catalogue = catalogue_for(&state, &key).await;
    resolve(&catalogue, &caller, &key)?;
    await_token(&state, query.consistency_token.as_deref()).await?;
    let (mut board, patients) = render(&state, &catalogue, &key);
    if shows_patients(&key) {
        audit::record(&state.db, &caller, action, &resource, &patients).await?;
    }
    if let Value::Object(fields) = &mut board {
        fields.insert("freshness".to_owned(), freshness(&state));
    }
    Ok(Json(board))
}

/// A ward's beds, one row each, with totals.
#[utoipa::path(get, path = "/api/v1/boards/wards/{ward}", tag = "boards",
    params(("ward" = String, Path), ReadQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn ward_board(
    State(state): State<AppState>,
    caller: Caller,
    Path(ward): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let resource = format!("/api/v1/boards/wards/{ward}");
    let key = BoardKey::Ward(path_id(WardCode::parse(ward))?);
    read_board(state, caller, key, query, "read_ward_board", resource).await
}

/// A hospital's wards, delays by reason and pathway mix.
#[utoipa::path(get, path = "/api/v1/boards/hospitals/{hospital}", tag = "boards",
    params(("hospital" = String, Path), ReadQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn hospital_board(
    State(state): State<AppState>,
    caller: Caller,
    Path(hospital): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let key = BoardKey::Hospital(path_id(HospitalCode::parse(hospital))?);
    read_board(
        state,
        caller,
        key,
        query,
        "read_hospital_board",
        String::new(),
    )
    .await
}

/// Every hospital's totals and every team's handover waits: counts only.
#[utoipa::path(get, path = "/api/v1/boards/system", tag = "boards", params(ReadQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn system_board(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    read_board(
        state,
        caller,
        BoardKey::System,
        query,
        "read_system_board",
        String::new(),
    )
    .await
}

/// A team's referrals by status, with age and SLA state.
#[utoipa::path(get, path = "/api/v1/boards/teams/{team}", tag = "boards",
    params(("team" = String, Path), ReadQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn team_board(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let resource = format!("/api/v1/boards/teams/{team}");
    let key = BoardKey::Team(path_id(TeamCode::parse(team))?);
    read_board(state, caller, key, query, "read_team_board", resource).await
}

/// A care transfer hub's discharge-ready patients (its hospitals'), each
/// with its referrals: what the hub works on. Baton's extension of the
/// contract (role `hub`).
#[utoipa::path(get, path = "/api/v1/boards/hubs/{hub}", tag = "boards",
    params(("hub" = String, Path), ReadQuery),
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn hub_board(
    State(state): State<AppState>,
    caller: Caller,
    Path(hub): Path<String>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let resource = format!("/api/v1/boards/hubs/{hub}");
    let key = BoardKey::Hub(path_id(HubCode::parse(hub))?);
    read_board(state, caller, key, query, "read_hub_board", resource).await
}

/// `?hours=` of a ward's recent discharges.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DischargesQuery {
    /// How far back, in hours (1 to 720; 72 when not given).
    pub hours: Option<u32>,
    /// A command's token: answer only once the read includes that command.
    pub consistency_token: Option<String>,
}

/// Most hours of discharges one request may ask for (30 days).
pub const DISCHARGES_MAX_HOURS: u32 = 720;

/// Patients discharged from a ward lately, newest first, with what a
/// correction needs (`spell_id`, `version`): a discharge made in error is
/// cancelled from here.
#[utoipa::path(get, path = "/api/v1/boards/wards/{ward}/recent-discharges", tag = "boards",
    params(("ward" = String, Path), DischargesQuery),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn recent_discharges(
    State(state): State<AppState>,
    caller: Caller,
    Path(ward): Path<String>,
    QueryParams(query): QueryParams<DischargesQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let code = path_id(WardCode::parse(ward))?;
    let key = BoardKey::Ward(code.clone());
    let catalogue = catalogue_for(&state, &key).await;
    resolve(&catalogue, &caller, &key)?;
    let hours = query.hours.unwrap_or(72);
    if !(1..=DISCHARGES_MAX_HOURS).contains(&hours) {
        return Err(ApiError::field(
            "hours",
            "a whole number of hours from 1 to 720",
        ));
    }
    await_token(&state, query.consistency_token.as_deref()).await?;
    let since = Utc::now() - chrono::Duration::hours(i64::from(hours));
    let discharges = state
        .boards
        .read(|flow| projections::lookup::recent_discharges(flow, &code, since));
    let patients: Vec<String> = discharges
        .iter()
        .map(|r| r.patient.nhs_number.clone())
        .collect();
    let resource = format!("/api/v1/boards/wards/{code}/recent-discharges");
    audit::record(
        &state.db,
        &caller,
        "read_recent_discharges",
        &resource,
        &patients,
    )
    .await?;
    Ok(Json(serde_json::json!({
        "ward": code.as_str(),
        "hours": hours,
        "discharges": discharges,
    })))
}

/// `?board=` of the stream.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// `ward:{code}`, `hospital:{code}`, `team:{code}`, `hub:{code}` or
    /// `system`.
    pub board: String,
}

fn parse_board(text: &str) -> Result<BoardKey, ApiError> {
    let bad = || {
        ApiError::field(
            "board",
            "ward:{code}, hospital:{code}, team:{code}, hub:{code} or system",
        )
    };
    if text == "system" {
        return Ok(BoardKey::System);
    }
    let (kind, code) = text.split_once(':').ok_or_else(bad)?;
    Ok(match kind {
        "ward" => BoardKey::Ward(WardCode::parse(code).map_err(|_| bad())?),
        "hospital" => BoardKey::Hospital(HospitalCode::parse(code).map_err(|_| bad())?),
        "team" => BoardKey::Team(TeamCode::parse(code).map_err(|_| bad())?),
        "hub" => BoardKey::Hub(HubCode::parse(code).map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

/// The identity of a board row, for telling which rows changed.
fn row_key(row: &Value) -> Option<String> {
    // `id` first: a hub board's row names its bed too, and beds repeat
    // across wards.
    ["id", "bed", "ward", "hospital", "team"]
        .iter()
        .find_map(|k| row.get(*k).map(|v| format!("{k}:{v}")))
}

/// Rows of every list in `next` that differ from `previous`, and the keys
/// of rows that went away.
fn changed_rows(previous: &Value, next: &Value) -> (Value, Value) {
    let mut changed = serde_json::Map::new();
    let mut removed = serde_json::Map::new();
    if let Value::Object(fields) = next {
        for (name, value) in fields {
            let Value::Array(rows) = value else { continue };
            if previous.get(name) == Some(value) {
                continue;
            }
            let before: BTreeMap<String, &Value> = previous
                .get(name)
                .and_then(Value::as_array)
                .map(|rows| rows.iter().filter_map(|r| Some((row_key(r)?, r))).collect())
                .unwrap_or_default();
            let mut now_keys = std::collections::BTreeSet::new();
            let diff: Vec<Value> = rows
                .iter()
                .filter(|row| {
                    let key = row_key(row);
                    if let Some(k) = &key {
                        now_keys.insert(k.clone());
                    }
                    key.and_then(|k| before.get(&k).copied()) != Some(*row)
                })
                .cloned()
                .collect();
            if !diff.is_empty() {
                changed.insert(name.clone(), Value::Array(diff));
            }
            let gone: Vec<Value> = before
                .keys()
                .filter(|k| !now_keys.contains(*k))
                .map(|k| Value::String(k.clone()))
                .collect();
            if !gone.is_empty() {
                removed.insert(name.clone(), Value::Array(gone));
            }
        }
    }
    (Value::Object(changed), Value::Object(removed))
}

/// Live updates of one board (server-sent events).
#[utoipa::path(get, path = "/api/v1/boards/stream", tag = "boards", params(StreamQuery),
    responses((status = 200, description = "text/event-stream: `board`, then `change` events and a `freshness` event every 5 s and whenever the boards fall behind or catch up"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let key = parse_board(&query.board)?;
    let catalogue = catalogue_for(&state, &key).await;
    resolve(&catalogue, &caller, &key)?;
    let changes = state.boards.subscribe();
    let (first, patients) = render(&state, &catalogue, &key);
    if shows_patients(&key) {
        let resource = format!("/api/v1/boards/stream?board={}", query.board);
        audit::record(&state.db, &caller, "stream_board", &resource, &patients).await?;
    }
    let position = state.boards.position();
    let shown = patients.into_iter().collect();
    let stream = live(state, caller, key, first, shown, position, changes);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// How long one stream lives. The browser's `EventSource` reconnects by
/// itself, and every connection is authorised afresh: an expired token or a
/// withdrawn role stops the data within this long.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// One stream's moving parts.
struct Live {
    state: AppState,
    caller: Caller,
    key: BoardKey,
    last: Value,
    shown: std::collections::BTreeSet<String>,
    receiver: tokio::sync::broadcast::Receiver<infra::runner::BoardChange>,
    closing: tokio::sync::watch::Receiver<bool>,
    ends_at: tokio::time::Instant,
    freshness: tokio::sync::watch::Receiver<projections::watchdog::Freshness>,
    /// Whether the page was last told the boards are current.
    shown_current: bool,
    tell_freshness: tokio::time::Interval,
    /// How often a stream opened by a session checks the session is still
    /// open (sign-out, the idle timeout, a revocation end it at once).
    check_access: tokio::time::Interval,
    /// The page has been told its session ended: the stream ends next.
    signed_out: bool,
}

/// How soon a stream notices its session has ended.
pub const ACCESS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A live stream tells its page how current the boards are this often,
/// and at once when that changes, so a page can tell a quiet board from a
/// stream that stopped (it warns when it hears nothing for three times
/// this).
pub const FRESHNESS_EVERY: Duration = Duration::from_secs(5);

fn freshness_event(state: &AppState) -> Event {
    Event::default()
        .event("freshness")
        .json_data(freshness(state))
        .unwrap_or_default()
}

fn live(
    state: AppState,
    caller: Caller,
    key: BoardKey,
    first: Value,
    shown: std::collections::BTreeSet<String>,
    position: u64,
    receiver: tokio::sync::broadcast::Receiver<infra::runner::BoardChange>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let opening = Event::default()
        .event("board")
        .retry(Duration::from_millis(500))
        .id(position.to_string())
        .json_data(serde_json::json!({
            "position": position,
            "board": &first,
            "freshness": freshness(&state),
        }))
        .unwrap_or_default();
    let head = futures::stream::once(async move { Ok(opening) });
    let mut freshness_changes = state.boards.watch_freshness();
    let shown_current = freshness_changes.borrow_and_update().current;
    let live = Live {
        closing: state.closing.clone(),
        freshness: freshness_changes,
        shown_current,
        tell_freshness: tokio::time::interval_at(
            tokio::time::Instant::now() + FRESHNESS_EVERY,
            FRESHNESS_EVERY,
        ),
        state,
        caller,
        key,
        last: first,
        shown,
        receiver,
        ends_at: tokio::time::Instant::now() + STREAM_LIFETIME,
        check_access: tokio::time::interval_at(
            tokio::time::Instant::now() + ACCESS_CHECK_EVERY,
            ACCESS_CHECK_EVERY,
        ),
        signed_out: false,
    };
    let tail = futures::stream::unfold(live, |mut live| async move {
        loop {
            if *live.closing.borrow() || live.signed_out {
                return None;
            }
            let next = tokio::select! {
                next = live.receiver.recv() => next,
                changed = live.freshness.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let current = live.freshness.borrow_and_update().current;
                    if current == live.shown_current {
                        continue;
                    }
                    live.shown_current = current;
                    return Some((Ok(freshness_event(&live.state)), live));
                }
                _ = live.tell_freshness.tick() => {
                    return Some((Ok(freshness_event(&live.state)), live));
                }
                _ = live.check_access.tick() => {
                    if crate::extract::still_signed_in(&live.state, &live.caller) {
                        continue;
                    }
                    live.signed_out = true;
                    let event = Event::default()
                        .event("signed-out")
                        .data("the session has ended");
                    return Some((Ok(event), live));
                }
                _ = live.closing.changed() => return None,
                _ = tokio::time::sleep_until(live.ends_at) => return None,
            };
            let mut position = match next {
                Ok(change)
                    if concerns(&live.state.reference.snapshot(), &live.key, &change.boards) =>
                {
                    change.position
                }
                Ok(_) => continue,
                // Missed some: the board is re-read whole anyway.
                Err(RecvError::Lagged(_)) => live.state.boards.position(),
                Err(RecvError::Closed) => return None,
            };
            // Coalesce a burst: whatever else is queued is covered by the
            // one re-read below.
            while let Ok(change) = live.receiver.try_recv() {
                position = position.max(change.position);
            }
            let catalogue = live.state.reference.snapshot();
            let (board, patients) = render(&live.state, &catalogue, &live.key);
            if board == live.last {
                continue;
            }
            // Patients this stream has not shown before are logged before
            // they are sent; a stream that cannot log them ends.
            let new: Vec<String> = patients
                .into_iter()
                .filter(|n| !live.shown.contains(n))
                .collect();
            if !new.is_empty() {
                let resource = "/api/v1/boards/stream";
                if audit::record(&live.state.db, &live.caller, "stream_board", resource, &new)
                    .await
                    .is_err()
                {
                    return None;
                }
                live.shown.extend(new);
            }
            let (rows, removed) = changed_rows(&live.last, &board);
            let event = Event::default()
                .event("change")
                .id(position.to_string())
                .json_data(serde_json::json!({
                    "position": position,
                    "rows": rows,
                    "removed": removed,
                    "board": &board,
                    "freshness": freshness(&live.state),
                }))
                .unwrap_or_default();
            live.last = board;
            return Some((Ok(event), live));
        }
    });
    futures::StreamExt::chain(head, tail)
}
