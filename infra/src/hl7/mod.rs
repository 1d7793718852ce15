//! HL7 v2 for the hospital's patient administration system feed (issue
//! 16): the message, its acknowledgement and MLLP framing. No mature,
//! permissively licensed HL7 v2 crate exists (`hl7-parser` and `rust-hl7`
//! are young, `hl7v2` is AGPL), so this small reader is Baton's own,
//! tested on real-world message shapes and property-tested on any bytes.
//!
//! - `message`: segments, fields, repetitions, components, escapes, the
//!   separators a message declares, absent versus `""`.
//! - `ack`: `AA`/`AE`/`AR` acknowledgements with MSA and ERR.
//! - `mllp`: the frames a connection carries (a tokio codec).

pub mod ack;
pub mod message;
pub mod mllp;

pub use ack::{ack, AckCode, AckError};
pub use message::{Delimiters, Field, Message, ParseError};

#[cfg(test)]
mod tests;
