//! The web pages: one HTML shell, a stylesheet and a script, compiled into
//! the binary (`include_str!`), so `baton serve` is all a newcomer runs and a
//! ward PC with no internet loads every asset from Baton itself. The shell
//! routes by path in the browser; the server answers the same shell for
//! every page path, and the script talks to the API like any other client.
//!
//! The development sign-in (`/api/v1/dev/sign-in`) mints local tokens for a
//! chosen role and scope. It exists only on the embedded default with the
//! local key trusted: never with PostgreSQL or an external identity provider.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use infra::auth::{Principal, Role, ScopeClaims};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// Pages and their assets (not in the OpenAPI document: they are not API).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ward/{code}", get(index))
        .route("/team/{code}", get(index))
        .route("/hospital/{code}", get(index))
        .route("/hub/{code}", get(index))
        .route("/system", get(index))
        .route("/admin", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .route("/{*rest}", any(elsewhere))
}

/// Who is signed in, and the development sign-in.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(dev_status, dev_sign_in_token))
}

fn with_headers(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Everything the pages load comes from Baton itself.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> Response {
    with_headers(INDEX, "text/html; charset=utf-8")
}

/// A page of Baton's own made on the server (the sign-in failures), with
/// the shell's security headers.
pub(crate) fn page(body: String) -> Response {
    let mut response = with_headers("", "text/html; charset=utf-8");
    *response.body_mut() = axum::body::Body::from(body);
    response
}

/// True when the request comes from a browser asking for a page.
pub(crate) fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Any other path. A browser asking for a page (`Accept: text/html`, GET)
/// gets the shell, and the script shows a "page not found" page in it (with
/// the header, the sign-in, and a way back) instead of raw problem JSON; API
/// clients, and paths under `/api/`, `/fhir/`, `/auth/` and `/assets/`, get
/// the usual problem+json 404. Either way the status is 404.
async fn elsewhere(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = ["/api/", "/fhir/", "/auth/", "/assets/"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    if api || !wants_page(&headers) || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::NotFound.into_response();
    }
    let mut page = with_headers(INDEX, "text/html; charset=utf-8");
    *page.status_mut() = axum::http::StatusCode::NOT_FOUND;
    page
}

async fn script() -> Response {
    with_headers(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    with_headers(STYLE, "text/css; charset=utf-8")
}

/// Who is signed in (by the session cookie or a bearer token), with role
/// and scope; for a session also its anti-forgery token (`csrf_token`, to
/// send as `X-CSRF-Token` with every change), how it was begun and its idle
/// timeout.
#[utoipa::path(get, path = "/api/v1/session", tag = "sign-in",
    responses((status = 200, body = Object), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn session(State(state): State<AppState>, caller: Caller) -> impl IntoResponse {
    Json(crate::signin::session_body(
        &caller.principal,
        caller.session.as_deref(),
        &state.signin,
    ))
}

/// Whether the development sign-in is available here.
#[utoipa::path(get, path = "/api/v1/dev/sign-in", tag = "sign-in", security(()),
    responses((status = 200, body = Object)))]
async fn dev_status(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    if dev_sign_in(&state, &headers).is_none() {
        return Json(serde_json::json!({ "enabled": false }));
    }
    // Codes only (they name places and teams, not people), so the form can
    // offer them before anyone is signed in.
    let catalogue = state.reference.snapshot();
    Json(serde_json::json!({
        "enabled": true,
        "hospitals": catalogue.hospitals().map(|h| h.code.as_str()).collect::<Vec<_>>(),
        "teams": catalogue.teams().map(|t| t.code.as_str()).collect::<Vec<_>>(),
        "trusts": catalogue
            .hospitals()
            .filter_map(|h| h.trust.as_ref().map(|t| t.as_str()))
            .collect::<std::collections::BTreeSet<_>>(),
        "hubs": catalogue.hubs().map(|h| h.code.as_str()).collect::<Vec<_>>(),
    }))
}

/// Whether the development sign-in answers this request.
pub(crate) fn dev_sign_in_available(state: &AppState, headers: &HeaderMap) -> bool {
    dev_sign_in(state, headers).is_some()
}

/// The data directory to sign with, when the development sign-in is on and
/// the request names this machine as its host (a page elsewhere cannot
/// reach it by rebinding a name to 127.0.0.1).
fn dev_sign_in<'a>(state: &'a AppState, headers: &HeaderMap) -> Option<&'a std::path::PathBuf> {
    let dir = state.settings.dev_sign_in.as_ref()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1").then_some(dir)
}

/// `POST /api/v1/dev/sign-in`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevSignIn {
    /// `ward`, `team`, `hub`, `system` or `admin`.
    #[schema(value_type = String)]
    pub role: Role,
    /// For `ward`: the hospital code (or `trust`).
    pub hospital: Option<String>,
    /// For `ward`: the trust code, for every hospital of the trust.
    pub trust: Option<String>,
    /// For `team`: the team code.
    pub team: Option<String>,
    /// For `hub`: the hub code.
    pub hub: Option<String>,
    /// A display name.
    pub name: Option<String>,
}

/// Development sign-in (embedded default only): a local token for any
/// role, and a session cookie for the pages.
#[utoipa::path(post, path = "/api/v1/dev/sign-in", tag = "sign-in", request_body = DevSignIn, security(()),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn dev_sign_in_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<DevSignIn>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(data_dir) = dev_sign_in(&state, &headers) else {
        return Err(ApiError::NotFound);
    };
    let catalogue = state.reference.snapshot();
    let (wanted, known, field): (&Option<String>, Vec<&str>, &str) = match req.role {
        Role::Ward if req.trust.is_some() => (
            &req.trust,
            catalogue
                .hospitals()
                .filter_map(|h| h.trust.as_ref().map(|t| t.as_str()))
                .collect(),
            "trust",
        ),
        Role::Ward => (
            &req.hospital,
            catalogue.hospitals().map(|h| h.code.as_str()).collect(),
            "hospital",
        ),
        Role::Team => (
            &req.team,
            catalogue.teams().map(|t| t.code.as_str()).collect(),
            "team",
        ),
        Role::Hub => (
            &req.hub,
            catalogue.hubs().map(|h| h.code.as_str()).collect(),
            "hub",
        ),
        Role::System | Role::Admin => (&None, Vec::new(), ""),
    };
    let scope_ok = field.is_empty() || wanted.as_deref().is_some_and(|w| known.contains(&w));
    if !scope_ok {
        return Err(ApiError::refused_field(
            "unknown_scope",
            field,
            format!("no such {field}"),
        ));
    }
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "Developer".to_owned());
    let scope = ScopeClaims {
        hospital: req.hospital,
        trust: req.trust,
        team: req.team,
        hub: req.hub,
    };
    let sub = format!("dev-{}-{}", req.role, name.to_lowercase().replace(' ', "-"));
    let principal = Principal::scoped(sub, name, req.role, scope)
        .map_err(|problem| ApiError::refused_field("unknown_scope", field, problem.to_string()))?;
    let token = infra::auth::sign_local(
        data_dir,
        &principal,
        std::time::Duration::from_secs(12 * 3600),
    )
    .map_err(ApiError::internal)?;
    // The pages use the session the cookie opens; the token is for trying
    // the API by hand.
    let mut answer = crate::signin::signed_in(
        &state,
        principal,
        token.clone(),
        infra::auth::session::SignedInWith::Development,
    );
    *answer.body_mut() = axum::body::Body::from(
        serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap_or_default(),
    );
    Ok(answer)
}
