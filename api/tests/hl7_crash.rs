//! Exactly once across a crash (issue 16): a real `baton serve` child takes
//! an admission over MLLP and is killed with SIGKILL as soon as its events
//! are committed, before the sender has read any acknowledgement. The
//! sender, having no ACK, sends the message again to the restarted Baton:
//! it is acknowledged `AA` and nothing is recorded twice (the control id
//! was stored in the same transaction as the events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Child;
use std::time::Duration;

use baton_tests::mllp::{ack_code, message_file, MllpClient};
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use baton_tests::{eventually, free_port};
use domain::values::VisitNumber;
use infra::auth::{Principal, Role, ScopeClaims};
use infra::store::Database;

struct Child9 {
    child: Option<Child>,
    envs: Vec<(String, String)>,
    log: std::path::PathBuf,
}

impl Child9 {
    fn spawn(&mut self) {
        let child = baton_tests::serve_command(env!("CARGO_BIN_EXE_baton"), &self.log)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL: no shutdown code runs
            child.wait().unwrap();
        }
    }
}

impl Drop for Child9 {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn count(db: &Database, sql: &str, bind: &str) -> i64 {
    match db {
        Database::Postgres(pool) => sqlx::query_scalar(sql).bind(bind).fetch_one(pool).await,
        Database::Sqlite(pool) => sqlx::query_scalar(sql).bind(bind).fetch_one(pool).await,
    }
    .unwrap_or(-1)
}

async fn connect(port: u16) -> MllpClient {
    eventually("the MLLP listener", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    MllpClient::connect(port).await
}

async fn killed_between_commit_and_ack(production: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (http, mllp) = (free_port(), free_port());
    let mut envs = vec![
        ("BATON_LISTEN".to_owned(), format!("127.0.0.1:{http}")),
        ("BATON_MLLP_LISTEN".to_owned(), format!("127.0.0.1:{mllp}")),
        (
            "BATON_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
    ];
    let (mut _pg, mut _nats) = (None, None);
    if production {
        let pg = TestDatabase::create().await;
        let nats = NatsServer::start().await;
        envs.push(("BATON_DATABASE_URL".into(), pg.url.clone()));
        envs.push(("BATON_NATS_URL".into(), nats.url()));
        _pg = Some(pg);
        _nats = Some(nats);
    }
    let mut baton = Child9 {
        child: None,
        envs,
        log: dir.path().join("baton.log"),
    };
    baton.spawn();
    // Reference data through the API, as an admin of the child's own key.
    let admin = Principal::scoped(
        "admin-1".into(),
        "Admin".into(),
        Role::Admin,
        ScopeClaims::default(),
    )
    .unwrap();
    let token = infra::auth::sign_local(dir.path(), &admin, Duration::from_secs(600)).unwrap();
    let client = reqwest::Client::new();
    let put = |path: &str, body: serde_json::Value| {
        client
            .put(format!("http://127.0.0.1:{http}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    eventually("the child to serve", Duration::from_secs(30), || async {
        put(
            "/api/v1/hospitals/POOLE",
            serde_json::json!({ "name": "Poole" }),
        )
        .await
        .is_ok_and(|r| r.status().is_success())
    })
    .await;
    for ward in ["W1", "W2"] {
        let answer = put(
            &format!("/api/v1/wards/{ward}"),
            serde_json::json!({ "name": ward, "hospital": "POOLE", "beds": 30 }),
        )
        .await
        .unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    }
    let db = match &_pg {
        Some(pg) => Database::postgres(&pg.url, 2).unwrap(),
        None => Database::sqlite(dir.path()).await.unwrap(),
    };
    let spell = infra::hl7::feed::spell_id("RBD", &VisitNumber::parse("V1001").unwrap()).unwrap();
    let events = "SELECT count(*) FROM events WHERE aggregate_id = $1";
    let keys = "SELECT count(*) FROM idempotency_keys WHERE principal = $1";

    // The admission is sent; its ACK is never read. As soon as its events
    // are committed, Baton is killed.
    let mut pas = connect(mllp).await;
    pas.send_raw(&frame(&message_file("a01_admit.hl7"))).await;
    eventually(
        "the admission to commit",
        Duration::from_secs(30),
        || async { count(&db, events, spell.as_str()).await == 1 },
    )
    .await;
    baton.kill();
    drop(pas);

    // The sender, with no ACK, sends it again once Baton is back.
    baton.spawn();
    let mut pas = connect(mllp).await;
    let ack = pas.send(&message_file("a01_admit.hl7")).await.unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    assert_eq!(count(&db, events, spell.as_str()).await, 1, "recorded once");
    assert_eq!(count(&db, keys, "hl7:RBD").await, 1);
    // And the feed goes on from there.
    let ack = pas.send(&message_file("a02_transfer.hl7")).await.unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    assert_eq!(count(&db, events, spell.as_str()).await, 2);
    baton.kill();
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0x0b];
    framed.extend_from_slice(message);
    framed.extend_from_slice(&[0x1c, 0x0d]);
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_before_a_kill_is_acknowledged_again_and_recorded_once_embedded() {
    killed_between_commit_and_ack(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_before_a_kill_is_acknowledged_again_and_recorded_once_production() {
    killed_between_commit_and_ack(true).await;
}
