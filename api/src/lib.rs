//! Baton's HTTP surface: the API of `../shared/api-contract.md`, live
//! updates, sign-in and authorisation, the access log, and the `baton`
//! binary's building blocks.
//!
//! - [`app`]: [`app::Application`] builds the whole process from a
//!   configuration (event store, relay, boards' runner, SLA clock, HTTP),
//!   binds first (tests use port 0) and shuts down gracefully.
//! - [`routes`]: one router per part of the contract (reference data,
//!   spells, referrals, boards and their live stream, audit, operations),
//!   each handler carrying its OpenAPI description so that
//!   [`openapi`]'s document lists exactly what is served.
//! - [`extract`]: strict JSON and query extractors, command headers and
//!   the signed-in [`extract::Caller`]: every rejection is a problem answer.
//! - [`validate`]: request bodies read against their schema first, so every
//!   field at fault is answered at once, in plain words.
//! - [`policy`]: the contract's roles and scopes, in one function.
//! - [`audit`]: the append-only access log of patient-identifiable reads.
//! - [`error`]: the one error type, answered as `application/problem+json`.
//! - [`server`]: the connection loop: caps on connections (per client
//!   too), shedding the oldest idle ones, header-read and idle timeouts,
//!   and hyper's own parse-error answers as problems.
//! - [`state`], [`metrics`]: shared handler state and request figures.
//! - [`pages`]: the web pages (one shell, script and stylesheet compiled
//!   in), the session endpoint and the development sign-in.
//! - [`signin`]: the pages' sign-in: the OpenID provider's authorization
//!   code flow, server-side sessions behind an `HttpOnly` cookie, sign-out
//!   here and at the provider, and the pages that say why a sign-in failed.
//! - [`demo`]: a realistic synthetic system for newcomers (`baton demo`).

pub mod app;
pub mod audit;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fhir;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod policy;
pub mod routes;
pub mod server;
pub mod signin;
pub mod state;
pub mod validate;
