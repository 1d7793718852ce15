//! A board shown as live while it is stale is the most dangerous thing
//! Baton can do. With NATS frozen, commands still commit (the outbox holds
//! them) but the boards cannot follow: every board read, live stream,
//! readiness and metric must say so, with the moment the boards were last
//! up to date, and say so no longer once they have caught up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use baton_tests::eventually;
use baton_tests::http::{Events, Stack, TestApp};
use infra::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boards_that_cannot_follow_the_record_say_since_when_everywhere_until_they_catch_up() {
    let app = TestApp::seeded(Stack::Production).await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let first = nurse.admit(1, "W1", 1).await;
    let board = nurse
        .get_after("/api/v1/boards/wards/W1", &first)
        .await
        .ok();
    assert_eq!(board.body["totals"]["occupied"], 1);
    eventually(
        "the boards to be current",
        Duration::from_secs(10),
        || async { app.boards.freshness().current },
    )
    .await;
    let mut live = Events::new(nurse.stream("ward:W1").await);
    let (name, opening) = live.next(Duration::from_secs(10)).await;
    assert_eq!(name, "board");
    assert_eq!(opening["freshness"]["current"], true);

    let nats = app.nats.clone().unwrap();
    nats.freeze();
    let frozen_at = chrono::Utc::now();
    // The command is acknowledged: it is in the record, not yet on the boards.
    nurse.admit(2, "W1", 2).await;
    let stale = live
        .until_event(Duration::from_secs(20), |name, data| {
            name == "freshness" && data["current"] == false
        })
        .await;
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(stale["up_to_date_at"].clone()).unwrap();
    assert!(
        since <= frozen_at,
        "up to date at {since}, frozen at {frozen_at}"
    );

    let board = nurse.get("/api/v1/boards/wards/W1").await.ok();
    assert_eq!(board.body["freshness"]["current"], false);
    assert_eq!(
        board.body["totals"]["occupied"], 1,
        "the board lags the record"
    );
    let ready = app.anonymous().get("/readyz").await.expect(503);
    assert_eq!(ready.body["boards_current"], false);
    assert_eq!(ready.body["status"], "not_ready");
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("\nbaton_boards_current 0\n"), "{metrics}");
    assert!(app.boards.alarm_count() >= 1, "the alarm was raised");
    // A page opened now is told at once.
    let mut late = Events::new(nurse.stream("ward:W1").await);
    let (_, opening) = late.next(Duration::from_secs(10)).await;
    assert_eq!(opening["freshness"]["current"], false);

    nats.thaw();
    live.until_event(Duration::from_secs(60), |name, data| {
        name == "freshness" && data["current"] == true
    })
    .await;
    let board = nurse.get("/api/v1/boards/wards/W1").await.ok();
    assert_eq!(board.body["totals"]["occupied"], 2);
    assert_eq!(board.body["freshness"]["current"], true);
    app.anonymous().get("/readyz").await.expect(200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_live_stream_still_says_how_current_the_board_is() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let leader = app.as_(Role::System, None);
    let mut live = Events::new(leader.stream("system").await);
    live.next(Duration::from_secs(10)).await;
    // Nothing happens on the board; within one interval and a bit the
    // stream says how current it is, so a page can tell quiet from stopped.
    let within = api::routes::boards::FRESHNESS_EVERY + Duration::from_secs(3);
    let (name, data) = live.next(within).await;
    assert_eq!(name, "freshness");
    assert_eq!(data["current"], true);
    app.stop().await;
}
