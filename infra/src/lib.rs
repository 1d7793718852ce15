//! Baton's adapters to the outside world.
//!
//! - [`cqrs`]: adapts every domain [`Decider`](domain::Decider) to cqrs-es's
//!   `Aggregate`, so cqrs-es's event store persists the domain's events
//!   unchanged. The domain stays free of tokio; this crate carries it.
//! - [`store`]: the event store (PostgreSQL via postgres-es, or SQLite via
//!   sqlite-es) whose every commit writes events, reservations and outbox
//!   rows in one transaction.
//! - [`commands`]: the command bus: load, decide, commit, retry on conflict
//!   (a module a job: the bus, its errors, one command's execution, the
//!   consistency token).
//! - [`idempotency`]: idempotency keys, stored in the commit's transaction.
//! - [`outbox`], [`relay`]: the transactional outbox and the one relay (per
//!   database) that hands its rows, in order, to the sink: NATS JetStream,
//!   or the local event log when no NATS is configured (the relay's loop,
//!   its leadership, and the chain of publishes, each a module).
//! - [`runner`], [`watchdog`], [`sla`]: the boards' runner feeding the pure
//!   folds of `projections`, the watchdog's loop, and the SLA clock (a
//!   policy that issues commands).
//! - [`feed`]: the one interface projections read events from (JetStream
//!   consumer or local log), so neither they nor the API know which runs.
//! - [`hl7`]: HL7 v2 messages, acknowledgements and MLLP framing, for the
//!   patient administration system's ADT feed (issue 16; the listener is
//!   not built yet).
//! - [`stream`]: the JetStream stream and message format (a public contract).
//! - [`metrics`]: relay counters and latency, as Prometheus text.
//! - [`nats`]: the NATS connection as deployments configure it (a list of
//!   seeds, a credentials file, TLS).
//! - [`pipeline`]: assembles store, bus, relay and feed for a [`config`];
//!   the one place that knows whether the embedded or production mode runs.
//! - [`reference`]: hospitals, wards and teams, stored in the event store's
//!   database and served from memory (every command reads them).
//! - [`config`], [`telemetry`]: layered configuration and logging, set up once.
//! - [`auth`]: bearer tokens: who is calling, verified against the local
//!   signing key or, once configured, an external identity provider; one
//!   module a job (claims, checks, JWKS, local key, the verified-token
//!   cache).
pub mod auth;
pub mod commands;
pub mod config;
pub mod cqrs;
pub mod feed;
pub mod hl7;
pub mod idempotency;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod pipeline;
pub mod reference;
pub mod relay;
pub mod runner;
pub mod sla;
pub mod snapshots;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod watchdog;
