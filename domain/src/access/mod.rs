//! Who may use Baton beyond what their identity provider says: an admin
//! grants a named user a role and scope, or revokes their access, and each
//! grant and revocation is an event (who granted what, to whom, when, and
//! why). One aggregate per user.
//!
//! The role and scope are kept as the claims that name them (`role`,
//! `hospital`, `trust`, `team`, `hub`): which combinations make a caller is
//! the sign-in layer's rule, checked before a grant is issued; the rules
//! here are about the grant's own life.

mod aggregate;
mod commands;
mod errors;
mod events;

pub use aggregate::{AccessNow, StaffAccess};
pub use commands::AccessCommand;
pub use errors::AccessError;
pub use events::{AccessEvent, GrantedAccess};
