//! Request extractors that answer in the contract's terms: a strict JSON
//! body (unknown fields, wrong types and malformed JSON are a 400 naming
//! the field, an oversized body a 413), the command headers
//! (`Idempotency-Key`, `If-Match`) and the signed-in caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use infra::auth::Principal;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// A JSON body, strictly read. An empty body reads as `{}`, so commands
/// with nothing to say need no body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + utoipa::ToSchema + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // `application/json`, with parameters (`; charset=utf-8`) or not;
        // nothing else, and no body without saying what it is.
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest {
                    detail: "the request body could not be read".to_owned(),
                    errors: Vec::new(),
                }
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            if json != Some(true) {
                return Err(ApiError::NotJson);
            }
            &bytes
        };
        // Every field at fault at once, in plain words; what parses as JSON
        // and fits the schema goes on to serde (and malformed JSON to its
        // syntax error below).
        let mut normalised = Vec::new();
        if let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(bytes) {
            let schema = crate::validate::schema_of::<T>();
            let errors = crate::validate::check(&schema, &body);
            if !errors.is_empty() {
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields need attention", many.len()),
                };
                return Err(ApiError::BadRequest { detail, errors });
            }
            if crate::validate::whole_numbers(&schema, &mut body) {
                normalised = serde_json::to_vec(&body).unwrap_or_default();
            }
        }
        let bytes = if normalised.is_empty() {
            bytes
        } else {
            &normalised
        };
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let field = error.path().to_string();
            let inner = error.into_inner();
            let message = plain_message(&inner);
            if inner.is_syntax() || inner.is_eof() || field == "." {
                let errors = match missing_or_unknown_field(&inner) {
                    Some(field) => vec![FieldError {
                        field,
                        message: message.clone(),
                    }],
                    None => Vec::new(),
                };
                ApiError::BadRequest {
                    detail: message,
                    errors,
                }
            } else {
                let field = match missing_or_unknown_field(&inner) {
                    Some(name) if field.ends_with('.') || field == "." => name,
                    _ => field,
                };
                ApiError::BadRequest {
                    detail: format!("{field}: {message}"),
                    errors: vec![FieldError { field, message }],
                }
            }
        })?;
        deserializer.end().map_err(|_| ApiError::BadRequest {
            detail: "trailing characters after the JSON body".to_owned(),
            errors: Vec::new(),
        })?;
        Ok(JsonBody(value))
    }
}

/// serde's message without its " at line 1 column 7" tail.
fn plain_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The field a "missing field `x`" or "unknown field `x`" message names.
fn missing_or_unknown_field(error: &serde_json::Error) -> Option<String> {
    named_field(&error.to_string())
}

/// The field a serde message ("missing field `x`", "unknown field `x`")
/// names: serde reports those two at the level above the field.
fn named_field(text: &str) -> Option<String> {
    let start = text.find("field `")? + "field `".len();
    let end = text[start..].find('`')? + start;
    Some(text[start..end].to_owned())
}

/// `Idempotency-Key` and `If-Match` of a command.
#[derive(Debug, Clone, Default)]
pub struct CommandHeaders {
    /// The client's idempotency key (a UUID).
    pub idempotency_key: Option<String>,
    /// The version the client expects the record to be at.
    pub if_match: Option<u64>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default().trim();
                let key = uuid::Uuid::parse_str(text)
                    .map_err(|_| ApiError::field("Idempotency-Key", "must be a UUID"))?;
                Some(key.hyphenated().to_string())
            }
        };
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default().trim();
                let text = text.strip_prefix("W/").unwrap_or(text);
                let text = text.trim_matches('"');
                Some(
                    text.parse::<u64>()
                        .map_err(|_| ApiError::field("If-Match", "must be a version, as \"3\""))?,
                )
            }
        };
        Ok(Self {
            idempotency_key,
            if_match,
        })
    }
}

/// The signed-in caller of a request, and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who, with role and scope.
    pub principal: Principal,
    /// The client's address, for the access log.
    pub client: Option<String>,
    /// The request's id, for the access log and support.
    pub request_id: Option<String>,
    /// The pages' session, when the request came with its cookie rather
    /// than a bearer token.
    pub session: Option<std::sync::Arc<infra::auth::session::Session>>,
    /// The version of the user's access record in Baton when the request
    /// was authorised (0: none); a live stream ends when it moves.
    pub access_version: u64,
}

