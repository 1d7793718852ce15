//! One user's access: as the provider says, granted, or revoked.

use serde::{Deserialize, Serialize};

use crate::decider::Decider;
use crate::reference::ReferenceData;
use crate::values::Instant;

use super::commands::AccessCommand;
use super::errors::AccessError;
use super::events::{AccessEvent, GrantedAccess};

/// What a user's access is now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessNow {
    /// Nothing recorded in Baton: the identity provider's claims decide.
    #[default]
    FromProvider,
    Granted(GrantedAccess),
    Revoked,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StaffAccess {
    /// The user (`sub`), once anything was recorded.
    pub sub: Option<String>,
    pub now: AccessNow,
}

impl StaffAccess {
    fn is_for(&self, sub: &str) -> Result<(), AccessError> {
        match &self.sub {
            Some(known) if known != sub => Err(AccessError::AnotherUser),
            _ => Ok(()),
        }
    }
}

impl Decider for StaffAccess {
    const TYPE: &'static str = "access";
    type Command = AccessCommand;
    type Event = AccessEvent;
    type Error = AccessError;
    type Services = dyn ReferenceData;

    fn decide(
        &self,
        command: AccessCommand,
        _now: Instant,
        _refs: &dyn ReferenceData,
    ) -> Result<Vec<AccessEvent>, AccessError> {
        match command {
            AccessCommand::Grant {
                sub,
                name,
                access,
                reason,
            } => {
                self.is_for(&sub)?;
                if self.now == AccessNow::Granted(access.clone()) {
                    return Err(AccessError::AlreadyGranted);
                }
                Ok(vec![AccessEvent::AccessGranted {
                    sub,
                    name,
                    access,
                    reason,
                }])
            }
            AccessCommand::Revoke { sub, reason } => {
                self.is_for(&sub)?;
                if self.now == AccessNow::Revoked {
                    return Err(AccessError::AlreadyRevoked);
                }
                Ok(vec![AccessEvent::AccessRevoked { sub, reason }])
            }
        }
    }

    fn evolve(&mut self, event: &AccessEvent) {
        match event {
            AccessEvent::AccessGranted { sub, access, .. } => {
                self.sub = Some(sub.clone());
                self.now = AccessNow::Granted(access.clone());
            }
            AccessEvent::AccessRevoked { sub, .. } => {
                self.sub = Some(sub.clone());
                self.now = AccessNow::Revoked;
            }
        }
    }
}
