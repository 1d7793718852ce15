//! Signing in to the pages through a real OpenID provider (oidc-provider
//! from npm, `tests/src/oidc.rs`): the authorization code flow with PKCE,
//! server-side sessions behind an HttpOnly cookie, the anti-forgery token,
//! idle timeout, sign-out here and at the provider, and each way a sign-in
//! can go wrong answered with a page that says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use baton_tests::http::{told_signed_out, TestApp};
use baton_tests::oidc::{app_with_provider, Browser, TestProvider};
use infra::auth::Role;
use infra::config::Config;
use serde_json::{json, Value};

struct SignInRig {
    app: TestApp,
    provider: Option<TestProvider>,
}

async fn rig(tune: impl FnOnce(&mut Config)) -> SignInRig {
    let (app, provider) = app_with_provider(tune).await;
    SignInRig {
        app,
        provider: Some(provider),
    }
}

impl SignInRig {
    fn provider(&self) -> &TestProvider {
        self.provider.as_ref().unwrap()
    }

    /// API clients sign in with bearer tokens, whatever the pages do.
    async fn bearer_tokens_still_serve(&self) {
        self.app
            .as_(Role::Ward, Some("POOLE"))
            .get("/api/v1/boards/wards/W1")
            .await
            .expect(200);
    }
}

/// The session cookie a sign-in set.
fn session_cookie(set_cookies: &[String]) -> Option<String> {
    set_cookies
        .iter()
        .find(|c| c.starts_with("baton_session=") && !c.starts_with("baton_session=;"))
        .cloned()
}

/// A new browser, signed in at the provider as `user`, and the callback
/// the provider sent it back to.
async fn signed_in_at_provider(base: &str, user: &str, return_to: &str) -> (Browser, String) {
    let browser = Browser::new();
    let callback = browser.sign_in_at_provider(base, user, return_to).await;
    (browser, callback)
}

/// A new browser back from signing in at the provider as `user`, with its
/// session.
async fn with_session(base: &str, user: &str) -> Browser {
    let (browser, callback) = signed_in_at_provider(base, user, "/").await;
    assert_eq!(browser.get(&callback).await.status, 303);
    browser
}

