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
            }
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(|| problem("A parameter or the body cannot be read"));
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
