//! Reads a request body against its schema (the one `/openapi.json` and
//! `/docs` show, generated from the request type) before it is
//! deserialised, so that every field at fault is answered at once, in
//! plain words: an empty admission form gets "enter the family name",
//! "enter the date of birth", ... in one answer, not one per submit. Serde
//! stops at the first error; this walks the whole body (and query strings
//! alike). It checks shape only, everything the document states (missing,
//! of the wrong type, not a date, too long, not one of the listed values,
//! not of the pattern, out of bounds), which answers the same whoever asks
//! about whichever record, so the document and the server agree by
//! construction (`openapi::shape` gives both the same schema). What a value
//! means (a blank reason, a Modulus 11 check, a ward that exists) is judged
//! by the handler once it knows the caller may act (docs/architecture.md,
//! "Authorise, then validate", and "The document and the server agree by
//! construction").

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

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
        if let Schema::Array(array) = schema {
            let Some(items) = value.as_array() else {
                return Some(format!("give the {name} as a list"));
            };
            if array.min_items.is_some_and(|least| items.len() < least) {
                return Some(format!("choose at least one {}", singular(&name)));
            }
            if array.max_items.is_some_and(|most| items.len() > most) {
                return Some(format!("the {name} are too many"));
            }
            if let ArrayItems::RefOrSchema(item) = &array.items {
                if let RefOr::T(item) = item.as_ref() {
                    return items.iter().find_map(|v| property(field, item, v));
                }
            }
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
            // Counted as the document counts: characters, before trimming.
            let length = text.chars().count();
            if let Some(most) = object.max_length.filter(|most| length > *most) {
                return Some(format!("the {name} is at most {most} characters"));
            }
            if crate::openapi::shape::is_judged(object) {
                // Blank or unsafe text, and a reason not on the current
                // list, are the handler's to refuse once it has authorised
                // the caller (with the command's other refusals).
                return None;
            }
            if text.trim().is_empty() && object.format.is_none() && object.min_length.is_none() {
                return None;
            }
            if text.trim().is_empty() || object.min_length.is_some_and(|least| length < least) {
                return Some(format!("enter the {name}"));
            }
            if let Some(values) = &object.enum_values {
                if !values.iter().any(|v| v.as_str() == Some(text)) {
                    return Some(one_of(&name, values));
                }
            }
            if let Some(pattern) = &object.pattern {
                if !matches(pattern, text) {
                    return Some(crate::openapi::shape::pattern_words(pattern, &name));
                }
            }
            match &object.format {
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
                .or_else(|| value.as_u64().map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
                .or_else(|| whole_float(value));
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
                Some(n) if n < 0 && least.is_some_and(|least| least >= 0) => {
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

/// "services" is "service", for "choose at least one service".
fn singular(name: &str) -> &str {
    name.strip_suffix('s').unwrap_or(name)
}

/// "choose the pathway: P0, P1, P2 or P3".
fn one_of(name: &str, values: &[Value]) -> String {
    let words: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() && words.len() <= 12 => {
            format!("choose the {name}: {} or {last}", rest.join(", "))
        }
        Some((only, [])) => format!("the {name} can only be {only}"),
        _ => format!("choose the {name} from the list"),
    }
}

/// Whether `text` matches the document's `pattern` (compiled once each;
/// the patterns are Baton's own, written to mean the same in ECMA, Python
/// and Rust regexes).
fn matches(pattern: &str, text: &str) -> bool {
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let regex = compiled
        .entry(pattern.to_owned())
        .or_insert_with(|| regex::Regex::new(pattern).ok());
    // A pattern that does not compile is a bug a unit test catches; the
    // value is refused rather than let through unchecked.
    regex.as_ref().is_some_and(|r| r.is_match(text))
}

/// A JSON number written with a zero fraction (`30.0`) is an integer to
/// JSON Schema, so it is one here too (and `whole_numbers` hands it to serde
/// as one).
fn whole_float(value: &Value) -> Option<i64> {
    let f = value.as_f64()?;
    // 2^53: past it a float no longer holds every whole number.
    (f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).then_some(f as i64)
}

/// Rewrites, in place, the whole numbers of `body` written as `30.0` where
/// `schema` wants an integer, as `30`; true if it changed anything.
pub fn whole_numbers(schema: &RefOr<Schema>, body: &mut Value) -> bool {
    let (RefOr::T(Schema::Object(object)), Some(fields)) = (schema, body.as_object_mut()) else {
        return false;
    };
    let mut changed = false;
    for (field, property) in &object.properties {
        let RefOr::T(Schema::Object(property)) = property else {
            continue;
        };
        if types(&property.schema_type).0.first() != Some(&Type::Integer) {
            continue;
        }
        if let Some(value) = fields.get_mut(field) {
            if value.is_f64() {
                if let Some(n) = whole_float(value) {
                    *value = Value::from(n);
                    changed = true;
                }
            }
        }
    }
    changed
}

/// The schema of a request type, built once per type (every command reads
/// its body against it).
pub fn schema_of<T: ToSchema + 'static>() -> Arc<RefOr<Schema>> {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, Arc<RefOr<Schema>>>>> = OnceLock::new();
    let mut schemas = SCHEMAS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    schemas
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let mut schema = T::schema();
            crate::openapi::shape::refine_body(&T::name(), &mut schema);
            Arc::new(schema)
        })
        .clone()
}

