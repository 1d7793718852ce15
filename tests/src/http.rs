//! The real Baton application, spawned per test on port 0, and a client
//! that speaks its HTTP API with tokens of each role.

use std::sync::Arc;
use std::time::Duration;

use api::app::Application;
use infra::auth::{Principal, Role, ScopeClaims};
use infra::config::Config;
use infra::runner::Boards;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::nats::NatsServer;
use crate::postgres::TestDatabase;

/// Which stack a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite and the local log (the newcomer's default).
    Embedded,
    /// PostgreSQL and NATS JetStream.
    Production,
}

/// A running Baton.
#[allow(missing_debug_implementations)] // holds servers and tasks
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A plain client.
    pub client: reqwest::Client,
    /// Its boards, to wait on.
    pub boards: Arc<Boards>,
    /// Its configuration (to start another process on the same data).
    pub config: Config,
    /// Its command bus (benchmarks compare it with HTTP).
    pub bus: Arc<infra::commands::CommandBus>,
    /// The MLLP listener's port, when `mllp_listen` is set.
    pub mllp: Option<u16>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Kept alive for the app's lifetime.
    pub data_dir: Arc<tempfile::TempDir>,
    /// The PostgreSQL database, in production mode.
    pub pg: Option<Arc<TestDatabase>>,
    /// The NATS server, in production mode.
    pub nats: Option<Arc<NatsServer>>,
}

impl TestApp {
    /// A fresh Baton on `stack`, with no data.
    pub async fn spawn(stack: Stack) -> Self {
        Self::spawn_with(stack, |_| {}).await
    }

