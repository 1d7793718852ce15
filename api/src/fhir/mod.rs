//! FHIR R4 (UK Core) beside the JSON API, under `/fhir/R4/`: the same
//! caller ([`Caller`]), the same policy ([`crate::policy`]), the same access
//! log ([`crate::audit`]) and the same commands ([`infra::commands::CommandBus`])
//! underneath; only the shapes differ. Resources are built as `serde_json`
//! values by small builders, one file per resource (docs/fhir.md maps each
//! element to Baton's events; docs/architecture.md says why no FHIR crate).
//! These routes are not in `/openapi.json`: the CapabilityStatement at
//! `/fhir/R4/metadata` describes them.

pub mod bundle;
pub mod capability;
pub mod encounter;
pub mod location;
pub mod organization;
pub mod outcome;
pub mod patient;
pub mod raise;
pub mod service_request;
pub mod subscription;
pub mod task;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::SecondsFormat;
use domain::values::Instant;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// FHIR's JSON media type, of every answer under `/fhir/R4/`.
pub const FHIR_JSON: &str = "application/fhir+json";
/// Where Baton's own extensions and code systems are named. A placeholder
/// until Baton's definitions are published; docs/fhir.md lists each.
pub const BATON: &str = "https://baton.example.nhs.uk/fhir";
/// The NHS number's identifier system.
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The mount point.
pub const BASE: &str = "/fhir/R4";

/// Every FHIR route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", axum::routing::post(raise::transaction))
        .route(
            "/$process-message",
            axum::routing::post(raise::process_message),
        )
        .route("/metadata", get(capability::metadata))
        .route("/Patient/{id}", get(patient::read))
        .route("/Encounter", get(encounter::search))
        .route("/Encounter/{id}", get(encounter::read))
        .route("/Encounter/{id}/_history", get(encounter::history))
        .route("/Location/{id}", get(location::read))
        .route("/Organization/{id}", get(organization::read))
        .route("/ServiceRequest", get(service_request::search))
        .route("/ServiceRequest/{id}", get(service_request::read))
        .route("/Subscription", axum::routing::post(subscription::create))
        .route("/Subscription/{id}", get(subscription::read))
        .route("/Task", get(task::search))
        .route("/Task/{id}", get(task::read).put(task::update))
        .route("/Task/{id}/_history", get(task::history))
        .route(
            "/{*rest}",
            axum::routing::any(|| async { FhirError(ApiError::NotFound) }),
        )
        .fallback(|| async { FhirError(ApiError::NotFound) })
        .method_not_allowed_fallback(|| async { FhirError(ApiError::MethodNotAllowed) })
}

/// Any failure, answered as an `OperationOutcome` with the status the JSON
/// API gives the same failure.
#[derive(Debug)]
pub struct FhirError(pub ApiError);

impl<E: Into<ApiError>> From<E> for FhirError {
    fn from(error: E) -> Self {
        FhirError(error.into())
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        outcome::response(&self.0)
    }
}

/// What a FHIR handler answers.
pub type FhirResult = Result<Response, FhirError>;

/// The JSON API's [`Caller`], whose refusal (no token, an expired session)
/// is answered as an `OperationOutcome` rather than a problem.
#[derive(Debug)]
pub struct FhirCaller(pub Caller);

impl FromRequestParts<AppState> for FhirCaller {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(FhirCaller(Caller::from_request_parts(parts, state).await?))
    }
}

/// A resource (or Bundle) as `application/fhir+json`, with its version as a
/// weak `ETag` when it has one.
pub fn answer(status: StatusCode, body: &Value, version: Option<u64>) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Some(version) = version {
        if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
            headers.insert(header::ETAG, etag);
        }
    }
    response
}

/// A FHIR `instant`/`dateTime`.
pub fn instant(at: &Instant) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A reference to another resource, with its display text.
pub fn reference(kind: &str, id: &str, display: Option<&str>) -> Value {
    let mut r = json!({ "reference": format!("{kind}/{id}") });
    if let Some(display) = display {
        r["display"] = json!(display);
    }
    r
}

/// A reference to a patient by NHS number (the logical id is the number).
pub fn patient_reference(nhs_number: &str, display: &str) -> Value {
    json!({
        "reference": format!("Patient/{nhs_number}"),
        "identifier": { "system": NHS_NUMBER, "value": nhs_number },
        "display": display,
    })
}

/// A `meta` with version and, when known, the last change.
pub fn meta(version: u64, updated: Option<&Instant>, profile: Option<&str>) -> Value {
    let mut m = json!({ "versionId": version.to_string() });
    if let Some(at) = updated {
        m["lastUpdated"] = json!(instant(at));
    }
    if let Some(profile) = profile {
        m["profile"] = json!([profile]);
    }
    m
}

/// A search parameter's value that names a resource: `Kind/id` or `id`
/// (and, for the full URL form, whatever ends in `Kind/id`).
pub fn referenced_id<'a>(kind: &str, value: &'a str) -> &'a str {
    let prefix = format!("{kind}/");
    match value.rfind(&prefix) {
        Some(at) => &value[at + prefix.len()..],
        None => value,
    }
}

/// An NHS number given as a token (`system|value` or `value`); any other
/// system is no NHS number.
pub fn nhs_token(value: &str) -> Option<&str> {
    match value.split_once('|') {
        Some((system, number)) if system.is_empty() || system == NHS_NUMBER => Some(number),
        Some(_) => None,
        None => Some(value),
    }
}
