//! Trust in an identity provider's JWKS: key choice, rotation, refresh.

use super::*;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;

use super::jwks_server::JwksServer;

fn rsa_jwk(kid: &str) -> serde_json::Value {
    let public = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_decoding_key(&public, Some(Algorithm::RS256)).unwrap())
            .unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

async fn jwks_authenticator(server: &JwksServer, min_refresh: Duration) -> Authenticator {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(JWKS_TIMEOUT)
        .build()
        .unwrap();
    Authenticator::from_jwks_url(
        &server.url,
        client,
        Some("https://idp.example".to_owned()),
        Some("baton-api".to_owned()),
        min_refresh,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_jwks_key_their_kid_names() {
    let server = JwksServer::start(json!({"keys": [
        // Entries Baton cannot use sit beside the one it can.
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "unknown-kind", "kid": "odd"},
        rsa_jwk("rsa-2026"),
    ]}))
    .await;
    let auth = jwks_authenticator(&server, JWKS_MIN_REFRESH).await;
    assert!(auth.describe().contains("via JWKS URL"));
    let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let claims = idp_claims("https://idp.example", "baton-api");

    let token = sign(&idp, Algorithm::RS256, Some("rsa-2026"), &claims);
    assert_eq!(
        auth.verify(&token).await.unwrap().team.as_deref(),
        Some("REAB-N")
    );
    let without_kid = sign(&idp, Algorithm::RS256, None, &claims);
    assert_eq!(auth.verify(&without_kid).await.unwrap().sub, "u-7");

    let unknown = sign(&idp, Algorithm::RS256, Some("rsa-2027"), &claims);
    assert!(matches!(
        auth.verify(&unknown).await,
        Err(AuthError::UnknownKey(kid)) if kid == "rsa-2027"
    ));
    let hmac = sign(
        &EncodingKey::from_secret(b"secret"),
        Algorithm::HS256,
        Some("hmac"),
        &claims,
    );
    assert!(matches!(
        auth.verify(&hmac).await,
        Err(AuthError::UnknownKey(_))
    ));
    let wrong_audience = sign(
        &idp,
        Algorithm::RS256,
        Some("rsa-2026"),
        &idp_claims("https://idp.example", "x"),
    );
    assert!(matches!(
        auth.verify(&wrong_audience).await,
        Err(AuthError::WrongAudience)
    ));
}

#[tokio::test]
async fn unknown_kids_fetch_the_jwks_again_at_most_once_per_interval() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk("old")]})).await;
    let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let claims = idp_claims("https://idp.example", "baton-api");
    let rotated = sign(&idp, Algorithm::RS256, Some("new"), &claims);

    let patient = jwks_authenticator(&server, JWKS_MIN_REFRESH).await;
    assert_eq!(server.hits(), 1);
    server.serve(json!({"keys": [rsa_jwk("new")]}));
    for _ in 0..5 {
        assert!(matches!(
            patient.verify(&rotated).await,
            Err(AuthError::UnknownKey(_))
        ));
    }
    assert_eq!(server.hits(), 1, "no fetch within 30 s of the last one");

    server.serve(json!({"keys": [rsa_jwk("old")]}));
    let eager = jwks_authenticator(&server, Duration::ZERO).await;
    assert_eq!(server.hits(), 2);
    server.serve(json!({"keys": [rsa_jwk("new")]}));
    assert_eq!(eager.verify(&rotated).await.unwrap().sub, "u-7");
    assert_eq!(server.hits(), 3, "the rotated key was fetched");
    assert_eq!(eager.verify(&rotated).await.unwrap().sub, "u-7");
    assert_eq!(server.hits(), 3, "a known kid fetches nothing");
}

#[tokio::test]
async fn a_jwks_without_a_usable_key_fails_the_start_and_a_bad_refresh_keeps_the_keys() {
    let server = JwksServer::start(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let refused =
        Authenticator::from_jwks_url(&server.url, client, None, None, Duration::ZERO).await;
    assert!(matches!(
        refused,
        Err(AuthError::KeySource(KeySourceError::NoUsableKey { .. }))
    ));

    server.serve(json!({"keys": [rsa_jwk("k1")]}));
    let auth = jwks_authenticator(&server, Duration::ZERO).await;
    server.serve(json!({"keys": []}));
    let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let claims = idp_claims("https://idp.example", "baton-api");
    let unknown = sign(&idp, Algorithm::RS256, Some("k2"), &claims);
    assert!(matches!(
        auth.verify(&unknown).await,
        Err(AuthError::UnknownKey(_))
    ));
    let known = sign(&idp, Algorithm::RS256, Some("k1"), &claims);
    assert_eq!(auth.verify(&known).await.unwrap().sub, "u-7");
}

#[tokio::test]
async fn a_jwks_refresh_forgets_the_tokens_verified_with_the_keys_it_withdrew() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk("k1")]})).await;
    let auth = jwks_authenticator(&server, Duration::ZERO).await;
    let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let claims = idp_claims("https://idp.example", "baton-api");
    let old = sign(&idp, Algorithm::RS256, Some("k1"), &claims);
    assert_eq!(auth.verify(&old).await.unwrap().sub, "u-7");

    server.serve(json!({"keys": [rsa_jwk("k2")]}));
    let new = sign(&idp, Algorithm::RS256, Some("k2"), &claims);
    assert_eq!(auth.verify(&new).await.unwrap().sub, "u-7");

    assert!(matches!(
        auth.verify(&old).await,
        Err(AuthError::UnknownKey(kid)) if kid == "k1"
    ));
}
