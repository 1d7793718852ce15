//! Every refusal as an `OperationOutcome`: the JSON API's status and
//! headers for the same failure, the problem's detail as the issue's
//! diagnostics, the domain rule (`rule` of the problem) as a coding of
//! Baton's rule code system, and each field at fault as an expression.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{BATON, FHIR_JSON};
use crate::error::ApiError;

/// The FHIR issue type for an error.
fn issue_code(error: &ApiError) -> &'static str {
    match error {
        ApiError::BadRequest { .. } => "invalid",
        ApiError::Unauthenticated(_) => "login",
        ApiError::Forbidden | ApiError::CrossSiteForgery | ApiError::AccessRevoked => "forbidden",
        ApiError::NotFound => "not-found",
        ApiError::MethodNotAllowed => "not-supported",
        ApiError::Conflict { .. } | ApiError::PreconditionFailed { .. } => "conflict",
        ApiError::TooLarge => "too-costly",
        ApiError::HeadersTooLarge | ApiError::UriTooLong => "too-long",
        ApiError::NotJson | ApiError::NotCsv => "structure",
        ApiError::Refused { .. } => "business-rule",
        ApiError::Unavailable(_) => "transient",
        ApiError::Internal(_) => "exception",
    }
}

/// The `OperationOutcome` for an error.
pub fn of(error: &ApiError) -> Value {
    let problem = error.problem();
    let mut issue = json!({
        "severity": if matches!(error, ApiError::Unavailable(_)) { "warning" } else { "error" },
        "code": issue_code(error),
        "diagnostics": problem.detail,
    });
    let mut details = json!({ "text": problem.title });
    if let Some(rule) = &problem.rule {
        details["coding"] = json!([{ "system": format!("{BATON}/CodeSystem/rule"), "code": rule }]);
    }
    issue["details"] = details;
    if !problem.errors.is_empty() {
        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        issue["expression"] = json!(fields);
    }
    json!({ "resourceType": "OperationOutcome", "issue": [issue] })
}

/// The error as the JSON API answers it (status, `Retry-After`,
/// `WWW-Authenticate`), with the `OperationOutcome` as its body.
pub fn response(error: &ApiError) -> Response {
    if let ApiError::Internal(cause) = error {
        tracing::error!(%cause, "internal error");
    }
    let status = axum::http::StatusCode::from_u16(error.problem().status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&of(error)).unwrap_or_default();
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    match error {
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