/// What Baton's own record of a user's access says, beside whatever their
/// token or provider says.
pub(crate) enum RecordedAccess {
    /// Nothing recorded, or access handed back to the provider: their word
    /// stands. `version` is the record's (0: none).
    Provider {
        version: u64,
    },
    /// An admin's grant, which replaces the role and scope they came with.
    Granted {
        principal: Principal,
        version: u64,
    },
    Revoked,
}

/// Baton's record of `sub`'s access: the one reading of grants and
/// revocations, for every request and for the provider's sign-in. A stored
/// grant that no longer describes a caller is the error.
pub(crate) fn recorded_access(
    state: &AppState,
    sub: &str,
    name: &str,
) -> Result<RecordedAccess, infra::auth::ClaimsProblem> {
    use domain::access::AccessNow;
    state.boards.read(|flow| {
        let Some(user) = flow.access().of(sub) else {
            return Ok(RecordedAccess::Provider { version: 0 });
        };
        match &user.now {
            AccessNow::FromProvider => Ok(RecordedAccess::Provider {
                version: user.version,
            }),
            AccessNow::Revoked => Ok(RecordedAccess::Revoked),
            AccessNow::Granted(granted) => {
                crate::routes::access::principal_of_grant(sub.to_owned(), name.to_owned(), granted)
                    .map(|principal| RecordedAccess::Granted {
                        principal,
                        version: user.version,
                    })
            }
        }
    })
}

/// The caller as Baton's own record of their access has it (see
/// [`recorded_access`]), with the record's version.
fn with_access(state: &AppState, principal: Principal) -> Result<(Principal, u64), ApiError> {
    let recorded = recorded_access(state, &principal.sub, &principal.name)
        .map_err(|problem| ApiError::internal(format!("a stored grant: {problem}")))?;
    match recorded {
        RecordedAccess::Provider { version } => Ok((principal, version)),
        RecordedAccess::Granted { principal, version } => Ok((principal, version)),
        RecordedAccess::Revoked => Err(ApiError::AccessRevoked),
    }
}

/// The version of `sub`'s access record now (0: none).
fn access_version(state: &AppState, sub: &str) -> u64 {
    state
        .boards
        .read(|flow| flow.access().of(sub).map_or(0, |user| user.version))
}

/// Who a bearer token or a session stands for.
async fn principal_of(
    state: &AppState,
    access: &infra::auth::session::Access,
) -> Result<Principal, ApiError> {
    match access {
        infra::auth::session::Access::Principal(principal) => Ok(principal.clone()),
        // The authenticator remembers tokens it verified lately, never past
        // their `exp` plus its leeway: a second cache here could outlive it.
        infra::auth::session::Access::Token(token) => state
            .auth
            .verify(token.trim())
            .await
            .map_err(|error| ApiError::Unauthenticated(error.to_string())),
    }
}

/// Whether the session (if any) that a caller came with is still open and
/// their access in Baton unchanged; the live stream asks, without counting
/// as the user's activity.
pub fn still_signed_in(state: &AppState, caller: &Caller) -> bool {
    caller
        .session
        .as_ref()
        .is_none_or(|session| state.signin.sessions.is_live(&session.id))
        && access_version(state, &caller.principal.sub) == caller.access_version
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let (principal, session) = match bearer {
            Some(header) => {
                let token = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .ok_or_else(|| ApiError::Unauthenticated("not a bearer token".to_owned()))?;
                let access = infra::auth::session::Access::Token(token.to_owned());
                (principal_of(state, &access).await?, None)
            }
            None => {
                let id = crate::signin::cookie_of(&parts.headers, crate::signin::SESSION_COOKIE)
                    .ok_or_else(|| {
                        ApiError::Unauthenticated(
                            "no Authorization header and no session".to_owned(),
                        )
                    })?;
                let session = state.signin.sessions.touch(id).ok_or_else(|| {
                    ApiError::Unauthenticated(
                        "the session has ended (signed out, or idle too long)".to_owned(),
                    )
                })?;
                // A change made with the cookie carries the session's
                // anti-forgery token, which another site cannot read.
                if !parts.method.is_safe() {
                    let sent = parts
                        .headers
                        .get(crate::signin::CSRF_HEADER)
                        .and_then(|v| v.to_str().ok());
                    if !sent.is_some_and(|t| crate::signin::same_token(t, &session.csrf)) {
                        return Err(ApiError::CrossSiteForgery);
                    }
                }
                let principal = match principal_of(state, &session.user.access).await {
                    Ok(principal) => principal,
                    Err(error) => {
                        // The token behind it expired: the session ends too.
                        state.signin.sessions.end(&session.id);
                        return Err(error);
                    }
                };
                (principal, Some(session))
            }
        };
        let (principal, access_version) = with_access(state, principal)?;
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let client = peer
            .map(|peer| client_address(peer, &forwarded, &state.settings.trusted_proxies))
            .map(|ip| ip.to_string());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            principal,
            client,
            request_id,
            session,
            access_version,
        })
    }
}

