//! Baton's adapters to the outside world.
//!
//! - [`cqrs`]: adapts every domain [`Decider`](domain::Decider) to cqrs-es's
//!   `Aggregate`, so cqrs-es's event store persists the domain's events
//!   unchanged. The domain stays free of tokio; this crate carries it.
//! - [`store`]: the event store (PostgreSQL via postgres-es, or SQLite via
//!   sqlite-es) whose every commit writes events, reservations and outbox
//!   rows in one transaction.
//! - [`commands`]: the command bus: load, decide, commit, retry on conflict.
pub mod commands;
pub mod cqrs;
pub mod store;
