//! Baton's read models: the ward bed-flow board, the hospital and system
//! flow boards and the team handover board.
//!
//! - [`envelope`]: decodes stored events once, into typed domain events.
//! - [`flow`]: the one fold all boards read. Keeping a single fold means a
//!   correction (cancelled admission, transfer or discharge) is undone in
//!   one place, so the boards can never disagree with each other. It holds
//!   facts only; anything that depends on the time of day is computed when
//!   a board is read.
//! - [`access`]: grants and revocations of users' access, for the sign-in
//!   check and the admin page.
//! - [`boards`]: the four boards, read from the fold at an explicit instant
//!   (tests fix the clock by passing it).
//! - [`lookup`]: finding a patient again (search by NHS number or name, a
//!   ward's recent discharges), discharged spells included, for corrections.
//! - [`watchdog`]: whether the boards are up to date with the record (every
//!   page and live stream says when they are not), when to raise the alarm
//!   and when a stopped feed must be resubscribed, decided from what was
//!   seen.
//!
//! Nothing here does I/O or needs a runtime: the crate depends on the
//! domain alone (CI checks), so any instant can be replayed by folding the
//! events up to it. Feeding the fold from the stream (`infra::runner`),
//! reading what the watchdog decides on (`infra::watchdog`) and the SLA
//! clock, a policy that issues commands (`infra::sla`), live in `infra`.

pub mod access;
pub mod boards;
pub mod envelope;
pub mod flow;
pub mod lookup;
pub mod watchdog;

pub use envelope::{decode, Change, Envelope};
pub use flow::Flow;
