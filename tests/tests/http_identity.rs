//! With an external identity provider configured, Baton trusts its tokens
//! (issuer, audience, expiry and signature checked) and no longer trusts the
//! local key that `baton token` signs with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use baton_tests::http::TestApp;
use infra::auth::Role;
use infra::config::Config;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/tests/fixtures");

fn idp_token(issuer: &str, audience: &str, expires_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    signed(&json!({
        "sub": "cis2-555", "name": "Pat Nurse", "role": "ward", "hospital": "POOLE",
        "iss": issuer, "aud": audience, "iat": now, "exp": now + expires_in,
    }))
}

fn signed(claims: &Value) -> String {
    let key = std::fs::read(format!("{FIXTURES}/test-only-rsa-private.pem")).unwrap();
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(&key).unwrap(),
    )
    .unwrap()
}

/// Baton trusting the identity provider whose key the fixtures hold.
async fn app_trusting_the_provider() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        jwt_issuer: Some("https://idp.example.nhs.uk".to_owned()),
        jwt_audience: Some("baton".to_owned()),
        jwt_public_key_file: Some(format!("{FIXTURES}/test-only-rsa-public.pem").into()),
        ..Config::default()
    };
    TestApp::start(config, dir, None, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_identity_providers_tokens_are_trusted_and_the_local_key_is_not() {
    let app = app_trusting_the_provider().await;
    let mut client = app.anonymous();
    client.token = Some(idp_token("https://idp.example.nhs.uk", "baton", 600));
    let me = client.get("/api/v1/session").await.expect(200);
    assert_eq!(me.body["sub"], "cis2-555");
    assert_eq!(me.body["hospital"], "POOLE");
    for bad in [
        idp_token("https://elsewhere.example", "baton", 600),
        idp_token("https://idp.example.nhs.uk", "another-service", 600),
        idp_token("https://idp.example.nhs.uk", "baton", -3600),
        app.token(Role::Admin, None),
    ] {
        client.token = Some(bad);
        let answer = client.get("/api/v1/session").await;
        assert_eq!(answer.status, 401, "{:#}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
    }
    // No development sign-in with an identity provider.
    assert_eq!(
        app.anonymous()
            .get("/api/v1/dev/sign-in")
            .await
            .expect(200)
            .body["enabled"],
        false
    );
    app.stop().await;
}

/// Waits until the wall clock shows `second` (seconds since the epoch): the
/// server reads the real clock, so crossing a token's last second takes time.
async fn until_second(second: i64) {
    let left = second * 1000 - chrono::Utc::now().timestamp_millis();
    if let Ok(left) = u64::try_from(left) {
        tokio::time::sleep(std::time::Duration::from_millis(left)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_used_just_before_exp_plus_the_leeway_is_refused_after_it_like_an_unused_one() {
    let app = app_trusting_the_provider().await;
    // Expired 58 s ago: the 60 s leeway ends two seconds from now.
    let exp = chrono::Utc::now().timestamp() - 58;
    let token = |name: &str| {
        signed(&json!({
            "sub": "cis2-555", "name": name, "role": "ward", "hospital": "POOLE",
            "iss": "https://idp.example.nhs.uk", "aud": "baton", "iat": exp - 600, "exp": exp,
        }))
    };
    let mut client = app.anonymous();
    client.token = Some(token("Pat Nurse"));
    client.get("/api/v1/session").await.expect(200);

    until_second(exp + 61).await;
    let used = client.get("/api/v1/session").await;
    client.token = Some(token("Pat Nurse, on another device"));
    let unused = client.get("/api/v1/session").await;
    assert_eq!(unused.status, 401, "{:#}", unused.body);
    assert_eq!(used.status, 401, "{:#}", used.body);
    assert_eq!(used.body["detail"], unused.body["detail"]);
    assert_eq!(
        used.body["detail"],
        "sign in, or send a valid bearer token: the token has expired"
    );
    app.stop().await;
}
