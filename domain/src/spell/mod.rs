//! The inpatient spell: one stay from admission to discharge, including the
//! discharge ready date rule and the ADT corrections.

mod aggregate;
mod commands;
mod errors;
mod events;

pub use aggregate::{Delay, Discharge, Review, Spell, SpellStatus, Stay, Transfer};
pub use commands::{Patient, SpellCommand};
pub use errors::SpellError;
pub use events::{Placement, SpellEvent};
