//! Reference data added by another process is found at once: the README's
//! newcomer loads the demo (another process) into the running server's data
//! and calls the API a second later; the server must not answer 404 for a
//! ward it will only re-read five seconds later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{Stack, TestApp};
use infra::auth::Role;

async fn a_ward_added_by_another_process_is_found_at_once(stack: Stack) {
    let first = TestApp::spawn(stack).await;
    let second = first.sibling().await;
    // The second process has read the (empty) reference data; the first
    // adds hospitals, wards and teams now.
    first.seed_reference().await;
    let nurse = second.as_(Role::Ward, Some("POOLE"));
    let board = nurse.get("/api/v1/boards/wards/W1").await.ok();
    assert_eq!(board.body["totals"]["beds"], 30);
    nurse.admit(1, "W2", 1).await;
    let team = second.as_(Role::Team, Some("REAB"));
    team.get("/api/v1/boards/teams/REAB").await.ok();
    // An unknown code is still 404.
    nurse.get("/api/v1/boards/wards/NOPE").await.expect(404);
    second.stop().await;
    first.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_ward_added_by_another_process_is_found_at_once =>
    a_ward_added_by_another_process_is_found_at_once_on_the_embedded_default,
    a_ward_added_by_another_process_is_found_at_once_on_postgres_and_jetstream
);
