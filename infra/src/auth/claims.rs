//! The claims Baton reads from a token and the caller they describe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller may do, as the `role` claim says (`ward`, `team`, `hub`,
/// `system`, `admin`). The API's policy decides what each one allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Staff of one hospital's wards (scope: `hospital`), or of every
    /// hospital of one trust (scope: `trust`).
    Ward,
    /// A community team (scope: `team`).
    Team,
    /// A care transfer hub, the single point of access for a set of
    /// hospitals (scope: `hub`): their discharge-ready patients and
    /// referrals, on the wards' behalf, never their clinical record.
    Hub,
    /// System-wide oversight: counts, never identities.
    System,
    /// Manages reference data.
    Admin,
}

impl Role {
    /// Every role, in the contract's order (`hub` is Baton's extension).
    pub const ALL: [Role; 5] = [Role::Ward, Role::Team, Role::Hub, Role::System, Role::Admin];

    /// The claim's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ward => "ward",
            Role::Team => "team",
            Role::Hub => "hub",
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

/// A `role` that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected ward, team, hub, system or admin)")]
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

/// The scope claims as sent (by a token, or by the identity provider's
/// claims once mapped): each may be absent, and [`Principal::scoped`] keeps
/// only what the role uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeClaims {
    pub hospital: Option<String>,
    pub trust: Option<String>,
    pub team: Option<String>,
    pub hub: Option<String>,
}

/// The verified caller: who, in which role, and for which hospital, trust,
/// team or hub.
///
/// Only the scope that belongs to the role is kept (`hospital` or `trust`
/// for `ward`, `team` for `team`, `hub` for `hub`, none for `system` and
/// `admin`), so the policy never reads a scope the role does not carry.
/// Build one with [`Principal::scoped`], the one place that rule lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// User id (`sub`).
    pub sub: String,
    /// Display name (`name`; the `sub` when the token has none).
    pub name: String,
    pub role: Role,
    /// Hospital code, for a `ward` of one hospital.
    pub hospital: Option<String>,
    /// Trust code, for a `ward` of every hospital of a trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// Team code, for `team`.
    pub team: Option<String>,
    /// Hub code, for `hub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

impl Principal {
    /// The caller these claims describe, or why they describe none: the
    /// role must have its scope (a ward exactly one of hospital and trust),
    /// and other roles' scopes are dropped. Empty strings count as absent.
    pub fn scoped(
        sub: String,
        name: String,
        role: Role,
        scope: ScopeClaims,
    ) -> Result<Self, ClaimsProblem> {
        if sub.is_empty() {
            return Err(ClaimsProblem::Missing("sub".to_owned()));
        }
        let present = |code: Option<String>| code.filter(|c| !c.is_empty());
        let (hospital, trust, team, hub) = (
            present(scope.hospital),
            present(scope.trust),
            present(scope.team),
            present(scope.hub),
        );
        let mut principal = Principal {
            sub,
            name,
            role,
            hospital: None,
            trust: None,
            team: None,
            hub: None,
        };
        match role {
            Role::Ward => match (hospital, trust) {
                (Some(_), Some(_)) => return Err(ClaimsProblem::WardWithTwoScopes),
                (None, None) => return Err(ClaimsProblem::WardWithoutHospital),
                (hospital, trust) => (principal.hospital, principal.trust) = (hospital, trust),
            },
            Role::Team => principal.team = Some(team.ok_or(ClaimsProblem::TeamWithoutTeam)?),
            Role::Hub => principal.hub = Some(hub.ok_or(ClaimsProblem::HubWithoutHub)?),
            Role::System | Role::Admin => {}
        }
        Ok(principal)
    }

    /// The scope claims this caller carries, for signing a token of it.
    pub fn scope_claims(&self) -> ScopeClaims {
        ScopeClaims {
            hospital: self.hospital.clone(),
            trust: self.trust.clone(),
            team: self.team.clone(),
            hub: self.hub.clone(),
        }
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
    /// `role` is none of `ward`, `team`, `hub`, `system`, `admin`.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// A `ward` token with neither `hospital` nor `trust`.
    #[error("a ward token needs a hospital or a trust claim")]
    WardWithoutHospital,
    /// A `ward` token with both: which one it means is not for Baton to
    /// guess.
    #[error("a ward token carries a hospital or a trust claim, not both")]
    WardWithTwoScopes,
    /// A `team` token without `team`.
    #[error("a team token needs a team claim")]
    TeamWithoutTeam,
    /// A `hub` token without `hub`.
    #[error("a hub token needs a hub claim")]
    HubWithoutHub,
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
    trust: Option<String>,
    team: Option<String>,
    hub: Option<String>,
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
        Principal::scoped(
            sub,
            name,
            role,
            ScopeClaims {
                hospital: self.hospital,
                trust: self.trust,
                team: self.team,
                hub: self.hub,
            },
        )
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

    fn claims(
        hospital: Option<&str>,
        trust: Option<&str>,
        team: Option<&str>,
        hub: Option<&str>,
    ) -> ScopeClaims {
        let own = |c: Option<&str>| c.map(str::to_owned);
        ScopeClaims {
            hospital: own(hospital),
            trust: own(trust),
            team: own(team),
            hub: own(hub),
        }
    }

    fn scoped(role: Role, scope: ScopeClaims) -> Result<Principal, ClaimsProblem> {
        Principal::scoped("u-1".to_owned(), "Sam".to_owned(), role, scope)
    }

    #[test]
    fn a_ward_is_scoped_to_a_hospital_or_to_a_trust_but_never_both() {
        let by_hospital = scoped(
            Role::Ward,
            claims(Some("POOLE"), None, Some("T"), Some("H")),
        )
        .unwrap();
        assert_eq!(
            by_hospital.scope_claims(),
            claims(Some("POOLE"), None, None, None)
        );
        let by_trust = scoped(Role::Ward, claims(None, Some("UHD"), None, None)).unwrap();
        assert_eq!(
            by_trust.scope_claims(),
            claims(None, Some("UHD"), None, None)
        );
        assert_eq!(
            scoped(Role::Ward, claims(Some("POOLE"), Some("UHD"), None, None)),
            Err(ClaimsProblem::WardWithTwoScopes)
        );
        assert_eq!(
            scoped(Role::Ward, claims(Some(""), Some(""), None, None)),
            Err(ClaimsProblem::WardWithoutHospital)
        );
    }

    #[test]
    fn a_hub_needs_its_hub_and_keeps_nothing_else() {
        let hub = scoped(
            Role::Hub,
            claims(Some("POOLE"), Some("UHD"), Some("T"), Some("DORSET")),
        )
        .unwrap();
        assert_eq!(hub.scope_claims(), claims(None, None, None, Some("DORSET")));
        assert_eq!(
            scoped(Role::Hub, claims(Some("POOLE"), None, None, None)),
            Err(ClaimsProblem::HubWithoutHub)
        );
        let system = scoped(
            Role::System,
            claims(Some("POOLE"), Some("UHD"), Some("T"), Some("H")),
        )
        .unwrap();
        assert_eq!(system.scope_claims(), ScopeClaims::default());
    }

    #[test]
    fn a_principal_stored_before_trusts_and_hubs_reads_back() {
        let old =
            json!({"sub": "u-1", "name": "Sam", "role": "ward", "hospital": "POOLE", "team": null});
        let read: Principal = serde_json::from_value(old).unwrap();
        assert_eq!(read.scope_claims(), claims(Some("POOLE"), None, None, None));
    }
}
