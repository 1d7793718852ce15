//! The claims Baton reads from a token and the caller they describe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller may do, as the `role` claim says (`ward`, `team`, `system`,
/// `admin`). The API's policy decides what each one allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Staff of one hospital's wards (scope: `hospital`).
    Ward,
    /// A community team (scope: `team`).
    Team,
    /// System-wide oversight: counts, never identities.
    System,
    /// Manages reference data.
    Admin,
}

impl Role {
    /// Every role, in the contract's order.
    pub const ALL: [Role; 4] = [Role::Ward, Role::Team, Role::System, Role::Admin];

    /// The claim's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ward => "ward",
            Role::Team => "team",
            Role::System => "system",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `role` that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected ward, team, system or admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The verified caller: who, in which role, and for which hospital or team.
///
/// Only the scope that belongs to the role is kept (`hospital` for `ward`,
/// `team` for `team`, neither for `system` and `admin`), so the policy never
/// reads a scope the role does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// User id (`sub`).
    pub sub: String,
    /// Display name (`name`; the `sub` when the token has none).
    pub name: String,
    /// Role (`role`).
    pub role: Role,
    /// Hospital code, for `ward`.
    pub hospital: Option<String>,
    /// Team code, for `team`.
    pub team: Option<String>,
}

impl Principal {
    /// Checks that the role has its scope and drops the scope of other roles.
    pub(super) fn scoped(self) -> Result<Self, ClaimsProblem> {
        let Principal {
            sub,
            name,
            role,
            hospital,
            team,
        } = self;
        if sub.is_empty() {
            return Err(ClaimsProblem::Missing("sub".to_owned()));
        }
        let hospital = hospital.filter(|h| !h.is_empty());
        let team = team.filter(|t| !t.is_empty());
        let (hospital, team) = match role {
            Role::Ward => (
                Some(hospital.ok_or(ClaimsProblem::WardWithoutHospital)?),
                None,
            ),
            Role::Team => (None, Some(team.ok_or(ClaimsProblem::TeamWithoutTeam)?)),
            Role::System | Role::Admin => (None, None),
        };
        Ok(Principal {
            sub,
            name,
            role,
            hospital,
            team,
        })
    }
}

/// Why a signed token's claims do not describe a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsProblem {
    /// A required claim (`sub`, `role`, `exp`, or a configured `iss`/`aud`)
    /// is absent.
    #[error("the {0} claim is missing")]
    Missing(String),
    /// A registered claim (`exp`, `nbf`) has the wrong JSON type.
    #[error("the {0} claim is not valid")]
    Invalid(String),
    /// `role` is none of `ward`, `team`, `system`, `admin`.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// A `ward` token without `hospital`.
    #[error("a ward token needs a hospital claim")]
    WardWithoutHospital,
    /// A `team` token without `team`.
    #[error("a team token needs a team claim")]
    TeamWithoutTeam,
}

/// The claims read from a token; the registered ones (`exp`, `nbf`, `iss`,
/// `aud`) are checked by the JWT library before these are looked at.
/// Unknown claims are ignored: identity providers add their own.
#[derive(Deserialize)]
pub(super) struct IncomingClaims {
    pub(super) exp: Option<u64>,
    sub: Option<String>,
    name: Option<String>,
    role: Option<String>,
    hospital: Option<String>,
    team: Option<String>,
}

impl IncomingClaims {
    pub(super) fn into_principal(self) -> Result<Principal, ClaimsProblem> {
        let sub = self
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ClaimsProblem::Missing("sub".to_owned()))?;
        let role = self
            .role
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ClaimsProblem::Missing("role".to_owned()))?
            .parse::<Role>()?;
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| sub.clone());
        Principal {
            sub,
            name,
            role,
            hospital: self.hospital,
            team: self.team,
        }
        .scoped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn roles_read_and_print_as_the_contract_spells_them() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), json!(role.to_string()));
        }
        assert_eq!("Ward".parse::<Role>(), Err(UnknownRole("Ward".to_owned())));
    }
}
