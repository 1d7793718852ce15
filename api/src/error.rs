//! One error type for every handler, answered as `application/problem+json`
//! (RFC 9457) exactly as the contract says. Internal failures are logged
//! with the request's id and shown only as "internal error": a ward PC never
//! sees a stack trace, and a log line never carries a patient identifier.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::referral::ReferralError;
use domain::reservation::ReservationConflict;
use domain::spell::SpellError;
use infra::commands::{CommandError, RaiseRefusal};
use serde::Serialize;

/// One field's complaint, so pages can show it next to that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The request field (dotted for nested fields).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// For validation problems: each field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For domain refusals: the rule that refused (stable, snake_case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For 412: the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, unknown or
    /// mistyped fields, a bad query).
    #[error("{detail}")]
    BadRequest {
        /// What is wrong.
        detail: String,
        /// Fields at fault.
        errors: Vec<FieldError>,
    },
    /// 401: no token, or one that does not verify.
    #[error("authentication required")]
    Unauthenticated(String),
    /// 403: the caller's role or scope does not allow this.
    #[error("not allowed")]
    Forbidden,
    /// 403: a change made with the pages' session cookie without the
    /// session's anti-forgery token (another site's form or script).
    #[error("a change made with the session cookie must carry this session's X-CSRF-Token header; reload the page and try again")]
    CrossSiteForgery,
    /// 403: an admin revoked this user's access in Baton.
    #[error("your access to Baton has been withdrawn by an administrator")]
    AccessRevoked,
    /// 404: unknown, or not the caller's to know about.
    #[error("not found")]
    NotFound,
    /// 405: the path exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicting state or a concurrent change.
    #[error("{detail}")]
    Conflict {
        /// What conflicts.
        detail: String,
        /// The rule.
        rule: String,
    },
    /// 412: `If-Match` named another version.
    #[error("the record has changed")]
    PreconditionFailed {
        /// The version it is at now.
        current: u64,
    },
    /// 413: the body is larger than the limit.
    #[error("request body too large")]
    TooLarge,
    /// 431: the request's headers are larger than Baton reads.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 414: the request's path and query are longer than Baton reads.
    #[error("request path too long")]
    UriTooLong,
    /// 415: a body sent as something other than JSON.
    #[error("send the body as JSON, with Content-Type: application/json")]
    NotJson,
    /// 415: a census sent as something other than CSV.
    #[error("send the census as CSV, with Content-Type: text/csv")]
    NotCsv,
    /// 422: well-formed, but refused by a rule.
    #[error("{detail}")]
    Refused {
        /// What the rule says.
        detail: String,
        /// The rule's name.
        rule: String,
        /// Fields at fault, when the rule is about one.
        errors: Vec<FieldError>,
    },
    /// 503: the event store (or a read model) cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    /// A 422 about one field.
    pub fn refused_field(rule: &str, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Refused {
            detail: message.clone(),
            rule: rule.to_owned(),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    /// Several refusals of one request as one answer: the first's rule and
    /// detail, every one's fields (so a form shows each at its field).
    pub fn together(errors: impl IntoIterator<Item = ApiError>) -> Self {
        let mut all = errors.into_iter();
        let Some(first) = all.next() else {
            return ApiError::internal("no error to report");
        };
        all.fold(first, |mut acc, next| {
            if let (
                ApiError::Refused { errors, .. } | ApiError::BadRequest { errors, .. },
                ApiError::Refused { errors: more, .. } | ApiError::BadRequest { errors: more, .. },
            ) = (&mut acc, next)
            {
                errors.extend(more);
            }
            acc
        })
    }

    /// The same error, with its field `from` called `to` (a rule's field
    /// named as this request names it).
    pub fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            ApiError::Refused {
                detail,
                rule,
                mut errors,
            } => {
                for error in &mut errors {
                    if error.field == from {
                        error.field = to.to_owned();
                    }
                }
                ApiError::Refused {
                    detail,
                    rule,
                    errors,
                }
            }
            other => other,
        }
    }

    /// A 500 from any error, logged by the response.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::CrossSiteForgery | ApiError::AccessRevoked => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::NotJson | ApiError::NotCsv => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, title) = match self {
            ApiError::BadRequest { .. } => ("bad-request", "The request is not valid"),
            ApiError::Unauthenticated(_) => ("unauthenticated", "Sign-in required"),
            ApiError::Forbidden => ("forbidden", "Not allowed"),
            ApiError::CrossSiteForgery => ("csrf", "Anti-forgery token missing or wrong"),
            ApiError::AccessRevoked => ("access-revoked", "Access withdrawn"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } => ("conflict", "Conflicting change"),
            ApiError::PreconditionFailed { .. } => ("version-mismatch", "The record has changed"),
            ApiError::TooLarge => ("too-large", "Request body too large"),
            ApiError::HeadersTooLarge => ("headers-too-large", "Request headers too large"),
            ApiError::UriTooLong => ("uri-too-long", "Request path too long"),
            ApiError::NotJson => ("unsupported-media-type", "The body is not JSON"),
            ApiError::NotCsv => ("unsupported-media-type", "The body is not CSV"),
            ApiError::Refused { .. } => ("refused", "Refused by a rule"),
            ApiError::Unavailable(_) => ("unavailable", "Service temporarily unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        };
        let detail = match self {
            ApiError::Unauthenticated(why) => {
                format!("sign in, or send a valid bearer token: {why}")
            }
            ApiError::Forbidden => "your role or scope does not allow this".to_owned(),
            ApiError::NotFound => "no such record".to_owned(),
            ApiError::MethodNotAllowed => "this path does not take this method".to_owned(),
            ApiError::PreconditionFailed { current } => {
                format!("the record is now at version {current}; reload and try again")
            }
            ApiError::TooLarge => "the request body exceeds the limit".to_owned(),
            ApiError::HeadersTooLarge => {
                "the request's headers (a token or cookie, perhaps) are larger than Baton reads"
                    .to_owned()
            }
            ApiError::UriTooLong => {
                "the request's path and query are longer than Baton reads".to_owned()
            }
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let (errors, rule) = match self {
            ApiError::BadRequest { errors, .. } => (errors.clone(), None),
            ApiError::Refused { errors, rule, .. } => (errors.clone(), Some(rule.clone())),
            ApiError::Conflict { rule, .. } => (Vec::new(), Some(rule.clone())),
            _ => (Vec::new(), None),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            rule,
            current_version: match self {
                ApiError::PreconditionFailed { current } => Some(*current),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"baton\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// A refusal's stable rule name: its variant in snake case (derived by
/// `strum`, so it cannot drift from the variant or depend on `Debug`).
fn rule_of<'a, E>(error: &'a E) -> String
where
    &'a E: Into<&'static str>,
{
    let name: &'static str = error.into();
    name.to_owned()
}

/// The request field a spell rule is about, if one.
fn spell_field(error: &SpellError) -> Option<&'static str> {
    Some(match error {
        SpellError::UnknownWard | SpellError::TransferToAnotherHospital => "ward",
        SpellError::UnknownBed | SpellError::AlreadyInThatBed => "bed",
        SpellError::BeforeAdmission { .. }
        | SpellError::InFuture { .. }
        | SpellError::OutOfOrder { .. } => "at",
        SpellError::BornAfterAdmission | SpellError::BornTooLongAgo => "date_of_birth",
        SpellError::TooFarAhead { field } => field,
        SpellError::UnknownDelayReason | SpellError::DelayAlreadyOpen => "reason_code",
        _ => return None,
    })
}

/// The request field a referral rule is about, if one.
fn referral_field(error: &ReferralError) -> Option<&'static str> {
    Some(match error {
        ReferralError::UnknownTeam => "team",
        ReferralError::ServiceNotOffered => "service",
        ReferralError::PathwayNeedsNoReferral => "pathway",
        ReferralError::PlannedStartBeforeReferral => "planned_start",
        ReferralError::CareStartBeforeReferral | ReferralError::InFuture { .. } => "at",
        _ => return None,
    })
}

fn refused(rule: String, detail: String, field: Option<&str>) -> ApiError {
    ApiError::Refused {
        errors: field
            .map(|field| {
                vec![FieldError {
                    field: field.to_owned(),
                    message: detail.clone(),
                }]
            })
            .into_iter()
            .flatten()
            .collect(),
        detail,
        rule,
    }
}

/// A stored event this build cannot read (a newer Baton's version, a
/// corrupt payload) is the server's fault: logged and answered 500, never
/// read as a default.
impl From<domain::upcast::ReadError> for ApiError {
    fn from(error: domain::upcast::ReadError) -> Self {
        ApiError::internal(format!("a stored event: {error}"))
    }
}

impl From<SpellError> for ApiError {
    fn from(error: SpellError) -> Self {
        match error {
            SpellError::UnknownSpell => ApiError::NotFound,
            SpellError::AlreadyAdmitted => ApiError::Conflict {
                detail: error.to_string(),
                rule: rule_of(&error),
            },
            other => refused(rule_of(&other), other.to_string(), spell_field(&other)),
        }
    }
}

impl From<domain::access::AccessError> for ApiError {
    fn from(error: domain::access::AccessError) -> Self {
        ApiError::Conflict {
            detail: error.to_string(),
            rule: rule_of(&error),
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(error: ReferralError) -> Self {
        match error {
            ReferralError::UnknownReferral => ApiError::NotFound,
            ReferralError::AlreadyRaised => ApiError::Conflict {
                detail: error.to_string(),
                rule: rule_of(&error),
            },
            other => refused(rule_of(&other), other.to_string(), referral_field(&other)),
        }
    }
}

impl From<RaiseRefusal> for ApiError {
    fn from(error: RaiseRefusal) -> Self {
        match error {
            // The spell named in the body: not a path id, so a 422 about
            // the field, unless the caller may not know it (handled by the
            // route before the command).
            RaiseRefusal::Spell(SpellError::UnknownSpell) => {
                ApiError::refused_field("unknown_spell", "spell_id", "no such open spell")
            }
            RaiseRefusal::Spell(e) => e.into(),
            RaiseRefusal::Referral(e) => e.into(),
        }
    }
}

impl From<ReservationConflict> for ApiError {
    fn from(conflict: ReservationConflict) -> Self {
        ApiError::Conflict {
            detail: conflict.to_string(),
            rule: rule_of(&conflict),
        }
    }
}

impl<E> From<CommandError<E>> for ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Denied(denied) => match denied.0.downcast::<ApiError>() {
                Ok(refusal) => *refusal,
                Err(other) => ApiError::internal(other),
            },
            CommandError::Refused(e) => e.into(),
            CommandError::Reservation(conflict) => conflict.into(),
            CommandError::VersionMismatch { current } => ApiError::PreconditionFailed { current },
            CommandError::Contended => ApiError::Conflict {
                detail: "the record is being changed by others; try again".to_owned(),
                rule: "contended".to_owned(),
            },
            CommandError::KeyReused => ApiError::Refused {
                detail: "this Idempotency-Key was already used for a different request".to_owned(),
                rule: "idempotency_key_reused".to_owned(),
                errors: Vec::new(),
            },
            CommandError::Unavailable(cause) => {
                tracing::warn!(%cause, "event store unavailable");
                ApiError::Unavailable("the event store is unavailable; try again shortly".into())
            }
            CommandError::IdMismatch => ApiError::internal("command id mismatch"),
            CommandError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_the_variants_in_snake_case() {
        assert_eq!(rule_of(&SpellError::UnknownSpell), "unknown_spell");
        assert_eq!(rule_of(&SpellError::AlreadyAdmitted), "already_admitted");
        assert_eq!(rule_of(&ReferralError::AlreadyRaised), "already_raised");
    }
}
