//! Support for Baton's integration tests (in `tests/tests/`): each test gets
//! its own PostgreSQL database, its own SQLite directory and its own
//! nats-server, so tests run in parallel and never see each other's data.
//! A missing service fails the test loudly; nothing is ever skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod fixtures;
pub mod nats;
pub mod postgres;
pub mod proxy;

use std::future::Future;
use std::time::Duration;

/// Waits until `condition` holds, checking often, and fails the test with
/// `what` if it does not within `within`. Tests wait on conditions, never
/// on fixed sleeps.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
