//! The role matrix: every role, against every endpoint, in its own scope and
//! in another. A team never learns of a patient it has no referral for (404,
//! as for a record that does not exist); system boards carry counts only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, Client, Stack, TestApp};
use infra::auth::Role;
use serde_json::{json, Value};

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    OwnWard,
    OtherWard,
    OwnTeam,
    OtherTeam,
    System,
    Admin,
    Nobody,
}

const EVERYONE: [Who; 7] = [
    Who::OwnWard,
    Who::OtherWard,
    Who::OwnTeam,
    Who::OtherTeam,
    Who::System,
    Who::Admin,
    Who::Nobody,
];

fn client(app: &TestApp, who: Who) -> Client {
    match who {
        Who::OwnWard => app.as_(Role::Ward, Some("POOLE")),
        Who::OtherWard => app.as_(Role::Ward, Some("DCH")),
        Who::OwnTeam => app.as_(Role::Team, Some("REAB")),
        Who::OtherTeam => app.as_(Role::Team, Some("DN")),
        Who::System => app.as_(Role::System, None),
        Who::Admin => app.as_(Role::Admin, None),
        Who::Nobody => app.anonymous(),
    }
}

/// What an endpoint must answer each caller: `Ok` (any 2xx, or a 409/422
/// from the rules, which means the caller got past the door) or a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Open,
    Shut(u16),
}

use Door::{Open, Shut};

