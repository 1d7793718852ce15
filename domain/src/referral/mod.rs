//! The referral: a handover from hospital to a community or social-care
//! team, following the FHIR Task life cycle (requested, received, accepted,
//! rejected, on-hold, cancelled, completed) with SLA escalation.

mod aggregate;
mod commands;
mod errors;
mod events;

pub use aggregate::{Exchange, Referral, ReferralState, ReferralStatus};
pub use commands::{ReferralCommand, ReferralSubject};
pub use errors::ReferralError;
pub use events::ReferralEvent;
