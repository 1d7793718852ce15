//! `GET /fhir/R4/metadata`: what is served, exactly (the routes of
//! [`super::router`] and the parameters each search takes).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{answer, FhirResult};

fn resource(
    kind: &str,
    profile: Option<&str>,
    interactions: &[&str],
    params: &[(&str, &str)],
) -> Value {
    let mut r = json!({
        "type": kind,
        "interaction": interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
    });
    if let Some(profile) = profile {
        r["profile"] = json!(profile);
    }
    if interactions.contains(&"update") {
        r["versioning"] = json!("versioned-update");
        r["updateCreate"] = json!(false);
        r["conditionalUpdate"] = json!(false);
    }
    if !params.is_empty() {
        r["searchParam"] = json!(params
            .iter()
            .map(|(name, kind)| json!({ "name": name, "type": kind }))
            .collect::<Vec<_>>());
    }
    r
}

/// The statement.
pub fn statement() -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "publisher": "Baton",
        "kind": "instance",
        "software": { "name": "Baton", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Baton's FHIR R4 interface (UK Core), beside its JSON API" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth" }] }],
                "description": "A bearer token (Authorization: Bearer), as for the JSON API; the same roles and scopes.",
            },
            "interaction": [{ "code": "transaction", "documentation": "a referral: its ServiceRequest and Task" }],
            "operation": [{ "name": "process-message", "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message" }],
            "resource": [
                resource("Patient", Some(super::patient::PROFILE), &["read"], &[]),
                resource("Encounter", Some(super::encounter::PROFILE), &["read", "history-instance", "search-type"],
                    &[("patient", "reference"), ("subject", "reference"), ("patient.identifier", "token"), ("subject.identifier", "token"), ("subject:identifier", "token"), ("status", "token"), ("_id", "token")]),
                resource("Location", Some(super::location::PROFILE), &["read"], &[]),
                resource("Organization", Some(super::organization::PROFILE), &["read"], &[]),
                resource("ServiceRequest", Some(super::service_request::PROFILE), &["read", "search-type"],
                    &[("subject", "reference"), ("patient", "reference"), ("subject:identifier", "token"), ("subject.identifier", "token"), ("patient.identifier", "token"), ("performer", "reference"), ("_id", "token")]),
                resource("Subscription", None, &["create", "read"], &[]),
                resource("Task", None, &["read", "update", "history-instance", "search-type"],
                    &[("owner", "reference"), ("status", "token"), ("_lastUpdated", "date"), ("patient", "reference"), ("subject", "reference"), ("for", "reference"), ("patient.identifier", "token"), ("focus", "reference"), ("_id", "token")]),
            ],
        }],
    })
}

/// `GET /fhir/R4/metadata` (no sign-in needed, as FHIR expects).
pub async fn metadata() -> FhirResult {
    Ok(answer(StatusCode::OK, &statement(), None))
}
