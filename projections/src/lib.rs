//! Baton's read models: the ward bed-flow board, the hospital and system
//! flow boards and the team handover board.
//!
//! - [`envelope`]: decodes stored events once, into typed domain events.
//! - [`flow`]: the one fold all boards read. Keeping a single fold means a
//!   correction (cancelled admission, transfer or discharge) is undone in
//!   one place, so the boards can never disagree with each other. It holds
//!   facts only; anything that depends on the time of day is computed when
//!   a board is read.
//! - [`boards`]: the four boards, read from the fold at an explicit instant
//!   (tests fix the clock by passing it).
//! - [`lookup`]: finding a patient again (search by NHS number or name, a
//!   ward's recent discharges), discharged spells included, for corrections.
//! - [`runner`]: the only part with I/O: feeds the fold from the event feed
//!   with checkpoints, announces changed boards, answers consistency-token
//!   waits, and rebuilds from the start on demand.
//! - [`watchdog`]: whether the boards are up to date with the record (every
//!   page and live stream says when they are not), the alarm when they stop
//!   converging, and the nudge that makes a stopped feed resubscribe.
//! - [`sla`]: the SLA clock, escalating unacknowledged referrals exactly once
//!   however many processes run it.

pub mod boards;
pub mod envelope;
pub mod flow;
pub mod lookup;
pub mod runner;
pub mod sla;
pub mod watchdog;

pub use envelope::{decode, Change, Envelope};
pub use flow::Flow;
