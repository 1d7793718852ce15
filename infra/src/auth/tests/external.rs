//! Trust in an identity provider's public key file, and settings that fail
//! the start.

use super::*;

#[tokio::test]
async fn an_ed25519_public_key_file_trusts_the_right_issuer_and_audience_only() {
    let dir = tempfile::tempdir().unwrap();
    let (idp, key_file) = provider_ed25519_key(dir.path());
    let auth = Authenticator::from_config(&external(dir.path(), key_file))
        .await
        .unwrap();
    assert!(auth.describe().contains("issuer https://idp.example"));

    let good = sign(
        &idp,
        Algorithm::EdDSA,
        None,
        &idp_claims("https://idp.example", "baton-api"),
    );
    assert_eq!(
        auth.verify(&good).await.unwrap(),
        Principal {
            sub: "u-7".to_owned(),
            name: "Alex Team".to_owned(),
            role: Role::Team,
            hospital: None,
            trust: None,
            team: Some("REAB-N".to_owned()),
            hub: None,
        }
    );
    let other_issuer = sign(
        &idp,
        Algorithm::EdDSA,
        None,
        &idp_claims("https://evil.example", "baton-api"),
    );
    assert!(matches!(
        auth.verify(&other_issuer).await,
        Err(AuthError::WrongIssuer)
    ));
    let other_audience = sign(
        &idp,
        Algorithm::EdDSA,
        None,
        &idp_claims("https://idp.example", "other-app"),
    );
    assert!(matches!(
        auth.verify(&other_audience).await,
        Err(AuthError::WrongAudience)
    ));

    let mut no_issuer = idp_claims("https://idp.example", "baton-api");
    no_issuer.as_object_mut().unwrap().remove("iss");
    let no_issuer = sign(&idp, Algorithm::EdDSA, None, &no_issuer);
    assert!(matches!(
        auth.verify(&no_issuer).await,
        Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "iss"
    ));
}

#[tokio::test]
async fn a_locally_signed_token_is_not_trusted_once_an_external_provider_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key_file) = provider_ed25519_key(dir.path());
    let auth = Authenticator::from_config(&external(dir.path(), key_file))
        .await
        .unwrap();
    let local = sign_local(dir.path(), &ward(), Duration::from_secs(600)).unwrap();
    assert!(matches!(
        auth.verify(&local).await,
        Err(AuthError::BadSignature)
    ));

    // Even with the external provider's issuer and audience.
    let mut claims = local_claims();
    claims["iss"] = json!("https://idp.example");
    claims["aud"] = json!("baton-api");
    let forged = sign_with_local_key(dir.path(), &claims);
    assert!(matches!(
        auth.verify(&forged).await,
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn an_rsa_public_key_file_verifies_rs256_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("idp-rsa.pem");
    std::fs::write(&key_file, RSA_PUBLIC).unwrap();
    let auth = Authenticator::from_config(&external(dir.path(), key_file))
        .await
        .unwrap();
    let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign(
        &idp,
        Algorithm::RS256,
        None,
        &idp_claims("https://idp.example", "baton-api"),
    );
    assert_eq!(auth.verify(&token).await.unwrap().role, Role::Team);
}

#[tokio::test]
async fn contradictory_or_unreadable_settings_fail_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let both = Config {
        jwt_public_key_file: Some(dir.path().join("x.pem")),
        jwks_url: Some("http://127.0.0.1:9/jwks".to_owned()),
        ..config(dir.path())
    };
    assert!(matches!(
        Authenticator::from_config(&both).await,
        Err(AuthError::Misconfigured(_))
    ));
    let issuer_only = Config {
        jwt_issuer: Some("https://idp.example".to_owned()),
        ..config(dir.path())
    };
    assert!(matches!(
        Authenticator::from_config(&issuer_only).await,
        Err(AuthError::Misconfigured(_))
    ));
    let missing_file = external(dir.path(), dir.path().join("absent.pem"));
    assert!(matches!(
        Authenticator::from_config(&missing_file).await,
        Err(AuthError::KeySource(KeySourceError::Io { .. }))
    ));
    let private_key = dir.path().join("private.pem");
    std::fs::write(&private_key, RSA_PRIVATE).unwrap();
    assert!(matches!(
        Authenticator::from_config(&external(dir.path(), private_key)).await,
        Err(AuthError::Misconfigured(_))
    ));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        Authenticator::from_config(&external(dir.path(), garbage)).await,
        Err(AuthError::KeySource(KeySourceError::NotAPublicKey { .. }))
    ));
    let unreachable = Config {
        jwks_url: Some("http://127.0.0.1:9/jwks".to_owned()),
        ..config(dir.path())
    };
    assert!(matches!(
        Authenticator::from_config(&unreachable).await,
        Err(AuthError::KeySource(KeySourceError::Fetch { .. }))
    ));
}
