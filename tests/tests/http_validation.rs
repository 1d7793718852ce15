//! Form errors come all at once, in plain words: an empty admission names
//! every missing field in one problem, and values the domain refuses come
//! together too, each at its field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{Stack, TestApp};
use infra::auth::Role;
use serde_json::{json, Value};

fn fields(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_admission_is_answered_with_every_missing_field_in_one_problem() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let empty = ward.post("/api/v1/spells", json!({})).await.expect(400);
    assert_eq!(empty.content_type, "application/problem+json");
    let named: Vec<String> = fields(&empty.body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        named,
        [
            "nhs_number",
            "family_name",
            "given_name",
            "date_of_birth",
            "ward",
            "bed",
            "admitted_at"
        ]
    );
    assert!(fields(&empty.body)
        .iter()
        .any(|(f, m)| f == "date_of_birth" && m == "enter the date of birth"));
    // What a form sends when nothing is typed: blank dates are missing too,
    // and no parser jargon.
    let blank = ward
        .post(
            "/api/v1/spells",
            json!({"nhs_number": "9912003888", "family_name": "A", "given_name": "B",
                   "date_of_birth": "", "ward": "W1", "bed": "1", "admitted_at": "soon"}),
        )
        .await
        .expect(400);
    let all = fields(&blank.body);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[0],
        ("date_of_birth".into(), "enter the date of birth".into())
    );
    assert!(all[1]
        .1
        .starts_with("enter the time of admission as a date and time"));
    assert!(!blank.body.to_string().contains("premature end of input"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_the_domain_refuses_are_answered_together_each_at_its_field() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let refused = ward
        .post(
            "/api/v1/spells",
            json!({"nhs_number": "9912003889", "family_name": " ", "given_name": "  ",
                   "date_of_birth": "1941-03-02", "ward": "W1", "bed": "1",
                   "admitted_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await
        .expect(422);
    let all = fields(&refused.body);
    assert_eq!(
        all.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        ["nhs_number", "family_name", "given_name"]
    );
    assert_eq!(all[1].1, "enter the family name");
    assert_eq!(refused.body["rule"], "invalid_nhs_number");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docs_show_each_bodys_fields_with_their_types_and_whether_required() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let docs = app.text("/docs").await;
    for row in [
        "<tr><td><code>date_of_birth</code></td><td>string (date)</td><td>required</td><td>Date of birth.</td></tr>",
        "<tr><td><code>admitted_at</code></td><td>string (date-time)</td><td>required</td>",
        "<tr><td><code>note</code></td><td>string or null</td><td>optional</td>",
        "<tr><td><code>services</code></td><td>list of string</td><td>required</td>",
        "<tr><td><code>beds</code></td><td>integer (int32)</td><td>required</td>",
    ] {
        assert!(docs.contains(row), "/docs lacks {row}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_declares_query_parameters_in_the_query() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let doc = openapi(&app).await;
    let mut misplaced = Vec::new();
    let mut queries = 0;
    for (path, method, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let in_template = path.contains(&format!("{{{name}}}"));
            match p["in"].as_str().unwrap() {
                "path" if !in_template => misplaced.push(format!("{method} {path} {name}")),
                "query" => {
                    queries += 1;
                    assert!(!in_template, "{method} {path} {name}");
                }
                _ => {}
            }
        }
    }
    assert!(
        misplaced.is_empty(),
        "declared in the path but not in it: {misplaced:#?}"
    );
    assert!(queries >= 15, "only {queries} query parameters");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_that_takes_a_body_documents_the_422_its_text_checks_give() {
    // Schemathesis found a revocation's reason with a control character
    // answered 422 while the document listed no 422 for it.
    let app = TestApp::spawn(Stack::Embedded).await;
    let refused = app
        .as_(Role::Admin, None)
        .post(
            "/api/v1/access/u-1/revoke",
            json!({ "reason": "\u{0087}left" }),
        )
        .await
        .expect(422);
    assert_eq!(refused.body["rule"], "invalid_text");
    let doc = openapi(&app).await;
    let mut bodies = 0;
    for (path, method, op) in operations(&doc) {
        if op.get("requestBody").is_some() {
            bodies += 1;
            assert!(
                op["responses"].get("422").is_some(),
                "{method} {path} documents no 422"
            );
        }
    }
    assert!(bodies >= 15, "only {bodies} operations take a body");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_page_is_a_404_page_for_a_browser_and_a_404_problem_for_a_client() {
    let app = TestApp::spawn(Stack::Embedded).await;
    for path in ["/nonsense/page", "/ward/", "/ward/W1/beds"] {
        let page = page_load(&app, path).await;
        assert_eq!(page.status(), 404, "{path}");
        assert!(page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            page.text().await.unwrap().contains("/assets/app.js"),
            "the shell"
        );
        let problem = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(problem.status(), 404);
        assert_eq!(
            problem.headers()["content-type"],
            "application/problem+json"
        );
    }
    app.stop().await;
}

/// Every page the script routes to (`route()` in api/assets/app.js) is
/// served by the server too, so a reload, a bookmark or the return from
/// the identity provider lands on the page and not on "no page here".
/// `/hub/{code}` once was not (a hub user's home page was a 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_the_script_routes_to_is_served_on_a_direct_load() {
    let script = include_str!("../../api/assets/app.js");
    // (page name, whether it stands alone: `/system` rather than `/ward/W1`)
    let routed: Vec<(String, bool)> = script
        .lines()
        .flat_map(|line| {
            let alone = line.contains("parts.length === 1");
            line.split("page === '")
                .skip(1)
                .filter_map(move |rest| Some((rest.split('\'').next()?.to_owned(), alone)))
        })
        .collect();
    let names = |alone: bool| -> Vec<&str> {
        routed
            .iter()
            .filter(|(_, a)| *a == alone)
            .map(|(page, _)| page.as_str())
            .collect()
    };
    let (pairs, singles) = (names(false), names(true));
    assert_eq!(
        pairs,
        ["ward", "team", "hospital", "hub"],
        "pages with a code"
    );
    assert_eq!(singles, ["system", "admin"], "pages without one");
    let app = TestApp::spawn(Stack::Embedded).await;
    let paths = pairs
        .iter()
        .map(|page| format!("/{page}/X1"))
        .chain(singles.iter().map(|page| format!("/{page}")))
        .chain(["/".to_owned()]);
    for path in paths {
        let page = page_load(&app, &path).await;
        assert_eq!(page.status(), 200, "{path}");
        assert!(
            page.text().await.unwrap().contains("/assets/app.js"),
            "{path}"
        );
    }
    app.stop().await;
}

/// `path` loaded as a browser loads a page.
async fn page_load(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap()
}

/// Every operation of the document: its path, method and operation object.
fn operations(doc: &Value) -> impl Iterator<Item = (&String, &String, &Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, op)| (path, method, op))
        })
}

async fn openapi(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every request body's schema, by name, with the document's `$ref`s
/// followed.
fn request_bodies(doc: &Value) -> Vec<(String, Value)> {
    let mut bodies = Vec::new();
    for (_, _, op) in operations(doc) {
        let Some(reference) =
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        else {
            continue;
        };
        let name = reference.rsplit('/').next().unwrap().to_owned();
        let schema = doc["components"]["schemas"][&name].clone();
        if !bodies.iter().any(|(n, _)| *n == name) {
            bodies.push((name, schema));
        }
    }
    bodies
}

fn string_schemas(schema: &Value) -> Option<&Value> {
    let is_string = |s: &Value| {
        s["type"] == "string"
            || s["type"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t == "string"))
    };
    if is_string(schema) {
        Some(schema)
    } else if schema["type"] == "array" && is_string(&schema["items"]) {
        Some(&schema["items"])
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_text_field_of_every_request_body_is_bounded_and_every_closed_set_is_an_enum() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let doc = openapi(&app).await;
    let bodies = request_bodies(&doc);
    assert!(bodies.len() >= 15, "{bodies:?}");
    let mut unbounded = Vec::new();
    let mut open = Vec::new();
    for (name, schema) in &bodies {
        // (`Empty` has no properties.)
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let Some(text) = string_schemas(property) else {
                continue;
            };
            // A date or an instant is bounded by its format.
            if text["format"].is_string() {
                continue;
            }
            if !text["maxLength"].is_u64() && text["enum"].is_null() {
                unbounded.push(format!("{name}.{field}"));
            }
            if [
                "pathway",
                "service",
                "services",
                "destination",
                "reason_code",
            ]
            .contains(&field.as_str())
                && !text["enum"].is_array()
            {
                open.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(unbounded.is_empty(), "no maxLength: {unbounded:?}");
    assert!(open.is_empty(), "no enum: {open:?}");
    let team = &doc["components"]["schemas"]["TeamRequest"]["properties"];
    assert_eq!(
        team["services"]["items"]["enum"],
        json!([
            "reablement",
            "home_care",
            "district_nursing",
            "community_rehab_bed",
            "care_home",
            "social_work_assessment",
            "hospice",
            "other"
        ])
    );
    assert_eq!(team["services"]["minItems"], 1);
    assert_eq!(team["response_sla_minutes"]["minimum"], 1);
    let discharge = &doc["components"]["schemas"]["DischargeRequest"]["properties"];
    assert_eq!(
        discharge["destination"]["enum"].as_array().unwrap().len(),
        9
    );
    let ward = &doc["components"]["schemas"]["WardRequest"]["properties"];
    assert_eq!(ward["beds"]["maximum"], domain::reference::MAX_BEDS);
    let admit = &doc["components"]["schemas"]["AdmitRequest"]["properties"];
    assert_eq!(admit["family_name"]["maxLength"], domain::values::MAX_NAME);
    assert!(admit["nhs_number"]["pattern"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_parameter_states_its_bounds_and_every_closed_set_of_values_is_an_enum() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let doc = openapi(&app).await;
    let mut loose = Vec::new();
    for (path, method, op) in operations(&doc) {
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let schema = &parameter["schema"];
            let bounded = match name {
                "status" => schema["enum"].is_array(),
                _ if schema["type"] == "boolean" => true,
                "limit" | "days" | "hours" => {
                    schema["minimum"].is_number() && schema["maximum"].is_number()
                }
                _ => schema["maxLength"].is_u64() && schema["pattern"].is_string(),
            };
            if !bounded {
                loose.push(format!("{method} {path} {name}"));
            }
        }
    }
    assert!(loose.is_empty(), "{loose:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_at_each_bound_is_accepted_and_one_past_it_is_refused_naming_the_field() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let admin = app.as_(Role::Admin, None);
    let most = domain::reference::MAX_BEDS;
    let ward = |beds: Value| json!({"name": "Ward 9", "hospital": "POOLE", "beds": beds});
    admin
        .put("/api/v1/wards/W9", ward(json!(most)))
        .await
        .expect(200);
    let refused = admin
        .put("/api/v1/wards/W9", ward(json!(most + 1)))
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "beds");
    let longest = "W".repeat(domain::values::WardCode::MAX_LEN);
    let refused = admin
        .put(
            "/api/v1/wards/W9",
            json!({"name": "Ward 9", "hospital": longest + "X", "beds": 3}),
        )
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "hospital");
    let team = |minutes: Value, services: Value| json!({"name": "Team", "services": services, "response_sla_minutes": minutes});
    admin
        .put("/api/v1/teams/T9", team(json!(1), json!(["reablement"])))
        .await
        .expect(200);
    // 60.0 is an integer to JSON Schema, and so to Baton.
    let sixty = admin
        .put("/api/v1/teams/T9", team(json!(60.0), json!(["reablement"])))
        .await
        .expect(200);
    assert_eq!(sixty.body["response_sla_minutes"], 60);
    let refused = admin
        .put("/api/v1/teams/T9", team(json!(60.5), json!(["reablement"])))
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "response_sla_minutes");
    for (body, field) in [
        (
            team(json!(0), json!(["reablement"])),
            "response_sla_minutes",
        ),
        (team(json!(5), json!([])), "services"),
        (team(json!(5), json!(["teleportation"])), "services"),
    ] {
        let refused = admin.put("/api/v1/teams/T9", body).await.expect(400);
        assert_eq!(refused.body["errors"][0]["field"], field);
    }

    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward
        .post("/api/v1/spells", baton_tests::http::admission(1, "W1", 1))
        .await
        .expect(201)
        .id();
    let note_most = domain::values::MAX_TEXT;
    let at = chrono::Utc::now().to_rfc3339();
    ward.post(
        &format!("/api/v1/spells/{spell}/delays"),
        json!({"reason_code": "1", "note": "n".repeat(note_most), "at": at}),
    )
    .await
    .expect(201);
    let refused = ward
        .post(
            &format!("/api/v1/spells/{spell}/delays"),
            json!({"reason_code": "1", "note": format!(" {}", "n".repeat(note_most)), "at": at}),
        )
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "note");
    let refused = ward
        .post(
            &format!("/api/v1/spells/{spell}/pathway"),
            json!({"pathway": "P4"}),
        )
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "pathway");
    let refused = ward
        .post(
            &format!("/api/v1/spells/{spell}/discharge"),
            json!({"at": at, "destination": "the moon"}),
        )
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "destination");
    // An NHS number that is not ten digits is malformed; one that fails
    // Modulus 11 is refused by the rule, as the contract says.
    let mut body = baton_tests::http::admission(2, "W1", 2);
    body["nhs_number"] = json!("99120O3888");
    let refused = ward.post("/api/v1/spells", body.clone()).await.expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "nhs_number");
    body["nhs_number"] = json!("9912003889");
    let refused = ward.post("/api/v1/spells", body).await.expect(422);
    assert_eq!(refused.body["rule"], "invalid_nhs_number");

    // Query parameters, at and past their bounds.
    let system = app.as_(Role::System, None);
    let daily = "/api/v1/boards/hospitals/POOLE/daily";
    system.get(&format!("{daily}?days=1")).await.expect(200);
    system.get(&format!("{daily}?days=90")).await.expect(200);
    for days in ["0", "91"] {
        let refused = system
            .get(&format!("{daily}?days={days}"))
            .await
            .expect(400);
        assert_eq!(refused.body["errors"][0]["field"], "days");
    }
    let recent = "/api/v1/boards/wards/W1/recent-discharges";
    ward.get(&format!("{recent}?hours=720")).await.expect(200);
    let refused = ward.get(&format!("{recent}?hours=721")).await.expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "hours");
    let refused = ward.get("/api/v1/referrals?status=lost").await.expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "status");
    let refused = ward
        .get(&format!(
            "/api/v1/spells/search?q={}",
            "a".repeat(baton_search_max() + 1)
        ))
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "q");
    ward.get(&format!(
        "/api/v1/spells/search?q={}",
        "a".repeat(baton_search_max())
    ))
    .await
    .expect(200);
    let refused = ward
        .get("/api/v1/boards/wards/W1?consistency_token=nonsense")
        .await
        .expect(400);
    assert_eq!(refused.body["errors"][0]["field"], "consistency_token");
    app.stop().await;
}

fn baton_search_max() -> usize {
    api::openapi::shape::MAX_SEARCH
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_signed_in_operation_documents_the_403_its_roles_can_get() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let doc = openapi(&app).await;
    let mut missing = Vec::new();
    for (path, method, op) in operations(&doc) {
        let public = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().all(|r| r == &json!({})));
        if public || path == "/api/v1/session" {
            continue;
        }
        if op["responses"]["403"]["content"]["application/problem+json"].is_null() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "{missing:?}");
    // A team may not admit: the answer the document promises.
    app.seed_reference().await;
    let team = app.as_(Role::Team, Some("REAB"));
    team.post("/api/v1/spells", baton_tests::http::admission(1, "W1", 1))
        .await
        .expect(403);
    app.stop().await;
}
