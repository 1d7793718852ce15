//! The application: built from a configuration, bound before it serves (so
//! tests bind port 0 and read the port), and stopped gracefully: in-flight
//! requests finish, live streams end, then the runner, the SLA clock and
//! the relay stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use infra::auth::{AuthError, Authenticator};
use infra::config::Config;
use infra::pipeline::{Pipeline, PipelineError};
use infra::runner::{Boards, Runner};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::openapi::{render_docs, ApiDoc};
use crate::routes;
use crate::state::{AppState, Settings};

/// How often the SLA clock looks for referrals past their response time.
const SLA_CLOCK_EVERY: Duration = Duration::from_secs(30);
/// How often reference data changed by other processes is picked up.
const REFERENCE_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Why Baton could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The event store, relay or feed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The token verifier.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A setting that cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listening address.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A built, bound Baton.
#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    port: u16,
    router: Router,
    limits: crate::server::Limits,
    state: AppState,
    pipeline: Pipeline,
    closing: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    mllp_port: Option<u16>,
}

impl AppError {
    /// True when Baton could not start because its database cannot be
    /// reached (yet): down, refusing connections, or still recovering after
    /// a crash. `baton serve` then answers "not ready" and tries again.
    pub fn is_store_unreachable(&self) -> bool {
        use infra::reference::ReferenceStoreError;
        use infra::store::StoreError;
        // Not a wrong password, a missing database or a bad migration:
        // those are for the operator, and Baton stops saying so.
        let unreachable = |e: &sqlx::Error| match e {
            // Refused, reset, timed out, or a peer that hung up mid-greeting
            // (a proxy or load balancer in front of a server that is down).
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_) => true,
            // Connection exceptions (08...), and cannot_connect_now,
            // admin_shutdown, crash_shutdown: a server starting up,
            // recovering after a crash or going down.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        };
        match self {
            AppError::Pipeline(PipelineError::Store(store)) => match store {
                StoreError::Connect(e) | StoreError::Query(e) => unreachable(e),
                StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => unreachable(e),
                StoreError::Migrate(_) | StoreError::DataDir { .. } => false,
            },
            AppError::Pipeline(PipelineError::Reference(ReferenceStoreError::Database(e))) => {
                unreachable(e)
            }
            _ => false,
        }
    }
}