/// The client a request came from. `X-Forwarded-For` is believed only
/// from a configured proxy: the address recorded is then the nearest one
/// in the header that is not itself a trusted proxy (each proxy appends
/// the address it heard from, so the right end is the most trustworthy).
/// From anyone else the header is ignored: a client could write any
/// address into the access log.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded: &str,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    let peer = peer.to_canonical();
    let trusted_one = |ip: &std::net::IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !trusted_one(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in forwarded.split(',').rev() {
        match hop
            .trim()
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_canonical())
        {
            Ok(ip) if trusted_one(&ip) => nearest = ip,
            Ok(ip) => return ip,
            // An unreadable entry ends what can be believed.
            Err(_) => return nearest,
        }
    }
    nearest
}

/// Query parameters, strictly read: unknown or malformed ones are a 400
/// problem, like bodies.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + utoipa::IntoParams + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // Every parameter at fault against the document's schema at once,
        // as for bodies.
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let errors = crate::validate::check_query(&crate::validate::parameters_of::<T>(), &pairs);
        if !errors.is_empty() {
            let detail = match errors.as_slice() {
                [one] => format!("query parameter {}: {}", one.field, one.message),
                many => format!("{} query parameters need attention", many.len()),
            };
            return Err(ApiError::BadRequest { detail, errors });
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner().to_string();
                // A missing or unknown parameter is reported at the top
                // level; the message names it.
                let field = if path == "." {
                    named_field(&inner)
                } else {
                    Some(path)
                };
                let message = match &field {
                    Some(_) if inner.contains("invalid digit") => {
                        "must be a whole number".to_owned()
                    }
                    _ => inner.clone(),
                };
                match field {
                    Some(field) => ApiError::BadRequest {
                        detail: format!("query parameter {field}: {message}"),
                        errors: vec![FieldError { field, message }],
                    },
                    None => ApiError::BadRequest {
                        detail: format!("query: {inner}"),
                        errors: Vec::new(),
                    },
                }
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::IpAddr;

    use super::client_address;
    use crate::app::is_safe_request_id;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_forwarded_address_from_anyone_but_a_trusted_proxy_is_ignored() {
        assert_eq!(
            client_address(ip("198.51.100.7"), "203.0.113.99", &[]),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("198.51.100.7"), "203.0.113.99", &[ip("10.0.0.1")]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_address(ip("10.0.0.1"), "203.0.113.99", &proxies),
            ip("203.0.113.99")
        );
        // A client that wrote its own header first cannot hide behind it.
        assert_eq!(
            client_address(ip("10.0.0.1"), "1.2.3.4, 203.0.113.99, 10.0.0.2", &proxies),
            ip("203.0.113.99")
        );
        // Only proxies, or nothing: the last proxy that spoke.
        assert_eq!(
            client_address(ip("10.0.0.1"), "10.0.0.2", &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(client_address(ip("10.0.0.1"), "", &proxies), ip("10.0.0.1"));
        // An IPv4 proxy seen through a dual-stack socket is the same proxy.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), "203.0.113.99", &proxies),
            ip("203.0.113.99")
        );
        assert_eq!(
            client_address(ip("::ffff:198.51.100.7"), "", &[]),
            ip("198.51.100.7")
        );
        // Garbage ends what is believed.
        assert_eq!(
            client_address(ip("10.0.0.1"), "203.0.113.99, <script>", &proxies),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_request_id_is_kept_only_when_it_is_a_short_safe_token() {
        assert!(is_safe_request_id("abc-123_DEF.4:5"));
        assert!(is_safe_request_id(&"a".repeat(64)));
        assert!(!is_safe_request_id(&"a".repeat(65)));
        assert!(!is_safe_request_id(""));
        assert!(!is_safe_request_id("<script>alert(1)</script>"));
        assert!(!is_safe_request_id("two words"));
    }
}
