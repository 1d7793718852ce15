//! Baton's domain: what may happen to an inpatient spell and to a referral,
//! as pure decisions over events. No I/O, no runtime: every rule is a
//! function of state, command, the clock reading and reference data, and
//! every rule has a given/when/then test.
//!
//! - [`values`]: types that validate on construction (NHS number by
//!   Modulus 11, codes, free text, pathways, destinations, English dates).
//! - [`decider`]: the [`Decider`] trait every aggregate implements, and the
//!   [`Issued`] / [`Recorded`] envelopes that carry who and when. `infra`
//!   adapts deciders to cqrs-es (which needs tokio, so the domain does not).
//! - [`spell`]: admission to discharge, the discharge ready date rule,
//!   delays, and the ADT corrections as events of their own.
//! - [`referral`]: the handover to a community team (FHIR Task life cycle).
//! - [`reservation`]: rules spanning aggregates (one patient per bed, one
//!   open spell per NHS number, referrals only for open spells) declared by
//!   events and enforced by the event store in the commit's transaction.
//! - [`access`]: an admin's grants and revocations of a user's role and
//!   scope, as events.
//! - [`reference`]: hospitals, wards, teams and the versioned delay reasons.
//! - [`upcast`]: the one place a stored event (type, version, payload)
//!   becomes the current event, for every read path.
//! - [`testing`]: a given/when/then harness for deciders.

pub mod access;
pub mod decider;
pub mod reference;
pub mod referral;
pub mod reservation;
pub mod spell;
pub mod testing;
pub mod upcast;
pub mod values;

pub use decider::{handle, replay, Actor, Decider, DomainEvent, Issued, Recorded};
