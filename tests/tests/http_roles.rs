//! The role matrix: every role, in every scope (a hospital or a trust for
//! wards, a team, a care transfer hub), against every endpoint, in its own
//! scope and in another. A team never learns of a patient it has no referral
//! for (404, as for a record that does not exist); a hub sees its hospitals'
//! discharge-ready patients and referrals and acts on referrals for the
//! wards, but never changes a spell (403); system boards carry counts only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, Client, Stack, TestApp};
use baton_tests::oidc::Browser;
use infra::auth::Role;
use serde_json::{json, Value};

/// Who asks. The reference data is `seed_reference` and `seed_scopes`: the
/// spells under test are at Poole (trust UHD, hub EAST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    OwnWard,
    OtherWard,
    OwnTrust,
    OtherTrust,
    OwnTeam,
    OtherTeam,
    OwnHub,
    OtherHub,
    System,
    Admin,
    Nobody,
}

const EVERYONE: [Who; 11] = [
    Who::OwnWard,
    Who::OtherWard,
    Who::OwnTrust,
    Who::OtherTrust,
    Who::OwnTeam,
    Who::OtherTeam,
    Who::OwnHub,
    Who::OtherHub,
    Who::System,
    Who::Admin,
    Who::Nobody,
];

fn client(app: &TestApp, who: Who) -> Client {
    match who {
        Who::OwnWard => app.as_(Role::Ward, Some("POOLE")),
        Who::OtherWard => app.as_(Role::Ward, Some("DCH")),
        Who::OwnTrust => app.as_trust("UHD"),
        Who::OtherTrust => app.as_trust("DCHFT"),
        Who::OwnTeam => app.as_(Role::Team, Some("REAB")),
        Who::OtherTeam => app.as_(Role::Team, Some("DN")),
        Who::OwnHub => app.as_(Role::Hub, Some("EAST")),
        Who::OtherHub => app.as_(Role::Hub, Some("WEST")),
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

/// One door per caller, in `EVERYONE`'s order (`Nobody` is always 401).
type Doors = [Door; 10];

fn expected(row: Doors, who: Who) -> Door {
    match EVERYONE.iter().position(|w| *w == who) {
        Some(i) if i < row.len() => row[i],
        _ => Shut(401),
    }
}

async fn seeded() -> TestApp {
    let app = TestApp::seeded(Stack::Embedded).await;
    app.seed_scopes().await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_in_every_scope_reaches_exactly_what_the_contract_allows() {
    let app = seeded().await;
    doors_hold(|who| client(&app, who)).await;
    app.stop().await;
}

/// The same matrix through the pages: each caller is a person signed in
/// through the OpenID provider, holding only a session cookie and its
/// anti-forgery token, their role and scope given by an admin's grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_in_every_scope_meets_the_same_doors_signed_in_to_the_pages() {
    let (app, _provider) = baton_tests::oidc::app_with_provider(|_| {}).await;
    let admin = client(&app, Who::Admin);
    let mut sessions = std::collections::HashMap::new();
    for who in EVERYONE {
        let browser = Browser::new();
        let csrf = if let Some(scope) = grant_for(who) {
            let sub = format!("matrix-{who:?}").to_lowercase();
            let mut grant = json!({ "name": format!("{who:?}"), "reason": "role matrix" });
            grant
                .as_object_mut()
                .unwrap()
                .extend(scope.as_object().unwrap().clone());
            admin
                .post(&format!("/api/v1/access/{sub}/grant"), grant)
                .await
                .expect(201);
            let callback = browser.sign_in_at_provider(&app.base, &sub, "/").await;
            assert_eq!(browser.get(&callback).await.status, 303, "{who:?} signs in");
            let me: Value = browser
                .client
                .get(format!("{}/api/v1/session", app.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(me["signed_in_with"], "provider", "{who:?}: {me}");
            Some(me["csrf_token"].as_str().unwrap().to_owned())
        } else {
            None
        };
        sessions.insert(who, Client::of_session(&app.base, browser.client, csrf));
    }
    doors_hold(|who| sessions[&who].clone()).await;
    app.stop().await;
}

/// The role and scope an admin grants each caller of the session matrix
/// (none for `Nobody`, who never signs in).
fn grant_for(who: Who) -> Option<Value> {
    Some(match who {
        Who::OwnWard => json!({ "role": "ward", "hospital": "POOLE" }),
        Who::OtherWard => json!({ "role": "ward", "hospital": "DCH" }),
        Who::OwnTrust => json!({ "role": "ward", "trust": "UHD" }),
        Who::OtherTrust => json!({ "role": "ward", "trust": "DCHFT" }),
        Who::OwnTeam => json!({ "role": "team", "team": "REAB" }),
        Who::OtherTeam => json!({ "role": "team", "team": "DN" }),
        Who::OwnHub => json!({ "role": "hub", "hub": "EAST" }),
        Who::OtherHub => json!({ "role": "hub", "hub": "WEST" }),
        Who::System => json!({ "role": "system" }),
        Who::Admin => json!({ "role": "admin" }),
        Who::Nobody => return None,
    })
}

/// Every row of the matrix, for every caller `client` makes.
async fn doors_hold(client: impl Fn(Who) -> Client) {
    let nurse = client(Who::OwnWard);
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

    // O: in; F: forbidden (403); N: no such record, as far as this caller
    // may know (404). Columns: own ward, other ward, own trust, other trust,
    // own team, other team, own hub, other hub, system, admin.
    const O: Door = Open;
    const F: Door = Shut(403);
    const N: Door = Shut(404);
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Option<Value>, Doors)> = vec![
        ("GET", "/api/v1/hospitals".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/api/v1/wards".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/api/v1/teams".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/api/v1/hubs".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/api/v1/delay-reasons".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("PUT", "/api/v1/hospitals/NEWH".into(), Some(json!({ "name": "New", "trust": "UHD" })), [F, F, F, F, F, F, F, F, F, O]),
        ("PUT", "/api/v1/wards/W3".into(), Some(json!({ "name": "W3", "hospital": "POOLE", "beds": 10 })), [F, F, F, F, F, F, F, F, F, O]),
        ("PUT", "/api/v1/teams/T9".into(), Some(json!({ "name": "T9", "services": ["other"], "response_sla_minutes": 60 })), [F, F, F, F, F, F, F, F, F, O]),
        ("PUT", "/api/v1/hubs/NORTH".into(), Some(json!({ "name": "North", "hospitals": ["DCH"] })), [F, F, F, F, F, F, F, F, F, O]),
        ("POST", "/api/v1/spells".into(), None, [O, F, O, F, F, F, F, F, F, F]),
        ("GET", "/api/v1/spells/search?q=Patient".into(), None, [O, O, O, O, F, F, F, F, F, F]),
        ("GET", format!("/api/v1/spells/{spell}"), None, [O, N, O, N, N, N, F, N, F, F]),
        ("GET", format!("/api/v1/spells/{spell}/history"), None, [O, N, O, N, N, N, F, N, F, F]),
        ("POST", format!("/api/v1/spells/{spell}/expected-discharge-date"), Some(json!({ "date": chrono::Utc::now().date_naive().to_string() })), [O, N, O, N, N, N, F, N, F, F]),
        ("POST", format!("/api/v1/spells/{spell}/criteria-review"), Some(json!({ "meets_criteria_to_reside": false, "at": now })), [O, N, O, N, N, N, F, N, F, F]),
        ("POST", format!("/api/v1/spells/{spell}/pathway"), Some(json!({ "pathway": "P1" })), [O, N, O, N, N, N, F, N, F, F]),
        ("POST", format!("/api/v1/spells/{spell}/transfer"), Some(json!({ "ward": "W2", "bed": "5", "at": now })), [O, N, O, N, N, N, F, N, F, F]),
        ("POST", "/api/v1/referrals".into(), Some(json!({ "spell_id": spell, "team": "DN", "service": "district_nursing", "pathway": "P1", "summary": "dressings" })), [O, N, O, N, N, N, O, N, F, F]),
        ("GET", format!("/api/v1/referrals/{referral}"), None, [O, N, O, N, O, N, O, N, F, F]),
        ("GET", "/api/v1/referrals".into(), None, [O, O, O, O, O, O, O, O, F, F]),
        ("POST", format!("/api/v1/referrals/{referral}/acknowledge"), Some(json!({})), [F, N, F, N, O, N, F, N, F, F]),
        ("POST", format!("/api/v1/referrals/{referral}/request-information"), Some(json!({ "question": "Key safe?" })), [F, N, F, N, O, N, F, N, F, F]),
        ("POST", format!("/api/v1/referrals/{referral}/provide-information"), Some(json!({ "answer": "Yes" })), [O, N, O, N, F, N, O, N, F, F]),
        ("POST", format!("/api/v1/referrals/{referral}/accept"), Some(json!({ "planned_start": chrono::Utc::now().date_naive().to_string() })), [F, N, F, N, O, N, F, N, F, F]),
        ("GET", "/api/v1/boards/wards/W1".into(), None, [O, F, O, F, F, F, F, F, F, F]),
        ("GET", "/api/v1/boards/wards/R1".into(), None, [F, F, O, F, F, F, F, F, F, F]),
        ("GET", "/api/v1/boards/wards/W1/recent-discharges".into(), None, [O, F, O, F, F, F, F, F, F, F]),
        ("GET", "/api/v1/boards/hospitals/POOLE".into(), None, [O, F, O, F, F, F, F, F, O, F]),
        ("GET", "/api/v1/boards/hospitals/RBH".into(), None, [F, F, O, F, F, F, F, F, O, F]),
        ("GET", "/api/v1/boards/system".into(), None, [F, F, F, F, F, F, F, F, O, F]),
        ("GET", "/api/v1/boards/hospitals/POOLE/daily".into(), None, [O, F, O, F, F, F, F, F, O, F]),
        ("GET", "/api/v1/boards/system/daily".into(), None, [F, F, F, F, F, F, F, F, O, F]),
        ("GET", "/api/v1/session".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/api/v1/boards/teams/REAB".into(), None, [F, F, F, F, O, F, F, F, F, F]),
        ("GET", "/api/v1/boards/hubs/EAST".into(), None, [F, F, F, F, F, F, O, F, F, F]),
        ("GET", format!("/api/v1/audit?nhs_number={nhs}"), None, [F, F, F, F, F, F, F, F, F, O]),
        ("GET", "/api/v1/access".into(), None, [F, F, F, F, F, F, F, F, F, O]),
        ("POST", "/api/v1/access/matrix-user/grant".into(), Some(json!({ "name": "Matrix User", "role": "system" })), [F, F, F, F, F, F, F, F, F, O]),
        ("POST", "/api/v1/access/matrix-user/revoke".into(), Some(json!({})), [F, F, F, F, F, F, F, F, F, O]),
        // FHIR R4: the same doors as the JSON API's reads of the same records.
        // (The other team has the patient's district nursing referral, raised above.)
        ("GET", format!("/fhir/R4/Patient/{nhs}"), None, [O, N, O, N, O, O, O, N, F, F]),
        ("GET", format!("/fhir/R4/Encounter/{spell}"), None, [O, N, O, N, N, N, F, N, F, F]),
        ("GET", format!("/fhir/R4/Encounter/{spell}/_history"), None, [O, N, O, N, N, N, F, N, F, F]),
        ("GET", format!("/fhir/R4/ServiceRequest/{referral}"), None, [O, N, O, N, O, N, O, N, F, F]),
        ("GET", format!("/fhir/R4/Task/{referral}"), None, [O, N, O, N, O, N, O, N, F, F]),
        ("GET", format!("/fhir/R4/Task/{referral}/_history"), None, [O, N, O, N, O, N, O, N, F, F]),
        ("GET", "/fhir/R4/Task?owner=Organization/REAB".into(), None, [O, O, O, O, O, O, O, O, F, F]),
        ("GET", "/fhir/R4/ServiceRequest".into(), None, [O, O, O, O, O, O, O, O, F, F]),
        ("GET", "/fhir/R4/Encounter".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/fhir/R4/Location/W1".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/fhir/R4/Location/W1.1".into(), None, [O, F, O, F, F, F, F, F, O, F]),
        ("GET", "/fhir/R4/Organization/REAB".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("GET", "/fhir/R4/Organization/POOLE".into(), None, [O, O, O, O, O, O, O, O, O, O]),
        ("POST", "/fhir/R4/Subscription".into(), Some(json!({ "resourceType": "Subscription", "status": "requested", "reason": "matrix", "criteria": "Task?owner=Organization/REAB", "channel": { "type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook" } })), [O, O, O, O, O, F, O, O, F, F]),
        ("GET", "/api/v1/feeds/held".into(), None, [F, F, F, F, F, F, F, F, F, O]),
        ("POST", "/api/v1/feeds/held/999/retry".into(), Some(json!({})), [F, F, F, F, F, F, F, F, F, N]),
        ("GET", "/api/v1/feeds/locations".into(), None, [F, F, F, F, F, F, F, F, F, O]),
        ("PUT", "/api/v1/feeds/locations".into(), Some(json!({ "point_of_care": "AMU", "ward": "W1" })), [F, F, F, F, F, F, F, F, F, O]),
        // Last: they end the referral and the spell.
        ("POST", format!("/api/v1/referrals/{referral}/withdraw"), Some(json!({ "reason": "not needed" })), [O, N, O, N, F, N, O, N, F, F]),
        ("POST", format!("/api/v1/spells/{spell}/discharge"), Some(json!({ "at": now, "destination": "usual_residence" })), [O, N, O, N, N, N, F, N, F, F]),
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
            let answer = client(who).send(method_, &path, body, &[]).await;
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
    #[rustfmt::skip]
    let streams: [(&str, Doors); 7] = [
        ("ward:W1", [O, F, O, F, F, F, F, F, F, F]),
        ("ward:R1", [F, F, O, F, F, F, F, F, F, F]),
        ("hospital:POOLE", [O, F, O, F, F, F, F, F, O, F]),
        ("system", [F, F, F, F, F, F, F, F, O, F]),
        ("team:REAB", [F, F, F, F, O, F, F, F, F, F]),
        ("hub:EAST", [F, F, F, F, F, F, O, F, F, F]),
        ("hub:WEST", [F, F, F, F, F, F, F, O, F, F]),
    ];
    for (board, row) in streams {
        for who in EVERYONE {
            let status = client(who).stream(board).await.status().as_u16();
            match expected(row, who) {
                Open => assert_eq!(status, 200, "{who:?} stream {board}"),
                Shut(wanted) => assert_eq!(status, wanted, "{who:?} stream {board}"),
            }
        }
    }
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
        let nurse = infra::auth::Principal::scoped(
            "nurse-7".to_owned(),
            "Nurse Seven".to_owned(),
            Role::Ward,
            infra::auth::ScopeClaims {
                hospital: Some(hospital.to_owned()),
                ..infra::auth::ScopeClaims::default()
            },
        )
        .unwrap();
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

fn spell_ids(answer: &Value, list: &str, field: &str) -> Vec<String> {
    let mut ids: Vec<String> = answer[list]
        .as_array()
        .or_else(|| answer.as_array())
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A ward scoped to a trust works on every hospital of the trust and on no
/// other: admits, searches, lists referrals and reads boards across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trust_scoped_ward_works_on_every_hospital_of_its_trust_and_no_other() {
    let app = seeded().await;
    let trust = client(&app, Who::OwnTrust);
    let at_poole = trust
        .post("/api/v1/spells", admission(11, "W1", 1))
        .await
        .expect(201)
        .id();
    let at_rbh = trust
        .post("/api/v1/spells", admission(12, "R1", 1))
        .await
        .expect(201)
        .id();
    let at_dch = client(&app, Who::OtherWard)
        .post("/api/v1/spells", admission(13, "X1", 1))
        .await
        .expect(201)
        .id();
    trust
        .post("/api/v1/spells", admission(14, "X1", 2))
        .await
        .expect(403);
    for spell in [&at_poole, &at_rbh] {
        trust.post("/api/v1/referrals", json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" })).await.expect(201);
    }
    let last = client(&app, Who::OtherWard).post("/api/v1/referrals", json!({ "spell_id": at_dch, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" })).await.expect(201);
    let token = last.token();

    let referrals = trust
        .get(&format!("/api/v1/referrals?consistency_token={token}"))
        .await
        .expect(200);
    assert_eq!(
        spell_ids(&referrals.body, "", "spell_id"),
        sorted(vec![at_poole.clone(), at_rbh.clone()])
    );
    let found = trust
        .get("/api/v1/spells/search?q=Patient1")
        .await
        .expect(200);
    assert_eq!(
        spell_ids(&found.body, "results", "spell_id"),
        sorted(vec![at_poole.clone(), at_rbh.clone()])
    );
    trust
        .get(&format!("/api/v1/spells/{at_rbh}"))
        .await
        .expect(200);
    trust
        .get(&format!("/api/v1/spells/{at_dch}"))
        .await
        .expect(404);
    for board in ["/api/v1/boards/wards/R1", "/api/v1/boards/hospitals/RBH"] {
        trust.get(board).await.expect(200);
    }
    trust.get("/api/v1/boards/wards/X1").await.expect(403);
    // The session says which trust, so a page can offer its hospitals.
    let session = trust.get("/api/v1/session").await.expect(200);
    assert_eq!(session.body["trust"], "UHD");
    assert_eq!(session.body["hospital"], Value::Null);
    app.stop().await;
}

/// A hub sees the discharge-ready patients of its hospitals, each with its
/// referrals, and every referral of those hospitals; raises and withdraws
/// a referral for the ward; and its live board follows the wards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_sees_its_hospitals_discharge_ready_patients_and_acts_on_their_referrals() {
    let app = seeded().await;
    let poole = client(&app, Who::OwnWard);
    let dch = client(&app, Who::OtherWard);
    let hub = client(&app, Who::OwnHub);
    let not_ready = |at: &str| json!({ "meets_criteria_to_reside": false, "at": at });
    let now = chrono::Utc::now().to_rfc3339();
    let ready = poole
        .post("/api/v1/spells", admission(21, "W1", 1))
        .await
        .expect(201)
        .id();
    let still_resides = poole
        .post("/api/v1/spells", admission(22, "W1", 2))
        .await
        .expect(201)
        .id();
    let elsewhere = dch
        .post("/api/v1/spells", admission(23, "X1", 1))
        .await
        .expect(201)
        .id();
    poole
        .post(
            &format!("/api/v1/spells/{ready}/criteria-review"),
            not_ready(&now),
        )
        .await
        .expect(200);
    dch.post(
        &format!("/api/v1/spells/{elsewhere}/criteria-review"),
        not_ready(&now),
    )
    .await
    .expect(200);
    poole.post("/api/v1/referrals", json!({ "spell_id": still_resides, "team": "DN", "service": "district_nursing", "pathway": "P1", "summary": "dressings" })).await.expect(201);
    let last = dch.post("/api/v1/referrals", json!({ "spell_id": elsewhere, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "b" })).await.expect(201);

    let mut live = baton_tests::http::Events::new(hub.stream("hub:EAST").await);
    let board = hub
        .get(&format!(
            "/api/v1/boards/hubs/EAST?consistency_token={}",
            last.token()
        ))
        .await
        .expect(200);
    assert_eq!(
        spell_ids(&board.body, "patients", "id"),
        vec![ready.clone()]
    );
    assert_eq!(board.body["patients"][0]["referrals"], json!([]));
    // Every referral of its hospitals, discharge-ready or not; none of others'.
    let referrals = hub
        .get(&format!(
            "/api/v1/referrals?consistency_token={}",
            last.token()
        ))
        .await
        .expect(200);
    assert_eq!(
        spell_ids(&referrals.body, "", "spell_id"),
        vec![still_resides.clone()]
    );

    let raised = hub.post("/api/v1/referrals", json!({ "spell_id": ready, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "raised by the hub" })).await.expect(201);
    let referral = raised.id();
    let changed = live
        .until(std::time::Duration::from_secs(10), |board| {
            board["patients"][0]["referrals"][0]["referral_id"] == referral.as_str()
        })
        .await;
    assert_eq!(
        changed["board"]["patients"][0]["referrals"][0]["status"],
        "requested"
    );
    hub.post(
        &format!("/api/v1/referrals/{referral}/withdraw"),
        json!({ "reason": "family will arrange care" }),
    )
    .await
    .expect(200);
    live.until(std::time::Duration::from_secs(10), |board| {
        board["patients"][0]["referrals"][0]["status"] == "cancelled"
    })
    .await;
    // The hub may not change the spell, nor raise for another hub's hospital.
    hub.post(
        &format!("/api/v1/spells/{ready}/discharge"),
        json!({ "at": now, "destination": "usual_residence" }),
    )
    .await
    .expect(403);
    hub.post("/api/v1/referrals", json!({ "spell_id": elsewhere, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "x" })).await.expect(404);
    // The other hub sees Dorset County's patient only.
    let west = client(&app, Who::OtherHub)
        .get(&format!(
            "/api/v1/boards/hubs/WEST?consistency_token={}",
            raised.token()
        ))
        .await
        .expect(200);
    assert_eq!(spell_ids(&west.body, "patients", "id"), vec![elsewhere]);
    app.stop().await;
}

/// Hospitals keep reading and writing without a trust; hubs name known
/// hospitals only, and a refusal names the field.
#[tokio::test]
async fn a_hospital_needs_no_trust_and_a_hub_serves_only_known_hospitals() {
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
    let admin = client(&app, Who::Admin);
    let plain = admin
        .put("/api/v1/hospitals/NEWH", json!({ "name": "New" }))
        .await
        .expect(200);
    assert_eq!(plain.body, json!({ "code": "NEWH", "name": "New" }));
    let with_trust = admin
        .put(
            "/api/v1/hospitals/NEWH",
            json!({ "name": "New", "trust": "UHD" }),
        )
        .await
        .expect(200);
    assert_eq!(with_trust.body["trust"], "UHD");
    let listed = admin.get("/api/v1/hospitals").await.expect(200);
    let newh = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["code"] == "NEWH")
        .unwrap()
        .clone();
    assert_eq!(newh["trust"], "UHD");
    let unknown = admin
        .put(
            "/api/v1/hubs/H1",
            json!({ "name": "H", "hospitals": ["NOPE"] }),
        )
        .await
        .expect(422);
    assert_eq!(
        unknown.body["rule"], "unknown_hub_hospital",
        "{}",
        unknown.body
    );
    let none = admin
        .put("/api/v1/hubs/H1", json!({ "name": "H", "hospitals": [] }))
        .await
        .expect(400);
    assert!(none.body.to_string().contains("hospitals"), "{}", none.body);
    admin
        .put(
            "/api/v1/hospitals/NEWH",
            json!({ "name": "New", "trust": "not a code!" }),
        )
        .await
        .expect(400);
    admin
        .put(
            "/api/v1/hubs/H1",
            json!({ "name": "H", "hospitals": ["POOLE", "NEWH"] }),
        )
        .await
        .expect(200);
    let hubs = admin.get("/api/v1/hubs").await.expect(200);
    assert_eq!(hubs.body[0]["hospitals"], json!(["NEWH", "POOLE"]));
    // A hub token for a hub Baton does not know reaches nothing.
    app.as_(Role::Hub, Some("NOPE"))
        .get("/api/v1/boards/hubs/NOPE")
        .await
        .expect(404);
    app.stop().await;
}
