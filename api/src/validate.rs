//! Reads a request body against its schema (the one `/openapi.json` and
//! `/docs` show, generated from the request type) before it is
//! deserialised, so that every field at fault is answered at once, in
//! plain words: an empty admission form gets "enter the family name",
//! "enter the date of birth", ... in one answer, not one per submit. Serde
//! stops at the first error; this walks the whole body. It checks shape
//! only (what is missing, of the wrong type, not a date), which answers the
//! same whoever asks about whichever record; what a value means (a blank
//! reason, a Modulus 11 check, a ward that exists) is judged by the handler
//! once it knows the caller may act (docs/architecture.md, "Authorise,
//! then validate").

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::PartialSchema;

use crate::error::FieldError;

/// How a field is named to a person: "family_name" is "family name", and
/// the few whose names read badly have words of their own.
pub(crate) fn label(field: &str) -> String {
    match field {
        "nhs_number" => "NHS number".to_owned(),
        "admitted_at" => "time of admission".to_owned(),
        "at" => "date and time".to_owned(),
        "date" => "date".to_owned(),
        "reason_code" => "reason".to_owned(),
        "planned_start" => "planned start date".to_owned(),
        "response_sla_minutes" => "response time in minutes".to_owned(),
        "meets_criteria_to_reside" => "answer to whether the criteria to reside are met".to_owned(),
        "spell_id" => "patient's spell".to_owned(),
        "beds" => "number of beds".to_owned(),
        other => other.replace('_', " "),
    }
}

fn types(schema: &SchemaType) -> (Vec<Type>, bool) {
    match schema {
        SchemaType::Type(t) => (vec![t.clone()], false),
        SchemaType::Array(ts) => (
            ts.iter().filter(|t| **t != Type::Null).cloned().collect(),
            ts.contains(&Type::Null),
        ),
        SchemaType::AnyValue => (Vec::new(), true),
    }
}

/// What is wrong with `value` as the property `field` of schema `schema`,
/// if anything.
fn property(field: &str, schema: &Schema, value: &Value) -> Option<String> {
    let name = label(field);
    let Schema::Object(object) = schema else {
        if let Schema::Array(_) = schema {
            return (!value.is_array()).then(|| format!("give the {name} as a list"));
        }
        return None;
    };
    let (wanted, nullable) = types(&object.schema_type);
    if value.is_null() {
        return (!nullable).then(|| format!("enter the {name}"));
    }
    let wanted = wanted.first()?;
    match wanted {
        Type::String => {
            let Some(text) = value.as_str() else {
                return Some(format!("enter the {name} as text"));
            };
            if text.trim().is_empty() && object.format.is_none() {
                // A blank value is the handler's to refuse, after it has
                // authorised the caller.
                return None;
            }
            match &object.format {
                Some(_) if text.trim().is_empty() => Some(format!("enter the {name}")),
                Some(SchemaFormat::KnownFormat(KnownFormat::Date)) => {
                    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                        .is_err()
                        .then(|| format!("enter the {name} as a date, such as 2026-03-01"))
                }
                Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)) => {
                    chrono::DateTime::parse_from_rfc3339(text.trim())
                        .is_err()
                        .then(|| {
                            format!(
                                "enter the {name} as a date and time with its offset, such as \
                             2026-03-01T09:30:00+00:00"
                            )
                        })
                }
                _ => None,
            }
        }
        Type::Integer => {
            let whole = value
                .as_i64()
                .or_else(|| value.as_u64().map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
            let bound = |n: &Option<utoipa::Number>| {
                n.as_ref().map(|n| match n {
                    utoipa::Number::Int(i) => i64::try_from(*i).unwrap_or(i64::MAX),
                    utoipa::Number::UInt(u) => i64::try_from(*u).unwrap_or(i64::MAX),
                    // Whole-number fields have whole bounds.
                    utoipa::Number::Float(f) => f.round() as i64,
                })
            };
            let (least, most) = (bound(&object.minimum), bound(&object.maximum));
            match whole {
                None => Some(format!("enter the {name} as a whole number")),
                Some(n) if n < 0 && least == Some(0) => {
                    Some(format!("the {name} cannot be negative"))
                }
                Some(n) if least.is_some_and(|least| n < least) => {
                    least.map(|least| format!("the {name} is at least {least}"))
                }
                Some(n) if most.is_some_and(|most| n > most) => {
                    most.map(|most| format!("the {name} is at most {most}"))
                }
                Some(_) => None,
            }
        }
        Type::Number => (!value.is_number()).then(|| format!("enter the {name} as a number")),
        Type::Boolean => (!value.is_boolean()).then(|| format!("choose yes or no for the {name}")),
        Type::Array => (!value.is_array()).then(|| format!("give the {name} as a list")),
        Type::Object => (!value.is_object()).then(|| format!("give the {name} as an object")),
        Type::Null => None,
    }
}

/// The schema of a request type, built once per type (every command reads
/// its body against it).
pub fn schema_of<T: PartialSchema + 'static>() -> Arc<RefOr<Schema>> {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, Arc<RefOr<Schema>>>>> = OnceLock::new();
    let mut schemas = SCHEMAS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    schemas
        .entry(TypeId::of::<T>())
        .or_insert_with(|| Arc::new(T::schema()))
        .clone()
}

