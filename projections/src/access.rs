//! Who has been granted or refused what in Baton itself: the fold every
//! request's sign-in check reads (a user's access now) and the admin page
//! lists (each user's access, and every grant and revocation with who made
//! it and when).

use std::collections::BTreeMap;

use domain::access::{AccessEvent, AccessNow, GrantedAccess};
use domain::values::Instant;
use domain::Actor;
use serde::{Deserialize, Serialize};

/// One user's access as recorded in Baton.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccess {
    pub sub: String,
    /// The name the last grant gave (empty when only ever revoked).
    pub name: String,
    pub now: AccessNow,
    /// The sequence of the user's last grant or revocation: a live stream
    /// opened before it ends.
    pub version: u64,
    pub by: Actor,
    pub at: Instant,
}

/// One grant or revocation, for the admin's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessChange {
    pub sub: String,
    /// `None` for a revocation.
    pub granted: Option<GrantedAccess>,
    pub reason: Option<String>,
    pub by: Actor,
    pub at: Instant,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessList {
    users: BTreeMap<String, UserAccess>,
    history: Vec<AccessChange>,
}

impl AccessList {
    pub(crate) fn apply(&mut self, sequence: u64, by: &Actor, at: Instant, event: &AccessEvent) {
        let (sub, name, now, granted, reason) = match event {
            AccessEvent::AccessGranted {
                sub,
                name,
                access,
                reason,
            } => (
                sub,
                Some(name),
                AccessNow::Granted(access.clone()),
                Some(access.clone()),
                reason,
            ),
            AccessEvent::AccessRevoked { sub, reason } => {
                (sub, None, AccessNow::Revoked, None, reason)
            }
        };
        let name = name
            .cloned()
            .or_else(|| self.users.get(sub).map(|u| u.name.clone()))
            .unwrap_or_default();
        self.users.insert(
            sub.clone(),
            UserAccess {
                sub: sub.clone(),
                name,
                now,
                version: sequence,
                by: by.clone(),
                at,
            },
        );
        self.history.push(AccessChange {
            sub: sub.clone(),
            granted,
            reason: reason.as_ref().map(|r| r.as_str().to_owned()),
            by: by.clone(),
            at,
        });
    }

    /// A user's access as recorded in Baton (`None`: nothing recorded, the
    /// provider decides).
    pub fn of(&self, sub: &str) -> Option<&UserAccess> {
        self.users.get(sub)
    }

    pub fn users(&self) -> impl Iterator<Item = &UserAccess> {
        self.users.values()
    }

    /// Every grant and revocation, newest first.
    pub fn history(&self) -> impl Iterator<Item = &AccessChange> {
        self.history.iter().rev()
    }
}
