//! Guarantee 4 over HTTP: with PostgreSQL down, a command fails fast with a
//! 503 problem (and `Retry-After`), readiness says not ready, nothing is half
//! written, and service resumes by itself when the database returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::http::{admission, TestApp};
use baton_tests::postgres::TestDatabase;
use baton_tests::proxy::TcpProxy;
use infra::auth::Role;
use infra::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_postgres_down_a_command_gets_a_503_problem_and_service_resumes() {
    let pg = Arc::new(TestDatabase::create().await);
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(
            pg.url
                .replace(":5432/", &format!(":{}/", proxy.port()))
                .into(),
        ),
        ..Config::default()
    };
    let app = TestApp::start(config, dir, Some(pg.clone()), None).await;
    app.seed_reference().await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    ward.admit(1, "W1", 1).await;

    proxy.cut();
    let started = Instant::now();
    let refused = ward.post("/api/v1/spells", admission(2, "W1", 2)).await;
    assert_eq!(refused.status, 503, "{:#}", refused.body);
    assert_eq!(refused.content_type, "application/problem+json");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("unavailable"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not fast: {:?}",
        started.elapsed()
    );
    let ready = app.anonymous().get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["event_store"], false);

    proxy.restore();
    let admitted = std::sync::Mutex::new(None);
    baton_tests::eventually("the database is back", Duration::from_secs(30), || async {
        let answer = ward.post("/api/v1/spells", admission(3, "W1", 3)).await;
        let back = answer.status == 201;
        if back {
            *admitted.lock().unwrap() = Some(answer.token());
        }
        back
    })
    .await;
    // Nothing half-written: the refused admission left no patient behind,
    // on a board that holds the admission made after it.
    let token = admitted.lock().unwrap().clone().unwrap();
    let board = ward
        .get(&format!(
            "/api/v1/boards/wards/W1?consistency_token={token}"
        ))
        .await
        .expect(200);
    assert!(!board.body["beds"][2]["spell_id"].is_null());
    let beds = board.body["beds"].as_array().unwrap();
    assert!(
        beds[1]["spell_id"].is_null(),
        "bed 2 holds a half-written admission"
    );
    app.stop().await;
}
