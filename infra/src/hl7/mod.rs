//! HL7 v2 for the hospital's patient administration system feed (issue
//! 16): the message, its acknowledgement, MLLP framing, and the ADT feed
//! that turns messages into spell commands. No mature, permissively
//! licensed HL7 v2 crate exists (`hl7-parser` and `rust-hl7` are young,
//! `hl7v2` is AGPL), so this small reader is Baton's own, tested on
//! real-world message shapes and property-tested on any bytes.
//!
//! - `message`: segments, fields, repetitions, components, escapes, the
//!   separators a message declares, absent versus `""`.
//! - `ack`: `AA`/`AE`/`AR` acknowledgements with MSA and ERR.
//! - `mllp`: the frames a connection carries (a tokio codec).
//! - `adt`: what a message asks (pure: fields to typed values).
//! - `mapping`: the PAS's locations as Baton's wards and beds.
//! - `feed`: applying a message through the command bus, exactly once,
//!   and answering it.
//! - `held`: the messages not applied, for admins to see and retry.
//! - `listener`: the MLLP listener `baton serve` runs.
//! - `census`: go-live, a CSV of current inpatients brought in at once.

pub mod ack;
pub mod adt;
pub mod census;
pub mod feed;
pub mod held;
pub mod listener;
pub mod mapping;
pub mod message;
pub mod mllp;

pub use ack::{ack, AckCode, AckError};
pub use feed::{AdtFeed, Answer, FeedMetrics};
pub use message::{Delimiters, Field, Message, ParseError};

#[cfg(test)]
mod tests;
