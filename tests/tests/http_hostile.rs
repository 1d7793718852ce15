//! Hostile and loose input (issue 13): control characters and
//! bidirectional overrides in text, dates no record can hold, bodies that
//! are not JSON, and wards no hospital has. Each is a clear problem naming
//! what is wrong, never a 500, the same on both stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, Stack, TestApp};
use infra::auth::Role;
use serde_json::json;

async fn text_with_control_characters_is_refused_naming_the_field(stack: Stack) {
    let app = TestApp::spawn(stack).await;
    app.seed_reference().await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    for (family, code) in [
        ("Smi\u{0}th", "U+0000"),
        ("Smi\u{7}th", "U+0007"),
        ("Ann\u{202E}htimS", "U+202E"),
    ] {
        let mut body = admission(1, "W1", 1);
        body["family_name"] = json!(family);
        let refused = ward.post("/api/v1/spells", body).await.expect(422);
        assert_eq!(refused.body["errors"][0]["field"], "family_name");
        assert!(
            refused.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(code),
            "{:#}",
            refused.body
        );
    }
    let spell = ward.admit(2, "W1", 2).await.id();
    let note = ward
        .post(
            &format!("/api/v1/spells/{spell}/delays"),
            json!({"reason_code": "A", "note": "waiting\u{0}", "at": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(note.status, 422, "{:#}", note.body);
    assert_eq!(note.body["errors"][0]["field"], "note");
    let summary = ward
        .post(
            "/api/v1/referrals",
            json!({"spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1",
                   "summary": "needs\u{1b}[31m help"}),
        )
        .await
        .expect(422);
    assert_eq!(summary.body["errors"][0]["field"], "summary");
    // A note keeps its line breaks.
    ward.post(
        "/api/v1/referrals",
        json!({"spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1",
               "summary": "lives alone\nkey safe by the door"}),
    )
    .await
    .expect(201);
    let admin = app.as_(Role::Admin, None);
    let ward_name = admin
        .put(
            "/api/v1/wards/W9",
            json!({"name": "Ward\u{0}9", "hospital": "POOLE", "beds": 10}),
        )
        .await
        .expect(422);
    assert_eq!(ward_name.body["errors"][0]["field"], "name");
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    text_with_control_characters_is_refused_naming_the_field =>
    text_with_control_characters_is_refused_naming_the_field_on_the_embedded_default,
    text_with_control_characters_is_refused_naming_the_field_on_postgres_and_jetstream
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dates_no_record_can_hold_bodies_that_are_not_json_and_impossible_wards_are_refused() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    for born in ["0000-01-01", "1879-12-31"] {
        let mut body = admission(3, "W1", 3);
        body["date_of_birth"] = json!(born);
        let refused = ward.post("/api/v1/spells", body).await.expect(422);
        assert_eq!(refused.body["rule"], "born_too_long_ago");
        assert_eq!(refused.body["errors"][0]["field"], "date_of_birth");
    }
    let spell = ward.admit(3, "W1", 3).await.id();
    let edd = ward
        .post(
            &format!("/api/v1/spells/{spell}/expected-discharge-date"),
            json!({"date": "9999-12-31"}),
        )
        .await
        .expect(422);
    assert_eq!(edd.body["errors"][0]["field"], "date");

    let url = format!("{}/api/v1/spells/{spell}/pathway", app.base);
    let token = app.token(Role::Ward, Some("POOLE"));
    for content_type in [Some("text/plain"), None, Some("application/evil+json")] {
        let mut request = app
            .client
            .post(&url)
            .bearer_auth(&token)
            .body(r#"{"pathway":"P1"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let answer = baton_tests::http::read(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 415, "{content_type:?}: {:#}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
    }
    let answer = baton_tests::http::read(
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json; charset=utf-8")
            .body(r#"{"pathway":"P1"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);

    let admin = app.as_(Role::Admin, None);
    for beds in [121, 65_535] {
        let refused = admin
            .put(
                "/api/v1/wards/W9",
                json!({"name": "Ward 9", "hospital": "POOLE", "beds": beds}),
            )
            .await;
        assert_eq!(refused.status, 400, "{:#}", refused.body);
        assert_eq!(refused.body["errors"][0]["field"], "beds");
    }
    admin
        .put(
            "/api/v1/wards/W9",
            json!({"name": "Ward 9", "hospital": "POOLE", "beds": 120}),
        )
        .await
        .ok();
    app.stop().await;
}

async fn last_access(app: &TestApp, nhs: &str) -> serde_json::Value {
    let log = app
        .as_(Role::Admin, None)
        .get(&format!("/api/v1/audit?nhs_number={nhs}"))
        .await
        .ok();
    // The newest read of the spell.
    log.body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "read_spell")
        .max_by_key(|a| a["at"].as_str().unwrap().to_owned())
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_access_log_records_the_real_client_and_a_safe_request_id() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(5, "W1", 5).await.id();
    let nhs = baton_tests::fixtures::nhs_number(5).digits();
    let token = app.token(Role::Ward, Some("POOLE"));
    let read = |forwarded: &'static str, id: &'static str| {
        app.client
            .get(format!("{}/api/v1/spells/{spell}", app.base))
            .bearer_auth(&token)
            .header("x-forwarded-for", forwarded)
            .header("x-request-id", id)
            .send()
    };
    assert_eq!(
        read("203.0.113.99", "<script>alert(1)</script>")
            .await
            .unwrap()
            .status(),
        200
    );
    let access = last_access(&app, &nhs).await;
    assert_eq!(
        access["client"], "127.0.0.1",
        "a forged address is not recorded"
    );
    let id = access["request_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a minted id, not {id}");
    assert_eq!(
        read("203.0.113.99", "trace-42").await.unwrap().status(),
        200
    );
    assert_eq!(last_access(&app, &nhs).await["request_id"], "trace-42");
    let (mut config, data_dir) = (app.config.clone(), app.data_dir.clone());
    app.stop().await;

    // Behind a configured proxy (here, loopback), its header is believed.
    config.trusted_proxies = Some("127.0.0.1".to_owned());
    let behind = TestApp::start(config, data_dir, None, None).await;
    let token = behind.token(Role::Ward, Some("POOLE"));
    let answer = behind
        .client
        .get(format!("{}/api/v1/spells/{spell}", behind.base))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.99")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(last_access(&behind, &nhs).await["client"], "203.0.113.99");
    behind.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unsafe_request_id_is_answered_with_a_minted_one_and_a_safe_one_is_echoed_back() {
    let app = TestApp::spawn(Stack::Embedded).await;
    let answer_to = |id: Option<String>| {
        let request = app.client.get(format!("{}/api/v1/no-such-thing", app.base));
        match id {
            Some(id) => request.header("x-request-id", id),
            None => request,
        }
        .send()
    };
    for unsafe_id in [
        Some("<script>alert(1)</script>".to_owned()),
        Some("two words".to_owned()),
        Some("a".repeat(65)),
        None,
    ] {
        let answer = answer_to(unsafe_id.clone()).await.unwrap();
        assert_eq!(answer.status(), 404);
        let id = answer.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{unsafe_id:?} answered with {id}, not a minted id"
        );
        assert_eq!(answer.headers()["cache-control"], "no-store");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["status"], 404, "still a problem: {body}");
    }
    for safe_id in ["trace-42", "abc-123_DEF.4:5"] {
        let answer = answer_to(Some(safe_id.to_owned())).await.unwrap();
        assert_eq!(answer.headers()["x-request-id"], safe_id);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn learning_that_a_patient_is_in_another_hospital_is_logged_as_a_read_of_that_patient() {
    let app = TestApp::seeded(Stack::Embedded).await;
    app.as_(Role::Ward, Some("POOLE"))
        .post("/api/v1/spells", admission(6, "W1", 6))
        .await
        .expect(201);
    let probe = app
        .as_(Role::Ward, Some("DCH"))
        .post("/api/v1/spells", admission(6, "X1", 1))
        .await
        .expect(409);
    assert_eq!(probe.body["rule"], "patient_already_in_hospital");
    let detail = probe.body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("POOLE") && !detail.contains("W1"),
        "{detail}"
    );
    let nhs = baton_tests::fixtures::nhs_number(6).digits();
    let log = app
        .as_(Role::Admin, None)
        .get(&format!("/api/v1/audit?nhs_number={nhs}"))
        .await
        .ok();
    assert!(
        log.body.as_array().unwrap().iter().any(|a| a["action"]
            == "admit_refused_patient_in_hospital"
            && a["actor"] == "ward-DCH"),
        "{:#}",
        log.body
    );
    app.stop().await;
}