impl Application {
    /// Opens the store, starts relay, runner and SLA clock, and binds.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|source| AppError::Bind {
                address: config.listen.clone(),
                source,
            })?;
        Self::build_on(config, listener).await
    }

    /// As [`Application::build`], on a listener already bound.
    pub async fn build_on(
        config: Config,
        listener: tokio::net::TcpListener,
    ) -> Result<Self, AppError> {
        // Settings first: a bad one must not leave started tasks behind.
        let trusted_proxies = config.trusted_proxy_addresses().map_err(AppError::Config)?;
        let signin = Arc::new(sign_in(&config)?);
        if let Some(oidc) = &signin.oidc {
            tracing::info!(
                issuer = oidc.issuer(),
                "the pages sign in through an identity provider"
            );
        }
        let pipeline = Pipeline::start(&config).await?;
        tracing::info!(mode = %pipeline.mode, "Baton is starting");
        let auth = Authenticator::from_config(&config).await?;
        tracing::info!(trust = %auth.describe(), "sign-in");
        let boards = Boards::new();
        let (stop, stopped) = watch::channel(false);
        let (closing, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let runner = Runner::new(boards.clone(), pipeline.feed.clone(), pipeline.db.clone());
        tasks.push(tokio::spawn(runner.run(stopped.clone())));
        tasks.push(tokio::spawn(infra::sla::run(
            boards.clone(),
            pipeline.bus.clone(),
            SLA_CLOCK_EVERY,
            stopped.clone(),
        )));
        tasks.push(tokio::spawn(reload_reference(
            pipeline.reference.clone(),
            stopped.clone(),
        )));
        let mut settings = Settings {
            trusted_proxies,
            ..Settings::default()
        };
        // The development sign-in mints tokens for anyone who asks: only on
        // the embedded default, with the local key, listening on loopback.
        if config.database_url.is_none()
            && auth.is_local()
            && signin.oidc.is_none()
            && is_loopback(&config.listen)
        {
            settings.dev_sign_in = Some(config.data_dir.clone());
        }
        // The PAS's ADT feed (issue 16): always built (admins retry held
        // messages through it), listening only when BATON_MLLP_LISTEN is set.
        let feed_metrics = infra::hl7::FeedMetrics::default();
        let adt = infra::hl7::AdtFeed::new(
            pipeline.bus.clone(),
            pipeline.reference.clone(),
            pipeline.db.clone(),
            feed_metrics.clone(),
        );
        let mut mllp_port = None;
        if let Some(address) = &config.mllp_listen {
            let mllp = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| AppError::Bind {
                    address: address.clone(),
                    source,
                })?;
            mllp_port = mllp.local_addr().ok().map(|a| a.port());
            tracing::info!(address = %address, port = ?mllp_port, "the HL7 v2 MLLP listener is on");
            tasks.push(tokio::spawn(infra::hl7::listener::serve(
                mllp,
                adt.clone(),
                closing.subscribe(),
            )));
        }
        let http_metrics = HttpMetrics::default();
        let connections = Arc::new(crate::server::ConnectionStats::default());
        let state = AppState::new(crate::state::Shared {
            bus: pipeline.bus.clone(),
            boards: boards.clone(),
            reference: pipeline.reference.clone(),
            db: pipeline.db.clone(),
            feed: pipeline.feed.clone(),
            auth,
            signin,
            metrics: Arc::new({
                let mut registry = crate::metrics::registry(
                    pipeline.metrics.clone(),
                    boards.clone(),
                    &http_metrics,
                    &connections,
                );
                feed_metrics.register(&mut registry);
                registry
            }),
            adt,
            http_metrics,
            connections,
            settings: Arc::new(settings),
            closing: closing.subscribe(),
        });
        tasks.push(tokio::spawn(crate::fhir::subscription::run(
            state.clone(),
            stopped,
        )));
        let limits = connection_limits(&config, &state.settings.trusted_proxies);
        let router = router(state.clone());
        let port = listener
            .local_addr()
            .map_err(|source| AppError::Bind {
                address: config.listen.clone(),
                source,
            })?
            .port();
        Ok(Self {
            listener,
            port,
            router,
            limits,
            state,
            pipeline,
            closing,
            stop,
            tasks,
            mllp_port,
        })
    }

    /// The MLLP listener's port, when it listens.
    pub fn mllp_port(&self) -> Option<u16> {
        self.mllp_port
    }

    /// The port bound (useful when configured as 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The live boards (tests wait on them).
    pub fn boards(&self) -> Arc<Boards> {
        self.state.boards.clone()
    }

    /// The command bus (benchmarks compare it with HTTP).
    pub fn bus(&self) -> Arc<infra::commands::CommandBus> {
        self.state.bus.clone()
    }

    /// Serves until `shutdown` resolves, then stops everything in order.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self {
            listener,
            router,
            limits,
            state,
            pipeline,
            closing,
            stop,
            tasks,
            ..
        } = self;
        tracing::info!(address = ?listener.local_addr().ok(), "listening");
        let (stop_serving, serving) = watch::channel(false);
        let closing_signal = closing.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            // Live streams never finish by themselves: end them.
            let _ = closing_signal.send(true);
            let _ = stop_serving.send(true);
        });
        let served =
            crate::server::serve(listener, router, limits, state.connections.clone(), serving)
                .await;
        let _ = closing.send(true);
        let _ = stop.send(true);
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a background task ended abnormally");
            }
        }
        pipeline.stop().await;
        tracing::info!("stopped");
        served.map_err(AppError::Serve)
    }
}

/// Open files Baton keeps for itself beyond its HTTP connections: the
/// database pool, NATS, the SQLite files, logs.
const FILES_KEPT_BACK: u64 = 256;

/// The connection limits, with the total kept below the open-file limit
/// (raised first to the hard limit, as Go's runtime does): past it `accept`
/// fails and nothing, not even `/healthz`, is answered.
fn connection_limits(
    config: &Config,
    trusted_proxies: &[std::net::IpAddr],
) -> crate::server::Limits {
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = files.saturating_sub(FILES_KEPT_BACK).max(files / 2).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    let max_connections = config.max_connections.clamp(1, room);
    if max_connections < config.max_connections {
        tracing::warn!(
            configured = config.max_connections,
            open_file_limit = files,
            max_connections,
            "fewer HTTP connections than configured: the open-file limit is lower"
        );
    }
    crate::server::Limits {
        max_connections,
        max_connections_per_client: config.max_connections_per_client.max(1),
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds.max(1)),
        idle_timeout: Duration::from_secs(config.idle_timeout_seconds.max(1)),
        shared_addresses: trusted_proxies.to_vec(),
    }
}

