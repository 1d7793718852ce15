//! The OpenAPI document, generated from the handlers' own descriptions
//! (so it lists exactly the routes served), and `/docs`, a page rendered
//! from it on the server: no script or asset from the internet.

use std::fmt::Write;

use utoipa::openapi::schema::{ArrayItems, Object, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; paths come from the routers.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Baton",
        description = "Transfer-of-care tracker: spells, referrals and live boards. \
            Every request except operations needs `Authorization: Bearer <JWT>`."
    ),
    modifiers(&Bearer),
    tags(
        (name = "reference", description = "Hospitals, wards, teams, delay reasons"),
        (name = "spells", description = "Inpatient stays, admission to discharge"),
        (name = "referrals", description = "Handovers to community teams"),
        (name = "boards", description = "Live read models"),
        (name = "audit", description = "Who looked at a patient"),
        (name = "feeds", description = "The patient administration system's HL7 v2 ADT feed: held messages, location mapping"),
        (name = "sign-in", description = "The session and the development sign-in"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// Adds what every operation can answer but no handler lists: 401 for a
/// missing or invalid token (on all but the public operations) and 400 for
/// parameters or a body that cannot be read, both as problems. Applied to
/// the whole document once the routers' paths are in it.
pub fn complete(doc: &mut Document) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    // The shapes of request bodies, as `validate` reads them.
    let bodies: Vec<String> = doc
        .paths
        .paths
        .values()
        .flat_map(|item| [&item.get, &item.put, &item.post, &item.delete])
        .flatten()
        .filter_map(|op| op.request_body.as_ref())
        .filter_map(|body| body.content.get("application/json"))
        .filter_map(|content| match &content.schema {
            Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(str::to_owned),
            _ => None,
        })
        .collect();
    if let Some(components) = doc.components.as_mut() {
        for name in bodies {
            if let Some(schema) = components.schemas.get_mut(&name) {
                shape::refine_body(&name, schema);
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for parameter in op.parameters.iter_mut().flatten() {
                shape::refine_parameter(path, parameter);
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            // `security(())`: this operation needs no sign-in.
            let public = op.security.as_ref().is_some_and(|requirements| {
                requirements
                    .iter()
                    .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
            });
            if !public {
                op.responses
                    .responses
                    .entry("401".to_owned())
                    .or_insert_with(|| problem("No bearer token, or one that does not verify"));
                // Every signed-in operation but "who am I" is for some
                // roles only (api/src/policy.rs).
                if op.operation_id.as_deref() != Some("session") {
                    op.responses
                        .responses
                        .entry("403".to_owned())
                        .or_insert_with(|| {
                            problem("The caller's role or scope does not allow this")
                        });
                }
            }
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(|| problem("A parameter or the body cannot be read"));
            }
            // Every body is checked field by field (`validate`): a text with
            // a control character is refused with a 422 on any of them.
            if op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("422".to_owned())
                    .or_insert_with(|| problem("A field of the body breaks a rule"));
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A field's type in words: `string (date)`, `integer`, `string or null`.
fn type_words(schema: &RefOr<Schema>) -> String {
    let name = |t: &Type| {
        match t {
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
            Type::Array => "list",
            Type::Object => "object",
            Type::Null => "null",
        }
        .to_owned()
    };
    match schema {
        RefOr::Ref(r) => r
            .ref_location
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        RefOr::T(Schema::Array(array)) => match &array.items {
            ArrayItems::RefOrSchema(items) => format!("list of {}", type_words(items)),
            ArrayItems::False => "empty list".to_owned(),
        },
        RefOr::T(Schema::Object(object)) => {
            let base = match &object.schema_type {
                SchemaType::Type(t) => name(t),
                SchemaType::Array(ts) => ts.iter().map(name).collect::<Vec<_>>().join(" or "),
                SchemaType::AnyValue => "any".to_owned(),
            };
            match &object.format {
                Some(SchemaFormat::KnownFormat(format)) => {
                    let format = serde_json::to_value(format)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{base} ({format})")
                }
                Some(SchemaFormat::Custom(format)) => format!("{base} ({format})"),
                None => base,
            }
        }
        RefOr::T(_) => "one of several shapes".to_owned(),
    }
}

/// A request body's fields: name, type, whether required, what it is.
fn body_fields(html: &mut String, object: &Object) {
    html.push_str(
        "<table><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Type</th>\
         <th scope=\"col\">Required</th><th scope=\"col\">Meaning</th></tr></thead><tbody>",
    );
    for (field, schema) in &object.properties {
        let required = if object.required.iter().any(|r| r == field) {
            "required"
        } else {
            "optional"
        };
        let meaning = match schema {
            RefOr::T(Schema::Object(o)) => o.description.clone().unwrap_or_default(),
            RefOr::T(Schema::Array(a)) => a.description.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{required}</td><td>{}</td></tr>",
            escape(field),
            escape(&type_words(schema)),
            escape(&meaning)
        );
    }
    html.push_str("</tbody></table>");
}

/// `/docs`: every operation, its parameters, body and answers.
pub fn render_docs(doc: &Document) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Baton API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#111}\
         code{background:#eef;padding:0 .2em}h2{border-bottom:1px solid #ccc}\
         .op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #005eb8}\
         .m{font-weight:bold;text-transform:uppercase}\
         table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}</style></head><body>\
         <h1>Baton API</h1><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. \
         Contract: errors are <code>application/problem+json</code>; commands accept \
         <code>Idempotency-Key</code> and <code>If-Match</code>; reads accept \
         <code>?consistency_token=</code>.</p>",
    );
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", &item.get),
            ("put", &item.put),
            ("post", &item.post),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let _ = write!(
                html,
                "<div class=\"op\"><p><span class=\"m\">{method}</span> <code>{}</code></p>",
                escape(path)
            );
            if let Some(summary) = op.summary.as_deref().or(op.description.as_deref()) {
                let _ = write!(html, "<p>{}</p>", escape(summary));
            }
            if let Some(params) = &op.parameters {
                let names: Vec<String> = params
                    .iter()
                    .map(|p| format!("<code>{}</code>", escape(&p.name)))
                    .collect();
                let _ = write!(html, "<p>Parameters: {}</p>", names.join(", "));
            }
            if let Some(body) = &op.request_body {
                if let Some(content) = body.content.get("application/json") {
                    if let utoipa::openapi::RefOr::Ref(r) =
                        &content.schema.clone().unwrap_or_default()
                    {
                        let name = r.ref_location.rsplit('/').next().unwrap_or_default();
                        let _ = write!(html, "<p>Body: <code>{}</code></p>", escape(name));
                        let schema = doc.components.as_ref().and_then(|c| c.schemas.get(name));
                        if let Some(RefOr::T(Schema::Object(object))) = schema {
                            body_fields(&mut html, object);
                        }
                    }
                }
            }
            let codes: Vec<String> = op.responses.responses.keys().cloned().collect();
            let _ = write!(html, "<p>Answers: {}</p></div>", escape(&codes.join(", ")));
        }
    }
    html.push_str("</body></html>");
    html
}

/// What each field and parameter may hold, stated once: the document shows
/// it and `validate` enforces it, from the same schema. A field's name means
/// one thing across the whole API (`ward` is always a ward code, `reason`
/// always free text), so shapes are given by name; the bounds are the
/// domain's own constants.
pub mod shape {
    use domain::values::{
        BedLabel, DelayId, DelayReasonCode, Destination, HospitalCode, HubCode, Pathway,
        ReferralId, ServiceKind, SpellId, TeamCode, TrustCode, WardCode, MAX_NAME, MAX_TEXT,
    };
    use serde_json::Value;
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::schema::{ArrayItems, Object, Schema};
    use utoipa::openapi::RefOr;

    /// Marks a field whose pattern or list is judged by the handler once the
    /// caller is authorised (free text, the current delay reasons): it answers
    /// 422 naming the field, together with the command's other refusals.
    /// `validate` checks only its length.
    pub const JUDGED_AFTER_AUTHORISING: &str = "x-judged-after-authorising";

    /// What `str::trim` removes (Unicode White_Space), spelt out: `\s`
    /// means slightly different things in ECMA, Python and Rust regexes.
    const WHITE_SPACE: &str =
        r"\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
    const CONTROLS: &str = r"\u0000-\u001F\u007F-\u009F";
    const CONTROLS_BUT_LAYOUT: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";
    const BIDIRECTIONAL: &str = r"\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069";

    /// A code (ward, hospital, team, bed, id): what `check_code` accepts.
    pub const CODE: &str = "^[A-Za-z0-9_-]+$";
    /// Ten digits, or 3-3-4 with single spaces, with spaces around:
    /// what `NhsNumber::parse` reads (the Modulus 11 check is the
    /// handler's, 422 as the contract says).
    pub const NHS_NUMBER: &str = "^ *(?:[0-9]{10}|[0-9]{3} [0-9]{3} [0-9]{4}) *$";
    /// `type.id.version`, as commands answer it.
    pub fn consistency_token() -> String {
        use domain::Decider;
        format!(
            "^(?:{}|{})\\.[A-Za-z0-9_-]{{1,{}}}\\.[0-9]{{1,19}}$",
            domain::spell::Spell::TYPE,
            domain::referral::Referral::TYPE,
            SpellId::MAX_LEN.max(ReferralId::MAX_LEN)
        )
    }
    /// A live stream's board.
    pub fn board() -> String {
        format!(
            "^(?:system|ward:[A-Za-z0-9_-]{{1,{}}}|hospital:[A-Za-z0-9_-]{{1,{}}}|team:[A-Za-z0-9_-]{{1,{}}}|hub:[A-Za-z0-9_-]{{1,{}}})$",
            WardCode::MAX_LEN,
            HospitalCode::MAX_LEN,
            TeamCode::MAX_LEN,
            HubCode::MAX_LEN
        )
    }
    /// At least two characters once trimmed (`lookup::Query::parse`).
    pub fn search() -> String {
        format!("^[{WHITE_SPACE}]*[^{WHITE_SPACE}][\\s\\S]*[^{WHITE_SPACE}][{WHITE_SPACE}]*$")
    }
    /// The most characters a search may have.
    pub const MAX_SEARCH: usize = 100;

    /// Text as `Text::parse` (lines allowed) or `PersonName::parse` (one
    /// line) takes it: something once trimmed, and no control character
    /// (but line breaks and tabs in text) or bidirectional control.
    pub fn text_pattern(lines: bool) -> String {
        let refused = if lines { CONTROLS_BUT_LAYOUT } else { CONTROLS };
        format!(
            "^[{WHITE_SPACE}]*[^{WHITE_SPACE}{refused}{BIDIRECTIONAL}]\
             (?:[^{refused}{BIDIRECTIONAL}]*[^{WHITE_SPACE}{refused}{BIDIRECTIONAL}])?[{WHITE_SPACE}]*$"
        )
    }

    /// The words for a value that does not match `pattern`.
    pub fn pattern_words(pattern: &str, name: &str) -> String {
        match pattern {
            CODE => format!("the {name} may hold only letters, digits, '-' and '_'"),
            NHS_NUMBER => format!("enter the {name} as 10 digits, such as 943 476 5919"),
            p if p == consistency_token() => "not a consistency token".to_owned(),
            p if p == board() => {
                "ward:{code}, hospital:{code}, team:{code}, hub:{code} or system".to_owned()
            }
            p if p == search() => {
                "enter at least two letters of a name, or the first digits of an NHS number"
                    .to_owned()
            }
            _ => format!("the {name} is not in a form Baton reads"),
        }
    }

    enum Shape {
        Code(usize),
        NhsNumber,
        Text { max: usize, lines: bool },
        OneOf(Vec<Value>),
        JudgedOneOf(Vec<Value>, usize),
        Whole(i64, i64),
        Pattern(String, usize),
        Bounded(usize),
    }

    fn names<T: serde::Serialize>(all: impl IntoIterator<Item = T>) -> Vec<Value> {
        all.into_iter()
            .filter_map(|v| serde_json::to_value(v).ok())
            .collect()
    }

    fn delay_reasons() -> Vec<Value> {
        domain::reference::sitrep_delay_reasons()
            .map(|list| {
                list.reasons
                    .iter()
                    .map(|r| Value::from(r.code.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The shape of a field of the body `body` (empty for a query
    /// parameter), by its name.
    fn of(body: &str, name: &str) -> Option<Shape> {
        Some(match (body, name) {
            // A display name for a development token: anything short.
            ("DevSignIn", "name") => Shape::Bounded(MAX_NAME),
            ("DevSignIn", "role") => Shape::OneOf(
                infra::auth::Role::ALL
                    .iter()
                    .map(|r| Value::from(r.as_str()))
                    .collect(),
            ),
            ("GrantRequest", "name") => Shape::Text {
                max: MAX_NAME,
                lines: false,
            },
            ("GrantRequest", "role") => Shape::OneOf(
                infra::auth::Role::ALL
                    .iter()
                    .map(|r| Value::from(r.as_str()))
                    .collect(),
            ),
            ("GrantRequest", "trust" | "hub") => Shape::Code(HospitalCode::MAX_LEN),
            ("LocationBody", "point_of_care") => Shape::Text {
                max: crate::routes::feeds::MAX_PAS_CODE,
                lines: false,
            },
            ("LocationBody", "pas_bed") => Shape::Pattern(
                format!("^[^{CONTROLS}{BIDIRECTIONAL}]*$"),
                crate::routes::feeds::MAX_PAS_CODE,
            ),
            (_, name) => return of_field(name),
        })
    }

    fn of_field(name: &str) -> Option<Shape> {
        Some(match name {
            "nhs_number" => Shape::NhsNumber,
            "family_name" | "given_name" => Shape::Text {
                max: MAX_NAME,
                lines: false,
            },
            "name" | "summary" | "question" | "answer" | "reason" | "note" => Shape::Text {
                max: MAX_TEXT,
                lines: true,
            },
            "ward" => Shape::Code(WardCode::MAX_LEN),
            "hospital" | "hospitals" => Shape::Code(HospitalCode::MAX_LEN),
            "trust" => Shape::Code(TrustCode::MAX_LEN),
            "hub" => Shape::Code(HubCode::MAX_LEN),
            "bed" => Shape::Code(BedLabel::MAX_LEN),
            "team" => Shape::Code(TeamCode::MAX_LEN),
            "spell_id" => Shape::Code(SpellId::MAX_LEN),
            "reason_code" => Shape::JudgedOneOf(delay_reasons(), DelayReasonCode::MAX_LEN),
            "pathway" => Shape::OneOf(names(Pathway::ALL)),
            "service" | "services" => Shape::OneOf(names(ServiceKind::ALL)),
            "destination" => Shape::OneOf(names(Destination::ALL)),
            "status" => Shape::OneOf(
                domain::referral::ReferralStatus::ALL
                    .iter()
                    .map(|s| Value::from(s.code()))
                    .collect(),
            ),
            "beds" => Shape::Whole(1, i64::from(domain::reference::MAX_BEDS)),
            "response_sla_minutes" => Shape::Whole(1, i64::from(u32::MAX)),
            "limit" => Shape::Whole(0, i64::from(u32::MAX)),
            "days" => Shape::Whole(1, i64::from(crate::routes::boards::DAILY_MAX_DAYS)),
            "hours" => Shape::Whole(1, i64::from(crate::routes::boards::DISCHARGES_MAX_HOURS)),
            "consistency_token" => Shape::Pattern(consistency_token(), 96),
            "board" => Shape::Pattern(board(), 48),
            "q" => Shape::Pattern(search(), MAX_SEARCH),
            // A PAS's sending facility (MSH-4) as a census names it.
            "facility" => Shape::Pattern(
                "^[A-Za-z0-9 ._-]+$".to_owned(),
                crate::routes::feeds::MAX_PAS_CODE,
            ),
            _ => return None,
        })
    }

    /// The shape of a path parameter: by name, and for `code` and `id` by
    /// the collection the path names.
    fn of_path(path: &str, name: &str) -> Option<Shape> {
        let under = |prefix: &str| path.starts_with(prefix);
        if name == "sub" {
            return Some(Shape::Text {
                max: crate::routes::access::MAX_SUB,
                lines: false,
            });
        }
        if name == "id" && under("/api/v1/feeds/held/") {
            return Some(Shape::Pattern("^[0-9]{1,18}$".to_owned(), 18));
        }
        let max = match name {
            "ward" => WardCode::MAX_LEN,
            "hospital" => HospitalCode::MAX_LEN,
            "team" => TeamCode::MAX_LEN,
            "hub" => HubCode::MAX_LEN,
            "delay_id" => DelayId::MAX_LEN,
            "code" if under("/api/v1/hospitals/") => HospitalCode::MAX_LEN,
            "code" if under("/api/v1/wards/") => WardCode::MAX_LEN,
            "code" if under("/api/v1/teams/") => TeamCode::MAX_LEN,
            "code" if under("/api/v1/hubs/") => HubCode::MAX_LEN,
            "id" if under("/api/v1/spells/") => SpellId::MAX_LEN,
            "id" if under("/api/v1/referrals/") => ReferralId::MAX_LEN,
            _ => return None,
        };
        Some(Shape::Code(max))
    }

    fn apply(shape: Shape, schema: &mut Schema) {
        if let Schema::Array(array) = schema {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                if let RefOr::T(items) = items.as_mut() {
                    apply(shape, items);
                }
            }
            // A team offers at least one service.
            array.min_items = Some(1);
            return;
        }
        let Schema::Object(object) = schema else {
            return;
        };
        set(shape, object);
    }

    fn set(shape: Shape, object: &mut Object) {
        match shape {
            Shape::Code(max) => {
                object.min_length = Some(1);
                object.max_length = Some(max);
                object.pattern = Some(CODE.to_owned());
            }
            Shape::NhsNumber => {
                object.max_length = Some(32);
                object.pattern = Some(NHS_NUMBER.to_owned());
            }
            Shape::Text { max, lines } => {
                object.min_length = Some(1);
                object.max_length = Some(max);
                object.pattern = Some(text_pattern(lines));
                judged(object);
            }
            Shape::OneOf(values) => object.enum_values = Some(values),
            Shape::JudgedOneOf(values, max) => {
                object.max_length = Some(max);
                object.enum_values = Some(values);
                judged(object);
            }
            Shape::Whole(least, most) => {
                object.minimum = Some(least.into());
                object.maximum = Some(most.into());
            }
            Shape::Pattern(pattern, max) => {
                object.max_length = Some(max);
                object.pattern = Some(pattern);
            }
            Shape::Bounded(max) => object.max_length = Some(max),
        }
    }

    fn judged(object: &mut Object) {
        let marker = ExtensionsBuilder::new()
            .add(JUDGED_AFTER_AUTHORISING, true)
            .build();
        match &mut object.extensions {
            Some(extensions) => extensions.merge(marker),
            None => object.extensions = Some(marker),
        }
    }

    /// Whether the handler judges this field's pattern or list.
    pub fn is_judged(object: &Object) -> bool {
        object
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key(JUDGED_AFTER_AUTHORISING))
    }

    /// Gives every property of the request body `body` its shape.
    pub fn refine_body(body: &str, schema: &mut RefOr<Schema>) {
        let RefOr::T(Schema::Object(object)) = schema else {
            return;
        };
        for (name, property) in object.properties.iter_mut() {
            if let (Some(shape), RefOr::T(property)) = (of(body, name), property) {
                apply(shape, property);
            }
        }
    }

    /// Gives a query or path parameter of `path` its shape.
    pub fn refine_parameter(path: &str, parameter: &mut utoipa::openapi::path::Parameter) {
        use utoipa::openapi::path::ParameterIn;
        let shape = match parameter.parameter_in {
            ParameterIn::Path => of_path(path, &parameter.name),
            _ => of("", &parameter.name),
        };
        if let (Some(shape), Some(RefOr::T(schema))) = (shape, parameter.schema.as_mut()) {
            apply(shape, schema);
        }
    }
}
