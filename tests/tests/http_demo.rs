//! `baton demo` loads a system a newcomer recognises: three hospitals, about
//! 25 wards at about 95% occupancy, about 15% of patients with no criteria
//! to reside, delays by sitrep reason, referrals to ten teams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use baton_tests::http::TestApp;
use infra::auth::Role;
use infra::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_fills_the_boards_with_a_realistic_system() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let summary = api::demo::load(&config, 7).await.unwrap();
    assert!(summary.contains("0 commands refused"), "{summary}");
    assert!(matches!(
        api::demo::load(&config, 7).await,
        Err(api::demo::DemoError::AlreadyLoaded)
    ));
    let app = TestApp::start(config, dir, None, None).await;
    let system = app.as_(Role::System, None);
    baton_tests::eventually(
        "the boards caught up",
        std::time::Duration::from_secs(60),
        || async { app.anonymous().get("/readyz").await.body["projection_lag"] == 0 },
    )
    .await;
    let board = system.get("/api/v1/boards/system").await.expect(200).body;
    let totals = &board["totals"];
    let (beds, occupied, nctr) = (
        totals["beds"].as_f64().unwrap(),
        totals["occupied"].as_f64().unwrap(),
        totals["nctr"].as_f64().unwrap(),
    );
    assert_eq!(board["hospitals"].as_array().unwrap().len(), 3);
    assert!(
        (0.90..=0.99).contains(&(occupied / beds)),
        "occupancy {occupied}/{beds}"
    );
    assert!(
        (0.10..=0.20).contains(&(nctr / occupied)),
        "NCTR {nctr}/{occupied}"
    );
    assert!(totals["delay_days"].as_u64().unwrap() > 0);
    assert_eq!(board["teams"].as_array().unwrap().len(), 10);
    let wards = app
        .as_(Role::Admin, None)
        .get("/api/v1/wards")
        .await
        .expect(200)
        .body;
    let count = wards.as_array().unwrap().len();
    assert!((20..=30).contains(&count), "{count} wards");
    let poole = app.as_(Role::Ward, Some("POOLE"));
    let hospital = poole
        .get("/api/v1/boards/hospitals/POOLE")
        .await
        .expect(200)
        .body;
    assert!(hospital["delays_by_reason"].as_object().unwrap().len() >= 3);
    assert!(hospital["pathways"]["P1"].as_u64().unwrap() > 0);
    // Thirty days of history: the leaders' charts have shapes, not a line
    // at zero with today's figures at the end.
    let daily = system
        .get("/api/v1/boards/system/daily?days=30")
        .await
        .expect(200)
        .body;
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let with = |field: &str| {
        days.iter()
            .filter(|d| d[field].as_u64().unwrap() > 0)
            .count()
    };
    assert!(
        with("discharges") >= 28,
        "discharges on {} of 30 days",
        with("discharges")
    );
    assert!(with("nctr") >= 25, "NCTR on {} of 30 days", with("nctr"));
    assert!(
        with("delay_days") >= 25,
        "delay days on {} of 30 days",
        with("delay_days")
    );
    let first_week: u64 = days[..7]
        .iter()
        .map(|d| d["discharges"].as_u64().unwrap())
        .sum();
    assert!(
        first_week > 100,
        "{first_week} discharges in the first week of the chart"
    );
    app.stop().await;
}