/// True for a listening address only this machine can reach.
/// The pages' sign-in, from config: the identity provider when
/// `oidc_issuer` is set (with a client id, and the public URL the
/// provider sends users back to), the admin's role mapping, session times
/// and whether cookies are `Secure`.
fn sign_in(config: &Config) -> Result<crate::signin::SignIn, AppError> {
    let set = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let public_url = set(&config.public_url);
    let oidc = match set(&config.oidc_issuer) {
        None => None,
        Some(issuer) => {
            let client_id = set(&config.oidc_client_id).ok_or_else(|| {
                AppError::Config("oidc_issuer is set without oidc_client_id".to_owned())
            })?;
            let public_url = public_url.clone().ok_or_else(|| {
                AppError::Config(
                    "oidc_issuer is set without public_url (where the provider sends users back to)"
                        .to_owned(),
                )
            })?;
            let secret = config
                .oidc_client_secret
                .clone()
                .filter(|s| !s.expose().trim().is_empty());
            Some(
                infra::auth::oidc::Oidc::new(&issuer, &client_id, secret, &public_url)
                    .map_err(|e| AppError::Config(e.to_string()))?,
            )
        }
    };
    let mapping = match config.role_mapping_file.as_ref() {
        Some(path) => infra::auth::mapping::RoleMapping::load(path)
            .map_err(|e| AppError::Config(e.to_string()))?,
        None => infra::auth::mapping::RoleMapping::default(),
    };
    if config.session_idle_seconds == 0 || config.session_lifetime_seconds == 0 {
        return Err(AppError::Config(
            "session_idle_seconds and session_lifetime_seconds must be above 0".to_owned(),
        ));
    }
    let secure_cookies = config.behind_tls_proxy
        || public_url
            .as_deref()
            .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://"));
    Ok(crate::signin::SignIn {
        sessions: infra::auth::session::Sessions::new(
            Duration::from_secs(config.session_idle_seconds),
            Duration::from_secs(config.session_lifetime_seconds),
        ),
        oidc,
        mapping,
        secure_cookies,
    })
}

fn is_loopback(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(address) => address.ip().is_loopback(),
        Err(_) => listen.starts_with("localhost:"),
    }
}

async fn reload_reference(
    reference: Arc<infra::reference::ReferenceStore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REFERENCE_RELOAD_EVERY) => {
                if let Err(error) = reference.reload().await {
                    tracing::debug!(%error, "could not reload reference data");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// What Baton serves while it cannot reach its event store yet: alive, not
/// ready, and a plain 503 (a page for browsers) for everything else, so a
/// load balancer and the staff both see it is coming up rather than gone.
pub fn starting_router() -> Router {
    async fn readyz() -> Response {
        let body = routes::ops::Readiness::starting();
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
    async fn other(request: Request) -> Response {
        if crate::pages::wants_page(request.headers()) {
            let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                <meta http-equiv=\"refresh\" content=\"5\"><title>Baton is starting</title></head>\
                <body><main><h1>Baton is starting</h1><p>It cannot reach its event store yet and \
                keeps trying by itself. This page reloads every 5 seconds.</p></main></body></html>";
            let mut response =
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        ApiError::Unavailable("Baton is starting: its event store cannot be reached yet".into())
            .into_response()
    }
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "starting" })) }),
        )
        .route("/readyz", get(readyz))
        .fallback(other)
}

/// Serves [`starting_router`] on `listener`, within the configured
/// connection limits, until `stop` turns true.
pub async fn serve_starting(
    config: &Config,
    listener: tokio::net::TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), AppError> {
    // A bad proxy list is reported by the real start; here it only widens
    // no one's share.
    let proxies = config.trusted_proxy_addresses().unwrap_or_default();
    crate::server::serve(
        listener,
        starting_router(),
        connection_limits(config, &proxies),
        Arc::default(),
        stop,
    )
    .await
    .map_err(AppError::Serve)
}