fn query_value(url: &str, key: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

async fn session(browser: &Browser, base: &str) -> (u16, Value) {
    let response = browser
        .client
        .get(format!("{base}/api/v1/session"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admit(browser: &Browser, base: &str, csrf: Option<&str>, n: u32) -> (u16, Value) {
    let mut request = browser
        .client
        .post(format!("{base}/api/v1/spells"))
        .json(&json!({
            "nhs_number": baton_tests::fixtures::nhs_number(n).to_string(),
            "family_name": "Smith", "given_name": "Ann", "date_of_birth": "1950-01-01",
            "ward": "W1", "bed": n.to_string(), "admitted_at": "2026-11-30T10:00:00Z"
        }));
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nurse_signs_in_through_the_provider_and_works_with_the_session_cookie_alone() {
    let rig = rig(|_| {}).await;
    let base = rig.app.base.clone();
    let (browser, callback) = signed_in_at_provider(&base, "wendy.ward", "/ward/W1").await;
    let back = browser.get(&callback).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/ward/W1"));
    let cookie = session_cookie(&back.set_cookies).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !back.location.unwrap_or_default().contains("token"),
        "no token in any URL"
    );

    let (status, me) = session(&browser, &base).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "ward");
    assert_eq!(me["hospital"], "POOLE");
    assert_eq!(me["name"], "Wendy Ward");
    assert_eq!(me["signed_in_with"], "provider");
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();

    // A change with the cookie and the anti-forgery token is the nurse's.
    let (status, body) = admit(&browser, &base, Some(&csrf), 1).await;
    assert_eq!(status, 201, "{body}");
    let spell = body["id"].as_str().unwrap().to_owned();
    let history = browser
        .client
        .get(format!("{base}/api/v1/spells/{spell}/history"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(history[0]["by"]["id"], "wendy.ward", "{history}");

    // Without it (another site's form or script), or with another, refused.
    for token in [None, Some("not-the-token")] {
        let (status, problem) = admit(&browser, &base, token, 2).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["type"], "/problems/csrf");
    }
    // Bearer tokens keep working for API clients, with no anti-forgery token.
    rig.bearer_tokens_still_serve().await;
}

/// Every rule of the shipped mapping (tests/browser/oidc-roles.toml, the
/// README's worked example): a team, a whole trust's wards, the care
/// transfer hub and the ICB sign in through the provider with nothing but a
/// group, and their session opens their own boards and no one else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admins_mapping_turns_a_providers_group_into_a_role_and_scope() {
    let rig = rig(|_| {}).await;
    let base = rig.app.base.clone();
    // (login, role, scope claim and code, a board it opens, one it may not)
    let staff = [
        (
            "rita.reablement",
            "team",
            "team",
            "REAB-E",
            "/api/v1/boards/teams/REAB-E",
            "/api/v1/boards/teams/REAB",
        ),
        (
            "tom.trust",
            "ward",
            "trust",
            "UHD",
            "/api/v1/boards/hospitals/RBH",
            "/api/v1/boards/hospitals/DCH",
        ),
        (
            "hana.hub",
            "hub",
            "hub",
            "DORSET-HUB",
            "/api/v1/boards/hubs/DORSET-HUB",
            "/api/v1/boards/hubs/EAST",
        ),
        (
            "sian.system",
            "system",
            "role",
            "system",
            "/api/v1/boards/system",
            "/api/v1/boards/wards/W1",
        ),
    ];
    for (login, role, claim, code, mine, theirs) in staff {
        let browser = with_session(&base, login).await;
        let (status, me) = session(&browser, &base).await;
        assert_eq!(status, 200, "{login}: {me}");
        assert_eq!(me["role"], role, "{login}: {me}");
        assert_eq!(me[claim], code, "{login}: {me}");
        let board = |path: &str| browser.client.get(format!("{base}{path}")).send();
        assert_eq!(board(mine).await.unwrap().status(), 200, "{login} {mine}");
        assert_eq!(
            board(theirs).await.unwrap().status(),
            403,
            "{login} {theirs}"
        );
    }
}

/// README.md's worked example runs with the mapping the tests use.
#[test]
fn the_readmes_worked_example_uses_the_mapping_the_tests_run_with() {
    let readme = include_str!("../../README.md");
    let example = readme
        .split("**Worked example with the provider the tests use**")
        .nth(1)
        .expect("README.md has the worked example");
    let example = &example[..example.find("\n## ").unwrap_or(example.len())];
    assert!(
        example.contains(&format!(
            "BATON_ROLE_MAPPING_FILE={}",
            baton_tests::oidc::RULES_FILE
        )),
        "{example}"
    );
    for login in [
        "wendy.ward",
        "rita.reablement",
        "tom.trust",
        "hana.hub",
        "sian.system",
        "adam.admin",
    ] {
        assert!(example.contains(login), "the example names {login}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn someone_baton_gives_no_role_is_told_so_with_their_user_id_and_gets_no_session() {
    let rig = rig(|_| {}).await;
    refused_at_sign_in(&rig, "nobody.special", "Baton has no role for you yet").await;
}

/// `login` signs in at the provider and Baton refuses them: 403, a page
/// saying `why` and naming their user id, and no session.
async fn refused_at_sign_in(rig: &SignInRig, login: &str, why: &str) {
    let (browser, callback) = signed_in_at_provider(&rig.app.base, login, "/").await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains(why), "{}", page.body);
    assert!(page.body.contains(login), "{}", page.body);
    assert!(session_cookie(&page.set_cookies).is_none());
}

/// The refusal page tells such a person to ask for a grant: once the
/// admin grants one, the same person signs in with it (once, a grant was
/// read only after sign-in, so they could never get in).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn someone_the_mapping_gives_no_role_signs_in_once_an_admin_grants_one() {
    let rig = rig(|_| {}).await;
    let base = rig.app.base.clone();
    rig.app
        .as_(Role::Admin, None)
        .post(
            "/api/v1/access/nobody.special/grant",
            json!({ "name": "Nobody Special", "role": "team", "team": "DN", "reason": "joined district nursing" }),
        )
        .await
        .expect(201);
    let browser = with_session(&base, "nobody.special").await;
    let (status, me) = session(&browser, &base).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "team", "{me}");
    assert_eq!(me["team"], "DN", "{me}");
    let board = browser
        .client
        .get(format!("{base}/api/v1/boards/teams/DN"))
        .send()
        .await
        .unwrap();
    assert_eq!(board.status(), 200);
}

/// A person whose access an admin revoked is refused at sign-in with a
/// page that says so, and gets no session, whatever the provider says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn someone_whose_access_was_revoked_is_told_so_at_sign_in_and_gets_no_session() {
    let rig = rig(|_| {}).await;
    rig.app
        .as_(Role::Admin, None)
        .post(
            "/api/v1/access/wendy.ward/revoke",
            json!({ "reason": "left the trust" }),
        )
        .await
        .expect(200);
    refused_at_sign_in(&rig, "wendy.ward", "access to Baton has been withdrawn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_whose_state_is_not_this_browsers_is_refused_with_a_page() {
    let rig = rig(|_| {}).await;
    let (browser, callback) = signed_in_at_provider(&rig.app.base, "wendy.ward", "/").await;
    let code = query_value(&callback, "code");
    let forged = format!("{}/auth/callback?code={code}&state=forged", rig.app.base);
    let page = browser.get(&forged).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("not started in this browser"),
        "{}",
        page.body
    );
    // Nor does the real answer work in another browser (login forgery).
    let elsewhere = Browser::new().get(&callback).await;
    assert_eq!(elsewhere.status, 400);
    assert!(session_cookie(&elsewhere.set_cookies).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_answer_replayed_is_refused_with_a_page() {
    let rig = rig(|_| {}).await;
    let (browser, callback) = signed_in_at_provider(&rig.app.base, "wendy.ward", "/").await;
    // The login cookie is cleared by the first use; a replaying attacker
    // would also have it, so send it by hand.
    let state = query_value(&callback, "state");
    assert_eq!(browser.get(&callback).await.status, 303);
    let again = reqwest::Client::new()
        .get(&callback)
        .header("Cookie", format!("baton_login={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 400);
    let body = again.text().await.unwrap();
    assert!(body.contains("used already"), "{body}");
}

/// A used code under a fresh state of this browser's passes Baton's own
/// checks and reaches the provider, which refuses it: that refusal is a
/// page too, and no session is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_the_provider_refuses_is_refused_with_a_page() {
    let rig = rig(|_| {}).await;
    let base = rig.app.base.clone();
    let (browser, first) = signed_in_at_provider(&base, "wendy.ward", "/").await;
    assert_eq!(browser.get(&first).await.status, 303);
    let used_code = query_value(&first, "code");
    let second = browser.sign_in_at_provider(&base, "wendy.ward", "/").await;
    let fresh_state = query_value(&second, "state");
    let page = browser
        .get(&format!(
            "{base}/auth/callback?code={used_code}&state={fresh_state}"
        ))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body
            .contains("The identity provider refused this sign-in"),
        "{}",
        page.body
    );
    assert!(session_cookie(&page.set_cookies).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_id_token_for_another_audience_or_with_a_bad_signature_is_refused_with_a_page() {
    let rig = rig(|_| {}).await;
    for (mode, says) in [("audience", "audience"), ("signature", "signature")] {
        let (browser, callback) = signed_in_at_provider(&rig.app.base, "wendy.ward", "/").await;
        rig.provider().tamper(mode).await;
        let page = browser.get(&callback).await;
        assert_eq!(page.status, 401, "{mode}: {}", page.body);
        assert!(
            page.body.contains("could not be trusted"),
            "{mode}: {}",
            page.body
        );
        assert!(
            page.body.to_lowercase().contains(says),
            "{mode}: {}",
            page.body
        );
        assert!(session_cookie(&page.set_cookies).is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_is_down_gives_a_page_saying_so_and_the_api_still_serves() {
    let mut rig = rig(|_| {}).await;
    rig.provider.take().unwrap().stop().await;
    let page = Browser::new()
        .get(&format!("{}/auth/login?return_to=/ward/W1", rig.app.base))
        .await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("cannot be reached"), "{}", page.body);
    assert!(
        page.body.contains("return_to=%2Fward%2FW1"),
        "{}",
        page.body
    );
    rig.bearer_tokens_still_serve().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_session_ends_and_its_open_live_stream_is_told_and_closed() {
    let rig = rig(|config| config.session_idle_seconds = 3).await;
    let base = rig.app.base.clone();
    let browser = with_session(&base, "wendy.ward").await;
    assert_eq!(session(&browser, &base).await.0, 200);
    let mut stream = browser
        .client
        .get(format!("{base}/api/v1/boards/stream?board=ward:W1"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    // The open stream does not keep the session alive: it is told, then
    // closed, within the idle time and a check.
    let (told, seen) = told_signed_out(&mut stream, Duration::from_secs(15)).await;
    assert!(told, "the stream was not told: {seen}");
    let (status, problem) = session(&browser, &base).await;
    assert_eq!(status, 401, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_out_ends_the_session_here_and_sends_the_browser_to_the_providers_sign_out() {
    let rig = rig(|_| {}).await;
    let base = rig.app.base.clone();
    let browser = with_session(&base, "wendy.ward").await;
    let (_, me) = session(&browser, &base).await;
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    // Another site's sign-out form lacks the token: refused.
    let forged = browser.post_form(&format!("{base}/auth/logout"), &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(session(&browser, &base).await.0, 200);

    let out = browser
        .post_form(&format!("{base}/auth/logout"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let to = out.location.unwrap();
    assert!(to.starts_with(&rig.provider().issuer), "{to}");
    assert!(to.contains("id_token_hint="), "{to}");
    assert!(to.contains("post_logout_redirect_uri="), "{to}");
    assert!(
        out.set_cookies
            .iter()
            .any(|c| c.starts_with("baton_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        out.set_cookies
    );
    assert_eq!(session(&browser, &base).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_a_tls_proxy_the_session_cookie_is_secure() {
    let rig = rig(|config| config.behind_tls_proxy = true).await;
    let (browser, callback) = signed_in_at_provider(&rig.app.base, "wendy.ward", "/").await;
    let back = browser.get(&callback).await;
    let cookie = session_cookie(&back.set_cookies).expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
}

/// A Baton reached at an `https` address sets `Secure` on its session
/// cookie without being told it sits behind a proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reached_over_https_the_session_cookie_is_secure() {
    let rig =
        rig(|config| config.public_url = Some("https://baton.example.nhs.uk".to_owned())).await;
    let token = rig.app.as_(Role::Ward, Some("POOLE")).token.unwrap();
    let opened = Browser::new()
        .client
        .post(format!("{}/auth/session", rig.app.base))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let cookies: Vec<String> = opened
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let cookie = session_cookie(&cookies).expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// However busy its user, a session ends at its absolute lifetime
/// (`session_lifetime_seconds`): each request resets the idle clock, not
/// this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_ends_at_its_absolute_lifetime_however_busy_its_user() {
    const LIFETIME: Duration = Duration::from_secs(3);
    let rig = rig(|config| {
        config.session_lifetime_seconds = LIFETIME.as_secs();
        config.session_idle_seconds = 900;
    })
    .await;
    let base = rig.app.base.clone();
    let (browser, callback) = signed_in_at_provider(&base, "wendy.ward", "/").await;
    let opened = std::time::Instant::now();
    assert_eq!(browser.get(&callback).await.status, 303);
    let deadline = opened + LIFETIME + Duration::from_secs(10);
    let mut last_served = Duration::ZERO;
    let ended = loop {
        let (status, body) = session(&browser, &base).await;
        let at = opened.elapsed();
        match status {
            200 => last_served = at,
            401 => break at,
            other => panic!("{other}: {body}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its lifetime"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Served up to its lifetime (a request every 200 ms), then never again.
    assert!(
        last_served + Duration::from_millis(800) >= LIFETIME,
        "ended early: last served at {last_served:?}"
    );
    assert!(
        ended >= LIFETIME - Duration::from_millis(100),
        "ended at {ended:?}"
    );
    assert_eq!(session(&browser, &base).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_provider_configured_the_development_sign_in_is_off() {
    let rig = rig(|_| {}).await;
    let anonymous = rig.app.anonymous();
    assert_eq!(
        anonymous.get("/api/v1/dev/sign-in").await.expect(200).body["enabled"],
        false
    );
    let options = anonymous.get("/auth/options").await.expect(200).body;
    assert_eq!(options["provider"], rig.provider().issuer.as_str());
    assert_eq!(options["development"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_goes_down_before_the_code_is_exchanged_gives_a_page_saying_so() {
    let mut rig = rig(|_| {}).await;
    let browser = Browser::new();
    let callback = browser
        .sign_in_at_provider(&rig.app.base, "wendy.ward", "/ward/W1")
        .await;
    rig.provider.take().unwrap().stop().await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("cannot be reached"), "{}", page.body);
    assert!(session_cookie(&page.set_cookies).is_none());
}
