//! Finding a patient again through the API: a ward's recent discharges and
//! a search by NHS number or name, within the caller's hospital, from which
//! a discharge made in error is corrected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::fixtures::nhs_number;
use baton_tests::http::{Stack, TestApp};
use infra::auth::Role;
use serde_json::json;

fn at(hours_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_discharge_made_in_error_is_found_again_and_cancelled() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let leaving = ward.admit(1, "W1", 1).await.id();
    ward.admit(2, "W1", 2).await;
    let out = ward
        .post(
            &format!("/api/v1/spells/{leaving}/discharge"),
            json!({ "at": at(1), "destination": "usual_residence" }),
        )
        .await
        .expect(200);

    let recent = ward
        .get_after("/api/v1/boards/wards/W1/recent-discharges", &out)
        .await
        .ok();
    assert_eq!(recent.body["hours"], 72);
    let discharges = recent.body["discharges"].as_array().unwrap();
    assert_eq!(discharges.len(), 1);
    assert_eq!(discharges[0]["spell_id"], leaving.as_str());
    assert_eq!(discharges[0]["nhs_number"], nhs_number(1).digits());
    assert_eq!(discharges[0]["status"], "discharged");
    let version = discharges[0]["version"].as_u64().unwrap();

    let digits = nhs_number(1).digits();
    let spaced = format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..]);
    let found = ward
        .get(&format!(
            "/api/v1/spells/search?q={}",
            spaced.replace(' ', "%20")
        ))
        .await
        .ok();
    let results = found.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["spell_id"], leaving.as_str());
    let by_name = ward.get("/api/v1/spells/search?q=patient").await.ok();
    let names = by_name.body["results"].as_array().unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0]["status"], "in_hospital", "in hospital first");

    // The correction, against the version the list gave.
    let cancelled = ward
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/spells/{leaving}/cancel-discharge"),
            Some(json!({ "reason": "discharged the wrong patient" })),
            &[("If-Match", &format!("\"{version}\""))],
        )
        .await
        .expect(200);
    let recent = ward
        .get_after("/api/v1/boards/wards/W1/recent-discharges", &cancelled)
        .await
        .ok();
    assert!(recent.body["discharges"].as_array().unwrap().is_empty());

    // Who looked is in the access log.
    let log = app
        .as_(Role::Admin, None)
        .get(&format!("/api/v1/audit?nhs_number={digits}"))
        .await
        .ok();
    let actions: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"search_patients"), "{actions:?}");
    assert!(actions.contains(&"read_recent_discharges"), "{actions:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nobody_finds_patients_outside_their_hospital_and_bad_searches_say_what_is_wrong() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let poole = app.as_(Role::Ward, Some("POOLE"));
    let token = poole.admit(3, "W1", 3).await.token();
    poole
        .get(&format!(
            "/api/v1/boards/wards/W1?consistency_token={token}"
        ))
        .await
        .ok();
    let dch = app.as_(Role::Ward, Some("DCH"));
    let found = dch.get("/api/v1/spells/search?q=patient").await.ok();
    assert!(found.body["results"].as_array().unwrap().is_empty());
    dch.get("/api/v1/boards/wards/W1/recent-discharges")
        .await
        .expect(403);
    for role in [Role::System, Role::Admin] {
        app.as_(role, None)
            .get("/api/v1/spells/search?q=patient")
            .await
            .expect(403);
    }
    app.as_(Role::Team, Some("REAB"))
        .get("/api/v1/spells/search?q=patient")
        .await
        .expect(403);
    let short = poole.get("/api/v1/spells/search?q=a").await.expect(400);
    assert_eq!(short.body["errors"][0]["field"], "q");
    poole.get("/api/v1/spells/search").await.expect(400);
    for hours in ["0", "721", "x"] {
        let bad = poole
            .get(&format!(
                "/api/v1/boards/wards/W1/recent-discharges?hours={hours}"
            ))
            .await
            .expect(400);
        assert_eq!(bad.body["errors"][0]["field"], "hours", "{:#}", bad.body);
    }
    poole
        .get("/api/v1/boards/wards/W1/recent-discharges?hours=720")
        .await
        .ok();
    poole
        .get("/api/v1/boards/wards/NOPE/recent-discharges")
        .await
        .expect(404);
    app.stop().await;
}
