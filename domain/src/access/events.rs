//! What happened to a user's access. `event_type()` strings never change.

use serde::{Deserialize, Serialize};

use crate::decider::DomainEvent;
use crate::values::Text;

/// A role and its scope, as the claims that name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantedAccess {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccessEvent {
    AccessGranted {
        sub: String,
        /// The user's name as the admin knew it.
        name: String,
        access: GrantedAccess,
        reason: Option<Text>,
    },
    AccessRevoked {
        sub: String,
        reason: Option<Text>,
    },
}

impl DomainEvent for AccessEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccessEvent::AccessGranted { .. } => "AccessGranted",
            AccessEvent::AccessRevoked { .. } => "AccessRevoked",
        }
    }

    fn event_version(&self) -> &'static str {
        "1"
    }
}
