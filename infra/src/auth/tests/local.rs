//! Trust in the local key: tokens `baton token` signs, and every way a
//! token is refused whatever the source of trust.

use super::*;

#[tokio::test]
async fn a_locally_signed_token_verifies_and_round_trips_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    for who in [
        ward(),
        principal(Role::Team, None, Some("REAB-N")),
        principal(Role::System, None, None),
        principal(Role::Admin, None, None),
    ] {
        let token = sign_local(dir.path(), &who, Duration::from_secs(600)).unwrap();
        assert_eq!(auth.verify(&token).await.unwrap(), who);
    }
    assert!(auth.describe().starts_with("local key "));
    assert!(auth.describe().contains(LOCAL_KEY_FILE));
}

#[tokio::test]
async fn the_local_key_is_created_once_private_and_reused_by_a_second_authenticator() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = sign_local(&data_dir, &ward(), Duration::from_secs(600)).unwrap();
    let path = data_dir.join(LOCAL_KEY_FILE);
    let pem = std::fs::read_to_string(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let first = Authenticator::from_config(&config(&data_dir))
        .await
        .unwrap();
    let second = Authenticator::from_config(&config(&data_dir))
        .await
        .unwrap();
    assert_eq!(first.verify(&token).await.unwrap(), ward());
    assert_eq!(second.verify(&token).await.unwrap(), ward());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    let leftovers: Vec<_> = std::fs::read_dir(&data_dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the key file, no temporary copies");
}

#[test]
fn processes_creating_the_local_key_at_the_same_moment_end_up_with_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let key = LocalKey::load_or_create(&data_dir).unwrap();
                    key.verifying.key.try_get_as_bytes().unwrap().to_vec()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(std::fs::read_dir(&data_dir).unwrap().count(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let mut claims = local_claims();
    claims["exp"] = json!(now() - 120);
    let token = sign_with_local_key(dir.path(), &claims);
    assert!(matches!(auth.verify(&token).await, Err(AuthError::Expired)));
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let mut claims = local_claims();
    claims["exp"] = json!(now() - 10);
    let token = sign_with_local_key(dir.path(), &claims);
    assert_eq!(auth.verify(&token).await.unwrap(), ward());
}

/// Waits until the clock the JWT library reads (whole seconds since the
/// epoch) shows `second`: the library has no clock to inject.
async fn until_second(second: u64) {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(second);
    if let Ok(left) = at.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test]
async fn a_token_used_just_before_exp_plus_the_leeway_is_refused_after_it_like_an_unused_one() {
    // A leeway of one second stands in for the minute, so that crossing its
    // end takes a second or two.
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::local(dir.path(), Duration::from_secs(1)).unwrap();
    // The leeway ends two seconds from now.
    let exp = now() + 1;
    let mut claims = local_claims();
    claims["exp"] = json!(exp);
    let used = sign_with_local_key(dir.path(), &claims);
    claims["name"] = json!("Sam Carter, on another device");
    let unused = sign_with_local_key(dir.path(), &claims);
    assert_eq!(auth.verify(&used).await.unwrap(), ward());

    until_second(exp + 2).await;
    assert!(matches!(
        auth.verify(&unused).await,
        Err(AuthError::Expired)
    ));
    assert!(matches!(auth.verify(&used).await, Err(AuthError::Expired)));
}

#[tokio::test]
async fn a_token_without_exp_or_with_a_future_nbf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let mut claims = local_claims();
    claims.as_object_mut().unwrap().remove("exp");
    let token = sign_with_local_key(dir.path(), &claims);
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "exp"
    ));

    let mut claims = local_claims();
    claims["nbf"] = json!(now() + 3600);
    let token = sign_with_local_key(dir.path(), &claims);
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::NotYetValid)
    ));

    let mut claims = local_claims();
    claims["nbf"] = json!("someday");
    let token = sign_with_local_key(dir.path(), &claims);
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::BadClaims(ClaimsProblem::Invalid(claim))) if claim == "nbf"
    ));
}

