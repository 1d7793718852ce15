//! Signing in to the pages. The browser holds a session cookie, never a
//! token: sessions live server-side (`infra::auth::session`), begun by
//! - the organisation's OpenID provider (`GET /auth/login`, then
//!   `GET /auth/callback`), when `oidc_issuer` is set;
//! - a bearer token pasted into the sign-in page (`POST /auth/session`),
//!   kept server-side and verified again on every request, so its `exp`
//!   still ends the session;
//! - the development sign-in of the embedded default
//!   (`POST /api/v1/dev/sign-in`, in `pages`).
//!
//! `POST /auth/logout` ends the session here and, when the provider offers
//! RP-initiated logout, there too. A change made with the cookie must carry
//! the session's anti-forgery token in `X-CSRF-Token` (a form field for the
//! sign-out form), checked in `extract::Caller`. Sign-in failures are pages
//! that say what went wrong and offer to start again: a provider that is
//! down, a `state` that does not match, a code used twice, an ID token for
//! another audience or with a bad signature.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use infra::auth::mapping::RoleMapping;
use infra::auth::oidc::{Identity, Oidc, OidcError};
use infra::auth::session::{Session, SessionUser, Sessions, SignedInWith, LOGIN_WINDOW};
use infra::auth::Principal;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "baton_session";
/// The cookie that ties a sign-in's two legs to one browser.
pub const LOGIN_COOKIE: &str = "baton_login";
/// The header a cookie-authenticated change carries its anti-forgery
/// token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Everything sign-in needs, shared by every request.
#[derive(Debug)]
pub struct SignIn {
    pub sessions: Sessions,
    /// The OpenID provider, when one is configured.
    pub oidc: Option<Oidc>,
    pub mapping: RoleMapping,
    /// Cookies are marked `Secure` (Baton is reached over TLS).
    pub secure_cookies: bool,
}

impl SignIn {
    /// A session cookie for `session`: `HttpOnly` (no script reads it),
    /// `SameSite=Lax` (not sent with other sites' sub-requests or form
    /// posts, still sent when the provider redirects back), `Secure` over
    /// TLS. No `Max-Age`: the server decides when a session ends.
    fn session_cookie(&self, id: &str) -> HeaderValue {
        let cookie = Cookie::build((SESSION_COOKIE, id.to_owned()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .build();
        header_value(&cookie)
    }

    fn cleared(&self, name: &'static str, path: &'static str) -> HeaderValue {
        let cookie = Cookie::build((name, ""))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        header_value(&cookie)
    }

    fn login_cookie(&self, state: &str) -> HeaderValue {
        let window = i64::try_from(LOGIN_WINDOW.as_secs()).unwrap_or(600);
        let cookie = Cookie::build((LOGIN_COOKIE, state.to_owned()))
            .path("/auth")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(cookie::time::Duration::seconds(window))
            .build();
        header_value(&cookie)
    }

    /// Opens a session and answers with its cookie set.
    pub fn open(&self, user: SessionUser) -> (Arc<Session>, HeaderValue) {
        let session = self.sessions.open(user);
        let cookie = self.session_cookie(&session.id);
        (session, cookie)
    }
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // Cookie values here are URL-safe tokens: always a valid header.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// A cookie of the request, by name.
pub fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/options", get(options))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/session", post(token_session))
}

/// How this Baton can be signed in to, for the sign-in page.
async fn options(State(state): State<AppState>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "provider": state.signin.oidc.as_ref().map(|o| o.issuer().to_owned()),
        "development": crate::pages::dev_sign_in_available(&state, &headers),
        "idle_seconds": state.signin.sessions.idle().as_secs(),
    }))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// Only a path of Baton's own: never another site (`//evil`, `/\evil`).
