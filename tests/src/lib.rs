//! Support for Baton's integration tests (in `tests/tests/`): each test gets
//! its own PostgreSQL database, its own SQLite directory and its own
//! nats-server, so tests run in parallel and never see each other's data.
//! A missing service fails the test loudly; nothing is ever skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod fixtures;
pub mod nats;
pub mod postgres;