#[tokio::test]
async fn a_tampered_signature_or_edited_claims_are_refused_as_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let token = sign_local(dir.path(), &ward(), Duration::from_secs(600)).unwrap();
    // Verified, and so remembered: its altered copies must still fail.
    assert_eq!(auth.verify(&token).await.unwrap(), ward());

    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature = signature.as_bytes().to_vec();
    signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{message}.{}", String::from_utf8(signature).unwrap());
    assert!(matches!(
        auth.verify(&tampered).await,
        Err(AuthError::BadSignature)
    ));

    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut claims = local_claims();
    claims["role"] = json!("admin");
    let payload = base64_url(&serde_json::to_vec(&claims).unwrap());
    let edited = format!("{header}.{payload}.{signature}");
    assert!(matches!(
        auth.verify(&edited).await,
        Err(AuthError::BadSignature)
    ));
}
#[tokio::test]
async fn a_token_signed_by_another_local_key_is_refused_as_bad_signature() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(ours.path()))
        .await
        .unwrap();
    let token = sign_local(theirs.path(), &ward(), Duration::from_secs(600)).unwrap();
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn scope_and_role_problems_are_refused_as_bad_claims() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let verify = |change: fn(&mut serde_json::Value)| {
        let mut claims = local_claims();
        change(&mut claims);
        let token = sign_with_local_key(dir.path(), &claims);
        let auth = auth.clone();
        async move { auth.verify(&token).await }
    };

    let ward_without_hospital = verify(|c| {
        c.as_object_mut().unwrap().remove("hospital");
    });
    assert!(matches!(
        ward_without_hospital.await,
        Err(AuthError::BadClaims(ClaimsProblem::WardWithoutHospital))
    ));
    let team_without_team = verify(|c| c["role"] = json!("team"));
    assert!(matches!(
        team_without_team.await,
        Err(AuthError::BadClaims(ClaimsProblem::TeamWithoutTeam))
    ));
    let unknown_role = verify(|c| c["role"] = json!("porter"));
    assert!(matches!(
        unknown_role.await,
        Err(AuthError::BadClaims(ClaimsProblem::UnknownRole(UnknownRole(role)))) if role == "porter"
    ));
    let no_role = verify(|c| {
        c.as_object_mut().unwrap().remove("role");
    });
    assert!(matches!(
        no_role.await,
        Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "role"
    ));
    let no_sub = verify(|c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    assert!(matches!(
        no_sub.await,
        Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "sub"
    ));
}

#[tokio::test]
async fn the_scope_of_another_role_is_dropped_and_a_missing_name_falls_back_to_the_sub() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    let mut claims = local_claims();
    claims["team"] = json!("REAB-N");
    claims.as_object_mut().unwrap().remove("name");
    let token = sign_with_local_key(dir.path(), &claims);
    let who = auth.verify(&token).await.unwrap();
    assert_eq!(who.team, None);
    assert_eq!(who.hospital.as_deref(), Some("RXH"));
    assert_eq!(who.name, "u-42");
}

#[test]
fn sign_local_refuses_a_principal_the_server_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |p: Principal| sign_local(dir.path(), &p, Duration::from_secs(60));
    assert!(matches!(
        refused(principal(Role::Ward, None, Some("REAB-N"))),
        Err(AuthError::BadClaims(ClaimsProblem::WardWithoutHospital))
    ));
    assert!(matches!(
        refused(principal(Role::Team, Some("RXH"), None)),
        Err(AuthError::BadClaims(ClaimsProblem::TeamWithoutTeam))
    ));
}

#[tokio::test]
async fn no_token_or_garbage_is_refused_as_missing_or_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    assert!(matches!(auth.verify("").await, Err(AuthError::Missing)));
    assert!(matches!(auth.verify("  ").await, Err(AuthError::Missing)));
    assert!(matches!(
        auth.verify("not-a-jwt").await,
        Err(AuthError::Malformed)
    ));
    assert!(matches!(
        auth.verify("a.b.c").await,
        Err(AuthError::Malformed)
    ));
    // `alg: none` is not an algorithm the library even parses.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&serde_json::to_vec(&local_claims()).unwrap())
    );
    assert!(matches!(
        auth.verify(&none).await,
        Err(AuthError::Malformed)
    ));
}

#[tokio::test]
async fn a_token_claiming_another_algorithm_is_refused_as_wrong_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::from_config(&config(dir.path()))
        .await
        .unwrap();
    // HMAC keyed with something public: the classic confusion attack.
    let token = sign(
        &EncodingKey::from_secret(b"the public key, perhaps"),
        Algorithm::HS256,
        None,
        &local_claims(),
    );
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::WrongAlgorithm)
    ));
}
