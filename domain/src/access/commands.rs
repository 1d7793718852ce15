//! What an admin asks of a user's access.

use crate::values::Text;

use super::events::GrantedAccess;

#[derive(Debug, Clone, PartialEq)]
pub enum AccessCommand {
    /// Gives `sub` this role and scope, whatever the provider says.
    Grant {
        sub: String,
        name: String,
        access: GrantedAccess,
        reason: Option<Text>,
    },
    /// Withdraws `sub`'s access to Baton, whatever the provider says,
    /// until a grant.
    Revoke { sub: String, reason: Option<Text> },
}
