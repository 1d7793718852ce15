//! Baton's adapters to the outside world.
//!
//! - [`cqrs`]: adapts every domain [`Decider`](domain::Decider) to cqrs-es's
//!   `Aggregate`, so the event stores of cqrs-es (postgres-es in
//!   production, sqlite-es embedded) persist the domain's events unchanged.
//!   The domain stays free of tokio; this crate carries the runtime.
//!
//! Still to come with the pipeline issue: the event stores and their
//! reservation table, the transactional outbox and its relay to NATS
//! JetStream, configuration and telemetry.

pub mod cqrs;