/// The whole HTTP surface: API, operations, OpenAPI and docs.
pub fn router(state: AppState) -> Router {
    let (api, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::router())
        .merge(routes::ops::router())
        .merge(crate::pages::api_router())
        .split_for_parts();
    let mut document = document;
    crate::openapi::complete(&mut document);
    let document = Arc::new(document);
    let docs = Arc::new(render_docs(&document));
    let limit = state.settings.body_limit;
    Router::new()
        .merge(api)
        .merge(crate::pages::router())
        .merge(crate::signin::router())
        .nest(crate::fhir::BASE, crate::fhir::router())
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let docs = docs.clone();
                async move { Html(docs.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        // What every answer goes through, outermost first. As
        // `Router::layer`s they run once a route is matched, so
        // `MatchedPath` is known.
        .layer(
            tower::ServiceBuilder::new()
                // tower-http's `SetRequestId` keeps any id already there:
                // an unsafe one is dropped first, so a UUID is minted.
                .map_request(keep_only_a_safe_request_id)
                .layer(SetRequestIdLayer::new(
                    HeaderName::from_static(REQUEST_ID),
                    MakeRequestUuid,
                ))
                .layer(
                    TraceLayer::new_for_http()
                        // Whatever a handler logs carries the request id.
                        .make_span_with(|request: &Request| {
                            let id = request
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            tracing::info_span!("request", request_id = %id)
                        })
                        .on_request(())
                        .on_response(|response: &Response, latency, _: &tracing::Span| {
                            log_request(response, latency);
                        })
                        // A 5xx is in the request's own line already (and an
                        // internal error logged where it happened).
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
                    REQUEST_ID,
                )))
                // Patient data must not linger in caches unless an answer
                // says otherwise.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    answer_and_count,
                )),
        )
        .with_state(state)
}

const REQUEST_ID: &str = "x-request-id";

/// A client's `X-Request-Id` is kept (to trace a request across systems)
/// only when it is a short token of safe characters; anything else (markup,
/// spaces, a paragraph) would be written into the log and the access log as
/// given, so Baton mints its own instead.
pub fn is_safe_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes a client's `X-Request-Id` unless [`is_safe_request_id`] keeps
/// it (the first one, if several were sent).
fn keep_only_a_safe_request_id(mut request: Request) -> Request {
    let kept = request
        .headers()
        .get(REQUEST_ID)
        .filter(|v| v.to_str().is_ok_and(is_safe_request_id))
        .cloned();
    let headers = request.headers_mut();
    headers.remove(REQUEST_ID);
    if let Some(id) = kept {
        headers.insert(REQUEST_ID, id);
    }
    request
}

/// How `TraceLayer`'s answer callback learns the method and route: it is
/// given the response alone.
#[derive(Debug, Clone)]
struct Answered {
    method: Method,
    route: Option<MatchedPath>,
}

/// One structured line per request: id, method, route template (never the
/// raw path or query, which carry ids and tokens), status and latency, as
/// fields of the event itself (log parsers read them there).
fn log_request(response: &Response, latency: Duration) {
    let id = response
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let answered = response.extensions().get::<Answered>();
    let method = answered.map(|a| a.method.as_str()).unwrap_or_default();
    let route = answered
        .and_then(|a| a.route.as_ref())
        .map_or(UNMATCHED, MatchedPath::as_str);
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// The route of a request no route matched (a fallback).
const UNMATCHED: &str = "(unmatched)";

/// Rewrites an error answered outside our handlers as a problem, and
/// records the request's figures.
async fn answer_and_count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let answered = Answered {
        method: request.method().clone(),
        route: request.extensions().get::<MatchedPath>().cloned(),
    };
    let mut response = next.run(request).await;
    // Anything answered outside our handlers (a path that is not UTF-8, a
    // rejection of axum's own) still answers as a problem. (Our own answers
    // are JSON, problems, `/readyz`'s 503 report, and the pages' "not
    // found" shell.)
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(b"application/json")
                || v.starts_with(b"application/problem+json")
                || v.starts_with(b"application/fhir+json")
                || v.starts_with(b"text/html")
        });
    if response.status().as_u16() >= 400 && !ours {
        let status = response.status();
        response = match status.as_u16() {
            404 => ApiError::NotFound.into_response(),
            405 => ApiError::MethodNotAllowed.into_response(),
            413 => ApiError::TooLarge.into_response(),
            400..=499 => ApiError::BadRequest {
                detail: status
                    .canonical_reason()
                    .unwrap_or("bad request")
                    .to_lowercase(),
                errors: Vec::new(),
            }
            .into_response(),
            _ => ApiError::internal(format!("unhandled {status}")).into_response(),
        };
    }
    let route = answered
        .route
        .as_ref()
        .map_or(UNMATCHED, MatchedPath::as_str);
    state.http_metrics.observe(
        answered.method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response.extensions_mut().insert(answered);
    response
}