fn safe_return(to: Option<&str>) -> String {
    match to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.starts_with("/auth/")
                && path.len() <= 512
                && path.chars().all(|c| c.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `GET /auth/login`: to the provider, with PKCE and a fresh state and
/// nonce.
async fn login(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let signin = &state.signin;
    let return_to = safe_return(query.return_to.as_deref());
    let Some(oidc) = signin.oidc.as_ref() else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Sign-in with an identity provider is not set up here",
            "This Baton has no identity provider configured (BATON_OIDC_ISSUER). Sign in on Baton's sign-in page instead.",
            &return_to,
        );
    };
    match oidc.begin(return_to.clone()).await {
        Ok((url, login_state, pending)) => {
            signin.sessions.remember_login(login_state.clone(), pending);
            let mut response = see_other(&url);
            response
                .headers_mut()
                .append(header::SET_COOKIE, signin.login_cookie(&login_state));
            response
        }
        Err(error) => oidc_failure(&error, &return_to),
    }
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: the provider sends the browser back with a code.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let signin = &state.signin;
    let Some(oidc) = signin.oidc.as_ref() else {
        return ApiError::NotFound.into_response();
    };
    if let Some(error) = query.error.as_deref() {
        let why = query.error_description.as_deref().unwrap_or(error);
        return failure_page(
            StatusCode::BAD_REQUEST,
            "The identity provider did not sign you in",
            &format!("It answered: {why} ({error})."),
            "/",
        );
    }
    let (Some(code), Some(login_state)) = (query.code, query.state) else {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "This is not a sign-in answer",
            "The address has no code or state from the identity provider.",
            "/",
        );
    };
    // The state must be the one this browser was sent away with: a
    // callback started elsewhere (login forgery) or tampered with stops.
    let ours = cookie_of(&headers, LOGIN_COOKIE).is_some_and(|c| same_token(c, &login_state));
    if !ours {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser",
            "The answer's state does not match the sign-in this browser began (or the sign-in took longer than 10 minutes).",
            "/",
        );
    }
    let Some(pending) = signin.sessions.take_login(&login_state) else {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has been used already",
            "Each sign-in answer works once: this one was used before, or has expired.",
            "/",
        );
    };
    let return_to = pending.return_to.clone();
    let identity = match oidc.finish(code, &pending).await {
        Ok(identity) => identity,
        Err(error) => return oidc_failure(&error, &return_to),
    };
    let principal = match principal_of(&state, &identity) {
        Ok(principal) => principal,
        Err(NoRole::Revoked) => {
            tracing::warn!(sub = %identity.sub, "signed in at the provider, access revoked in Baton");
            return failure_page(
                StatusCode::FORBIDDEN,
                "Your access to Baton has been withdrawn",
                &format!(
                    "Your organisation signed you in as {} (user id {}), but a Baton administrator has withdrawn that user's access. Ask them if you think this is wrong, quoting your user id.",
                    identity.name, identity.sub
                ),
                &return_to,
            );
        }
        Err(NoRole::Unmapped(problem)) => {
            tracing::warn!(sub = %identity.sub, %problem, "signed in at the provider without a Baton role");
            return failure_page(
                StatusCode::FORBIDDEN,
                "Baton has no role for you yet",
                &format!(
                    "Your organisation signed you in as {} (user id {}), but Baton gives that user no role: {problem}. Ask your Baton administrator to grant you one, quoting your user id.",
                    identity.name, identity.sub
                ),
                &return_to,
            );
        }
    };
    let user = SessionUser {
        sub: principal.sub.clone(),
        name: principal.name.clone(),
        access: infra::auth::session::Access::Principal(principal),
        id_token: Some(identity.id_token),
        with: SignedInWith::Provider,
    };
    let (_, cookie) = signin.open(user);
    let mut response = see_other(&return_to);
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookie);
    headers.append(header::SET_COOKIE, signin.cleared(LOGIN_COOKIE, "/auth"));
    response
}

/// Why a person the provider signed in gets no session.
enum NoRole {
    /// Neither an admin's grant nor the mapping gives them a role.
    Unmapped(infra::auth::ClaimsProblem),
    /// An admin revoked their access in Baton.
    Revoked,
}

/// Who a person the provider signed in is in Baton: an admin's grant (or
/// revocation) recorded in Baton decides first, as on every request, so a
/// person the mapping gives no role can be let in by a grant; else the
/// mapping of the provider's claims.
fn principal_of(state: &AppState, identity: &Identity) -> Result<Principal, NoRole> {
    use crate::extract::{recorded_access, RecordedAccess};
    match recorded_access(state, &identity.sub, &identity.name).map_err(NoRole::Unmapped)? {
        RecordedAccess::Revoked => return Err(NoRole::Revoked),
        RecordedAccess::Granted { principal, .. } => return Ok(principal),
        RecordedAccess::Provider { .. } => {}
    }
    let mut claims = identity.claims.clone();
    claims.insert("sub".to_owned(), identity.sub.clone().into());
    claims.insert("name".to_owned(), identity.name.clone().into());
    state
        .signin
        .mapping
        .principal(&claims)
        .map_err(NoRole::Unmapped)
}

fn oidc_failure(error: &OidcError, return_to: &str) -> Response {
    tracing::warn!(%error, "sign-in through the identity provider failed");
    let (status, title) = match error {
        OidcError::Unreachable { .. } => (
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be reached",
        ),
        OidcError::Misconfigured(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in is not set up correctly",
        ),
        OidcError::CodeRefused(_) => (
            StatusCode::BAD_REQUEST,
            "The identity provider refused this sign-in",
        ),
        OidcError::NoIdToken | OidcError::IdTokenRefused(_) => (
            StatusCode::UNAUTHORIZED,
            "The identity provider's answer could not be trusted",
        ),
    };
    failure_page(status, title, &format!("{error}."), return_to)
}