    /// A fresh Baton on `stack`, its configuration changed by `tweak` first.
    pub async fn spawn_with(stack: Stack, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        let mut config = Config {
            listen: "127.0.0.1:0".to_owned(),
            data_dir: data_dir.path().to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        let (mut pg, mut nats) = (None, None);
        if stack == Stack::Production {
            let db = Arc::new(TestDatabase::create().await);
            let server = Arc::new(NatsServer::start().await);
            config.database_url = Some(db.url.clone().into());
            config.nats_url = Some(server.url().into());
            pg = Some(db);
            nats = Some(server);
        }
        Self::start(config, data_dir, pg, nats).await
    }

    /// A fresh Baton on `stack` with the reference data of
    /// [`TestApp::seed_reference`], as most tests begin.
    pub async fn seeded(stack: Stack) -> Self {
        let app = Self::spawn(stack).await;
        app.seed_reference().await;
        app
    }

    /// Another Baton process on the same data (same database, same NATS).
    pub async fn sibling(&self) -> Self {
        Self::start(
            self.config.clone(),
            self.data_dir.clone(),
            self.pg.clone(),
            self.nats.clone(),
        )
        .await
    }

    /// Starts Baton with `config`.
    pub async fn start(
        config: Config,
        data_dir: Arc<tempfile::TempDir>,
        pg: Option<Arc<TestDatabase>>,
        nats: Option<Arc<NatsServer>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(&config.listen).await.unwrap();
        Self::start_on(listener, config, data_dir, pg, nats).await
    }

    /// Starts Baton with `config` on a listener already bound (a test
    /// that must tell another server Baton's address first).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: Config,
        data_dir: Arc<tempfile::TempDir>,
        pg: Option<Arc<TestDatabase>>,
        nats: Option<Arc<NatsServer>>,
    ) -> Self {
        let app = Application::build_on(config.clone(), listener)
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let boards = app.boards();
        let bus = app.bus();
        let mllp = app.mllp_port();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            client: reqwest::Client::new(),
            boards,
            config,
            bus,
            mllp,
            shutdown: Some(shutdown),
            task: Some(task),
            data_dir,
            pg,
            nats,
        }
    }

    /// Stops this process, then starts another on the same data: a restart.
    pub async fn sibling_after_stop(self) -> Self {
        let (config, data_dir, pg, nats) = (
            self.config.clone(),
            self.data_dir.clone(),
            self.pg.clone(),
            self.nats.clone(),
        );
        self.stop().await;
        Self::start(config, data_dir, pg, nats).await
    }

    /// Stops it gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("Baton did not stop within 30 s")
                .unwrap();
        }
    }

    /// Runs `statement` on this app's database, beside Baton (tests that
    /// store what Baton would not, or damage what it stored).
    pub async fn execute_sql(&self, statement: &str) {
        match &self.pg {
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            None => {
                let path = self.data_dir.path().join("baton.sqlite");
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
        }
    }

    /// A second handle on this app's database, beside Baton (a writer or
    /// reader that is not Baton).
    pub async fn database(&self) -> infra::store::Database {
        match &self.pg {
            Some(pg) => infra::store::Database::postgres(&pg.url, 2).unwrap(),
            None => infra::store::Database::sqlite(self.data_dir.path())
                .await
                .unwrap(),
        }
    }

    /// The text at `path` (the docs, `/metrics`), read without a token.
    pub async fn text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A token of the local key; `scope` is the role's own (a ward's
    /// hospital, a team, a hub).
    pub fn token(&self, role: Role, scope: Option<&str>) -> String {
        let own = |wanted: Role| scope.filter(|_| role == wanted).map(str::to_owned);
        let claims = ScopeClaims {
            hospital: own(Role::Ward),
            team: own(Role::Team),
            hub: own(Role::Hub),
            ..ScopeClaims::default()
        };
        self.token_with(role, scope.unwrap_or("all"), claims)
    }

    /// A token of the local key with these scope claims.
    pub fn token_with(&self, role: Role, label: &str, claims: ScopeClaims) -> String {
        let principal = Principal::scoped(
            format!("{role}-{label}"),
            format!("Test {role}"),
            role,
            claims,
        )
        .unwrap();
        infra::auth::sign_local(&self.config.data_dir, &principal, Duration::from_secs(3600))
            .unwrap()
    }

    /// A ward token for every hospital of `trust`.
    pub fn as_trust(&self, trust: &str) -> Client {
        let claims = ScopeClaims {
            trust: Some(trust.to_owned()),
            ..ScopeClaims::default()
        };
        Client {
            base: self.base.clone(),
            client: self.client.clone(),
            token: Some(self.token_with(Role::Ward, trust, claims)),
            csrf: None,
        }
    }

    /// A token for `role` scoped to `scope`.
    pub fn as_(&self, role: Role, scope: Option<&str>) -> Client {
        Client {
            base: self.base.clone(),
            client: self.client.clone(),
            token: Some(self.token(role, scope)),
            csrf: None,
        }
    }

    /// A client with no token.
    pub fn anonymous(&self) -> Client {
        Client {
            base: self.base.clone(),
            client: self.client.clone(),
            token: None,
            csrf: None,
        }
    }

    /// Loads hospitals POOLE and DCH, wards W1, W2 (POOLE) and X1 (DCH) of
    /// 30 beds, teams REAB (reablement, 2 h SLA) and DN (district nursing).
    pub async fn seed_reference(&self) {
        let admin = self.as_(Role::Admin, None);
        for (code, name) in [
            ("POOLE", "Poole Hospital"),
            ("DCH", "Dorset County Hospital"),
        ] {
            admin
                .put(
                    &format!("/api/v1/hospitals/{code}"),
                    json!({ "name": name }),
                )
                .await
                .ok();
        }
        for (code, hospital) in [("W1", "POOLE"), ("W2", "POOLE"), ("X1", "DCH")] {
            admin
                .put(
                    &format!("/api/v1/wards/{code}"),
                    json!({ "name": format!("Ward {code}"), "hospital": hospital, "beds": 30 }),
                )
                .await
                .ok();
        }
        admin
            .put(
                "/api/v1/teams/REAB",
                json!({ "name": "Reablement East", "services": ["reablement", "home_care"], "response_sla_minutes": 120 }),
            )
            .await
            .ok();
        admin
            .put(
                "/api/v1/teams/DN",
                json!({ "name": "District Nursing", "services": ["district_nursing"], "response_sla_minutes": 240 }),
            )
            .await
            .ok();
    }

    /// On top of [`Self::seed_reference`]: Poole and the Royal Bournemouth
    /// (ward R1) run by one trust (`UHD`), Dorset County by another
    /// (`DCHFT`), and care transfer hubs for Poole and the Royal Bournemouth
    /// (`EAST`) and for Dorset County (`WEST`).
    pub async fn seed_scopes(&self) {
        let admin = self.as_(Role::Admin, None);
        for (code, name, trust) in [
            ("POOLE", "Poole Hospital", "UHD"),
            ("RBH", "Royal Bournemouth Hospital", "UHD"),
            ("DCH", "Dorset County Hospital", "DCHFT"),
        ] {
            admin
                .put(
                    &format!("/api/v1/hospitals/{code}"),
                    json!({ "name": name, "trust": trust }),
                )
                .await
                .expect(200);
        }
        admin
            .put(
                "/api/v1/wards/R1",
                json!({ "name": "Ward R1", "hospital": "RBH", "beds": 30 }),
            )
            .await
            .expect(200);
        admin
            .put(
                "/api/v1/hubs/WEST",
                json!({ "name": "West Dorset care transfer hub", "hospitals": ["DCH"] }),
            )
            .await
            .expect(200);
        admin
            .put(
                "/api/v1/hubs/EAST",
                json!({ "name": "East Dorset care transfer hub", "hospitals": ["POOLE", "RBH"] }),
            )
            .await
            .expect(200);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An answer: status, headers and JSON body (or `Value::Null`).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body, parsed when JSON.
    pub body: Value,
    /// ETag, if any.
    pub etag: Option<String>,
}

impl Answer {
    /// Panics unless the status is `status`, showing the body.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected answer: {:#}", self.body);
        self
    }

    /// Status 2xx or panic.
    pub fn ok(self) -> Self {
        assert!(
            (200..300).contains(&self.status),
            "unexpected answer {}: {:#}",
            self.status,
            self.body
        );
        self
    }

    /// The consistency token of a command's answer.
    pub fn token(&self) -> String {
        self.body["consistency_token"].as_str().unwrap().to_owned()
    }

    /// The id of a command's answer.
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap().to_owned()
    }
}

