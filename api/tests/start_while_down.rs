//! A Baton started while its database is down comes up anyway: it answers
//! `/healthz`, says it is not ready, answers everything else with a plain
//! 503 (a page for browsers), and once the database answers it serves by
//! itself on the same address. A real `baton serve` child; the database is
//! taken away by a proxy, so no other test loses its server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use baton_tests::postgres::TestDatabase;
use baton_tests::proxy::TcpProxy;
use baton_tests::{eventually, free_port, serve_command};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baton_started_while_postgres_is_down_says_it_is_not_ready_and_recovers_by_itself() {
    let pg = TestDatabase::create().await;
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("baton.log");
    let mut child = serve_command(env!("CARGO_BIN_EXE_baton"), &log)
        .env("BATON_LISTEN", format!("127.0.0.1:{port}"))
        .env("BATON_DATA_DIR", dir.path())
        .env(
            "BATON_DATABASE_URL",
            pg.url.replace(":5432/", &format!(":{}/", proxy.port())),
        )
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &str| {
        http.get(format!("{base}{path}"))
            .header("accept", accept)
            .timeout(Duration::from_secs(5))
            .send()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !matches!(get("/healthz", "application/json").await, Ok(r) if r.status() == 200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "baton did not answer /healthz within 30 s; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "baton exited");
    let ready = get("/readyz", "application/json").await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["event_store"], false);
    let api = get("/api/v1/boards/system", "application/json")
        .await
        .unwrap();
    assert_eq!(api.status(), 503);
    assert_eq!(
        api.headers()["content-type"],
        "application/problem+json",
        "a problem, not a bare error"
    );
    assert!(api.headers().contains_key("retry-after"));
    let page = get("/ward/W1", "text/html").await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Baton is starting"));

    proxy.restore();
    eventually(
        "baton to be ready once PostgreSQL answers",
        Duration::from_secs(60),
        || async { matches!(get("/readyz", "application/json").await, Ok(r) if r.status() == 200) },
    )
    .await;
    // The real API now answers on the same address: no token is 401.
    let api = get("/api/v1/boards/system", "application/json")
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("cannot reach the event store"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baton_pointed_at_a_database_that_does_not_exist_stops_and_says_why() {
    let url = format!(
        "{}/baton_no_such_database_{}",
        baton_tests::postgres::admin_url()
            .rsplit_once('/')
            .unwrap()
            .0,
        std::process::id()
    );
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("serve")
            .env_clear()
            .env("BATON_LISTEN", "127.0.0.1:0")
            .env("BATON_DATA_DIR", dir.path())
            .env("BATON_DATABASE_URL", url)
            .output(),
    )
    .await
    .expect("baton kept retrying a database that does not exist")
    .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("does not exist"), "{said}");
}