/// The query parameters of a type, with their shapes, built once per type.
pub fn parameters_of<T: IntoParams + 'static>() -> Arc<Vec<Parameter>> {
    static PARAMETERS: OnceLock<Mutex<HashMap<TypeId, Arc<Vec<Parameter>>>>> = OnceLock::new();
    let mut all = PARAMETERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let mut parameters = T::into_params(|| Some(ParameterIn::Query));
            for parameter in &mut parameters {
                crate::openapi::shape::refine_parameter("", parameter);
            }
            Arc::new(parameters)
        })
        .clone()
}

/// Every query parameter at fault against its schema. A value that is not
/// a whole number where one is wanted, an unknown or a missing parameter
/// are left to the reader, which names them.
pub fn check_query(parameters: &[Parameter], pairs: &[(String, String)]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for parameter in parameters {
        let Some(RefOr::T(schema)) = &parameter.schema else {
            continue;
        };
        let first = match schema {
            Schema::Object(o) => types(&o.schema_type).0.first().cloned(),
            _ => None,
        };
        for (_, text) in pairs.iter().filter(|(k, _)| *k == parameter.name) {
            // A query's values are text: a number or a yes/no is read as
            // one first (and one that is not is serde's to name below).
            let value = match first {
                Some(Type::Integer) => match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => continue,
                },
                Some(Type::Boolean) => match text.parse::<bool>() {
                    Ok(b) => Value::from(b),
                    Err(_) => Value::from(text.as_str()),
                },
                _ => Value::from(text.as_str()),
            };
            if let Some(message) = property(&parameter.name, schema, &value) {
                errors.push(FieldError {
                    field: parameter.name.clone(),
                    message,
                });
                break;
            }
        }
    }
    errors
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
        let errors = check(&schema_of::<AdmitRequest>(), &json!({}));
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
            &schema_of::<AdmitRequest>(),
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
            &schema_of::<AdmitRequest>(),
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
            &schema_of::<AdmitRequest>(),
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
        let schema = schema_of::<crate::routes::spells::DelayRequest>();
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
        let schema = schema_of::<crate::routes::reference::WardRequest>();
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
        let sla = schema_of::<crate::routes::reference::TeamRequest>();
        let team = |minutes: Value| json!({"name": "Team", "services": ["reablement"], "response_sla_minutes": minutes});
        assert_eq!(
            fields(&check(&sla, &team(json!(-1)))),
            [(
                "response_sla_minutes",
                "the response time in minutes cannot be negative"
            )]
        );
        assert_eq!(
            fields(&check(&sla, &team(json!(0)))),
            [(
                "response_sla_minutes",
                "the response time in minutes is at least 1"
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

    #[test]
    fn codes_and_lists_are_read_against_the_domain_s_own_bounds() {
        let schema = schema_of::<crate::routes::spells::TransferRequest>();
        let at = "2026-03-01T09:30:00+00:00";
        let longest = "W".repeat(domain::values::WardCode::MAX_LEN);
        assert!(check(&schema, &json!({"ward": longest, "bed": "1", "at": at})).is_empty());
        let too_long = "W".repeat(domain::values::WardCode::MAX_LEN + 1);
        assert_eq!(
            fields(&check(
                &schema,
                &json!({"ward": too_long, "bed": "1", "at": at})
            )),
            [("ward", "the ward is at most 32 characters")]
        );
        assert_eq!(
            fields(&check(
                &schema,
                &json!({"ward": "W 1", "bed": "", "at": at})
            )),
            [
                (
                    "ward",
                    "the ward may hold only letters, digits, '-' and '_'"
                ),
                ("bed", "enter the bed"),
            ]
        );
        let pathway = schema_of::<crate::routes::spells::PathwayRequest>();
        assert!(check(&pathway, &json!({"pathway": "P3"})).is_empty());
        assert_eq!(
            fields(&check(&pathway, &json!({"pathway": "P4"}))),
            [("pathway", "choose the pathway: P0, P1, P2 or P3")]
        );
        let team = schema_of::<crate::routes::reference::TeamRequest>();
        let body = |services: Value| json!({"name": "T", "services": services, "response_sla_minutes": 60});
        assert_eq!(
            fields(&check(&team, &body(json!([])))),
            [("services", "choose at least one service")]
        );
        assert_eq!(
            fields(&check(&team, &body(json!(["reablement", "magic"]))))[0].0,
            "services"
        );
    }

    #[test]
    fn free_text_is_bounded_here_and_judged_by_the_handler() {
        let schema = schema_of::<crate::routes::spells::ReasonRequest>();
        let most = domain::values::MAX_TEXT;
        assert!(check(&schema, &json!({"reason": "x".repeat(most)})).is_empty());
        // Blank or with a control character: the handler's, after it has
        // authorised the caller.
        assert!(check(&schema, &json!({"reason": " "})).is_empty());
        assert!(check(&schema, &json!({"reason": "a\u{0}b"})).is_empty());
        // Counted before trimming, as the document counts.
        assert_eq!(
            fields(&check(
                &schema,
                &json!({"reason": format!(" {}", "x".repeat(most))})
            )),
            [("reason", "the reason is at most 4000 characters")]
        );
    }

    #[test]
    fn every_pattern_compiles_and_says_what_the_domain_accepts() {
        use crate::openapi::shape;
        let text = regex::Regex::new(&shape::text_pattern(true)).unwrap();
        let name = regex::Regex::new(&shape::text_pattern(false)).unwrap();
        let samples = [
            "Ann",
            " Ann ",
            "\nAnn\t",
            "a\nb",
            "a\tb",
            " ",
            "",
            "\u{3000}",
            "a\u{0}b",
            "a\u{7f}",
            "\u{200e}x",
            "x\u{202e}",
            "x\u{200b}",
            "\u{200b}",
            "a\u{85}b",
            "\u{85}a",
            "Zoë",
            "محمد",
            "a\u{2066}",
            "\u{a0}\u{a0}",
            "x\u{a0}y",
            "\u{1c}x",
        ];
        for sample in samples {
            assert_eq!(
                text.is_match(sample),
                domain::values::Text::parse(sample).is_ok(),
                "text {sample:?}"
            );
            assert_eq!(
                name.is_match(sample),
                domain::values::PersonName::parse(sample).is_ok(),
                "name {sample:?}"
            );
        }
        let code = regex::Regex::new(shape::CODE).unwrap();
        for sample in ["W1", "POOLE-1", "a_b", "a b", "é", "a.b", ""] {
            assert_eq!(
                code.is_match(sample),
                domain::values::WardCode::parse(sample).is_ok(),
                "{sample:?}"
            );
        }
        let nhs = regex::Regex::new(shape::NHS_NUMBER).unwrap();
        for sample in [
            "9912003888",
            " 991 200 3888 ",
            "991200 3888",
            "99120038881",
            "x912003888",
        ] {
            let shaped = !matches!(
                domain::values::NhsNumber::parse(sample),
                Err(domain::values::NhsNumberError::BadFormat)
            );
            assert_eq!(nhs.is_match(sample), shaped, "{sample:?}");
        }
        let search = regex::Regex::new(&shape::search()).unwrap();
        for sample in [
            "ab",
            " a ",
            "a b",
            "12",
            "1",
            "  ",
            "\u{3000}x\u{3000}",
            "x\ny",
        ] {
            assert_eq!(
                search.is_match(sample),
                projections::lookup::Query::parse(sample).is_some(),
                "{sample:?}"
            );
        }
        let token = regex::Regex::new(&shape::consistency_token()).unwrap();
        for (sample, ok) in [
            ("spell.S1.3", true),
            ("referral.R-1.0", true),
            ("ward.W1.1", false),
            ("spell.S1", false),
        ] {
            assert_eq!(token.is_match(sample), ok, "{sample:?}");
        }
        let board = regex::Regex::new(&shape::board()).unwrap();
        for (sample, ok) in [
            ("system", true),
            ("ward:W1", true),
            ("team:REAB-E", true),
            ("ward:", false),
            ("bed:1", false),
        ] {
            assert_eq!(board.is_match(sample), ok, "{sample:?}");
        }
    }
}
