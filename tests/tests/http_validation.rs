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
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
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
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
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
    let docs = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut misplaced = Vec::new();
    let mut queries = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
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
    }
    assert!(
        misplaced.is_empty(),
        "declared in the path but not in it: {misplaced:#?}"
    );
    assert!(queries >= 15, "only {queries} query parameters");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_page_is_a_404_page_for_a_browser_and_a_404_problem_for_a_client() {
    let app = TestApp::spawn(Stack::Embedded).await;
    for path in ["/nonsense/page", "/ward/", "/ward/W1/beds"] {
        let page = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
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
