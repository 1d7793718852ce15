//! NATS as deployments configure it: every seed of a cluster in
//! `BATON_NATS_URL`, and TLS with a private CA. Each test runs the real
//! application against a real nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use baton_tests::http::TestApp;
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use infra::auth::Role;
use infra::config::Config;
use serde_json::json;

fn config(data_dir: &Path, db: &TestDatabase, nats_url: String) -> Config {
    Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(db.url.clone().into()),
        nats_url: Some(nats_url.into()),
        ..Config::default()
    }
}

/// Admits a patient and reads the ward board with the command's token:
/// the event went through the stream to the boards.
async fn a_command_reaches_the_boards(app: &TestApp) {
    app.seed_reference().await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let admitted = nurse.admit(1, "W1", 1).await;
    let board = nurse
        .get_after("/api/v1/boards/wards/W1", &admitted)
        .await
        .ok();
    assert_eq!(board.body["totals"]["occupied"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_list_of_servers_is_accepted_and_a_dead_seed_is_passed_over() {
    let db = Arc::new(TestDatabase::create().await);
    let nats = Arc::new(NatsServer::start().await);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = Arc::new(tempfile::tempdir().unwrap());
    let list = format!("nats://127.0.0.1:{dead}, {}", nats.url());
    let config = config(data.path(), &db, list);
    let app = TestApp::start(config, data, Some(db), Some(nats)).await;
    a_command_reaches_the_boards(&app).await;
    app.stop().await;
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is required to make the test's certificates");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA, and a certificate it signed for 127.0.0.1.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=Baton test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nats_server_that_requires_tls_is_reached_through_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let path = |name: &str| certs.path().join(name).display().to_string();
    let nats = Arc::new(
        NatsServer::start_with(vec![
            "--tls".into(),
            "--tlscert".into(),
            path("server.pem"),
            "--tlskey".into(),
            path("server.key"),
        ])
        .await,
    );
    let db = Arc::new(TestDatabase::create().await);
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(data.path(), &db, nats.url());
    config.nats_tls_ca_file = Some(certs.path().join("ca.pem"));
    let app = TestApp::start(config, data, Some(db), Some(nats)).await;
    a_command_reaches_the_boards(&app).await;
    app.stop().await;
}

/// A NATS JWT: claims signed with an NKey, as `nsc` would make them.
fn jwt(signer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": signer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let payload = b64(claims.to_string().as_bytes());
    let signature = signer
        .sign(format!("{header}.{payload}").as_bytes())
        .unwrap();
    format!("{header}.{payload}.{}", b64(&signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nats_server_in_operator_mode_is_reached_with_a_credentials_file() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "baton-test-operator",
        json!({"type": "operator", "version": 2}),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "baton",
        json!({"type": "account", "version": 2, "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}}),
    );
    // JetStream needs a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        json!({"type": "account", "version": 2, "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1}}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "baton-relay",
        json!({"type": "user", "version": 2, "pub": {}, "sub": {},
               "subs": -1, "data": -1, "payload": -1}),
    );
    let dir = tempfile::tempdir().unwrap();
    let server_config = dir.path().join("server.conf");
    std::fs::write(
        &server_config,
        format!(
            "operator: \"{operator_jwt}\"\nresolver: MEMORY\nsystem_account: {system_key}\n\
             resolver_preload: {{ {}: \"{account_jwt}\", {system_key}: \"{system_jwt}\" }}\n",
            account.public_key(),
            system_key = system.public_key(),
        ),
    )
    .unwrap();
    let creds = dir.path().join("baton.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
    let nats = Arc::new(
        NatsServer::start_with(vec!["-c".into(), server_config.display().to_string()]).await,
    );
    // The server admits no one without credentials.
    let anonymous = async_nats::connect(nats.url()).await;
    assert!(
        matches!(
            &anonymous,
            Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation
        ),
        "the server let in a client with no credentials, or failed otherwise: {anonymous:?}"
    );
    let db = Arc::new(TestDatabase::create().await);
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(data.path(), &db, nats.url());
    config.nats_credentials_file = Some(creds);
    let app = TestApp::start(config, data, Some(db), Some(nats)).await;
    a_command_reaches_the_boards(&app).await;
    app.stop().await;
}
