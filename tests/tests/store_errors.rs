//! Store failures are answered for what they are (issue 14): a stored
//! idempotency answer that cannot be read back is an internal error, logged
//! and answered, never replayed with defaults in its place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, Stack, TestApp};
use infra::auth::Role;

async fn a_stored_answer_that_cannot_be_read_is_an_internal_error_not_a_default(stack: Stack) {
    let app = TestApp::spawn(stack).await;
    app.seed_reference().await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let key = uuid::Uuid::new_v4().to_string();
    let headers = [("idempotency-key", key.as_str())];
    let body = admission(1, "W1", 1);
    let send = || {
        ward.send(
            reqwest::Method::POST,
            "/api/v1/spells",
            Some(body.clone()),
            &headers,
        )
    };
    let first = send().await.expect(201);
    let again = send().await.expect(201);
    assert_eq!(again.id(), first.id(), "a retry answers the first answer");
    app.execute_sql("UPDATE idempotency_keys SET extra = 'not json'")
        .await;
    let refused = send().await;
    assert_eq!(refused.status, 500, "{:#}", refused.body);
    assert_eq!(refused.body["type"], "/problems/internal");
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test]
    a_stored_answer_that_cannot_be_read_is_an_internal_error_not_a_default =>
    a_stored_answer_that_cannot_be_read_is_an_internal_error_on_sqlite,
    a_stored_answer_that_cannot_be_read_is_an_internal_error_on_postgres
);