fn expected(row: [Door; 6], who: Who) -> Door {
    match who {
        Who::OwnWard => row[0],
        Who::OtherWard => row[1],
        Who::OwnTeam => row[2],
        Who::OtherTeam => row[3],
        Who::System => row[4],
        Who::Admin => row[5],
        Who::Nobody => Shut(401),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_reaches_exactly_what_the_contract_allows() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let nurse = client(&app, Who::OwnWard);
    let spell = nurse.admit(1, "W1", 1).await.id();
    let raised = nurse
        .post("/api/v1/referrals", json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" }))
        .await
        .expect(201);
    let referral = raised.id();
    // Every board includes the referral before the matrix reads them.
    nurse
        .get_after("/api/v1/boards/wards/W1", &raised)
        .await
        .expect(200);
    let nhs = admission(1, "W1", 1)["nhs_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now().to_rfc3339();
    let mut n = 100;

    //          own ward   other ward  own team   other team  system     admin
    let rows: Vec<(&str, String, Option<Value>, [Door; 6])> = vec![
        (
            "GET",
            "/api/v1/hospitals".into(),
            None,
            [Open, Open, Open, Open, Open, Open],
        ),
        (
            "GET",
            "/api/v1/wards".into(),
            None,
            [Open, Open, Open, Open, Open, Open],
        ),
        (
            "GET",
            "/api/v1/teams".into(),
            None,
            [Open, Open, Open, Open, Open, Open],
        ),
        (
            "GET",
            "/api/v1/delay-reasons".into(),
            None,
            [Open, Open, Open, Open, Open, Open],
        ),
        (
            "PUT",
            "/api/v1/hospitals/NEWH".into(),
            Some(json!({ "name": "New" })),
            [Shut(403), Shut(403), Shut(403), Shut(403), Shut(403), Open],
        ),
        (
            "PUT",
            "/api/v1/wards/W3".into(),
            Some(json!({ "name": "W3", "hospital": "POOLE", "beds": 10 })),
            [Shut(403), Shut(403), Shut(403), Shut(403), Shut(403), Open],
        ),
        (
            "PUT",
            "/api/v1/teams/T9".into(),
            Some(json!({ "name": "T9", "services": ["other"], "response_sla_minutes": 60 })),
            [Shut(403), Shut(403), Shut(403), Shut(403), Shut(403), Open],
        ),
        (
            "POST",
            "/api/v1/spells".into(),
            None,
            [Open, Shut(403), Shut(403), Shut(403), Shut(403), Shut(403)],
        ),
        (
            "GET",
            format!("/api/v1/spells/{spell}"),
            None,
            [Open, Shut(404), Shut(404), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "GET",
            format!("/api/v1/spells/{spell}/history"),
            None,
            [Open, Shut(404), Shut(404), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "POST",
            format!("/api/v1/spells/{spell}/expected-discharge-date"),
            Some(json!({ "date": chrono::Utc::now().date_naive().to_string() })),
            [Open, Shut(404), Shut(404), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "POST",
            format!("/api/v1/spells/{spell}/criteria-review"),
            Some(json!({ "meets_criteria_to_reside": true, "at": now })),
            [Open, Shut(404), Shut(404), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "POST",
            "/api/v1/referrals".into(),
            Some(
                json!({ "spell_id": spell, "team": "DN", "service": "district_nursing", "pathway": "P1", "summary": "dressings" }),
            ),
            [Open, Shut(404), Shut(404), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "GET",
            format!("/api/v1/referrals/{referral}"),
            None,
            [Open, Shut(404), Open, Shut(404), Shut(403), Shut(403)],
        ),
        (
            "GET",
            "/api/v1/referrals".into(),
            None,
            [Open, Open, Open, Open, Shut(403), Shut(403)],
        ),
        (
            "POST",
            format!("/api/v1/referrals/{referral}/acknowledge"),
            Some(json!({})),
            [Shut(403), Shut(404), Open, Shut(404), Shut(403), Shut(403)],
        ),
        (
            "POST",
            format!("/api/v1/referrals/{referral}/request-information"),
            Some(json!({ "question": "Key safe?" })),
            [Shut(403), Shut(404), Open, Shut(404), Shut(403), Shut(403)],
        ),
        (
            "POST",
            format!("/api/v1/referrals/{referral}/provide-information"),
            Some(json!({ "answer": "Yes" })),
            [Open, Shut(404), Shut(403), Shut(404), Shut(403), Shut(403)],
        ),
        (
            "GET",
            "/api/v1/boards/wards/W1".into(),
            None,
            [Open, Shut(403), Shut(403), Shut(403), Shut(403), Shut(403)],
        ),
        (
            "GET",
            "/api/v1/boards/hospitals/POOLE".into(),
            None,
            [Open, Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "GET",
            "/api/v1/boards/system".into(),
            None,
            [Shut(403), Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "GET",
            "/api/v1/boards/hospitals/POOLE/daily".into(),
            None,
            [Open, Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "GET",
            "/api/v1/boards/system/daily".into(),
            None,
            [Shut(403), Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "GET",
            "/api/v1/session".into(),
            None,
            [Open, Open, Open, Open, Open, Open],
        ),
        (
            "GET",
            "/api/v1/boards/teams/REAB".into(),
            None,
            [Shut(403), Shut(403), Open, Shut(403), Shut(403), Shut(403)],
        ),
        (
            "GET",
            format!("/api/v1/audit?nhs_number={nhs}"),
            None,
            [Shut(403), Shut(403), Shut(403), Shut(403), Shut(403), Open],
        ),
        // Last: it ends the referral.
        (
            "POST",
            format!("/api/v1/referrals/{referral}/withdraw"),
            Some(json!({ "reason": "not needed" })),
            [Open, Shut(404), Shut(403), Shut(404), Shut(403), Shut(403)],
        ),
    ];
    for (method, path, body, row) in rows {
        for who in EVERYONE {
            let body = if path == "/api/v1/spells" && method == "POST" {
                n += 1;
                Some(admission(n, "W1", n - 90))
            } else {
                body.clone()
            };
            let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let answer = client(&app, who).send(method_, &path, body, &[]).await;
            let door = expected(row, who);
            match door {
                Open => assert!(
                    (200..300).contains(&answer.status)
                        || answer.status == 409
                        || answer.status == 422,
                    "{who:?} {method} {path}: wanted in, got {}: {:#}",
                    answer.status,
                    answer.body
                ),
                Shut(status) => assert_eq!(
                    answer.status, status,
                    "{who:?} {method} {path}: {:#}",
                    answer.body
                ),
            }
        }
    }
    // The live stream has the same doors as the board it streams.
    for (board, row) in [
        (
            "ward:W1",
            [Open, Shut(403), Shut(403), Shut(403), Shut(403), Shut(403)],
        ),
        (
            "hospital:POOLE",
            [Open, Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "system",
            [Shut(403), Shut(403), Shut(403), Shut(403), Open, Shut(403)],
        ),
        (
            "team:REAB",
            [Shut(403), Shut(403), Open, Shut(403), Shut(403), Shut(403)],
        ),
    ] {
        for who in EVERYONE {
            let status = client(&app, who).stream(board).await.status().as_u16();
            match expected(row, who) {
                Open => assert_eq!(status, 200, "{who:?} stream {board}"),
                Shut(wanted) => assert_eq!(status, wanted, "{who:?} stream {board}"),
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_sees_only_their_own_referrals_and_leaders_see_no_identities() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let poole = client(&app, Who::OwnWard);
    let dch = client(&app, Who::OtherWard);
    let a = poole.admit(1, "W1", 1).await.id();
    let b = dch.admit(2, "X1", 1).await.id();
    poole.post("/api/v1/referrals", json!({ "spell_id": a, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "a" })).await.expect(201);
    let last = dch.post("/api/v1/referrals", json!({ "spell_id": b, "team": "DN", "service": "district_nursing", "pathway": "P1", "summary": "b" })).await.expect(201);
    let token = last.token();
    let ids = |answer: Value| -> Vec<String> {
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["spell_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |c: Client, query: String| {
        let token = token.clone();
        async move {
            c.get(&format!(
                "/api/v1/referrals?consistency_token={token}{query}"
            ))
            .await
            .expect(200)
            .body
        }
    };
    assert_eq!(
        ids(list(poole.clone(), String::new()).await),
        vec![a.clone()]
    );
    assert_eq!(ids(list(dch.clone(), String::new()).await), vec![b.clone()]);
    assert_eq!(
        ids(list(client(&app, Who::OwnTeam), String::new()).await),
        vec![a.clone()]
    );
    // Asking for another team's referrals yields nothing, not theirs.
    assert!(ids(list(client(&app, Who::OwnTeam), "&team=DN".into()).await).is_empty());
    let system = client(&app, Who::System);
    for path in ["/api/v1/boards/system", "/api/v1/boards/hospitals/POOLE"] {
        let text = system.get(path).await.expect(200).body.to_string();
        for identity in ["Patient1", "Patient2", "nhs_number", "family_name"] {
            assert!(!text.contains(identity), "{path} shows {identity}");
        }
    }
    app.stop().await;
}

/// The bus checks the caller on the record it loads for the command, and a
/// body that makes no command is answered only once the caller is known to
/// be allowed: a caller with no business with a record learns nothing about
/// it, not even that their body would have been refused.
#[tokio::test]
async fn a_caller_without_access_learns_nothing_from_a_body_that_makes_no_command() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let poole = client(&app, Who::OwnWard);
    let spell = poole.admit(3, "W1", 2).await.id();
    let raised = poole.post("/api/v1/referrals", json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "a" })).await.expect(201);
    let referral = raised.id();
    let blank = json!({ "reason": "   " });
    let cancel = format!("/api/v1/spells/{spell}/cancel-admission");
    let withdraw = format!("/api/v1/referrals/{referral}/withdraw");
    let decline = format!("/api/v1/referrals/{referral}/decline");

    for (who, path, status) in [
        (Who::OtherWard, &cancel, 404),
        (Who::OwnTeam, &cancel, 404),
        (Who::System, &cancel, 403),
        (Who::OwnWard, &cancel, 422),
        (Who::OtherWard, &withdraw, 404),
        (Who::OwnTeam, &withdraw, 403),
        (Who::OwnWard, &withdraw, 422),
        (Who::OtherTeam, &decline, 404),
        (Who::OwnWard, &decline, 403),
        (Who::OwnTeam, &decline, 422),
    ] {
        let answer = client(&app, who).post(path, blank.clone()).await;
        assert_eq!(answer.status, status, "{who:?} {path}: {}", answer.body);
    }
    // And with a body that does make a command, the bus's check answers the
    // same: nothing was recorded for any of them.
    let valid = json!({ "reason": "entered in error" });
    for (who, path, status) in [
        (Who::OtherWard, &cancel, 404),
        (Who::OwnTeam, &cancel, 404),
        (Who::OtherWard, &withdraw, 404),
        (Who::OwnTeam, &withdraw, 403),
        (Who::OtherTeam, &decline, 404),
        (Who::OwnWard, &decline, 403),
    ] {
        let answer = client(&app, who).post(path, valid.clone()).await;
        assert_eq!(answer.status, status, "{who:?} {path}: {}", answer.body);
    }
    let history = poole
        .get(&format!("/api/v1/spells/{spell}/history"))
        .await
        .expect(200);
    assert_eq!(
        history.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        history.body
    );
    app.stop().await;
}

/// An idempotency key proves only who sent the first request: a caller
/// whose scope has since changed gets no stored answer for a record outside
/// it, but the same 404 as anyone else.
#[tokio::test]
async fn a_stored_answer_is_not_replayed_to_a_caller_who_may_no_longer_see_the_record() {
    let app = TestApp::seeded(Stack::Embedded).await;
    let as_nurse_at = |hospital: &str| {
        let mut client = app.anonymous();
        let nurse = infra::auth::Principal {
            sub: "nurse-7".to_owned(),
            name: "Nurse Seven".to_owned(),
            role: Role::Ward,
            hospital: Some(hospital.to_owned()),
            team: None,
        };
        client.token = Some(
            infra::auth::sign_local(
                &app.config.data_dir,
                &nurse,
                std::time::Duration::from_secs(600),
            )
            .unwrap(),
        );
        client
    };
    let at_poole = as_nurse_at("POOLE");
    let spell = at_poole.admit(4, "W1", 3).await.id();
    let path = format!("/api/v1/spells/{spell}/pathway");
    let body = json!({ "pathway": "P1" });
    let key = [("Idempotency-Key", "7d6c1f0e-2b1a-4c5d-9e8f-0a1b2c3d4e5f")];
    at_poole
        .send(reqwest::Method::POST, &path, Some(body.clone()), &key)
        .await
        .expect(200);
    at_poole
        .send(reqwest::Method::POST, &path, Some(body.clone()), &key)
        .await
        .expect(200);

    let moved = as_nurse_at("DCH")
        .send(reqwest::Method::POST, &path, Some(body), &key)
        .await;

    assert_eq!(moved.status, 404, "{}", moved.body);
    app.stop().await;
}
