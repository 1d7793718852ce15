//! A real OpenID provider for the sign-in tests (panva's OpenID Certified
//! `oidc-provider` from npm, run by Node: `tests/browser/oidc-provider.mjs`),
//! and a browser-less user who signs in through its login form.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running provider; stopped when dropped.
#[allow(missing_debug_implementations)] // holds a child process
pub struct TestProvider {
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    child: Child,
}

/// The client Baton is registered as.
pub const CLIENT_ID: &str = "baton";
/// Its secret.
pub const CLIENT_SECRET: &str = "baton-secret";

impl TestProvider {
    /// Starts a provider that knows Baton at `baton_url` (its callback and
    /// the page after sign-out). Fails loudly without Node or the npm
    /// modules (`npm ci --prefix tests/browser`, as `.ci/run` does).
    pub async fn start(baton_url: &str) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/browser");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the OpenID provider is not installed: run `npm ci --prefix tests/browser` (bash .ci/run does)"
        );
        let mut child = Command::new("node")
            .arg("oidc-provider.mjs")
            .current_dir(dir)
            .env("BATON_URL", baton_url)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("could not run node: the sign-in tests need Node.js 20 or later");
        let stdout = child.stdout.take().expect("the provider's output");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("the provider's output") {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return issuer.trim().to_owned();
                }
            }
            panic!("the OpenID provider exited before it was ready");
        })
        .await
        .expect("the OpenID provider did not start within 60 s");
        // Keep reading so that its output never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { issuer, child }
    }

    /// The next token response carries a broken ID token: `signature`
    /// (one character of the signature changed) or `audience` (validly
    /// signed, for another client).
    pub async fn tamper(&self, mode: &str) {
        let status = reqwest::Client::new()
            .post(format!("{}/test/tamper?mode={mode}", self.issuer))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
    }

    /// Stops it (a provider that is down).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A user with a browser's cookie jar who follows redirects by hand, so a
/// test can stop at any step of the flow.
#[derive(Debug, Clone)]
pub struct Browser {
    /// Cookies of Baton and the provider alike.
    pub client: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// One answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// GETs `url` (no redirect followed).
    pub async fn get(&self, url: &str) -> Page {
        page(self.client.get(url).send().await.unwrap()).await
    }

    /// POSTs a form to `url` (no redirect followed).
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Page {
        page(self.client.post(url).form(form).send().await.unwrap()).await
    }

    /// Signs in at Baton (`baton` its base URL) through the provider as
    /// `login`, stopping at the provider's redirect back to Baton: returns
    /// that callback URL, not yet visited.
    pub async fn sign_in_at_provider(&self, baton: &str, login: &str, return_to: &str) -> String {
        let start = self
            .get(&format!("{baton}/auth/login?return_to={return_to}"))
            .await;
        assert_eq!(start.status, 303, "GET /auth/login: {}", start.body);
        let mut next = start.location.expect("a redirect to the provider");
        for _ in 0..10 {
            if next.starts_with(baton) {
                return next;
            }
            let answer = self.get(&next).await;
            match answer.status {
                301..=303 | 307 | 308 => {
                    let location = answer.location.expect("a redirect's location");
                    next = absolute(&next, &location);
                }
                200 => {
                    // The provider's login form: any login, any password.
                    let action = form_action(&answer.body).expect("a login form");
                    let submitted = self
                        .post_form(
                            &absolute(&next, &action),
                            &[("prompt", "login"), ("login", login), ("password", "x")],
                        )
                        .await;
                    assert!(
                        (301..=303).contains(&submitted.status),
                        "the login form answered {}: {}",
                        submitted.status,
                        submitted.body
                    );
                    next = absolute(&next, &submitted.location.expect("a redirect"));
                }
                other => panic!("the provider answered {other}: {}", answer.body),
            }
        }
        panic!("the provider never sent the browser back to Baton");
    }
}

async fn page(response: reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let set_cookies = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let body = response.text().await.unwrap_or_default();
    Page {
        status,
        location,
        set_cookies,
        body,
    }
}

/// `location` read against the URL it was found at.
fn absolute(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(location))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| location.to_owned())
}

/// The `action` of the first form in `html`.
fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let at = rest.find("action=\"")? + "action=\"".len();
    let end = rest[at..].find('"')? + at;
    Some(rest[at..end].replace("&amp;", "&"))
}

/// The role mapping the sign-in tests run with, as README.md's worked
/// example does (its path from the repository's root): the provider's
/// groups become team REAB-E, trust UHD's wards, hub DORSET-HUB and the
/// system role.
pub const RULES_FILE: &str = "tests/browser/oidc-roles.toml";

/// Baton on the embedded stack (reference data seeded), signing its pages
/// in through a fresh provider with the mapping of [`RULES_FILE`]; `tune` adjusts the
/// configuration (session times, cookies).
pub async fn app_with_provider(
    tune: impl FnOnce(&mut infra::config::Config),
) -> (crate::http::TestApp, TestProvider) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = TestProvider::start(&base).await;
    let data_dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(RULES_FILE);
    let mut config = infra::config::Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: data_dir.path().to_path_buf(),
        oidc_issuer: Some(provider.issuer.clone()),
        oidc_client_id: Some(CLIENT_ID.to_owned()),
        oidc_client_secret: Some(CLIENT_SECRET.into()),
        public_url: Some(base),
        role_mapping_file: Some(rules),
        ..infra::config::Config::default()
    };
    tune(&mut config);
    let app = crate::http::TestApp::start_on(listener, config, data_dir, None, None).await;
    app.seed_reference().await;
    app.seed_scopes().await;
    seed_mapped_codes(&app).await;
    (app, provider)
}

/// The team and hub [`RULES_FILE`] names (the demo's codes) beside the test
/// reference data: REAB-E, and DORSET-HUB for all three hospitals.
async fn seed_mapped_codes(app: &crate::http::TestApp) {
    let admin = app.as_(infra::auth::Role::Admin, None);
    admin
        .put(
            "/api/v1/teams/REAB-E",
            serde_json::json!({ "name": "Reablement East Dorset", "services": ["reablement"], "response_sla_minutes": 120 }),
        )
        .await
        .expect(200);
    admin
        .put(
            "/api/v1/hubs/DORSET-HUB",
            serde_json::json!({ "name": "Dorset care transfer hub", "hospitals": ["POOLE", "RBH", "DCH"] }),
        )
        .await
        .expect(200);
}