/// Every field of `body` at fault against `schema` (an object schema), in
/// the schema's order; unknown fields last. Empty when the body fits.
pub fn check(schema: &RefOr<Schema>, body: &Value) -> Vec<FieldError> {
    let RefOr::T(Schema::Object(object)) = schema else {
        return Vec::new();
    };
    let Some(fields) = body.as_object() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (field, property_schema) in &object.properties {
        let required = object.required.iter().any(|r| r == field);
        let message = match (fields.get(field), property_schema) {
            (None, _) if required => Some(format!("enter the {}", label(field))),
            (None, _) => None,
            (Some(Value::Null), _) if required => Some(format!("enter the {}", label(field))),
            (Some(value), RefOr::T(schema)) => property(field, schema, value),
            (Some(_), RefOr::Ref(_)) => None,
        };
        if let Some(message) = message {
            errors.push(FieldError {
                field: field.clone(),
                message,
            });
        }
    }
    for field in fields.keys() {
        if !object.properties.contains_key(field) {
            errors.push(FieldError {
                field: field.clone(),
                message: format!("{field} is not a field of this request"),
            });
        }
    }
    errors
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::routes::spells::AdmitRequest;

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect()
    }

    #[test]
    fn an_empty_admission_names_every_missing_field_at_once_in_plain_words() {
        let errors = check(&AdmitRequest::schema(), &json!({}));
        assert_eq!(
            fields(&errors),
            [
                ("nhs_number", "enter the NHS number"),
                ("family_name", "enter the family name"),
                ("given_name", "enter the given name"),
                ("date_of_birth", "enter the date of birth"),
                ("ward", "enter the ward"),
                ("bed", "enter the bed"),
                ("admitted_at", "enter the time of admission"),
            ]
        );
    }

    #[test]
    fn bad_dates_say_what_a_date_looks_like_and_blank_text_is_left_to_the_handler() {
        let errors = check(
            &AdmitRequest::schema(),
            &json!({
                "nhs_number": "9912003888",
                "family_name": "  ",
                "given_name": "Ann",
                "date_of_birth": "1941-02-31",
                // (blank family name: the handler's, after authorising)
                "ward": "W1",
                "bed": 3,
                "admitted_at": "yesterday",
                "colour": "blue",
            }),
        );
        assert_eq!(
            fields(&errors),
            [
                (
                    "date_of_birth",
                    "enter the date of birth as a date, such as 2026-03-01"
                ),
                ("bed", "enter the bed as text"),
                (
                    "admitted_at",
                    "enter the time of admission as a date and time with its offset, such as \
                     2026-03-01T09:30:00+00:00"
                ),
                ("colour", "colour is not a field of this request"),
            ]
        );
    }

    #[test]
    fn a_blank_date_is_missing_and_null_is_missing_too() {
        let errors = check(
            &AdmitRequest::schema(),
            &json!({
                "nhs_number": null,
                "family_name": "Hartley",
                "given_name": "Ann",
                "date_of_birth": " ",
                "ward": "W1",
                "bed": "3",
                "admitted_at": "",
            }),
        );
        assert_eq!(
            fields(&errors),
            [
                ("nhs_number", "enter the NHS number"),
                ("date_of_birth", "enter the date of birth"),
                ("admitted_at", "enter the time of admission"),
            ]
        );
    }

    #[test]
    fn a_body_that_fits_has_nothing_to_say() {
        let errors = check(
            &AdmitRequest::schema(),
            &json!({
                "nhs_number": "9912003888",
                "family_name": "Hartley",
                "given_name": "Ann",
                "date_of_birth": "1941-03-02",
                "ward": "W1",
                "bed": "3",
                "admitted_at": "2026-03-01T09:30:00+00:00",
            }),
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn optional_fields_may_be_absent_or_null_but_not_of_another_type() {
        let schema = crate::routes::spells::DelayRequest::schema();
        let at = "2026-03-01T09:30:00+00:00";
        assert!(check(&schema, &json!({"reason_code": "A", "at": at})).is_empty());
        assert!(check(
            &schema,
            &json!({"reason_code": "A", "at": at, "note": null})
        )
        .is_empty());
        assert_eq!(
            fields(&check(
                &schema,
                &json!({"reason_code": "A", "at": at, "note": 4})
            )),
            [("note", "enter the note as text")]
        );
    }

    #[test]
    fn whole_numbers_must_be_whole_and_counts_not_negative() {
        let schema = crate::routes::reference::WardRequest::schema();
        let base = |beds: Value| json!({"name": "Ward", "hospital": "POOLE", "beds": beds});
        assert!(check(&schema, &base(json!(1))).is_empty());
        // The schema's bound is the domain's.
        let most = domain::reference::MAX_BEDS;
        assert!(check(&schema, &base(json!(most))).is_empty());
        assert_eq!(
            fields(&check(&schema, &base(json!(0)))),
            [("beds", "the number of beds is at least 1")]
        );
        assert_eq!(
            fields(&check(&schema, &base(json!(most + 1)))),
            [("beds", "the number of beds is at most 120")]
        );
        let sla = crate::routes::reference::TeamRequest::schema();
        let team = |minutes: Value| json!({"name": "Team", "services": ["reablement"], "response_sla_minutes": minutes});
        assert_eq!(
            fields(&check(&sla, &team(json!(-1)))),
            [(
                "response_sla_minutes",
                "the response time in minutes cannot be negative"
            )]
        );
        assert_eq!(
            fields(&check(&schema, &base(json!(2.5)))),
            [("beds", "enter the number of beds as a whole number")]
        );
        assert_eq!(
            fields(&check(&schema, &base(json!("30")))),
            [("beds", "enter the number of beds as a whole number")]
        );
    }
}