/// A client signed in as one principal.
#[derive(Debug, Clone)]
pub struct Client {
    /// Base URL.
    pub base: String,
    client: reqwest::Client,
    /// Its bearer token.
    pub token: Option<String>,
    /// A page session's anti-forgery token, sent as `X-CSRF-Token`.
    csrf: Option<String>,
}

impl Client {
    /// A signed-in page's requests: `client` holds the session cookie
    /// (`oidc::Browser`), `csrf` the session's anti-forgery token.
    pub fn of_session(base: &str, client: reqwest::Client, csrf: Option<String>) -> Self {
        Self {
            base: base.to_owned(),
            client,
            token: None,
            csrf,
        }
    }

    /// Sends a request with optional JSON body and extra headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        read(response).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    /// Admits patient `n` to bed `bed` of `ward` (an [`admission`]), which
    /// must be answered 201.
    pub async fn admit(&self, n: u32, ward: &str, bed: u32) -> Answer {
        self.post("/api/v1/spells", admission(n, ward, bed))
            .await
            .expect(201)
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    /// GET `path` once the boards have caught up with the command that
    /// answered `after` (its consistency token).
    pub async fn get_after(&self, path: &str, after: &Answer) -> Answer {
        let joint = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{joint}consistency_token={}", after.token()))
            .await
    }

    /// Opens a live board stream.
    pub async fn stream(&self, board: &str) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}/api/v1/boards/stream?board={board}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

/// Reads an answer.
pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
        etag,
    }
}

/// Server-sent events read from a response, one at a time.
#[allow(missing_debug_implementations)] // holds a response
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Reads events from `response`.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (name and JSON data), or panic after `within`.
    pub async fn next(&mut self, within: Duration) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_owned();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).unwrap_or(Value::Null));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("no event in time")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for an event (name and data) that satisfies `condition`.
    pub async fn until_event(
        &mut self,
        within: Duration,
        condition: impl Fn(&str, &Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (name, data) = self.next(left).await;
            if condition(&name, &data) {
                return data;
            }
        }
    }

    /// Waits for a `change` event whose board satisfies `condition`.
    pub async fn until(&mut self, within: Duration, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (_, data) = self.next(left).await;
            if condition(&data["board"]) {
                return data;
            }
        }
    }
}

/// Reads a live stream until the server says `event: signed-out`: whether it
/// did within `within` (before the stream ended), and what was read.
pub async fn told_signed_out(stream: &mut reqwest::Response, within: Duration) -> (bool, String) {
    let mut seen = String::new();
    let told = tokio::time::timeout(within, async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: signed-out") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    (told, seen)
}

/// An admission body for bed `bed` of `ward`, patient number `n`.
pub fn admission(n: u32, ward: &str, bed: u32) -> Value {
    json!({
        "nhs_number": crate::fixtures::nhs_number(n).digits(),
        "family_name": format!("Patient{n}"),
        "given_name": "Alex",
        "date_of_birth": "1941-03-02",
        "ward": ward,
        "bed": bed.to_string(),
        "admitted_at": (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339(),
    })
}
