//! An admin grants and revokes users' access in Baton itself: grants are
//! events listed with who made them and when, a grant replaces the role and
//! scope a token carries, and a revocation refuses the user's next request
//! and ends their open live streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use baton_tests::http::{told_signed_out, Stack, TestApp};
use infra::auth::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admins_grant_replaces_the_role_and_scope_the_users_token_carries() {
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    nurse.get("/api/v1/boards/wards/W1").await.expect(200);
    nurse.get("/api/v1/boards/teams/REAB").await.expect(403);
    let admin = app.as_(Role::Admin, None);
    let granted = admin
        .post(
            "/api/v1/access/ward-POOLE/grant",
            json!({ "name": "Nurse Moved", "role": "team", "team": "REAB", "reason": "moved to reablement" }),
        )
        .await
        .expect(201);
    assert_eq!(granted.body["sub"], "ward-POOLE");
    // In effect from the very next request, with the same token.
    nurse.get("/api/v1/boards/teams/REAB").await.expect(200);
    nurse.get("/api/v1/boards/wards/W1").await.expect(403);
    let me = nurse.get("/api/v1/session").await.expect(200).body;
    assert_eq!(me["role"], "team");
    assert_eq!(me["team"], "REAB");
    // The same grant again records nothing.
    let again = admin
        .post(
            "/api/v1/access/ward-POOLE/grant",
            json!({ "name": "Nurse Moved", "role": "team", "team": "REAB" }),
        )
        .await
        .expect(409);
    assert_eq!(again.body["rule"], "already_granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_and_revocations_are_listed_with_who_made_them_when_and_why() {
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
    let admin = app.as_(Role::Admin, None);
    admin
        .post(
            "/api/v1/access/u-1/grant",
            json!({ "name": "Ann Other", "role": "ward", "hospital": "DCH" }),
        )
        .await
        .expect(201);
    admin
        .post(
            "/api/v1/access/u-1/revoke",
            json!({ "reason": "left the trust" }),
        )
        .await
        .expect(200);
    let list = admin.get("/api/v1/access").await.expect(200).body;
    assert_eq!(list["users"][0]["sub"], "u-1");
    assert_eq!(list["users"][0]["name"], "Ann Other");
    assert_eq!(list["users"][0]["state"], "revoked");
    assert_eq!(list["users"][0]["by"]["id"], "admin-all");
    let history = list["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["granted"], serde_json::Value::Null);
    assert_eq!(history[0]["reason"], "left the trust");
    assert_eq!(history[1]["granted"]["hospital"], "DCH");
    assert!(history[1]["at"].is_string());
    // Only admins see or change it.
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    nurse.get("/api/v1/access").await.expect(403);
    nurse
        .post("/api/v1/access/u-2/revoke", json!({}))
        .await
        .expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_that_describes_no_caller_or_an_unknown_place_is_refused_at_its_field() {
    let app = TestApp::spawn(Stack::Embedded).await;
    app.seed_reference().await;
    let admin = app.as_(Role::Admin, None);
    let no_hospital = admin
        .post(
            "/api/v1/access/u-3/grant",
            json!({ "name": "A", "role": "ward" }),
        )
        .await
        .expect(422);
    assert_eq!(no_hospital.body["rule"], "not_a_caller");
    let unknown = admin
        .post(
            "/api/v1/access/u-3/grant",
            json!({ "name": "A", "role": "ward", "hospital": "NOWHERE" }),
        )
        .await
        .expect(422);
    assert_eq!(unknown.body["rule"], "unknown_scope");
    assert_eq!(unknown.body["errors"][0]["field"], "hospital");
    for (role, field) in [("ward", "trust"), ("hub", "hub")] {
        let unknown = admin
            .post(
                "/api/v1/access/u-3/grant",
                json!({ "name": "A", "role": role, field: "NOWHERE" }),
            )
            .await
            .expect(422);
        assert_eq!(unknown.body["rule"], "unknown_scope", "{field}");
        assert_eq!(unknown.body["errors"][0]["field"], field);
    }
    let unnamed = admin
        .post(
            "/api/v1/access/u-3/grant",
            json!({ "name": " ", "role": "system" }),
        )
        .await;
    assert!(
        unnamed.status == 400 || unnamed.status == 422,
        "{:?}",
        unnamed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_refuses_the_users_next_request_and_ends_their_open_live_stream() {
    let app = TestApp::spawn(Stack::Production).await;
    app.seed_reference().await;
    let token = app.token(Role::Ward, Some("POOLE"));
    let mut stream = app
        .client
        .get(format!("{}/api/v1/boards/stream?board=ward:W1", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    app.as_(Role::Admin, None)
        .post(
            "/api/v1/access/ward-POOLE/revoke",
            json!({ "reason": "account suspended" }),
        )
        .await
        .expect(200);
    let refused = app
        .as_(Role::Ward, Some("POOLE"))
        .get("/api/v1/boards/wards/W1")
        .await
        .expect(403);
    assert_eq!(refused.body["type"], "/problems/access-revoked");
    let (told, seen) = told_signed_out(&mut stream, Duration::from_secs(10)).await;
    assert!(told, "the open stream was not ended: {seen}");
    // A grant restores access.
    app.as_(Role::Admin, None)
        .post(
            "/api/v1/access/ward-POOLE/grant",
            json!({ "name": "Test ward", "role": "ward", "hospital": "POOLE" }),
        )
        .await
        .expect(201);
    app.as_(Role::Ward, Some("POOLE"))
        .get("/api/v1/boards/wards/W1")
        .await
        .expect(200);
}