/// `POST /auth/logout`: ends the session (the form carries its
/// anti-forgery token) and, where the provider offers it, the sign-in
/// there.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let signin = &state.signin;
    let session = cookie_of(&headers, SESSION_COOKIE).and_then(|id| signin.sessions.touch(id));
    let mut to = "/?signed_out=1".to_owned();
    if let Some(session) = session {
        // The sign-out form's field, or the header of a script's request.
        let field = form_urlencoded::parse(&body)
            .find(|(key, _)| key == "csrf_token")
            .map(|(_, value)| value.into_owned());
        let sent = field
            .as_deref()
            .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        if !sent.is_some_and(|t| same_token(t, &session.csrf)) {
            return ApiError::CrossSiteForgery.into_response();
        }
        signin.sessions.end(&session.id);
        if session.user.with == SignedInWith::Provider {
            if let Some(oidc) = signin.oidc.as_ref() {
                if let Some(url) = oidc.logout_url(session.user.id_token.as_deref()).await {
                    to = url;
                }
            }
        }
    }
    let mut response = see_other(&to);
    response
        .headers_mut()
        .append(header::SET_COOKIE, signin.cleared(SESSION_COOKIE, "/"));
    response
}

/// `POST /auth/session`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSignIn {
    /// A bearer token, as an API client would send it.
    #[schema(max_length = 16384)]
    pub token: String,
}

/// A session from a pasted bearer token: the page keeps no token, the
/// server verifies it on every request.
async fn token_session(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<TokenSignIn>,
) -> Result<Response, ApiError> {
    let token = req.token.trim().to_owned();
    let principal = state
        .auth
        .verify(&token)
        .await
        .map_err(|error| ApiError::Unauthenticated(error.to_string()))?;
    Ok(signed_in(&state, principal, token, SignedInWith::Token))
}

/// Answers a sign-in by token (pasted, or the development sign-in's) with
/// its session cookie and what the page needs.
pub fn signed_in(
    state: &AppState,
    principal: Principal,
    token: String,
    with: SignedInWith,
) -> Response {
    let user = SessionUser {
        sub: principal.sub.clone(),
        name: principal.name.clone(),
        access: infra::auth::session::Access::Token(token),
        id_token: None,
        with,
    };
    let (session, cookie) = state.signin.open(user);
    let mut response =
        Json(session_body(&principal, Some(&session), &state.signin)).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// What `GET /api/v1/session` answers: who, and for a cookie session its
/// anti-forgery token and idle timeout.
pub fn session_body(
    principal: &Principal,
    session: Option<&Session>,
    signin: &SignIn,
) -> serde_json::Value {
    let mut body = serde_json::to_value(principal).unwrap_or_default();
    if let (Some(session), serde_json::Value::Object(map)) = (session, &mut body) {
        map.insert("csrf_token".to_owned(), session.csrf.clone().into());
        map.insert(
            "signed_in_with".to_owned(),
            serde_json::to_value(session.user.with).unwrap_or_default(),
        );
        map.insert(
            "idle_seconds".to_owned(),
            signin.sessions.idle().as_secs().into(),
        );
    }
    body
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A page that says what went wrong with a sign-in, and how to go on.
fn failure_page(status: StatusCode, title: &str, detail: &str, return_to: &str) -> Response {
    let again = format!(
        "/auth/login?return_to={}",
        form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    );
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Sign-in failed: Baton</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n\
         <header class=\"bar\"><a class=\"brand\" href=\"/\">Baton</a></header>\n\
         <main id=\"main\" class=\"signin\">\n<h1>{}</h1>\n<p id=\"sign-in-problem\" role=\"alert\">{}</p>\n\
         <p><a id=\"try-again\" href=\"{}\">Sign in again</a> or <a href=\"/\">go to Baton's sign-in page</a>.</p>\n\
         </main>\n</body>\n</html>\n",
        escape(title),
        escape(detail),
        escape(&again)
    );
    let mut response = crate::pages::page(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_a_path_of_batons_own() {
        assert_eq!(safe_return(Some("/ward/W1")), "/ward/W1");
        assert_eq!(safe_return(Some("/ward/W1?x=1")), "/ward/W1?x=1");
        for other in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/auth/logout",
            "ward",
            "/a b",
            "",
        ] {
            assert_eq!(safe_return(Some(other)), "/", "{other}");
        }
        assert_eq!(safe_return(None), "/");
        assert_eq!(safe_return(Some(&format!("/{}", "a".repeat(600)))), "/");
    }

    #[test]
    fn tokens_compare_equal_only_when_they_are_the_same() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn a_cookie_is_found_by_its_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; baton_session_x=2; baton_session=abc"),
        );
        assert_eq!(cookie_of(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_of(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn a_failure_page_escapes_what_it_shows() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
