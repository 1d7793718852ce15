//! Who may do what: the contract's roles and scopes, in one function.
//!
//! Every handler names the action it is about to take and what it concerns
//! (a hospital, a team, a hub) and asks [`authorize`], with the reference
//! data that says which hospitals a trust runs and a hub serves. Two kinds
//! of "no":
//! - 403 when the caller may know the thing exists (a ward, a board, an
//!   endpoint their role never uses, a spell a hub sees but may not change);
//! - 404 when the thing is a patient's record the caller has no business
//!   with, so that a team probing ids learns nothing of who is in hospital.
//!
//! Scopes: a `ward` works on one hospital, or on every hospital of its
//! trust; a `team` on its referrals; a `hub` on the discharge-ready
//! patients and the referrals of its hospitals, raising, withdrawing and
//! answering referrals on the wards' behalf but never changing a spell;
//! `system` reads counts only; `admin` manages reference data.

use domain::reference::Catalogue;
use domain::values::{HospitalCode, HubCode, TeamCode, TrustCode};
use infra::auth::{Principal, Role};

use crate::error::ApiError;

/// What a request is about to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Read hospitals, wards, teams, delay reasons.
    ReadReference,
    /// Change them.
    ManageReference,
    /// Admit to a ward of this hospital.
    Admit {
        /// The ward's hospital.
        hospital: &'a HospitalCode,
    },
    /// Read or change a spell (of this hospital, if it exists): the
    /// ward's part, never the hub's.
    Spell {
        /// The spell's hospital; `None` when there is no such spell.
        hospital: Option<&'a HospitalCode>,
    },
    /// Raise a referral for a spell of this hospital.
    RaiseReferral {
        /// The spell's hospital; `None` when there is no such spell.
        hospital: Option<&'a HospitalCode>,
    },
    /// Read a referral.
    ReadReferral(Option<ReferralScope<'a>>),
    /// Acknowledge, accept, decline, ask, start care: the team's part.
    AnswerReferral(Option<ReferralScope<'a>>),
    /// Withdraw, provide information: the ward's part (a hub's too).
    WardReferralAction(Option<ReferralScope<'a>>),
    /// List referrals (each then filtered by [`may_see_referral`]).
    ListReferrals,
    /// A ward board of this hospital.
    WardBoard {
        /// The ward's hospital.
        hospital: &'a HospitalCode,
    },
    /// A hospital board.
    HospitalBoard {
        /// Which.
        hospital: &'a HospitalCode,
    },
    /// The system board.
    SystemBoard,
    /// A team board.
    TeamBoard {
        /// Which.
        team: &'a TeamCode,
    },
    /// A care transfer hub's board.
    HubBoard {
        /// Which.
        hub: &'a HubCode,
    },
    /// Who looked at a patient.
    ReadAudit,
    /// Grant or revoke a user's access, and list who has what.
    ManageAccess,
    /// See and retry the PAS feed's held messages; map its locations.
    ManageFeeds,
}

/// Whom a referral concerns.
#[derive(Debug, Clone, Copy)]
pub struct ReferralScope<'a> {
    /// The receiving team.
    pub team: &'a TeamCode,
    /// The referring hospital.
    pub hospital: &'a HospitalCode,
}

/// True when the caller works on this hospital's wards: its own, or one
/// of its trust's.
fn ward_of(p: &Principal, reference: &Catalogue, hospital: &HospitalCode) -> bool {
    if p.role != Role::Ward {
        return false;
    }
    if let Some(own) = &p.hospital {
        return own == hospital.as_str();
    }
    p.trust.as_deref().is_some_and(|trust| {
        reference
            .hospital(hospital)
            .and_then(|h| h.trust.as_ref())
            .is_some_and(|t| t.as_str() == trust)
    })
}

/// True when the caller is the hub serving this hospital.
fn hub_of(p: &Principal, reference: &Catalogue, hospital: &HospitalCode) -> bool {
    p.role == Role::Hub
        && p.hub
            .as_deref()
            .and_then(|code| HubCode::parse(code).ok())
            .and_then(|code| {
                reference
                    .hub(&code)
                    .map(|hub| hub.hospitals.contains(hospital))
            })
            .unwrap_or(false)
}

fn own_team(p: &Principal, team: &TeamCode) -> bool {
    p.role == Role::Team && p.team.as_deref() == Some(team.as_str())
}

/// The hospitals whose wards a `ward` caller works on (none for other
/// roles), for reads that cover them all (search, the page's menus).
pub fn ward_hospitals(p: &Principal, reference: &Catalogue) -> Vec<HospitalCode> {
    if p.role != Role::Ward {
        return Vec::new();
    }
    if let Some(own) = p.hospital.as_deref() {
        return HospitalCode::parse(own).into_iter().collect();
    }
    match p.trust.as_deref().map(TrustCode::parse) {
        Some(Ok(trust)) => reference
            .trust_hospitals(&trust)
            .map(|h| h.code.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// True when the caller may see this referral at all.
pub fn may_see_referral(p: &Principal, reference: &Catalogue, scope: ReferralScope<'_>) -> bool {
    ward_of(p, reference, scope.hospital)
        || hub_of(p, reference, scope.hospital)
        || own_team(p, scope.team)
}

/// Allows the action or says why not.
pub fn authorize(p: &Principal, reference: &Catalogue, action: Action<'_>) -> Result<(), ApiError> {
    use Action::*;
    let ward = |h: &HospitalCode| ward_of(p, reference, h);
    let hub = |h: &HospitalCode| hub_of(p, reference, h);
    // A patient's record outside the caller's scope reads as "no such
    // record" to the roles that see records; the others never do (403).
    let unknown = || match p.role {
        Role::Ward | Role::Team | Role::Hub => Err(ApiError::NotFound),
        Role::System | Role::Admin => Err(ApiError::Forbidden),
    };
    let allowed = match action {
        ReadReference => true,
        ManageReference | ReadAudit | ManageAccess | ManageFeeds => p.role == Role::Admin,
        Admit { hospital } => ward(hospital),
        Spell { hospital } => match hospital {
            Some(h) if ward(h) => true,
            // The hub sees the patient on its board, but the spell is the
            // ward's: no admitting, moving, discharging or clinical fields.
            Some(h) if hub(h) => false,
            _ => return unknown(),
        },
        RaiseReferral { hospital } => match hospital {
            Some(h) if ward(h) || hub(h) => true,
            _ => return unknown(),
        },
        ReadReferral(scope) => match scope {
            Some(s) if may_see_referral(p, reference, s) => true,
            _ => return unknown(),
        },
        AnswerReferral(scope) => match scope {
            Some(s) if own_team(p, s.team) => true,
            // A ward or hub may see the referral but not answer for the team.
            Some(s) if may_see_referral(p, reference, s) => false,
            _ => return unknown(),
        },
        WardReferralAction(scope) => match scope {
            Some(s) if ward(s.hospital) || hub(s.hospital) => true,
            Some(s) if own_team(p, s.team) => false,
            _ => return unknown(),
        },
        ListReferrals => matches!(p.role, Role::Ward | Role::Team | Role::Hub),
        WardBoard { hospital } => ward(hospital),
        HospitalBoard { hospital } => ward(hospital) || p.role == Role::System,
        SystemBoard => p.role == Role::System,
        TeamBoard { team } => own_team(p, team),
        HubBoard { hub } => p.role == Role::Hub && p.hub.as_deref() == Some(hub.as_str()),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
