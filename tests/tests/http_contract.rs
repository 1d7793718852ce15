//! The HTTP contract end to end, on the embedded default and on PostgreSQL
//! with NATS JetStream: every command and read of a patient's journey from
//! admission to a team taking them on, with consistency tokens so no test
//! ever sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use baton_tests::http::{Events, Stack, TestApp};
use infra::auth::Role;
use serde_json::json;

fn at(minutes_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339()
}

async fn a_patient_journey(stack: Stack) {
    let app = TestApp::spawn(stack).await;
    app.seed_reference().await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let team = app.as_(Role::Team, Some("REAB"));
    let system = app.as_(Role::System, None);

    // Admit, and see the patient on the ward board at once.
    let admitted = ward.admit(1, "W1", 4).await;
    let spell = admitted.id();
    assert_eq!(admitted.body["version"], 1);
    let board = ward
        .get_after("/api/v1/boards/wards/W1", &admitted)
        .await
        .expect(200);
    assert_eq!(board.body["totals"]["occupied"], 1);
    let bed = &board.body["beds"][3];
    assert_eq!(bed["bed"], "4");
    assert_eq!(bed["spell_id"], spell.as_str());
    assert_eq!(bed["patient"]["family_name"], "Patient1");

    // The day's ward work.
    let s = |tail: &str| format!("/api/v1/spells/{spell}/{tail}");
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    ward.post(&s("expected-discharge-date"), json!({ "date": tomorrow }))
        .await
        .expect(200);
    ward.post(
        &s("criteria-review"),
        json!({ "meets_criteria_to_reside": false, "at": at(60) }),
    )
    .await
    .expect(200);
    ward.post(&s("pathway"), json!({ "pathway": "P1" }))
        .await
        .expect(200);
    let delay = ward
        .post(
            &s("delays"),
            json!({ "reason_code": "9", "note": "awaiting package", "at": at(30) }),
        )
        .await
        .expect(201);
    let delay_id = delay.body["delay_id"].as_str().unwrap().to_owned();
    assert_eq!(delay_id, "D1");
    ward.post(
        &s("transfer"),
        json!({ "ward": "W2", "bed": "7", "at": at(20) }),
    )
    .await
    .expect(200);
    ward.post(
        &s(&format!("delays/{delay_id}/resolve")),
        json!({ "at": at(10) }),
    )
    .await
    .expect(200);

    // The handover: raised by the ward, answered by the team.
    let raised = ward
        .post(
            "/api/v1/referrals",
            json!({ "spell_id": spell, "team": "REAB", "service": "reablement",
                    "pathway": "P1", "summary": "Needs support with stairs" }),
        )
        .await
        .expect(201);
    let referral = raised.id();
    let r = |tail: &str| format!("/api/v1/referrals/{referral}/{tail}");
    let seen = team
        .get_after(&format!("/api/v1/referrals/{referral}"), &raised)
        .await
        .expect(200);
    assert_eq!(seen.body["status"], "requested");
    assert_eq!(seen.body["subject"]["patient"]["family_name"], "Patient1");
    team.post(&r("acknowledge"), json!({})).await.expect(200);
    team.post(
        &r("request-information"),
        json!({ "question": "Key safe?" }),
    )
    .await
    .expect(200);
    ward.post(
        &r("provide-information"),
        json!({ "answer": "Yes, code with family" }),
    )
    .await
    .expect(200);
    let planned = (chrono::Utc::now().date_naive() + chrono::Duration::days(2)).to_string();
    let accepted = team
        .post(&r("accept"), json!({ "planned_start": planned }))
        .await
        .expect(200);
    let board = team
        .get_after("/api/v1/boards/teams/REAB", &accepted)
        .await
        .expect(200);
    assert_eq!(board.body["counts"]["accepted"], 1);
    let listed = team
        .get("/api/v1/referrals?status=accepted")
        .await
        .expect(200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    // Discharge, a correction, and discharge again.
    let out = ward
        .post(
            &s("discharge"),
            json!({ "at": at(1), "destination": "usual_residence_with_support" }),
        )
        .await
        .expect(200);
    let board = ward
        .get_after("/api/v1/boards/hospitals/POOLE", &out)
        .await
        .expect(200);
    assert_eq!(board.body["totals"]["occupied"], 0);
    assert_eq!(board.body["totals"]["discharges_today"], 1);
    ward.post(
        &s("cancel-discharge"),
        json!({ "reason": "entered on the wrong patient" }),
    )
    .await
    .expect(200);
    let again = ward
        .post(
            &s("discharge"),
            json!({ "at": at(0), "destination": "usual_residence" }),
        )
        .await
        .expect(200);
    team.post(&r("start-care"), json!({ "at": at(0) }))
        .await
        .expect(200);

    // The leaders' charts: today's discharge counts, once the boards hold
    // the discharge (the board trails the commit).
    let discharged = again.token();
    let daily = system
        .get(&format!(
            "/api/v1/boards/system/daily?days=30&consistency_token={discharged}"
        ))
        .await
        .expect(200);
    let days = daily.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["discharges"], 1);
    assert_eq!(
        ward.get("/api/v1/boards/hospitals/POOLE/daily?days=7")
            .await
            .expect(200)
            .body["days"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // History: every event, in order, with who and when.
    let history = ward.get(&s("history")).await.expect(200);
    let types: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"PatientAdmitted"));
    assert_eq!(types.last(), Some(&"PatientDischarged"));
    assert_eq!(history.body[0]["by"]["id"], "ward-POOLE");
    let current = ward
        .get(&format!("/api/v1/spells/{spell}"))
        .await
        .expect(200);
    assert_eq!(current.body["version"], again.body["version"]);
    assert_eq!(
        current.etag.as_deref(),
        Some(format!("\"{}\"", again.body["version"]).as_str())
    );

    // The system board: counts only.
    let sys = system
        .get_after("/api/v1/boards/system", &again)
        .await
        .expect(200);
    assert!(sys.body["hospitals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["hospital"] == "POOLE"));
    assert!(
        !sys.body.to_string().contains("Patient1"),
        "identities on the system board"
    );
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_patient_journey =>
    a_patient_journey_through_the_api_on_the_embedded_default,
    a_patient_journey_through_the_api_on_postgres_and_jetstream
);

async fn a_change_arrives_on_another_clients_stream(stack: Stack) {
    let app = TestApp::spawn(stack).await;
    app.seed_reference().await;
    let watcher = app.as_(Role::Ward, Some("POOLE"));
    let mut events = Events::new(watcher.stream("ward:W1").await);
    let (name, first) = events.next(Duration::from_secs(10)).await;
    assert_eq!(name, "board");
    assert_eq!(first["board"]["totals"]["occupied"], 0);
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    nurse.admit(2, "W1", 9).await;
    let change = events
        .until(Duration::from_secs(10), |board| {
            board["totals"]["occupied"] == 1
        })
        .await;
    let rows = change["rows"]["beds"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the changed bed: {change:#}");
    assert_eq!(rows[0]["bed"], "9");
    // A leader's stream: counts, live too.
    let mut leader = Events::new(app.as_(Role::System, None).stream("system").await);
    leader.next(Duration::from_secs(10)).await;
    let dch = app.as_(Role::Ward, Some("DCH"));
    dch.admit(3, "X1", 1).await;
    leader
        .until(Duration::from_secs(10), |board| {
            board["totals"]["occupied"] == 2
        })
        .await;
    // Shutting down ends the streams; the app stops.
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_change_arrives_on_another_clients_stream =>
    a_change_arrives_on_another_clients_stream_on_the_embedded_default,
    a_change_arrives_on_another_clients_stream_on_postgres_and_jetstream
);
